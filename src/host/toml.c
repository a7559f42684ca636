/* toml.c — TOML 1.0 parser (the whole document in memory, one pass).
 *
 * Owns: turning bytes into a tree of struct toml_node (toml.h) and every
 * rule of TOML 1.0 that decides whether a document is valid: UTF-8 and
 * control characters, the four string kinds and their escapes, integer and
 * float syntax with overflow checks, date-time validation, and the table
 * redefinition rules.
 *
 * Shape: a recursive-descent parser over a byte cursor. The top level reads
 * one expression per line (key/value, [table], [[array-of-tables]],
 * comment, blank). Values recurse through arrays and inline tables (depth
 * is capped so hostile input cannot exhaust the stack).
 *
 * Redefinition rules are kept with flags on table and array nodes:
 *   T_IMPLICIT  created as an intermediate of a [header]; may be defined
 *               once later by its own [header]
 *   T_EXPLICIT  defined by a [header] (or an [[array]] element)
 *   T_DOTTED    created by a dotted key; never a [header] target, but a
 *               header may pass through it to define sub-tables
 *   T_INLINE    an inline table: sealed, nothing may be added to it
 *   A_STATIC    an array value (as opposed to an array of tables): sealed
 * A dotted key may only pass through tables that dotted keys created.
 *
 * Errors: the first error stops the parse; its byte offset is turned into
 * line:col (columns in characters) and the partial tree is freed. */
#include "toml.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
	T_IMPLICIT = 1u << 0,
	T_EXPLICIT = 1u << 1,
	T_DOTTED = 1u << 2,
	T_INLINE = 1u << 3,
	A_STATIC = 1u << 4,
};

#define MAX_DEPTH 256

struct parser {
	const char *buf;
	size_t len;
	size_t pos;
	struct toml_node *root;
	struct toml_node *cur;  /* table receiving key/values */
	struct toml_error *err;
	int failed;
	size_t err_pos;
	/* cursor cache for offset -> line:col */
	size_t lc_off;
	int lc_line, lc_col;
	int depth;
};

/* ---- errors and positions ---------------------------------------------- */

static void locate(struct parser *p, size_t off, int *line, int *col)
{
	if (off < p->lc_off) {
		p->lc_off = 0;
		p->lc_line = 1;
		p->lc_col = 1;
	}
	while (p->lc_off < off && p->lc_off < p->len) {
		unsigned char c = (unsigned char)p->buf[p->lc_off++];
		if (c == '\n') {
			p->lc_line++;
			p->lc_col = 1;
		} else if ((c & 0xC0) != 0x80) {
			p->lc_col++;
		}
	}
	/* a continuation byte was counted with its lead byte */
	*line = p->lc_line;
	*col = p->lc_col;
}

__attribute__((format(printf, 3, 4)))
static int fail(struct parser *p, size_t off, const char *fmt, ...)
{
	va_list ap;
	if (p->failed)
		return -1;
	p->failed = 1;
	p->err_pos = off;
	va_start(ap, fmt);
	vsnprintf(p->err->msg, sizeof p->err->msg, fmt, ap);
	va_end(ap);
	locate(p, off, &p->err->line, &p->err->col);
	return -1;
}

static int oom(struct parser *p)
{
	if (!p->failed) {
		p->failed = 1;
		snprintf(p->err->msg, sizeof p->err->msg, "out of memory");
		p->err->line = 0;
		p->err->col = 0;
	}
	return -1;
}

/* ---- nodes ------------------------------------------------------------- */

static struct toml_node *node_new(struct parser *p, enum toml_type type, size_t off)
{
	struct toml_node *n = calloc(1, sizeof *n);
	if (!n) {
		oom(p);
		return NULL;
	}
	n->type = type;
	locate(p, off, &n->line, &n->col);
	return n;
}

void toml_free(struct toml_node *n)
{
	size_t i;
	if (!n)
		return;
	switch (n->type) {
	case TOML_STRING:
		free(n->u.str.ptr);
		break;
	case TOML_ARRAY:
		for (i = 0; i < n->u.arr.n; i++)
			toml_free(n->u.arr.items[i]);
		free(n->u.arr.items);
		break;
	case TOML_TABLE:
		for (i = 0; i < n->u.tab.n; i++) {
			free(n->u.tab.items[i].key);
			toml_free(n->u.tab.items[i].val);
		}
		free(n->u.tab.items);
		break;
	default:
		break;
	}
	free(n);
}

static struct toml_kv *table_find(const struct toml_node *t, const char *key, size_t keylen)
{
	size_t i;
	for (i = 0; i < t->u.tab.n; i++) {
		struct toml_kv *kv = &t->u.tab.items[i];
		if (kv->keylen == keylen && memcmp(kv->key, key, keylen) == 0)
			return kv;
	}
	return NULL;
}

/* Append key -> val to t; takes ownership of key (and of val on success). */
static int table_add(struct parser *p, struct toml_node *t, char *key, size_t keylen,
		     size_t keyoff, struct toml_node *val)
{
	struct toml_kv *kv;
	if (t->u.tab.n == t->u.tab.cap) {
		size_t ncap = t->u.tab.cap ? t->u.tab.cap * 2 : 8;
		struct toml_kv *ni = realloc(t->u.tab.items, ncap * sizeof *ni);
		if (!ni)
			return oom(p);
		t->u.tab.items = ni;
		t->u.tab.cap = ncap;
	}
	kv = &t->u.tab.items[t->u.tab.n++];
	kv->key = key;
	kv->keylen = keylen;
	locate(p, keyoff, &kv->line, &kv->col);
	kv->val = val;
	return 0;
}

