/* lvmops.c — the VM's layer-0 ops and batches: vm:syscall, vm:ioctl and
 * vm:batch (guest_ops.h does the wire work).
 *
 * syscall takes integers (up to six; further ones are ignored, as the
 * kernel would), or one table {args=, bufs=, ptrs=, nested=} whose
 * buffers the agent copies in, splices into the named argument slots
 * (and, for nested = {{parent=, child=, offset=}}, into each other:
 * pointers inside structs) and copies back out (out_bufs). syscall_async
 * (reached through worker:syscall_async, lworker.c) sends the same
 * request and returns a PendingSyscall; :await() collects the reply.
 * read_mem reads bytes of the serving process's memory. ioctl is syscall(SYS_ioctl) with `data` as
 * the third argument's buffer: fd is a guest fd number (file:fd() is
 * one: the agent's file handle is the guest fd). Its opts.bufs are
 * spliced into data at opts.ptr_offsets by the agent's syscall patches.
 *
 * batch(fn) runs fn(b) to collect ops (b:run, b:read_file, ...), then
 * sends them all before reading any reply (one round trip over the agent;
 * one by one on a backend without one) and returns one {ok=value} or
 * {err=message} per op, in order. Nothing malloc'd is held while user
 * code runs: fn runs before any C buffer exists. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>

#include <lua.h>
#include <lauxlib.h>

#include "lua/lvm_priv.h"
#include "vmm/guest_ops.h"

#define MAX_BUFS 64

static bool can_syscall(const struct lvm *v)
{
	return v->ops->agent || v->ops->syscall;
}

static lua_Integer int_arg(lua_State *L, int idx, const char *what, int i)
{
	if (!lua_isinteger(L, idx))
		luaL_error(L, "%s: argument %d must be an integer, got %s", what, i,
		           luaL_typename(L, idx));
	return lua_tointeger(L, idx);
}

/* Push {ret=, result=, errno=, out_bufs=} and free res. */
static void push_sys(lua_State *L, struct guest_syscall_result *res, bool bufs)
{
	lua_createtable(L, 0, 4);
	lua_pushinteger(L, res->ret);
	lua_setfield(L, -2, "ret");
	lua_pushinteger(L, res->ret);
	lua_setfield(L, -2, "result");
	lua_pushinteger(L, res->err_no);
	lua_setfield(L, -2, "errno");
	/* out_bufs is always there (the VM reference's result shape); empty
	 * for the integer-only form. */
	lua_createtable(L, bufs ? (int)res->nbufs : 0, 0);
	for (size_t i = 0; bufs && i < res->nbufs; i++) {
		lua_pushlstring(L, res->out_bufs[i], res->out_lens[i]);
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
	lua_setfield(L, -2, "out_bufs");
	guest_syscall_result_free(res);
}

/* Run s; raises on failure; pushes the result table. */
static void do_syscall(lua_State *L, struct lvm *v, const struct guest_syscall *s,
                       const char *op)
{
	struct guest_syscall_result res;
	char err[LVM_ERRLEN];
	int rc = guest_syscall(v->ops, v->be, s, &res, err, sizeof err);
	if (rc == VMM_UNSUPPORTED)
		lvm_unsupported(L, v, op);
	if (rc < 0)
		luaL_error(L, "vm `%s`: %s: %s", v->name, op, lvm_errtext(v, err));
	push_sys(L, &res, s->nbufs > 0);
}

/* Fill bufs/lens/ptrs from the arrays at bidx/pidx (may be 0 = absent).
 * ptrs may be shorter than bufs: a buffer without a slot (or with slot
 * -1) is reached only through a nested pointer. */
static size_t read_bufs(lua_State *L, int bidx, int pidx, const char **bufs, size_t *lens,
                        int *ptrs, const char *what, int maxslot)
{
	size_t n = bidx ? (size_t)luaL_len(L, bidx) : 0;
	size_t np = pidx ? (size_t)luaL_len(L, pidx) : 0;
	if (np > n)
		luaL_error(L, "%s: ptrs has %d entries but there are only %d bufs (ptrs[i] is the "
		           "0-based argument slot of bufs[i])", what, (int)np, (int)n);
	if (!n)
		return 0;
	if (n > MAX_BUFS)
		luaL_error(L, "%s: at most %d bufs", what, MAX_BUFS);
	for (size_t i = 0; i < n; i++) {
		lua_geti(L, bidx, (lua_Integer)i + 1);
		if (lua_type(L, -1) != LUA_TSTRING)
			luaL_error(L, "%s: bufs[%d] must be a string", what, (int)i + 1);
		bufs[i] = lua_tolstring(L, -1, &lens[i]);  /* anchored by the bufs table */
		lua_pop(L, 1);
		ptrs[i] = -1;
		if (i >= np)
			continue;
		lua_geti(L, pidx, (lua_Integer)i + 1);
		if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < -1 || lua_tointeger(L, -1) > maxslot)
			luaL_error(L, "%s: ptrs[%d] must be an argument slot 0..%d (or -1: none)", what,
			           (int)i + 1, maxslot);
		ptrs[i] = (int)lua_tointeger(L, -1);
		lua_pop(L, 1);
	}
	return n;
}

