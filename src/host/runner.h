/* runner.h — one test file, run inside its own forked process.
 *
 * The dispatcher forks, the child calls runner_main() and _exit()s with its
 * return value. The runner owns its Lua state, its lab and every VM in it;
 * it reports to the dispatcher only through event frames on event_fd (see
 * docs/internals.md for the frame kinds, public and private). */
#ifndef PROVIUM_RUNNER_H
#define PROVIUM_RUNNER_H

#include <stddef.h>

#include "config.h"
#include "filter.h"
#include "pool.h"

enum vmm_kind { VMM_QEMU = 0, VMM_LOCAL };

struct runner_opts {
	const struct config *cfg;
	const char *path;           /* openable path of the *.test.lua file */
	const char *relpath;        /* display path used in every event */
	const char *const *roots;   /* NULL-terminated absolute dirs for require/fixtures */
	const struct test_filter *filter;
	char *const *only; size_t nonly; /* path::NAME: run only these tests (exact names); 0 = all */
	enum vmm_kind vmm;
	const struct pool *pool;    /* the run's pool: claims are checked against
	                             * its total (NULL = none, e.g. the REPL) */
	const char *run_dir;        /* private scratch directory for this file (exists) */
	int event_fd;               /* write end of the event pipe */
};

/* Run every test of the file. Returns the process exit status: 0 when the
 * file ran to the end (whatever the test outcomes), non-zero on an internal
 * failure. Never returns early on a failing test. */
int runner_main(const struct runner_opts *o);

#endif
