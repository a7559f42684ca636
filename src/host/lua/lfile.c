/* lfile.c — the VM's file ops and the File handle ("provium.file"):
 * vm:read_file, write_file, push_file, stat, exists, listdir, mkdir,
 * unlink, rename and open_file, the File methods (read, read_all, write,
 * seek, tell, fd, close, tail_stream), and the streams that follow a
 * guest file: vm:tail_file and vm:fd_stream.
 *
 * Every op needs a Booted VM and goes to the backend's op of the same name
 * (vmm.h); a backend without it makes the op raise "not supported". Errors
 * raise "vm `a`: <op> `<path>`: <backend error>". vm:push_file resolves a
 * relative host path against the directory of the calling Lua file.
 *
 * A File holds its VM in uservalue 1 and its guest path in uservalue 2;
 * it is created (closed) before the backend file is opened, counts in
 * vm:open_file_count() while open, is listed in the VM's handle table
 * (uservalue 3, when present) for vm:fd_stream(handle) unless a worker
 * opened it (its handle is that worker's fd), and is handed to
 * lab.lua's auto-close registry. close and __gc are the same idempotent
 * function. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lua.h>
#include <lauxlib.h>

#include "lua/lvm_priv.h"
#include "vmm/vmm.h"

/* ---- VM: file ops ---------------------------------------------------- */

#define OPCALL(v, op, ...) \
	((v)->ops->op ? (v)->ops->op((v)->be, __VA_ARGS__) : VMM_UNSUPPORTED)

/* Raises (never returns): callers' out-parameters stay unset after it. */
__attribute__((noreturn))
static void op_fail(lua_State *L, struct lvm *v, int rc, const char *op,
                    const char *path, const char *err)
{
	if (rc == VMM_UNSUPPORTED)
		lvm_unsupported(L, v, op);
	luaL_error(L, "vm `%s`: %s `%s`: %s", v->name, op, path, err);
	__builtin_unreachable();
}

static int vm_read_file(lua_State *L)
{
	struct lvm *v = lvm_check(L, 1);
	const char *path = luaL_checkstring(L, 2);
	char *data, err[LVM_ERRLEN];
	size_t len;
	int rc;
	lvm_need_booted(L, v, "read_file");
	rc = OPCALL(v, read_file, path, &data, &len, err, sizeof err);
	if (rc != 0)
		op_fail(L, v, rc, "read_file", path, err);
	lua_pushlstring(L, data, len);
	free(data);
	return 1;
}

static int vm_write_file(lua_State *L)
{
	struct lvm *v = lvm_check(L, 1);
	const char *path = luaL_checkstring(L, 2);
	size_t len;
	const char *data = luaL_checklstring(L, 3, &len);
	char err[LVM_ERRLEN];
	int rc;
	lvm_need_booted(L, v, "write_file");
	rc = OPCALL(v, write_file, path, data, len, err, sizeof err);
	if (rc != 0)
		op_fail(L, v, rc, "write_file", path, err);
	return 0;
}

/* Push the absolute directory of the Lua file that called the running C
 * function: the first stack frame whose chunk came from a file ("@..."),
 * skipping C functions and the embedded preludes ("=[provium ...]"). The
 * runner and the fixture builder load the file itself as "@<display or
 * root-relative path>" (== _provium_file), which maps to
 * _provium_file_dir; require'd helpers carry the path package.path gave
 * them (absolute under the file's dir and the roots; relative to the
 * working directory for a "./?.lua" entry). Pushes nil when no frame says. */
