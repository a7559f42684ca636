/* test_toml.c — edge cases of the TOML parser (src/host/toml.c) that the
 * toml-test corpus does not pin down for provium's own use: key positions,
 * error line:col, int64 limits, the accessor helpers, depth limits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "toml.h"

static struct toml_node *ok(const char *doc)
{
	struct toml_error err;
	struct toml_node *r = toml_parse(doc, strlen(doc), &err);
	if (!r)
		fail_msg("unexpected parse error %d:%d %s for:\n%s", err.line, err.col, err.msg, doc);
	return r;
}

/* Expect a parse error at line:col (col 0 = don't care). */
static void bad_at(const char *doc, int line, int col)
{
	struct toml_error err;
	struct toml_node *r = toml_parse(doc, strlen(doc), &err);
	if (r) {
		toml_free(r);
		fail_msg("accepted invalid document:\n%s", doc);
	}
	assert_true(err.msg[0] != 0);
	if (line)
		assert_int_equal(err.line, line);
	if (col)
		assert_int_equal(err.col, col);
}

static void bad(const char *doc)
{
	bad_at(doc, 0, 0);
}

static void test_basic_tree(void **state)
{
	struct toml_node *r = ok("title = \"x\"\n\n[server]\n  port = 8080\n  on = true\n");
	struct toml_node *srv = toml_get(r, "server");
	const struct toml_kv *kv;
	(void)state;
	assert_non_null(srv);
	assert_int_equal(srv->type, TOML_TABLE);
	assert_int_equal(toml_get(srv, "port")->type, TOML_INTEGER);
	assert_int_equal(toml_get(srv, "port")->u.i, 8080);
	assert_true(toml_get(srv, "on")->u.b);
	assert_string_equal(toml_get(r, "title")->u.str.ptr, "x");
	assert_null(toml_get(r, "missing"));
	kv = toml_get_kv(srv, "port");
	assert_int_equal(kv->line, 4);
	assert_int_equal(kv->col, 3);
	/* value position */
	assert_int_equal(kv->val->line, 4);
	assert_int_equal(kv->val->col, 10);
	toml_free(r);
}

static void test_key_order_preserved(void **state)
{
	struct toml_node *r = ok("z = 1\na = 2\nm = 3\n");
	(void)state;
	assert_int_equal(r->u.tab.n, 3);
	assert_string_equal(r->u.tab.items[0].key, "z");
	assert_string_equal(r->u.tab.items[1].key, "a");
	assert_string_equal(r->u.tab.items[2].key, "m");
	toml_free(r);
}

static void test_error_positions(void **state)
{
	(void)state;
	bad_at("a = 1\nb = \n", 2, 5);           /* missing value */
	bad_at("a = 1\na = 2\n", 2, 1);          /* duplicate key */
	bad_at("[t]\nx=1\n[t]\n", 3, 1);         /* table defined twice */
	bad_at("s = \"abc\n", 1, 9);             /* newline in basic string */
	bad_at("# é\nk = 'a' x\n", 2, 9);        /* garbage after value */
	bad_at("é = 1\n", 1, 1);                 /* bare keys are ASCII */
	bad_at("x = \"\xC3\xA9\" # \xFF\n", 1, 0); /* invalid UTF-8 */
}

static void test_integers(void **state)
{
	struct toml_node *r;
	(void)state;
	r = ok("max = 9223372036854775807\nmin = -9223372036854775808\n"
	       "h = 0xDEAD_beef\no = 0o755\nb = 0b1010\nu = 1_000\nz = -0\np = +7\n");
	assert_true(toml_get(r, "max")->u.i == INT64_MAX);
	assert_true(toml_get(r, "min")->u.i == INT64_MIN);
	assert_int_equal(toml_get(r, "h")->u.i, 0xDEADBEEF);
	assert_int_equal(toml_get(r, "o")->u.i, 0755);
	assert_int_equal(toml_get(r, "b")->u.i, 10);
	assert_int_equal(toml_get(r, "u")->u.i, 1000);
	assert_int_equal(toml_get(r, "z")->u.i, 0);
	assert_int_equal(toml_get(r, "p")->u.i, 7);
	toml_free(r);
	bad("x = 9223372036854775808\n");
	bad("x = -9223372036854775809\n");
	bad("x = 0x8000000000000000\n");
	bad("x = 01\n");
	bad("x = 1__0\n");
	bad("x = _1\n");
	bad("x = 1_\n");
	bad("x = +0x1\n");
	bad("x = 0x_1\n");
	bad("x = 0b2\n");
	bad("x = 1 2\n");
}

