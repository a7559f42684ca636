/* lmsgpack.c — Lua values <-> msgpack, the MetaValue mapping of the events
 * reference (see lmsgpack.h).
 *
 * lmp_pack walks a Lua value and writes it with a msgpack_packer:
 *   nil -> nil, boolean -> bool, integer -> int (i64), float -> float64,
 *   string -> str when valid UTF-8, else bin;
 *   table whose keys are exactly 1..n (n >= 1) -> array;
 *   any other table, the empty table included -> map. Map keys are strings
 *   (a key that is not valid UTF-8 is an error) or integers, which are
 *   stringified ("3"); other key types are an error.
 *   Functions, userdata, threads, cycles and nesting deeper than
 *   LMP_MAX_DEPTH (64) tables are errors.
 * It never raises: errors come back as -1 with a message in err, and the
 * Lua stack is left as it was. What the packer already holds after an
 * error is a partial value: callers discard the buffer. Map key order is
 * whatever lua_next gives (msgpack maps are unordered; consumers build
 * BTreeMaps).
 *
 * lmp_push is the inverse for anything a peer may send: nil, bool, ints
 * (u64 above i64 max keeps its bit pattern), floats, str and bin -> Lua
 * strings, arrays -> sequences (nil elements leave holes), maps -> tables
 * (entries with a nil key or value are dropped), ext -> nil. It raises
 * only if the Lua stack cannot grow (values nested beyond what the
 * unpacker allows).
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <lua.h>
#include <lauxlib.h>

#include "utf8.h"
#include "lua/lmsgpack.h"

#define LMP_MAX_DEPTH 64

struct packer {
	msgpack_packer *pk;
	lua_State *L;
	char *err;
	size_t errlen;
	int depth;
	const void *stack[LMP_MAX_DEPTH];   /* tables being packed, outermost first */
};

/* Record an error message; returns -1. */
__attribute__((format(printf, 2, 3)))
static int fail(struct packer *p, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(p->err, p->errlen, fmt, ap);
	va_end(ap);
	return -1;
}

static int pack_value(struct packer *p, int idx);

static int pack_str(struct packer *p, const char *s, size_t len)
{
	if (utf8_valid_prefix((const unsigned char *)s, len) == len) {
		msgpack_pack_str(p->pk, len);
		msgpack_pack_str_body(p->pk, s, len);
	} else {
		msgpack_pack_bin(p->pk, len);
		msgpack_pack_bin_body(p->pk, s, len);
	}
	return 0;
}

/* Pack the table at absolute index t. */
static int pack_table(struct packer *p, int t)
{
	lua_State *L = p->L;
	const void *self = lua_topointer(L, t);
	lua_Integer max = 0;
	size_t count = 0;
	bool is_array = true;
	int rc = 0;

	for (int i = 0; i < p->depth; i++)
		if (p->stack[i] == self)
			return fail(p, "cannot pack a table that contains itself (cycle)");
	if (p->depth >= LMP_MAX_DEPTH)
		return fail(p, "table nesting deeper than 64 levels");
	if (!lua_checkstack(L, 4))
		return fail(p, "Lua stack exhausted");
	p->stack[p->depth++] = self;

	lua_pushnil(L);
	while (lua_next(L, t)) {
		lua_pop(L, 1);
		count++;
		if (lua_isinteger(L, -1) && lua_tointeger(L, -1) >= 1) {
			if (lua_tointeger(L, -1) > max)
				max = lua_tointeger(L, -1);
		} else {
			is_array = false;
		}
	}
	if (count > 0 && is_array && (lua_Unsigned)max == count) {
		msgpack_pack_array(p->pk, count);
		for (lua_Integer i = 1; i <= max && rc == 0; i++) {
			lua_rawgeti(L, t, i);
			rc = pack_value(p, lua_gettop(L));
			lua_pop(L, 1);
		}
		goto out;
	}

	msgpack_pack_map(p->pk, count);
	lua_pushnil(L);
	while (lua_next(L, t)) {
		size_t len;
		const char *s;
		char num[32];

		if (lua_type(L, -2) == LUA_TSTRING) {
			s = lua_tolstring(L, -2, &len);
			if (utf8_valid_prefix((const unsigned char *)s, len) != len) {
				lua_pop(L, 2);
				rc = fail(p, "map key is not valid UTF-8");
				goto out;
			}
			msgpack_pack_str(p->pk, len);
			msgpack_pack_str_body(p->pk, s, len);
		} else if (lua_isinteger(L, -2)) {
			len = (size_t)snprintf(num, sizeof num, LUA_INTEGER_FMT,
					       (LUAI_UACINT)lua_tointeger(L, -2));
			msgpack_pack_str(p->pk, len);
			msgpack_pack_str_body(p->pk, num, len);
		} else {
			rc = fail(p, "map key must be a string or an integer, not a %s",
				  luaL_typename(L, -2));
			lua_pop(L, 2);
			goto out;
		}
		rc = pack_value(p, lua_gettop(L));
		lua_pop(L, 1);
		if (rc) {
			lua_pop(L, 1);
			goto out;
		}
	}
out:
	p->depth--;
	return rc;
}