static void push_caller_dir(lua_State *L)
{
	lua_Debug ar;
	const char *file = lvm_global_string(L, "_provium_file");
	for (int level = 1; lua_getstack(L, level, &ar); level++) {
		const char *src, *slash;
		char buf[PATH_MAX];
		if (!lua_getinfo(L, "S", &ar) || !ar.source || ar.source[0] != '@')
			continue;
		src = ar.source + 1;
		if (file && !strcmp(src, file)) {
			lua_getglobal(L, "_provium_file_dir");
			if (lua_isstring(L, -1))
				return;
			lua_pop(L, 1);
		}
		slash = strrchr(src, '/');
		if (!slash) {
			lua_pushstring(L, getcwd(buf, sizeof buf) ? buf : ".");
			return;
		}
		if (slash == src) {
			lua_pushliteral(L, "/");
			return;
		}
		lua_pushlstring(L, src, (size_t)(slash - src));
		if (src[0] != '/' && realpath(lua_tostring(L, -1), buf)) {
			lua_pop(L, 1);
			lua_pushstring(L, buf);
		}
		return;
	}
	lua_pushnil(L);
}

/* vm:push_file(host_path, guest_path[, opts]): a relative host path is
 * resolved against the directory of the Lua file making the call (the
 * test file, the fixture, or a require'd helper), as the fixture cache
 * key does (fixture/key.c). */
static int vm_push_file(lua_State *L)
{
	struct lvm *v = lvm_check(L, 1);
	const char *host = luaL_checkstring(L, 2);
	const char *guest = luaL_checkstring(L, 3);
	luaL_Buffer b;
	FILE *f;
	char err[LVM_ERRLEN];
	int rc;
	lvm_need_booted(L, v, "push_file");
	if (host[0] != '/') {
		push_caller_dir(L);
		if (lua_isnil(L, -1)) {
			lua_pop(L, 1);
			lua_getglobal(L, "_provium_file_dir");
		}
		if (lua_isstring(L, -1))
			lua_pushfstring(L, "%s/%s", lua_tostring(L, -1), host);
		else
			lua_pushstring(L, host);
		lua_remove(L, -2);
	} else {
		lua_pushstring(L, host);
	}
	f = fopen(lua_tostring(L, -1), "rbe");
	if (!f)
		return luaL_error(L, "vm `%s`: push_file: open `%s`: %s", v->name,
		                  lua_tostring(L, -1), strerror(errno));
	luaL_buffinit(L, &b);
	for (;;) {
		char *p = luaL_prepbuffer(&b);
		size_t n = fread(p, 1, LUAL_BUFFERSIZE, f);
		luaL_addsize(&b, n);
		if (n < LUAL_BUFFERSIZE)
			break;
	}
	if (ferror(f)) {
		int e = errno;
		fclose(f);
		return luaL_error(L, "vm `%s`: push_file: read `%s`: %s", v->name, host, strerror(e));
	}
	fclose(f);
	luaL_pushresult(&b);
	{
		size_t len;
		const char *data = lua_tolstring(L, -1, &len);
		rc = OPCALL(v, write_file, guest, data, len, err, sizeof err);
	}
	if (rc != 0)
		op_fail(L, v, rc, "push_file", guest, err);
	return 0;
}

const char *const lvm_entry_names[] = {"file", "directory", "symlink", "fifo",
	"socket", "block_device", "char_device", "other"};

static int vm_stat(lua_State *L)
{
	struct lvm *v = lvm_check(L, 1);
	const char *path = luaL_checkstring(L, 2);
	struct vmm_stat st;
	char err[LVM_ERRLEN];
	int rc;
	lvm_need_booted(L, v, "stat");
	rc = OPCALL(v, stat, path, &st, err, sizeof err);
	if (rc != 0)
		op_fail(L, v, rc, "stat", path, err);
	lua_createtable(L, 0, 5);
	lua_pushinteger(L, (lua_Integer)st.size);
	lua_setfield(L, -2, "size");
	lua_pushnumber(L, (double)st.mtime_ns / 1e9);
	lua_setfield(L, -2, "mtime");
	lua_pushinteger(L, st.mtime_ns);
	lua_setfield(L, -2, "mtime_ns");
	lua_pushinteger(L, st.perm);
	lua_setfield(L, -2, "perm");
	lua_pushstring(L, lvm_entry_names[st.type]);
	lua_setfield(L, -2, "entry_type");
	return 1;
}

