/* lstream.c — the Stream userdata ("provium.stream"): Tail (tail_file,
 * fd_stream, file:tail_stream, proc:stdout_stream/stderr_stream) and
 * ConsoleStream share this one type over a small transport vtable
 * (struct lstream_src in lvm_priv.h).
 *
 * State: open -> (transport EOF) -> eof; close from any state -> closed.
 * Bytes read past a read_until/expect match are kept as `pending` (user
 * value 2, a Lua string, so nothing malloc'd is held across a raise) and
 * come out first from the next next/read_until/drain. close drops them.
 *
 * Every stream is in its VM's live set (lvm_priv.h) and in the auto-close
 * walker (kind "stream") from the moment it is attached; close removes it
 * from the live set. The creation site is the first *.test.lua /
 * *.fixture.lua frame on the stack when the stream was created.
 *
 * Waits are bounded by the caller's timeout and by the test's deadline
 * (lruntime_deadline_ns); a passed deadline raises the test timeout. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lua.h>
#include <lauxlib.h>

#include "lua/lruntime.h"
#include "lua/lvm_priv.h"
#include "vmm/guest_ops.h"
#include "clock.h"

#define STREAM_MT "provium.stream"
#define DEFAULT_WAIT_NS 10000000000LL
#define DEFAULT_DRAIN_NS 500000000LL
/* A ConsoleStream's bare :next() waits its connect-time read timeout,
 * 50 ms (the streams reference); a per-call timeout applies to that call
 * only. Tails wait DEFAULT_WAIT_NS. */
#define CONSOLE_NEXT_NS 50000000LL

struct lstream {
	const struct lstream_src *src;
	void *ctx;                /* NULL when closed (or never attached) */
	struct lvm *vm;           /* uservalue 1 keeps it alive */
	char kind[32];
	char closed_msg[32];
	bool eof, closed;
	char site_file[256];      /* "" = no test frame */
	int site_line;
	int64_t seq;
};

static int64_t seq_counter;

static bool ends_with(const char *s, const char *suf)
{
	size_t n = strlen(s), m = strlen(suf);
	return n >= m && !strcmp(s + n - m, suf);
}

static void capture_site(lua_State *L, struct lstream *s)
{
	lua_Debug ar;
	for (int level = 1; lua_getstack(L, level, &ar); level++) {
		if (!lua_getinfo(L, "Sl", &ar) || ar.source[0] != '@')
			continue;
		if (ends_with(ar.source, ".test.lua") || ends_with(ar.source, ".fixture.lua")) {
			snprintf(s->site_file, sizeof s->site_file, "%s", ar.source + 1);
			s->site_line = ar.currentline;
			return;
		}
	}
}

void lstream_new(lua_State *L, int vm_idx, const char *kind, const char *detail,
                 const char *closed_msg)
{
	struct lstream *s;
	vm_idx = vm_idx ? lua_absindex(L, vm_idx) : 0;
	s = lua_newuserdatauv(L, sizeof(*s), 3);
	memset(s, 0, sizeof(*s));
	s->closed = true;         /* until attached */
	luaL_setmetatable(L, STREAM_MT);
	s->vm = vm_idx ? lvm_check(L, vm_idx) : NULL;
	snprintf(s->kind, sizeof s->kind, "%s", kind);
	snprintf(s->closed_msg, sizeof s->closed_msg, "%s", closed_msg);
	if (vm_idx) {
		lua_pushvalue(L, vm_idx);
		lua_setiuservalue(L, -2, 1);
	}
	lua_pushstring(L, detail);
	lua_setiuservalue(L, -2, 3);
	capture_site(L, s);
	s->seq = ++seq_counter;
}

void lstream_attach(lua_State *L, int idx, const struct lstream_src *src, void *ctx)
{
	struct lstream *s = luaL_checkudata(L, idx, STREAM_MT);
	idx = lua_absindex(L, idx);
	s->src = src;
	s->ctx = ctx;
	s->closed = false;
	if (s->vm)
		s->vm->open_streams++;
	if (s->vm) {
		lua_getiuservalue(L, idx, 1);        /* vm */
		lua_getiuservalue(L, -1, 2);         /* live set */
		if (lua_istable(L, -1)) {
			lua_pushvalue(L, idx);
			lua_pushboolean(L, 1);
			lua_rawset(L, -3);
		}
		lua_pop(L, 2);
	}
	lvm_register_resource(L, idx, "stream");
}

