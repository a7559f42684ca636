/* fuzz_toml.c — toml_parse (src/host/toml.c) on any bytes, and the
 * tree it returns walked (types, date-time formatting) and freed. */
#include <stdint.h>
#include <stdlib.h>

#include "toml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n);

static void walk(const struct toml_node *t, int depth)
{
	char buf[64];

	if (depth > 64)
		return;
	(void)toml_type_name(t->type);
	switch (t->type) {
	case TOML_TABLE:
		for (size_t i = 0; i < t->u.tab.n; i++) {
			(void)toml_get(t, t->u.tab.items[i].key);
			walk(t->u.tab.items[i].val, depth + 1);
		}
		break;
	case TOML_ARRAY:
		for (size_t i = 0; i < t->u.arr.n; i++)
			walk(t->u.arr.items[i], depth + 1);
		break;
	case TOML_DATETIME: case TOML_DATETIME_LOCAL:
	case TOML_DATE_LOCAL: case TOML_TIME_LOCAL:
		toml_format_datetime(t, buf, sizeof buf);
		break;
	default:
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
	struct toml_error e;
	struct toml_node *root = toml_parse((const char *)data, n, &e);

	if (root)
		walk(root, 0);
	toml_free(root);
	return 0;
}
