/* filehash.c — content digests of host files, remembered per process
 * (contract in filehash.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "filehash.h"

#define MEMO_MAX 256

struct memo {
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtim;
	XXH128_hash_t h;
};
static struct memo *memo;
static size_t nmemo;

int filehash(const char *path, const struct stat *st, XXH128_hash_t *out)
{
	XXH3_state_t *x;
	char buf[1 << 16];
	ssize_t n;
	int fd, rc = -1, e;

	for (size_t i = 0; i < nmemo; i++)
		if (memo[i].dev == st->st_dev && memo[i].ino == st->st_ino &&
		    memo[i].size == st->st_size && memo[i].mtim.tv_sec == st->st_mtim.tv_sec &&
		    memo[i].mtim.tv_nsec == st->st_mtim.tv_nsec) {
			*out = memo[i].h;
			return 0;
		}
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -1;
	if (!(x = XXH3_createState())) {
		close(fd);
		errno = ENOMEM;
		return -1;
	}
	XXH3_128bits_reset(x);
	while ((n = read(fd, buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR))
		if (n > 0)
			XXH3_128bits_update(x, buf, (size_t)n);
	e = errno;
	if (n == 0) {
		struct memo *nm;
		*out = XXH3_128bits_digest(x);
		rc = 0;
		if (nmemo < MEMO_MAX && (nm = realloc(memo, (nmemo + 1) * sizeof *nm))) {
			memo = nm;
			memo[nmemo++] = (struct memo){ st->st_dev, st->st_ino, st->st_size,
						       st->st_mtim, *out };
		}
	}
	XXH3_freeState(x);
	close(fd);
	errno = rc ? e : errno;
	return rc;
}

int filehash_hex(const char *path, char hex[33])
{
	struct stat st;
	XXH128_hash_t h;
	if (stat(path, &st) < 0)
		return -1;
	if (!S_ISREG(st.st_mode)) {
		errno = EINVAL;
		return -1;
	}
	if (filehash(path, &st, &h) < 0)
		return -1;
	snprintf(hex, 33, "%016llx%016llx", (unsigned long long)h.high64,
		 (unsigned long long)h.low64);
	return 0;
}
