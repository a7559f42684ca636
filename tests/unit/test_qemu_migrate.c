/* test_qemu_migrate.c — the RAM section of the QEMU snapshot fast path
 * (src/host/vmm/qemu_migrate.c) without a QEMU: qmig_write_ram from a
 * sparse file into a snapfile section, qmig_expand_ram back out, and
 * the expansion's atomicity: a corrupt section, an expander killed in the
 * middle, and four expanders of one file at once never leave an
 * incomplete file under the final name. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixture/cache.h"
#include "snap/snapfile.h"
#include "vmm/qemu_migrate.h"
#include "fsutil.h"

#define RAM_SIZE (4u << 20)

static char dir[64];

static int setup(void **st)
{
	(void)st;
	strcpy(dir, "/tmp/provium-qmig-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **st)
{
	(void)st;
	rm_rf(dir);
	return 0;
}

/* The guest RAM: a sparse RAM_SIZE file with two non-zero extents. */
static int make_ram(void)
{
	char p[128], buf[8192];
	int fd;
	snprintf(p, sizeof p, "%s/guest-ram", dir);
	fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, RAM_SIZE), 0);
	memset(buf, 'A', sizeof buf);
	assert_int_equal(pwrite(fd, buf, sizeof buf, 4096), (ssize_t)sizeof buf);
	memset(buf, 'B', 4096);
	assert_int_equal(pwrite(fd, buf, 4096, 1 << 20), 4096);
	return fd;
}

/* A snapfile whose only section is "ram" (from make_ram, or, when
 * cut_short, one record announcing more bytes than it carries). */
static void make_snap(const char *path, bool cut_short)
{
	struct snap_header h = {.vm_name = (char *)(uintptr_t)"vm", .profile = (char *)(uintptr_t)"p",
	                        .backend = (char *)(uintptr_t)"qemu",
	                        .qemu_version = (char *)(uintptr_t)"7.2.0", .memory = RAM_SIZE, .cpus = 1};
	struct snap_writer *w;
	char err[256];
	assert_int_equal(snapfile_create(&w, path, &h, err, sizeof err), 0);
	assert_int_equal(snapfile_section_begin(w, "ram", err, sizeof err), 0);
	if (cut_short) {
		unsigned char rec[16 + 100] = {0};
		rec[14] = 0x20;   /* length 8192, only 100 bytes follow */
		memset(rec + 16, 'x', 100);
		assert_int_equal(snapfile_write(w, rec, sizeof rec, err, sizeof err), 0);
	} else {
		int fd = make_ram();
		assert_int_equal(qmig_write_ram(w, fd, RAM_SIZE, err, sizeof err), 0);
		close(fd);
	}
	assert_int_equal(snapfile_section_end(w, err, sizeof err), 0);
	assert_int_equal(snapfile_finish(w, err, sizeof err), 0);
}

static int expand(const char *snap, const char *ram, char *err, size_t errlen)
{
	struct snap_reader *r;
	struct snap_header h;
	const char *name;
	uint64_t raw;
	int rc;
	if (snapfile_open(&r, snap, &h, err, errlen) < 0)
		return -1;
	snap_header_free(&h);
	if (snapfile_next_section(r, &name, &raw, err, errlen) != 1 || strcmp(name, "ram") != 0) {
		snapfile_close(r);
		return -1;
	}
	rc = qmig_expand_ram(r, ram, RAM_SIZE, err, errlen);
	snapfile_close(r);
	return rc;
}

static void check_ram(const char *path)
{
	char *buf = malloc(RAM_SIZE);
	int fd = open(path, O_RDONLY);
	struct stat st;
	assert_non_null(buf);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(st.st_size, RAM_SIZE);
	assert_int_equal(read(fd, buf, RAM_SIZE), RAM_SIZE);
	close(fd);
	for (size_t i = 0; i < RAM_SIZE; i++) {
		char want = i >= 4096 && i < 4096 + 8192 ? 'A' : i >= (1u << 20) && i < (1u << 20) + 4096 ? 'B' : 0;
		if (buf[i] != want)
			fail_msg("RAM byte %zu is %d, want %d", i, buf[i], want);
	}
	/* sparse: far fewer blocks than bytes */
	assert_true((uint64_t)st.st_blocks * 512 < RAM_SIZE / 2);
	free(buf);
}