static void test_floats(void **state)
{
	struct toml_node *r;
	(void)state;
	r = ok("a = 1.5\nb = -2e-3\nc = inf\nd = -nan\ne = 6.626_070e-34\nf = 1E6\n");
	assert_true(toml_get(r, "a")->u.f == 1.5);
	assert_true(toml_get(r, "b")->u.f == -2e-3);
	assert_true(isinf(toml_get(r, "c")->u.f) && toml_get(r, "c")->u.f > 0);
	assert_true(isnan(toml_get(r, "d")->u.f));
	assert_true(toml_get(r, "f")->u.f == 1e6);
	toml_free(r);
	bad("x = .5\n");
	bad("x = 5.\n");
	bad("x = 1.e5\n");
	bad("x = 1e\n");
	bad("x = Inf\n");
	bad("x = 01.5\n");
}

static void test_strings(void **state)
{
	struct toml_node *r;
	const struct toml_node *n;
	(void)state;
	r = ok("a = \"tab\\tnl\\n\\u00e9\\U0001F600\"\n"
	       "b = 'C:\\path'\n"
	       "c = \"\"\"\nline1\\\n   line2\"\"\"\"\"\n"
	       "d = '''x''''\n"
	       "e = \"nul\\u0000x\"\n");
	assert_string_equal(toml_get(r, "a")->u.str.ptr, "tab\tnl\n\xC3\xA9\xF0\x9F\x98\x80");
	assert_string_equal(toml_get(r, "b")->u.str.ptr, "C:\\path");
	assert_string_equal(toml_get(r, "c")->u.str.ptr, "line1line2\"\"");
	assert_string_equal(toml_get(r, "d")->u.str.ptr, "x'");
	n = toml_get(r, "e");
	assert_int_equal(n->u.str.len, 5);
	assert_memory_equal(n->u.str.ptr, "nul\0x", 5);
	toml_free(r);
	bad("x = \"\\uD800\"\n");        /* surrogate */
	bad("x = \"\\U00110000\"\n");    /* beyond Unicode */
	bad("x = \"\\x41\"\n");          /* not TOML 1.0 */
	bad("x = \"\\e\"\n");
	bad("x = \"a\x01b\"\n");         /* raw control character */
	bad("x = '''a''''''\n");         /* six quotes */
	bad("x = \"\"\"a\rb\"\"\"\n");   /* bare CR */
	bad("\"\"\"k\"\"\" = 1\n");      /* multi-line key */
}

static void test_tables_and_dotted_keys(void **state)
{
	struct toml_node *r;
	(void)state;
	r = ok("[fruit]\napple.color = 'red'\napple.taste.sweet = true\n"
	       "[fruit.apple.texture]\nsmooth = true\n"
	       "[a.b.c]\n[a]\nx = 1\n"
	       "[[arr]]\nn = 1\n[[arr]]\nn = 2\n[arr.sub]\nq = 3\n");
	assert_int_equal(toml_get(toml_get(toml_get(r, "fruit"), "apple"), "texture")->type,
			 TOML_TABLE);
	assert_int_equal(toml_get(r, "arr")->u.arr.n, 2);
	assert_int_equal(toml_get(toml_get(r, "arr")->u.arr.items[1], "sub")->type, TOML_TABLE);
	toml_free(r);
	bad("[fruit]\napple.color = 'red'\n[fruit.apple]\n");
	bad("a = {b = 1}\n[a]\n");
	bad("a = {b = 1}\na.c = 2\n");
	bad("a = [1]\n[[a]]\n");
	bad("[a.b.c]\nz = 9\n[a]\nb.c.t = 1\n");
	bad("[[a]]\n[a]\n");
	bad("[a]\n[[a]]\n");
	bad("a = 1\na.b = 2\n");
	bad("t = {a = 1,}\n");
	bad("t = {a = 1,\nb = 2}\n");
	bad("[a]b = 1\n");
	bad("[]\n");
}

