/* lruntime.c — the runner's C primitives for the Lua side (see lruntime.h).
 *
 * Owns three things:
 *   - event emission from Lua (_provium_emit): the payload table is packed
 *     as a msgpack map by hand at the top level, and a `meta` field is always
 *     a map (MetaMap), even when empty or array-shaped; every other value goes
 *     through lmsgpack's generic mapping;
 *   - the clocks and sleep the framework and the lab side use;
 *   - the per-test deadline. _provium_call_with_deadline arms a process-wide
 *     monotonic deadline and an instruction-count hook on the calling thread
 *     (coroutines created meanwhile inherit it), pcalls the body, then
 *     disarms both before any Lua instruction of the caller runs again. Once
 *     the deadline has passed, the hook raises "test timed out after Ns
 *     (at FILE:LINE[, in OP])" — the innermost user-file frame, and the
 *     blocking op a binding named via lruntime_check_deadline_in() — on
 *     every instruction from then on, so a body that swallows the error
 *     with pcall is raised at again until it unwinds; `fired` stays set so the caller marks the test
 *     failed even if the body eventually returns normally.
 *
 * States of the deadline: disarmed (deadline_ns == 0) -> armed -> fired
 * (armed, past due) -> disarmed. Nesting is refused.
 *
 * The same deadline also bounds the test scope's teardown
 * (_provium_call_teardown, `teardown` set): no hook (closes must run to
 * their end, freeing what they hold), blocking waits bound by it (the
 * bindings through lruntime_deadline_ns, agent ops through
 * agent_client_set_limit) and a wait it cuts only recorded, with the
 * op: "test timed out after 2s during teardown (in proc:close)". A VM's
 * shutdown is bounded on its own and not cut (qemu.c). */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>

#include "events.h"
#include "units.h"
#include "vmm/agent_client.h"
#include "lua/lmsgpack.h"
#include "lua/lruntime.h"

#define HOOK_COUNT 1000   /* instructions between deadline checks */

static struct {
	int64_t deadline_ns;  /* CLOCK_MONOTONIC ns; 0 = disarmed */
	bool fired;
	bool teardown;        /* _provium_call_teardown: record, never raise */
	char text[32];        /* "2s", "0.5s": the timeout as written in messages */
	char msg[512];        /* the full message, fixed when the deadline first fires */
} dl;

static int64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t lruntime_deadline_ns(void)
{
	return dl.deadline_ns;
}

/* Compose dl.msg: "test timed out after 2s", then where the body was —
 * the innermost frame from a user file (chunk "@...", which excludes the
 * embedded "=[provium ...]" preludes) and, when given, the blocking op
 * the deadline cut short: " (at tests/x.test.lua:12, in vm:run)". */
static void compose_message(lua_State *L, const char *op)
{
	lua_Debug ar;
	char where[400] = "";
	int n;

	for (int level = 0; lua_getstack(L, level, &ar); level++) {
		if (!lua_getinfo(L, "Sl", &ar) || !ar.source || ar.source[0] != '@' ||
		    ar.currentline <= 0)
			continue;
		snprintf(where, sizeof where, "at %s:%d", ar.source + 1, ar.currentline);
		break;
	}
	if (dl.teardown) {
		snprintf(dl.msg, sizeof dl.msg, "test timed out after %s during teardown%s%s%s",
			 dl.text, op ? " (in " : "", op ? op : "", op ? ")" : "");
		return;
	}
	n = snprintf(dl.msg, sizeof dl.msg, "test timed out after %s", dl.text);
	if (n < 0 || (size_t)n >= sizeof dl.msg || (!where[0] && !op))
		return;
	snprintf(dl.msg + n, sizeof dl.msg - (size_t)n, " (%s%s%s%s)", where,
		 where[0] && op ? ", " : "", op ? "in " : "", op ? op : "");
}

/* Raise the timeout error (never returns). The message is fixed by the
 * first firing: later ones (a body swallowing the error) repeat it. */
