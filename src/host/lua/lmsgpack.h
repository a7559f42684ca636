/* lmsgpack.h — Lua values to msgpack (the MetaValue mapping of the events
 * reference) and back.
 *
 * Mapping Lua -> msgpack: nil -> nil, boolean -> bool, integer -> int,
 * float -> float64, string -> str when valid UTF-8 else bin, table with
 * keys exactly 1..n -> array, other tables -> map with string keys
 * (integer keys stringified). Functions/userdata/cycles -> error. */
#ifndef PROVIUM_LMSGPACK_H
#define PROVIUM_LMSGPACK_H

#include <stddef.h>
#include <lua.h>
#include <msgpack.h>

/* Pack the value at idx. 0, or -1 with err. */
int lmp_pack(msgpack_packer *pk, lua_State *L, int idx, char *err, size_t errlen);

/* Push a msgpack object as a Lua value (maps -> tables, bin/str -> strings). */
void lmp_push(lua_State *L, const msgpack_object *o);

#endif
