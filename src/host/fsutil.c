/* fsutil.c — file-system plumbing (see fsutil.h): mkdir_p, rm_rf,
 * read_file, write_all, read_all, path_lookup. Stateless; every function returns
 * 0 / -1 with errno (or a pointer / NULL) and prints nothing. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"

int mkdir_p(const char *path, mode_t mode, size_t *bad)
{
	char *tmp;
	struct stat st;
	int e;

	if (!*path) {
		errno = ENOENT;
		if (bad)
			*bad = 0;
		return -1;
	}
	if (!(tmp = strdup(path)))
		return -1;
	for (char *p = tmp + 1; ; p++) {
		if (*p == '/' || *p == '\0') {
			char c = *p;
			*p = '\0';
			if (mkdir(tmp, mode) < 0 && errno != EEXIST) {
				if (bad)
					*bad = (size_t)(p - tmp);
				goto fail;
			}
			*p = c;
			if (!c)
				break;
		}
	}
	if (stat(tmp, &st) < 0 || !S_ISDIR(st.st_mode)) {
		if (bad)
			*bad = strlen(tmp);
		goto notdir;
	}
	free(tmp);
	return 0;
notdir:
	errno = ENOTDIR;
fail:
	e = errno;
	free(tmp);
	errno = e;
	return -1;
}

/* Remove name in directory dfd, never following a symlink. */
static int rm_at(int dfd, const char *name)
{
	struct stat st;
	struct dirent *de;
	DIR *d;
	int fd, first = 0;

	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -1;
	if (!S_ISDIR(st.st_mode))
		return unlinkat(dfd, name, 0) < 0 && errno != ENOENT ? -1 : 0;
	/* O_NOFOLLOW: a directory swapped for a symlink since the fstatat
	 * fails here instead of being walked. */
	fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -1;
	if (!(d = fdopendir(fd))) {
		first = errno;
		close(fd);
		errno = first;
		return -1;
	}
	while ((errno = 0, de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (rm_at(dirfd(d), de->d_name) < 0 && !first)
			first = errno;
	}
	if (errno && !first)
		first = errno;
	closedir(d);
	if (unlinkat(dfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT && !first)
		first = errno;
	errno = first;
	return first ? -1 : 0;
}

int rm_rf(const char *path)
{
	return rm_at(AT_FDCWD, path);
}

int read_file(const char *path, size_t max, char **out, size_t *len)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	size_t n = 0, cap = 0, got;
	int e;

	if (!f)
		return -1;
	for (;;) {
		if (cap - n < 4096) {
			char *nb = realloc(buf, cap = cap ? cap * 2 : 8192);
			if (!nb) {
				errno = ENOMEM;
				goto fail;
			}
			buf = nb;
		}
		got = fread(buf + n, 1, cap - n - 1, f);
		n += got;
		if (n > max) {
			errno = EFBIG;
			goto fail;
		}
		if (got == 0)
			break;
	}
	if (ferror(f)) {
		if (!errno)
			errno = EIO;
		goto fail;
	}
	fclose(f);
	buf[n] = '\0';
	*out = buf;
	*len = n;
	return 0;
fail:
	e = errno;
	free(buf);
	fclose(f);
	errno = e;
	return -1;
}

int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len) {
		ssize_t w = write(fd, p, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		if (w == 0) {
			errno = ENOSPC;
			return -1;
		}
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

int read_all(int fd, void *buf, size_t len)
{
	char *p = buf;
	while (len) {
		ssize_t r = read(fd, p, len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0) {
			errno = ENODATA;
			return -1;
		}
		p += r;
		len -= (size_t)r;
	}
	return 0;
}

/* 1 when p is an executable regular file; 0 with errno otherwise. */
static int is_exec_file(const char *p)
{
	struct stat st;
	if (stat(p, &st) < 0)
		return 0;
	if (!S_ISREG(st.st_mode)) {
		errno = EACCES;
		return 0;
	}
	return access(p, X_OK) == 0;
}

char *path_lookup(const char *name)
{
	const char *path = getenv("PATH"), *p, *colon;
	char *cand;

	if (strchr(name, '/')) {
		return is_exec_file(name) ? strdup(name) : NULL;
	}
	if (!path || !*path)
		path = "/usr/local/bin:/usr/bin:/bin";
	for (p = path; ; p = colon + 1) {
		colon = strchrnul(p, ':');
		int n = colon == p ? 1 : (int)(colon - p);
		if (asprintf(&cand, "%.*s/%s", n, colon == p ? "." : p, name) < 0)
			return NULL;
		if (is_exec_file(cand))
			return cand;
		free(cand);
		if (!*colon)
			break;
	}
	errno = ENOENT;
	return NULL;
}
