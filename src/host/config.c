/* config.c — loading and validating provium.toml (see config.h).
 *
 * Owns the schema: which keys exist in [provium] and [profiles.<name>],
 * their types and defaults, how relative paths resolve (against the
 * directory of the config file), and the three error shapes the CLI turns
 * into exit code 2:
 *   read `<path>`: <strerror>
 *   parse `<path>`: <line>:<col> <what>
 *   invalid config in `<path>`: <message>
 * A value of the wrong TOML type is a parse error (as in the reference,
 * whose typed deserialisation fails there); unknown keys and bad values
 * are invalid config. Both name the key, its table and where, e.g.
 *   parse `p.toml`: 9:8 `cpus` in [profiles.x] must be a positive integer, got string
 *   invalid config in `p.toml`: unknown key `foo` in [profiles.x] at 7:1
 *
 * Profiles come from [profiles.<name>] tables and, with `[profiles]
 * from_dir = "dir"`, from every <dir>/<name>/profile.provium.toml (keys at
 * its top level, paths relative to it, errors naming it). A profile's
 * `build` gets its build key here (command + build_inputs' content) and
 * its `{out}` paths are resolved to <build base>/<name>-<key>; running
 * the build is profbuild.c's. docs/profiles.md, docs/disks.md.
 *
 * Calling sequence: config_open() (--config, else the nearest
 * provium.toml from the cwd upwards via config_find(), else
 * config_init_default()), config_profile() lookups, config_free(). config_load()
 * initialises cfg itself; on failure cfg holds the defaults, so
 * config_free() is always safe afterwards. Nothing here prints. */
#include "config.h"
#include "toml.h"
#include "units.h"
#include "fsutil.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <dirent.h>
#include <unistd.h>
#include <xxhash.h>

#define DEFAULT_CACHE_MAX (UINT64_C(20) << 30)
#define DEFAULT_AGENT_BOOT_TIMEOUT_NS (INT64_C(30) * 1000000000)

struct loader {
	const char *path;   /* as given, for messages */
	const char *dir;    /* absolute directory of the file */
	char *err;
	size_t errlen;
};

__attribute__((format(printf, 2, 3)))
static int invalid(struct loader *ld, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	snprintf(ld->err, ld->errlen, "invalid config in `%s`: %s", ld->path, msg);
	return -1;
}

/* A value of the wrong TOML type is reported like a syntax error (the
 * reference deserialises typed fields, so its type mismatches are parse
 * errors): parse `<path>`: <line>:<col> <message>. */
__attribute__((format(printf, 4, 5)))
static int type_error(struct loader *ld, int line, int col, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	snprintf(ld->err, ld->errlen, "parse `%s`: %d:%d %s", ld->path, line, col, msg);
	return -1;
}

static int nomem(struct loader *ld)
{
	snprintf(ld->err, ld->errlen, "invalid config in `%s`: out of memory", ld->path);
	return -1;
}

static const char *home_dir(void)
{
	const char *h = getenv("HOME");
	struct passwd *pw;
	if (h && *h)
		return h;
	pw = getpwuid(getuid());
	return pw && pw->pw_dir ? pw->pw_dir : "/";
}

/* p resolved against dir ("~/" expands to $HOME); malloc'd, NULL on OOM. */
static char *resolve_path(const char *dir, const char *p)
{
	char *out;
	if (p[0] == '/')
		return strdup(p);
	if (p[0] == '~' && (p[1] == '/' || p[1] == 0))
		return asprintf(&out, "%s%s", home_dir(), p + 1) < 0 ? NULL : out;
	if (strcmp(p, ".") == 0)
		return strdup(dir);
	if (p[0] == '.' && p[1] == '/')
		p += 2;
	return asprintf(&out, "%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/", p) < 0
		       ? NULL : out;
}

static void profile_free(struct profile *p)
{
	free(p->name);
	free(p->kernel);
	free(p->initrd);
	free(p->cmdline);
	free(p->cmdline_file);
	free(p->guest_os);
	free(p->agent_overlay_path);
	free(p->modules);
	free(p->root);
	for (size_t i = 0; i < p->ndisks; i++) {
		free(p->disks[i].id);
		free(p->disks[i].image);
	}
	free(p->disks);
	free(p->build);
	for (size_t i = 0; i < p->nbuild_inputs; i++)
		free(p->build_inputs[i]);
	free(p->build_inputs);
	free(p->build_out);
	free(p->source);
}

void config_free(struct config *cfg)
{
	size_t i;
	if (!cfg)
		return;
	free(cfg->path);
	free(cfg->dir);
	for (i = 0; i < cfg->nroots; i++)
		free(cfg->roots[i]);
	free(cfg->roots);
	free(cfg->cache_dir);
	free(cfg->cache_remote);
	free(cfg->cache_overflow_dir);
	free(cfg->cache_remote_token_env);
	for (i = 0; i < cfg->nprofiles; i++)
		profile_free(&cfg->profiles[i]);
	free(cfg->profiles);
	memset(cfg, 0, sizeof *cfg);
}

void config_init_default(struct config *cfg)
{
	char *cwd = getcwd(NULL, 0);
	memset(cfg, 0, sizeof *cfg);
	cfg->dir = cwd ? cwd : strdup("/");
	cfg->roots = calloc(1, sizeof *cfg->roots);
	if (asprintf(&cfg->cache_dir, "%s/.cache/provium/fixtures", home_dir()) < 0)
		cfg->cache_dir = NULL;
	cfg->cache_max_size = DEFAULT_CACHE_MAX;
}

