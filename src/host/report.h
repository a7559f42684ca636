/* report.h — per-file outcomes and the human / JSON renderers.
 *
 * The dispatcher fills one struct file_result per file from the runner's
 * frames (test outcomes, _test_log, _chunk_error), the runner's captured
 * stdout/stderr and its own verdict (timed out, crashed), then calls
 * report_file() once per file: human output in completion order (a file
 * that fails shows as soon as it ends), --json in discovery order (a
 * file that finishes early waits for the ones before it, so machine
 * output is deterministic). report_summary() prints the final line.
 * Renderer formats:
 *   default  `PASS|FAIL|TIME <path> (N passed, N failed, N skipped)`, then
 *            for each failing test `    FAIL <name>` and its message lines
 *            indented 8 spaces, then its t:log lines under
 *            `        --- log ---` (indented 8); a chunk error as
 *            `    ERROR <line 1>` with further lines indented 8 spaces;
 *            for a file that did not pass, its captured output under
 *            `    --- output ---`, lines indented 8 (style.show_output)
 *   -v       also `    PASS <name> (<ms> ms)` and `    SKIP <name> (<reason>)`
 *            with their logs, and every file's captured output;
 *            the file line ends with ` <seconds>s` (FAIL lines unchanged:
 *            scripts match them whole)
 *   -q       only files that did not pass (with their logs and output)
 *   colour   (style.color) the PASS / FAIL / TIME / SKIP / ERROR words in
 *            green / red / red / yellow / red; nothing else changes
 *   --json   one compact object per file (path, timeout, passed,
 *            chunk_error, tests[{name,status,message,log,duration_ns}],
 *            duration_ns); captured output is not part of it
 * Summary: blank line, then `N file(s); N passed, N failed, N skipped; 1.23s`.
 * report_interrupted() lists the files an interrupted run did not finish.
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
	/* the runner's stdout+stderr as captured (the newest bytes when it
	 * wrote more than the cap), and how many older bytes were dropped */
	char *output; size_t output_len, output_cap; size_t output_dropped;
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

struct report_style {
	enum verbosity verbosity;
	bool json;
	bool color;          /* ANSI colours on the status words */
	bool show_output;    /* render captured output (off under --no-capture) */
};

/* Largest captured output kept per file; older bytes are dropped. */
#define REPORT_OUTPUT_MAX (1u << 20)

const char *file_status_name(enum file_status s);
/* Append captured runner output, keeping at most REPORT_OUTPUT_MAX bytes
 * (the newest; the count of dropped bytes is kept). 0 / -1 (no memory). */
int file_result_add_output(struct file_result *r, const char *buf, size_t n);
/* Append a test outcome (takes ownership of nothing: copies). 0 / -1. */
int file_result_add_test(struct file_result *r, const char *name, enum test_status st, const char *message);
/* Set the duration of the last test added (negative is stored as 0). */
void file_result_set_duration(struct file_result *r, int64_t ns);
/* Attach a console excerpt to the last test added (copied; "" ignored). */
void file_result_set_console(struct file_result *r, const char *excerpt);
/* Append to the chunk error (a file may carry several). */
void file_result_add_chunk_error(struct file_result *r, const char *msg);
void file_result_free(struct file_result *r);

void report_file(FILE *out, const struct file_result *r, const struct report_style *st);
void report_totals_add(struct run_totals *t, const struct file_result *r);
void report_summary(FILE *out, const struct run_totals *t, int64_t elapsed_ns);
/* An interrupted run: `\ninterrupted by SIG<NAME>: N file(s) did not finish`
 * then `    INTERRUPTED <path>` (was running, killed) and `    NOT RUN <path>`
 * (never started) lines. */
void report_interrupted(FILE *out, int sig, char *const *interrupted, size_t ninterrupted,
			char *const *not_run, size_t nnot_run, bool color);
/* --durations n: `slowest N tests:` then `  1.23s  path::name` lines, the
 * n slowest non-skipped tests of results (n == 0: all), slowest first,
 * ties in run order. Prints nothing when no test ran. */
void report_durations(FILE *out, struct file_result *const *results, size_t nresults, size_t n);

#endif
