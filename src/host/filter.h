/* filter.h — per-test selection flags (-k/--test, --include-slow, --tag,
 * --no-tag, --tag-meta, --no-tag-meta) as the dispatcher hands them to each runner.
 * The matching itself happens in the Lua framework (framework.lua); this
 * struct is only the carrier, plus the JSON form exported as
 * PROVIUM_TEST_FILTER. */
#ifndef PROVIUM_FILTER_H
#define PROVIUM_FILTER_H

#include <stdbool.h>
#include <stddef.h>

struct kv { char *key; char *value; };

struct test_filter {
	char **names;       size_t nnames;   /* -k/--test: name substrings, OR'd */
	bool include_slow;
	char **tags;        size_t ntags;
	char **no_tags;     size_t nno_tags;
	struct kv *tag_meta;    size_t ntag_meta;
	struct kv *no_tag_meta; size_t nno_tag_meta;
};

/* Split "KEY=VALUE" into kv (malloc'd). 0, or -1 when there is no '=' or the key is empty. */
int kv_parse(const char *s, struct kv *out);

/* JSON object {"include_slow":b,"tags":[..],"no_tags":[..],"tag_meta":{"k":[..]},"no_tag_meta":{..}}; malloc'd. */
char *test_filter_to_json(const struct test_filter *f);

void test_filter_free(struct test_filter *f);

#endif
