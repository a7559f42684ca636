/* test_fsutil.c — the file-system plumbing: fsutil.c (mkdir_p, rm_rf,
 * read_file, write_all, read_all, path_lookup), atomicfile.c, tempfile.c and the
 * monotonic clock (clock.c). Each test works in a private directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "atomicfile.h"
#include "clock.h"
#include "fsutil.h"
#include "tempfile.h"

static char dir[256];

static int setup(void **st)
{
	(void)st;
	snprintf(dir, sizeof dir, "%s/test_fsutil.XXXXXX", getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **st)
{
	(void)st;
	return rm_rf(dir);
}

static void put(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

static char *p_(const char *rel)
{
	static char buf[4][512];
	static int i;
	char *b = buf[i++ % 4];
	snprintf(b, 512, "%s/%s", dir, rel);
	return b;
}

/* Entries of dir whose name starts with prefix. */
static int count_prefixed(const char *d, const char *prefix)
{
	DIR *h = opendir(d);
	struct dirent *de;
	int n = 0;
	assert_non_null(h);
	while ((de = readdir(h)))
		n += !strncmp(de->d_name, prefix, strlen(prefix));
	closedir(h);
	return n;
}

static void test_mkdir_p(void **st)
{
	struct stat sb;
	size_t bad = 99;
	(void)st;
	assert_int_equal(mkdir_p(p_("a/b/c"), 0755, NULL), 0);
	assert_int_equal(stat(p_("a/b/c"), &sb), 0);
	assert_true(S_ISDIR(sb.st_mode));
	assert_int_equal(mkdir_p(p_("a/b/c"), 0755, NULL), 0);   /* exists: fine */
	assert_int_equal(mkdir_p(p_("a/b/c/"), 0755, NULL), 0);  /* trailing slash */
	put(p_("a/file"), "x");
	errno = 0;
	assert_int_equal(mkdir_p(p_("a/file"), 0755, &bad), -1);
	assert_int_equal(errno, ENOTDIR);
	errno = 0;
	assert_int_equal(mkdir_p(p_("a/file/d"), 0755, &bad), -1);
	assert_int_equal(errno, ENOTDIR);
	/* the prefix that failed is a/file/d (mkdir under a file) */
	assert_int_equal(bad, strlen(p_("a/file/d")));
	errno = 0;
	assert_int_equal(mkdir_p("", 0755, NULL), -1);
	assert_int_equal(errno, ENOENT);
}

/* rm_rf removes a symlink, never what it points at, at the top or below. */
static void test_rm_rf_no_follow(void **st)
{
	struct stat sb;
	(void)st;
	assert_int_equal(mkdir_p(p_("outside/keep"), 0755, NULL), 0);
	put(p_("outside/keep/precious"), "do not delete");
	assert_int_equal(mkdir_p(p_("tree/sub/deeper"), 0755, NULL), 0);
	put(p_("tree/sub/deeper/f"), "1");
	put(p_("tree/g"), "2");
	assert_int_equal(symlink(p_("outside/keep"), p_("tree/sub/link")), 0);
	assert_int_equal(symlink(p_("outside/keep/precious"), p_("tree/flink")), 0);
	assert_int_equal(rm_rf(p_("tree")), 0);
	assert_int_equal(lstat(p_("tree"), &sb), -1);
	assert_int_equal(stat(p_("outside/keep/precious"), &sb), 0);

	/* the path itself a symlink to a directory: only the link goes */
	assert_int_equal(symlink(p_("outside"), p_("top")), 0);
	assert_int_equal(rm_rf(p_("top")), 0);
	assert_int_equal(lstat(p_("top"), &sb), -1);
	assert_int_equal(stat(p_("outside/keep/precious"), &sb), 0);

	assert_int_equal(rm_rf(p_("no-such")), 0);
	put(p_("plain"), "x");
	assert_int_equal(rm_rf(p_("plain")), 0);
	assert_int_equal(lstat(p_("plain"), &sb), -1);
}

static void test_read_file(void **st)
{
	char *buf = NULL;
	size_t len = 0;
	(void)st;
	put(p_("r"), "hello\nworld");
	assert_int_equal(read_file(p_("r"), 1024, &buf, &len), 0);
	assert_int_equal(len, 11);
	assert_string_equal(buf, "hello\nworld");
	free(buf);
	put(p_("empty"), "");
	assert_int_equal(read_file(p_("empty"), 0, &buf, &len), 0);
	assert_int_equal(len, 0);
	assert_string_equal(buf, "");
	free(buf);
	errno = 0;
	assert_int_equal(read_file(p_("r"), 10, &buf, &len), -1);
	assert_int_equal(errno, EFBIG);
	errno = 0;
	assert_int_equal(read_file(p_("missing"), 10, &buf, &len), -1);
	assert_int_equal(errno, ENOENT);
}

