/* test_snapfiles.c — the file-system side of snapshots
 * (src/host/snap/snapfiles.c): sizes of a snapshot file and of a lab
 * snapshot directory, removing RAM siblings (absolute, relative and
 * root-level paths), delete, fresh scratch paths and mkdir. Each test
 * works in a private directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "snap/snapfiles.h"
#include "fsutil.h"

static char dir[4096];

static int setup(void **st)
{
	(void)st;
	const char *t = getenv("TMPDIR");
	snprintf(dir, sizeof dir, "%s/test_snapfiles.XXXXXX", t && *t ? t : "/tmp");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **st)
{
	(void)st;
	return rm_rf(dir);
}

/* dir/name with n bytes in it. */
static void put(const char *name, size_t n)
{
	char p[4200];
	snprintf(p, sizeof p, "%s/%s", dir, name);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	for (size_t i = 0; i < n; i++)
		fputc('x', f);
	assert_int_equal(fclose(f), 0);
}

static bool exists(const char *name)
{
	char p[4200];
	struct stat st;
	snprintf(p, sizeof p, "%s/%s", dir, name);
	return lstat(p, &st) == 0;
}

static void in_dir(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", dir, name);
}

static void size_of_file_and_dir(void **st)
{
	(void)st;
	char p[4200], q[4200];
	put("a.snap", 1000);
	in_dir(p, sizeof p, "a.snap");
	assert_int_equal(snapfiles_size(p, false), 1000);
	in_dir(p, sizeof p, "gone.snap");
	assert_int_equal(snapfiles_size(p, false), 0);
	assert_int_equal(snapfiles_size(p, true), 0);

	/* a lab snapshot: regular files directly under it, symlinks followed,
	 * subdirectories (and what is in them) not counted */
	in_dir(p, sizeof p, "lab");
	assert_int_equal(mkdir(p, 0755), 0);
	put("lab/lab.json", 10);
	put("lab/vm-1.snap", 300);
	in_dir(p, sizeof p, "lab/lab-1");
	assert_int_equal(mkdir(p, 0755), 0);
	put("lab/lab-1/vm-1.snap", 5000);
	in_dir(p, sizeof p, "a.snap");
	in_dir(q, sizeof q, "lab/link.snap");
	assert_int_equal(symlink(p, q), 0);
	in_dir(p, sizeof p, "lab");
	assert_int_equal(snapfiles_size(p, true), 10 + 300 + 1000);
}

static void rm_ram(void **st)
{
	(void)st;
	char p[4200];
	put("a.snap", 1);
	put("a.snap.ram-1", 1);
	put("a.snap.ram-2", 1);
	put("a.snap.ram-2.tmp.77", 1);
	put("a.snapx.ram-1", 1);   /* another snapshot's */
	put("b.snap.ram-1", 1);
	put("a.snap.ramx", 1);
	in_dir(p, sizeof p, "a.snap");
	assert_int_equal(snapfiles_rm_ram(p), 3);
	assert_true(exists("a.snap"));
	assert_false(exists("a.snap.ram-1"));
	assert_false(exists("a.snap.ram-2"));
	assert_false(exists("a.snap.ram-2.tmp.77"));
	assert_true(exists("a.snapx.ram-1"));
	assert_true(exists("b.snap.ram-1"));
	assert_true(exists("a.snap.ramx"));
	assert_int_equal(snapfiles_rm_ram(p), 0);

	/* a relative path: siblings in the working directory */
	char cwd[4096];
	assert_non_null(getcwd(cwd, sizeof cwd));
	assert_int_equal(chdir(dir), 0);
	put("b.snap", 1);
	assert_int_equal(snapfiles_rm_ram("b.snap"), 1);
	assert_false(exists("b.snap.ram-1"));
	assert_int_equal(chdir(cwd), 0);

	/* the directory cannot be read */
	in_dir(p, sizeof p, "nodir/a.snap");
	errno = 0;
	assert_int_equal(snapfiles_rm_ram(p), -1);
	assert_int_equal(errno, ENOENT);
	/* a path at the root reads "/" (nothing there is ours to match) */
	assert_true(snapfiles_rm_ram("/provium-test-no-such.snap") >= 0);
}

