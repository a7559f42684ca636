/* report.h — per-file outcomes and the human / JSON renderers.
 *
 * The dispatcher fills one struct file_result per file from the runner's
 * frames (test outcomes, _test_log, _chunk_error) and its own verdict
 * (timed out, crashed), then calls report_file() once per file, in
 * discovery order (a file that finishes early waits for the ones before
 * it), so the output is deterministic. report_summary() prints the final
 * line. Renderer formats:
 *   default  `PASS|FAIL|TIME <path> (N passed, N failed, N skipped)`, then
 *            for each failing test `    FAIL <name>` and its message lines
 *            indented 8 spaces; a chunk error as `    ERROR <line 1>` with
 *            further lines indented 8 spaces
 *   -v       also `    PASS <name> (<ms> ms)` and `    SKIP <name> (<reason>)`;
 *            the file line ends with ` <seconds>s` (FAIL lines unchanged:
 *            scripts match them whole)
 *   -q       only files that did not pass
 *   --json   one compact object per file (path, timeout, passed,
 *            chunk_error, tests[{name,status,message,log,duration_ns}],
 *            duration_ns)
 * Summary: blank line, then `N file(s); N passed, N failed, N skipped; 1.23s`.
 * report_durations() (--durations N) then lists the slowest tests. */
#ifndef PROVIUM_REPORT_H
#define PROVIUM_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cli.h"

enum test_status { TS_PASSED = 0, TS_FAILED, TS_SKIPPED };
enum file_status { FS_PASSED = 0, FS_FAILED, FS_TIMED_OUT, FS_CRASHED };

struct test_result {
	char *name;
	enum test_status status;
	char *message;            /* NULL for passed tests */
	char **log; size_t nlog;
	char *console;            /* failed tests: test_failed.console_excerpt, or NULL */
	int64_t duration_ns;      /* the outcome event's duration_ns; 0 for skipped */
};

struct file_result {
	char *path;               /* display path */
	enum file_status status;
	char *chunk_error;        /* NULL when none */
	struct test_result *tests; size_t ntests, cap;
	int64_t duration_ns;
	/* _test_log lines waiting for their test's outcome event */
	char *pending_log_name; char **pending_log; size_t npending_log;
};

struct run_totals {
	size_t files, passed, failed, skipped;
	size_t files_failed;      /* files whose status is not passed */
	size_t files_errored;     /* files with a chunk error or timed out */
	size_t filtered;          /* of skipped: left out by a selection flag
	                           * (--tag, --include-slow, ...), not by the test */
};

const char *file_status_name(enum file_status s);
/* Append a test outcome (takes ownership of nothing: copies). 0 / -1. */
int file_result_add_test(struct file_result *r, const char *name, enum test_status st, const char *message);
/* Set the duration of the last test added (negative is stored as 0). */
void file_result_set_duration(struct file_result *r, int64_t ns);
/* Attach a console excerpt to the last test added (copied; "" ignored). */
void file_result_set_console(struct file_result *r, const char *excerpt);
/* Append to the chunk error (a file may carry several). */
void file_result_add_chunk_error(struct file_result *r, const char *msg);
void file_result_free(struct file_result *r);

void report_file(FILE *out, const struct file_result *r, enum verbosity v, bool json);
void report_totals_add(struct run_totals *t, const struct file_result *r);
void report_summary(FILE *out, const struct run_totals *t, int64_t elapsed_ns);
/* --durations n: `slowest N tests:` then `  1.23s  path::name` lines, the
 * n slowest non-skipped tests of results (n == 0: all), slowest first,
 * ties in run order. Prints nothing when no test ran. */
void report_durations(FILE *out, struct file_result *const *results, size_t nresults, size_t n);

#endif