/* One integer field of nested[i]; raises naming it. */
static lua_Integer nested_field(lua_State *L, int eidx, int i, const char *k, const char *what)
{
	lua_Integer v;
	lua_getfield(L, eidx, k);
	if (!lua_isinteger(L, -1))
		luaL_error(L, "%s: nested[%d].%s must be an integer, got %s", what, i, k,
		           luaL_typename(L, -1));
	v = lua_tointeger(L, -1);
	lua_pop(L, 1);
	return v;
}

/* nested = {{parent=, child=, offset=}, ...} at nidx (1-based buffer
 * indexes): the guest address of bufs[child] is written (8 bytes,
 * little-endian) into bufs[parent] at byte offset before the call. */
static size_t read_nested(lua_State *L, int nidx, const size_t *lens, size_t nbufs,
                          struct guest_patch *patches, const char *what)
{
	size_t n = (size_t)luaL_len(L, nidx);
	if (n > MAX_BUFS)
		luaL_error(L, "%s: at most %d nested pointers", what, MAX_BUFS);
	if (n && !nbufs)
		luaL_error(L, "%s: nested pointers need bufs (nested[i].parent and .child index "
		           "them)", what);
	for (size_t i = 0; i < n; i++) {
		lua_Integer par, chi, off;
		int e = (int)i + 1;
		lua_geti(L, nidx, (lua_Integer)e);
		if (!lua_istable(L, -1))
			luaL_error(L, "%s: nested[%d] must be a table {parent=, child=, offset=}, got %s",
			           what, e, luaL_typename(L, -1));
		par = nested_field(L, lua_gettop(L), e, "parent", what);
		chi = nested_field(L, lua_gettop(L), e, "child", what);
		off = nested_field(L, lua_gettop(L), e, "offset", what);
		lua_pop(L, 1);
		if (par < 1 || (size_t)par > nbufs)
			luaL_error(L, "%s: nested[%d].parent = %d is not a buffer index (1..%d)", what, e,
			           (int)par, (int)nbufs);
		if (chi < 1 || (size_t)chi > nbufs)
			luaL_error(L, "%s: nested[%d].child = %d is not a buffer index (1..%d)", what, e,
			           (int)chi, (int)nbufs);
		if (off < 0 || (size_t)off > lens[par - 1] || lens[par - 1] - (size_t)off < 8)
			luaL_error(L, "%s: nested[%d].offset = %d is out of range: the pointer needs 8 "
			           "bytes inside bufs[%d] (%d bytes)", what, e, (int)off, (int)par,
			           (int)lens[par - 1]);
		patches[i].target = (uint32_t)(par - 1);
		patches[i].source = (uint32_t)(chi - 1);
		patches[i].offset = (uint64_t)off;
	}
	return n;
}

/* Storage a parsed syscall points into (its strings stay anchored on the
 * Lua stack by the caller's arguments). */
struct sysargs {
	struct guest_syscall s;
	const char *bufs[MAX_BUFS];
	size_t lens[MAX_BUFS];
	int ptrs[MAX_BUFS];
	struct guest_patch patches[MAX_BUFS];
};

