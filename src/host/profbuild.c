/* profbuild.c — run a profile's build command once per build key (see
 * profbuild.h; the key and {out} come from config.c). */
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "errbuf.h"
#include "profbuild.h"

static int mkdir_p(char *path)
{
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(path, 0755) < 0 && errno != EEXIST) {
			*p = '/';
			return -1;
		}
		*p = '/';
	}
	return mkdir(path, 0755) < 0 && errno != EEXIST ? -1 : 0;
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)f;
	return flag == FTW_DP ? rmdir(p) : unlink(p);
}

/* The last lines of the build log, for the error. */
static void log_tail(const char *log, char *buf, size_t len)
{
	int fd = open(log, O_RDONLY | O_CLOEXEC);
	off_t end;
	ssize_t n;
	char *nl;
	buf[0] = 0;
	if (fd < 0)
		return;
	end = lseek(fd, 0, SEEK_END);
	if (end > (off_t)(len - 1))
		lseek(fd, end - (off_t)(len - 1), SEEK_SET);
	else
		lseek(fd, 0, SEEK_SET);
	n = read(fd, buf, len - 1);
	close(fd);
	buf[n > 0 ? n : 0] = 0;
	if (end > (off_t)(len - 1) && (nl = strchr(buf, '\n')))
		memmove(buf, nl + 1, strlen(nl + 1) + 1);
	while ((n = (ssize_t)strlen(buf)) > 0 && buf[n - 1] == '\n')
		buf[n - 1] = 0;
}

int profbuild_ensure(const char *cmd, const char *out, const char *cwd, char *err, size_t errlen)
{
	char lock[4200], stamp[4200], log[4200], dir[4200], tail[1024];
	struct stat st;
	int lfd, status = 0, rc = -1;
	pid_t pid;

	snprintf(lock, sizeof lock, "%s.lock", out);
	snprintf(stamp, sizeof stamp, "%s/.provium-built", out);
	snprintf(log, sizeof log, "%s.log", out);
	snprintf(dir, sizeof dir, "%s", out);
	if (strrchr(dir, '/'))
		*strrchr(dir, '/') = 0;
	if (dir[0] && mkdir_p(dir) < 0) {
		err_set(err, errlen, "build directory `%s`: %s", dir, strerror(errno));
		return -1;
	}
	if ((lfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644)) < 0) {
		err_set(err, errlen, "`%s`: %s", lock, strerror(errno));
		return -1;
	}
	while (flock(lfd, LOCK_EX) < 0)
		if (errno != EINTR) {
			err_set(err, errlen, "lock `%s`: %s", lock, strerror(errno));
			goto out;
		}
	if (stat(stamp, &st) == 0) {
		rc = 0;   /* built for these inputs already */
		goto out;
	}
	/* a build that failed or was interrupted leaves no stamp: start clean */
	if (lstat(out, &st) == 0 && nftw(out, rm_one, 16, FTW_DEPTH | FTW_PHYS) < 0) {
		err_set(err, errlen, "clearing `%s`: %s", out, strerror(errno));
		goto out;
	}
	if (mkdir(out, 0755) < 0) {
		err_set(err, errlen, "`%s`: %s", out, strerror(errno));
		goto out;
	}
	pid = fork();
	if (pid < 0) {
		err_set(err, errlen, "fork: %s", strerror(errno));
		goto out;
	}
	if (pid == 0) {
		int lg = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		int nul = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (lg < 0 || nul < 0 || dup2(nul, 0) < 0 || dup2(lg, 1) < 0 || dup2(lg, 2) < 0)
			_exit(126);
		if (cwd && chdir(cwd) < 0) {
			dprintf(2, "provium: build: cd %s: %s\n", cwd, strerror(errno));
			_exit(126);
		}
		setenv("PROVIUM_OUT", out, 1);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		dprintf(2, "provium: build: /bin/sh: %s\n", strerror(errno));
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR) {
			err_set(err, errlen, "waitpid: %s", strerror(errno));
			goto out;
		}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		log_tail(log, tail, sizeof tail);
		if (WIFEXITED(status))
			err_set(err, errlen, "build command failed with exit status %d (log: %s)%s%s",
			        WEXITSTATUS(status), log, tail[0] ? ":\n" : "", tail);
		else
			err_set(err, errlen, "build command killed by signal %d (log: %s)",
			        WTERMSIG(status), log);
		goto out;
	}
	{
		int s = open(stamp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (s < 0) {
			err_set(err, errlen, "`%s`: %s", stamp, strerror(errno));
			goto out;
		}
		close(s);
	}
	rc = 0;
out:
	close(lfd);   /* releases the lock */
	return rc;
}
