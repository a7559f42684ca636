/* snaptree.c — directory tree <-> snapshot section (see snaptree.h).
 *
 * Record: u8 type ('D', 'F', 'L', 'E' = end), u16 path_len, path (relative,
 * '/'-separated), u32 mode, i64 mtime_ns, u64 size, then size bytes of
 * content (file) or link target (symlink). Integers big-endian. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "errbuf.h"
#include "snap/snapfile.h"
#include "snap/snaptree.h"

#define MAX_PATH 4096

static void put(unsigned char *b, uint64_t v, int n)
{
	for (int i = n - 1; i >= 0; i--, v >>= 8)
		b[i] = (unsigned char)v;
}

static uint64_t get(const unsigned char *b, int n)
{
	uint64_t v = 0;
	for (int i = 0; i < n; i++)
		v = v << 8 | b[i];
	return v;
}

static int rec_head(struct snap_writer *w, char type, const char *rel, const struct stat *st,
                    uint64_t size, char *err, size_t errlen)
{
	unsigned char b[1 + 2 + 4 + 8 + 8];
	size_t pl = strlen(rel);
	b[0] = (unsigned char)type;
	put(b + 1, pl, 2);
	put(b + 3, st ? (uint64_t)(st->st_mode & 07777) : 0, 4);
	put(b + 7, st ? (uint64_t)((int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec) : 0, 8);
	put(b + 15, size, 8);
	if (snapfile_write(w, b, 3, err, errlen) < 0 || snapfile_write(w, rel, pl, err, errlen) < 0)
		return -1;
	return snapfile_write(w, b + 3, sizeof(b) - 3, err, errlen);
}

static int cmpstr(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Walk abs (whose archive path is rel, "" for the top). */
static int walk(struct snap_writer *w, const char *abs, const char *rel, char *err, size_t errlen)
{
	DIR *d = opendir(abs);
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	int rc = -1;
	if (!d) {
		err_set(err, errlen, "snapshot: open `%s`: %s", abs, strerror(errno));
		return -1;
	}
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (n == cap) {
			char **nv = realloc(names, (cap = cap ? cap * 2 : 32) * sizeof(*nv));
			if (!nv)
				goto oom;
			names = nv;
		}
		if (!(names[n] = strdup(de->d_name)))
			goto oom;
		n++;
	}
	if (n)
		qsort(names, n, sizeof(*names), cmpstr);
	for (size_t i = 0; i < n; i++) {
		char ap[MAX_PATH], rp[MAX_PATH];
		struct stat st;
		if ((size_t)snprintf(ap, sizeof ap, "%s/%s", abs, names[i]) >= sizeof ap ||
		    (size_t)snprintf(rp, sizeof rp, "%s%s%s", rel, *rel ? "/" : "", names[i]) >= sizeof rp) {
			err_set(err, errlen, "snapshot: path too long under `%s`", abs);
			goto out;
		}
		if (lstat(ap, &st) < 0) {
			if (errno == ENOENT)
				continue;
			err_set(err, errlen, "snapshot: stat `%s`: %s", ap, strerror(errno));
			goto out;
		}
		if (S_ISDIR(st.st_mode)) {
			if (rec_head(w, 'D', rp, &st, 0, err, errlen) < 0 || walk(w, ap, rp, err, errlen) < 0)
				goto out;
		} else if (S_ISLNK(st.st_mode)) {
			char tgt[MAX_PATH];
			ssize_t k = readlink(ap, tgt, sizeof tgt);
			if (k < 0 || (size_t)k >= sizeof tgt) {
				err_set(err, errlen, "snapshot: readlink `%s`: %s", ap, strerror(errno));
				goto out;
			}
			if (rec_head(w, 'L', rp, &st, (uint64_t)k, err, errlen) < 0 ||
			    snapfile_write(w, tgt, (size_t)k, err, errlen) < 0)
				goto out;
		} else if (S_ISREG(st.st_mode)) {
			int fd = open(ap, O_RDONLY | O_CLOEXEC);
			uint64_t left = (uint64_t)st.st_size;
			static char buf[1 << 16];
			if (fd < 0) {
				err_set(err, errlen, "snapshot: open `%s`: %s", ap, strerror(errno));
				goto out;
			}
			if (rec_head(w, 'F', rp, &st, left, err, errlen) < 0) {
				close(fd);
				goto out;
			}
			while (left) {
				ssize_t k = read(fd, buf, left < sizeof buf ? left : sizeof buf);
				if (k < 0 && errno == EINTR)
					continue;
				if (k <= 0) {
					/* The file shrank under us: pad so the record stays whole. */
					if (k < 0) {
						err_set(err, errlen, "snapshot: read `%s`: %s", ap, strerror(errno));
						close(fd);
						goto out;
					}
					memset(buf, 0, sizeof buf);
					k = (ssize_t)(left < sizeof buf ? left : sizeof buf);
				}
				if (snapfile_write(w, buf, (size_t)k, err, errlen) < 0) {
					close(fd);
					goto out;
				}
				left -= (uint64_t)k;
			}
			close(fd);
		}
	}
	rc = 0;
	goto out;
oom:
	err_set(err, errlen, "snapshot: out of memory");
out:
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	closedir(d);
	return rc;
}

int snaptree_write(struct snap_writer *w, const char *dir, char *err, size_t errlen)
{
	if (walk(w, dir, "", err, errlen) < 0)
		return -1;
	return rec_head(w, 'E', "", NULL, 0, err, errlen);
}

