/* lclock.c — the Clock userdata ("provium.clock"): the guest's wall clock
 * (CLOCK_REALTIME) read and moved through the agent (guest_ops.h).
 *
 * A Clock holds its VM (user value 1) and no state of its own: every call
 * is one or two agent round trips. advance() is get + set, so the guest
 * loses the round trip between them (microseconds under KVM, about a
 * millisecond under TCG). sleep() sleeps on the host, bounded by the
 * test's deadline: guest time passes with it.
 *
 * The local backend has no guest kernel: its commands run on the host and
 * see the host's clock, so get / get_ns read the host's CLOCK_REALTIME and
 * sleep sleeps; set / set_ns / advance (which would move the host's clock)
 * raise "... is not supported by the local backend", after their
 * arguments are checked. */
#include <math.h>
#include <stdint.h>
#include <time.h>

#include <lua.h>
#include <lauxlib.h>

#include "lua/lvm_priv.h"
#include "vmm/guest_ops.h"

#define CLOCK_MT "provium.clock"

static struct lvm *clock_vm(lua_State *L, const char *op)
{
	struct lvm *v;
	luaL_checkudata(L, 1, CLOCK_MT);
	lua_getiuservalue(L, 1, 1);
	v = lvm_check(L, -1);
	lua_pop(L, 1);
	lvm_need_booted(L, v, op);
	return v;
}

static int64_t get_ns(lua_State *L, struct lvm *v, const char *op)
{
	int64_t ns;
	char err[LVM_ERRLEN];
	int rc = guest_clock_get(v->ops, v->be, &ns, err, sizeof err);
	if (rc == VMM_UNSUPPORTED && !v->ops->agent) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
	}
	if (rc == VMM_UNSUPPORTED)
		lvm_unsupported(L, v, op);
	if (rc < 0)
		luaL_error(L, "vm `%s`: %s: %s", v->name, op, lvm_errtext(v, err));
	return ns;
}

static void set_ns(lua_State *L, struct lvm *v, int64_t ns, const char *op)
{
	char err[LVM_ERRLEN];
	int rc = guest_clock_set(v->ops, v->be, ns, err, sizeof err);
	if (rc == VMM_UNSUPPORTED)
		lvm_unsupported(L, v, op);
	if (rc < 0)
		luaL_error(L, "vm `%s`: %s: %s%s", v->name, op, lvm_errtext(v, err),
		           ns < 0 ? " (Linux refuses to set CLOCK_REALTIME before the epoch)" : "");
}

/* Seconds (integer or finite float) at idx -> ns; raises for NaN/inf. */
static int64_t finite_seconds(lua_State *L, int idx, const char *op)
{
	double d;
	if (lua_isinteger(L, idx)) {
		lua_Integer s = lua_tointeger(L, idx);
		if (s > INT64_MAX / 1000000000 || s < INT64_MIN / 1000000000)
			luaL_error(L, "%s: value out of range", op);
		return (int64_t)s * 1000000000;
	}
	d = luaL_checknumber(L, idx);
	if (!isfinite(d))
		luaL_error(L, "%s: value must be a finite number (got NaN/inf)", op);
	if (d > 9.2e9 || d < -9.2e9)
		luaL_error(L, "%s: value out of range", op);
	return (int64_t)llround(d * 1e9);
}

static int c_get(lua_State *L)
{
	struct lvm *v = clock_vm(L, "clock:get");
	lua_pushnumber(L, (double)get_ns(L, v, "clock:get") / 1e9);
	return 1;
}

static int c_get_ns(lua_State *L)
{
	struct lvm *v = clock_vm(L, "clock:get_ns");
	lua_pushinteger(L, get_ns(L, v, "clock:get_ns"));
	return 1;
}

static int c_set(lua_State *L)
{
	int64_t ns = finite_seconds(L, 2, "clock:set");
	set_ns(L, clock_vm(L, "clock:set"), ns, "clock:set");
	return 0;
}

static int c_set_ns(lua_State *L)
{
	lua_Integer ns = luaL_checkinteger(L, 2);
	set_ns(L, clock_vm(L, "clock:set_ns"), ns, "clock:set_ns");
	return 0;
}

/* clock:advance(duration): signed seconds or a duration string. */
static int c_advance(lua_State *L)
{
	int64_t d = lua_type(L, 2) == LUA_TSTRING ? lvm_check_duration(L, 2, "clock:advance")
	                                          : finite_seconds(L, 2, "clock:advance");
	struct lvm *v = clock_vm(L, "clock:advance");
	set_ns(L, v, get_ns(L, v, "clock:advance") + d, "clock:advance");
	return 0;
}

static int c_sleep(lua_State *L)
{
	int64_t ns;
	if (lua_type(L, 2) == LUA_TNUMBER && !isfinite(lua_tonumber(L, 2)))
		return luaL_error(L, "clock:sleep: duration must be finite (got NaN/inf)");
	ns = lvm_check_duration(L, 2, "clock:sleep: duration");
	clock_vm(L, "clock:sleep");
	if (lua_getglobal(L, "_provium_sleep") != LUA_TFUNCTION)
		return luaL_error(L, "clock:sleep: no _provium_sleep in this state");
	lua_pushnumber(L, (double)ns / 1e9);
	lua_call(L, 1, 0);
	return 0;
}

static int c_tostring(lua_State *L)
{
	luaL_checkudata(L, 1, CLOCK_MT);
	lua_getiuservalue(L, 1, 1);
	lua_pushfstring(L, "clock of vm `%s`", lvm_check(L, -1)->name);
	return 1;
}

/* vm:clock() -> Clock (any state: its methods check the VM). */
static int vm_clock(lua_State *L)
{
	return lvm_push_vm_handle(L, CLOCK_MT);
}

static const luaL_Reg clock_methods[] = {
	{"get", c_get}, {"get_ns", c_get_ns}, {"set", c_set}, {"set_ns", c_set_ns},
	{"advance", c_advance}, {"sleep", c_sleep}, {NULL, NULL}
};

void lclock_register(lua_State *L)
{
	luaL_newmetatable(L, CLOCK_MT);
	lua_pushcfunction(L, c_tostring);
	lua_setfield(L, -2, "__tostring");
	lua_newtable(L);
	luaL_setfuncs(L, clock_methods, 0);
	lua_setfield(L, -2, "__index");
	lua_pop(L, 1);
	lua_pushcfunction(L, vm_clock);
	lua_setfield(L, -2, "clock");
}