/* vm:exists(path) -> bool (false only for "no such file"). */
static int vm_exists(lua_State *L)
{
	struct lvm *v = lvm_check(L, 1);
	const char *path = luaL_checkstring(L, 2);
	struct vmm_stat st;
	char err[LVM_ERRLEN];
	int rc;
	lvm_need_booted(L, v, "exists");
	errno = 0;
	rc = OPCALL(v, stat, path, &st, err, sizeof err);
	if (rc == -1 && (errno == ENOENT || errno == ENOTDIR)) {
		lua_pushboolean(L, 0);
		return 1;
	}
	if (rc != 0)
		op_fail(L, v, rc, "exists", path, err);
	lua_pushboolean(L, 1);
	return 1;
}

static int vm_listdir(lua_State *L)
{
	struct lvm *v = lvm_check(L, 1);
	const char *path = luaL_checkstring(L, 2);
	struct vmm_dirent *ents;
	size_t n;
	char err[LVM_ERRLEN];
	int rc;
	lvm_need_booted(L, v, "listdir");
	rc = OPCALL(v, listdir, path, &ents, &n, err, sizeof err);
	if (rc != 0)
		op_fail(L, v, rc, "listdir", path, err);
	/* Copy the names out first: nothing below may raise while ents lives,
	 * except out-of-memory, which Lua reports by unwinding anyway. */
	lua_createtable(L, (int)n, 0);
	for (size_t i = 0; i < n; i++) {
		lua_createtable(L, 0, 2);
		lua_pushstring(L, ents[i].name);
		lua_setfield(L, -2, "name");
		lua_pushstring(L, lvm_entry_names[ents[i].type]);
		lua_setfield(L, -2, "entry_type");
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
	vmm_dirents_free(ents, n);
	return 1;
}

static int vm_mkdir(lua_State *L)
{
	struct lvm *v = lvm_check(L, 1);
	const char *path = luaL_checkstring(L, 2);
	bool parents = false;
	int perm = -1, rc;
	char err[LVM_ERRLEN];
	if (!lua_isnoneornil(L, 3)) {
		luaL_checktype(L, 3, LUA_TTABLE);
		lua_getfield(L, 3, "parents");
		parents = lua_toboolean(L, -1);
		if (lua_getfield(L, 3, "perm") != LUA_TNIL) {
			if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 0 || lua_tointeger(L, -1) > 07777)
				return luaL_error(L, "vm `%s`: mkdir: perm must be an integer in 0..4095", v->name);
			perm = (int)lua_tointeger(L, -1);
		}
	}
	lvm_need_booted(L, v, "mkdir");
	rc = OPCALL(v, mkdir, path, parents, perm, err, sizeof err);
	if (rc != 0)
		op_fail(L, v, rc, "mkdir", path, err);
	return 0;
}

static int vm_unlink(lua_State *L)
{
	struct lvm *v = lvm_check(L, 1);
	const char *path = luaL_checkstring(L, 2);
	char err[LVM_ERRLEN];
	int rc;
	lvm_need_booted(L, v, "unlink");
	rc = OPCALL(v, unlink, path, err, sizeof err);
	if (rc != 0)
		op_fail(L, v, rc, "unlink", path, err);
	return 0;
}

static int vm_rename(lua_State *L)
{
	struct lvm *v = lvm_check(L, 1);
	const char *from = luaL_checkstring(L, 2);
	const char *to = luaL_checkstring(L, 3);
	char err[LVM_ERRLEN];
	int rc;
	lvm_need_booted(L, v, "rename");
	rc = OPCALL(v, rename, from, to, err, sizeof err);
	if (rc != 0)
		op_fail(L, v, rc, "rename", from, err);
	return 0;
}

/* ---- File ------------------------------------------------------------ */

static struct lfile *checkfile(lua_State *L)
{
	struct lfile *f = luaL_checkudata(L, 1, FILE_MT);
	if (!f->f)
		luaL_error(L, "file is closed");
	return f;
}

