/* test_filehash.c — filehash.c: a file's XXH3-128, remembered per process
 * by (device, inode, size, mtime); a changed file (new mtime or inode) is
 * hashed again; a directory or a missing file is an error with errno. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "filehash.h"
#include "fsutil.h"

static char dir[256], path[300];

static int setup(void **st)
{
	(void)st;
	snprintf(dir, sizeof dir, "%s/test_filehash.XXXXXX",
		 getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(dir))
		return -1;
	snprintf(path, sizeof path, "%s/f", dir);
	return 0;
}

static int teardown(void **st)
{
	(void)st;
	return rm_rf(dir);
}

static void put(const char *text, long mtime_sec)
{
	FILE *f = fopen(path, "r+b");
	if (!f)
		f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
	assert_int_equal(fclose(f), 0);
	struct timeval tv[2] = { { mtime_sec, 0 }, { mtime_sec, 0 } };
	assert_int_equal(utimes(path, tv), 0);
}

static void digest_follows_content(void **st)
{
	char a[33], b[33], c[33], d[33];
	(void)st;
	put("one", 1000);
	assert_int_equal(filehash_hex(path, a), 0);
	assert_int_equal(strlen(a), 32);
	assert_int_equal(filehash_hex(path, b), 0);
	assert_string_equal(a, b);                 /* the memo: same answer */
	put("two", 2000);                           /* same size, new mtime */
	assert_int_equal(filehash_hex(path, c), 0);
	assert_string_not_equal(a, c);
	put("one", 3000);                           /* the first bytes again */
	assert_int_equal(filehash_hex(path, d), 0);
	assert_string_equal(a, d);
}

static void errors_carry_errno(void **st)
{
	char h[33];
	(void)st;
	errno = 0;
	assert_int_equal(filehash_hex(dir, h), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(filehash_hex("/nonexistent/provium-filehash", h), -1);
	assert_int_equal(errno, ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(digest_follows_content),
		cmocka_unit_test(errors_carry_errno),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
