/* ljson.h — the `json` Lua global (encode/decode), see ljson.c. */
#ifndef PROVIUM_LJSON_H
#define PROVIUM_LJSON_H

#include <lua.h>

/* Push the json table {encode = ..., decode = ...}; returns 1. The runner
 * stores it as the global `json`. */
int luaopen_provium_json(lua_State *L);

#endif
