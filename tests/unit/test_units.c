/* test_units.c — duration and size parsing (src/host/units.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "units.h"

static int64_t dur(const char *s)
{
	char err[256] = "";
	int64_t ns = -12345;
	if (parse_duration_ns(s, &ns, err, sizeof err) != 0)
		fail_msg("parse_duration_ns(\"%s\") failed: %s", s, err);
	return ns;
}

static void dur_bad(const char *s, const char *want_in_msg)
{
	char err[256] = "";
	int64_t ns = 777;
	assert_int_equal(parse_duration_ns(s, &ns, err, sizeof err), -1);
	assert_int_equal(ns, 777); /* untouched */
	if (!strstr(err, want_in_msg))
		fail_msg("message \"%s\" lacks \"%s\"", err, want_in_msg);
}

static uint64_t size(const char *s)
{
	char err[256] = "";
	uint64_t v = 0;
	if (parse_size_bytes(s, &v, err, sizeof err) != 0)
		fail_msg("parse_size_bytes(\"%s\") failed: %s", s, err);
	return v;
}

static void size_bad(const char *s, const char *want_in_msg)
{
	char err[256] = "";
	uint64_t v = 777;
	assert_int_equal(parse_size_bytes(s, &v, err, sizeof err), -1);
	assert_int_equal(v, 777);
	if (!strstr(err, want_in_msg))
		fail_msg("message \"%s\" lacks \"%s\"", err, want_in_msg);
}

static void test_durations(void **state)
{
	(void)state;
	assert_true(dur("30") == INT64_C(30000000000));
	assert_true(dur("0") == 0);
	assert_true(dur("0.5") == INT64_C(500000000));
	assert_true(dur(".25") == INT64_C(250000000));
	assert_true(dur("500ms") == INT64_C(500000000));
	assert_true(dur("30s") == INT64_C(30000000000));
	assert_true(dur("1.5s") == INT64_C(1500000000));
	assert_true(dur("10m") == INT64_C(600000000000));
	assert_true(dur("2h") == INT64_C(7200000000000));
	assert_true(dur("250us") == INT64_C(250000));
	assert_true(dur("7ns") == 7);
	assert_true(dur("9223372036") == INT64_C(9223372036000000000));
}

static void test_duration_errors(void **state)
{
	(void)state;
	dur_bad("abc", "bad duration `abc`");
	dur_bad("", "bad duration ``");
	dur_bad("-1", "bad duration `-1`");
	dur_bad("-1", "negative");
	dur_bad("10x", "bad duration `10x`");
	dur_bad("5 s", "bad duration `5 s`");
	dur_bad("1e3", "bad duration `1e3`");
	dur_bad("inf", "bad duration `inf`");
	dur_bad("s", "bad duration `s`");
	dur_bad("1.", "bad duration `1.`");
	dur_bad("9223372037", "too large");
	dur_bad("99999999999999999999999h", "too large");
}

static void test_sizes(void **state)
{
	(void)state;
	assert_true(size("4096") == 4096);
	assert_true(size("0") == 0);
	assert_true(size("512K") == 512 * 1024);
	assert_true(size("512M") == UINT64_C(512) << 20);
	assert_true(size("2G") == UINT64_C(2) << 30);
	assert_true(size("1GiB") == UINT64_C(1) << 30);
	assert_true(size("1GB") == UINT64_C(1) << 30);
	assert_true(size("3T") == UINT64_C(3) << 40);
	assert_true(size("1.5G") == (UINT64_C(3) << 29));
	assert_true(size("100B") == 100);
	assert_true(size("20g") == UINT64_C(20) << 30);
}

static void test_size_errors(void **state)
{
	(void)state;
	size_bad("abc", "bad size `abc`");
	size_bad("", "bad size ``");
	size_bad("-1G", "negative");
	size_bad("12X", "bad size `12X`");
	size_bad("1.5", "bad size `1.5`");
	size_bad("1GiBx", "bad size `1GiBx`");
	size_bad("99999999999999999999", "too large");
	size_bad("20000000T", "too large");
}

static void test_guest_memory(void **state)
{
	char err[256] = "";
	(void)state;
	assert_int_equal(check_guest_memory(GUEST_MEMORY_MIN, "16M", err, sizeof err), 0);
	assert_int_equal(check_guest_memory(UINT64_C(512) << 20, "536870912", err, sizeof err), 0);
	assert_int_equal(check_guest_memory(512, "512", err, sizeof err), -1);
	assert_string_equal(err, "512 is 512 bytes (a size without a unit is bytes), less than the "
			    "16M a guest needs; write \"512M\" for 512 MiB");
	assert_int_equal(check_guest_memory(GUEST_MEMORY_MIN - 1, "16777215", err, sizeof err), -1);
	assert_int_equal(check_guest_memory(UINT64_C(8) << 20, "8M", err, sizeof err), -1);
	assert_string_equal(err, "`8M` is 8388608 bytes, less than the 16M a guest needs");
	assert_int_equal(check_guest_memory(100, "100B", err, sizeof err), -1);
	assert_string_equal(err, "`100B` is 100 bytes, less than the 16M a guest needs");
}

static void test_format_seconds(void **state)
{
	char buf[32];
	(void)state;
	format_seconds(INT64_C(12340000000), buf, sizeof buf);
	assert_string_equal(buf, "12.34s");
	format_seconds(0, buf, sizeof buf);
	assert_string_equal(buf, "0.00s");
	format_seconds(INT64_C(5000000), buf, sizeof buf);
	assert_string_equal(buf, "0.01s");
	format_seconds(INT64_C(999999999), buf, sizeof buf);
	assert_string_equal(buf, "1.00s");
	format_seconds(INT64_C(-1500000000), buf, sizeof buf);
	assert_string_equal(buf, "-1.50s");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_durations),
		cmocka_unit_test(test_duration_errors),
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_size_errors),
		cmocka_unit_test(test_guest_memory),
		cmocka_unit_test(test_format_seconds),
	};
	return cmocka_run_group_tests_name("units", tests, NULL, NULL);
}