static int vm_open_file(lua_State *L)
{
	struct lvm *v = lvm_check(L, 1);
	const char *path = luaL_checkstring(L, 2);
	static const struct { const char *k; int bit; } bits[] = {
		{"read", VMM_O_READ}, {"write", VMM_O_WRITE}, {"create", VMM_O_CREATE},
		{"truncate", VMM_O_TRUNCATE}, {"append", VMM_O_APPEND},
		{"exclusive", VMM_O_EXCLUSIVE},
	};
	int mode = 0, perm = -1, rc;
	struct lfile *f;
	char err[LVM_ERRLEN];

	luaL_checktype(L, 3, LUA_TTABLE);
	for (size_t i = 0; i < sizeof bits / sizeof bits[0]; i++) {
		lua_getfield(L, 3, bits[i].k);
		if (lua_toboolean(L, -1))
			mode |= bits[i].bit;
		lua_pop(L, 1);
	}
	if (lua_getfield(L, 3, "perm") != LUA_TNIL) {
		if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 0 || lua_tointeger(L, -1) > 07777)
			return luaL_error(L, "vm `%s`: open_file: perm must be an integer in 0..4095", v->name);
		perm = (int)lua_tointeger(L, -1);
	}
	lua_pop(L, 1);
	if (!(mode & (VMM_O_READ | VMM_O_WRITE | VMM_O_APPEND)))
		return luaL_error(L, "vm `%s`: open_file `%s`: the mode table needs at least one "
		                  "of read, write or append set to true (e.g. {read=true})",
		                  v->name, path);
	lvm_need_booted(L, v, "open_file");
	f = lua_newuserdatauv(L, sizeof(*f), 2);
	memset(f, 0, sizeof(*f));
	luaL_setmetatable(L, FILE_MT);
	lua_pushvalue(L, 1);
	lua_setiuservalue(L, -2, 1);
	lua_pushvalue(L, 2);
	lua_setiuservalue(L, -2, 2);
	f->ops = v->ops;
	f->vm = v;
	rc = OPCALL(v, open, path, mode, perm, &f->f, err, sizeof err);
	if (rc != 0)
		op_fail(L, v, rc, "open_file", path, err);
	v->open_files++;
	/* Only the agent's own files: a worker's file (worker:open_file) is
	 * an fd of that worker, its number may equal one of the agent's. */
	if (!f->ops->file_route || f->ops->file_route(f->f) == 0) {
		if (lua_getiuservalue(L, 1, 3) == LUA_TTABLE) {
			lua_pushvalue(L, -2);
			lua_rawseti(L, -2, (lua_Integer)f->ops->file_handle(f->f));
		}
		lua_pop(L, 1);
	}
	lvm_register_resource(L, -1, "file");
	return 1;
}

static int file_read(lua_State *L)
{
	struct lfile *f = checkfile(L);
	lua_Integer n = luaL_checkinteger(L, 2);
	luaL_Buffer b;
	size_t got;
	char err[LVM_ERRLEN];
	luaL_argcheck(L, n >= 0, 2, "byte count must be non-negative");
	lvm_need_booted(L, f->vm, "read from a file");
	char *p = luaL_buffinitsize(L, &b, (size_t)n);
	if (f->ops->file_read(f->f, p, (size_t)n, &got, err, sizeof err) < 0)
		return luaL_error(L, "file read: %s", err);
	luaL_pushresultsize(&b, got);
	return 1;
}

static int file_read_all(lua_State *L)
{
	struct lfile *f = checkfile(L);
	luaL_Buffer b;
	char err[LVM_ERRLEN];
	lvm_need_booted(L, f->vm, "read from a file");
	luaL_buffinit(L, &b);
	for (;;) {
		size_t got;
		char *p = luaL_prepbuffsize(&b, 65536);
		if (f->ops->file_read(f->f, p, 65536, &got, err, sizeof err) < 0)
			return luaL_error(L, "file read: %s", err);
		if (got == 0)
			break;
		luaL_addsize(&b, got);
	}
	luaL_pushresult(&b);
	return 1;
}

static int file_write(lua_State *L)
{
	struct lfile *f = checkfile(L);
	size_t len, put;
	const char *data = luaL_checklstring(L, 2, &len);
	char err[LVM_ERRLEN];
	lvm_need_booted(L, f->vm, "write to a file");
	if (f->ops->file_write(f->f, data, len, &put, err, sizeof err) < 0)
		return luaL_error(L, "file write: %s", err);
	lua_pushinteger(L, (lua_Integer)put);
	return 1;
}

