/* discover.c — the file walk behind `provium`, `provium list` and --watch.
 *
 * Walks roots with opendir/readdir (no nftw: we need the root-relative
 * path and a deterministic order), collecting regular files whose name
 * ends in the requested suffix. Symlinked files are followed; symlinked
 * directories are not descended (no cycles). Hidden directories
 * (`.git`, `.provium-meta`) are skipped. A root that is a file is taken
 * only when its name has the suffix. The result is sorted by display
 * path so runs, listings and rerun state are reproducible.
 *
 * Display paths are relative to the project directory (the config
 * file's, set by main with discover_set_base) whatever the cwd, so
 * `cd tests && provium smoke.test.lua` prints tests/smoke.test.lua and
 * --filter / --shard / path::NAME see the same names from anywhere. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "discover.h"

/* Collapse `//`, drop `./` components and a trailing `/`. */
static char *clean_path(const char *p)
{
	size_t n = strlen(p);
	char *out = malloc(n + 2), *o = out;
	const char *s = p;

	if (!out)
		return NULL;
	if (*s == '/')
		*o++ = *s++;
	while (*s) {
		while (*s == '/')
			s++;
		if (s[0] == '.' && (s[1] == '/' || s[1] == '\0')) {
			s += 1;
			continue;
		}
		const char *e = strchr(s, '/');
		size_t len = e ? (size_t)(e - s) : strlen(s);
		if (len == 0)
			break;
		if (o > out && o[-1] != '/')
			*o++ = '/';
		memcpy(o, s, len);
		o += len;
		s += len;
	}
	if (o == out)
		*o++ = '.';
	*o = '\0';
	return out;
}

/* The directory display paths are relative to (discover_set_base), or
 * NULL for the cwd. Set once by main before any discovery. */
static char *display_base;

int discover_set_base(const char *dir)
{
	char *d = dir ? strdup(dir) : NULL;

	if (dir && !d)
		return -1;
	free(display_base);
	display_base = d;
	return 0;
}

/* Drop `..` components of an absolute, cleaned path in place (lexically:
 * the display must name the path the user gave, not its symlink target). */
static void drop_dotdot(char *a)
{
	char *w = a, *r = a;

	while (*r) {
		const char *e;
		size_t len;

		while (*r == '/')
			r++;
		if (!*r)
			break;
		e = strchr(r, '/');
		len = e ? (size_t)(e - r) : strlen(r);
		if (len == 2 && r[0] == '.' && r[1] == '.') {
			while (w > a && *--w != '/')
				;
		} else {
			*w++ = '/';
			memmove(w, r, len);
			w += len;
		}
		r += len;
	}
	if (w == a)
		*w++ = '/';
	*w = '\0';
}

char *display_path(const char *p)
{
	char cwd[PATH_MAX];
	char *c = clean_path(p), *a = NULL;
	const char *base = display_base;

	if (!c || !getcwd(cwd, sizeof cwd))
		return c;
	if (!base)
		base = cwd;
	if (c[0] == '/')
		a = strdup(c);
	else if (asprintf(&a, "%s/%s", cwd, c) < 0)
		a = NULL;
	if (!a)
		return c;
	drop_dotdot(a);
	size_t n = strlen(base);
	if (n > 1 && strncmp(a, base, n) == 0 && a[n] == '/') {
		char *r = strdup(a + n + 1);
		free(a);
		free(c);
		return r;
	}
	if (strcmp(base, cwd) != 0) {
		/* outside the project, run from elsewhere: a cwd-relative
		 * path would read as project-relative; say it whole */
		free(c);
		return a;
	}
	free(a);
	return c;
}

static int ends_with(const char *s, const char *suf)
{
	size_t n = strlen(s), m = strlen(suf);
	return n >= m && strcmp(s + n - m, suf) == 0;
}

static void found_file_free(struct found_file *f)
{
	free(f->path);
	free(f->display);
	free(f->relroot);
	free(f->abs);
	for (size_t i = 0; i < f->ntests; i++)
		free(f->tests[i]);
	free(f->tests);
}

