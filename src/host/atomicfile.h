/* atomicfile.h — install a file atomically (git's lockfile idea): the
 * data goes to a temp file "<path>.tmp.<pid>" in the same directory, is
 * fsync'd, then renamed over path and the directory fsync'd. A reader
 * sees the old file or the whole new one, never a part; a crash leaves at
 * most the temp (named so cache sweeps recognise it).
 *
 * Calling sequence:
 *     struct atomic_file af;
 *     af_open(&af, path, 0644)      temp created (O_EXCL, O_NOFOLLOW) and
 *                                   registered with tempfile.h: removed at
 *                                   exit if never committed
 *     write_all(af.fd, ...) / pwrite(af.fd, ...)
 *     af_close(&af)                 fsync + close ("write" errors)
 *     af_rename(&af)                rename over path + fsync the directory
 *     af_abort(&af)                 always, last: unlinks an uncommitted
 *                                   temp, frees; safe after any step
 * af_commit() is af_close + af_rename for callers that report both alike.
 *
 * Every step returns 0, or -1 with errno (af.tmp names the temp for the
 * caller's message); a short write without an error is ENOSPC. */
#ifndef PROVIUM_ATOMICFILE_H
#define PROVIUM_ATOMICFILE_H

#include <stddef.h>
#include <sys/types.h>

struct atomic_file {
	int fd;          /* the temp, open for writing; -1 once closed */
	char *path;      /* the final name */
	char *tmp;       /* the temp's name; NULL once renamed */
	int owned;       /* 1 while the temp exists and is ours to unlink */
};

int af_open(struct atomic_file *af, const char *path, mode_t mode);
int af_close(struct atomic_file *af);
int af_rename(struct atomic_file *af);
int af_commit(struct atomic_file *af);
void af_abort(struct atomic_file *af);

/* The whole sequence for a buffer. -1 with errno; no temp is left. */
int write_file_atomic(const char *path, const void *data, size_t len, mode_t mode);

#endif