/* Parse (nr, a1..a6) or (nr, {args=, bufs=, ptrs=, nested=}) from stack
 * index 2 on into a. Leaves helper values above the arguments. */
static void parse_syscall(lua_State *L, struct sysargs *a, const char *what)
{
	struct guest_syscall *s = &a->s;
	memset(s, 0, sizeof(*s));
	if (!lua_isinteger(L, 2))
		luaL_error(L, "%s: nr (argument 1) must be an integer, got %s", what,
		           lua_type(L, 2) == LUA_TNUMBER ? "a non-integer number" : luaL_typename(L, 2));
	s->nr = lua_tointeger(L, 2);
	if (lua_istable(L, 3)) {
		int aidx = 0, bidx = 0, pidx = 0, nidx = 0;
		if (lua_gettop(L) > 3)
			luaL_error(L, "%s: the table form takes no further arguments", what);
		lua_settop(L, 3);
		if (lua_getfield(L, 3, "args") != LUA_TNIL) {
			luaL_checktype(L, 4, LUA_TTABLE);
			aidx = 4;
		}
		if (lua_getfield(L, 3, "bufs") != LUA_TNIL) {
			luaL_checktype(L, 5, LUA_TTABLE);
			bidx = 5;
		}
		if (lua_getfield(L, 3, "ptrs") != LUA_TNIL) {
			luaL_checktype(L, 6, LUA_TTABLE);
			pidx = 6;
		}
		if (lua_getfield(L, 3, "nested") != LUA_TNIL) {
			if (!lua_istable(L, 7))
				luaL_error(L, "%s: nested must be an array of {parent=, child=, offset=}, "
				           "got %s", what, luaL_typename(L, 7));
			nidx = 7;
		}
		if (aidx) {
			lua_Integer n = luaL_len(L, aidx);
			if (n > 6)
				n = 6;          /* a syscall takes six: the rest is dropped */
			for (lua_Integer i = 1; i <= n; i++) {
				char w[64];
				snprintf(w, sizeof w, "%s: args", what);
				lua_geti(L, aidx, i);
				s->args[i - 1] = int_arg(L, -1, w, (int)i);
				lua_pop(L, 1);
			}
		}
		s->nbufs = read_bufs(L, bidx, pidx, a->bufs, a->lens, a->ptrs, what, 5);
		s->bufs = a->bufs;
		s->buf_lens = a->lens;
		s->ptrs = a->ptrs;
		if (nidx) {
			s->npatches = read_nested(L, nidx, a->lens, s->nbufs, a->patches, what);
			s->patches = a->patches;
		}
	} else {
		int top = lua_gettop(L);
		if (top > 8)
			top = 8;                /* a syscall takes six: the rest is dropped */
		for (int i = 3; i <= top; i++)
			s->args[i - 3] = int_arg(L, i, what, i - 1);
	}
}

/* vm:syscall(nr, a1..a6) or vm:syscall(nr, {args=, bufs=, ptrs=, nested=}) */
static int vm_syscall(lua_State *L)
{
	struct lvm *v = lvm_check(L, 1);
	struct sysargs a;
	if (!can_syscall(v))
		return lvm_unsupported(L, v, "syscall");
	parse_syscall(L, &a, "syscall");
	if (a.s.npatches && !v->ops->agent)
		return lvm_unsupported(L, v, "syscall with nested pointers");
	lvm_need_booted(L, v, "syscall");
	do_syscall(L, v, &a.s, "syscall");
	return 1;
}

/* ---- syscall_async / await ------------------------------------------ */

#define PENDING_MT "provium.pending_syscall"

struct lpending {
	uint64_t id;
	size_t nbufs;
	bool done;
	char who[64];             /* "worker 3" / "vm `a`", for messages */
};

/* syscall_async(vm, nr, ...): send the syscall (routed as the VM's agent
 * client currently routes: lworker.c routes it to a worker) and return a
 * PendingSyscall whose :await() returns what syscall would have. */
