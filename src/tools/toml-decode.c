/* toml-decode.c — the toml-test decoder for provium's TOML parser.
 *
 * Reads a TOML document on stdin and writes the toml-test "tagged JSON"
 * form of it on stdout (every leaf is {"type": ..., "value": "..."}), exit
 * 0. An invalid document prints `line:col message` on stderr and exits 1.
 * Used by tests/toml/run.sh to prove src/host/toml.c against the official
 * corpus; not installed. */
#include "toml.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void put_json_string(FILE *f, const char *s, size_t len)
{
	size_t i;
	fputc('"', f);
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		switch (c) {
		case '"': fputs("\\\"", f); break;
		case '\\': fputs("\\\\", f); break;
		case '\n': fputs("\\n", f); break;
		case '\r': fputs("\\r", f); break;
		case '\t': fputs("\\t", f); break;
		case '\b': fputs("\\b", f); break;
		case '\f': fputs("\\f", f); break;
		default:
			if (c < 0x20 || c == 0x7F)
				fprintf(f, "\\u%04x", c);
			else
				fputc(c, f);
		}
	}
	fputc('"', f);
}

static void put_tagged(FILE *f, const char *type, const char *value)
{
	fprintf(f, "{\"type\":\"%s\",\"value\":", type);
	put_json_string(f, value, strlen(value));
	fputc('}', f);
}

static void put_node(FILE *f, const struct toml_node *n)
{
	char buf[64];
	size_t i;
	switch (n->type) {
	case TOML_TABLE:
		fputc('{', f);
		for (i = 0; i < n->u.tab.n; i++) {
			if (i)
				fputc(',', f);
			put_json_string(f, n->u.tab.items[i].key, n->u.tab.items[i].keylen);
			fputc(':', f);
			put_node(f, n->u.tab.items[i].val);
		}
		fputc('}', f);
		break;
	case TOML_ARRAY:
		fputc('[', f);
		for (i = 0; i < n->u.arr.n; i++) {
			if (i)
				fputc(',', f);
			put_node(f, n->u.arr.items[i]);
		}
		fputc(']', f);
		break;
	case TOML_STRING:
		fputs("{\"type\":\"string\",\"value\":", f);
		put_json_string(f, n->u.str.ptr, n->u.str.len);
		fputc('}', f);
		break;
	case TOML_INTEGER:
		snprintf(buf, sizeof buf, "%lld", (long long)n->u.i);
		put_tagged(f, "integer", buf);
		break;
	case TOML_FLOAT:
		if (isnan(n->u.f))
			snprintf(buf, sizeof buf, "nan");
		else if (isinf(n->u.f))
			snprintf(buf, sizeof buf, "%sinf", n->u.f < 0 ? "-" : "");
		else
			snprintf(buf, sizeof buf, "%.17g", n->u.f);
		put_tagged(f, "float", buf);
		break;
	case TOML_BOOL:
		put_tagged(f, "bool", n->u.b ? "true" : "false");
		break;
	case TOML_DATETIME:
		put_tagged(f, "datetime", toml_format_datetime(n, buf, sizeof buf));
		break;
	case TOML_DATETIME_LOCAL:
		put_tagged(f, "datetime-local", toml_format_datetime(n, buf, sizeof buf));
		break;
	case TOML_DATE_LOCAL:
		put_tagged(f, "date-local", toml_format_datetime(n, buf, sizeof buf));
		break;
	case TOML_TIME_LOCAL:
		put_tagged(f, "time-local", toml_format_datetime(n, buf, sizeof buf));
		break;
	}
}

int main(void)
{
	char *buf = NULL;
	size_t len = 0, cap = 0, n;
	struct toml_error err;
	struct toml_node *root;

	for (;;) {
		if (cap - len < 65536) {
			char *nb = realloc(buf, cap + 65536);
			if (!nb) {
				fputs("toml-decode: out of memory\n", stderr);
				return 1;
			}
			buf = nb;
			cap += 65536;
		}
		n = fread(buf + len, 1, cap - len, stdin);
		len += n;
		if (n == 0)
			break;
	}
	if (ferror(stdin)) {
		perror("toml-decode: stdin");
		return 1;
	}
	root = toml_parse(buf, len, &err);
	free(buf);
	if (!root) {
		fprintf(stderr, "%d:%d %s\n", err.line, err.col, err.msg);
		return 1;
	}
	put_node(stdout, root);
	fputc('\n', stdout);
	toml_free(root);
	return fflush(stdout) == 0 ? 0 : 1;
}