char *config_find(void)
{
	char *dir = getcwd(NULL, 0);

	while (dir) {
		char *p = NULL;
		char *slash;

		if (asprintf(&p, "%s%sprovium.toml", dir, dir[1] ? "/" : "") < 0) {
			free(dir);
			errno = ENOMEM;
			return NULL;
		}
		if (access(p, F_OK) == 0) {
			free(dir);
			return p;
		}
		free(p);
		if (errno != ENOENT && errno != ENOTDIR && errno != EACCES)
			break;
		if (!dir[1]) /* tried `/` */
			break;
		slash = strrchr(dir, '/');
		if (slash == dir)
			slash[1] = '\0';
		else
			*slash = '\0';
	}
	free(dir);
	errno = ENOENT;
	return NULL;
}

int config_open(struct config *cfg, const char *explicit, char *err, size_t errlen)
{
	char *found = NULL;
	int rc;

	if (!explicit && !(found = config_find())) {
		if (errno != ENOENT) {
			config_init_default(cfg);
			snprintf(err, errlen, "looking for provium.toml: %s", strerror(errno));
			return -1;
		}
		config_init_default(cfg);
		return 0;
	}
	rc = config_load(cfg, explicit ? explicit : found, err, errlen);
	free(found);
	return rc;
}

char *config_build_base(void)
{
	const char *e = getenv("PROVIUM_BUILD_DIR");
	char *out;
	if (e && *e)
		return strdup(e);
	e = getenv("XDG_CACHE_HOME");
	if (e && *e)
		return asprintf(&out, "%s/provium/builds", e) < 0 ? NULL : out;
	return asprintf(&out, "%s/.cache/provium/builds", home_dir()) < 0 ? NULL : out;
}

const struct profile *config_profile(const struct config *cfg, const char *name)
{
	size_t i;
	for (i = 0; i < cfg->nprofiles; i++)
		if (strcmp(cfg->profiles[i].name, name) == 0)
			return &cfg->profiles[i];
	return NULL;
}

/* ---- typed field readers --------------------------------------------------
 * Each takes the key/value pair and the table's display name ("provium",
 * "profiles.x") and fills the destination or returns -1 with a message. */

static int wrong_type(struct loader *ld, const struct toml_kv *kv, const char *table,
		      const char *expected)
{
	return type_error(ld, kv->val->line, kv->val->col, "`%s` in [%s] must be %s, got %s", kv->key,
			  table, expected, toml_type_name(kv->val->type));
}

static int get_string(struct loader *ld, const struct toml_kv *kv, const char *table, char **out)
{
	if (kv->val->type != TOML_STRING)
		return wrong_type(ld, kv, table, "a string");
	free(*out);
	if (!(*out = strdup(kv->val->u.str.ptr)))
		return nomem(ld);
	return 0;
}

static int get_bool(struct loader *ld, const struct toml_kv *kv, const char *table, bool *out)
{
	if (kv->val->type != TOML_BOOL)
		return wrong_type(ld, kv, table, "a boolean");
	*out = kv->val->u.b;
	return 0;
}

static int get_path(struct loader *ld, const struct toml_kv *kv, const char *table, char **out)
{
	if (kv->val->type != TOML_STRING)
		return wrong_type(ld, kv, table, "a path string");
	if (!kv->val->u.str.ptr[0])
		return invalid(ld, "`%s` in [%s] is an empty path at %d:%d", kv->key, table,
			       kv->val->line, kv->val->col);
	free(*out);
	if (!(*out = resolve_path(ld->dir, kv->val->u.str.ptr)))
		return nomem(ld);
	return 0;
}

static int get_size(struct loader *ld, const struct toml_kv *kv, const char *table, uint64_t *out)
{
	char msg[256];
	if (kv->val->type == TOML_INTEGER) {
		if (kv->val->u.i < 0)
			return invalid(ld, "`%s` in [%s] must not be negative at %d:%d", kv->key,
				       table, kv->val->line, kv->val->col);
		*out = (uint64_t)kv->val->u.i;
		return 0;
	}
	if (kv->val->type != TOML_STRING)
		return wrong_type(ld, kv, table, "a size string (\"512M\", \"2G\") or integer bytes");
	if (parse_size_bytes(kv->val->u.str.ptr, out, msg, sizeof msg) < 0)
		return invalid(ld, "`%s` in [%s]: %s at %d:%d", kv->key, table, msg,
			       kv->val->line, kv->val->col);
	return 0;
}

static int get_duration(struct loader *ld, const struct toml_kv *kv, const char *table,
			int64_t *out)
{
	char msg[256];
	const struct toml_node *v = kv->val;
	if (v->type == TOML_INTEGER || v->type == TOML_FLOAT) {
		double s = v->type == TOML_INTEGER ? (double)v->u.i : v->u.f;
		if (!(s >= 0) || s > 9.2e9)
			return invalid(ld, "`%s` in [%s] must be a non-negative number of seconds at %d:%d",
				       kv->key, table, v->line, v->col);
		*out = v->type == TOML_INTEGER ? v->u.i * 1000000000 : (int64_t)(s * 1e9 + 0.5);
		return 0;
	}
	if (v->type != TOML_STRING)
		return wrong_type(ld, kv, table, "seconds or a duration string (\"30s\")");
	if (parse_duration_ns(v->u.str.ptr, out, msg, sizeof msg) < 0)
		return invalid(ld, "`%s` in [%s]: %s at %d:%d", kv->key, table, msg, v->line, v->col);
	return 0;
}