int lvmops_syscall_async(lua_State *L)
{
	struct lvm *v = lvm_check(L, 1);
	struct sysargs a;
	char err[LVM_ERRLEN];
	uint64_t id;
	int rc;
	if (!v->ops->agent)
		return lvm_unsupported(L, v, "syscall_async");
	parse_syscall(L, &a, "syscall_async");
	lvm_need_booted(L, v, "syscall_async");
	rc = guest_syscall_begin(v->ops, v->be, &a.s, &id, err, sizeof err);
	if (rc == VMM_UNSUPPORTED)
		return lvm_unsupported(L, v, "syscall_async");
	if (rc < 0)
		return luaL_error(L, "vm `%s`: syscall_async: %s", v->name, lvm_errtext(v, err));
	struct lpending *p = lua_newuserdatauv(L, sizeof(*p), 1);
	p->id = id;
	p->nbufs = a.s.nbufs;
	p->done = false;
	snprintf(p->who, sizeof p->who, "vm `%s`", v->name);
	luaL_setmetatable(L, PENDING_MT);
	lua_pushvalue(L, 1);
	lua_setiuservalue(L, -2, 1);          /* keeps the VM alive */
	return 1;
}

/* pending:await([timeout]) -> the syscall's result table. Raises if
 * awaited before, on timeout (default: no limit) or if the VM/worker
 * went away. */
static int pending_await(lua_State *L)
{
	struct lpending *p = luaL_checkudata(L, 1, PENDING_MT);
	struct guest_syscall_result res;
	char err[LVM_ERRLEN];
	int timeout_ms = -1;
	if (p->done)
		return luaL_error(L, "syscall_async: handle already awaited");
	if (!lua_isnoneornil(L, 2)) {
		int64_t ns = lvm_check_duration(L, 2, "await: timeout");
		timeout_ms = ns / 1000000 > 0x7fffffff ? 0x7fffffff : (int)(ns / 1000000);
	}
	lua_getiuservalue(L, 1, 1);
	struct lvm *v = lvm_check(L, -1);
	p->done = true;
	if (!v->be || !v->ops->agent)
		return luaL_error(L, "%s: await: the vm is gone", p->who);
	int rc = guest_syscall_finish(v->ops, v->be, p->id, p->nbufs, timeout_ms, &res, err,
	                              sizeof err);
	if (rc < 0)
		return luaL_error(L, "%s: syscall_async: %s", p->who, lvm_errtext(v, err));
	push_sys(L, &res, p->nbufs > 0);
	return 1;
}

static int pending_tostring(lua_State *L)
{
	struct lpending *p = luaL_checkudata(L, 1, PENDING_MT);
	lua_pushfstring(L, "pending syscall (request %I) of %s%s", (lua_Integer)p->id, p->who,
	                p->done ? " (awaited)" : "");
	return 1;
}

/* Whether the PendingSyscall at idx was awaited. */
bool lvmops_pending_done(lua_State *L, int idx)
{
	struct lpending *p = luaL_checkudata(L, idx, PENDING_MT);
	return p->done;
}

/* Name the owner in the handle's messages ("worker 3"). */
void lvmops_pending_set_who(lua_State *L, int idx, const char *who)
{
	struct lpending *p = luaL_checkudata(L, idx, PENDING_MT);
	snprintf(p->who, sizeof p->who, "%s", who);
}

/* vm:read_mem(addr, len) -> bytes, or nil, errno when the guest refuses
 * the range (an unmapped address: EIO). Reads the agent's op server
 * (worker:read_mem: the worker's process). */
