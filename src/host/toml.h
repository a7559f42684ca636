/* toml.h — a TOML 1.0 parser producing a tree of typed nodes.
 *
 * toml_parse() takes a whole document in memory and returns the root table,
 * or NULL with the line:column (1-based, columns counted in characters) and
 * a short description of the first error. The tree is owned by the caller
 * and released with toml_free(root).
 *
 * Every table keeps its keys in document order with the position of each
 * key, so a schema checker can say "unknown key `foo` at 3:1". Strings are
 * UTF-8 and may contain NUL (keep the length). Date-times keep their parts
 * as written (no time-zone arithmetic). */
#ifndef PROVIUM_TOML_H
#define PROVIUM_TOML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum toml_type {
	TOML_TABLE = 0,
	TOML_ARRAY,
	TOML_STRING,
	TOML_INTEGER,
	TOML_FLOAT,
	TOML_BOOL,
	TOML_DATETIME,       /* offset date-time */
	TOML_DATETIME_LOCAL, /* local date-time */
	TOML_DATE_LOCAL,
	TOML_TIME_LOCAL,
};

struct toml_datetime {
	int year, month, day;        /* unset (0) for TOML_TIME_LOCAL */
	int hour, minute, second;    /* unset (0) for TOML_DATE_LOCAL */
	int nanosecond;              /* fraction, truncated to 9 digits */
	int frac_digits;             /* digits written after '.', 0 = none (capped at 9) */
	bool utc_z;                  /* offset written as Z */
	int offset_minutes;          /* TOML_DATETIME only: signed minutes east of UTC */
};

struct toml_node;

struct toml_kv {
	char *key;                   /* NUL-terminated (may contain NUL: see keylen) */
	size_t keylen;
	int line, col;               /* where the key was written */
	struct toml_node *val;
};

struct toml_node {
	enum toml_type type;
	int line, col;               /* where the value (or table header) starts */
	unsigned flags;              /* parser bookkeeping (toml.c) */
	union {
		struct { char *ptr; size_t len; } str;   /* NUL-terminated too */
		int64_t i;
		double f;
		bool b;
		struct toml_datetime dt;
		struct { struct toml_node **items; size_t n, cap; } arr;
		struct { struct toml_kv *items; size_t n, cap; } tab;
	} u;
};

struct toml_error {
	int line, col;
	char msg[256];
};

/* Parse len bytes of buf. Root table, or NULL with err filled
 * (err->msg "out of memory" with line 0 when allocation failed). */
struct toml_node *toml_parse(const char *buf, size_t len, struct toml_error *err);

/* Free a tree returned by toml_parse (NULL is fine). */
void toml_free(struct toml_node *n);

/* Value of key in table t (exact byte match), or NULL. */
struct toml_node *toml_get(const struct toml_node *t, const char *key);

/* The key/value pair of key in t, or NULL (for positions). */
const struct toml_kv *toml_get_kv(const struct toml_node *t, const char *key);

/* "table", "array", "string", "integer", "float", "boolean",
 * "offset date-time", "local date-time", "local date", "local time". */
const char *toml_type_name(enum toml_type type);

/* Format a date-time as RFC 3339 (T separator, Z or ±hh:mm, fraction with
 * the digits written) into buf. Returns buf. */
char *toml_format_datetime(const struct toml_node *n, char *buf, size_t len);

#endif