static void raise_timeout(lua_State *L, const char *op)
{
	if (!dl.fired)
		compose_message(L, op);
	dl.fired = true;
	lua_pushstring(L, dl.msg);
	lua_error(L);
}

void lruntime_check_deadline_in(lua_State *L, const char *op)
{
	if (dl.deadline_ns == 0 || clock_ns(CLOCK_MONOTONIC) < dl.deadline_ns)
		return;
	if (dl.teardown) {
		if (!dl.fired)
			compose_message(L, op);
		dl.fired = true;
		return;
	}
	raise_timeout(L, op);
}

void lruntime_check_deadline(lua_State *L)
{
	lruntime_check_deadline_in(L, NULL);
}

/* Once past due, check on every instruction: with the coarse count, a
 * body looping over pcall(busy) would be hit only inside the pcall. */
static void count_hook(lua_State *L, lua_Debug *ar)
{
	(void)ar;
	if (dl.deadline_ns != 0 && clock_ns(CLOCK_MONOTONIC) >= dl.deadline_ns) {
		lua_sethook(L, count_hook, LUA_MASKCOUNT, 1);
		raise_timeout(L, NULL);
	}
}

/* Format seconds the way users wrote them: "2s", "0.5s". */
static void format_secs(double s, char *buf, size_t len)
{
	if (s == floor(s) && s < 1e15)
		snprintf(buf, len, "%.0fs", s);
	else
		snprintf(buf, len, "%gs", s);
}

/* --- event emission ---------------------------------------------------- */

static int pack_map(msgpack_packer *pk, lua_State *L, int idx, char *err, size_t errlen);

/* Pack the value at idx; `as_map` forces a table to a map. 0 or -1. */
static int pack_value(msgpack_packer *pk, lua_State *L, int idx, bool as_map,
		      char *err, size_t errlen)
{
	if (as_map && lua_type(L, idx) == LUA_TTABLE)
		return pack_map(pk, L, idx, err, errlen);
	return lmp_pack(pk, L, idx, err, errlen);
}

/* Pack a table as a map with string keys (integer keys stringified). */
static int pack_map(msgpack_packer *pk, lua_State *L, int idx, char *err, size_t errlen)
{
	size_t n = 0;

	idx = lua_absindex(L, idx);
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		n++;
		lua_pop(L, 1);
	}
	msgpack_pack_map(pk, n);
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		char num[32];
		const char *k;
		bool meta;

		if (lua_type(L, -2) == LUA_TSTRING) {
			k = lua_tostring(L, -2);
		} else if (lua_isinteger(L, -2)) {
			snprintf(num, sizeof num, "%lld", (long long)lua_tointeger(L, -2));
			k = num;
		} else {
			snprintf(err, errlen, "map key of type %s", luaL_typename(L, -2));
			lua_pop(L, 2);
			return -1;
		}
		event_pack_str(pk, k);
		meta = strcmp(k, "meta") == 0;
		if (pack_value(pk, L, -1, meta, err, errlen) < 0) {
			lua_pop(L, 2);
			return -1;
		}
		lua_pop(L, 1);
	}
	return 0;
}

/* _provium_emit(kind, payload) */
static int l_emit(lua_State *L)
{
	int fd = (int)lua_tointeger(L, lua_upvalueindex(1));
	const char *kind = luaL_checkstring(L, 1);
	struct event_buf eb;
	char err[256];

	luaL_checktype(L, 2, LUA_TTABLE);
	event_begin(&eb, kind);
	if (pack_map(&eb.pk, L, 2, err, sizeof err) < 0) {
		event_discard(&eb);
		return luaL_error(L, "_provium_emit(%s): %s", kind, err);
	}
	if (event_write(fd, &eb) < 0)
		return luaL_error(L, "_provium_emit(%s): %s", kind, strerror(errno));
	return 0;
}

