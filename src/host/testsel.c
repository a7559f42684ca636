/* testsel.c — `path::NAME` words on the command line (see testsel.h).
 *
 * Owns the split of a word into path and test name and the mapping of
 * the names onto discovered files by canonical path. Nothing printed. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testsel.h"

static int push(char ***v, size_t *n, char *s)
{
	char **nv = realloc(*v, (*n + 1) * sizeof *nv);
	if (!nv)
		return -1;
	*v = nv;
	nv[(*n)++] = s;
	return 0;
}

int testsel_split(char **paths, size_t n, struct testsel *ts, char *err, size_t errlen)
{
	memset(ts, 0, sizeof *ts);
	for (size_t i = 0; i < n; i++) {
		char *w = paths[i], *sep = strstr(w, "::"), *abs;
		struct stat st;

		if (!sep || access(w, F_OK) == 0) {
			/* a plain path (or one whose name contains `::`) */
			abs = realpath(w, NULL);
			if (abs && push(&ts->plain, &ts->nplain, abs) < 0) {
				free(abs);
				goto oom;
			}
			continue;
		}
		*sep = '\0';
		if (!sep[2]) {
			snprintf(err, errlen, "`%s::`: expected a test name after `::`", w);
			goto fail;
		}
		if (stat(w, &st) < 0) {
			snprintf(err, errlen, "`%s`: %s", w, strerror(errno));
			goto fail;
		}
		if (!S_ISREG(st.st_mode)) {
			snprintf(err, errlen, "`%s::%s`: path::NAME needs a test file, `%s` is not one",
				 w, sep + 2, w);
			goto fail;
		}
		struct testsel_pick *np = realloc(ts->picks, (ts->npicks + 1) * sizeof *np);
		if (!np)
			goto oom;
		ts->picks = np;
		np[ts->npicks].abs = realpath(w, NULL);
		np[ts->npicks].name = strdup(sep + 2);
		if (!np[ts->npicks].abs || !np[ts->npicks].name) {
			free(np[ts->npicks].abs);
			free(np[ts->npicks].name);
			goto oom;
		}
		ts->npicks++;
	}
	return 0;
oom:
	snprintf(err, errlen, "out of memory");
fail:
	testsel_free(ts);
	return -1;
}

/* Is the canonical file path under (or equal to) one of the plain words? */
static bool covered(const struct testsel *ts, const char *abs)
{
	for (size_t i = 0; i < ts->nplain; i++) {
		size_t n = strlen(ts->plain[i]);
		if (!strncmp(abs, ts->plain[i], n) &&
		    (abs[n] == '\0' || abs[n] == '/' || (n == 1 && ts->plain[i][0] == '/')))
			return true;
	}
	return false;
}

int testsel_apply(const struct testsel *ts, struct file_list *fl)
{
	for (size_t i = 0; i < fl->n; i++) {
		struct found_file *f = &fl->v[i];

		if (covered(ts, f->abs))
			continue;
		for (size_t k = 0; k < ts->npicks; k++) {
			const struct testsel_pick *p = &ts->picks[k];
			bool dup = false;
			char *c;

			if (strcmp(p->abs, f->abs))
				continue;
			for (size_t j = 0; j < f->ntests; j++)
				dup = dup || !strcmp(f->tests[j], p->name);
			if (dup)
				continue;
			if (!(c = strdup(p->name)) || push(&f->tests, &f->ntests, c) < 0) {
				free(c);
				return -1;
			}
		}
	}
	return 0;
}

void testsel_free(struct testsel *ts)
{
	for (size_t i = 0; i < ts->npicks; i++) {
		free(ts->picks[i].abs);
		free(ts->picks[i].name);
	}
	free(ts->picks);
	for (size_t i = 0; i < ts->nplain; i++)
		free(ts->plain[i]);
	free(ts->plain);
	memset(ts, 0, sizeof *ts);
}
