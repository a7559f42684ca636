/* test_lmsgpack.c — unit tests for Lua <-> msgpack (src/host/lua/lmsgpack.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>
#include <msgpack.h>

#include "lua/lmsgpack.h"

struct fx {
	lua_State *L;
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_unpacked up;
	char err[256];
};

static int setup(void **state)
{
	static struct fx f;

	memset(&f, 0, sizeof f);
	f.L = luaL_newstate();
	luaL_openlibs(f.L);
	msgpack_sbuffer_init(&f.sb);
	msgpack_packer_init(&f.pk, &f.sb, msgpack_sbuffer_write);
	msgpack_unpacked_init(&f.up);
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	msgpack_unpacked_destroy(&f->up);
	msgpack_sbuffer_destroy(&f->sb);
	lua_close(f->L);
	return 0;
}

/* Evaluate a Lua expression, pack it; returns lmp_pack's result. When
 * unpack is set, the unpacked object is in f->up.data on success (msgpack-c's
 * unpacker itself stops at 32 levels of nesting). */
static int pack_expr2(struct fx *f, const char *expr, bool unpack)
{
	char code[1024];
	int rc, top;

	snprintf(code, sizeof code, "return %s", expr);
	if (luaL_dostring(f->L, code) != LUA_OK)
		fail_msg("%s: %s", expr, lua_tostring(f->L, -1));
	msgpack_sbuffer_clear(&f->sb);
	top = lua_gettop(f->L);
	rc = lmp_pack(&f->pk, f->L, -1, f->err, sizeof f->err);
	assert_int_equal(lua_gettop(f->L), top);        /* stack untouched */
	lua_settop(f->L, 0);
	if (rc == 0 && unpack) {
		size_t off = 0;

		assert_int_equal(msgpack_unpack_next(&f->up, f->sb.data, f->sb.size, &off),
				 MSGPACK_UNPACK_SUCCESS);
		assert_int_equal(off, f->sb.size);
	}
	return rc;
}

static int pack_expr(struct fx *f, const char *expr)
{
	return pack_expr2(f, expr, true);
}

static const msgpack_object *packed(struct fx *f, const char *expr)
{
	if (pack_expr(f, expr) != 0)
		fail_msg("%s: %s", expr, f->err);
	return &f->up.data;
}

static const msgpack_object *map_get(const msgpack_object *m, const char *key)
{
	assert_int_equal(m->type, MSGPACK_OBJECT_MAP);
	for (uint32_t i = 0; i < m->via.map.size; i++) {
		const msgpack_object *k = &m->via.map.ptr[i].key;

		assert_int_equal(k->type, MSGPACK_OBJECT_STR);
		if (k->via.str.size == strlen(key) && memcmp(k->via.str.ptr, key, k->via.str.size) == 0)
			return &m->via.map.ptr[i].val;
	}
	fail_msg("key %s missing", key);
	return NULL;
}

static void test_scalars(void **state)
{
	struct fx *f = *state;
	const msgpack_object *o;

	assert_int_equal(packed(f, "nil")->type, MSGPACK_OBJECT_NIL);
	o = packed(f, "true");
	assert_int_equal(o->type, MSGPACK_OBJECT_BOOLEAN);
	assert_true(o->via.boolean);
	o = packed(f, "math.mininteger");
	assert_int_equal(o->type, MSGPACK_OBJECT_NEGATIVE_INTEGER);
	assert_true(o->via.i64 == INT64_MIN);
	o = packed(f, "math.maxinteger");
	assert_int_equal(o->type, MSGPACK_OBJECT_POSITIVE_INTEGER);
	assert_true(o->via.u64 == INT64_MAX);
	o = packed(f, "2.5");
	assert_int_equal(o->type, MSGPACK_OBJECT_FLOAT64);
	assert_true(o->via.f64 == 2.5);
	o = packed(f, "3.0");
	assert_int_equal(o->type, MSGPACK_OBJECT_FLOAT64);
	o = packed(f, "'h\\u{e9}llo'");
	assert_int_equal(o->type, MSGPACK_OBJECT_STR);
	assert_int_equal(o->via.str.size, 6);
	o = packed(f, "'\\xff\\0'");
	assert_int_equal(o->type, MSGPACK_OBJECT_BIN);
	assert_int_equal(o->via.bin.size, 2);
	o = packed(f, "'\\xed\\xa0\\x80'");                 /* a surrogate: not UTF-8 */
	assert_int_equal(o->type, MSGPACK_OBJECT_BIN);
	o = packed(f, "''");
	assert_int_equal(o->type, MSGPACK_OBJECT_STR);
}

