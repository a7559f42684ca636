/* fsutil.h — file-system plumbing shared by the host code: create a
 * directory path, remove a tree, read a whole file, write a buffer fully,
 * find a program on $PATH. Atomic installs are atomicfile.h, temp files
 * and directories removed at exit are tempfile.h.
 *
 * Error contract: 0 (or a pointer) on success; -1 (or NULL) with errno
 * set on failure, nothing printed. */
#ifndef PROVIUM_FSUTIL_H
#define PROVIUM_FSUTIL_H

#include <stddef.h>
#include <sys/types.h>

/* mkdir -p path (each missing component with mode). 0 when path is a
 * directory afterwards; -1 with errno (ENOTDIR when path or a parent is
 * something else). When bad is not NULL, on failure *bad is the length of
 * the prefix of path whose creation failed. */
int mkdir_p(const char *path, mode_t mode, size_t *bad);

/* rm -rf path. Symlinks are removed, never followed (neither path itself
 * nor anything below it). A missing path is success. Goes on past errors;
 * -1 with the errno of the first one. */
int rm_rf(const char *path);

/* The whole of path into a malloc'd, NUL-terminated *out (*len bytes, the
 * NUL not counted). -1 with errno; EFBIG when the file is over max bytes. */
int read_file(const char *path, size_t max, char **out, size_t *len);

/* write(2) all len bytes (retrying EINTR). -1 with errno; a write that
 * stores nothing without an error is a full disk: ENOSPC. */
int write_all(int fd, const void *buf, size_t len);

/* read(2) exactly len bytes (retrying EINTR). -1 with errno; end of file
 * before len bytes is -1 with ENODATA. */
int read_all(int fd, void *buf, size_t len);

/* Where execvp would find name: name itself when it has a '/', else the
 * first executable regular file <dir>/name for dir in $PATH (unset or
 * empty: /usr/local/bin:/usr/bin:/bin; an empty element is "."). A
 * malloc'd path, or NULL with errno (ENOENT when there is none). */
char *path_lookup(const char *name);

#endif
