/* luascan.c — static scan of Lua source for the calls fixture caching and
 * scheduling care about (see luascan.h for the contract).
 *
 * Two passes over the buffer:
 *
 *   1. A Lua 5.4 tokenizer modelled on llex.c: names and keywords, every
 *      numeral form (decimal, hex, fractions, exponents, hex floats like
 *      0x1p4), short strings with all escapes (\a \b \f \n \r \t \v \\ \"
 *      \' \<newline> \z \xXX \ddd \u{XXX}), long strings [==[ ... ]==],
 *      comments -- and long comments --[==[ ... ]==], a leading "#" line.
 *      Strings are decoded; line numbers follow Lua (\n, \r, \r\n, \n\r
 *      each count once). Text inside comments and strings never becomes a
 *      token, so it can never look like a call.
 *
 *   2. A recognizer over the token array. A call is a callee NAME from the
 *      list in luascan.h immediately followed by '(' , a string literal or
 *      '{' — whatever precedes it (obj:f, obj.f, a.b:f, bare f) — unless
 *      the name chain follows the keyword `function` (a definition). It
 *      keeps a stack of blocks closed by `end` / `until` (function, do,
 *      if, while/for whose own `do` does not open a second block, repeat)
 *      to know whether a call is inside a function body.
 *
 * Error contract: -1 with err for an unreadable file, an unfinished
 * string / long string / long comment, an invalid escape or out of
 * memory. The tokens read before the error are still recognized, so the
 * result is valid up to the error point. Malformed numerals are not
 * errors (the scanner is not a compiler). No global state.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "luascan.h"
#include "units.h"

enum tok_type { T_EOF, T_NAME, T_KEYWORD, T_NUMBER, T_STRING, T_SYM };

struct token {
	enum tok_type type;
	int line;
	const char *s;          /* source text (names, keywords, symbols) */
	size_t len;
	char *str;              /* T_STRING: decoded, NUL-terminated (malloc) */
	size_t slen;
	bool is_int;            /* T_NUMBER: an integer numeral */
	int64_t ival;
};

struct lexer {
	const char *src;
	size_t len, pos;
	int line;
	char *err;
	size_t errlen;
	struct token *toks;
	size_t ntoks, cap;
	char *buf;              /* string decode buffer */
	size_t blen, bcap;
};

static const char *const keywords[] = {
	"and", "break", "do", "else", "elseif", "end", "false", "for",
	"function", "goto", "if", "in", "local", "nil", "not", "or", "repeat",
	"return", "then", "true", "until", "while", NULL
};