static int unknown_key(struct loader *ld, const struct toml_kv *kv, const char *table)
{
	if (table)
		return invalid(ld, "unknown key `%s` in [%s] at %d:%d", kv->key, table, kv->line,
			       kv->col);
	return invalid(ld, "unknown top-level key `%s` at %d:%d (expected [provium] or [profiles.<name>])",
		       kv->key, kv->line, kv->col);
}

/* ---- [provium] ------------------------------------------------------------ */

static int load_provium(struct loader *ld, struct config *cfg, const struct toml_kv *sec)
{
	const struct toml_node *t = sec->val;
	size_t i, j;

	if (t->type != TOML_TABLE)
		return wrong_type(ld, sec, "top level", "a table");
	for (i = 0; i < t->u.tab.n; i++) {
		const struct toml_kv *kv = &t->u.tab.items[i];
		if (strcmp(kv->key, "roots") == 0) {
			const struct toml_node *a = kv->val;
			char **roots;
			if (a->type != TOML_ARRAY)
				return wrong_type(ld, kv, "provium", "an array of strings");
			for (j = 0; j < a->u.arr.n; j++)
				if (a->u.arr.items[j]->type != TOML_STRING)
					return type_error(ld, a->u.arr.items[j]->line, a->u.arr.items[j]->col,
							  "`roots` in [provium] must be an array of strings, item %zu is %s",
							  j + 1, toml_type_name(a->u.arr.items[j]->type));
				else if (!a->u.arr.items[j]->u.str.ptr[0])
					return invalid(ld, "`roots` in [provium] must be an array of non-empty strings (item %zu at %d:%d)",
						       j + 1, a->u.arr.items[j]->line,
						       a->u.arr.items[j]->col);
			if (!(roots = calloc(a->u.arr.n + 1, sizeof *roots)))
				return nomem(ld);
			for (j = 0; j < cfg->nroots; j++)
				free(cfg->roots[j]);
			free(cfg->roots);
			cfg->roots = roots;
			cfg->nroots = 0;
			for (j = 0; j < a->u.arr.n; j++) {
				if (!(roots[j] = resolve_path(ld->dir, a->u.arr.items[j]->u.str.ptr)))
					return nomem(ld);
				cfg->nroots++;
			}
		} else if (strcmp(kv->key, "cache_dir") == 0) {
			if (get_path(ld, kv, "provium", &cfg->cache_dir) < 0)
				return -1;
		} else if (strcmp(kv->key, "cache_max_size") == 0) {
			if (get_size(ld, kv, "provium", &cfg->cache_max_size) < 0)
				return -1;
		} else if (strcmp(kv->key, "cache_overflow_dir") == 0) {
			if (get_path(ld, kv, "provium", &cfg->cache_overflow_dir) < 0)
				return -1;
		} else if (strcmp(kv->key, "cache_remote") == 0) {
			if (get_string(ld, kv, "provium", &cfg->cache_remote) < 0)
				return -1;
			if (cfg->cache_remote[0] && strncmp(cfg->cache_remote, "http://", 7) &&
			    strncmp(cfg->cache_remote, "https://", 8))
				return invalid(ld, "`cache_remote` in [provium] must be an http:// or https:// URL (at %d:%d)",
				               kv->line, kv->col);
		} else if (strcmp(kv->key, "cache_remote_readonly") == 0) {
			if (get_bool(ld, kv, "provium", &cfg->cache_remote_readonly) < 0)
				return -1;
		} else if (strcmp(kv->key, "cache_remote_token_env") == 0) {
			if (get_string(ld, kv, "provium", &cfg->cache_remote_token_env) < 0)
				return -1;
		} else {
			return unknown_key(ld, kv, "provium");
		}
	}
	return 0;
}

/* ---- [profiles.<name>] ---------------------------------------------------- */

/* Contents of file with runs of whitespace collapsed to one space and the
 * ends trimmed; malloc'd. NULL with errno on failure. */
/* Bounds on what we read for a config: a provium.toml is small, and a
 * kernel command line is at most a few KiB (2048 bytes on x86), so
 * `cmdline_file = "/dev/zero"` is an error, not an endless read. */
#define CONFIG_FILE_MAX (16 << 20)
#define CMDLINE_FILE_MAX (64 << 10)