/* Names in dir starting with prefix. */
static int count_prefixed(const char *prefix)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;
	assert_non_null(d);
	while ((de = readdir(d)))
		n += !strncmp(de->d_name, prefix, strlen(prefix));
	closedir(d);
	return n;
}

static void expand_roundtrip(void **st)
{
	char snap[128], ram[160], err[256];
	(void)st;
	snprintf(snap, sizeof snap, "%s/a.snap", dir);
	snprintf(ram, sizeof ram, "%s.ram-1", snap);
	make_snap(snap, false);
	assert_int_equal(expand(snap, ram, err, sizeof err), 0);
	check_ram(ram);
	assert_int_equal(count_prefixed("a.snap.ram-1.tmp."), 0);
}

static void expand_corrupt_leaves_nothing(void **st)
{
	char snap[128], ram[160], err[256];
	(void)st;
	snprintf(snap, sizeof snap, "%s/b.snap", dir);
	snprintf(ram, sizeof ram, "%s.ram-1", snap);
	make_snap(snap, true);
	assert_int_equal(expand(snap, ram, err, sizeof err), -1);
	assert_non_null(strstr(err, "cut short"));
	assert_int_equal(access(ram, F_OK), -1);
	assert_int_equal(count_prefixed("b.snap.ram-"), 0);
}

/* An expander killed after it sized its file (SIGXFSZ from a file-size
 * limit below the RAM size: the file then has the right size and no
 * data) leaves only a temp; nothing under the final name. */
static void expand_killed_leaves_no_final(void **st)
{
	char snap[128], ram[160], err[256];
	pid_t pid;
	int status;
	(void)st;
	snprintf(snap, sizeof snap, "%s/c.snap", dir);
	snprintf(ram, sizeof ram, "%s.ram-1", snap);
	make_snap(snap, false);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct rlimit rl = {RAM_SIZE / 4, RAM_SIZE / 4};
		signal(SIGXFSZ, SIG_DFL);
		setrlimit(RLIMIT_FSIZE, &rl);
		expand(snap, ram, err, sizeof err);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGXFSZ);
	assert_int_equal(access(ram, F_OK), -1);
	assert_int_equal(count_prefixed("c.snap.ram-1.tmp."), 1);   /* the debris */
	/* the next restore expands again and gets a whole file */
	assert_int_equal(expand(snap, ram, err, sizeof err), 0);
	check_ram(ram);
}

/* Four expanders of one RAM file at once: each renames a complete file
 * into place; whichever wins, the file is whole and no temp is left. */
static void expand_concurrent(void **st)
{
	char snap[128], ram[160], err[256];
	int go[2];
	pid_t pids[4];
	(void)st;
	snprintf(snap, sizeof snap, "%s/d.snap", dir);
	snprintf(ram, sizeof ram, "%s.ram-1", snap);
	make_snap(snap, false);
	assert_int_equal(pipe(go), 0);
	for (int i = 0; i < 4; i++) {
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0) {
			char c;
			close(go[1]);
			if (read(go[0], &c, 1) < 0)
				_exit(3);
			_exit(expand(snap, ram, err, sizeof err) == 0 ? 0 : 1);
		}
	}
	close(go[0]);
	close(go[1]);   /* all start together */
	for (int i = 0; i < 4; i++) {
		int status;
		assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
		assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	check_ram(ram);
	assert_int_equal(count_prefixed("d.snap.ram-1.tmp."), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(expand_roundtrip),
		cmocka_unit_test(expand_corrupt_leaves_nothing),
		cmocka_unit_test(expand_killed_leaves_no_final),
		cmocka_unit_test(expand_concurrent),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