__attribute__((format(printf, 2, 3)))
static int lex_fail(struct lexer *lx, const char *fmt, ...)
{
	va_list ap;

	if (lx->errlen) {
		va_start(ap, fmt);
		vsnprintf(lx->err, lx->errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

static int cur(const struct lexer *lx)
{
	return lx->pos < lx->len ? (unsigned char)lx->src[lx->pos] : -1;
}

static int peek(const struct lexer *lx, size_t k)
{
	return lx->pos + k < lx->len ? (unsigned char)lx->src[lx->pos + k] : -1;
}

static bool is_nl(int c)
{
	return c == '\n' || c == '\r';
}

static bool is_alpha(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_digit(int c)
{
	return c >= '0' && c <= '9';
}

static bool is_xdigit(int c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int xval(int c)
{
	return is_digit(c) ? c - '0' : (c | 0x20) - 'a' + 10;
}

/* At a newline: skip it (\n\r and \r\n count once) and count the line. */
static void inc_line(struct lexer *lx)
{
	int old = cur(lx);

	lx->pos++;
	if (is_nl(cur(lx)) && cur(lx) != old)
		lx->pos++;
	lx->line++;
}

static int buf_add(struct lexer *lx, const char *s, size_t n)
{
	if (lx->bcap - lx->blen < n + 1) {
		size_t cap = lx->bcap ? lx->bcap : 64;
		char *p;

		while (cap - lx->blen < n + 1)
			cap *= 2;
		p = realloc(lx->buf, cap);
		if (!p)
			return lex_fail(lx, "out of memory");
		lx->buf = p;
		lx->bcap = cap;
	}
	memcpy(lx->buf + lx->blen, s, n);
	lx->blen += n;
	lx->buf[lx->blen] = '\0';
	return 0;
}

static int buf_addc(struct lexer *lx, int c)
{
	char ch = (char)c;

	return buf_add(lx, &ch, 1);
}

/* Append a token; T_STRING takes a copy of the decode buffer. */
static int push_tok(struct lexer *lx, enum tok_type type, int line, size_t start)
{
	struct token *t;

	if (lx->ntoks == lx->cap) {
		size_t cap = lx->cap ? lx->cap * 2 : 256;
		struct token *p = realloc(lx->toks, cap * sizeof *p);

		if (!p)
			return lex_fail(lx, "out of memory");
		lx->toks = p;
		lx->cap = cap;
	}
	t = &lx->toks[lx->ntoks];
	memset(t, 0, sizeof *t);
	t->type = type;
	t->line = line;
	t->s = lx->src + start;
	t->len = lx->pos - start;
	if (type == T_STRING) {
		t->str = malloc(lx->blen + 1);
		if (!t->str)
			return lex_fail(lx, "out of memory");
		if (lx->blen)
			memcpy(t->str, lx->buf, lx->blen);
		t->str[lx->blen] = '\0';
		t->slen = lx->blen;
	}
	lx->ntoks++;
	return 0;
}

/* At '[': the level of a long bracket opener "[==[" (number of '='), or
 * -1 when this '[' does not open one. Does not move. */
static int long_level(const struct lexer *lx)
{
	size_t k = 1;

	while (peek(lx, k) == '=')
		k++;
	return peek(lx, k) == '[' ? (int)k - 1 : -1;
}

/* At the opener of a long bracket of the given level: read to the
 * matching closer, decoding into the buffer. what: "string"/"comment". */
static int read_long(struct lexer *lx, int level, const char *what)
{
	int start_line = lx->line;

	lx->blen = 0;
	if (buf_add(lx, "", 0))
		return -1;
	lx->pos += (size_t)level + 2;
	if (is_nl(cur(lx)))
		inc_line(lx);           /* a first newline is skipped */
	for (;;) {
		int c = cur(lx);

		if (c < 0)
			return lex_fail(lx, "line %d: unfinished long %s (starting at line %d)",
					lx->line, what, start_line);
		if (c == ']') {
			size_t k = 1;

			while (peek(lx, k) == '=')
				k++;
			if (k - 1 == (size_t)level && peek(lx, k) == ']') {
				lx->pos += k + 1;
				return 0;
			}
			if (buf_add(lx, "]", 1))
				return -1;
			lx->pos++;
		} else if (is_nl(c)) {
			inc_line(lx);
			if (buf_addc(lx, '\n'))
				return -1;
		} else {
			if (buf_addc(lx, c))
				return -1;
			lx->pos++;
		}
	}
}

/* Encode cp (up to 0x7FFFFFFF) as Lua's extended UTF-8. */
static int add_utf8(struct lexer *lx, unsigned long cp)
{
	char out[8];
	int n = 0;

	if (cp < 0x80) {
		out[n++] = (char)cp;
	} else {
		unsigned mfb = 0x3f;     /* max that fits in the first byte */
		char tmp[8];
		int k = 0;

		do {
			tmp[k++] = (char)(0x80 | (cp & 0x3f));
			cp >>= 6;
			mfb >>= 1;
		} while (cp > mfb);
		out[n++] = (char)((~mfb << 1) | cp);
		while (k > 0)
			out[n++] = tmp[--k];
	}
	return buf_add(lx, out, (size_t)n);
}

/* At the opening quote of a short string: decode it into the buffer. */
static int read_string(struct lexer *lx)
{
	int delim = cur(lx), line = lx->line;

	lx->blen = 0;
	if (buf_add(lx, "", 0))
		return -1;
	lx->pos++;
	for (;;) {
		int c = cur(lx), e;
		unsigned long v;

		if (c < 0 || is_nl(c))
			return lex_fail(lx, "line %d: unfinished string", line);
		if (c == delim) {
			lx->pos++;
			return 0;
		}
		if (c != '\\') {
			if (buf_addc(lx, c))
				return -1;
			lx->pos++;
			continue;
		}
		lx->pos++;
		e = cur(lx);
		switch (e) {
		case 'a': c = '\a'; goto simple;
		case 'b': c = '\b'; goto simple;
		case 'f': c = '\f'; goto simple;
		case 'n': c = '\n'; goto simple;
		case 'r': c = '\r'; goto simple;
		case 't': c = '\t'; goto simple;
		case 'v': c = '\v'; goto simple;
		case '\\': case '"': case '\'':
			c = e;
simple:
			lx->pos++;
			if (buf_addc(lx, c))
				return -1;
			break;
		case '\n': case '\r':
			inc_line(lx);
			if (buf_addc(lx, '\n'))
				return -1;
			break;
		case 'z':
			lx->pos++;
			while (cur(lx) >= 0) {
				if (is_nl(cur(lx)))
					inc_line(lx);
				else if (cur(lx) == ' ' || cur(lx) == '\t' ||
					 cur(lx) == '\f' || cur(lx) == '\v')
					lx->pos++;
				else
					break;
			}
			break;
		case 'x':
			if (!is_xdigit(peek(lx, 1)) || !is_xdigit(peek(lx, 2)))
				return lex_fail(lx, "line %d: hexadecimal digit expected in \\x escape",
						lx->line);
			c = xval(peek(lx, 1)) * 16 + xval(peek(lx, 2));
			lx->pos += 3;
			if (buf_addc(lx, c))
				return -1;
			break;
		case 'u':
			if (peek(lx, 1) != '{' || !is_xdigit(peek(lx, 2)))
				return lex_fail(lx, "line %d: missing '{' or digit in \\u{XXX}", lx->line);
			lx->pos += 2;
			v = 0;
			while (is_xdigit(cur(lx))) {
				v = v * 16 + (unsigned long)xval(cur(lx));
				if (v > 0x7FFFFFFFul)
					return lex_fail(lx, "line %d: UTF-8 value too large", lx->line);
				lx->pos++;
			}
			if (cur(lx) != '}')
				return lex_fail(lx, "line %d: missing '}' in \\u{XXX}", lx->line);
			lx->pos++;
			if (add_utf8(lx, v))
				return -1;
			break;
		default:
			if (!is_digit(e))
				return lex_fail(lx, "line %d: invalid escape sequence", lx->line);
			v = 0;
			for (int i = 0; i < 3 && is_digit(cur(lx)); i++) {
				v = v * 10 + (unsigned long)(cur(lx) - '0');
				lx->pos++;
			}
			if (v > 255)
				return lex_fail(lx, "line %d: decimal escape too large", lx->line);
			if (buf_addc(lx, (int)v))
				return -1;
		}
	}
}

/* At a digit (or '.' followed by one): read a numeral the way llex does
 * and push a T_NUMBER, with the integer value when it is one. */
static int read_number(struct lexer *lx)
{
	size_t start = lx->pos;
	const char *expo = "Ee";
	bool hex = false, is_int = true;
	int64_t ival = 0;
	struct token *t;

	if (cur(lx) == '0' && (peek(lx, 1) == 'x' || peek(lx, 1) == 'X')) {
		hex = true;
		expo = "Pp";
		lx->pos += 2;
	}
	for (;;) {
		int c = cur(lx);

		if (c > 0 && (c == expo[0] || c == expo[1])) {
			is_int = false;
			lx->pos++;
			if (cur(lx) == '+' || cur(lx) == '-')
				lx->pos++;
		} else if (is_xdigit(c) || c == '.') {
			if (c == '.' || (!hex && !is_digit(c)))
				is_int = false;
			lx->pos++;
		} else {
			break;
		}
	}
	if (is_alpha(cur(lx))) {     /* numeral touching a letter: malformed */
		is_int = false;
		while (is_alpha(cur(lx)) || is_digit(cur(lx)))
			lx->pos++;
	}
	if (is_int) {
		uint64_t u = 0;

		for (size_t i = start + (hex ? 2 : 0); i < lx->pos; i++) {
			int d = xval((unsigned char)lx->src[i]);

			if (hex) {
				u = u * 16 + (uint64_t)d;       /* wraps, like Lua */
			} else if (u > ((uint64_t)INT64_MAX - (uint64_t)d) / 10) {
				is_int = false;                 /* Lua makes it a float */
				break;
			} else {
				u = u * 10 + (uint64_t)d;
			}
		}
		if (hex && lx->pos == start + 2)
			is_int = false;                         /* "0x" alone */
		ival = (int64_t)u;
	}
	if (push_tok(lx, T_NUMBER, lx->line, start))
		return -1;
	t = &lx->toks[lx->ntoks - 1];
	t->is_int = is_int;
	t->ival = is_int ? ival : 0;
	return 0;
}

static bool is_keyword(const char *s, size_t len)
{
	for (int i = 0; keywords[i]; i++)
		if (strlen(keywords[i]) == len && memcmp(keywords[i], s, len) == 0)
			return true;
	return false;
}

/* Tokenize the whole buffer; always ends the array with T_EOF (when
 * memory allows). 0 or -1 with err. */
static int lex_all(struct lexer *lx)
{
	int rc = 0;

	if (lx->len > 0 && lx->src[0] == '#')           /* "#!..." first line */
		while (cur(lx) >= 0 && !is_nl(cur(lx)))
			lx->pos++;
	for (;;) {
		int c = cur(lx), line = lx->line, level;
		size_t start = lx->pos;

		if (c < 0)
			break;
		if (is_nl(c)) {
			inc_line(lx);
			continue;
		}
		if (c == ' ' || c == '\t' || c == '\f' || c == '\v') {
			lx->pos++;
			continue;
		}
		if (c == '-' && peek(lx, 1) == '-') {
			lx->pos += 2;
			if (cur(lx) == '[' && (level = long_level(lx)) >= 0) {
				rc = read_long(lx, level, "comment");
				if (rc)
					break;
			} else {
				while (cur(lx) >= 0 && !is_nl(cur(lx)))
					lx->pos++;
			}
			continue;
		}
		if (c == '[' && (level = long_level(lx)) >= 0) {
			rc = read_long(lx, level, "string");
			if (rc || (rc = push_tok(lx, T_STRING, line, start)))
				break;
			continue;
		}
		if (c == '"' || c == '\'') {
			rc = read_string(lx);
			if (rc || (rc = push_tok(lx, T_STRING, line, start)))
				break;
			continue;
		}
		if (is_digit(c) || (c == '.' && is_digit(peek(lx, 1)))) {
			rc = read_number(lx);
			if (rc)
				break;
			continue;
		}
		if (is_alpha(c)) {
			while (is_alpha(cur(lx)) || is_digit(cur(lx)))
				lx->pos++;
			rc = push_tok(lx, is_keyword(lx->src + start, lx->pos - start)
				      ? T_KEYWORD : T_NAME, line, start);
			if (rc)
				break;
			continue;
		}
		/* symbols: the multi-character ones first */
		lx->pos++;
		if ((c == '=' || c == '<' || c == '>' || c == '~') && cur(lx) == '=')
			lx->pos++;
		else if ((c == '<' || c == '>' || c == '/' || c == ':') && cur(lx) == c)
			lx->pos++;
		else if (c == '.' && cur(lx) == '.')
			lx->pos += peek(lx, 1) == '.' ? 2 : 1;
		rc = push_tok(lx, T_SYM, line, start);
		if (rc)
			break;
	}
	if (push_tok(lx, T_EOF, lx->line, lx->pos))
		return -1;
	return rc;
}

/* ----------------------------------------------------------- recognizer */

static const struct {
	const char *name;
	enum luascan_fn fn;
} callees[] = {
	{"push_file", LS_PUSH_FILE},
	{"depends_on_file", LS_DEPENDS_ON_FILE},
	{"require", LS_REQUIRE},
	{"vm_fixture", LS_VM_FIXTURE},
	{"lab_fixture", LS_LAB_FIXTURE},
	{"claim", LS_CLAIM},
};

enum block { B_FUNC, B_DO, B_IF, B_LOOP_HEAD, B_LOOP, B_REPEAT };

static bool tok_is(const struct token *t, enum tok_type type, const char *text)
{
	return t->type == type && t->len == strlen(text) &&
	       memcmp(t->s, text, t->len) == 0;
}

static bool sym(const struct token *t, const char *text)
{
	return tok_is(t, T_SYM, text);
}

static bool kw(const struct token *t, const char *text)
{
	return tok_is(t, T_KEYWORD, text);
}

static bool opens(const struct token *t)
{
	return sym(t, "(") || sym(t, "{") || sym(t, "[");
}

static bool closes(const struct token *t)
{
	return sym(t, ")") || sym(t, "}") || sym(t, "]");
}

/* Read the literal fields of the table constructor starting at toks[k]
 * ('{') into c. Only NAME = <single literal token> fields at the
 * constructor's own level count. */
static void table_fields(const struct token *toks, size_t k, struct luascan_call *c)
{
	int depth = 0;

	for (; toks[k].type != T_EOF; k++) {
		const struct token *t = &toks[k], *v;

		if (opens(t)) {
			depth++;
			continue;
		}
		if (closes(t)) {
			if (--depth == 0)
				return;
			continue;
		}
		if (depth != 1 || t->type != T_NAME || !sym(&toks[k + 1], "=") ||
		    !(sym(&toks[k - 1], "{") || sym(&toks[k - 1], ",") || sym(&toks[k - 1], ";")))
			continue;
		v = &toks[k + 2];
		if (v->type == T_EOF ||
		    !(sym(&toks[k + 3], ",") || sym(&toks[k + 3], ";") || sym(&toks[k + 3], "}")))
			continue;
		if (c->fn == LS_PUSH_FILE && tok_is(t, T_NAME, "auto_dep") && kw(v, "false")) {
			c->no_auto_dep = true;
		} else if (c->fn == LS_CLAIM && (tok_is(t, T_NAME, "memory") ||
					       tok_is(t, T_NAME, "memory_bytes"))) {
			uint64_t bytes;
			char err[128];

			if (v->type == T_NUMBER && v->is_int && v->ival >= 0) {
				c->has_memory = true;
				c->memory = (uint64_t)v->ival;
			} else if (v->type == T_STRING && strlen(v->str) == v->slen &&
				   parse_size_bytes(v->str, &bytes, err, sizeof err) == 0) {
				c->has_memory = true;
				c->memory = bytes;
			}
		} else if (c->fn == LS_CLAIM && tok_is(t, T_NAME, "cpus")) {
			if (v->type == T_NUMBER && v->is_int) {
				c->has_cpus = true;
				c->cpus = v->ival;
			}
		}
	}
}

/* Fill c from the arguments after the callee at toks[i]. */
static int call_args(const struct token *toks, size_t i, struct luascan_call *c,
		     char *err, size_t errlen)
{
	const struct token *a = &toks[i + 1], *first = NULL;
	int depth = 0;

	if (a->type == T_STRING) {
		first = a;
	} else if (sym(a, "{")) {
		table_fields(toks, i + 1, c);
	} else {
		/* '(' args ')' */
		if (toks[i + 2].type == T_STRING &&
		    (sym(&toks[i + 3], ",") || sym(&toks[i + 3], ")")))
			first = &toks[i + 2];
		for (size_t k = i + 1; toks[k].type != T_EOF; k++) {
			if (closes(&toks[k])) {
				if (--depth == 0)
					break;
			} else if (opens(&toks[k])) {
				if (depth == 1 && sym(&toks[k], "{") &&
				    (sym(&toks[k - 1], "(") || sym(&toks[k - 1], ",")))
					table_fields(toks, k, c);
				depth++;
			}
		}
	}
	if (first) {
		c->arg = malloc(first->slen + 1);
		if (!c->arg) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		memcpy(c->arg, first->str, first->slen + 1);
		c->arg_len = first->slen;
	}
	return 0;
}

static int push_tag(struct luascan_call *c, const struct token *t)
{
	char **nv = realloc(c->tags, (c->ntags + 1) * sizeof *nv);
	if (!nv)
		return -1;
	c->tags = nv;
	if (!(nv[c->ntags] = malloc(t->slen + 1)))
		return -1;
	memcpy(nv[c->ntags], t->str, t->slen + 1);
	c->ntags++;
	return 0;
}

/* test(NAME, {tags = ...}, fn): read the literal tags of the meta table,
 * the argument after the first top-level comma of the call at toks[i]
 * (callee) when it is a table constructor. */
static int test_meta(const struct token *toks, size_t i, struct luascan_call *c)
{
	size_t k = i + 2;
	int depth = 0;

	for (; toks[k].type != T_EOF; k++) {
		if (opens(&toks[k])) {
			depth++;
		} else if (closes(&toks[k])) {
			if (depth-- == 0)
				return 0; /* the call's `)`: no meta */
		} else if (depth == 0 && sym(&toks[k], ",")) {
			break;
		}
	}
	if (toks[k].type == T_EOF || !sym(&toks[k + 1], "{"))
		return 0;
	depth = 0;
	for (k = k + 1; toks[k].type != T_EOF; k++) {
		const struct token *t = &toks[k];

		if (opens(t)) {
			depth++;
			continue;
		}
		if (closes(t)) {
			if (--depth == 0)
				return 0;
			continue;
		}
		if (depth != 1 || !tok_is(t, T_NAME, "tags") || !sym(&toks[k + 1], "=") ||
		    !(sym(&toks[k - 1], "{") || sym(&toks[k - 1], ",") || sym(&toks[k - 1], ";")))
			continue;
		const struct token *v = &toks[k + 2];
		if (v->type == T_STRING &&
		    (sym(&toks[k + 3], ",") || sym(&toks[k + 3], ";") || sym(&toks[k + 3], "}")))
			return push_tag(c, v);
		if (!sym(v, "{")) {
			c->tags_dynamic = true;
			return 0;
		}
		/* {"a", "b"}: string literals only */
		for (size_t j = k + 3;; j += 2) {
			if (sym(&toks[j], "}"))
				return 0;
			if (toks[j].type != T_STRING ||
			    !(sym(&toks[j + 1], ",") || sym(&toks[j + 1], ";") || sym(&toks[j + 1], "}"))) {
				c->tags_dynamic = true;
				return 0;
			}
			if (push_tag(c, &toks[j]) < 0)
				return -1;
			if (sym(&toks[j + 1], "}"))
				return 0;
		}
	}
	return 0;
}

/* Whether the callee NAME at toks[i] is the end of a `function a.b:c`
 * definition head rather than a call. */
static bool is_definition(const struct token *toks, size_t i)
{
	size_t j = i;

	while (j >= 2 && (sym(&toks[j - 1], ".") || sym(&toks[j - 1], ":")) &&
	       toks[j - 2].type == T_NAME)
		j -= 2;
	return j >= 1 && kw(&toks[j - 1], "function");
}

static int add_call(struct luascan_result *out, size_t *cap, const struct luascan_call *c,
		    char *err, size_t errlen)
{
	if (out->ncalls == *cap) {
		size_t ncap = *cap ? *cap * 2 : 16;
		struct luascan_call *p = realloc(out->calls, ncap * sizeof *p);

		if (!p) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		out->calls = p;
		*cap = ncap;
	}
	out->calls[out->ncalls++] = *c;
	return 0;
}

static int recognize(const struct token *toks, size_t ntoks, struct luascan_result *out,
		     char *err, size_t errlen)
{
	enum block *stack = NULL;
	size_t depth = 0, scap = 0, cap = 0;
	int funcs = 0, rc = 0;

	for (size_t i = 0; i < ntoks && toks[i].type != T_EOF; i++) {
		const struct token *t = &toks[i];
		enum block push;

		if (t->type == T_KEYWORD) {
			if (kw(t, "function"))
				push = B_FUNC;
			else if (kw(t, "if"))
				push = B_IF;
			else if (kw(t, "while") || kw(t, "for"))
				push = B_LOOP_HEAD;
			else if (kw(t, "repeat"))
				push = B_REPEAT;
			else if (kw(t, "do") && depth && stack[depth - 1] == B_LOOP_HEAD) {
				stack[depth - 1] = B_LOOP;
				continue;
			} else if (kw(t, "do"))
				push = B_DO;
			else if (kw(t, "end") || kw(t, "until")) {
				if (depth && stack[--depth] == B_FUNC)
					funcs--;
				continue;
			} else
				continue;
			if (depth == scap) {
				size_t ncap = scap ? scap * 2 : 32;
				enum block *p = realloc(stack, ncap * sizeof *p);

				if (!p) {
					snprintf(err, errlen, "out of memory");
					rc = -1;
					goto out;
				}
				stack = p;
				scap = ncap;
			}
			stack[depth++] = push;
			if (push == B_FUNC)
				funcs++;
			continue;
		}
		if (t->type != T_NAME)
			continue;
		if (tok_is(t, T_NAME, "test") && sym(&toks[i + 1], "(") && !is_definition(toks, i) &&
		    !(i > 0 && (sym(&toks[i - 1], ".") || sym(&toks[i - 1], ":")))) {
			struct luascan_call c;

			memset(&c, 0, sizeof c);
			c.fn = LS_TEST;
			c.line = t->line;
			c.at_top_level = funcs == 0;
			if (call_args(toks, i, &c, err, errlen) || test_meta(toks, i, &c) < 0 ||
			    add_call(out, &cap, &c, err, errlen)) {
				free(c.arg);
				for (size_t j = 0; j < c.ntags; j++)
					free(c.tags[j]);
				free(c.tags);
				snprintf(err, errlen, "out of memory");
				rc = -1;
				goto out;
			}
			continue;
		}
		for (size_t n = 0; n < sizeof callees / sizeof callees[0]; n++) {
			struct luascan_call c;
			const struct token *next = &toks[i + 1];

			if (!tok_is(t, T_NAME, callees[n].name))
				continue;
			if (!(next->type == T_STRING || sym(next, "(") || sym(next, "{")))
				break;
			if (is_definition(toks, i))
				break;
			memset(&c, 0, sizeof c);
			c.fn = callees[n].fn;
			c.line = t->line;
			c.at_top_level = funcs == 0;
			if (call_args(toks, i, &c, err, errlen) ||
			    add_call(out, &cap, &c, err, errlen)) {
				free(c.arg);
				rc = -1;
				goto out;
			}
			break;
		}
	}
out:
	free(stack);
	return rc;
}

int luascan_buffer(const char *src, size_t len, struct luascan_result *out, char *err, size_t errlen)
{
	struct lexer lx;
	int rc, rrc;
	char rerr[64];

	memset(out, 0, sizeof *out);
	memset(&lx, 0, sizeof lx);
	lx.src = src;
	lx.len = len;
	lx.line = 1;
	lx.err = err;
	lx.errlen = errlen;
	if (errlen)
		err[0] = '\0';
	rc = lex_all(&lx);
	if (lx.ntoks == 0 || lx.toks[lx.ntoks - 1].type != T_EOF) {
		/* no room for the EOF sentinel: nothing can be recognized */
		rc = -1;
	} else {
		rrc = recognize(lx.toks, lx.ntoks, out, rerr, sizeof rerr);
		if (rrc && rc == 0) {
			snprintf(err, errlen, "%s", rerr);
			rc = -1;
		}
	}
	for (size_t i = 0; i < lx.ntoks; i++)
		free(lx.toks[i].str);
	free(lx.toks);
	free(lx.buf);
	return rc;
}

int luascan_file(const char *path, struct luascan_result *out, char *err, size_t errlen)
{
	int fd, rc = -1, saved;
	struct stat st;
	char *buf = NULL;
	size_t len = 0, cap;
	ssize_t n;

	memset(out, 0, sizeof *out);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		saved = errno;
		snprintf(err, errlen, "%s: %s", path, strerror(saved));
		errno = saved;
		return -1;
	}
	if (fstat(fd, &st) < 0)
		goto fail;
	cap = st.st_size > 0 ? (size_t)st.st_size + 1 : 4096;
	buf = malloc(cap);
	if (!buf)
		goto fail;
	for (;;) {
		if (len == cap) {
			char *p = realloc(buf, cap * 2);

			if (!p)
				goto fail;
			buf = p;
			cap *= 2;
		}
		n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto fail;
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	fd = -1;
	rc = luascan_buffer(buf, len, out, err, errlen);
	if (rc) {
		/* prefix the path: "<path>: line N: ..." */
		char tmp[256];

		snprintf(tmp, sizeof tmp, "%s", err);
		snprintf(err, errlen, "%s: %s", path, tmp);
	}
	free(buf);
	return rc;
fail:
	saved = errno;
	snprintf(err, errlen, "%s: %s", path, strerror(saved));
	free(buf);
	if (fd >= 0)
		close(fd);
	errno = saved;
	return -1;
}

void luascan_free(struct luascan_result *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->ncalls; i++) {
		free(r->calls[i].arg);
		for (size_t j = 0; j < r->calls[i].ntags; j++)
			free(r->calls[i].tags[j]);
		free(r->calls[i].tags);
	}
	free(r->calls);
	r->calls = NULL;
	r->ncalls = 0;
}