int lruntime_emit_str(int fd, const char *kind, const char *key, const char *value)
{
	struct event_buf eb;

	event_begin(&eb, kind);
	if (key) {
		msgpack_pack_map(&eb.pk, 1);
		event_pack_str(&eb.pk, key);
		event_pack_str(&eb.pk, value ? value : "");
	} else {
		msgpack_pack_map(&eb.pk, 0);
	}
	return event_write(fd, &eb);
}

/* --- clocks, sleep, durations ---------------------------------------- */

static int l_now(lua_State *L)
{
	lua_pushnumber(L, (double)clock_ns(CLOCK_REALTIME) / 1e9);
	return 1;
}

static int l_monotonic(lua_State *L)
{
	lua_pushnumber(L, (double)clock_ns(CLOCK_MONOTONIC) / 1e9);
	return 1;
}

static int l_monotonic_ns(lua_State *L)
{
	lua_pushinteger(L, (lua_Integer)clock_ns(CLOCK_MONOTONIC));
	return 1;
}

/* _provium_sleep(sec): the armed deadline cuts the sleep short and raises. */
static int l_sleep(lua_State *L)
{
	double s = luaL_checknumber(L, 1);
	int64_t until;
	bool cut = false;
	struct timespec ts;

	luaL_argcheck(L, s >= 0 && s < 1e9, 1, "sleep duration out of range");
	until = clock_ns(CLOCK_MONOTONIC) + (int64_t)(s * 1e9);
	if (dl.deadline_ns != 0 && dl.deadline_ns < until) {
		until = dl.deadline_ns;
		cut = true;
	}
	ts.tv_sec = until / 1000000000;
	ts.tv_nsec = until % 1000000000;
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
	if (cut)
		lruntime_check_deadline(L);
	return 0;
}

/* _provium_parse_duration(v) -> seconds | nil, message */
static int l_parse_duration(lua_State *L)
{
	char err[128];
	int64_t ns;

	switch (lua_type(L, 1)) {
	case LUA_TNUMBER: {
		double s = lua_tonumber(L, 1);
		if (!(s >= 0) || isinf(s)) {
			lua_pushnil(L);
			lua_pushliteral(L, "duration must be a non-negative finite number");
			return 2;
		}
		lua_pushnumber(L, s);
		return 1;
	}
	case LUA_TSTRING:
		if (parse_duration_ns(lua_tostring(L, 1), &ns, err, sizeof err) < 0) {
			lua_pushnil(L);
			lua_pushstring(L, err);
			return 2;
		}
		lua_pushnumber(L, (double)ns / 1e9);
		return 1;
	default:
		lua_pushnil(L);
		lua_pushfstring(L, "expected a number of seconds or a duration string, got %s",
				luaL_typename(L, 1));
		return 2;
	}
}

/* --- the per-test deadline ------------------------------------------- */

/* _provium_call_with_deadline(sec|nil, fn, ...) -> ok, err, timed_out, timeout_msg */
static int l_call_with_deadline(lua_State *L)
{
	int nargs = lua_gettop(L) - 2;
	double sec = luaL_optnumber(L, 1, 0);
	bool armed = false, fired;
	int rc;

	luaL_checktype(L, 2, LUA_TFUNCTION);
	if (dl.deadline_ns != 0)
		return luaL_error(L, "_provium_call_with_deadline: already inside a deadline");
	if (sec > 0) {
		double ns = sec * 1e9;
		int64_t now = clock_ns(CLOCK_MONOTONIC);

		format_secs(sec, dl.text, sizeof dl.text);
		dl.deadline_ns = ns > (double)(INT64_MAX - now) ? INT64_MAX : now + (int64_t)ns;
		dl.fired = false;
		dl.msg[0] = '\0';
		lua_sethook(L, count_hook, LUA_MASKCOUNT, HOOK_COUNT);
		armed = true;
	}
	rc = lua_pcall(L, nargs, 0, 0);
	fired = armed && dl.fired;
	if (armed) {
		lua_sethook(L, NULL, 0, 0);
		dl.deadline_ns = 0;
	}
	/* stack: [sec] [err if rc != OK] */
	lua_pushboolean(L, rc == LUA_OK);
	if (rc == LUA_OK)
		lua_pushnil(L);
	else
		lua_pushvalue(L, -2);
	lua_pushboolean(L, fired);
	if (fired)
		lua_pushstring(L, dl.msg);
	else
		lua_pushnil(L);
	return 4;
}

