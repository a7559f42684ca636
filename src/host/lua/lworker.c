/* lworker.c — installs vm:spawn_worker and hands worker.lua (embedded)
 * the C primitives it builds Worker objects from.
 *
 * A worker is a separate guest process (the agent's worker_spawn, see
 * proto/protocol.h); worker.lua owns the Lua object and its bookkeeping,
 * this file owns the wire side:
 *
 *   spawn(vm)                  -> handle, pid
 *   join(vm, handle, ms)       -> status, signal|nil  (reaps; SIGKILL at ms)
 *   kill(vm, handle, sig)
 *   routed(vm, handle, fn, ...) -> fn(...) with every agent request it
 *                                 sends routed to the worker process
 *   syscall_async(vm, nr, ...) -> PendingSyscall (lvmops.c)
 *   set_who(pending, "worker 3")
 *   awaited(pending)            -> whether :await() was called
 *
 * routed restores the previous route before returning or re-raising, so
 * an error inside fn never leaves later VM ops pointed at a worker.
 * A backend without a guest agent (local) raises "spawn_worker is not
 * supported"; _provium_new_worker(vm, opts) builds a bookkeeping-only
 * worker without a guest process (harness tests on the local backend). */
#include <lua.h>
#include <lauxlib.h>

#include "lua/lvm_priv.h"
#include "vmm/guest_ops.h"

extern const char embedded_worker_lua[], embedded_worker_lua_end[];

static uint64_t check_handle(lua_State *L, int idx)
{
	lua_Integer h = luaL_checkinteger(L, idx);
	if (h <= 0)
		luaL_argerror(L, idx, "worker handle must be > 0");
	return (uint64_t)h;
}

static int w_spawn(lua_State *L)
{
	struct lvm *v = lvm_check(L, 1);
	char err[LVM_ERRLEN];
	uint64_t h;
	int64_t pid;
	lvm_need_booted(L, v, "spawn_worker");
	int rc = guest_worker_spawn(v->ops, v->be, &h, &pid, err, sizeof err);
	if (rc == VMM_UNSUPPORTED)
		return lvm_unsupported(L, v, "spawn_worker");
	if (rc < 0)
		return luaL_error(L, "vm `%s`: spawn_worker: %s", v->name, lvm_errtext(v, err));
	lua_pushinteger(L, (lua_Integer)h);
	lua_pushinteger(L, (lua_Integer)pid);
	return 2;
}

static int w_join(lua_State *L)
{
	struct lvm *v = lvm_check(L, 1);
	uint64_t h = check_handle(L, 2);
	lua_Integer ms = luaL_checkinteger(L, 3);
	char err[LVM_ERRLEN];
	int st, sig;
	int rc = guest_worker_join(v->ops, v->be, h, ms < 0 ? 0 : ms > 0x7fffffff ? 0x7fffffff : (int)ms,
	                           &st, &sig, err, sizeof err);
	if (rc == VMM_UNSUPPORTED)
		return lvm_unsupported(L, v, "worker join");
	if (rc < 0)
		return luaL_error(L, "worker %I: join: %s", (lua_Integer)h, lvm_errtext(v, err));
	lua_pushinteger(L, st);
	if (sig)
		lua_pushinteger(L, sig);
	else
		lua_pushnil(L);
	return 2;
}

static int w_kill(lua_State *L)
{
	struct lvm *v = lvm_check(L, 1);
	uint64_t h = check_handle(L, 2);
	int sig = (int)luaL_checkinteger(L, 3);
	char err[LVM_ERRLEN];
	int rc = guest_worker_kill(v->ops, v->be, h, sig, err, sizeof err);
	if (rc == VMM_UNSUPPORTED)
		return lvm_unsupported(L, v, "worker kill");
	if (rc < 0)
		return luaL_error(L, "worker %I: kill: %s", (lua_Integer)h, lvm_errtext(v, err));
	return 0;
}

static int w_routed(lua_State *L)
{
	struct lvm *v = lvm_check(L, 1);
	uint64_t h = check_handle(L, 2);
	luaL_checktype(L, 3, LUA_TFUNCTION);
	if (!v->be || !v->ops->agent)
		return lvm_unsupported(L, v, "a worker op");
	int nargs = lua_gettop(L) - 3;
	uint64_t old = guest_route(v->ops, v->be, h);
	int rc = lua_pcall(L, nargs, LUA_MULTRET, 0);
	/* v->be may be gone if fn shut the VM down; then there is no route. */
	if (v->be)
		guest_route(v->ops, v->be, old);
	if (rc != LUA_OK)
		return lua_error(L);
	return lua_gettop(L) - 2;
}

static int w_set_who(lua_State *L)
{
	lvmops_pending_set_who(L, 1, luaL_checkstring(L, 2));
	return 0;
}

static int w_awaited(lua_State *L)
{
	lua_pushboolean(L, lvmops_pending_done(L, 1));
	return 1;
}

static int vm_spawn_worker(lua_State *L)
{
	struct lvm *v = lvm_check(L, 1);
	if (!v->ops->agent)
		return lvm_unsupported(L, v, "spawn_worker");
	lua_settop(L, 2);
	lua_pushboolean(L, 1);              /* a guest process */
	lua_pushvalue(L, lua_upvalueindex(1));
	lua_insert(L, 1);
	lua_call(L, 3, 1);
	return 1;
}

/* _provium_new_worker(vm, opts): bookkeeping only, no guest process. */
static int new_bookkeeping_worker(lua_State *L)
{
	lua_settop(L, 2);
	lua_pushboolean(L, 0);
	lua_pushvalue(L, lua_upvalueindex(1));
	lua_insert(L, 1);
	lua_call(L, 3, 1);
	return 1;
}

void lworker_register(lua_State *L)
{
	static const luaL_Reg prims[] = {
		{"spawn", w_spawn}, {"join", w_join}, {"kill", w_kill}, {"routed", w_routed},
		{"syscall_async", lvmops_syscall_async}, {"set_who", w_set_who},
		{"awaited", w_awaited}, {NULL, NULL},
	};
	int methods = lua_gettop(L);
	if (luaL_loadbuffer(L, embedded_worker_lua,
	                    (size_t)(embedded_worker_lua_end - embedded_worker_lua),
	                    "=[provium worker]") != LUA_OK)
		lua_error(L);
	lua_pushvalue(L, methods);
	luaL_newlib(L, prims);
	lua_call(L, 2, 1);                  /* constructor */
	lua_pushvalue(L, -1);
	lua_pushcclosure(L, new_bookkeeping_worker, 1);
	lua_setglobal(L, "_provium_new_worker");
	lua_pushcclosure(L, vm_spawn_worker, 1);
	lua_setfield(L, methods, "spawn_worker");
}
