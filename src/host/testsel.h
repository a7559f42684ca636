/* testsel.h — `path::NAME` on the command line: run one test of a file.
 *
 * Calling sequence: testsel_split() once over the CLI paths (it strips
 * `::NAME` from the words in place, so discovery sees plain paths), the
 * usual discovery and file selection, then testsel_apply() on the
 * resulting list: each file named with `::NAME` gets the names in
 * found_file.tests (handed to its runner, matched exactly by
 * framework.lua), unless the file is also reached through a plain path
 * (`tests/ tests/a.test.lua::x` runs all of a.test.lua, as in pytest).
 *
 * A word is split at its first `::` only when it does not name an
 * existing path as a whole. The path part must be a file; NAME must not
 * be empty. Errors come back as one message (exit 2 for the caller). */
#ifndef PROVIUM_TESTSEL_H
#define PROVIUM_TESTSEL_H

#include <stdbool.h>
#include <stddef.h>

#include "discover.h"

struct testsel_pick { char *abs; char *name; };

struct testsel {
	struct testsel_pick *picks; size_t npicks;  /* one per path::NAME word */
	char **plain; size_t nplain;                /* canonical paths of the other words */
};

/* Split paths[0..n) in place. 0, or -1 with err. */
int testsel_split(char **paths, size_t n, struct testsel *ts, char *err, size_t errlen);

/* Attach the picked names to the files of fl. 0, or -1 (out of memory). */
int testsel_apply(const struct testsel *ts, struct file_list *fl);

void testsel_free(struct testsel *ts);

#endif
