/* fuzz_snap.c — the snapshot file and tree readers on hostile cache
 * entries: snapfile_open / next_section / read and snapfile_verify
 * (src/host/snap/snapfile.c), and snaptree_extract (snap/snaptree.c) of
 * every "fs" section into a fresh directory.
 *
 * First input byte, bit 0: 0 = the rest is a whole snapshot file (magic,
 * header checksum, zstd frames: mostly rejected early); 1 = the rest is
 * the archive of an "fs" section, wrapped here into a valid file with
 * snapfile_create so the archive parser itself is reached.
 *
 * Extraction goes into <base>/x; <base>/outside (0600, 6 bytes) stands
 * for the rest of the host. After each input nothing but x and outside
 * may exist in base and outside must be untouched (a symlink record then
 * a directory record of its name once chmodded through the link), else
 * the harness aborts. Everything is removed after each input.
 *
 * <base> is <shm>/provium-fuzz-snap-<pid>-XXXXXX, removed at exit. A crash
 * (abort, a sanitizer report, a deadly signal) skips atexit, so each start
 * first removes the bases of this user whose <pid> is no longer running:
 * stale leftovers of crashed runs, never a live run's. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "snap/snapfile.h"
#include "snap/snaptree.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n);

static char base[64], outside[96], xdir[96], snap[96];

/* rm -rf that never follows a symlink and gets into 0000 directories. */
static void rm_tree(int dfd, const char *name)
{
	struct stat st;
	int fd;
	DIR *d;
	struct dirent *e;

	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return;
	if (!S_ISDIR(st.st_mode)) {
		unlinkat(dfd, name, 0);
		return;
	}
	fchmodat(dfd, name, 0700, 0);
	fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0 && (d = fdopendir(fd))) {
		while ((e = readdir(d)))
			if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
				rm_tree(dirfd(d), e->d_name);
		closedir(d);
	} else if (fd >= 0) {
		close(fd);
	}
	unlinkat(dfd, name, AT_REMOVEDIR);
}

static void cleanup(void)
{
	if (base[0])
		rm_tree(AT_FDCWD, base);
}

#define BASE_PREFIX "provium-fuzz-snap-"

/* Remove dir/provium-fuzz-snap-<pid>-* owned by this user whose <pid> is
 * gone (kill(pid, 0) says ESRCH). */
static void sweep_stale(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	struct stat st;

	if (!d)
		return;
	while ((e = readdir(d))) {
		const char *p = e->d_name;
		char *end;
		long pid;

		if (strncmp(p, BASE_PREFIX, strlen(BASE_PREFIX)))
			continue;
		p += strlen(BASE_PREFIX);
		errno = 0;
		pid = strtol(p, &end, 10);
		if (errno || end == p || *end != '-' || pid <= 0 || pid == (long)getpid())
			continue;
		if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue;
		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISDIR(st.st_mode) || st.st_uid != getuid())
			continue;
		rm_tree(dirfd(d), e->d_name);
	}
	closedir(d);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *t = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	int fd;

	sweep_stale(t);
	snprintf(base, sizeof base, "%s/" BASE_PREFIX "%ld-XXXXXX", t, (long)getpid());
	if (!mkdtemp(base))
		abort();
	atexit(cleanup);
	snprintf(outside, sizeof outside, "%s/outside", base);
	snprintf(xdir, sizeof xdir, "%s/x", base);
	snprintf(snap, sizeof snap, "%s/entry.snap", base);
	fd = open(outside, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, "secret", 6) != 6)
		abort();
	close(fd);
	return 0;
}

static int write_file(const uint8_t *data, size_t n)
{
	int fd = open(snap, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	int ok = fd >= 0 && (n == 0 || write(fd, data, n) == (ssize_t)n);

	if (fd >= 0)
		close(fd);
	return ok ? 0 : -1;
}

static int wrap_archive(const uint8_t *data, size_t n)
{
	char name[] = "vm1", prof[] = "default", be[] = "local";
	struct snap_header h = { .vm_name = name, .profile = prof, .backend = be,
				 .qemu_version = be, .memory = 1 << 20, .cpus = 1 };
	struct snap_writer *w;
	char err[512];

	if (snapfile_create(&w, snap, &h, err, sizeof err) < 0)
		return -1;
	if (snapfile_section_begin(w, "fs", err, sizeof err) < 0 ||
	    snapfile_write(w, data, n, err, sizeof err) < 0 ||
	    snapfile_section_end(w, err, sizeof err) < 0) {
		snapfile_abort(w);
		return -1;
	}
	return snapfile_finish(w, err, sizeof err);
}

/* Nothing but x, outside and entry.snap in base; outside untouched. */
static void check_contained(void)
{
	struct stat st;
	DIR *d = opendir(base);
	struct dirent *e;

	if (lstat(outside, &st) < 0 || !S_ISREG(st.st_mode) || (st.st_mode & 07777) != 0600 ||
	    st.st_size != 6) {
		fprintf(stderr, "fuzz_snap: extraction changed a file outside its directory\n");
		abort();
	}
	if (!d)
		abort();
	while ((e = readdir(d))) {
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && strcmp(e->d_name, "x") &&
		    strcmp(e->d_name, "outside") && strcmp(e->d_name, "entry.snap")) {
			fprintf(stderr, "fuzz_snap: extraction created `%s` outside its directory\n",
				e->d_name);
			abort();
		}
	}
	closedir(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
	struct snap_reader *r;
	struct snap_header h;
	char err[512];
	const char *name;
	uint64_t raw;
	unsigned char buf[4096];
	size_t got;
	int rc;

	if (n == 0)
		return 0;
	if (((data[0] & 1) ? wrap_archive(data + 1, n - 1) : write_file(data + 1, n - 1)) < 0)
		goto out;
	(void)snapfile_verify(snap, err, sizeof err);
	if (snapfile_open(&r, snap, &h, err, sizeof err) < 0)
		goto out;
	while ((rc = snapfile_next_section(r, &name, &raw, err, sizeof err)) == 1) {
		if (!strcmp(name, "fs")) {
			if (mkdir(xdir, 0700) < 0)
				abort();
			(void)snaptree_extract(r, xdir, err, sizeof err);
			check_contained();
			rm_tree(AT_FDCWD, xdir);
			continue;
		}
		do {
			if (snapfile_read(r, buf, sizeof buf, &got, err, sizeof err) < 0)
				break;
		} while (got);
	}
	snapfile_close(r);
	snap_header_free(&h);
out:
	unlink(snap);
	check_contained();
	return 0;
}