static void delete_file_and_dir(void **st)
{
	(void)st;
	char p[4200];
	put("a.snap", 1);
	put("a.snap.ram-1", 1);
	put("a.snap.ram-1.sum", 1);
	in_dir(p, sizeof p, "a.snap");
	assert_int_equal(snapfiles_delete(p, false), 0);
	assert_false(exists("a.snap"));
	assert_false(exists("a.snap.ram-1"));
	assert_false(exists("a.snap.ram-1.sum"));
	assert_int_equal(snapfiles_delete(p, false), 0);   /* idempotent */

	/* a lab snapshot: recursive; siblings of the directory are left */
	in_dir(p, sizeof p, "lab");
	assert_int_equal(mkdir(p, 0755), 0);
	in_dir(p, sizeof p, "lab/lab-1");
	assert_int_equal(mkdir(p, 0755), 0);
	put("lab/lab-1/vm-1.snap", 1);
	put("lab/vm-1.snap.ram-3", 1);
	put("lab.ram-1", 1);
	in_dir(p, sizeof p, "lab");
	assert_int_equal(snapfiles_delete(p, true), 0);
	assert_false(exists("lab"));
	assert_true(exists("lab.ram-1"));
	assert_int_equal(snapfiles_delete(p, true), 0);
}

static void tmp_paths(void **st)
{
	(void)st;
	char want[4200], *p, *q, *r;
	int n;

	p = snapfiles_tmp_path(dir, "snap", ".snap");
	assert_non_null(p);
	snprintf(want, sizeof want, "%s/snap-%d-", dir, (int)getpid());
	assert_int_equal(strncmp(p, want, strlen(want)), 0);
	assert_int_equal(sscanf(p + strlen(want), "%d", &n), 1);
	snprintf(want, sizeof want, "%s/snap-%d-%d.snap", dir, (int)getpid(), n);
	assert_string_equal(p, want);
	assert_false(exists(p + strlen(dir) + 1));   /* nothing is created */

	/* a path already taken (even a dangling symlink) is skipped */
	snprintf(want, sizeof want, "%s/snap-%d-%d.snap", dir, (int)getpid(), n + 1);
	assert_int_equal(symlink("nowhere", want), 0);
	q = snapfiles_tmp_path(dir, "snap", ".snap");
	snprintf(want, sizeof want, "%s/snap-%d-%d.snap", dir, (int)getpid(), n + 2);
	assert_string_equal(q, want);

	/* no directory: $TMPDIR */
	const char *old = getenv("TMPDIR");
	char *saved = old ? strdup(old) : NULL;
	setenv("TMPDIR", dir, 1);
	r = snapfiles_tmp_path(NULL, "labsnap", "");
	snprintf(want, sizeof want, "%s/labsnap-%d-%d", dir, (int)getpid(), n + 3);
	assert_string_equal(r, want);
	if (saved)
		setenv("TMPDIR", saved, 1);
	else
		unsetenv("TMPDIR");
	free(saved);
	free(p);
	free(q);
	free(r);
}

static void mkdirs(void **st)
{
	(void)st;
	char p[4200];
	struct stat sb;
	in_dir(p, sizeof p, "d");
	assert_int_equal(snapfiles_mkdir(p, true), 0);
	assert_int_equal(stat(p, &sb), 0);
	assert_true(S_ISDIR(sb.st_mode));
	mode_t um = umask(0);
	umask(um);
	assert_int_equal(sb.st_mode & 0777, 0755 & ~um);

	/* fresh: an existing path is EEXIST; otherwise it is success, even
	 * when it is not a directory (lab:snapshot(dir) always accepted it) */
	errno = 0;
	assert_int_equal(snapfiles_mkdir(p, true), -1);
	assert_int_equal(errno, EEXIST);
	assert_int_equal(snapfiles_mkdir(p, false), 0);
	put("f", 1);
	in_dir(p, sizeof p, "f");
	assert_int_equal(snapfiles_mkdir(p, false), 0);

	/* the parent must exist: no mkdir -p */
	in_dir(p, sizeof p, "no/such");
	errno = 0;
	assert_int_equal(snapfiles_mkdir(p, false), -1);
	assert_int_equal(errno, ENOENT);
	assert_false(exists("no"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(size_of_file_and_dir, setup, teardown),
		cmocka_unit_test_setup_teardown(rm_ram, setup, teardown),
		cmocka_unit_test_setup_teardown(delete_file_and_dir, setup, teardown),
		cmocka_unit_test_setup_teardown(tmp_paths, setup, teardown),
		cmocka_unit_test_setup_teardown(mkdirs, setup, teardown),
	};
	return cmocka_run_group_tests_name("snapfiles", tests, NULL, NULL);
}
