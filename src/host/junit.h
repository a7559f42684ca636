/* junit.h — the --junit PATH report: JUnit XML for CI test reporters.
 *
 * junit_write() renders the files of one run (struct file_result, as the
 * dispatcher kept them, in render order) and installs the document at
 * path atomically (temp file in the same directory, fsync, rename), so a
 * CI job never reads a torn report. The mapping (see junit.c) is the one
 * GitLab, Jenkins and GitHub reporters read. Returns 0, or -1 with a
 * message naming the path and errno in err; nothing is left behind on
 * failure. */
#ifndef PROVIUM_JUNIT_H
#define PROVIUM_JUNIT_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "report.h"

/* started: wall-clock start of the run (every suite's timestamp);
 * elapsed_ns: the run's wall time (the root's time attribute). */
int junit_write(const char *path, struct file_result *const *results, size_t n,
		time_t started, int64_t elapsed_ns, char *err, size_t errlen);

#endif