static void test_datetimes(void **state)
{
	struct toml_node *r;
	char buf[64];
	(void)state;
	r = ok("odt = 1979-05-27 07:32:00.5-07:00\nz = 1979-05-27t07:32:00z\n"
	       "ldt = 1979-05-27T07:32:00\nld = 2024-02-29\nlt = 00:32:00.999999999999\n");
	assert_int_equal(toml_get(r, "odt")->type, TOML_DATETIME);
	assert_string_equal(toml_format_datetime(toml_get(r, "odt"), buf, sizeof buf),
			    "1979-05-27T07:32:00.5-07:00");
	assert_string_equal(toml_format_datetime(toml_get(r, "z"), buf, sizeof buf),
			    "1979-05-27T07:32:00Z");
	assert_int_equal(toml_get(r, "ldt")->type, TOML_DATETIME_LOCAL);
	assert_int_equal(toml_get(r, "ld")->type, TOML_DATE_LOCAL);
	assert_int_equal(toml_get(r, "lt")->type, TOML_TIME_LOCAL);
	assert_string_equal(toml_format_datetime(toml_get(r, "lt"), buf, sizeof buf),
			    "00:32:00.999999999");
	toml_free(r);
	bad("d = 2023-02-29\n");
	bad("d = 1979-05-27T07:32\n");
	bad("d = 1979-05-27T24:00:00\n");
	bad("d = 1979-05-27T07:32:00+24:00\n");
	bad("d = 1979-5-27\n");
}

static void test_whitespace_comments_newlines(void **state)
{
	struct toml_node *r;
	(void)state;
	r = ok("\xEF\xBB\xBF# bom then comment\r\na = [\r\n 1, # c\n 2,\n]\r\n\t[ t . 'u' ]  # x\n");
	assert_int_equal(toml_get(r, "a")->u.arr.n, 2);
	assert_non_null(toml_get(toml_get(r, "t"), "u"));
	toml_free(r);
	bad("a = 1\r\nb = 2\r");
	bad("# comment with \x7F\n");
	{
		struct toml_error err;
		assert_null(toml_parse("a = 1 # \0\n", 10, &err)); /* NUL in comment */
		assert_int_equal(err.col, 9);
	}
	r = ok("");
	assert_int_equal(r->u.tab.n, 0);
	toml_free(r);
}

static void test_depth_limit(void **state)
{
	size_t n = 100000, i;
	char *doc = malloc(n + 8);
	struct toml_error err;
	(void)state;
	memcpy(doc, "a = ", 4);
	for (i = 4; i < n; i++)
		doc[i] = '[';
	doc[n] = 0;
	assert_null(toml_parse(doc, n, &err));
	assert_non_null(strstr(err.msg, "deep"));
	free(doc);
}

static void test_type_names(void **state)
{
	(void)state;
	assert_string_equal(toml_type_name(TOML_STRING), "string");
	assert_string_equal(toml_type_name(TOML_INTEGER), "integer");
	assert_string_equal(toml_type_name(TOML_TABLE), "table");
	assert_string_equal(toml_type_name(TOML_BOOL), "boolean");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_basic_tree),
		cmocka_unit_test(test_key_order_preserved),
		cmocka_unit_test(test_error_positions),
		cmocka_unit_test(test_integers),
		cmocka_unit_test(test_floats),
		cmocka_unit_test(test_strings),
		cmocka_unit_test(test_tables_and_dotted_keys),
		cmocka_unit_test(test_datetimes),
		cmocka_unit_test(test_whitespace_comments_newlines),
		cmocka_unit_test(test_depth_limit),
		cmocka_unit_test(test_type_names),
	};
	return cmocka_run_group_tests_name("toml", tests, NULL, NULL);
}
