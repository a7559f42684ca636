/* lworker.c — installs vm:spawn_worker. Workers are host-side bookkeeping
 * over the VM's own ops, so they live in Lua (worker.lua, embedded); this
 * file loads that chunk once and wraps its constructor with the backend
 * check: a backend without a guest agent (local) raises "spawn_worker is
 * not supported", since a worker's purpose is concurrent agent traffic. */
#include <lua.h>
#include <lauxlib.h>

#include "lua/lvm_priv.h"

extern const char embedded_worker_lua[], embedded_worker_lua_end[];

static int vm_spawn_worker(lua_State *L)
{
	struct lvm *v = lvm_check(L, 1);
	if (!v->ops->agent)
		return lvm_unsupported(L, v, "spawn_worker");
	lua_settop(L, 2);
	lua_pushvalue(L, lua_upvalueindex(1));
	lua_insert(L, 1);
	lua_call(L, 2, 1);
	return 1;
}

/* _provium_new_worker(vm, opts): the constructor without the backend
 * check (harness tests of the bookkeeping on the local backend). */
void lworker_register(lua_State *L)
{
	int methods = lua_gettop(L);
	if (luaL_loadbuffer(L, embedded_worker_lua,
	                    (size_t)(embedded_worker_lua_end - embedded_worker_lua),
	                    "=[provium worker]") != LUA_OK)
		lua_error(L);
	lua_pushvalue(L, methods);
	lua_call(L, 1, 1);                  /* constructor */
	lua_pushvalue(L, -1);
	lua_setglobal(L, "_provium_new_worker");
	lua_pushcclosure(L, vm_spawn_worker, 1);
	lua_setfield(L, methods, "spawn_worker");
}