static char *read_collapsed(const char *file)
{
	/* O_NONBLOCK: a FIFO named here must not hang the load waiting for
	 * a writer; it is refused below as not a file. */
	int fd = open(file, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	struct stat st;
	FILE *f = NULL;
	char *out = NULL;
	size_t len = 0, cap = 0, raw = 0;
	int c, pending = 0;

	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) < 0 || S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode) ||
	    S_ISDIR(st.st_mode)) {
		int e = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
		close(fd);
		errno = e;
		return NULL;
	}
	if (!(f = fdopen(fd, "r"))) {
		close(fd);
		return NULL;
	}
	while ((c = getc(f)) != EOF) {
		if (++raw > CMDLINE_FILE_MAX) {
			free(out);
			fclose(f);
			errno = EFBIG;
			return NULL;
		}
		if (isspace(c)) {
			pending = len > 0;
			continue;
		}
		if (len + 3 > cap) {
			char *n = realloc(out, cap = cap ? cap * 2 : 128);
			if (!n) {
				free(out);
				fclose(f);
				errno = ENOMEM;
				return NULL;
			}
			out = n;
		}
		if (pending)
			out[len++] = ' ';
		pending = 0;
		out[len++] = (char)c;
	}
	if (ferror(f)) {
		int e = errno;
		free(out);
		fclose(f);
		errno = e ? e : EIO;
		return NULL;
	}
	fclose(f);
	if (!out && !(out = malloc(1)))
		return NULL;
	out[len] = 0;
	return out;
}

static int blank(const char *s)
{
	for (; s && *s; s++)
		if (!isspace((unsigned char)*s))
			return 0;
	return 1;
}


/* ---- build outputs, boot-time disks ---------------------------------------- */

bool config_disk_id_ok(const char *id)
{
	size_t n = 0;
	for (; id && id[n]; n++)
		if (!isalnum((unsigned char)id[n]) && !strchr("._-", id[n]))
			return false;
	return n > 0 && n <= 20;
}

/* Where a profile first names {out}, for the "no build" error. */
struct outuse {
	const char *key;
	int line, col;
};

/* A path field that may name the build's output directory: a value
 * starting "{out}" is kept as written and resolved once the profile's
 * build key is known (outs_resolve); any other value resolves now. */
static int get_opath(struct loader *ld, const struct toml_kv *kv, const char *table, char **out,
		     struct outuse *ou)
{
	const struct toml_node *v = kv->val;
	if (v->type == TOML_STRING && strstr(v->u.str.ptr, "{out}")) {
		if (strncmp(v->u.str.ptr, "{out}", 5) || (v->u.str.ptr[5] && v->u.str.ptr[5] != '/'))
			return invalid(ld, "`%s` in [%s]: {out} must start the path (\"{out}/file\") at %d:%d",
				       kv->key, table, v->line, v->col);
		free(*out);
		if (!(*out = strdup(v->u.str.ptr)))
			return nomem(ld);
		if (!ou->key)
			*ou = (struct outuse){kv->key, v->line, v->col};
		return 0;
	}
	return get_path(ld, kv, table, out);
}

/* Replace every "{out}" in *p with out. 0 or -1 (ENOMEM). */
static int subst_out(char **p, const char *out)
{
	char *s = *p, *r, *w, *hit;
	size_t n = 0, ol = strlen(out);
	if (!s || !strstr(s, "{out}"))
		return 0;
	for (hit = s; (hit = strstr(hit, "{out}")); hit += 5)
		n++;
	if (!(r = malloc(strlen(s) + n * ol + 1)))
		return -1;
	for (w = r; *s;) {
		if (!strncmp(s, "{out}", 5)) {
			memcpy(w, out, ol);
			w += ol;
			s += 5;
		} else {
			*w++ = *s++;
		}
	}
	*w = 0;
	free(*p);
	*p = r;
	return 0;
}

/* build_inputs = ["path", ...] (relative to the profile's file). */
static int load_build_inputs(struct loader *ld, struct profile *pr, const struct toml_kv *kv,
			     const char *table)
{
	const struct toml_node *a = kv->val;
	if (a->type != TOML_ARRAY)
		return wrong_type(ld, kv, table, "an array of paths");
	for (size_t j = 0; j < pr->nbuild_inputs; j++)
		free(pr->build_inputs[j]);
	free(pr->build_inputs);
	pr->nbuild_inputs = 0;
	if (!(pr->build_inputs = calloc(a->u.arr.n + 1, sizeof *pr->build_inputs)))
		return nomem(ld);
	for (size_t j = 0; j < a->u.arr.n; j++) {
		const struct toml_node *it = a->u.arr.items[j];
		struct stat st;
		if (it->type != TOML_STRING)
			return type_error(ld, it->line, it->col,
					  "`build_inputs` in [%s] must be an array of paths, item %zu is %s",
					  table, j + 1, toml_type_name(it->type));
		if (!it->u.str.ptr[0])
			return invalid(ld, "`build_inputs` in [%s]: item %zu is an empty path at %d:%d",
				       table, j + 1, it->line, it->col);
		if (!(pr->build_inputs[j] = resolve_path(ld->dir, it->u.str.ptr)))
			return nomem(ld);
		pr->nbuild_inputs++;
		if (stat(pr->build_inputs[j], &st) < 0)
			return invalid(ld, "`build_inputs` in [%s]: `%s`: %s at %d:%d", table,
				       it->u.str.ptr, strerror(errno), it->line, it->col);
		if (!S_ISREG(st.st_mode))
			return invalid(ld, "`build_inputs` in [%s]: `%s` is not a regular file "
				       "(list the files the build reads) at %d:%d", table,
				       it->u.str.ptr, it->line, it->col);
	}
	return 0;
}

/* The build's cache key: xxh128 of the command as written and each
 * input's path (as resolved) and content. Fills pr->build_key and
 * pr->build_out (<build base>/<profile>-<key>). */
