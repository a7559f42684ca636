/* listing.h — what `provium list` prints for test files: the files, or
 * with --tests each file's tests as the static scanner (luascan.c) sees
 * them, as text or as one JSON document (--json). Runs nothing.
 *
 * Tests are found without running the file: a `test("literal", ...)`
 * call gives its name and the literal tags of its meta table; a test
 * whose name is computed (`test("boot " .. n, ...)`, a helper that
 * registers tests) is listed as such with its line, and so are tags the
 * scanner cannot read. -k/--test and path::NAME narrow the named tests;
 * computed names are always listed (they may match when the file runs). */
#ifndef PROVIUM_LISTING_H
#define PROVIUM_LISTING_H

#include <stdbool.h>
#include <stdio.h>

#include "discover.h"
#include "filter.h"

/* Print fl. tests: per-test listing; json: one JSON document
 * {"files": [{"path": ..., "tests": [...]}]}. 0, or -1 (out of memory). */
int list_test_files(FILE *out, const struct file_list *fl, const struct test_filter *tf,
		    bool tests, bool json);

#endif
