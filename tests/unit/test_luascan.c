/* test_luascan.c — unit tests for the Lua source scanner (src/host/luascan.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "luascan.h"

static struct luascan_result res;
static char err[256];

/* Scan src; asserts the scan succeeds. */
static void scan_ok(const char *src)
{
	luascan_free(&res);
	if (luascan_buffer(src, strlen(src), &res, err, sizeof err) != 0)
		fail_msg("scan failed: %s\n--- source:\n%s", err, src);
}

static int teardown(void **state)
{
	luascan_free(&res);
	return 0;
}

/* Assert call i has this function, line and literal argument (NULL: none). */
static void call_is(size_t i, enum luascan_fn fn, int line, const char *arg)
{
	assert_true(i < res.ncalls);
	assert_int_equal(res.calls[i].fn, fn);
	assert_int_equal(res.calls[i].line, line);
	if (!arg) {
		assert_null(res.calls[i].arg);
	} else {
		assert_non_null(res.calls[i].arg);
		assert_int_equal(res.calls[i].arg_len, strlen(arg));
		assert_memory_equal(res.calls[i].arg, arg, strlen(arg));
	}
}

static void test_call_forms(void **state)
{
	scan_ok("f = require(\"a\")\n"
		"require \"b\"\n"
		"require [[c]]\n"
		"obj:push_file('d', '/d')\n"
		"obj.depends_on_file(\"e\")\n"
		"a.b:push_file(\"f\", \"/f\", {auto_dep = false})\n"
		"local v = vm_fixture(\"g\", {}) lab_fixture \"h\"\n"
		"provium:claim({memory = 4096, cpus = 2})\n"
		"provium:claim{cpus=3}\n"
		"require'i'\n");
	assert_int_equal(res.ncalls, 11);
	call_is(0, LS_REQUIRE, 1, "a");
	call_is(1, LS_REQUIRE, 2, "b");
	call_is(2, LS_REQUIRE, 3, "c");
	call_is(3, LS_PUSH_FILE, 4, "d");
	assert_false(res.calls[3].no_auto_dep);
	call_is(4, LS_DEPENDS_ON_FILE, 5, "e");
	call_is(5, LS_PUSH_FILE, 6, "f");
	assert_true(res.calls[5].no_auto_dep);
	call_is(6, LS_VM_FIXTURE, 7, "g");
	call_is(7, LS_LAB_FIXTURE, 7, "h");
	call_is(8, LS_CLAIM, 8, NULL);
	assert_true(res.calls[8].has_memory);
	assert_int_equal(res.calls[8].memory, 4096);
	assert_true(res.calls[8].has_cpus);
	assert_int_equal(res.calls[8].cpus, 2);
	call_is(9, LS_CLAIM, 9, NULL);
	assert_false(res.calls[9].has_memory);
	assert_true(res.calls[9].has_cpus);
	assert_int_equal(res.calls[9].cpus, 3);
	call_is(10, LS_REQUIRE, 10, "i");
	for (size_t i = 0; i < res.ncalls; i++)
		assert_true(res.calls[i].at_top_level);
}

static void test_comments_and_strings_hide_calls(void **state)
{
	scan_ok("-- require(\"a\")\n"
		"--[[ require(\"b\")\n"
		"   push_file('c') ]]\n"
		"--[==[ ]] require('d') ]=] ]==]\n"
		"local s = [==[ require(\"e\") ]] ]=] ]==]\n"
		"local q = \"...\\\"require('y')...\"\n"
		"local r = '\\'claim{cpus=1}\\''\n"
		"--[ not a long comment require('f')\n"
		"---[[ line comment only\n"
		"require('real')\n"
		"-- ]]\n");
	assert_int_equal(res.ncalls, 1);
	call_is(0, LS_REQUIRE, 10, "real");
}

static void test_not_calls(void **state)
{
	scan_ok("local function require(x) end\n"
		"function M.push_file(a, b) end\n"
		"function a.b:claim(t) end\n"
		"local claim = 1\n"
		"pcall(require, 'x')\n"
		"t.require = nil\n"
		"local x = { require = 1, claim = 2 }\n"
		"requirex('y')\n"
		"my_claim{cpus = 1}\n");
	assert_int_equal(res.ncalls, 0);
}