/* Pack the value at absolute index idx. */
static int pack_value(struct packer *p, int idx)
{
	lua_State *L = p->L;
	const char *s;
	size_t len;

	switch (lua_type(L, idx)) {
	case LUA_TNIL:
		msgpack_pack_nil(p->pk);
		return 0;
	case LUA_TBOOLEAN:
		if (lua_toboolean(L, idx))
			msgpack_pack_true(p->pk);
		else
			msgpack_pack_false(p->pk);
		return 0;
	case LUA_TNUMBER:
		if (lua_isinteger(L, idx))
			msgpack_pack_int64(p->pk, (int64_t)lua_tointeger(L, idx));
		else
			msgpack_pack_double(p->pk, (double)lua_tonumber(L, idx));
		return 0;
	case LUA_TSTRING:
		s = lua_tolstring(L, idx, &len);
		return pack_str(p, s, len);
	case LUA_TTABLE:
		return pack_table(p, idx);
	default:
		return fail(p, "cannot pack a %s value", luaL_typename(L, idx));
	}
}

int lmp_pack(msgpack_packer *pk, lua_State *L, int idx, char *err, size_t errlen)
{
	struct packer p;
	int top = lua_gettop(L), rc;

	p.pk = pk;
	p.L = L;
	p.err = err;
	p.errlen = errlen;
	p.depth = 0;
	if (errlen)
		err[0] = '\0';
	rc = pack_value(&p, lua_absindex(L, idx));
	lua_settop(L, top);
	return rc;
}

void lmp_push(lua_State *L, const msgpack_object *o)
{
	luaL_checkstack(L, 3, "msgpack value nested too deeply");
	switch (o->type) {
	case MSGPACK_OBJECT_BOOLEAN:
		lua_pushboolean(L, o->via.boolean);
		break;
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		lua_pushinteger(L, (lua_Integer)o->via.u64);
		break;
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		lua_pushinteger(L, (lua_Integer)o->via.i64);
		break;
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64:
		lua_pushnumber(L, (lua_Number)o->via.f64);
		break;
	case MSGPACK_OBJECT_STR:
		lua_pushlstring(L, o->via.str.ptr, o->via.str.size);
		break;
	case MSGPACK_OBJECT_BIN:
		lua_pushlstring(L, o->via.bin.ptr, o->via.bin.size);
		break;
	case MSGPACK_OBJECT_ARRAY:
		lua_createtable(L, (int)o->via.array.size, 0);
		for (uint32_t i = 0; i < o->via.array.size; i++) {
			lmp_push(L, &o->via.array.ptr[i]);
			if (lua_isnil(L, -1))
				lua_pop(L, 1);
			else
				lua_rawseti(L, -2, (lua_Integer)i + 1);
		}
		break;
	case MSGPACK_OBJECT_MAP:
		lua_createtable(L, 0, (int)o->via.map.size);
		for (uint32_t i = 0; i < o->via.map.size; i++) {
			lmp_push(L, &o->via.map.ptr[i].key);
			lmp_push(L, &o->via.map.ptr[i].val);
			if (lua_isnil(L, -1) || lua_isnil(L, -2) ||
			    (lua_type(L, -2) == LUA_TNUMBER &&
			     lua_tonumber(L, -2) != lua_tonumber(L, -2)))
				lua_pop(L, 2);          /* nil or NaN key, nil value */
			else
				lua_rawset(L, -3);
		}
		break;
	case MSGPACK_OBJECT_NIL:
	case MSGPACK_OBJECT_EXT:
	default:
		lua_pushnil(L);
		break;
	}
}