static int vm_read_mem(lua_State *L)
{
	struct lvm *v = lvm_check(L, 1);
	lua_Integer addr = int_arg(L, 2, "read_mem", 1);
	lua_Integer len = int_arg(L, 3, "read_mem", 2);
	char err[LVM_ERRLEN];
	char *data;
	int gerr, rc;
	if (!v->ops->agent)
		return lvm_unsupported(L, v, "read_mem");
	if (addr < 0)
		return luaL_error(L, "read_mem: addr must be >= 0, got %I", addr);
	if (len < 0)
		return luaL_error(L, "read_mem: len must be >= 0, got %I", len);
	lvm_need_booted(L, v, "read_mem");
	rc = guest_read_mem(v->ops, v->be, (uint64_t)addr, (uint64_t)len, &data, &gerr, err,
	                    sizeof err);
	if (rc == VMM_UNSUPPORTED)
		return lvm_unsupported(L, v, "read_mem");
	if (rc < 0 && gerr) {
		lua_pushnil(L);
		lua_pushinteger(L, gerr);
		return 2;
	}
	if (rc < 0)
		return luaL_error(L, "vm `%s`: read_mem: %s", v->name, lvm_errtext(v, err));
	lua_pushlstring(L, data, (size_t)len);
	free(data);
	return 1;
}

/* vm:ioctl(fd, cmd[, data[, opts]]) -> {ret, result, errno, out_data, out_bufs}
 * fd is a guest fd number: file:fd() (the agent's file handle is the
 * guest fd) or the File itself. data is the third argument's buffer.
 * opts.bufs are further buffers and opts.ptr_offsets[i] the byte offset
 * inside data where the guest address of bufs[i] is written (8 bytes,
 * little-endian) before the call: ioctls whose struct points at a
 * payload. On the wire data is bufs[0] in slot 2 and each opts buffer is
 * a slot-less buffer reached through a patch into bufs[0]. */