/* Close the transport; idempotent; never raises. */
static void stream_shut(lua_State *L, int idx, struct lstream *s)
{
	void *ctx = s->ctx;
	if (s->closed)
		return;
	s->closed = true;
	s->ctx = NULL;
	if (s->vm)
		s->vm->open_streams--;
	lua_pushnil(L);
	lua_setiuservalue(L, idx, 2);
	if (lua_getiuservalue(L, idx, 1) == LUA_TUSERDATA) {
		if (lua_getiuservalue(L, -1, 2) == LUA_TTABLE) {
			lua_pushvalue(L, idx);
			lua_pushnil(L);
			lua_rawset(L, -3);
		}
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
	if (ctx)
		s->src->close(ctx);
}

static struct lstream *checkstream(lua_State *L)
{
	return luaL_checkudata(L, 1, STREAM_MT);
}

static int64_t opt_timeout(lua_State *L, int idx, int64_t def, const char *what)
{
	if (lua_isnoneornil(L, idx))
		return def;
	return lvm_check_duration(L, idx, what);
}

/* Pull one chunk within [now, end]. 1 = chunk pushed, 0 = timeout, 2 = EOF.
 * Raises on transport errors and when the test's deadline passes. */
static int pull(lua_State *L, struct lstream *s, int64_t end)
{
	for (;;) {
		int64_t now = mono_now_ns(), dl = lruntime_deadline_ns(), slice = end - now;
		char *data = NULL, err[LVM_ERRLEN];
		size_t len = 0;
		bool eof = false;
		int rc;
		if (slice < 0)
			slice = 0;
		if (dl > 0 && dl - now < slice)
			slice = dl - now > 0 ? dl - now : 0;
		rc = s->src->next(s->ctx, slice, &data, &len, &eof, err, sizeof err);
		if (rc < 0)
			luaL_error(L, "%s: %s", s->kind, err);
		if (rc > 0 && eof) {
			free(data);
			s->eof = true;
			return 2;
		}
		if (rc > 0) {
			lua_pushlstring(L, data, len); /* may raise on OOM: free first */
			free(data);
			return 1;
		}
		if (dl > 0 && mono_now_ns() >= dl)
			lruntime_check_deadline(L);
		if (mono_now_ns() >= end)
			return 0;
	}
}

/* Push the pending bytes ("" when none) and clear them. */
static void take_pending(lua_State *L)
{
	if (lua_getiuservalue(L, 1, 2) != LUA_TSTRING) {
		lua_pop(L, 1);
		lua_pushliteral(L, "");
	}
	lua_pushnil(L);
	lua_setiuservalue(L, 1, 2);
}

/* :next([timeout]) -> string or nil (EOF, timeout, closed) */
static int s_next(lua_State *L)
{
	struct lstream *s = checkstream(L);
	int64_t t = opt_timeout(L, 2, strcmp(s->kind, "console") ? DEFAULT_WAIT_NS : CONSOLE_NEXT_NS,
	                        "next: timeout");
	if (s->closed) {
		lua_pushnil(L);
		return 1;
	}
	take_pending(L);
	if (lua_rawlen(L, -1) > 0)
		return 1;
	lua_pop(L, 1);
	if (s->eof || pull(L, s, mono_now_ns() + t) != 1)
		lua_pushnil(L);
	return 1;
}

/* Shared by read_until (keep = true) and expect. */
static int until(lua_State *L, bool keep, const char *method)
{
	struct lstream *s = checkstream(L);
	size_t plen;
	const char *pat = luaL_checklstring(L, 2, &plen);
	int64_t end = mono_now_ns() + opt_timeout(L, 3, DEFAULT_WAIT_NS, "timeout");
	luaL_argcheck(L, plen > 0, 2, "pattern must not be empty");
	if (s->closed)
		return luaL_error(L, "%s", s->closed_msg);
	lua_settop(L, 3);
	take_pending(L);                              /* 4: accumulated */
	for (;;) {
		size_t blen;
		const char *buf = lua_tolstring(L, 4, &blen);
		const char *hit = blen >= plen ? memmem(buf, blen, pat, plen) : NULL;
		int rc;
		if (hit) {
			size_t cut = (size_t)(hit - buf) + plen;
			if (cut < blen) {
				lua_pushlstring(L, buf + cut, blen - cut);
				lua_setiuservalue(L, 1, 2);
			}
			if (!keep)
				return 0;
			lua_pushlstring(L, buf, cut);
			return 1;
		}
		rc = s->eof ? 2 : pull(L, s, end);
		if (rc == 1) {
			lua_concat(L, 2);
			continue;
		}
		lua_pushvalue(L, 4);                  /* keep what we got */
		lua_setiuservalue(L, 1, 2);
		if (rc == 2)
			return luaL_error(L, "%s: stream EOF before `%s` appeared", method, pat);
		return luaL_error(L, "%s timed out waiting for `%s`", method, pat);
	}
}

static int s_read_until(lua_State *L) { return until(L, true, "read_until"); }
static int s_expect(lua_State *L) { return until(L, false, "expect"); }

/* :drain([timeout]) -> array of chunks */
static int s_drain(lua_State *L)
{
	struct lstream *s = checkstream(L);
	int64_t end = mono_now_ns() + opt_timeout(L, 2, DEFAULT_DRAIN_NS, "drain: timeout");
	int n = 0;
	lua_settop(L, 2);
	lua_newtable(L);                              /* 3 */
	if (s->closed)
		return 1;
	take_pending(L);
	if (lua_rawlen(L, -1) > 0)
		lua_rawseti(L, 3, ++n);
	else
		lua_pop(L, 1);
	while (!s->eof && !s->closed && pull(L, s, end) == 1)
		lua_rawseti(L, 3, ++n);
	return 1;
}

static int s_close(lua_State *L)
{
	stream_shut(L, 1, checkstream(L));
	return 0;
}

static int s_eof(lua_State *L)
{
	struct lstream *s = checkstream(L);
	bool pending = false;
	if (lua_getiuservalue(L, 1, 2) == LUA_TSTRING && lua_rawlen(L, -1) > 0)
		pending = true;
	lua_pushboolean(L, (s->eof || s->closed) && !pending);
	return 1;
}

static void push_site(lua_State *L, const struct lstream *s)
{
	if (!s->site_file[0]) {
		lua_pushnil(L);
		return;
	}
	lua_createtable(L, 0, 2);
	lua_pushstring(L, s->site_file);
	lua_setfield(L, -2, "file");
	lua_pushinteger(L, s->site_line);
	lua_setfield(L, -2, "line");
}

static int s_creation_site(lua_State *L)
{
	push_site(L, checkstream(L));
	return 1;
}

static int s_kind(lua_State *L)
{
	lua_pushstring(L, checkstream(L)->kind);
	return 1;
}

static int s_detail(lua_State *L)
{
	checkstream(L);
	lua_getiuservalue(L, 1, 3);
	return 1;
}

static int s_is_closed(lua_State *L)
{
	lua_pushboolean(L, checkstream(L)->closed);
	return 1;
}

/* "tail_file(/var/log/x) at tests/a.test.lua:42" */
static int s_tostring(lua_State *L)
{
	struct lstream *s = checkstream(L);
	lua_getiuservalue(L, 1, 3);
	if (s->site_file[0])
		lua_pushfstring(L, "%s(%s) at %s:%d%s", s->kind, lua_tostring(L, -1), s->site_file,
		                s->site_line, s->closed ? " (closed)" : "");
	else
		lua_pushfstring(L, "%s(%s)%s", s->kind, lua_tostring(L, -1),
		                s->closed ? " (closed)" : "");
	return 1;
}

static int s_gc(lua_State *L)
{
	struct lstream *s = checkstream(L);
	if (!s->closed) {
		void *ctx = s->ctx;
		s->closed = true;
		s->ctx = NULL;
		if (s->vm)
			s->vm->open_streams--;
		if (ctx)
			s->src->close(ctx);
	}
	return 0;
}

void lstream_close_all(lua_State *L, int vm_idx, bool keep_console)
{
	vm_idx = lua_absindex(L, vm_idx);
	if (lua_getiuservalue(L, vm_idx, 2) != LUA_TTABLE) {
		lua_pop(L, 1);
		return;
	}
	/* Collect first: closing edits the set. */
	lua_newtable(L);
	int n = 0;
	lua_pushnil(L);
	while (lua_next(L, -3)) {
		lua_pop(L, 1);
		lua_pushvalue(L, -1);
		lua_rawseti(L, -3, ++n);
	}
	for (int i = 1; i <= n; i++) {
		lua_rawgeti(L, -1, i);
		struct lstream *s = luaL_testudata(L, -1, STREAM_MT);
		/* A console stream outlives its guest: it delivers what the
		 * guest wrote up to its end, then EOF (lconsole.c). */
		if (s && !(keep_console && !strcmp(s->kind, "console")))
			stream_shut(L, lua_gettop(L), s);
		lua_pop(L, 1);
	}
	lua_pop(L, 2);
}

int lstream_live(lua_State *L)
{
	int n = 0;
	lvm_check(L, 1);
	lua_newtable(L);                              /* 2: out */
	if (lua_getiuservalue(L, 1, 2) != LUA_TTABLE)  /* 3 */
		return lua_pop(L, 1), 1;
	lua_pushnil(L);
	while (lua_next(L, 3)) {
		struct lstream *s = luaL_testudata(L, -2, STREAM_MT);
		lua_pop(L, 1);
		if (!s || s->closed)
			continue;
		lua_createtable(L, 0, 4);
		lua_pushstring(L, s->kind);
		lua_setfield(L, -2, "kind");
		lua_getiuservalue(L, -2, 3);
		lua_setfield(L, -2, "detail");
		push_site(L, s);
		lua_setfield(L, -2, "site");
		lua_pushinteger(L, s->seq);
		lua_setfield(L, -2, "seq");
		lua_pushvalue(L, -2);
		lua_setfield(L, -2, "stream");
		lua_rawseti(L, 2, ++n);
	}
	lua_pop(L, 1);
	/* creation order */
	for (int i = 2; i <= n; i++)
		for (int j = i; j > 1; j--) {
			lua_rawgeti(L, 2, j - 1);
			lua_getfield(L, -1, "seq");
			lua_rawgeti(L, 2, j);
			lua_getfield(L, -1, "seq");
			bool swap = lua_tointeger(L, -1) < lua_tointeger(L, -3);
			lua_pop(L, 1);
			lua_remove(L, -2);
			if (!swap) {
				lua_pop(L, 2);
				break;
			}
			lua_rawseti(L, 2, j - 1);
			lua_rawseti(L, 2, j);
		}
	return 1;
}

/* ---- guest / backend streams (guest_ops.h) ---------------------------- */

static int g_next(void *ctx, int64_t timeout_ns, char **data, size_t *len, bool *eof,
                  char *err, size_t errlen)
{
	return guest_stream_next(ctx, timeout_ns, data, len, eof, err, errlen);
}

static void g_close(void *ctx)
{
	guest_stream_close(ctx);
}

static const struct lstream_src guest_src = {g_next, g_close};

void lstream_push_guest(lua_State *L, int vm_idx, const struct vmm_stream_req *r,
                        const char *kind, const char *detail, const char *op)
{
	struct lvm *v = lvm_check(L, vm_idx);
	struct guest_stream *gs;
	char err[LVM_ERRLEN];
	int rc;
	vm_idx = lua_absindex(L, vm_idx);
	lvm_need_booted(L, v, op);
	lstream_new(L, vm_idx, kind, detail, "stream closed");
	rc = guest_stream_open(v->ops, v->be, r, &gs, err, sizeof err);
	if (rc == VMM_UNSUPPORTED)
		lvm_unsupported(L, v, op);
	if (rc < 0)
		luaL_error(L, "vm `%s`: %s `%s`: %s", v->name, op, detail, lvm_errtext(v, err));
	lstream_attach(L, -1, &guest_src, gs);
}

static const luaL_Reg stream_methods[] = {
	{"next", s_next}, {"read_until", s_read_until}, {"expect", s_expect},
	{"drain", s_drain}, {"close", s_close}, {"eof", s_eof},
	{"creation_site", s_creation_site}, {"kind", s_kind}, {"detail", s_detail},
	{"is_closed", s_is_closed}, {NULL, NULL}
};

static const luaL_Reg stream_meta[] = {
	{"__gc", s_gc}, {"__close", s_close}, {"__tostring", s_tostring}, {NULL, NULL}
};

void lstream_register(lua_State *L)
{
	luaL_newmetatable(L, STREAM_MT);
	luaL_setfuncs(L, stream_meta, 0);
	lua_newtable(L);
	luaL_setfuncs(L, stream_methods, 0);
	lua_setfield(L, -2, "__index");
	lua_pop(L, 1);
}