static int add(struct file_list *l, const char *path, const char *relroot, const struct stat *st)
{
	struct found_file *f;

	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 32;
		struct found_file *nv = realloc(l->v, cap * sizeof *nv);
		if (!nv)
			return -1;
		l->v = nv;
		l->cap = cap;
	}
	f = &l->v[l->n];
	memset(f, 0, sizeof *f);
	f->path = strdup(path);
	f->display = display_path(path);
	f->relroot = strdup(relroot);
	f->abs = realpath(path, NULL);
	if (!f->abs)
		f->abs = strdup(path);
	f->mtime = st->st_mtim;
	f->size = st->st_size;
	if (!f->path || !f->display || !f->relroot || !f->abs) {
		found_file_free(f);
		errno = ENOMEM;
		return -1;
	}
	l->n++;
	return 0;
}

static int walk(struct file_list *l, const char *dir, const char *rel, const char *suffix)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int rc = 0;

	if (!d)
		return errno == EACCES ? 0 : -1;
	while ((de = readdir(d))) {
		const char *nm = de->d_name;
		char *p = NULL, *r = NULL;
		struct stat st;

		if (nm[0] == '.')
			continue; /* ., .., hidden dirs and files */
		if (asprintf(&p, "%s/%s", dir, nm) < 0)
			goto oom;
		if (asprintf(&r, "%s%s%s", rel, *rel ? "/" : "", nm) < 0) {
			free(p);
			goto oom;
		}
		if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode)) {
			rc = walk(l, p, r, suffix);
		} else if (ends_with(nm, suffix) && stat(p, &st) == 0 && S_ISREG(st.st_mode)) {
			rc = add(l, p, r, &st);
		}
		free(p);
		free(r);
		if (rc < 0)
			break;
	}
	closedir(d);
	return rc;
oom:
	closedir(d);
	errno = ENOMEM;
	return -1;
}

static int by_display(const void *a, const void *b)
{
	return strcmp(((const struct found_file *)a)->display, ((const struct found_file *)b)->display);
}

int discover(const char *const *roots, size_t nroots, const char *suffix,
	     struct file_list *out, char *err, size_t errlen)
{
	return discover_roots(roots, nroots, suffix, false, out, err, errlen);
}

int discover_roots(const char *const *roots, size_t nroots, const char *suffix, bool skip_missing,
		   struct file_list *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof *out);
	for (size_t i = 0; i < nroots; i++) {
		struct stat st;
		char *root = clean_path(roots[i]);
		int rc;

		if (!root)
			goto oom;
		if (stat(root, &st) < 0) {
			if (skip_missing && errno == ENOENT) {
				free(root);
				continue;
			}
			snprintf(err, errlen, "`%s`: %s", roots[i], strerror(errno));
			free(root);
			goto fail;
		}
		if (S_ISDIR(st.st_mode)) {
			rc = walk(out, root, "", suffix);
		} else {
			/* A file named on the command line is taken only if it has
			 * the suffix, as in the reference: `provium x.fixture.lua`
			 * or `provium helper.lua` runs nothing. */
			const char *b = strrchr(root, '/');
			rc = ends_with(b ? b + 1 : root, suffix) ? add(out, root, b ? b + 1 : root, &st) : 0;
		}
		if (rc < 0) {
			snprintf(err, errlen, "scanning `%s`: %s", roots[i], strerror(errno));
			free(root);
			goto fail;
		}
		free(root);
	}
	if (out->n)
		qsort(out->v, out->n, sizeof *out->v, by_display);
	/* The same file reached through two roots is listed once. */
	size_t w = 0;
	for (size_t i = 0; i < out->n; i++) {
		if (w > 0 && strcmp(out->v[w - 1].display, out->v[i].display) == 0) {
			struct found_file *f = &out->v[i];
			found_file_free(f);
			continue;
		}
		out->v[w++] = out->v[i];
	}
	out->n = w;
	return 0;
oom:
	snprintf(err, errlen, "out of memory");
fail:
	file_list_free(out);
	return -1;
}

void file_list_filter(struct file_list *l, int (*keep)(const struct found_file *, void *), void *arg)
{
	size_t w = 0;
	for (size_t i = 0; i < l->n; i++) {
		struct found_file *f = &l->v[i];
		if (keep(f, arg)) {
			l->v[w++] = *f;
		} else {
			found_file_free(f);
		}
	}
	l->n = w;
}

void file_list_free(struct file_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		found_file_free(&l->v[i]);
	free(l->v);
	memset(l, 0, sizeof *l);
}
