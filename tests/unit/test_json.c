/* test_json.c — unit tests for the `json` Lua global (src/host/lua/ljson.c).
 * Each test runs Lua snippets in a fresh state with `json` installed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

#include "lua/ljson.h"

static int setup(void **state)
{
	lua_State *L = luaL_newstate();

	luaL_openlibs(L);
	luaopen_provium_json(L);
	lua_setglobal(L, "json");
	*state = L;
	return 0;
}

static int teardown(void **state)
{
	lua_close(*state);
	return 0;
}

/* Evaluate `return json.encode(<expr>)` and compare with want. */
static void enc_eq(lua_State *L, const char *expr, const char *want)
{
	char code[1024];

	snprintf(code, sizeof code, "return json.encode(%s)", expr);
	if (luaL_dostring(L, code) != LUA_OK)
		fail_msg("%s: %s", expr, lua_tostring(L, -1));
	assert_string_equal(lua_tostring(L, -1), want);
	lua_settop(L, 0);
}

/* Run a chunk that must return true. */
static void lua_true(lua_State *L, const char *code)
{
	if (luaL_dostring(L, code) != LUA_OK)
		fail_msg("%s: %s", code, lua_tostring(L, -1));
	if (!lua_toboolean(L, -1))
		fail_msg("not true: %s", code);
	lua_settop(L, 0);
}

/* Run a chunk that must raise an error containing needle. */
static void lua_raises(lua_State *L, const char *code, const char *needle)
{
	if (luaL_dostring(L, code) == LUA_OK)
		fail_msg("did not raise: %s", code);
	if (!strstr(lua_tostring(L, -1), needle))
		fail_msg("%s: error '%s' lacks '%s'", code, lua_tostring(L, -1), needle);
	lua_settop(L, 0);
}

static void test_encode_scalars(void **state)
{
	lua_State *L = *state;

	enc_eq(L, "nil", "null");
	enc_eq(L, "true", "true");
	enc_eq(L, "false", "false");
	enc_eq(L, "42", "42");
	enc_eq(L, "math.maxinteger", "9223372036854775807");
	enc_eq(L, "math.mininteger", "-9223372036854775808");
	enc_eq(L, "1.5", "1.5");
	enc_eq(L, "3.0", "3.0");
	enc_eq(L, "-0.0", "-0.0");
	enc_eq(L, "0.1", "0.1");
	enc_eq(L, "1e300", "1e300");
	enc_eq(L, "1e16", "1e16");
	enc_eq(L, "1e15", "1000000000000000.0");
	enc_eq(L, "1e-6", "1e-6");
	enc_eq(L, "1e-5", "0.00001");
	enc_eq(L, "'a\"b\\\\c\\n\\t\\1'", "\"a\\\"b\\\\c\\n\\t\\u0001\"");
	enc_eq(L, "'h\\u{e9}llo'", "\"h\xc3\xa9llo\"");
}

static void test_encode_tables(void **state)
{
	lua_State *L = *state;

	enc_eq(L, "{a = 1, b = 'x'}", "{\"a\":1,\"b\":\"x\"}");
	enc_eq(L, "{10, 20, 30}", "[10,20,30]");
	enc_eq(L, "{a = 1, b = nil}", "{\"a\":1}");
	enc_eq(L, "{[1] = 1, [3] = 3}", "[1,null,3]");
	enc_eq(L, "{}", "{}");
	enc_eq(L, "{{}, {{}}}", "[{},[{}]]");
	enc_eq(L, "{1, 2, name = 'x'}", "{\"1\":1,\"2\":2,\"name\":\"x\"}");
	enc_eq(L, "{[-1] = 'a', [0] = 'b'}", "{\"-1\":\"a\",\"0\":\"b\"}");
	enc_eq(L, "{[1.5] = true}", "{\"1.5\":true}");
	enc_eq(L, "{z = {y = {x = {1, {2}}}}}", "{\"z\":{\"y\":{\"x\":[1,[2]]}}}");
	enc_eq(L, "setmetatable({}, {__index = function() return 1 end})", "{}");
}

