/* rerun.c — where the failed-file set of a project lives, how a run
 * updates it, and loading / atomically saving it (see rerun.h).
 *
 * Save: mkdir -p the parent, write to `<path>.tmp.<pid>` opened
 * O_CREAT|O_EXCL|O_CLOEXEC, fsync, rename over the target; the temp file
 * is unlinked on any failure. A reader therefore sees the old or the new
 * set, never a torn one. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "rerun.h"
#include "fsutil.h"
#include "atomicfile.h"

/* FNV-1a 64 of s: the project key (not security sensitive). */
static uint64_t fnv1a(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

char *rerun_state_path(const char *project_dir)
{
	const char *e = getenv("PROVIUM_RERUN_STATE");
	const char *home = getenv("HOME");
	const char *base;
	char name[41], *p = NULL;
	size_t k = 0;

	if (e && *e)
		return strdup(e);
	if (!project_dir || !*project_dir)
		project_dir = "/";
	/* <last component, sanitized>-<hash of the whole path>.json: unique
	 * per project directory, readable in `ls` */
	base = strrchr(project_dir, '/');
	base = base && base[1] ? base + 1 : "root";
	for (; *base && k < sizeof name - 1; base++)
		name[k++] = isalnum((unsigned char)*base) || strchr("._-", *base) ? *base : '_';
	name[k] = '\0';
	if (asprintf(&p, "%s/.cache/provium/rerun/%s-%016" PRIx64 ".json",
		     home && *home ? home : "/tmp", name, fnv1a(project_dir)) < 0)
		return NULL;
	return p;
}

static ssize_t find(char *const *v, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(v[i], s))
			return (ssize_t)i;
	return -1;
}

int rerun_update(char ***list, size_t *n, char *const *failed, size_t nfailed,
		 char *const *passed, size_t npassed)
{
	int changed = 0;
	size_t w = 0;

	for (size_t i = 0; i < *n; i++) {
		if (find(passed, npassed, (*list)[i]) >= 0 && find(failed, nfailed, (*list)[i]) < 0) {
			free((*list)[i]);
			changed = 1;
			continue;
		}
		(*list)[w++] = (*list)[i];
	}
	*n = w;
	for (size_t i = 0; i < nfailed; i++) {
		char **nv;
		if (find(*list, *n, failed[i]) >= 0)
			continue;
		nv = realloc(*list, (*n + 2) * sizeof *nv);
		if (!nv)
			return -1;
		*list = nv;
		if (!(nv[*n] = strdup(failed[i])))
			return -1;
		nv[++*n] = NULL;
		changed = 1;
	}
	return changed;
}

int rerun_load(const char *path, char ***paths, size_t *n, char *err, size_t errlen)
{
	json_error_t je;
	json_t *root, *arr;

	*paths = NULL;
	*n = 0;
	if (access(path, F_OK) < 0 && errno == ENOENT)
		return 0;
	root = json_load_file(path, 0, &je);
	if (!root) {
		snprintf(err, errlen, "rerun state `%s`: %s", path, je.text);
		return -1;
	}
	arr = json_is_array(root) ? root : json_object_get(root, "failed");
	if (!json_is_array(arr)) {
		snprintf(err, errlen, "rerun state `%s`: expected a JSON array of paths", path);
		json_decref(root);
		return -1;
	}
	size_t k = json_array_size(arr);
	*paths = calloc(k + 1, sizeof **paths);
	for (size_t i = 0; *paths && i < k; i++) {
		const char *s = json_string_value(json_array_get(arr, i));
		char *c;
		if (!s)
			continue;
		/* canonical, so a hand-written or relative entry still matches */
		c = realpath(s, NULL);
		if ((c = c ? c : strdup(s)))
			(*paths)[(*n)++] = c;
	}
	json_decref(root);
	if (*n == 0) {
		free(*paths);
		*paths = NULL;
		return 0;
	}
	return 1;
}

int rerun_save(const char *path, char *const *paths, size_t n, char *err, size_t errlen)
{
	json_t *root = json_array();
	struct atomic_file af = { .fd = -1 };
	char *text = NULL, *dir = strdup(path);
	int rc = -1;
	char *slash;

	for (size_t i = 0; i < n; i++)
		json_array_append_new(root, json_string(paths[i]));
	text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	if (!dir || !text) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		if (mkdir_p(dir, 0755, NULL) < 0) {
			snprintf(err, errlen, "mkdir `%s`: %s", dir, strerror(errno));
			goto out;
		}
	}
	if (af_open(&af, path, 0644) < 0) {
		if (!af.tmp)
			snprintf(err, errlen, "out of memory");
		else
			snprintf(err, errlen, "create `%s`: %s", af.tmp, strerror(errno));
		goto out;
	}
	if (write_all(af.fd, text, strlen(text)) < 0 || write_all(af.fd, "\n", 1) < 0 ||
	    af_close(&af) < 0) {
		snprintf(err, errlen, "write `%s`: %s", af.tmp, strerror(errno));
		goto out;
	}
	if (af_rename(&af) < 0) {
		snprintf(err, errlen, "rename to `%s`: %s", path, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	af_abort(&af);
	free(text);
	free(dir);
	json_decref(root);
	return rc;
}

void rerun_free(char **paths, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(paths[i]);
	free(paths);
}