static void test_non_literal_args(void **state)
{
	scan_ok("vm:push_file(\"build/\" .. arch, \"/bin/foo\")\n"
		"vm:push_file(my_path, \"/foo\")\n"
		"require(name)\n"
		"require()\n"
		"depends_on_file((\"x\"))\n"
		"require \"a\" .. \"b\"\n"
		"vm:push_file(\"p\", \"/p\", {auto_dep = x})\n"
		"vm:push_file(\"q\", \"/q\", {auto_dep = false and x})\n");
	assert_int_equal(res.ncalls, 8);
	call_is(0, LS_PUSH_FILE, 1, NULL);
	call_is(1, LS_PUSH_FILE, 2, NULL);
	call_is(2, LS_REQUIRE, 3, NULL);
	call_is(3, LS_REQUIRE, 4, NULL);
	call_is(4, LS_DEPENDS_ON_FILE, 5, NULL);
	call_is(5, LS_REQUIRE, 6, "a");       /* (require "a") .. "b" */
	call_is(6, LS_PUSH_FILE, 7, "p");
	assert_false(res.calls[6].no_auto_dep);
	call_is(7, LS_PUSH_FILE, 8, "q");
	assert_false(res.calls[7].no_auto_dep);
}

static void test_nested_table_fields(void **state)
{
	/* only the constructor's own level counts; nested/other tables don't */
	scan_ok("vm:push_file('a', '/a', {opts = {auto_dep = false}})\n"
		"vm:push_file('b', f{auto_dep = false})\n"
		"vm:push_file('c', '/c', {mode = 420; auto_dep = false})\n"
		"provium:claim({cpus = 2 + 1, memory = x})\n");
	assert_int_equal(res.ncalls, 4);
	assert_false(res.calls[0].no_auto_dep);
	assert_false(res.calls[1].no_auto_dep);
	assert_true(res.calls[2].no_auto_dep);
	assert_false(res.calls[3].has_cpus);
	assert_false(res.calls[3].has_memory);
}

static void test_top_level_tracking(void **state)
{
	scan_ok("require 'a'\n"                                   /* 1 top */
		"local function f()\n"
		"  require 'b'\n"                                 /* 3 in fn */
		"  while x do require 'c' end\n"                  /* 4 in fn */
		"  for i = 1, 2 do if x then require 'd' elseif y then else end end\n"
		"  repeat local g = function() end until require 'e'\n"
		"end\n"
		"do require 'f' end\n"                            /* 8 top */
		"while true do break end require 'g'\n"           /* 9 top */
		"for _, v in ipairs(t) do require 'h' end\n"      /* 10 top */
		"if a then require 'i' else require 'j' end\n"    /* 11 top */
		"repeat require 'k' until true\n"                 /* 12 top */
		"t.cb = function() require 'l' end require 'm'\n" /* 13 fn, top */
		"while (function() return false end)() do require 'n' end\n"
		"function M.x() do end require 'o' end\n"         /* 15 fn */
		"require 'p'\n");                                 /* 16 top */
	assert_int_equal(res.ncalls, 16);
	const bool top[] = { true, false, false, false, false, true, true, true,
			     true, true, true, false, true, true, false, true };
	for (size_t i = 0; i < 16; i++) {
		assert_int_equal(res.calls[i].arg[0], 'a' + (int)i);
		if (res.calls[i].at_top_level != top[i])
			fail_msg("call %zu (%s) at_top_level=%d", i, res.calls[i].arg,
				 res.calls[i].at_top_level);
	}
	call_is(15, LS_REQUIRE, 16, "p");
}