static int build_key(struct loader *ld, struct profile *pr, const char *raw_cmd, const char *table,
		     int line, int col)
{
	XXH3_state_t *x = XXH3_createState();
	XXH128_hash_t h;
	char buf[1 << 16], *base;
	if (!x)
		return nomem(ld);
	XXH3_128bits_reset(x);
	XXH3_128bits_update(x, "provium-build-1", 16);
	XXH3_128bits_update(x, raw_cmd, strlen(raw_cmd) + 1);
	for (size_t i = 0; i < pr->nbuild_inputs; i++) {
		int fd = open(pr->build_inputs[i], O_RDONLY | O_CLOEXEC);
		ssize_t n;
		XXH3_128bits_update(x, pr->build_inputs[i], strlen(pr->build_inputs[i]) + 1);
		if (fd < 0) {
			XXH3_freeState(x);
			return invalid(ld, "`build_inputs` in [%s]: `%s`: %s (build at %d:%d)", table,
				       pr->build_inputs[i], strerror(errno), line, col);
		}
		while ((n = read(fd, buf, sizeof buf)) > 0)
			XXH3_128bits_update(x, buf, (size_t)n);
		close(fd);
		XXH3_128bits_update(x, "", 1);
	}
	h = XXH3_128bits_digest(x);
	XXH3_freeState(x);
	snprintf(pr->build_key, sizeof pr->build_key, "%016llx%016llx",
		 (unsigned long long)h.high64, (unsigned long long)h.low64);
	if (!(base = config_build_base()))
		return nomem(ld);
	free(pr->build_out);
	if (asprintf(&pr->build_out, "%s/%s-%.16s", base, pr->name, pr->build_key) < 0)
		pr->build_out = NULL;
	free(base);
	return pr->build_out ? 0 : nomem(ld);
}

/* disks = [{id = "data", image = "data.img"}, ...] */
static int load_disks(struct loader *ld, struct profile *pr, const struct toml_kv *kv,
		      const char *table, struct outuse *ou)
{
	const struct toml_node *a = kv->val;
	if (a->type != TOML_ARRAY)
		return wrong_type(ld, kv, table, "an array of tables {id = \"...\", image = \"...\"}");
	if (!(pr->disks = calloc(a->u.arr.n ? a->u.arr.n : 1, sizeof *pr->disks)))
		return nomem(ld);
	for (size_t j = 0; j < a->u.arr.n; j++) {
		const struct toml_node *it = a->u.arr.items[j];
		struct profile_disk *d;
		char sub[340];
		if (it->type != TOML_TABLE)
			return type_error(ld, it->line, it->col,
					  "`disks` in [%s] must be an array of tables, item %zu is %s",
					  table, j + 1, toml_type_name(it->type));
		snprintf(sub, sizeof sub, "%s.disks", table);
		d = &pr->disks[pr->ndisks++];
		for (size_t k = 0; k < it->u.tab.n; k++) {
			const struct toml_kv *e = &it->u.tab.items[k];
			if (!strcmp(e->key, "id")) {
				if (get_string(ld, e, sub, &d->id) < 0)
					return -1;
				if (!config_disk_id_ok(d->id))
					return invalid(ld, "`id` in [%s] must be 1-20 characters of "
						       "A-Z a-z 0-9 . _ -, got `%s` at %d:%d", sub, d->id,
						       e->val->line, e->val->col);
				for (size_t m = 0; m + 1 < pr->ndisks; m++)
					if (!strcmp(pr->disks[m].id, d->id))
						return invalid(ld, "disk `%s` in [%s] is listed twice (at %d:%d)",
							       d->id, table, e->val->line, e->val->col);
			} else if (!strcmp(e->key, "image")) {
				if (get_opath(ld, e, sub, &d->image, ou) < 0)
					return -1;
			} else {
				return invalid(ld, "unknown key `%s` in [%s] at %d:%d (expected id, image)",
					       e->key, sub, e->line, e->col);
			}
		}
		if (!d->id || !d->image)
			return invalid(ld, "disk %zu in [%s] needs both `id` and `image` at %d:%d", j + 1,
				       table, it->line, it->col);
	}
	return 0;
}

