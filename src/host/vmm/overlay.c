/* overlay.c — merged initrd cache, agent overlay discovery, and the newc
 * writer for boot files.
 *
 * Owns: files under <scratch_root>/agent-overlay-cache/. Entries are
 * immutable once renamed into place; a name is the SHA-256 of its content,
 * so two runners racing on the same inputs write identical bytes and the
 * second rename is harmless.
 *
 * The merge streams every part twice at most: once through SHA-256 (to
 * name the result and detect a hit) and, on a miss, once into the temp
 * file. Parts are padded to 4 bytes (see overlay.h). */
#include "errbuf.h"
#include "vmm/overlay.h"
#include "fsutil.h"
#include "atomicfile.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- discovery ------------------------------------------------------ */

static bool is_file(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static int take(const char *p, char **out, char *err, size_t errlen)
{
	*out = strdup(p);
	if (!*out) {
		err_set(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

int overlay_find(const char *profile_path, const char *exe_dir, char **out,
		 char *err, size_t errlen)
{
	char dir[PATH_MAX], cand[PATH_MAX + 64];
	*out = NULL;
	if (profile_path) {
		if (is_file(profile_path))
			return take(profile_path, out, err, errlen);
		err_set(err, errlen, "agent overlay `%s` (agent_overlay_path): %s", profile_path,
		       access(profile_path, F_OK) == 0 ? "not a regular file" : strerror(errno));
		return -1;
	}
	const char *env = getenv("PROVIUM_OVERLAY");
	if (env && *env) {
		if (is_file(env))
			return take(env, out, err, errlen);
		err_set(err, errlen, "agent overlay `%s` (PROVIUM_OVERLAY): %s", env,
		       access(env, F_OK) == 0 ? "not a regular file" : strerror(errno));
		return -1;
	}
	if (exe_dir) {
		snprintf(dir, sizeof dir, "%s", exe_dir);
	} else {
		ssize_t n = readlink("/proc/self/exe", dir, sizeof dir - 1);
		if (n <= 0) {
			err_set(err, errlen, "agent overlay: cannot read /proc/self/exe: %s", strerror(errno));
			return -1;
		}
		dir[n] = 0;
		char *slash = strrchr(dir, '/');
		if (slash == dir)
			dir[1] = 0;
		else if (slash)
			*slash = 0;
	}
	snprintf(cand, sizeof cand, "%s/../share/provium/" OVERLAY_NAME, dir);
	if (is_file(cand))
		return take(cand, out, err, errlen);
	/* walk up: in-tree development runs */
	for (;;) {
		static const char *const rel[] = { "build/guest/" OVERLAY_NAME, "dist/" OVERLAY_NAME };
		for (size_t i = 0; i < 2; i++) {
			snprintf(cand, sizeof cand, "%s%s%s", dir,
				 dir[strlen(dir) - 1] == '/' ? "" : "/", rel[i]);
			if (is_file(cand))
				return take(cand, out, err, errlen);
		}
		char *slash = strrchr(dir, '/');
		if (!slash || (slash == dir && dir[1] == 0))
			break;
		if (slash == dir)
			dir[1] = 0;
		else
			*slash = 0;
	}
	err_set(err, errlen, "agent overlay not found: build it with `make guest`, or set "
	       "agent_overlay_path on the profile or PROVIUM_OVERLAY (looked in "
	       "<binary dir>/../share/provium and build/guest/ above the binary)");
	return -1;
}

/* ---- newc writer ---------------------------------------------------- */

struct buf {
	unsigned char *p;
	size_t len, cap;
	bool oom;
};

static void put(struct buf *b, const void *d, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n > b->cap) {
		size_t nc = b->cap ? b->cap : 4096;
		while (nc < b->len + n)
			nc *= 2;
		unsigned char *np = realloc(b->p, nc);
		if (!np) {
			b->oom = true;
			return;
		}
		b->p = np;
		b->cap = nc;
	}
	if (n)
		memcpy(b->p + b->len, d, n);
	b->len += n;
}

static void pad4(struct buf *b)
{
	static const unsigned char z[4];
	put(b, z, (4 - (b->len & 3)) & 3);
}

static void entry(struct buf *b, const char *name, unsigned mode, unsigned ino,
		  const void *data, size_t len)
{
	char hdr[111];
	unsigned nlink = (mode & 0170000) == 0040000 ? 2 : 1;
	snprintf(hdr, sizeof hdr, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		 ino, mode, 0u, 0u, nlink, 0u, (unsigned)len, 0u, 0u, 0u, 0u,
		 (unsigned)strlen(name) + 1, 0u);
	put(b, hdr, 110);
	put(b, name, strlen(name) + 1);
	pad4(b);
	put(b, data, len);
	pad4(b);
}

/* Check and normalise an absolute guest path into rel (no leading '/',
 * single slashes). 0 or -1. */
static int norm_path(const char *in, char *rel, size_t len)
{
	size_t o = 0;
	if (!in || in[0] != '/')
		return -1;
	const char *p = in;
	while (*p) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		const char *e = strchrnul(p, '/');
		size_t n = (size_t)(e - p);
		if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return -1;
		if (o + n + 2 > len)
			return -1;
		if (o)
			rel[o++] = '/';
		memcpy(rel + o, p, n);
		o += n;
		p = e;
	}
	rel[o] = 0;
	return o ? 0 : -1;
}

int overlay_files_cpio(const struct overlay_file *files, size_t n, unsigned char **out,
		       size_t *outlen, char *err, size_t errlen)
{
	struct buf b = { 0 };
	char **dirs = NULL;
	size_t ndirs = 0;
	unsigned ino = 0x70000;
	int rc = -1;

	*out = NULL;
	*outlen = 0;
	for (size_t i = 0; i < n; i++) {
		char rel[PATH_MAX];
		if (norm_path(files[i].path, rel, sizeof rel) < 0) {
			err_set(err, errlen, "boot file path `%s`: must be absolute, without . or .. components",
			       files[i].path ? files[i].path : "(nil)");
			goto out;
		}
		if (files[i].len > 0xffffffffu) {
			err_set(err, errlen, "boot file `%s` is too large for a cpio entry", files[i].path);
			goto out;
		}
		/* parent directories, each once */
		for (char *s = strchr(rel, '/'); s; s = strchr(s + 1, '/')) {
			*s = 0;
			bool seen = false;
			for (size_t k = 0; k < ndirs && !seen; k++)
				seen = strcmp(dirs[k], rel) == 0;
			if (!seen) {
				char **nd = realloc(dirs, (ndirs + 1) * sizeof *nd);
				char *d = strdup(rel);
				if (!nd || !d) {
					free(d);
					if (nd)
						dirs = nd;
					err_set(err, errlen, "out of memory");
					goto out;
				}
				dirs = nd;
				dirs[ndirs++] = d;
				entry(&b, rel, 0040755, ino++, NULL, 0);
			}
			*s = '/';
		}
		unsigned mode = files[i].mode ? files[i].mode & 07777 : 0644;
		entry(&b, rel, 0100000 | mode, ino++, files[i].data, files[i].len);
	}
	entry(&b, "TRAILER!!!", 0, 0, NULL, 0);
	if (b.oom) {
		err_set(err, errlen, "out of memory");
		goto out;
	}
	*out = b.p;
	*outlen = b.len;
	b.p = NULL;
	rc = 0;
out:
	for (size_t k = 0; k < ndirs; k++)
		free(dirs[k]);
	free(dirs);
	free(b.p);
	return rc;
}

/* ---- merge ---------------------------------------------------------- */

/* Where merged bytes go: a running hash and/or a file. */
struct sink {
	EVP_MD_CTX *md;
	int fd;
	uint64_t total;
};

static int emit(struct sink *k, const void *p, size_t l, char *err, size_t errlen)
{
	if (k->md && EVP_DigestUpdate(k->md, p, l) != 1) {
		err_set(err, errlen, "sha256 failed");
		return -1;
	}
	for (size_t o = 0; k->fd >= 0 && o < l;) {
		ssize_t w = write(k->fd, (const unsigned char *)p + o, l - o);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			err_set(err, errlen, "write merged initrd: %s", strerror(errno));
			return -1;
		}
		o += (size_t)w;
	}
	k->total += l;
	return 0;
}

/* Stream the merged bytes of parts (each padded to 4) into k. */
static int stream_parts(const struct overlay_part *parts, size_t n, struct sink *k,
			char *err, size_t errlen)
{
	static const unsigned char z[4];
	unsigned char *buf = malloc(1 << 20);
	int rc = -1;
	if (!buf) {
		err_set(err, errlen, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		if (parts[i].path) {
			int in = open(parts[i].path, O_RDONLY | O_CLOEXEC);
			if (in < 0) {
				err_set(err, errlen, "open `%s`: %s", parts[i].path, strerror(errno));
				goto out;
			}
			for (;;) {
				ssize_t r = read(in, buf, 1 << 20);
				if (r < 0 && errno == EINTR)
					continue;
				if (r < 0)
					err_set(err, errlen, "read `%s`: %s", parts[i].path, strerror(errno));
				if (r <= 0 || emit(k, buf, (size_t)r, err, errlen) < 0) {
					close(in);
					if (r == 0)
						break;
					goto out;
				}
			}
		} else if (parts[i].len && emit(k, parts[i].data, parts[i].len, err, errlen) < 0) {
			goto out;
		}
		size_t pad = (4 - (k->total & 3)) & 3;
		if (pad && emit(k, z, pad, err, errlen) < 0)
			goto out;
	}
	rc = 0;
out:
	free(buf);
	return rc;
}

int overlay_cache_path(const char *scratch_root, const struct overlay_part *parts, size_t n,
		       char **out, char *err, size_t errlen)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char hex[2 * EVP_MAX_MD_SIZE + 1];
	*out = NULL;
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	if (!c || EVP_DigestInit_ex(c, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(c);
		err_set(err, errlen, "sha256 unavailable");
		return -1;
	}
	struct sink k = { .md = c, .fd = -1 };
	int r = stream_parts(parts, n, &k, err, errlen);
	if (r == 0 && EVP_DigestFinal_ex(c, md, &mdlen) != 1) {
		err_set(err, errlen, "sha256 failed");
		r = -1;
	}
	EVP_MD_CTX_free(c);
	if (r < 0)
		return -1;
	for (unsigned i = 0; i < mdlen; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	if (asprintf(out, "%s/" OVERLAY_CACHE_DIR "/%s.cpio.gz", scratch_root, hex) < 0) {
		*out = NULL;
		err_set(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

int overlay_merge(const char *scratch_root, const struct overlay_part *parts, size_t n,
		  char **out, char *err, size_t errlen)
{
	struct atomic_file af = { .fd = -1 };
	char *path = NULL;
	int rc = -1;

	*out = NULL;
	if (overlay_cache_path(scratch_root, parts, n, &path, err, errlen) < 0)
		return -1;
	if (is_file(path))
		goto hit;
	char *slash = strrchr(path, '/');
	*slash = 0;
	if (mkdir_p(path, 0755, NULL) < 0) {
		err_set(err, errlen, "mkdir `%s`: %s", path, strerror(errno));
		*slash = '/';
		goto out;
	}
	*slash = '/';
	if (af_open(&af, path, 0644) < 0) {
		if (!af.tmp)
			err_set(err, errlen, "out of memory");
		else
			err_set(err, errlen, "create `%s`: %s", af.tmp, strerror(errno));
		goto out;
	}
	struct sink k = { .fd = af.fd };
	if (stream_parts(parts, n, &k, err, errlen) < 0)
		goto out;
	if (af_close(&af) < 0) {
		err_set(err, errlen, "fsync `%s`: %s", af.tmp, strerror(errno));
		goto out;
	}
	if (af_rename(&af) < 0) {
		err_set(err, errlen, "rename `%s`: %s", af.tmp, strerror(errno));
		goto out;
	}
hit:
	*out = path;
	path = NULL;
	rc = 0;
out:
	af_abort(&af);
	free(path);
	return rc;
}