static void test_numbers(void **state)
{
	scan_ok("local a = 0x1p4 require \"n1\"\n"
		"local b = 3e-2 require \"n2\"\n"
		"local c = .5 + 3. + 0xA.8P-1 + 1E+10 + 0XfF require \"n3\"\n"
		"local d = a.b.require(\"n4\")\n"
		"local e = x..require\"n5\"\n"
		"local f = 1..2 require \"n6\"\n"
		"provium:claim{cpus = 0x10, memory = 0x100000000}\n"
		"provium:claim{cpus = 1.0, memory = 2.5}\n"
		"provium:claim{memory_bytes = 1048576}\n");
	assert_int_equal(res.ncalls, 9);
	call_is(0, LS_REQUIRE, 1, "n1");
	call_is(1, LS_REQUIRE, 2, "n2");
	call_is(2, LS_REQUIRE, 3, "n3");
	call_is(3, LS_REQUIRE, 4, "n4");
	call_is(4, LS_REQUIRE, 5, "n5");
	call_is(5, LS_REQUIRE, 6, "n6");
	assert_true(res.calls[6].has_cpus);
	assert_int_equal(res.calls[6].cpus, 16);
	assert_true(res.calls[6].has_memory);
	assert_int_equal(res.calls[6].memory, 0x100000000ull);
	assert_false(res.calls[7].has_cpus);
	assert_false(res.calls[7].has_memory);
	assert_true(res.calls[8].has_memory);  /* lab:claim's synonym */
	assert_int_equal(res.calls[8].memory, 1048576);
}

static void test_string_escapes(void **state)
{
	scan_ok("require \"a\\tb\\\\c\\\"d\\'e\"\n"
		"require '\\x41\\65\\0669\\u{48}\\u{20AC}\\u{7FFFFFFF}'\n"
		"require \"x\\z   \n"
		"     y\"\n"
		"require \"l1\\\nl2\"\n"
		"require [==[\nfirst]] ]=]\nsecond]==]\n"
		"require 'end'\n");
	assert_int_equal(res.ncalls, 6);
	call_is(0, LS_REQUIRE, 1, "a\tb\\c\"d'e");
	call_is(1, LS_REQUIRE, 2, "AAB9H\xe2\x82\xac\xfd\xbf\xbf\xbf\xbf\xbf");
	call_is(2, LS_REQUIRE, 3, "xy");
	call_is(3, LS_REQUIRE, 5, "l1\nl2");
	call_is(4, LS_REQUIRE, 7, "first]] ]=]\nsecond");
	call_is(5, LS_REQUIRE, 10, "end");
	/* an embedded NUL is kept */
	scan_ok("require 'a\\0b'");
	assert_int_equal(res.ncalls, 1);
	assert_int_equal(res.calls[0].arg_len, 3);
	assert_memory_equal(res.calls[0].arg, "a\0b", 3);
}

static void test_line_endings(void **state)
{
	scan_ok("#!/usr/bin/env provium require 'no'\r\n"
		"\r\n"
		"require 'a'\n\r"
		"--[[\r\n\r\n]] require 'b'\r"
		"require 'c'");
	assert_int_equal(res.ncalls, 3);
	call_is(0, LS_REQUIRE, 3, "a");
	call_is(1, LS_REQUIRE, 6, "b");
	call_is(2, LS_REQUIRE, 7, "c");
}

static void test_errors(void **state)
{
	static const struct {
		const char *src, *msg;
	} cases[] = {
		{ "require 'a'\nlocal s = \"abc\nrequire 'b'", "line 2: unfinished string" },
		{ "require 'a'\n--[==[ x ]=]\n", "unfinished long comment (starting at line 2)" },
		{ "require 'a'\nlocal s = [[ x ]=]", "unfinished long string" },
		{ "require 'a'\nlocal s = '\\q'", "line 2: invalid escape" },
		{ "require 'a'\nlocal s = '\\xZZ'", "hexadecimal digit" },
		{ "require 'a'\nlocal s = '\\300'", "decimal escape too large" },
		{ "require 'a'\nlocal s = '\\u{110000000}'", "too large" },
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		luascan_free(&res);
		assert_int_equal(luascan_buffer(cases[i].src, strlen(cases[i].src), &res,
						err, sizeof err), -1);
		if (!strstr(err, cases[i].msg))
			fail_msg("case %zu: error '%s' lacks '%s'", i, err, cases[i].msg);
		/* results are valid up to the error */
		assert_int_equal(res.ncalls, 1);
		call_is(0, LS_REQUIRE, 1, "a");
	}
}

