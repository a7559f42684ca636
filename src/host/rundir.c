/* rundir.c — stale per-run directory sweeping (contract in rundir.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fixture/cache.h"
#include "rundir.h"
#include "fsutil.h"

#define PREFIX "provium-run-"
#define UNOWNED_GRACE_S 3600

/* Field 22 of /proc/<pid>/stat: start time in clock ticks since boot.
 * 0 when the process does not exist (or /proc is unreadable). */
static unsigned long long proc_start_time(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long long st = 0;
	ssize_t n;
	int fd;

	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return 0;
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	/* comm may hold spaces and parentheses: fields restart after the last ')' */
	if (!(p = strrchr(buf, ')')))
		return 0;
	p++;
	for (int field = 3; field < 22 && p; field++)
		p = strchr(p + 1, ' ');
	if (!p || sscanf(p, " %llu", &st) != 1)
		return 0;
	return st;
}

int rundir_owner_alive(const char *text)
{
	long long pid;
	unsigned long long start;

	if (sscanf(text, "%lld %llu", &pid, &start) != 2 || pid <= 0 || pid > INT32_MAX)
		return -1;
	if (kill((pid_t)pid, 0) < 0 && errno == ESRCH)
		return 0;
	/* The pid exists (or is not ours to signal): the same process only
	 * if it started when the owner did. */
	unsigned long long now = proc_start_time((pid_t)pid);
	return now == 0 || now == start;
}

int rundir_mark_owner(const char *dir)
{
	char path[4096], rec[64];
	int fd, n, e;

	if ((size_t)snprintf(path, sizeof path, "%s/owner", dir) >= sizeof path) {
		errno = ENAMETOOLONG;
		return -1;
	}
	n = snprintf(rec, sizeof rec, "%d %llu\n", (int)getpid(), proc_start_time(getpid()));
	if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600)) < 0)
		return -1;
	if (write(fd, rec, (size_t)n) != n) {
		e = errno ? errno : ENOSPC;
		close(fd);
		errno = e;
		return -1;
	}
	return close(fd);
}

/* Stale? 1 yes, 0 no. */
static int is_stale(int basefd, const char *name, const struct stat *st)
{
	char rel[512], text[128];
	ssize_t n;
	int fd, alive;

	snprintf(rel, sizeof rel, "%s/owner", name);
	fd = openat(basefd, rel, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT && time(NULL) - st->st_mtime > UNOWNED_GRACE_S;
	n = read(fd, text, sizeof text - 1);
	close(fd);
	if (n < 0)
		return 0;
	text[n] = 0;
	alive = rundir_owner_alive(text);
	if (alive < 0)  /* a torn or foreign record: age decides */
		return time(NULL) - st->st_mtime > UNOWNED_GRACE_S;
	return !alive;
}

int rundir_sweep_stale(const char *base)
{
	DIR *d = opendir(base);
	struct dirent *de;
	int removed = 0;

	if (!d)
		return 0;
	while ((de = readdir(d))) {
		struct stat st;
		char *path;

		if (strncmp(de->d_name, PREFIX, strlen(PREFIX)) != 0)
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISDIR(st.st_mode) || st.st_uid != getuid())
			continue;
		if (!is_stale(dirfd(d), de->d_name, &st))
			continue;
		if (asprintf(&path, "%s/%s", base, de->d_name) < 0)
			continue;
		if (rm_rf(path) == 0)
			removed++;
		free(path);
	}
	closedir(d);
	return removed;
}