static int vm_ioctl(lua_State *L)
{
	struct lvm *v = lvm_check(L, 1);
	struct guest_syscall s = {.nr = SYS_ioctl};
	const char *bufs[MAX_BUFS];
	size_t lens[MAX_BUFS];
	int ptrs[MAX_BUFS];
	struct guest_patch patches[MAX_BUFS];
	size_t nextra = 0;
	if (!can_syscall(v))
		return lvm_unsupported(L, v, "ioctl");
	if (luaL_testudata(L, 2, FILE_MT)) {
		struct lfile *f = luaL_testudata(L, 2, FILE_MT);
		if (!f->f)
			return luaL_error(L, "file is closed");
		s.args[0] = (int64_t)f->ops->file_handle(f->f);
	} else {
		s.args[0] = int_arg(L, 2, "ioctl", 1);
	}
	s.args[1] = int_arg(L, 3, "ioctl", 2);
	lua_settop(L, 5);
	if (!lua_isnil(L, 4)) {
		bufs[0] = luaL_checklstring(L, 4, &lens[0]);
		ptrs[0] = 2;
		s.nbufs = 1;
	}
	if (!lua_isnil(L, 5)) {
		luaL_checktype(L, 5, LUA_TTABLE);
		lua_getfield(L, 5, "bufs");                 /* 6, anchors the strings */
		lua_getfield(L, 5, "ptr_offsets");          /* 7 */
		if (!lua_isnil(L, 6)) {
			if (!lua_istable(L, 6))
				return luaL_error(L, "ioctl: opts.bufs must be an array of strings");
			nextra = (size_t)luaL_len(L, 6);
		}
		if (!lua_isnil(L, 7) && !lua_istable(L, 7))
			return luaL_error(L, "ioctl: opts.ptr_offsets must be an array of integers");
		if ((lua_isnil(L, 7) ? 0 : (size_t)luaL_len(L, 7)) != nextra)
			return luaL_error(L, "ioctl: opts.ptr_offsets needs one offset (into data) per "
			                  "opts.bufs entry (%d bufs, %d offsets)", (int)nextra,
			                  lua_isnil(L, 7) ? 0 : (int)luaL_len(L, 7));
		if (nextra && !s.nbufs)
			return luaL_error(L, "ioctl: opts.bufs needs data (the struct that holds "
			                  "the pointers)");
		if (nextra > MAX_BUFS - 1)
			return luaL_error(L, "ioctl: at most %d opts.bufs", MAX_BUFS - 1);
		for (size_t i = 0; i < nextra; i++) {
			lua_Integer off;
			lua_geti(L, 6, (lua_Integer)i + 1);
			if (lua_type(L, -1) != LUA_TSTRING)
				return luaL_error(L, "ioctl: opts.bufs[%d] must be a string", (int)i + 1);
			bufs[i + 1] = lua_tolstring(L, -1, &lens[i + 1]);  /* anchored by opts.bufs */
			ptrs[i + 1] = -1;
			lua_pop(L, 1);
			lua_geti(L, 7, (lua_Integer)i + 1);
			if (!lua_isinteger(L, -1))
				return luaL_error(L, "ioctl: opts.ptr_offsets[%d] must be an integer, got %s",
				                  (int)i + 1, luaL_typename(L, -1));
			off = lua_tointeger(L, -1);
			lua_pop(L, 1);
			if (off < 0 || (size_t)off > lens[0] || lens[0] - (size_t)off < 8)
				return luaL_error(L, "ioctl: opts.ptr_offsets[%d] = %d is out of range: a "
				                  "pointer needs 8 bytes inside data (%d bytes), so offsets "
				                  "go from 0 to %d", (int)i + 1, (int)off, (int)lens[0],
				                  (int)lens[0] - 8);
			patches[i].target = 0;
			patches[i].offset = (uint64_t)off;
			patches[i].source = (uint32_t)(i + 1);
		}
		s.nbufs += nextra;
		s.patches = patches;
		s.npatches = nextra;
	}
	if (s.nbufs) {
		s.bufs = bufs;
		s.buf_lens = lens;
		s.ptrs = ptrs;
	}
	lvm_need_booted(L, v, "ioctl");
	do_syscall(L, v, &s, "ioctl");
	lua_getfield(L, -1, "out_bufs");                    /* raw: {data, bufs...} or nil */
	lua_createtable(L, (int)nextra, 0);                 /* out_bufs: the opts bufs only */
	for (size_t i = 0; i < nextra; i++) {
		lua_rawgeti(L, -2, (lua_Integer)i + 2);
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
	lua_setfield(L, -3, "out_bufs");
	if (s.nbufs) {
		lua_rawgeti(L, -1, 1);
		lua_setfield(L, -3, "out_data");
	}
	lua_pop(L, 1);
	return 1;
}

/* ---- batch ---------------------------------------------------------- */

static const char *const batch_kinds[] = {"run", "read_file", "write_file", "stat",
	"listdir", "mkdir", "unlink", "rename", "syscall", NULL};

/* b:<kind>(...) appends {kind=i, n=, ...args} to the collector's list. */
static int b_add(lua_State *L)
{
	int kind = (int)lua_tointeger(L, lua_upvalueindex(1));
	int n = lua_gettop(L) - 1;
	luaL_checktype(L, 1, LUA_TTABLE);
	if (kind == GB_SYSCALL)
		for (int i = 2; i <= n + 1; i++)
			if (!lua_isinteger(L, i))
				return luaL_error(L, "batch: b:syscall takes integer arguments only (the "
				                  "table form is not supported in a batch)");
	if (kind != GB_EXEC && kind != GB_SYSCALL && kind != GB_MKDIR)
		luaL_checkstring(L, 2);
	if (kind == GB_WRITE_FILE)
		luaL_checkstring(L, 3);
	if (kind == GB_RENAME)
		luaL_checkstring(L, 3);
	if (kind == GB_EXEC && !lua_istable(L, 2))
		luaL_checkstring(L, 2);
	if (kind == GB_MKDIR) {
		luaL_checkstring(L, 2);
		if (!lua_isnoneornil(L, 3) && !lua_istable(L, 3) && !lua_isboolean(L, 3))
			return luaL_error(L, "batch: b:mkdir opts must be a table ({parents=, perm=}), "
			                  "a boolean (parents) or nil, got %s", luaL_typename(L, 3));
	}
	lua_createtable(L, n, 2);
	lua_pushinteger(L, kind);
	lua_setfield(L, -2, "kind");
	lua_pushinteger(L, n);
	lua_setfield(L, -2, "n");
	for (int i = 1; i <= n; i++) {
		lua_pushvalue(L, i + 1);
		lua_rawseti(L, -2, i);
	}
	lua_getfield(L, 1, "_ops");
	lua_pushvalue(L, -2);
	lua_rawseti(L, -2, (lua_Integer)luaL_len(L, -2) + 1);
	return 0;
}

static void push_batch_value(lua_State *L, const struct guest_batch_op *o,
                             struct guest_batch_res *r, int op_idx)
{
	switch (o->kind) {
	case GB_EXEC:
		lua_rawgeti(L, op_idx, 1);
		lvm_push_result(L, &r->exec, lua_tostring(L, -1));
		lua_remove(L, -2);
		break;
	case GB_READ_FILE:
		lua_pushlstring(L, r->data ? r->data : "", r->len);
		break;
	case GB_STAT:
		lua_createtable(L, 0, 5);
		lua_pushinteger(L, (lua_Integer)r->st.size);
		lua_setfield(L, -2, "size");
		lua_pushnumber(L, (double)r->st.mtime_ns / 1e9);
		lua_setfield(L, -2, "mtime");
		lua_pushinteger(L, r->st.mtime_ns);
		lua_setfield(L, -2, "mtime_ns");
		lua_pushinteger(L, r->st.perm);
		lua_setfield(L, -2, "perm");
		lua_pushstring(L, lvm_entry_names[r->st.type]);
		lua_setfield(L, -2, "entry_type");
		break;
	case GB_LISTDIR:
		lua_createtable(L, (int)r->nents, 0);
		for (size_t i = 0; i < r->nents; i++) {
			lua_createtable(L, 0, 2);
			lua_pushstring(L, r->ents[i].name);
			lua_setfield(L, -2, "name");
			lua_pushstring(L, lvm_entry_names[r->ents[i].type]);
			lua_setfield(L, -2, "entry_type");
			lua_rawseti(L, -2, (lua_Integer)i + 1);
		}
		break;
	case GB_SYSCALL:
		lua_createtable(L, 0, 4);
		lua_pushinteger(L, r->sys_ret);
		lua_setfield(L, -2, "ret");
		lua_pushinteger(L, r->sys_ret);
		lua_setfield(L, -2, "result");
		lua_pushinteger(L, r->sys_errno);
		lua_setfield(L, -2, "errno");
		lua_newtable(L);
		lua_setfield(L, -2, "out_bufs");
		break;
	default:
		lua_pushnil(L);
	}
}

/* vm:batch(fn) -> {{ok=v} | {err=msg}, ...} */
static int vm_batch(lua_State *L)
{
	struct lvm *v = lvm_check(L, 1);
	struct guest_batch_op *bops;
	struct guest_batch_res *res;
	size_t n;
	int ops_idx;
	char err[LVM_ERRLEN];

	luaL_checktype(L, 2, LUA_TFUNCTION);
	lvm_need_booted(L, v, "batch");
	lua_settop(L, 2);
	lua_newtable(L);                                    /* 3: b */
	lua_newtable(L);
	lua_setfield(L, 3, "_ops");
	for (int i = 0; batch_kinds[i]; i++) {
		lua_pushinteger(L, i);
		lua_pushcclosure(L, b_add, 1);
		lua_setfield(L, 3, batch_kinds[i]);
	}
	lua_pushvalue(L, 2);
	lua_pushvalue(L, 3);
	lua_call(L, 1, 0);
	lvm_need_booted(L, v, "batch");                     /* fn may have shut it down */
	lua_getfield(L, 3, "_ops");                         /* 4 */
	ops_idx = 4;
	n = (size_t)luaL_len(L, ops_idx);
	bops = lua_newuserdatauv(L, (n ? n : 1) * sizeof(*bops), 0);  /* 5 */
	memset(bops, 0, (n ? n : 1) * sizeof(*bops));
	for (size_t i = 0; i < n; i++) {
		struct guest_batch_op *o = &bops[i];
		int op, top;
		lua_rawgeti(L, ops_idx, (lua_Integer)i + 1);
		op = lua_gettop(L);
		lua_getfield(L, op, "kind");
		o->kind = (enum guest_batch_kind)lua_tointeger(L, -1);
		lua_pop(L, 1);
		o->perm = -1;
		for (int a = 1; a <= 3; a++)
			lua_rawgeti(L, op, a);                  /* op+1 .. op+3 */
		top = op + 3;
		switch (o->kind) {
		case GB_EXEC:
			lvm_build_req(L, v, false, op + 1, op + 2, &o->exec);  /* anchors on the stack */
			break;
		case GB_WRITE_FILE:
			o->path = lua_tostring(L, op + 1);
			o->data = lua_tolstring(L, op + 2, &o->len);
			break;
		case GB_RENAME:
			o->path = lua_tostring(L, op + 1);
			o->path2 = lua_tostring(L, op + 2);
			break;
		case GB_MKDIR:
			o->path = lua_tostring(L, op + 1);
			if (lua_isboolean(L, op + 2))
				o->parents = lua_toboolean(L, op + 2);
			if (lua_istable(L, op + 2)) {
				lua_getfield(L, op + 2, "parents");
				o->parents = lua_toboolean(L, -1);
				if (lua_getfield(L, op + 2, "perm") != LUA_TNIL) {
					if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 0 ||
					    lua_tointeger(L, -1) > 07777)
						return luaL_error(L, "batch: mkdir perm must be an integer in 0..4095");
					o->perm = (int)lua_tointeger(L, -1);
				}
				lua_pop(L, 2);
			}
			break;
		case GB_SYSCALL: {
			lua_Integer na;
			lua_getfield(L, op, "n");
			na = lua_tointeger(L, -1);
			lua_pop(L, 1);
			if (na < 1)
				return luaL_error(L, "batch: b:syscall needs nr");
			if (na > 7)
				na = 7;         /* nr and six args: the rest is dropped */
			lua_rawgeti(L, op, 1);
			o->nr = lua_tointeger(L, -1);
			lua_pop(L, 1);
			for (lua_Integer a = 2; a <= na; a++) {
				lua_rawgeti(L, op, a);
				o->args[a - 2] = lua_tointeger(L, -1);
				lua_pop(L, 1);
			}
			break;
		}
		default:
			o->path = lua_tostring(L, op + 1);
			break;
		}
		(void)top;
		/* Strings stay anchored: the op tables live in _ops at index 4,
		 * and exec's anchor tables stay on the stack. */
		luaL_checkstack(L, 8, "batch");
	}
	res = lua_newuserdatauv(L, (n ? n : 1) * sizeof(*res), 0);
	int res_idx = lua_gettop(L);
	if (guest_batch(v->ops, v->be, bops, n, res, err, sizeof err) < 0 && n == 0)
		return luaL_error(L, "vm `%s`: batch: %s", v->name, lvm_errtext(v, err));
	lua_createtable(L, (int)n, 0);
	for (size_t i = 0; i < n; i++) {
		lua_createtable(L, 0, 1);
		if (res[i].rc == 0) {
			lua_rawgeti(L, ops_idx, (lua_Integer)i + 1);
			push_batch_value(L, &bops[i], &res[i], lua_gettop(L));
			lua_remove(L, -2);
			lua_setfield(L, -2, "ok");
		} else if (res[i].rc == VMM_UNSUPPORTED) {
			lua_pushfstring(L, "%s is not supported by the %s backend%s",
			                batch_kinds[bops[i].kind], v->ops->name, v->ops->unsupported_hint);
			lua_setfield(L, -2, "err");
		} else {
			lua_pushstring(L, res[i].err);
			lua_setfield(L, -2, "err");
		}
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
	guest_batch_res_free(res, n);
	(void)res_idx;
	return 1;
}

void lvmops_register(lua_State *L)
{
	static const luaL_Reg pmeta[] = {{"__tostring", pending_tostring}, {NULL, NULL}};
	static const luaL_Reg pmethods[] = {{"await", pending_await}, {NULL, NULL}};
	lvm_new_class(L, PENDING_MT, pmeta, pmethods);
	lua_pop(L, 1);
	lua_pushcfunction(L, vm_syscall);
	lua_setfield(L, -2, "syscall");
	lua_pushcfunction(L, vm_read_mem);
	lua_setfield(L, -2, "read_mem");
	lua_pushcfunction(L, vm_ioctl);
	lua_setfield(L, -2, "ioctl");
	lua_pushcfunction(L, vm_batch);
	lua_setfield(L, -2, "batch");
}
