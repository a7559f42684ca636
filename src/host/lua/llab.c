/* llab.c — luaopen_provium_lab: installs the lab side's C globals.
 *
 * The lab graph itself (labs, scopes, bridges, the auto-close walker) is
 * Lua, in lab.lua; this file only wires the C primitives it stands on:
 * the VM binding (lvm.c) and two small helpers. Nothing here keeps state. */
#include <stdint.h>

#include <lua.h>
#include <lauxlib.h>

#include "lua/llab.h"
#include "units.h"

/* _provium_parse_size(v): integer (bytes, >= 0; a float with an integral
 * value counts, so 4e9 works) or size string ("512M") -> integer;
 * otherwise nil, message. */
static int l_parse_size(lua_State *L)
{
	lua_Integer n;

	if (lua_type(L, 1) == LUA_TNUMBER && !lua_isinteger(L, 1) &&
	    lua_numbertointeger(lua_tonumber(L, 1), &n) && (lua_Number)n == lua_tonumber(L, 1)) {
		lua_pushinteger(L, n);
		lua_replace(L, 1);
	}
	if (lua_isinteger(L, 1)) {
		if (lua_tointeger(L, 1) < 0) {
			lua_pushnil(L);
			lua_pushliteral(L, "size must not be negative");
			return 2;
		}
		lua_settop(L, 1);
		return 1;
	}
	if (lua_type(L, 1) == LUA_TSTRING) {
		uint64_t v;
		char err[128];
		if (parse_size_bytes(lua_tostring(L, 1), &v, err, sizeof err) < 0) {
			lua_pushnil(L);
			lua_pushstring(L, err);
			return 2;
		}
		lua_pushinteger(L, (lua_Integer)v);
		return 1;
	}
	lua_pushnil(L);
	lua_pushfstring(L, "expected an integer (bytes) or a size string like \"512M\", got %s",
	                luaL_typename(L, 1));
	return 2;
}

/* _provium_is_vm(v) -> true when v is a VM userdata. */
static int l_is_vm(lua_State *L)
{
	lua_pushboolean(L, luaL_testudata(L, 1, "provium.vm") != NULL);
	return 1;
}

int luaopen_provium_lab(lua_State *L)
{
	lvm_register(L);
	lua_register(L, "_provium_parse_size", l_parse_size);
	lua_register(L, "_provium_is_vm", l_is_vm);
	return 0;
}