static int file_seek(lua_State *L)
{
	struct lfile *f = checkfile(L);
	lua_Integer off = luaL_optinteger(L, 2, 0);
	const char *w = luaL_optstring(L, 3, "set");
	enum vmm_whence wh;
	int64_t pos;
	char err[LVM_ERRLEN];
	if (!strcmp(w, "set")) wh = VMM_SEEK_SET;
	else if (!strcmp(w, "cur")) wh = VMM_SEEK_CUR;
	else if (!strcmp(w, "end")) wh = VMM_SEEK_END;
	else return luaL_error(L, "seek: whence must be set/cur/end, got `%s`", w);
	lvm_need_booted(L, f->vm, "seek a file");
	if (f->ops->file_seek(f->f, off, wh, &pos, err, sizeof err) < 0)
		return luaL_error(L, "file seek: %s", err);
	lua_pushinteger(L, pos);
	return 1;
}

static int file_tell(lua_State *L)
{
	struct lfile *f = checkfile(L);
	int64_t pos;
	char err[LVM_ERRLEN];
	lvm_need_booted(L, f->vm, "tell a file");
	if (f->ops->file_seek(f->f, 0, VMM_SEEK_CUR, &pos, err, sizeof err) < 0)
		return luaL_error(L, "file tell: %s", err);
	lua_pushinteger(L, pos);
	return 1;
}

static int file_fd(lua_State *L)
{
	struct lfile *f = luaL_checkudata(L, 1, FILE_MT);
	lua_pushinteger(L, f->f ? (lua_Integer)f->ops->file_handle(f->f) : 0);
	return 1;
}

static int file_close(lua_State *L)
{
	struct lfile *f = luaL_checkudata(L, 1, FILE_MT);
	if (f->f) {
		struct vmm_file *h = f->f;
		f->f = NULL;
		f->ops->file_close(h);
		f->vm->open_files--;
	}
	return 0;
}

/* Streams over an open file: file:tail_stream() and vm:fd_stream(). */
static void push_fd_stream(lua_State *L, int vm_idx, int file_idx, const char *kind,
                           const char *op)
{
	struct lfile *f = luaL_checkudata(L, file_idx, FILE_MT);
	struct vmm_stream_req r = {.kind = VMM_STREAM_FD};
	vm_idx = lua_absindex(L, vm_idx);
	if (!f->f)
		luaL_error(L, "file is closed");
	r.file = f->f;
	lua_getiuservalue(L, file_idx, 2);
	lstream_push_guest(L, vm_idx, &r, kind, lua_tostring(L, -1), op);
	lua_remove(L, -2);
}

static int file_tail_stream(lua_State *L)
{
	checkfile(L);
	lua_getiuservalue(L, 1, 1);
	push_fd_stream(L, -1, 1, "file_tail_stream", "file:tail_stream");
	return 1;
}

/* vm:fd_stream(file_or_handle) */
static int vm_fd_stream(lua_State *L)
{
	struct lvm *v = lvm_check(L, 1);
	if (!v->ops->agent && !v->ops->stream_open)
		return lvm_unsupported(L, v, "fd_stream");
	if (lua_isinteger(L, 2)) {
		/* A handle id from file:fd(): find the live File it names. */
		lua_Integer h = lua_tointeger(L, 2);
		struct lfile *f = NULL;
		if (lua_getiuservalue(L, 1, 3) == LUA_TTABLE) {
			lua_rawgeti(L, -1, h);
			f = luaL_testudata(L, -1, FILE_MT);
		}
		if (!f || !f->f)
			return luaL_error(L, "vm `%s`: fd_stream: no open file with handle %d "
			                  "(pass the File itself, or file:fd() of a file that is "
			                  "still open)", v->name, (int)h);
		lua_replace(L, 2);
	}
	if (!luaL_testudata(L, 2, FILE_MT))
		return luaL_error(L, "vm `%s`: fd_stream: expected a File or an integer handle "
		                  "(file:fd()), got %s", v->name, luaL_typename(L, 2));
	push_fd_stream(L, 1, 2, "fd_stream", "fd_stream");
	return 1;
}