static void test_file(void **state)
{
	char path[] = "/tmp/test_luascan_XXXXXX";
	int fd = mkstemp(path);
	const char *src = "provium:depends_on_file('../t.in')\n";

	assert_true(fd >= 0);
	assert_int_equal(write(fd, src, strlen(src)), (ssize_t)strlen(src));
	close(fd);
	luascan_free(&res);
	assert_int_equal(luascan_file(path, &res, err, sizeof err), 0);
	assert_int_equal(res.ncalls, 1);
	call_is(0, LS_DEPENDS_ON_FILE, 1, "../t.in");
	unlink(path);
	luascan_free(&res);
	assert_int_equal(luascan_file(path, &res, err, sizeof err), -1);
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, "No such file"));
	assert_int_equal(res.ncalls, 0);
}

/* Last: relies on parse_size_bytes (src/host/units.c). */
static void test_claim_memory_strings(void **state)
{
	scan_ok("provium:claim({memory = \"4G\", cpus = 2})\n"
		"provium:claim{memory = '512M'}\n"
		"provium:claim{memory = 'lots'}\n");
	assert_int_equal(res.ncalls, 3);
	assert_true(res.calls[0].has_memory);
	assert_int_equal(res.calls[0].memory, 4ull << 30);
	assert_int_equal(res.calls[0].cpus, 2);
	assert_true(res.calls[1].has_memory);
	assert_int_equal(res.calls[1].memory, 512ull << 20);
	assert_false(res.calls[1].has_cpus);
	assert_false(res.calls[2].has_memory);
}

/* test() registrations: literal names and tags; dynamic ones still seen. */
static void test_test_calls(void **state)
{
	scan_ok("test(\"boots fast\", {tags = {\"smoke\", 'net'}, slow = true}, function(t)\n"
		"  vm:test(\"not a registration\")\n"
		"  local x = {tags = {\"inner\"}}\n"
		"end)\n"
		"test('plain', function(t) end)\n"
		"for _, n in ipairs({1, 2}) do test(\"n\" .. n, {tags = \"gen\"}, function() end) end\n"
		"test(name_of(3), {tags = tag_list}, function() end)\n"
		"obj.test(\"no\") local function test(x) end\n"
		"-- test(\"commented\")\n");
	assert_int_equal(res.ncalls, 4);
	call_is(0, LS_TEST, 1, "boots fast");
	assert_int_equal(res.calls[0].ntags, 2);
	assert_string_equal(res.calls[0].tags[0], "smoke");
	assert_string_equal(res.calls[0].tags[1], "net");
	assert_false(res.calls[0].tags_dynamic);
	call_is(1, LS_TEST, 5, "plain");
	assert_int_equal(res.calls[1].ntags, 0);
	call_is(2, LS_TEST, 6, NULL);
	assert_int_equal(res.calls[2].ntags, 1);
	assert_string_equal(res.calls[2].tags[0], "gen");
	call_is(3, LS_TEST, 7, NULL);
	assert_int_equal(res.calls[3].ntags, 0);
	assert_true(res.calls[3].tags_dynamic);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_call_forms, teardown),
		cmocka_unit_test_teardown(test_comments_and_strings_hide_calls, teardown),
		cmocka_unit_test_teardown(test_not_calls, teardown),
		cmocka_unit_test_teardown(test_non_literal_args, teardown),
		cmocka_unit_test_teardown(test_nested_table_fields, teardown),
		cmocka_unit_test_teardown(test_top_level_tracking, teardown),
		cmocka_unit_test_teardown(test_numbers, teardown),
		cmocka_unit_test_teardown(test_string_escapes, teardown),
		cmocka_unit_test_teardown(test_line_endings, teardown),
		cmocka_unit_test_teardown(test_errors, teardown),
		cmocka_unit_test_teardown(test_file, teardown),
		cmocka_unit_test_teardown(test_claim_memory_strings, teardown),
		cmocka_unit_test_teardown(test_test_calls, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