static int load_profile(struct loader *ld, struct profile *pr, const struct toml_kv *sec)
{
	const struct toml_node *t = sec->val;
	char table[300];
	char *inline_cmdline = NULL, *raw_build = NULL;
	bool have_cmdline = false;
	struct outuse ou = {0};
	int build_line = 0, build_col = 0, in_line = 0, in_col = 0, root_line = 0, root_col = 0;
	size_t i;
	int rc = -1;

	snprintf(table, sizeof table, "profiles.%s", sec->key);
	if (!(pr->name = strdup(sec->key)) || !(pr->guest_os = strdup("peios")))
		return nomem(ld);
	pr->inject_agent = true;
	pr->agent_boot_timeout_ns = DEFAULT_AGENT_BOOT_TIMEOUT_NS;
	pr->accel = ACCEL_AUTO;
	if (t->type != TOML_TABLE)
		return type_error(ld, t->line, t->col, "profile `%s` must be a table, got %s", sec->key,
				  toml_type_name(t->type));

	for (i = 0; i < t->u.tab.n; i++) {
		const struct toml_kv *kv = &t->u.tab.items[i];
		const char *k = kv->key;
		const struct toml_node *v = kv->val;
		if (strcmp(k, "kernel") == 0) {
			if (get_opath(ld, kv, table, &pr->kernel, &ou) < 0)
				goto out;
		} else if (strcmp(k, "initrd") == 0) {
			if (get_opath(ld, kv, table, &pr->initrd, &ou) < 0)
				goto out;
		} else if (strcmp(k, "root") == 0) {
			if (get_opath(ld, kv, table, &pr->root, &ou) < 0)
				goto out;
			root_line = v->line;
			root_col = v->col;
		} else if (strcmp(k, "disks") == 0) {
			if (load_disks(ld, pr, kv, table, &ou) < 0)
				goto out;
		} else if (strcmp(k, "build") == 0) {
			if (get_string(ld, kv, table, &raw_build) < 0)
				goto out;
			if (blank(raw_build)) {
				invalid(ld, "`build` in [%s] is an empty command at %d:%d", table,
					v->line, v->col);
				goto out;
			}
			build_line = v->line;
			build_col = v->col;
		} else if (strcmp(k, "build_inputs") == 0) {
			if (load_build_inputs(ld, pr, kv, table) < 0)
				goto out;
			in_line = v->line;
			in_col = v->col;
		} else if (strcmp(k, "cmdline") == 0) {
			if (get_string(ld, kv, table, &inline_cmdline) < 0)
				goto out;
			have_cmdline = true;
		} else if (strcmp(k, "cmdline_file") == 0) {
			if (get_path(ld, kv, table, &pr->cmdline_file) < 0)
				goto out;
		} else if (strcmp(k, "guest_os") == 0) {
			if (get_string(ld, kv, table, &pr->guest_os) < 0)
				goto out;
			if (strcmp(pr->guest_os, "peios") != 0) {
				invalid(ld, "profile `%s` has guest_os = `%s`, only `peios` is supported in v1",
					pr->name, pr->guest_os);
				goto out;
			}
		} else if (strcmp(k, "inject_agent") == 0) {
			if (v->type != TOML_BOOL) {
				wrong_type(ld, kv, table, "a boolean");
				goto out;
			}
			pr->inject_agent = v->u.b;
		} else if (strcmp(k, "agent_overlay_path") == 0) {
			if (get_opath(ld, kv, table, &pr->agent_overlay_path, &ou) < 0)
				goto out;
		} else if (strcmp(k, "agent_boot_timeout") == 0) {
			if (get_duration(ld, kv, table, &pr->agent_boot_timeout_ns) < 0)
				goto out;
		} else if (strcmp(k, "accel") == 0) {
			if (v->type != TOML_STRING) {
				wrong_type(ld, kv, table, "one of \"auto\", \"kvm\", \"tcg\"");
				goto out;
			}
			if (strcmp(v->u.str.ptr, "auto") == 0)
				pr->accel = ACCEL_AUTO;
			else if (strcmp(v->u.str.ptr, "kvm") == 0)
				pr->accel = ACCEL_KVM;
			else if (strcmp(v->u.str.ptr, "tcg") == 0)
				pr->accel = ACCEL_TCG;
			else {
				invalid(ld, "`accel` in [%s] must be one of \"auto\", \"kvm\", \"tcg\", got `%s` at %d:%d",
					table, v->u.str.ptr, v->line, v->col);
				goto out;
			}
		} else if (strcmp(k, "memory") == 0) {
			char written[64], msg[256];
			if (get_size(ld, kv, table, &pr->memory) < 0)
				goto out;
			if (v->type == TOML_INTEGER)
				snprintf(written, sizeof written, "%lld", (long long)v->u.i);
			else
				snprintf(written, sizeof written, "%s", v->u.str.ptr);
			if (check_guest_memory(pr->memory, written, msg, sizeof msg) < 0) {
				invalid(ld, "`memory` in [%s]: %s at %d:%d", table, msg, v->line, v->col);
				goto out;
			}
		} else if (strcmp(k, "cpus") == 0) {
			if (v->type != TOML_INTEGER) {
				wrong_type(ld, kv, table, "a positive integer");
				goto out;
			}
			if (v->u.i <= 0 || v->u.i > INT_MAX) {
				invalid(ld, "`cpus` in [%s] must be a positive integer, got %lld at %d:%d",
					table, (long long)v->u.i, v->line, v->col);
				goto out;
			}
			pr->cpus = (int)v->u.i;
		} else if (strcmp(k, "modules") == 0) {
			if (get_opath(ld, kv, table, &pr->modules, &ou) < 0)
				goto out;
		} else {
			unknown_key(ld, kv, table);
			goto out;
		}
	}

	/* the build hook and the {out} paths */
	if (ou.key && !raw_build) {
		invalid(ld, "`%s` in [%s] names {out} but the profile has no `build` at %d:%d", ou.key,
			table, ou.line, ou.col);
		goto out;
	}
	if (pr->nbuild_inputs && !raw_build) {
		invalid(ld, "`build_inputs` in [%s] without a `build` command at %d:%d", table,
			in_line, in_col);
		goto out;
	}
	if (raw_build) {
		if (build_key(ld, pr, raw_build, table, build_line, build_col) < 0)
			goto out;
		pr->build = raw_build;
		raw_build = NULL;
		if (subst_out(&pr->build, pr->build_out) < 0 || subst_out(&pr->kernel, pr->build_out) < 0 ||
		    subst_out(&pr->initrd, pr->build_out) < 0 || subst_out(&pr->root, pr->build_out) < 0 ||
		    subst_out(&pr->modules, pr->build_out) < 0 ||
		    subst_out(&pr->agent_overlay_path, pr->build_out) < 0) {
			nomem(ld);
			goto out;
		}
		for (i = 0; i < pr->ndisks; i++)
			if (subst_out(&pr->disks[i].image, pr->build_out) < 0) {
				nomem(ld);
				goto out;
			}
	}
	if (pr->root)
		for (i = 0; i < pr->ndisks; i++)
			if (!strcmp(pr->disks[i].id, "root")) {
				invalid(ld, "[%s]: disk id `root` is taken by the profile's `root` "
					"image (set at %d:%d)", table, root_line, root_col);
				goto out;
			}

	/* effective cmdline: the file's contents, then the inline string */
	if (pr->cmdline_file) {
		char *fc = read_collapsed(pr->cmdline_file);
		if (!fc) {
			if (errno == EINVAL)
				invalid(ld, "profile `%s`: cmdline_file `%s` is a FIFO or socket, "
					"not a file", pr->name, pr->cmdline_file);
			else if (errno == EFBIG)
				invalid(ld, "profile `%s`: cmdline_file `%s` is larger than %d KiB",
					pr->name, pr->cmdline_file, CMDLINE_FILE_MAX / 1024);
			else
				invalid(ld, "profile `%s`: read cmdline_file `%s`: %s", pr->name,
					pr->cmdline_file, strerror(errno));
			goto out;
		}
		if (have_cmdline && !blank(inline_cmdline) && !blank(fc)) {
			if (asprintf(&pr->cmdline, "%s %s", fc, inline_cmdline) < 0)
				pr->cmdline = NULL;
			free(fc);
			if (!pr->cmdline) {
				nomem(ld);
				goto out;
			}
		} else if (have_cmdline && !blank(inline_cmdline)) {
			free(fc);
			pr->cmdline = inline_cmdline;
			inline_cmdline = NULL;
		} else {
			pr->cmdline = fc;
		}
	} else {
		pr->cmdline = inline_cmdline;
		inline_cmdline = NULL;
	}
	if (blank(pr->cmdline)) {
		invalid(ld, "profile `%s` has empty cmdline", pr->name);
		goto out;
	}
	rc = 0;
out:
	free(inline_cmdline);
	free(raw_build);
	return rc;
}