/* vm:tail_file(path[, {start = "end" | "beginning" | "start" | offset}]) */
static int vm_tail_file(lua_State *L)
{
	struct lvm *v = lvm_check(L, 1);
	const char *path = luaL_checkstring(L, 2);
	struct vmm_stream_req r = {.kind = VMM_STREAM_TAIL, .start = VMM_TAIL_END};
	r.path = path;
	if (!lua_isnoneornil(L, 3)) {
		luaL_checktype(L, 3, LUA_TTABLE);
		lua_pushnil(L);
		while (lua_next(L, 3)) {
			lua_pop(L, 1);
			if (lua_type(L, -1) != LUA_TSTRING || strcmp(lua_tostring(L, -1), "start"))
				return luaL_error(L, "vm `%s`: tail_file: unknown opt `%s` (expected start)",
				                  v->name, luaL_tolstring(L, -1, NULL));
		}
		switch (lua_getfield(L, 3, "start")) {
		case LUA_TNIL:
			break;
		case LUA_TSTRING: {
			const char *st = lua_tostring(L, -1);
			if (!strcmp(st, "beginning") || !strcmp(st, "start"))
				r.start = VMM_TAIL_BEGINNING;
			else if (strcmp(st, "end"))
				return luaL_error(L, "vm `%s`: tail_file: start must be \"end\", "
				                  "\"beginning\" or a byte offset, got `%s`", v->name, st);
			break;
		}
		case LUA_TNUMBER: {
			double d = lua_tonumber(L, -1);
			if (lua_isinteger(L, -1)) {
				r.offset = lua_tointeger(L, -1);
			} else {
				if (!isfinite(d) || d > 9.2e18 || d < -9.2e18)
					return luaL_error(L, "vm `%s`: tail_file: start offset must be finite",
					                  v->name);
				r.offset = (int64_t)d;   /* truncates toward zero */
			}
			r.start = VMM_TAIL_OFFSET;
			break;
		}
		default:
			return luaL_error(L, "vm `%s`: tail_file: start must be \"end\", \"beginning\" "
			                  "or a byte offset, got %s", v->name, luaL_typename(L, -1));
		}
		lua_pop(L, 1);
	}
	lstream_push_guest(L, 1, &r, "tail_file", path, "tail_file");
	return 1;
}

static int file_tostring(lua_State *L)
{
	struct lfile *f = luaL_checkudata(L, 1, FILE_MT);
	lua_getiuservalue(L, 1, 2);
	lua_pushfstring(L, "file `%s`%s", lua_tostring(L, -1), f->f ? "" : " (closed)");
	return 1;
}

/* ---- registration ---------------------------------------------------- */

static const luaL_Reg file_vm_methods[] = {
	{"read_file", vm_read_file}, {"write_file", vm_write_file},
	{"push_file", vm_push_file}, {"stat", vm_stat}, {"exists", vm_exists},
	{"listdir", vm_listdir}, {"mkdir", vm_mkdir}, {"unlink", vm_unlink},
	{"rename", vm_rename}, {"open_file", vm_open_file},
	{"tail_file", vm_tail_file}, {"fd_stream", vm_fd_stream}, {NULL, NULL}
};

static const luaL_Reg file_methods[] = {
	{"read", file_read}, {"read_all", file_read_all}, {"write", file_write},
	{"seek", file_seek}, {"tell", file_tell}, {"fd", file_fd},
	{"close", file_close}, {"tail_stream", file_tail_stream}, {NULL, NULL}
};

static const luaL_Reg file_meta[] = {
	{"__gc", file_close}, {"__close", file_close}, {"__tostring", file_tostring}, {NULL, NULL}
};

void lfile_register(lua_State *L)
{
	luaL_setfuncs(L, file_vm_methods, 0);
	lvm_new_class(L, FILE_MT, file_meta, file_methods);
	lua_pop(L, 1);
}
