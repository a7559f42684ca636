/* listing.c — `provium list` for test files (see listing.h).
 *
 * Text form: the display path of each file; with --tests, under it one
 * line per test, indented four spaces:
 *     boots fast  [smoke, net]
 *     (name computed at run time, line 12)
 * JSON form (--json): {"files": [{"path": P, "tests": [{"name": N|null,
 * "line": L, "dynamic": B, "tags": [..], "tags_dynamic": B}, ..],
 * "scan_error": S|null}]} — "tests" and "scan_error" only with --tests. */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "listing.h"
#include "luascan.h"

/* Does a test with this literal name pass the name selection? */
static bool name_selected(const char *name, const struct found_file *f, const struct test_filter *tf)
{
	bool hit = tf->nnames == 0;

	if (f->ntests) {
		bool named = false;
		for (size_t i = 0; i < f->ntests; i++)
			named = named || !strcmp(f->tests[i], name);
		if (!named)
			return false;
	}
	for (size_t i = 0; !hit && i < tf->nnames; i++)
		hit = strstr(name, tf->names[i]) != NULL;
	return hit;
}

static bool shown(const struct luascan_call *c, const struct found_file *f, const struct test_filter *tf)
{
	if (c->fn != LS_TEST)
		return false;
	/* a name with a NUL byte cannot be typed on a command line either */
	if (c->arg && strlen(c->arg) == c->arg_len)
		return name_selected(c->arg, f, tf);
	return true;
}

static void text_tests(FILE *out, const struct luascan_result *r, const char *scan_err,
		       const struct found_file *f, const struct test_filter *tf)
{
	for (size_t i = 0; i < r->ncalls; i++) {
		const struct luascan_call *c = &r->calls[i];

		if (!shown(c, f, tf))
			continue;
		if (c->arg)
			fprintf(out, "    %s", c->arg);
		else
			fprintf(out, "    (name computed at run time, line %d)", c->line);
		if (c->ntags || c->tags_dynamic) {
			fputs("  [", out);
			for (size_t k = 0; k < c->ntags; k++)
				fprintf(out, "%s%s", k ? ", " : "", c->tags[k]);
			if (c->tags_dynamic)
				fprintf(out, "%stags computed at run time", c->ntags ? ", " : "");
			fputc(']', out);
		}
		fputc('\n', out);
	}
	if (scan_err)
		fprintf(out, "    (scan stopped: %s)\n", scan_err);
}

static json_t *json_tests(const struct luascan_result *r, const struct found_file *f,
			  const struct test_filter *tf)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < r->ncalls; i++) {
		const struct luascan_call *c = &r->calls[i];
		json_t *tags = json_array();

		if (!shown(c, f, tf)) {
			json_decref(tags);
			continue;
		}
		for (size_t k = 0; tags && k < c->ntags; k++)
			json_array_append_new(tags, json_string(c->tags[k]));
		json_array_append_new(a, json_pack("{s:o,s:i,s:b,s:o,s:b}",
			"name", c->arg ? json_stringn(c->arg, c->arg_len) : json_null(),
			"line", c->line, "dynamic", c->arg == NULL,
			"tags", tags ? tags : json_array(), "tags_dynamic", c->tags_dynamic));
	}
	return a;
}

int list_test_files(FILE *out, const struct file_list *fl, const struct test_filter *tf,
		    bool tests, bool json)
{
	json_t *files = json ? json_array() : NULL;

	if (json && !files)
		return -1;
	for (size_t i = 0; i < fl->n; i++) {
		const struct found_file *f = &fl->v[i];
		struct luascan_result r = {0};
		char err[512];
		const char *scan_err = NULL;

		if (tests && luascan_file(f->path, &r, err, sizeof err) < 0)
			scan_err = err;
		if (!json) {
			fprintf(out, "%s\n", f->display);
			if (tests)
				text_tests(out, &r, scan_err, f, tf);
		} else {
			json_t *o = json_pack("{s:s}", "path", f->display);
			if (o && tests) {
				json_object_set_new(o, "tests", json_tests(&r, f, tf));
				json_object_set_new(o, "scan_error", scan_err ? json_string(scan_err) : json_null());
			}
			if (!o || json_array_append_new(files, o) < 0) {
				luascan_free(&r);
				json_decref(files);
				return -1;
			}
		}
		luascan_free(&r);
	}
	if (json) {
		json_t *doc = json_pack("{s:o}", "files", files);
		int rc = doc ? json_dumpf(doc, out, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : -1;
		if (rc == 0)
			fputc('\n', out);
		json_decref(doc);
		return rc < 0 ? -1 : 0;
	}
	return 0;
}