static int profile_cmp(const void *a, const void *b)
{
	return strcmp(((const struct profile *)a)->name, ((const struct profile *)b)->name);
}

/* Append one profile slot to cfg; NULL on OOM. */
static struct profile *profile_slot(struct config *cfg)
{
	struct profile *np = realloc(cfg->profiles, (cfg->nprofiles + 1) * sizeof *np);
	if (!np)
		return NULL;
	cfg->profiles = np;
	memset(&np[cfg->nprofiles], 0, sizeof *np);
	return &np[cfg->nprofiles++];
}

/* A second definition of a profile name is an error naming both. */
static int check_dup(struct loader *ld, const struct config *cfg, const char *name, int line, int col)
{
	for (size_t i = 0; i < cfg->nprofiles; i++)
		if (!strcmp(cfg->profiles[i].name, name))
			return invalid(ld, "profile `%s` at %d:%d is already defined by %s%s%s", name,
				       line, col, cfg->profiles[i].source ? "`" : "",
				       cfg->profiles[i].source ? cfg->profiles[i].source
							       : "[profiles] of the main file",
				       cfg->profiles[i].source ? "`" : "");
	return 0;
}

static char *dir_of(const char *path);

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* [profiles] from_dir = "dir": every <dir>/<name>/profile.provium.toml is
 * profile <name>, its keys at the top level, relative paths resolved
 * against its own directory; errors name that file. */