static void test_read_all(void **st)
{
	int fds[2];
	char buf[8];
	(void)st;
	assert_int_equal(pipe(fds), 0);
	assert_int_equal(write_all(fds[1], "abcdef", 6), 0);
	assert_int_equal(read_all(fds[0], buf, 4), 0);
	assert_memory_equal(buf, "abcd", 4);
	close(fds[1]);
	errno = 0;
	assert_int_equal(read_all(fds[0], buf, 4), -1);   /* 2 bytes, then EOF */
	assert_int_equal(errno, ENODATA);
	close(fds[0]);
}

static void test_write_all_full_disk(void **st)
{
	int fd = open("/dev/full", O_WRONLY | O_CLOEXEC);
	(void)st;
	if (fd < 0)
		skip();
	errno = 0;
	assert_int_equal(write_all(fd, "abc", 3), -1);
	assert_int_equal(errno, ENOSPC);
	close(fd);
}

static void test_write_file_atomic(void **st)
{
	char *buf;
	size_t len;
	struct stat sb;
	(void)st;
	put(p_("w"), "old");
	assert_int_equal(write_file_atomic(p_("w"), "new content", 11, 0600), 0);
	assert_int_equal(read_file(p_("w"), 100, &buf, &len), 0);
	assert_string_equal(buf, "new content");
	free(buf);
	assert_int_equal(stat(p_("w"), &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	assert_int_equal(count_prefixed(dir, "w.tmp."), 0);
	/* no directory: fails, creates nothing */
	errno = 0;
	assert_int_equal(write_file_atomic(p_("nodir/w"), "x", 1, 0644), -1);
	assert_int_equal(errno, ENOENT);
	/* a stale temp of our pid (a dead process's) is taken over */
	{
		char stale[600];
		snprintf(stale, sizeof stale, "%s.tmp.%d", p_("w"), (int)getpid());
		put(stale, "debris");
		assert_int_equal(write_file_atomic(p_("w"), "again", 5, 0644), 0);
		assert_int_equal(count_prefixed(dir, "w.tmp."), 0);
	}
}

/* A write cut short by a full file system (here RLIMIT_FSIZE: the kernel
 * stores part, then refuses): -1, the old file intact, no temp left. */
static void test_atomic_failure_leaves_no_temp(void **st)
{
	pid_t pid;
	int status;
	char *buf;
	size_t len;
	(void)st;
	put(p_("keep"), "original");
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		static char big[1 << 16];
		struct rlimit rl = {4096, 4096};
		signal(SIGXFSZ, SIG_IGN);
		setrlimit(RLIMIT_FSIZE, &rl);
		memset(big, 'x', sizeof big);
		if (write_file_atomic(p_("keep"), big, sizeof big, 0644) != -1)
			_exit(2);
		if (errno != EFBIG && errno != ENOSPC)
			_exit(3);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(count_prefixed(dir, "keep.tmp."), 0);
	assert_int_equal(read_file(p_("keep"), 100, &buf, &len), 0);
	assert_string_equal(buf, "original");
	free(buf);
}

/* An atomic file never committed is removed when its process exits. */
static void test_atomic_removed_at_exit(void **st)
{
	pid_t pid;
	int status;
	(void)st;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct atomic_file af;
		if (af_open(&af, p_("abandoned"), 0644) < 0 || write_all(af.fd, "x", 1) < 0)
			_exit(2);
		exit(0);   /* atexit runs: the temp goes */
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(count_prefixed(dir, "abandoned"), 0);
}

static void test_path_lookup(void **st)
{
	char *old = getenv("PATH") ? strdup(getenv("PATH")) : NULL, *r, pathv[1200];
	(void)st;
	assert_int_equal(mkdir_p(p_("bin1/tool"), 0755, NULL), 0);  /* a directory: skipped */
	assert_int_equal(mkdir_p(p_("bin2"), 0755, NULL), 0);
	assert_int_equal(mkdir_p(p_("bin3"), 0755, NULL), 0);
	put(p_("bin2/tool"), "#!/bin/sh\n");                        /* not executable: skipped */
	put(p_("bin3/tool"), "#!/bin/sh\n");
	assert_int_equal(chmod(p_("bin3/tool"), 0755), 0);
	snprintf(pathv, sizeof pathv, "%s:%s:%s", p_("bin1"), p_("bin2"), p_("bin3"));
	setenv("PATH", pathv, 1);
	r = path_lookup("tool");
	assert_non_null(r);
	assert_string_equal(r, p_("bin3/tool"));
	free(r);
	errno = 0;
	assert_null(path_lookup("no-such-tool-here"));
	assert_int_equal(errno, ENOENT);
	/* a name with a slash is itself */
	r = path_lookup(p_("bin3/tool"));
	assert_non_null(r);
	free(r);
	assert_null(path_lookup(p_("bin2/tool")));
	/* an empty element is the current directory */
	{
		char cwd[512];
		assert_non_null(getcwd(cwd, sizeof cwd));
		assert_int_equal(chdir(p_("bin3")), 0);
		setenv("PATH", p_("bin1") , 1);
		assert_null(path_lookup("tool"));
		snprintf(pathv, sizeof pathv, "%s:", p_("bin1"));
		setenv("PATH", pathv, 1);
		r = path_lookup("tool");
		assert_non_null(r);
		assert_string_equal(r, "./tool");
		free(r);
		assert_int_equal(chdir(cwd), 0);
	}
	if (old)
		setenv("PATH", old, 1);
	else
		unsetenv("PATH");
	free(old);
}

/* make_temp_dir honours $TMPDIR; the registry removes at exit what is
 * still registered, in the registering process only. */
static void test_temp_registry(void **st)
{
	char *old = getenv("TMPDIR") ? strdup(getenv("TMPDIR")) : NULL;
	pid_t pid;
	int status;
	(void)st;
	assert_int_equal(mkdir_p(p_("tmpbase"), 0755, NULL), 0);
	setenv("TMPDIR", p_("tmpbase"), 1);
	assert_string_equal(temp_base(), p_("tmpbase"));
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int fd;
		char *d = make_temp_dir("reg-gone"), *f, *kept = make_temp_dir("reg-kept");
		if (!d || !kept || strncmp(d, p_("tmpbase/reg-gone-"), strlen(p_("tmpbase/reg-gone-"))))
			_exit(2);
		put(p_("tmpbase/marker"), "");
		if (!(f = make_temp_file("reg-file", &fd)))
			_exit(3);
		close(fd);
		temp_forget(kept);
		/* a grandchild exiting must not remove its parent's temps */
		pid_t g = fork();
		if (g == 0)
			exit(0);
		waitpid(g, NULL, 0);
		if (access(d, F_OK) < 0 || access(f, F_OK) < 0)
			_exit(4);
		exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(count_prefixed(p_("tmpbase"), "reg-gone-"), 0);
	assert_int_equal(count_prefixed(p_("tmpbase"), "reg-file-"), 0);
	assert_int_equal(count_prefixed(p_("tmpbase"), "reg-kept-"), 1);
	/* temp_remove: now, and forgotten */
	{
		char *d = make_temp_dir("now");
		assert_non_null(d);
		put(p_("tmpbase/x"), "");
		assert_int_equal(temp_remove(d), 0);
		assert_int_equal(access(d, F_OK), -1);
		free(d);
	}
	setenv("TMPDIR", "", 1);
	assert_string_equal(temp_base(), "/tmp");
	if (old)
		setenv("TMPDIR", old, 1);
	else
		unsetenv("TMPDIR");
	free(old);
}

static void test_clock(void **st)
{
	int64_t a = mono_now_ns(), b = mono_now_ns(), m = mono_now_ms();
	(void)st;
	assert_true(a > 0);
	assert_true(b >= a);
	assert_true(m >= a / 1000000);
	assert_true(m <= mono_now_ns() / 1000000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_mkdir_p, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rm_rf_no_follow, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_all_full_disk, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_all, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_file_atomic, setup, teardown),
		cmocka_unit_test_setup_teardown(test_atomic_failure_leaves_no_temp, setup, teardown),
		cmocka_unit_test_setup_teardown(test_atomic_removed_at_exit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_path_lookup, setup, teardown),
		cmocka_unit_test_setup_teardown(test_temp_registry, setup, teardown),
		cmocka_unit_test(test_clock),
	};
	return cmocka_run_group_tests_name("fsutil", tests, NULL, NULL);
}
