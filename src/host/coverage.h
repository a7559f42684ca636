/* coverage.h — the `--coverage` post-run hook: buffer the run's event
 * stream to a file, then hand it to `provium-coverage --from <file>`.
 *
 * Calling sequence (main.c, test-run mode only):
 *     coverage_prepare(&c, save_events_or_NULL, err, n);  // before the run
 *     ... open the sinks with c.events_path as the save path ...
 *     status = coverage_run(&c, stdout_to_stderr, err, n); // after each run
 *     coverage_cleanup(&c);                                 // also at exit
 *
 * coverage_prepare() resolves `provium-coverage` on $PATH first and fails
 * (naming it) when it is missing, so a run is never spent on a pipe that
 * cannot happen. Without --save-events the events go to
 * `$TMPDIR/provium-coverage-<pid>.msgpack` with a sibling `.marker` file
 * naming it; PROVIUM_COVERAGE_TMP and PROVIUM_COVERAGE_MARKER point at the
 * two. With --save-events that file is used: PROVIUM_COVERAGE_TMP names it
 * and PROVIUM_COVERAGE_USER_FILE is set so nothing deletes it. The temp file is deleted only when the
 * marker proves provium created it; an atexit hook (which also runs on the
 * dispatcher's signal exit) does that for killed runs. */
#ifndef PROVIUM_COVERAGE_H
#define PROVIUM_COVERAGE_H

#include <stdbool.h>
#include <stddef.h>

struct coverage {
	char *tool;         /* absolute path of provium-coverage */
	char *events_path;  /* where the run's events are saved */
	char *marker;       /* our marker file, NULL for a user file */
};

/* 0, or -1 with err set (tool missing, temp file not creatable). */
int coverage_prepare(struct coverage *c, const char *save_events, char *err, size_t errlen);
/* Run the tool on the saved events. Returns 0 when it exited 0, 1 when it
 * failed (message in err), -1 when it could not be started (err). */
int coverage_run(const struct coverage *c, bool stdout_to_stderr, char *err, size_t errlen);
/* Delete the temp file if ours, clear the environment, free c. */
void coverage_cleanup(struct coverage *c);

#endif