static void test_encode_errors(void **state)
{
	lua_State *L = *state;

	lua_raises(L, "local t = {} t.t = t return json.encode(t)", "cycle");
	lua_raises(L, "local t = {} t[1] = {t} return json.encode(t)", "cycle");
	lua_raises(L, "return json.encode(print)", "cannot encode a function");
	lua_raises(L, "return json.encode({f = print})", "cannot encode a function");
	lua_raises(L, "return json.encode(io.stdout)", "cannot encode a userdata");
	lua_raises(L, "return json.encode(0/0)", "NaN");
	lua_raises(L, "return json.encode(math.huge)", "infinity");
	lua_raises(L, "return json.encode({-math.huge})", "infinity");
	lua_raises(L, "return json.encode('\\xff')", "not valid UTF-8");
	lua_raises(L, "return json.encode({['\\xc3'] = 1})", "not valid UTF-8");
	lua_raises(L, "return json.encode({[true] = 1})", "table key must be");
	lua_raises(L, "return json.encode({[1] = 'a', ['1'] = 'b', x = 1})", "both as a number");
	lua_raises(L, "return json.encode({[math.maxinteger] = 1})", "sparse");
	lua_raises(L, "local t = {} for i = 1, 600 do t = {t} end return json.encode(t)",
		   "nesting");
	/* a shared (non-cyclic) table is fine */
	lua_true(L, "local s = {1} return json.encode({s, s}) == '[[1],[1]]'");
}

static void test_decode_basic(void **state)
{
	lua_State *L = *state;

	lua_true(L, "return json.decode('{\"x\": 42}').x == 42");
	lua_true(L, "return json.decode('{\"a\": {\"b\": [\"c\", \"d\"]}}').a.b[2] == 'd'");
	lua_true(L, "return json.decode(' true ') == true and json.decode('false') == false");
	lua_true(L, "return json.decode('null') == nil and select('#', json.decode('null')) == 1");
	lua_true(L, "return json.decode('\"\"') == ''");
	lua_true(L, "local t = json.decode('[]') return type(t) == 'table' and next(t) == nil");
	lua_true(L, "local t = json.decode('{}') return type(t) == 'table' and next(t) == nil");
	lua_true(L, "local t = json.decode('{\"k\": null, \"j\": 1}') "
		    "return t.k == nil and t.j == 1");
	lua_true(L, "local t = json.decode('{\"a\":1,\"a\":2}') return t.a == 2");
}

static void test_decode_numbers(void **state)
{
	lua_State *L = *state;

	lua_true(L, "local v = json.decode('9223372036854775807') "
		    "return math.type(v) == 'integer' and v == math.maxinteger");
	lua_true(L, "local v = json.decode('-9223372036854775808') "
		    "return math.type(v) == 'integer' and v == math.mininteger");
	lua_true(L, "local v = json.decode('18446744073709551615') "
		    "return math.type(v) == 'integer' and v == -1 "
		    "and v == tonumber('0xFFFFFFFFFFFFFFFF')");
	lua_true(L, "local v = json.decode('9223372036854775808') "
		    "return math.type(v) == 'integer' and v == math.mininteger");
	lua_true(L, "local v = json.decode('18446744073709551616') "
		    "return math.type(v) == 'float' and v == 2^64");
	lua_true(L, "local v = json.decode('-9223372036854775809') "
		    "return math.type(v) == 'float' and v == -2^63");
	lua_true(L, "local v = json.decode('1e400') return v == math.huge");
	lua_true(L, "local v = json.decode('3.14') return math.type(v) == 'float' and v == 3.14");
	lua_true(L, "local v = json.decode('1e10') return math.type(v) == 'float' and v == 1e10");
	lua_true(L, "local v = json.decode('-0') return math.type(v) == 'integer' and v == 0");
	lua_true(L, "local v = json.decode('2.0') return math.type(v) == 'float'");
	lua_true(L, "local v = json.decode('-1.5E-3') return v == -1.5e-3");
	/* floats round-trip bit-exactly */
	lua_true(L, "for _, x in ipairs({0.1, 1/3, 2^-1074, 1.7976931348623157e308, 123456789.125, 3.0}) do "
		    "local y = json.decode(json.encode(x)) "
		    "if y ~= x or math.type(y) ~= 'float' then return false end end return true");
	lua_true(L, "for _, x in ipairs({0, -1, math.maxinteger, math.mininteger, 1 << 53 | 1}) do "
		    "local y = json.decode(json.encode(x)) "
		    "if y ~= x or math.type(y) ~= 'integer' then return false end end return true");
}

