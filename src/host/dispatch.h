/* dispatch.h — the dispatcher: one forked runner per file, admitted
 * through the resource pool, with per-file timeouts.
 *
 * Calling sequence (main.c):
 *     dispatch_signals_install();              // once: SIGINT/TERM/CHLD
 *     dispatch_tmp_create(&tmp, err, n);        // per-run temp dir, removed at exit
 *     dispatch_run(&opts, &files, &outcome, err, n);   // per run (again under --watch)
 *     dispatch_outcome_free(&outcome);
 *
 * dispatch_run() emits file_discovered for every file first, then admits
 * files FIFO (file_dispatched when a file starts; file_blocked once per
 * reason when it waits: `psi_pressure` while host pressure is over the
 * threshold and some file is in flight (psi.h), `pool_full` while its
 * reservation does not fit), forwards each runner's public frames to the sinks, consumes
 * the private ones (_test_log, _chunk_error, _file_done), emits pool_state
 * at 1 Hz while runners are alive and file_completed per file, and renders
 * each file as it completes (human output in completion order, --json in
 * discovery order: report.h); the rendered file_results are kept in
 * outcome->results (for --durations and --junit). On a terminal (human
 * output) it keeps one progress line redrawn in place (live.h), erased
 * before every result and at the end. It returns 0 after every admitted file
 * finished (or the run was interrupted: outcome->signal != 0, every runner
 * group killed); -1 only on an internal failure (err).
 *
 * Runner child: setpgid(0,0), PR_SET_PDEATHSIG SIGKILL, closes every fd of
 * the dispatcher, points its fds 1 and 2 at one capture pipe (line
 * buffered stdout), creates <tmp>/<n>-XXXXXX as its private run dir, calls
 * runner_main() and _exit()s with its return value.
 *
 * Output capture: everything written to the runner's fds 1/2 (print,
 * io.write, io.stderr, os.execute and io.popen children) is read by the
 * poll loop (never blocking: non-blocking reads, so a chatty runner cannot
 * stall it) into the file's result (report.h keeps the last 1 MiB), and
 * drained once more after the runner is reaped and its group SIGKILLed, so
 * nothing it wrote is lost. QEMU's own stdout/stderr go to qemu.log in the
 * run dir, not here (qemu_launch.h). With no_capture, or --json (whose
 * stdout is for objects), each complete line is instead written live as
 * `[<path>] <line>` to the human stream (stderr under --json). Frames
 * travel on their own pipe, so output never corrupts them.
 *
 * Interrupt (SIGINT/SIGTERM): every runner group is SIGKILLed and reaped;
 * outcome->interrupted lists the files that were running, outcome->not_run
 * the ones never started; the finished files stay rendered and counted. */
#ifndef PROVIUM_DISPATCH_H
#define PROVIUM_DISPATCH_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "cli.h"
#include "config.h"
#include "discover.h"
#include "filter.h"
#include "pool.h"
#include "report.h"
#include "runner.h"
#include "sinks.h"

struct dispatch_opts {
	const struct config *cfg;
	const char *const *roots;        /* NULL-terminated absolute dirs */
	const struct test_filter *filter;
	enum vmm_kind vmm;
	int64_t timeout_ns;              /* 0 disables */
	bool fail_fast;
	bool events_stdout;
	struct pool *pool;
	struct sinks *sinks;
	FILE *out;                       /* human / JSON renderer stream */
	enum verbosity verbosity;
	bool json;
	bool no_capture;                 /* stream runner output live, prefixed */
	bool color;                      /* colour the human status words */
	const char *tmp_dir;             /* from dispatch_tmp_create() */
};

struct dispatch_outcome {
	struct run_totals totals;
	char **failed_abs; size_t nfailed;   /* canonical paths of files that did not pass */
	int signal;                          /* SIGINT/SIGTERM that stopped the run, else 0 */
	struct file_result **results; size_t nresults; /* rendered files, in render order */
	char **interrupted; size_t ninterrupted; /* interrupted run: display paths of files killed while running */
	char **not_run; size_t nnot_run;         /* ... and of files never started */
};

int dispatch_signals_install(void);
/* Signal received since install (SIGINT/SIGTERM), else 0. */
int dispatch_pending_signal(void);
/* Sleep up to ms, waking early on a signal. */
void dispatch_sleep_ms(int ms);
int dispatch_tmp_create(char **out, char *err, size_t errlen);

int dispatch_run(const struct dispatch_opts *o, const struct file_list *files,
		 struct dispatch_outcome *out, char *err, size_t errlen);
void dispatch_outcome_free(struct dispatch_outcome *out);

#endif