static int array_add(struct parser *p, struct toml_node *a, struct toml_node *v)
{
	if (a->u.arr.n == a->u.arr.cap) {
		size_t ncap = a->u.arr.cap ? a->u.arr.cap * 2 : 8;
		struct toml_node **ni = realloc(a->u.arr.items, ncap * sizeof *ni);
		if (!ni)
			return oom(p);
		a->u.arr.items = ni;
		a->u.arr.cap = ncap;
	}
	a->u.arr.items[a->u.arr.n++] = v;
	return 0;
}

/* ---- growable byte buffer for strings ------------------------------------ */

struct sbuf {
	char *ptr;
	size_t len, cap;
};

static int sb_putn(struct parser *p, struct sbuf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t ncap = b->cap ? b->cap : 32;
		char *np;
		while (ncap < b->len + n + 1)
			ncap *= 2;
		np = realloc(b->ptr, ncap);
		if (!np)
			return oom(p);
		b->ptr = np;
		b->cap = ncap;
	}
	memcpy(b->ptr + b->len, s, n);
	b->len += n;
	b->ptr[b->len] = 0;
	return 0;
}

static int sb_putc(struct parser *p, struct sbuf *b, char c)
{
	return sb_putn(p, b, &c, 1);
}

static int sb_utf8(struct parser *p, struct sbuf *b, uint32_t cp)
{
	char o[4];
	size_t n;
	if (cp < 0x80) {
		o[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		o[0] = (char)(0xC0 | (cp >> 6));
		o[1] = (char)(0x80 | (cp & 0x3F));
		n = 2;
	} else if (cp < 0x10000) {
		o[0] = (char)(0xE0 | (cp >> 12));
		o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		o[2] = (char)(0x80 | (cp & 0x3F));
		n = 3;
	} else {
		o[0] = (char)(0xF0 | (cp >> 18));
		o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
		o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
		o[3] = (char)(0x80 | (cp & 0x3F));
		n = 4;
	}
	return sb_putn(p, b, o, n);
}

/* ---- low-level scanning ------------------------------------------------- */

static int peek(const struct parser *p)
{
	return p->pos < p->len ? (unsigned char)p->buf[p->pos] : -1;
}

static int peek_at(const struct parser *p, size_t k)
{
	return p->pos + k < p->len ? (unsigned char)p->buf[p->pos + k] : -1;
}

static int is_ws(int c)
{
	return c == ' ' || c == '\t';
}

static int is_digit(int c)
{
	return c >= '0' && c <= '9';
}

static int is_bare(int c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || is_digit(c) ||
	       c == '_' || c == '-';
}

/* Control characters TOML forbids unescaped (tab is allowed). */
static int is_ctrl(int c)
{
	return (c >= 0 && c < 0x20 && c != '\t') || c == 0x7F;
}

static void skip_ws(struct parser *p)
{
	while (is_ws(peek(p)))
		p->pos++;
}

/* At a newline (LF or CRLF)? Returns its length, 0 if none. */
static int at_newline(const struct parser *p)
{
	if (peek(p) == '\n')
		return 1;
	if (peek(p) == '\r' && peek_at(p, 1) == '\n')
		return 2;
	return 0;
}

/* A '#' comment up to (not including) the newline. */
static int skip_comment(struct parser *p)
{
	if (peek(p) != '#')
		return 0;
	p->pos++;
	while (p->pos < p->len) {
		int c = peek(p);
		if (c == '\n' || (c == '\r' && peek_at(p, 1) == '\n'))
			break;
		if (is_ctrl(c))
			return fail(p, p->pos, "control character 0x%02x in comment", c);
		p->pos++;
	}
	return 0;
}

/* Whitespace, comments and newlines (inside arrays). */
static int skip_ws_nl(struct parser *p)
{
	for (;;) {
		int n;
		skip_ws(p);
		if (peek(p) == '#') {
			if (skip_comment(p) < 0)
				return -1;
			continue;
		}
		if ((n = at_newline(p))) {
			p->pos += (size_t)n;
			continue;
		}
		return 0;
	}
}

/* Validate UTF-8 across the whole document (strict: no overlongs,
 * surrogates or code points above U+10FFFF). */
static int check_utf8(struct parser *p)
{
	const unsigned char *s = (const unsigned char *)p->buf;
	size_t i = 0, n = p->len;
	while (i < n) {
		unsigned char c = s[i];
		uint32_t cp;
		size_t k, need;
		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xC2 && c <= 0xDF) {
			need = 1;
			cp = c & 0x1F;
		} else if (c >= 0xE0 && c <= 0xEF) {
			need = 2;
			cp = c & 0x0F;
		} else if (c >= 0xF0 && c <= 0xF4) {
			need = 3;
			cp = c & 0x07;
		} else {
			return fail(p, i, "invalid UTF-8 byte 0x%02x", c);
		}
		if (need >= n - i)
			return fail(p, i, "truncated UTF-8 sequence");
		for (k = 1; k <= need; k++) {
			if ((s[i + k] & 0xC0) != 0x80)
				return fail(p, i, "invalid UTF-8 sequence");
			cp = (cp << 6) | (s[i + k] & 0x3F);
		}
		if ((need == 2 && cp < 0x800) || (need == 3 && cp < 0x10000) ||
		    (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
			return fail(p, i, "invalid UTF-8 sequence");
		i += need + 1;
	}
	return 0;
}

/* ---- strings ------------------------------------------------------------ */

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* One escape sequence after the backslash (p->pos at the backslash). */
static int parse_escape(struct parser *p, struct sbuf *b)
{
	size_t at = p->pos;
	int c = peek_at(p, 1);
	int ndig = 0, k;
	uint32_t cp = 0;
	switch (c) {
	case 'b': p->pos += 2; return sb_putc(p, b, '\b');
	case 't': p->pos += 2; return sb_putc(p, b, '\t');
	case 'n': p->pos += 2; return sb_putc(p, b, '\n');
	case 'f': p->pos += 2; return sb_putc(p, b, '\f');
	case 'r': p->pos += 2; return sb_putc(p, b, '\r');
	case '"': p->pos += 2; return sb_putc(p, b, '"');
	case '\\': p->pos += 2; return sb_putc(p, b, '\\');
	case 'u': ndig = 4; break;
	case 'U': ndig = 8; break;
	default:
		if (c < 0)
			return fail(p, at, "unterminated string");
		if (c < 0x20 || c >= 0x7F)
			return fail(p, at, "invalid escape sequence");
		return fail(p, at, "invalid escape sequence `\\%c`", c);
	}
	p->pos += 2;
	for (k = 0; k < ndig; k++) {
		int h = hexval(peek(p));
		if (h < 0)
			return fail(p, at, "\\%c escape needs %d hex digits", c, ndig);
		cp = (cp << 4) | (uint32_t)h;
		p->pos++;
	}
	if ((cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
		return fail(p, at, "escape is not a Unicode scalar value");
	return sb_utf8(p, b, cp);
}

/* Copy one raw string character (UTF-8 sequence) at p->pos. */
static int copy_char(struct parser *p, struct sbuf *b)
{
	unsigned char c = (unsigned char)p->buf[p->pos];
	size_t n = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
	int r = sb_putn(p, b, p->buf + p->pos, n);
	p->pos += n;
	return r;
}

/* Basic, literal, multi-line basic or multi-line literal string at
 * p->pos (which is at the opening quote). allow_ml = 0 for keys. */
static int parse_string(struct parser *p, struct sbuf *b, int allow_ml)
{
	size_t start = p->pos;
	int q = peek(p);
	int literal = (q == '\'');
	int ml = 0;

	if (peek_at(p, 1) == q && peek_at(p, 2) == q) {
		if (!allow_ml)
			return fail(p, start, "multi-line string cannot be a key");
		ml = 1;
		p->pos += 3;
		/* a newline right after the opening delimiter is trimmed */
		p->pos += (size_t)at_newline(p);
	} else {
		p->pos++;
	}
	if (sb_putn(p, b, "", 0) < 0)
		return -1;

	for (;;) {
		int c = peek(p), n;
		if (c < 0)
			return fail(p, start, "unterminated string");
		if (c == q) {
			if (!ml) {
				p->pos++;
				return 0;
			}
			if (peek_at(p, 1) == q && peek_at(p, 2) == q) {
				/* up to two more quotes belong to the content */
				int extra = 0;
				while (peek_at(p, (size_t)(3 + extra)) == q)
					extra++;
				if (extra > 2)
					return fail(p, p->pos, "too many quotes closing a multi-line string");
				if (extra && sb_putn(p, b, literal ? "''" : "\"\"", (size_t)extra) < 0)
					return -1;
				p->pos += (size_t)(3 + extra);
				return 0;
			}
			p->pos++;
			if (sb_putc(p, b, (char)c) < 0)
				return -1;
			continue;
		}
		if (ml && (n = at_newline(p))) {
			if (sb_putn(p, b, p->buf + p->pos, (size_t)n) < 0)
				return -1;
			p->pos += (size_t)n;
			continue;
		}
		if (c == '\\' && !literal) {
			if (ml) {
				/* line-ending backslash: \ ws* newline (ws|newline)* */
				size_t save = p->pos;
				p->pos++;
				skip_ws(p);
				if (at_newline(p)) {
					for (;;) {
						skip_ws(p);
						if ((n = at_newline(p)))
							p->pos += (size_t)n;
						else
							break;
					}
					continue;
				}
				p->pos = save;
			}
			if (parse_escape(p, b) < 0)
				return -1;
			continue;
		}
		if (c == '\n' || c == '\r')
			return fail(p, p->pos, ml ? "bare carriage return in string"
						 : "newline in single-line string");
		if (is_ctrl(c))
			return fail(p, p->pos, "control character 0x%02x in string", c);
		if (copy_char(p, b) < 0)
			return -1;
	}
}

/* ---- keys --------------------------------------------------------------- */

struct keypart {
	char *s;
	size_t len;
	size_t off;
};

struct keypath {
	struct keypart *parts;
	size_t n, cap;
};

static void keypath_free(struct keypath *k)
{
	size_t i;
	for (i = 0; i < k->n; i++)
		free(k->parts[i].s);
	free(k->parts);
	k->parts = NULL;
	k->n = k->cap = 0;
}

/* A simple or dotted key at p->pos. */
static int parse_key(struct parser *p, struct keypath *k)
{
	for (;;) {
		struct sbuf b = {0};
		size_t off;
		int c;
		skip_ws(p);
		off = p->pos;
		c = peek(p);
		if (c == '"' || c == '\'') {
			if (parse_string(p, &b, 0) < 0) {
				free(b.ptr);
				return -1;
			}
		} else if (is_bare(c)) {
			size_t s = p->pos;
			while (is_bare(peek(p)))
				p->pos++;
			if (sb_putn(p, &b, p->buf + s, p->pos - s) < 0) {
				free(b.ptr);
				return -1;
			}
		} else {
			if (c < 0 || c == '\n' || c == '\r')
				return fail(p, off, "expected a key");
			return fail(p, off, "invalid character in key");
		}
		if (k->n == k->cap) {
			size_t ncap = k->cap ? k->cap * 2 : 4;
			struct keypart *np = realloc(k->parts, ncap * sizeof *np);
			if (!np) {
				free(b.ptr);
				return oom(p);
			}
			k->parts = np;
			k->cap = ncap;
		}
		k->parts[k->n].s = b.ptr;
		k->parts[k->n].len = b.len;
		k->parts[k->n].off = off;
		k->n++;
		skip_ws(p);
		if (peek(p) != '.')
			return 0;
		p->pos++;
	}
}

/* ---- numbers, booleans, date-times -------------------------------------- */

/* Digits with single underscores between them, in the given base. Appends
 * the digits (without underscores) to out. */
static int scan_digits(struct parser *p, int base, char *out, size_t *olen, size_t ocap)
{
	size_t start = p->pos;
	int prev_digit = 0;
	for (;;) {
		int c = peek(p);
		int d = hexval(c);
		if (c == '_') {
			if (!prev_digit || hexval(peek_at(p, 1)) < 0 || hexval(peek_at(p, 1)) >= base)
				return fail(p, p->pos, "underscore must be between digits");
			prev_digit = 0;
			p->pos++;
			continue;
		}
		if (d < 0 || d >= base)
			break;
		if (*olen + 1 >= ocap)
			return fail(p, start, "number too long");
		out[(*olen)++] = (char)c;
		prev_digit = 1;
		p->pos++;
	}
	out[*olen] = 0;
	if (p->pos == start)
		return fail(p, start, "expected digits");
	return 0;
}

static int ends_value(int c)
{
	return c < 0 || is_ws(c) || c == ',' || c == ']' || c == '}' || c == '#' ||
	       c == '\n' || c == '\r';
}

static struct toml_node *parse_number(struct parser *p)
{
	size_t start = p->pos;
	char digits[512];
	size_t dl = 0;
	int sign = 0, isfloat = 0;
	struct toml_node *n;

	if (peek(p) == '+' || peek(p) == '-') {
		sign = peek(p);
		digits[dl++] = (char)sign;
		p->pos++;
	}
	/* inf / nan */
	if (peek(p) == 'i' || peek(p) == 'n') {
		const char *w = peek(p) == 'i' ? "inf" : "nan";
		if (p->len - p->pos < 3 || memcmp(p->buf + p->pos, w, 3) != 0) {
			fail(p, start, "invalid value");
			return NULL;
		}
		p->pos += 3;
		if (!ends_value(peek(p))) {
			fail(p, start, "invalid value");
			return NULL;
		}
		if (!(n = node_new(p, TOML_FLOAT, start)))
			return NULL;
		if (w[0] == 'i')
			n->u.f = sign == '-' ? -INFINITY : INFINITY;
		else
			n->u.f = sign == '-' ? -NAN : NAN;
		return n;
	}
	/* prefixed integers */
	if (peek(p) == '0' && (peek_at(p, 1) == 'x' || peek_at(p, 1) == 'o' || peek_at(p, 1) == 'b')) {
		int base = peek_at(p, 1) == 'x' ? 16 : peek_at(p, 1) == 'o' ? 8 : 2;
		uint64_t v = 0;
		size_t i;
		if (sign) {
			fail(p, start, "sign not allowed on a %s integer",
			     base == 16 ? "hexadecimal" : base == 8 ? "octal" : "binary");
			return NULL;
		}
		p->pos += 2;
		dl = 0;
		if (peek(p) == '_') {
			fail(p, p->pos, "underscore must be between digits");
			return NULL;
		}
		if (scan_digits(p, base, digits, &dl, sizeof digits) < 0)
			return NULL;
		if (!ends_value(peek(p))) {
			fail(p, start, "invalid integer");
			return NULL;
		}
		for (i = 0; i < dl; i++) {
			uint64_t d = (uint64_t)hexval(digits[i]);
			if (v > (UINT64_C(0x7FFFFFFFFFFFFFFF) - d) / (uint64_t)base) {
				fail(p, start, "integer out of range");
				return NULL;
			}
			v = v * (uint64_t)base + d;
		}
		if (!(n = node_new(p, TOML_INTEGER, start)))
			return NULL;
		n->u.i = (int64_t)v;
		return n;
	}
	/* decimal integer part */
	{
		size_t ip = p->pos, ndig;
		if (!is_digit(peek(p))) {
			fail(p, start, "invalid value");
			return NULL;
		}
		if (scan_digits(p, 10, digits, &dl, sizeof digits) < 0)
			return NULL;
		ndig = dl - (sign ? 1 : 0);
		if (ndig > 1 && p->buf[ip] == '0') {
			fail(p, start, "leading zeros are not allowed");
			return NULL;
		}
	}
	if (peek(p) == '.') {
		isfloat = 1;
		digits[dl++] = '.';
		p->pos++;
		if (!is_digit(peek(p))) {
			fail(p, p->pos, "expected digits after the decimal point");
			return NULL;
		}
		if (scan_digits(p, 10, digits, &dl, sizeof digits) < 0)
			return NULL;
	}
	if (peek(p) == 'e' || peek(p) == 'E') {
		isfloat = 1;
		digits[dl++] = 'e';
		p->pos++;
		if (peek(p) == '+' || peek(p) == '-') {
			digits[dl++] = (char)peek(p);
			p->pos++;
		}
		if (!is_digit(peek(p))) {
			fail(p, p->pos, "expected digits in the exponent");
			return NULL;
		}
		if (scan_digits(p, 10, digits, &dl, sizeof digits) < 0)
			return NULL;
	}
	if (!ends_value(peek(p))) {
		fail(p, start, "invalid number");
		return NULL;
	}
	if (isfloat) {
		if (!(n = node_new(p, TOML_FLOAT, start)))
			return NULL;
		n->u.f = strtod(digits, NULL);
		return n;
	}
	errno = 0;
	{
		long long v = strtoll(digits, NULL, 10);
		if (errno == ERANGE) {
			fail(p, start, "integer out of range");
			return NULL;
		}
		if (!(n = node_new(p, TOML_INTEGER, start)))
			return NULL;
		n->u.i = v;
	}
	return n;
}

/* Exactly n decimal digits at p->pos into *out. */
static int fixed_digits(struct parser *p, int n, int *out)
{
	int v = 0, k;
	for (k = 0; k < n; k++) {
		int c = peek_at(p, (size_t)k);
		if (!is_digit(c))
			return -1;
		v = v * 10 + (c - '0');
	}
	p->pos += (size_t)n;
	*out = v;
	return 0;
}

static int days_in_month(int y, int m)
{
	static const int d[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return 29;
	return d[m - 1];
}

/* HH:MM:SS[.frac] at p->pos into dt. */
static int parse_time(struct parser *p, struct toml_datetime *dt, size_t start)
{
	if (fixed_digits(p, 2, &dt->hour) < 0 || peek(p) != ':')
		return fail(p, start, "invalid time");
	p->pos++;
	if (fixed_digits(p, 2, &dt->minute) < 0)
		return fail(p, start, "invalid time");
	if (peek(p) != ':')
		return fail(p, start, "invalid time (seconds are required)");
	p->pos++;
	if (fixed_digits(p, 2, &dt->second) < 0)
		return fail(p, start, "invalid time");
	if (dt->hour > 23 || dt->minute > 59 || dt->second > 60)
		return fail(p, start, "time out of range");
	if (peek(p) == '.') {
		int nd = 0;
		p->pos++;
		if (!is_digit(peek(p)))
			return fail(p, start, "expected digits after the decimal point");
		while (is_digit(peek(p))) {
			if (nd < 9) {
				dt->nanosecond = dt->nanosecond * 10 + (peek(p) - '0');
				nd++;
			}
			p->pos++;
		}
		dt->frac_digits = nd;
		while (nd++ < 9)
			dt->nanosecond *= 10;
	}
	return 0;
}

static struct toml_node *parse_datetime(struct parser *p)
{
	size_t start = p->pos;
	struct toml_datetime dt = {0};
	enum toml_type type;
	struct toml_node *n;

	if (is_digit(peek_at(p, 0)) && is_digit(peek_at(p, 1)) && peek_at(p, 2) == ':') {
		if (parse_time(p, &dt, start) < 0)
			return NULL;
		type = TOML_TIME_LOCAL;
	} else {
		if (fixed_digits(p, 4, &dt.year) < 0 || peek(p) != '-') {
			fail(p, start, "invalid date");
			return NULL;
		}
		p->pos++;
		if (fixed_digits(p, 2, &dt.month) < 0 || peek(p) != '-') {
			fail(p, start, "invalid date");
			return NULL;
		}
		p->pos++;
		if (fixed_digits(p, 2, &dt.day) < 0) {
			fail(p, start, "invalid date");
			return NULL;
		}
		if (dt.month < 1 || dt.month > 12 || dt.day < 1 ||
		    dt.day > days_in_month(dt.year, dt.month)) {
			fail(p, start, "date out of range");
			return NULL;
		}
		type = TOML_DATE_LOCAL;
		if ((peek(p) == 'T' || peek(p) == 't' ||
		     (peek(p) == ' ' && is_digit(peek_at(p, 1)) && is_digit(peek_at(p, 2)) &&
		      peek_at(p, 3) == ':'))) {
			p->pos++;
			if (parse_time(p, &dt, start) < 0)
				return NULL;
			type = TOML_DATETIME_LOCAL;
			if (peek(p) == 'Z' || peek(p) == 'z') {
				p->pos++;
				dt.utc_z = true;
				type = TOML_DATETIME;
			} else if (peek(p) == '+' || peek(p) == '-') {
				int sgn = peek(p) == '-' ? -1 : 1, oh, om;
				p->pos++;
				if (fixed_digits(p, 2, &oh) < 0 || peek(p) != ':') {
					fail(p, start, "invalid time offset");
					return NULL;
				}
				p->pos++;
				if (fixed_digits(p, 2, &om) < 0) {
					fail(p, start, "invalid time offset");
					return NULL;
				}
				if (oh > 23 || om > 59) {
					fail(p, start, "time offset out of range");
					return NULL;
				}
				dt.offset_minutes = sgn * (oh * 60 + om);
				type = TOML_DATETIME;
			}
		}
	}
	if (!ends_value(peek(p))) {
		fail(p, start, "invalid date-time");
		return NULL;
	}
	if (!(n = node_new(p, type, start)))
		return NULL;
	n->u.dt = dt;
	return n;
}

/* ---- values ------------------------------------------------------------- */

static struct toml_node *parse_value(struct parser *p);
static int parse_keyval(struct parser *p, struct toml_node *table);

static struct toml_node *parse_array(struct parser *p)
{
	size_t start = p->pos;
	struct toml_node *a = node_new(p, TOML_ARRAY, start);
	if (!a)
		return NULL;
	a->flags = A_STATIC;
	p->pos++;
	for (;;) {
		struct toml_node *v;
		if (skip_ws_nl(p) < 0)
			goto err;
		if (peek(p) == ']') {
			p->pos++;
			return a;
		}
		if (!(v = parse_value(p)))
			goto err;
		if (array_add(p, a, v) < 0) {
			toml_free(v);
			goto err;
		}
		if (skip_ws_nl(p) < 0)
			goto err;
		if (peek(p) == ',') {
			p->pos++;
			continue;
		}
		if (peek(p) == ']') {
			p->pos++;
			return a;
		}
		if (peek(p) < 0)
			fail(p, start, "unterminated array");
		else
			fail(p, p->pos, "expected `,` or `]` in array");
		goto err;
	}
err:
	toml_free(a);
	return NULL;
}

static struct toml_node *parse_inline_table(struct parser *p)
{
	size_t start = p->pos;
	struct toml_node *t = node_new(p, TOML_TABLE, start);
	if (!t)
		return NULL;
	t->flags = T_EXPLICIT;
	p->pos++;
	skip_ws(p);
	if (peek(p) == '}') {
		p->pos++;
		t->flags |= T_INLINE;
		return t;
	}
	for (;;) {
		if (parse_keyval(p, t) < 0)
			goto err;
		skip_ws(p);
		if (peek(p) == ',') {
			p->pos++;
			skip_ws(p);
			if (peek(p) == '}') {
				fail(p, p->pos, "trailing comma in inline table");
				goto err;
			}
			continue;
		}
		if (peek(p) == '}') {
			p->pos++;
			t->flags |= T_INLINE;
			return t;
		}
		if (peek(p) < 0)
			fail(p, start, "unterminated inline table");
		else if (at_newline(p) || peek(p) == '\r')
			fail(p, p->pos, "newline in inline table");
		else
			fail(p, p->pos, "expected `,` or `}` in inline table");
		goto err;
	}
err:
	toml_free(t);
	return NULL;
}

static struct toml_node *parse_value(struct parser *p)
{
	size_t start = p->pos;
	int c = peek(p);
	struct toml_node *n;

	if (++p->depth > MAX_DEPTH) {
		fail(p, start, "nesting too deep");
		return NULL;
	}
	switch (c) {
	case '"':
	case '\'': {
		struct sbuf b = {0};
		if (parse_string(p, &b, 1) < 0) {
			free(b.ptr);
			n = NULL;
			break;
		}
		if (!(n = node_new(p, TOML_STRING, start))) {
			free(b.ptr);
			break;
		}
		n->u.str.ptr = b.ptr;
		n->u.str.len = b.len;
		break;
	}
	case '[':
		n = parse_array(p);
		break;
	case '{':
		n = parse_inline_table(p);
		break;
	case 't':
	case 'f': {
		const char *w = c == 't' ? "true" : "false";
		size_t wl = strlen(w);
		if (p->len - p->pos < wl || memcmp(p->buf + p->pos, w, wl) != 0 ||
		    (p->pos += wl, !ends_value(peek(p)))) {
			fail(p, start, "invalid value");
			n = NULL;
			break;
		}
		if ((n = node_new(p, TOML_BOOL, start)))
			n->u.b = c == 't';
		break;
	}
	default:
		if (c < 0 || c == '\n' || c == '\r' || c == '#') {
			fail(p, start, "expected a value");
			n = NULL;
		} else if (is_digit(c) && ((is_digit(peek_at(p, 1)) && peek_at(p, 2) == ':') ||
					   (is_digit(peek_at(p, 1)) && is_digit(peek_at(p, 2)) &&
					    is_digit(peek_at(p, 3)) && peek_at(p, 4) == '-'))) {
			n = parse_datetime(p);
		} else if (is_digit(c) || c == '+' || c == '-' || c == 'i' || c == 'n') {
			n = parse_number(p);
		} else {
			fail(p, start, "invalid value");
			n = NULL;
		}
	}
	p->depth--;
	return n;
}

/* ---- tables and key/values ------------------------------------------------ */

static char *dupkey(struct parser *p, const struct keypart *kp)
{
	char *s = malloc(kp->len + 1);
	if (!s) {
		oom(p);
		return NULL;
	}
	memcpy(s, kp->s, kp->len);
	s[kp->len] = 0;
	return s;
}

/* Add an empty table under key kp in t with the given flags. */
static struct toml_node *add_table(struct parser *p, struct toml_node *t,
				   const struct keypart *kp, unsigned flags)
{
	struct toml_node *n = node_new(p, TOML_TABLE, kp->off);
	char *k;
	if (!n)
		return NULL;
	n->flags = flags;
	if (!(k = dupkey(p, kp))) {
		toml_free(n);
		return NULL;
	}
	if (table_add(p, t, k, kp->len, kp->off, n) < 0) {
		free(k);
		toml_free(n);
		return NULL;
	}
	return n;
}

/* key = value into table (dotted keys create T_DOTTED tables). */
static int parse_keyval(struct parser *p, struct toml_node *table)
{
	struct keypath k = {0};
	struct toml_node *t = table, *v = NULL;
	size_t i, voff;
	char *key = NULL;
	int rc = -1;

	if (parse_key(p, &k) < 0)
		goto out;
	for (i = 0; i + 1 < k.n; i++) {
		struct toml_kv *kv = table_find(t, k.parts[i].s, k.parts[i].len);
		if (!kv) {
			if (!(t = add_table(p, t, &k.parts[i], T_DOTTED)))
				goto out;
			continue;
		}
		if (kv->val->type != TOML_TABLE || !(kv->val->flags & T_DOTTED) ||
		    (kv->val->flags & T_INLINE)) {
			fail(p, k.parts[i].off, "cannot add keys to `%s`: it is already defined",
			     k.parts[i].s);
			goto out;
		}
		t = kv->val;
	}
	if (table_find(t, k.parts[k.n - 1].s, k.parts[k.n - 1].len)) {
		fail(p, k.parts[k.n - 1].off, "duplicate key `%s`", k.parts[k.n - 1].s);
		goto out;
	}
	skip_ws(p);
	if (peek(p) != '=') {
		fail(p, p->pos, "expected `=` after a key");
		goto out;
	}
	p->pos++;
	skip_ws(p);
	voff = p->pos;
	(void)voff;
	if (!(v = parse_value(p)))
		goto out;
	if (!(key = dupkey(p, &k.parts[k.n - 1])))
		goto out;
	if (table_add(p, t, key, k.parts[k.n - 1].len, k.parts[k.n - 1].off, v) < 0)
		goto out;
	key = NULL;
	v = NULL;
	rc = 0;
out:
	free(key);
	toml_free(v);
	keypath_free(&k);
	return rc;
}

/* [header] or [[header]] at p->pos; sets p->cur. */
static int parse_header(struct parser *p)
{
	size_t start = p->pos;
	int aot = peek_at(p, 1) == '[';
	struct keypath k = {0};
	struct toml_node *t = p->root;
	struct toml_kv *kv;
	const struct keypart *last;
	size_t i;
	int rc = -1;

	p->pos += aot ? 2 : 1;
	if (parse_key(p, &k) < 0)
		goto out;
	skip_ws(p);
	if (peek(p) != ']' || (aot && peek_at(p, 1) != ']')) {
		fail(p, p->pos, aot ? "expected `]]` closing the table header"
				    : "expected `]` closing the table header");
		goto out;
	}
	p->pos += aot ? 2 : 1;

	for (i = 0; i + 1 < k.n; i++) {
		struct toml_node *v;
		kv = table_find(t, k.parts[i].s, k.parts[i].len);
		if (!kv) {
			if (!(t = add_table(p, t, &k.parts[i], T_IMPLICIT)))
				goto out;
			continue;
		}
		v = kv->val;
		if (v->type == TOML_ARRAY && !(v->flags & A_STATIC) && v->u.arr.n > 0)
			v = v->u.arr.items[v->u.arr.n - 1];
		if (v->type != TOML_TABLE || (v->flags & T_INLINE)) {
			fail(p, k.parts[i].off, "`%s` is already defined and is not a table",
			     k.parts[i].s);
			goto out;
		}
		t = v;
	}
	last = &k.parts[k.n - 1];
	kv = table_find(t, last->s, last->len);
	if (!aot) {
		if (!kv) {
			if (!(p->cur = add_table(p, t, last, T_EXPLICIT)))
				goto out;
			p->cur->line = 0;
			locate(p, start, &p->cur->line, &p->cur->col);
		} else if (kv->val->type == TOML_TABLE && kv->val->flags == T_IMPLICIT) {
			kv->val->flags = T_EXPLICIT;
			p->cur = kv->val;
		} else {
			fail(p, start, "table `%s` is already defined", last->s);
			goto out;
		}
	} else {
		struct toml_node *arr, *el;
		if (!kv) {
			char *key;
			if (!(arr = node_new(p, TOML_ARRAY, start)))
				goto out;
			if (!(key = dupkey(p, last))) {
				toml_free(arr);
				goto out;
			}
			if (table_add(p, t, key, last->len, last->off, arr) < 0) {
				free(key);
				toml_free(arr);
				goto out;
			}
		} else if (kv->val->type == TOML_ARRAY && !(kv->val->flags & A_STATIC)) {
			arr = kv->val;
		} else {
			fail(p, start, "`%s` is already defined and is not an array of tables",
			     last->s);
			goto out;
		}
		if (!(el = node_new(p, TOML_TABLE, start)))
			goto out;
		el->flags = T_EXPLICIT;
		if (array_add(p, arr, el) < 0) {
			toml_free(el);
			goto out;
		}
		p->cur = el;
	}
	rc = 0;
out:
	keypath_free(&k);
	return rc;
}

/* After an expression: optional whitespace and comment, then newline or EOF. */
static int end_of_line(struct parser *p)
{
	int n;
	skip_ws(p);
	if (skip_comment(p) < 0)
		return -1;
	if (peek(p) < 0)
		return 0;
	if ((n = at_newline(p))) {
		p->pos += (size_t)n;
		return 0;
	}
	if (peek(p) == '\r')
		return fail(p, p->pos, "bare carriage return");
	return fail(p, p->pos, "expected a newline after the expression");
}

struct toml_node *toml_parse(const char *buf, size_t len, struct toml_error *err)
{
	struct parser p;
	memset(&p, 0, sizeof p);
	p.buf = buf;
	p.len = len;
	p.err = err;
	p.lc_line = p.lc_col = 1;
	memset(err, 0, sizeof *err);

	if (check_utf8(&p) < 0)
		return NULL;
	/* a leading byte-order mark is not part of the document */
	if (len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0)
		p.pos = 3;
	if (!(p.root = node_new(&p, TOML_TABLE, 0)))
		return NULL;
	p.root->flags = T_EXPLICIT;
	p.cur = p.root;

	while (p.pos < p.len) {
		int c, n;
		skip_ws(&p);
		c = peek(&p);
		if (c < 0)
			break;
		if ((n = at_newline(&p))) {
			p.pos += (size_t)n;
			continue;
		}
		if (c == '#') {
			if (end_of_line(&p) < 0)
				goto err;
			continue;
		}
		if (c == '[') {
			if (parse_header(&p) < 0)
				goto err;
		} else if (c == '\r') {
			fail(&p, p.pos, "bare carriage return");
			goto err;
		} else {
			if (parse_keyval(&p, p.cur) < 0)
				goto err;
		}
		if (end_of_line(&p) < 0)
			goto err;
	}
	return p.root;
err:
	toml_free(p.root);
	return NULL;
}

/* ---- lookups ------------------------------------------------------------ */

const struct toml_kv *toml_get_kv(const struct toml_node *t, const char *key)
{
	if (!t || t->type != TOML_TABLE)
		return NULL;
	return table_find(t, key, strlen(key));
}

struct toml_node *toml_get(const struct toml_node *t, const char *key)
{
	const struct toml_kv *kv = toml_get_kv(t, key);
	return kv ? kv->val : NULL;
}

const char *toml_type_name(enum toml_type type)
{
	switch (type) {
	case TOML_TABLE: return "table";
	case TOML_ARRAY: return "array";
	case TOML_STRING: return "string";
	case TOML_INTEGER: return "integer";
	case TOML_FLOAT: return "float";
	case TOML_BOOL: return "boolean";
	case TOML_DATETIME: return "offset date-time";
	case TOML_DATETIME_LOCAL: return "local date-time";
	case TOML_DATE_LOCAL: return "local date";
	case TOML_TIME_LOCAL: return "local time";
	}
	return "?";
}

char *toml_format_datetime(const struct toml_node *n, char *buf, size_t len)
{
	const struct toml_datetime *d = &n->u.dt;
	char date[16] = "", time[32] = "", frac[16] = "", off[8] = "";
	if (n->type != TOML_TIME_LOCAL)
		snprintf(date, sizeof date, "%04d-%02d-%02d", d->year, d->month, d->day);
	if (n->type != TOML_DATE_LOCAL) {
		if (d->frac_digits > 0) {
			int ns = d->nanosecond, k;
			for (k = d->frac_digits; k < 9; k++)
				ns /= 10;
			snprintf(frac, sizeof frac, ".%0*d", d->frac_digits, ns);
		}
		snprintf(time, sizeof time, "%s%02d:%02d:%02d%s",
			 n->type == TOML_TIME_LOCAL ? "" : "T", d->hour, d->minute, d->second, frac);
	}
	if (n->type == TOML_DATETIME) {
		int m = d->offset_minutes < 0 ? -d->offset_minutes : d->offset_minutes;
		if (d->utc_z)
			snprintf(off, sizeof off, "Z");
		else
			snprintf(off, sizeof off, "%c%02d:%02d", d->offset_minutes < 0 ? '-' : '+',
				 m / 60 % 100, m % 60);
	}
	snprintf(buf, len, "%s%s%s", date, time, off);
	return buf;
}