/* Exactly n decompressed bytes. */
static int take(struct snap_reader *r, void *p, size_t n, char *err, size_t errlen)
{
	size_t off = 0;
	while (off < n) {
		size_t got;
		if (snapfile_read(r, (char *)p + off, n - off, &got, err, errlen) < 0)
			return -1;
		if (got == 0) {
			err_set(err, errlen, "snapshot: corrupt tree archive (ends early)");
			return -1;
		}
		off += got;
	}
	return 0;
}

/* Write all n bytes; a write that makes no progress is a full disk
 * (ENOSPC), so the message never shows a stale errno. 0 / -1. */
static int write_all(int fd, const void *p, size_t n)
{
	const char *c = p;
	while (n) {
		ssize_t k = write(fd, c, n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -1;
		if (k == 0) {
			errno = ENOSPC;
			return -1;
		}
		c += k;
		n -= (size_t)k;
	}
	return 0;
}

/* A safe relative path: no leading '/', no empty, '.' or '..' component,
 * and every parent already extracted as a real directory. */
static int safe_path(const char *dir, const char *rel)
{
	char buf[MAX_PATH];
	const char *p = rel;
	if (!*rel || *rel == '/')
		return 0;
	while (*p) {
		const char *s = strchr(p, '/');
		size_t l = s ? (size_t)(s - p) : strlen(p);
		struct stat st;
		if (l == 0 || (l == 1 && p[0] == '.') || (l == 2 && p[0] == '.' && p[1] == '.'))
			return 0;
		if (!s)
			break;
		snprintf(buf, sizeof buf, "%s/%.*s", dir, (int)(s - rel), rel);
		if (lstat(buf, &st) < 0 || !S_ISDIR(st.st_mode))
			return 0;
		p = s + 1;
	}
	return 1;
}

int snaptree_extract(struct snap_reader *r, const char *dir, char *err, size_t errlen)
{
	static char buf[1 << 16];
	for (;;) {
		unsigned char h[3], t[20];
		char rel[MAX_PATH], ap[MAX_PATH];
		size_t pl;
		mode_t mode;
		uint64_t size;
		int64_t mt;
		if (take(r, h, 3, err, errlen) < 0)
			return -1;
		pl = (size_t)get(h + 1, 2);
		if (pl >= sizeof rel) {
			err_set(err, errlen, "snapshot: corrupt tree archive (path length)");
			return -1;
		}
		if (take(r, rel, pl, err, errlen) < 0 || take(r, t, 20, err, errlen) < 0)
			return -1;
		rel[pl] = '\0';
		mode = (mode_t)get(t, 4) & 07777;
		mt = (int64_t)get(t + 4, 8);
		size = get(t + 12, 8);
		if (h[0] == 'E')
			break;
		if (!safe_path(dir, rel) || strlen(rel) != pl) {
			err_set(err, errlen, "snapshot: corrupt tree archive (unsafe path `%s`)", rel);
			return -1;
		}
		if ((size_t)snprintf(ap, sizeof ap, "%s/%s", dir, rel) >= sizeof ap) {
			err_set(err, errlen, "restore: path too long under `%s`", dir);
			return -1;
		}
		if (h[0] == 'D') {
			int dfd;
			if (mkdir(ap, 0700) < 0 && errno != EEXIST) {
				err_set(err, errlen, "restore: mkdir `%s`: %s", ap, strerror(errno));
				return -1;
			}
			/* An earlier record may have put a symlink (or a file)
			 * at this name: never chmod through it. */
			dfd = open(ap, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (dfd < 0) {
				err_set(err, errlen, "snapshot: corrupt tree archive (`%s` is not a directory)", rel);
				return -1;
			}
			fchmod(dfd, mode);
			close(dfd);
		} else if (h[0] == 'L') {
			char tgt[MAX_PATH];
			if (size >= sizeof tgt) {
				err_set(err, errlen, "snapshot: corrupt tree archive (link length)");
				return -1;
			}
			if (take(r, tgt, (size_t)size, err, errlen) < 0)
				return -1;
			tgt[size] = '\0';
			if (symlink(tgt, ap) < 0) {
				err_set(err, errlen, "restore: symlink `%s`: %s", ap, strerror(errno));
				return -1;
			}
		} else if (h[0] == 'F') {
			int fd = open(ap, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
			struct timespec ts[2];
			if (fd < 0) {
				err_set(err, errlen, "restore: create `%s`: %s", ap, strerror(errno));
				return -1;
			}
			while (size) {
				size_t n = size < sizeof buf ? (size_t)size : sizeof buf;
				if (take(r, buf, n, err, errlen) < 0) {
					close(fd);
					return -1;
				}
				if (write_all(fd, buf, n) < 0) {
					err_set(err, errlen, "restore: write `%s`: %s", ap, strerror(errno));
					close(fd);
					return -1;
				}
				size -= n;
			}
			fchmod(fd, mode);
			ts[0].tv_sec = 0;
			ts[0].tv_nsec = UTIME_OMIT;
			ts[1].tv_sec = mt / 1000000000;
			ts[1].tv_nsec = mt % 1000000000;
			futimens(fd, ts);
			close(fd);
		} else {
			err_set(err, errlen, "snapshot: corrupt tree archive (record type 0x%02x)", h[0]);
			return -1;
		}
	}
	{
		size_t got;
		if (snapfile_read(r, buf, sizeof buf, &got, err, errlen) < 0)
			return -1;
		if (got != 0) {
			err_set(err, errlen, "snapshot: corrupt tree archive (data after the end record)");
			return -1;
		}
	}
	return 0;
}
