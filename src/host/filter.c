/* filter.c — the per-test selection carrier (see filter.h).
 *
 * Owns parsing of KEY=VALUE pairs and the JSON form the dispatcher exports
 * as PROVIUM_TEST_FILTER, one member per flag:
 *   {"include_slow": bool, "tag": [..], "no_tag": [..],
 *    "tag_meta": [{"key": k, "value": v}, ..], "no_tag_meta": [..]
 *    [, "test": [..] (-k/--test, only when given)]}
 * (informational: the runners get the same selection as _provium_filter;
 * matching happens in Lua, OR within a key and AND across keys). */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "filter.h"

int kv_parse(const char *s, struct kv *out)
{
	const char *eq = strchr(s, '=');

	if (!eq || eq == s)
		return -1;
	out->key = strndup(s, (size_t)(eq - s));
	out->value = strdup(eq + 1);
	if (!out->key || !out->value) {
		free(out->key);
		free(out->value);
		return -1;
	}
	return 0;
}

static json_t *str_array(char **v, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_string(v[i]));
	return a;
}

/* [{"key": k, "value": v}, ...] in command-line order. */
static json_t *kv_array(const struct kv *kv, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_pack("{s:s,s:s}", "key", kv[i].key, "value", kv[i].value));
	return a;
}

char *test_filter_to_json(const struct test_filter *f)
{
	json_t *o = json_object();
	char *s;

	json_object_set_new(o, "include_slow", json_boolean(f->include_slow));
	json_object_set_new(o, "tag", str_array(f->tags, f->ntags));
	json_object_set_new(o, "no_tag", str_array(f->no_tags, f->nno_tags));
	json_object_set_new(o, "tag_meta", kv_array(f->tag_meta, f->ntag_meta));
	json_object_set_new(o, "no_tag_meta", kv_array(f->no_tag_meta, f->nno_tag_meta));
	if (f->nnames) /* after the reference's members, only when given */
		json_object_set_new(o, "test", str_array(f->names, f->nnames));
	s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	return s;
}

static void free_strs(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static void free_kvs(struct kv *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].key);
		free(v[i].value);
	}
	free(v);
}

void test_filter_free(struct test_filter *f)
{
	free_strs(f->names, f->nnames);
	free_strs(f->tags, f->ntags);
	free_strs(f->no_tags, f->nno_tags);
	free_kvs(f->tag_meta, f->ntag_meta);
	free_kvs(f->no_tag_meta, f->nno_tag_meta);
	memset(f, 0, sizeof *f);
}