static void test_tables(void **state)
{
	struct fx *f = *state;
	const msgpack_object *o;

	o = packed(f, "{}");
	assert_int_equal(o->type, MSGPACK_OBJECT_MAP);
	assert_int_equal(o->via.map.size, 0);
	o = packed(f, "{'a', 'b', {1}}");
	assert_int_equal(o->type, MSGPACK_OBJECT_ARRAY);
	assert_int_equal(o->via.array.size, 3);
	assert_int_equal(o->via.array.ptr[2].type, MSGPACK_OBJECT_ARRAY);
	o = packed(f, "{[1] = 'a', [3] = 'c'}");            /* not 1..n: a map */
	assert_int_equal(o->type, MSGPACK_OBJECT_MAP);
	assert_int_equal(map_get(o, "3")->type, MSGPACK_OBJECT_STR);
	o = packed(f, "{1, 2, name = 'x'}");
	assert_int_equal(o->type, MSGPACK_OBJECT_MAP);
	assert_int_equal(o->via.map.size, 3);
	assert_int_equal(map_get(o, "1")->via.u64, 1);
	o = packed(f, "{name = 't', meta = {tags = {'smoke'}, slow = false}, n = 0}");
	assert_int_equal(o->type, MSGPACK_OBJECT_MAP);
	o = map_get(map_get(o, "meta"), "tags");
	assert_int_equal(o->type, MSGPACK_OBJECT_ARRAY);
	/* a shared table is not a cycle */
	assert_int_equal(pack_expr(f, "(function() local s = {} return {s, s} end)()"), 0);
}

static void test_errors(void **state)
{
	struct fx *f = *state;

	assert_int_equal(pack_expr(f, "print"), -1);
	assert_non_null(strstr(f->err, "function"));
	assert_int_equal(pack_expr(f, "{x = {io.stdout}}"), -1);
	assert_non_null(strstr(f->err, "userdata"));
	assert_int_equal(pack_expr(f, "(function() local t = {} t.t = {t} return t end)()"), -1);
	assert_non_null(strstr(f->err, "cycle"));
	assert_int_equal(pack_expr(f, "{[true] = 1}"), -1);
	assert_non_null(strstr(f->err, "key"));
	assert_int_equal(pack_expr(f, "{[1.5] = 1}"), -1);
	assert_int_equal(pack_expr(f, "{['\\xff'] = 1}"), -1);
	assert_non_null(strstr(f->err, "UTF-8"));
	/* 64 nested tables are fine, 65 are not */
	assert_int_equal(pack_expr2(f, "(function() local t = 1 for i = 1, 64 do t = {t} end return t end)()", false), 0);
	assert_int_equal(pack_expr2(f, "(function() local t = 1 for i = 1, 65 do t = {t} end return t end)()", false), -1);
	assert_non_null(strstr(f->err, "64"));
}

/* Pack a Lua value, push it back, and let Lua compare. */
static void roundtrip(struct fx *f, const char *expr, const char *check)
{
	char code[1024];

	packed(f, expr);
	lmp_push(f->L, &f->up.data);
	lua_setglobal(f->L, "v");
	snprintf(code, sizeof code, "return %s", check);
	if (luaL_dostring(f->L, code) != LUA_OK)
		fail_msg("%s: %s", check, lua_tostring(f->L, -1));
	if (!lua_toboolean(f->L, -1))
		fail_msg("round trip of %s: %s is false", expr, check);
	lua_settop(f->L, 0);
}

static void test_push(void **state)
{
	struct fx *f = *state;

	roundtrip(f, "nil", "v == nil");
	roundtrip(f, "false", "v == false");
	roundtrip(f, "-5", "v == -5 and math.type(v) == 'integer'");
	roundtrip(f, "math.maxinteger", "v == math.maxinteger");
	roundtrip(f, "0.25", "v == 0.25 and math.type(v) == 'float'");
	roundtrip(f, "'\\xff\\0x'", "v == '\\xff\\0x'");
	roundtrip(f, "{1, 'two', {3}}", "v[1] == 1 and v[2] == 'two' and v[3][1] == 3");
	roundtrip(f, "{a = {b = {c = true}}, [7] = 'x'}", "v.a.b.c == true and v['7'] == 'x'");
	roundtrip(f, "{}", "next(v) == nil");

	/* values a peer may send that Lua never packs */
	{
		msgpack_sbuffer_clear(&f->sb);
		msgpack_pack_array(&f->pk, 4);
		msgpack_pack_uint64(&f->pk, UINT64_MAX);
		msgpack_pack_nil(&f->pk);
		msgpack_pack_float(&f->pk, 1.5f);
		msgpack_pack_map(&f->pk, 2);
		msgpack_pack_nil(&f->pk);
		msgpack_pack_int(&f->pk, 1);
		msgpack_pack_int(&f->pk, 9);
		msgpack_pack_nil(&f->pk);
		size_t off = 0;

		assert_int_equal(msgpack_unpack_next(&f->up, f->sb.data, f->sb.size, &off),
				 MSGPACK_UNPACK_SUCCESS);
		lmp_push(f->L, &f->up.data);
		lua_setglobal(f->L, "v");
		assert_int_equal(luaL_dostring(f->L,
			"return v[1] == -1 and v[2] == nil and v[3] == 1.5 and next(v[4]) == nil"), 0);
		assert_true(lua_toboolean(f->L, -1));
		lua_settop(f->L, 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_scalars, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tables, setup, teardown),
		cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_push, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