static int load_from_dir(struct loader *ld, struct config *cfg, const struct toml_kv *kv)
{
	char *dir = NULL, **names = NULL;
	size_t nn = 0;
	DIR *d;
	struct dirent *de;
	int rc = -1;

	if (kv->val->type != TOML_STRING)
		return wrong_type(ld, kv, "profiles", "a directory path string");
	if (!kv->val->u.str.ptr[0])
		return invalid(ld, "`from_dir` in [profiles] is an empty path at %d:%d", kv->val->line,
			       kv->val->col);
	if (!(dir = resolve_path(ld->dir, kv->val->u.str.ptr)))
		return nomem(ld);
	if (!(d = opendir(dir))) {
		invalid(ld, "`from_dir` in [profiles]: `%s`: %s at %d:%d", dir, strerror(errno),
			kv->val->line, kv->val->col);
		free(dir);
		return -1;
	}
	while ((de = readdir(d))) {
		char **nv;
		if (de->d_name[0] == '.')
			continue;
		if (!(nv = realloc(names, (nn + 1) * sizeof *nv)) || !(nv[nn] = strdup(de->d_name))) {
			names = nv ? nv : names;
			closedir(d);
			nomem(ld);
			goto out;
		}
		names = nv;
		nn++;
	}
	closedir(d);
	if (nn)
		qsort(names, nn, sizeof *names, name_cmp);
	for (size_t i = 0; i < nn; i++) {
		char *file = NULL, *buf = NULL, *fdir = NULL;
		struct stat st;
		struct toml_node *root;
		struct toml_error terr;
		struct loader sub = {.err = ld->err, .errlen = ld->errlen};
		struct toml_kv synth;
		struct profile *pr;
		size_t len;
		int r = -1;

		if (asprintf(&file, "%s/%s/profile.provium.toml", dir, names[i]) < 0) {
			nomem(ld);
			goto out;
		}
		if (stat(file, &st) < 0 || !S_ISREG(st.st_mode)) {
			free(file);
			continue;   /* not a profile directory */
		}
		sub.path = file;
		if (read_file(file, CONFIG_FILE_MAX, &buf, &len) < 0) {
			snprintf(ld->err, ld->errlen, "read `%s`: %s", file, strerror(errno));
			free(file);
			goto out;
		}
		if (!(root = toml_parse(buf, len, &terr))) {
			snprintf(ld->err, ld->errlen, "parse `%s`: %d:%d %s", file, terr.line, terr.col,
				 terr.msg);
			free(buf);
			free(file);
			goto out;
		}
		synth = (struct toml_kv){.key = names[i], .line = 1, .col = 1, .val = root};
		if (!(fdir = dir_of(file)))
			snprintf(ld->err, ld->errlen, "read `%s`: %s", file, strerror(errno));
		else if (check_dup(ld, cfg, names[i], kv->val->line, kv->val->col) == 0) {
			sub.dir = fdir;
			if (!(pr = profile_slot(cfg)))
				nomem(ld);
			else if (load_profile(&sub, pr, &synth) == 0 && (pr->source = strdup(file)))
				r = 0;
			else if (!pr->source && pr->name && ld->err[0] == 0)
				nomem(ld);
		}
		toml_free(root);
		free(buf);
		free(fdir);
		free(file);
		if (r < 0)
			goto out;
	}
	rc = 0;
out:
	for (size_t i = 0; i < nn; i++)
		free(names[i]);
	free(names);
	free(dir);
	return rc;
}

static int load_profiles(struct loader *ld, struct config *cfg, const struct toml_kv *sec)
{
	const struct toml_node *t = sec->val;
	size_t i;

	if (t->type != TOML_TABLE)
		return wrong_type(ld, sec, "top level", "a table of profiles");
	for (i = 0; i < t->u.tab.n; i++) {
		const struct toml_kv *kv = &t->u.tab.items[i];
		struct profile *pr;
		if (!strcmp(kv->key, "from_dir") && kv->val->type != TOML_TABLE) {
			if (load_from_dir(ld, cfg, kv) < 0)
				return -1;
			continue;
		}
		if (check_dup(ld, cfg, kv->key, kv->line, kv->col) < 0)
			return -1;
		if (!(pr = profile_slot(cfg)))
			return nomem(ld);
		if (load_profile(ld, pr, kv) < 0)
			return -1;
	}
	if (cfg->nprofiles)
		qsort(cfg->profiles, cfg->nprofiles, sizeof *cfg->profiles, profile_cmp);
	return 0;
}

/* ---- the file ------------------------------------------------------------- */

/* Absolute directory containing path; malloc'd or NULL. */
static char *dir_of(const char *path)
{
	char *abs = realpath(path, NULL), *slash;
	if (!abs)
		return NULL;
	slash = strrchr(abs, '/');
	if (slash == abs)
		slash[1] = 0;
	else if (slash)
		*slash = 0;
	return abs;
}

int config_load(struct config *cfg, const char *path, char *err, size_t errlen)
{
	struct loader ld = {.path = path, .err = err, .errlen = errlen};
	struct toml_error terr;
	struct toml_node *root = NULL;
	char *buf = NULL;
	size_t len, i;
	int rc = -1;

	config_init_default(cfg);
	if (read_file(path, CONFIG_FILE_MAX, &buf, &len) < 0) {
		if (errno == EFBIG)
			snprintf(err, errlen, "read `%s`: larger than %d MiB; not a provium.toml",
				 path, CONFIG_FILE_MAX >> 20);
		else
			snprintf(err, errlen, "read `%s`: %s", path, strerror(errno));
		return -1;
	}
	if (!(root = toml_parse(buf, len, &terr))) {
		snprintf(err, errlen, "parse `%s`: %d:%d %s", path, terr.line, terr.col, terr.msg);
		goto out;
	}
	free(cfg->dir);
	if (!(cfg->dir = dir_of(path))) {
		snprintf(err, errlen, "read `%s`: %s", path, strerror(errno));
		goto out;
	}
	if (!(cfg->path = strdup(path))) {
		nomem(&ld);
		goto out;
	}
	ld.dir = cfg->dir;
	for (i = 0; i < root->u.tab.n; i++) {
		const struct toml_kv *kv = &root->u.tab.items[i];
		if (strcmp(kv->key, "provium") == 0) {
			if (load_provium(&ld, cfg, kv) < 0)
				goto out;
		} else if (strcmp(kv->key, "profiles") == 0) {
			if (load_profiles(&ld, cfg, kv) < 0)
				goto out;
		} else {
			unknown_key(&ld, kv, NULL);
			goto out;
		}
	}
	if (!cfg->roots || !cfg->cache_dir) {
		nomem(&ld);
		goto out;
	}
	rc = 0;
out:
	if (rc < 0) {
		config_free(cfg);
		config_init_default(cfg);
	}
	toml_free(root);
	free(buf);
	return rc;
}
