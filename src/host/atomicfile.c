/* atomicfile.c — atomic file installs (see atomicfile.h for the calling
 * sequence and the error contract). The temp is registered with
 * tempfile.c so an exit between af_open and af_rename removes it. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "atomicfile.h"
#include "fsutil.h"
#include "tempfile.h"

int af_open(struct atomic_file *af, const char *path, mode_t mode)
{
	af->fd = -1;
	af->tmp = NULL;
	af->owned = 0;
	if (!(af->path = strdup(path)) ||
	    asprintf(&af->tmp, "%s.tmp.%d", path, (int)getpid()) < 0) {
		af->tmp = NULL;
		errno = ENOMEM;
		return -1;
	}
	for (int tries = 0; ; tries++) {
		af->fd = open(af->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
		if (af->fd >= 0 || errno != EEXIST || tries)
			break;
		/* Our pid's name left by a dead process (pids are reused):
		 * no live writer can own it. Take it over once. */
		if (unlink(af->tmp) < 0)
			break;
	}
	if (af->fd < 0)
		return -1;
	af->owned = 1;
	if (temp_register(af->tmp, 0) < 0) {
		int e = errno;
		close(af->fd);
		af->fd = -1;
		unlink(af->tmp);
		af->owned = 0;
		errno = e;
		return -1;
	}
	return 0;
}

int af_close(struct atomic_file *af)
{
	int fd = af->fd;
	af->fd = -1;
	if (fsync(fd) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return close(fd);
}

/* fsync the directory holding path, so the rename itself is durable. */
static int sync_dir_of(const char *path)
{
	char *copy = strdup(path);
	int fd, rc;
	if (!copy)
		return -1;
	fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	free(copy);
	if (fd < 0)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

int af_rename(struct atomic_file *af)
{
	if (rename(af->tmp, af->path) < 0)
		return -1;
	temp_forget(af->tmp);
	free(af->tmp);
	af->tmp = NULL;
	af->owned = 0;
	/* Installed; a directory that cannot be fsync'd (some file systems
	 * refuse) does not undo that. */
	sync_dir_of(af->path);
	return 0;
}

int af_commit(struct atomic_file *af)
{
	return af_close(af) < 0 ? -1 : af_rename(af);
}

void af_abort(struct atomic_file *af)
{
	int e = errno;
	if (af->fd >= 0)
		close(af->fd);
	af->fd = -1;
	if (af->owned) {
		unlink(af->tmp);
		temp_forget(af->tmp);
		af->owned = 0;
	}
	free(af->tmp);
	af->tmp = NULL;
	free(af->path);
	af->path = NULL;
	errno = e;
}

int write_file_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
	struct atomic_file af;
	int rc = -1;
	if (af_open(&af, path, mode) == 0 && write_all(af.fd, data, len) == 0 &&
	    af_commit(&af) == 0)
		rc = 0;
	af_abort(&af);
	return rc;
}
