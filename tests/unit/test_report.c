/* test_report.c — captured output bookkeeping and the human renderer's
 * log / output sections and colours (src/host/report.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "report.h"

static char *render(const struct file_result *r, enum verbosity v, bool color, bool show_output)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	struct report_style st = { .verbosity = v, .color = color, .show_output = show_output };
	assert_non_null(f);
	report_file(f, r, &st);
	fclose(f);
	return buf;
}

static void output_cap_keeps_newest(void **state)
{
	struct file_result r = { 0 };
	char line[100];
	(void)state;
	memset(line, 'a', sizeof line - 1);
	line[sizeof line - 1] = '\n';
	/* 1.5 MiB in lines of 100 bytes, then a last line */
	for (size_t i = 0; i < 15 * 1024 * 1024 / 1000; i++)
		assert_int_equal(file_result_add_output(&r, line, sizeof line), 0);
	assert_int_equal(file_result_add_output(&r, "last\n", 5), 0);
	assert_true(r.output_len <= REPORT_OUTPUT_MAX);
	assert_true(r.output_dropped > 0);
	assert_int_equal(r.output_len + r.output_dropped, 15 * 1024 * 1024 / 1000 * 100 + 5);
	assert_int_equal(r.output[0], 'a');            /* cut at a line boundary */
	assert_int_equal(r.output_dropped % 100, 0);
	assert_string_equal(r.output + r.output_len - 5, "last\n");
	/* one chunk larger than the cap keeps its tail */
	char *big = malloc(REPORT_OUTPUT_MAX + 10);
	assert_non_null(big);
	memset(big, 'b', REPORT_OUTPUT_MAX + 10);
	big[REPORT_OUTPUT_MAX + 9] = 'z';
	assert_int_equal(file_result_add_output(&r, big, REPORT_OUTPUT_MAX + 10), 0);
	assert_int_equal(r.output_len, REPORT_OUTPUT_MAX);
	assert_int_equal(r.output[r.output_len - 1], 'z');
	free(big);
	/* NUL bytes do not cut the rendered text short */
	file_result_free(&r);
	assert_int_equal(file_result_add_output(&r, "x\0y\n", 4), 0);
	assert_string_equal(r.output, "x?y\n");
	file_result_free(&r);
}

static void sections_and_colour(void **state)
{
	struct file_result r = { 0 };
	char *s;
	(void)state;
	r.path = strdup("t/a.test.lua");
	r.pending_log_name = strdup("bad");
	r.pending_log = calloc(1, sizeof *r.pending_log);
	r.pending_log[0] = strdup("a log line");
	r.npending_log = 1;
	file_result_add_test(&r, "bad", TS_FAILED, "boom");
	file_result_add_output(&r, "printed\nmore", 12);
	r.status = FS_FAILED;

	s = render(&r, VERB_NORMAL, false, true);
	assert_string_equal(s, "FAIL t/a.test.lua (0 passed, 1 failed, 0 skipped)\n"
			       "    FAIL bad\n"
			       "        boom\n"
			       "        --- log ---\n"
			       "        a log line\n"
			       "    --- output ---\n"
			       "        printed\n"
			       "        more\n");
	free(s);
	/* --no-capture: already shown live, not repeated */
	s = render(&r, VERB_NORMAL, false, false);
	assert_null(strstr(s, "--- output ---"));
	assert_non_null(strstr(s, "a log line"));
	free(s);
	s = render(&r, VERB_NORMAL, true, true);
	assert_non_null(strstr(s, "\033[31mFAIL\033[0m t/a.test.lua"));
	assert_non_null(strstr(s, "    \033[31mFAIL\033[0m bad\n"));
	free(s);

	/* a passing file: output only with -v; green PASS */
	r.tests[0].status = TS_PASSED;
	r.status = FS_PASSED;
	s = render(&r, VERB_NORMAL, true, true);
	assert_string_equal(s, "\033[32mPASS\033[0m t/a.test.lua (1 passed, 0 failed, 0 skipped)\n");
	free(s);
	s = render(&r, VERB_VERBOSE, false, true);
	assert_non_null(strstr(s, "    PASS bad (0 ms)\n        --- log ---\n        a log line\n"));
	assert_non_null(strstr(s, "    --- output ---\n        printed\n"));
	free(s);
	s = render(&r, VERB_QUIET, false, true);
	assert_string_equal(s, "");
	free(s);
	file_result_free(&r);
}

static void interrupted_list(void **state)
{
	char *buf = NULL, r1[] = "t/run.test.lua", q1[] = "t/q1.test.lua", q2[] = "t/q2.test.lua";
	char *a[] = { r1 }, *b[] = { q1, q2 };
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	(void)state;
	report_interrupted(f, 2, a, 1, b, 2, false);
	fclose(f);
	assert_string_equal(buf, "\ninterrupted by SIGINT: 3 file(s) did not finish\n"
				 "    INTERRUPTED t/run.test.lua\n"
				 "    NOT RUN t/q1.test.lua\n"
				 "    NOT RUN t/q2.test.lua\n");
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(output_cap_keeps_newest),
		cmocka_unit_test(sections_and_colour),
		cmocka_unit_test(interrupted_list),
	};
	return cmocka_run_group_tests_name("report", tests, NULL, NULL);
}