static void test_decode_holes(void **state)
{
	lua_State *L = *state;

	lua_true(L, "local t = json.decode('[1, null, 3]') "
		    "return t[1] == 1 and t[2] == nil and t[3] == 3");
	lua_true(L, "local t = json.decode('[[null, [1, null, [null, 2]]], null, [3]]') "
		    "return t[1][1] == nil and t[1][2][1] == 1 and t[1][2][2] == nil "
		    "and t[1][2][3][2] == 2 and t[2] == nil and t[3][1] == 3");
	lua_true(L, "return json.encode(json.decode('[1,null,3]')) == '[1,null,3]'");
}

static void test_decode_strings(void **state)
{
	lua_State *L = *state;

	lua_true(L, "return json.decode('\"\\\\u00e9\"') == '\\u{e9}'");
	lua_true(L, "return json.decode('\"\\\\ud83d\\\\ude00\"') == '\\u{1F600}'");
	lua_true(L, "return json.decode('\"\\\\\\\"\\\\\\\\\\\\/\\\\b\\\\f\\\\n\\\\r\\\\t\"') "
		    "== '\"\\\\/\\b\\f\\n\\r\\t'");
	lua_true(L, "return json.decode('\"a\\\\u0000b\"') == 'a\\0b'");
	lua_true(L, "return json.decode('\"\\u{20AC}\"') == '\\u{20AC}'");
	/* encode -> decode round trip of awkward strings */
	lua_true(L, "local s = 'x\\0y\\1\\31\\127\"\\\\\\u{10FFFF}' "
		    "return json.decode(json.encode(s)) == s");
}

static void test_decode_errors(void **state)
{
	lua_State *L = *state;

	lua_raises(L, "return json.decode('[1, x]')",
		   "json.decode: unexpected character 'x' at line 1 column 5");
	lua_raises(L, "return json.decode('{\\n  \"a\": tru\\n}')", "at line 2 column 11");
	lua_raises(L, "return json.decode('[1, 2')", "unexpected end of input at line 1 column 6");
	lua_raises(L, "return json.decode('')", "unexpected end of input");
	lua_raises(L, "return json.decode('[1] x')", "trailing character 'x' at line 1 column 5");
	lua_raises(L, "return json.decode('1 2')", "trailing");
	lua_raises(L, "return json.decode('[1,]')", "unexpected character ']'");
	lua_raises(L, "return json.decode('{\"a\" 1}')", "unexpected character '1'");
	lua_raises(L, "return json.decode('{a: 1}')", "unexpected character 'a'");
	lua_raises(L, "return json.decode('01')", "trailing character '1'");
	lua_raises(L, "return json.decode('1.')", "unexpected end of input");
	lua_raises(L, "return json.decode('-')", "unexpected end of input");
	lua_raises(L, "return json.decode('\"abc')", "unterminated string at line 1 column 1");
	lua_raises(L, "return json.decode('\"a\\nb\"')", "control character");
	lua_raises(L, "return json.decode('\"\\\\q\"')", "invalid escape");
	lua_raises(L, "return json.decode('\"\\\\u12\"')", "invalid \\u escape");
	lua_raises(L, "return json.decode('\"\\\\ud83d\"')", "lone high surrogate");
	lua_raises(L, "return json.decode('\"\\\\ude00\"')", "lone low surrogate");
	lua_raises(L, "return json.decode('\"\\\\ud83d\\\\u0041\"')", "invalid surrogate pair");
	lua_raises(L, "return json.decode('NaN')", "unexpected character 'N'");
	lua_raises(L, "return json.decode(string.rep('[', 600) .. string.rep(']', 600))",
		   "nesting");
	lua_raises(L, "return json.decode({})", "bad argument");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_encode_scalars, setup, teardown),
		cmocka_unit_test_setup_teardown(test_encode_tables, setup, teardown),
		cmocka_unit_test_setup_teardown(test_encode_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_decode_basic, setup, teardown),
		cmocka_unit_test_setup_teardown(test_decode_numbers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_decode_holes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_decode_strings, setup, teardown),
		cmocka_unit_test_setup_teardown(test_decode_errors, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