/* _provium_call_teardown(sec, until_ns|nil, fn, ...) -> ok, result, overran, msg
 * (result: fn's first value, or the error). until_ns is absolute
 * (CLOCK_MONOTONIC), the body's own deadline; sec only words the message. */
static int l_call_teardown(lua_State *L)
{
	int nargs = lua_gettop(L) - 3;
	double sec = luaL_optnumber(L, 1, 0);
	bool armed = !lua_isnoneornil(L, 2), fired;
	int rc;

	luaL_checktype(L, 3, LUA_TFUNCTION);
	if (dl.deadline_ns != 0)
		return luaL_error(L, "_provium_call_teardown: already inside a deadline");
	if (armed) {
		int64_t until = (int64_t)luaL_checkinteger(L, 2);

		format_secs(sec, dl.text, sizeof dl.text);
		dl.deadline_ns = until > 0 ? until : 1;
		dl.teardown = true;
		dl.fired = false;
		dl.msg[0] = '\0';
		agent_client_set_limit(dl.deadline_ns);
	}
	rc = lua_pcall(L, nargs, 1, 0);
	/* An overrun is a wait the deadline cut: a binding's (noted through
	 * lruntime_check_deadline_in) or an agent reply's. Closes that end
	 * on their own after the deadline (a VM's shutdown) are not one. */
	if (armed && !dl.fired && agent_client_limit_cut()) {
		char op[48];

		snprintf(op, sizeof op, "agent %s", agent_client_limit_cut());
		compose_message(L, op);
		dl.fired = true;
	}
	fired = armed && dl.fired;
	if (armed) {
		agent_client_set_limit(0);
		dl.deadline_ns = 0;
		dl.teardown = false;
	}
	/* stack: [sec] [until] [result or err] */
	lua_pushboolean(L, rc == LUA_OK);
	lua_pushvalue(L, -2);
	lua_pushboolean(L, fired);
	if (fired)
		lua_pushstring(L, dl.msg);
	else
		lua_pushnil(L);
	return 4;
}

/* os.exit([code [, close]]): flush stdio and leave the process at once. */
static int l_exit(lua_State *L)
{
	int status;

	if (lua_isboolean(L, 1))
		status = lua_toboolean(L, 1) ? EXIT_SUCCESS : EXIT_FAILURE;
	else
		status = (int)luaL_optinteger(L, 1, EXIT_SUCCESS);
	fflush(NULL);
	_exit(status);
	return 0;
}

static const luaL_Reg runtime_funcs[] = {
	{"_provium_now", l_now},
	{"_provium_monotonic", l_monotonic},
	{"_provium_monotonic_ns", l_monotonic_ns},
	{"_provium_sleep", l_sleep},
	{"_provium_parse_duration", l_parse_duration},
	{"_provium_call_with_deadline", l_call_with_deadline},
	{"_provium_call_teardown", l_call_teardown},
	{NULL, NULL}
};

void lruntime_open(lua_State *L, int event_fd)
{
	lua_pushglobaltable(L);
	luaL_setfuncs(L, runtime_funcs, 0);
	lua_pushinteger(L, event_fd);
	lua_pushcclosure(L, l_emit, 1);
	lua_setfield(L, -2, "_provium_emit");
	lua_pop(L, 1);

	lua_getglobal(L, "os");
	if (lua_istable(L, -1)) {
		lua_pushcfunction(L, l_exit);
		lua_setfield(L, -2, "exit");
	}
	lua_pop(L, 1);
}
