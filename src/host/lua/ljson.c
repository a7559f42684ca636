/* ljson.c — the `json` Lua global: json.encode(value) and json.decode(str).
 *
 * Pure host-side, no state beyond one metatable ("provium.jsonbuf") for the
 * encoder's output buffer. Both functions raise on error with a message
 * starting "json.encode: " / "json.decode: ".
 *
 * Encoding (Lua -> JSON text):
 *   nil -> null, booleans, integers exactly (64-bit), floats with the
 *   shortest digits that read back to the same double, laid out as
 *   serde_json writes them (1.5, 1e16, 1e-7); an integral float keeps a
 *   ".0" so it decodes back as a float. NaN and
 *   infinities raise (JSON has no spelling for them).
 *   Strings: '"', '\\' and control bytes are escaped (\n, \t, ... or
 *   \u00XX), everything else is written as is. A string that is not valid
 *   UTF-8 RAISES (we never emit invalid JSON and never silently reinterpret
 *   bytes); encode binary data yourself (hex, base64) first.
 *   Tables: keys that are all positive integers -> array of length
 *   max(key), gaps written as null. Anything else -> object; integer and
 *   float keys are stringified (a number key that collides with a string
 *   key of the same spelling raises), other key types raise. Object keys
 *   are written in byte order so the output is deterministic. The EMPTY
 *   TABLE encodes as {} (an object), always. Sparse arrays whose max index
 *   exceeds 2^20 while less than half filled raise instead of producing a
 *   huge run of nulls. Metatables are ignored (raw access). Cycles,
 *   functions, userdata and threads raise; nesting deeper than
 *   JSON_MAX_DEPTH raises.
 *
 * Decoding (JSON text -> Lua), our own parser (RFC 8259 grammar):
 *   integers in [i64 min, i64 max] -> exact Lua integers; integers above
 *   i64 max up to u64 max -> the same 64-bit pattern as a Lua integer
 *   (18446744073709551615 -> -1, like tonumber("0xFFFFFFFFFFFFFFFF"));
 *   larger integers and anything with a fraction or exponent -> float
 *   (1e400 overflows to math.huge, as strtod does). "-0" is integer 0.
 *   null -> nil: an object member with a null value is absent, an array
 *   element is a hole. Duplicate object keys: the last one wins.
 *   \uXXXX escapes are decoded to UTF-8 (surrogate pairs combined, lone
 *   surrogates raise); raw bytes >= 0x80 inside strings are passed
 *   through unchecked. Raw control bytes in strings, trailing non-space
 *   text and nesting deeper than JSON_MAX_DEPTH raise. Every decode error
 *   names its position: "json.decode: <what> at line L column C" (1-based,
 *   columns count bytes).
 *
 * Memory: the encoder's growing buffer lives in a userdata with __gc, the
 * decoder builds strings with luaL_Buffer, so an error raised at any
 * point leaks nothing. Stack growth is checked with luaL_checkstack.
 */
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lua.h>
#include <lauxlib.h>

#include "utf8.h"
#include "lua/ljson.h"

#define JSON_MAX_DEPTH 512
#define JSON_MAX_SPARSE (1 << 20)
#define JBUF_MT "provium.jsonbuf"

/* ------------------------------------------------------------- encoding */

struct jbuf {
	char *p;
	size_t len, cap;
};

struct enc {
	lua_State *L;
	struct jbuf *b;
	int visiting;   /* stack index of the set of tables being encoded */
	int depth;
};

/* __gc of the output buffer userdata; safe to call twice. */
static int jbuf_gc(lua_State *L)
{
	struct jbuf *b = luaL_checkudata(L, 1, JBUF_MT);

	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
	return 0;
}

/* Append n bytes to the output; raises on out-of-memory. */
static void put(struct enc *e, const char *s, size_t n)
{
	struct jbuf *b = e->b;

	if (b->cap - b->len < n) {
		size_t cap = b->cap ? b->cap : 256;
		char *np;

		while (cap - b->len < n)
			cap *= 2;
		np = realloc(b->p, cap);
		if (!np)
			luaL_error(e->L, "json.encode: out of memory");
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

static void puts_(struct enc *e, const char *s)
{
	put(e, s, strlen(s));
}

/* Write s as a JSON string literal; raises when s is not valid UTF-8. */
static void encode_string(struct enc *e, const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t ok = utf8_valid_prefix(u, len), run = 0;

	if (ok != len) {
		char msg[96];

		snprintf(msg, sizeof msg, "byte 0x%02X at offset %zu", (unsigned)u[ok], ok);
		luaL_error(e->L, "json.encode: string is not valid UTF-8 (%s)", msg);
	}
	put(e, "\"", 1);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = u[i];
		const char *esc = NULL;
		char hex[8];

		switch (c) {
		case '"': esc = "\\\""; break;
		case '\\': esc = "\\\\"; break;
		case '\b': esc = "\\b"; break;
		case '\f': esc = "\\f"; break;
		case '\n': esc = "\\n"; break;
		case '\r': esc = "\\r"; break;
		case '\t': esc = "\\t"; break;
		default:
			if (c < 0x20 || c == 0x7F) {
				snprintf(hex, sizeof hex, "\\u%04x", c);
				esc = hex;
			}
		}
		if (!esc) {
			run++;
			continue;
		}
		put(e, s + i - run, run);
		run = 0;
		puts_(e, esc);
	}
	put(e, s + len - run, run);
	put(e, "\"", 1);
}

/* Write a finite double so that it reads back bit-identical, and as a
 * float (an integral value gets ".0"), in the layout serde_json (ryu)
 * uses: the shortest round-tripping digits, plain notation for decimal
 * exponents in [-5, 16) ("1e15" -> 1000000000000000.0, 0.0001), else
 * scientific with a bare exponent (1e16, 1.5e-7, 5e-324). Raises on NaN /
 * infinity. */
static void encode_float(struct enc *e, double d)
{
	char sci[48], digits[24], out[64];
	int len = 0, exp10, kk, o = 0;

	if (isnan(d))
		luaL_error(e->L, "json.encode: cannot encode NaN (JSON has no NaN)");
	if (isinf(d))
		luaL_error(e->L, "json.encode: cannot encode %s (JSON has no infinity)",
			   d > 0 ? "inf" : "-inf");
	if (d == 0) {
		puts_(e, signbit(d) ? "-0.0" : "0.0");
		return;
	}
	/* Shortest "%.Ne" that reads back: d.ddde[+-]XX (locale-proof parse). */
	for (int prec = 0; prec <= 17; prec++) {
		snprintf(sci, sizeof sci, "%.*e", prec, d);
		if (strtod(sci, NULL) == d)
			break;
	}
	{
		const char *c = sci, *ep = strpbrk(sci, "eE");

		for (; c < ep; c++)
			if (*c >= '0' && *c <= '9')
				digits[len++] = *c;
		exp10 = atoi(ep + 1);
	}
	while (len > 1 && digits[len - 1] == '0')
		len--;
	digits[len] = '\0';
	kk = exp10 + 1;              /* value = 0.DIGITS * 10^kk */
	if (d < 0)
		out[o++] = '-';
	if (kk >= len && kk <= 16) {         /* 1234e7 -> 12340000000.0 */
		o += sprintf(out + o, "%s", digits);
		for (int i = len; i < kk; i++)
			out[o++] = '0';
		o += sprintf(out + o, ".0");
	} else if (kk > 0 && kk <= 16) {     /* 1234e-2 -> 12.34 */
		o += sprintf(out + o, "%.*s.%s", kk, digits, digits + kk);
	} else if (kk > -5 && kk <= 0) {     /* 1234e-6 -> 0.001234 */
		o += sprintf(out + o, "0.");
		for (int i = kk; i < 0; i++)
			out[o++] = '0';
		o += sprintf(out + o, "%s", digits);
	} else if (len == 1) {               /* 1e30 */
		o += sprintf(out + o, "%se%d", digits, kk - 1);
	} else {                             /* 1234e30 -> 1.234e33 */
		o += sprintf(out + o, "%c.%se%d", digits[0], digits + 1, kk - 1);
	}
	out[o] = '\0';
	puts_(e, out);
}

static void encode_value(struct enc *e, int idx);

struct keyref {
	const char *s;
	size_t len;
};

static int keyref_cmp(const void *a, const void *b)
{
	const struct keyref *x = a, *y = b;
	size_t n = x->len < y->len ? x->len : y->len;
	int c = memcmp(x->s, y->s, n);

	if (c)
		return c;
	return x->len < y->len ? -1 : x->len > y->len;
}

/* Write table t (absolute index) as a JSON object with sorted keys. */
static void encode_object(struct enc *e, int t, size_t count)
{
	lua_State *L = e->L;
	int keys, origs;
	size_t n = 0;
	struct keyref *refs;

	lua_createtable(L, (int)count, 0);          /* i -> key string */
	keys = lua_gettop(L);
	lua_createtable(L, 0, (int)count);          /* key string -> original key */
	origs = lua_gettop(L);
	lua_pushnil(L);
	while (lua_next(L, t)) {
		lua_pop(L, 1);
		switch (lua_type(L, -1)) {
		case LUA_TSTRING:
			lua_pushvalue(L, -1);
			break;
		case LUA_TNUMBER:
			if (!lua_isinteger(L, -1) && !isfinite(lua_tonumber(L, -1)))
				luaL_error(L, "json.encode: table key %f cannot be an object key",
					   (LUAI_UACNUMBER)lua_tonumber(L, -1));
			lua_pushvalue(L, -1);
			lua_tostring(L, -1);    /* converts the copy only */
			break;
		default:
			luaL_error(L, "json.encode: table key must be a string or a number, not a %s",
				   luaL_typename(L, -1));
		}
		/* stack: ... key keystr */
		lua_pushvalue(L, -1);
		if (lua_rawget(L, origs) != LUA_TNIL)
			luaL_error(L, "json.encode: table has key \"%s\" both as a number and as a string",
				   lua_tostring(L, -2));
		lua_pop(L, 1);
		lua_pushvalue(L, -1);
		lua_rawseti(L, keys, (lua_Integer)++n);
		lua_pushvalue(L, -2);
		lua_rawset(L, origs);                   /* origs[keystr] = key */
	}
	refs = lua_newuserdatauv(L, n * sizeof *refs + 1, 0);
	for (size_t i = 0; i < n; i++) {
		lua_rawgeti(L, keys, (lua_Integer)i + 1);
		refs[i].s = lua_tolstring(L, -1, &refs[i].len); /* kept alive by keys */
		lua_pop(L, 1);
	}
	qsort(refs, n, sizeof *refs, keyref_cmp);
	put(e, "{", 1);
	for (size_t i = 0; i < n; i++) {
		if (i)
			put(e, ",", 1);
		encode_string(e, refs[i].s, refs[i].len);
		put(e, ":", 1);
		lua_pushlstring(L, refs[i].s, refs[i].len);
		lua_rawget(L, origs);
		lua_rawget(L, t);
		encode_value(e, lua_gettop(L));
		lua_pop(L, 1);
	}
	put(e, "}", 1);
	lua_pop(L, 3);                                  /* keys, origs, refs */
}

/* Write the table at absolute index t (array, object or {}). */
static void encode_table(struct enc *e, int t)
{
	lua_State *L = e->L;
	lua_Integer max = 0;
	size_t count = 0;
	bool is_array = true;

	luaL_checkstack(L, 8, "json.encode: nesting too deep");
	if (e->depth >= JSON_MAX_DEPTH)
		luaL_error(L, "json.encode: nesting deeper than %d levels", JSON_MAX_DEPTH);
	lua_pushvalue(L, t);
	if (lua_rawget(L, e->visiting) != LUA_TNIL)
		luaL_error(L, "json.encode: cannot encode a table that contains itself (cycle)");
	lua_pop(L, 1);
	lua_pushvalue(L, t);
	lua_pushboolean(L, 1);
	lua_rawset(L, e->visiting);
	e->depth++;

	lua_pushnil(L);
	while (lua_next(L, t)) {
		lua_pop(L, 1);
		count++;
		if (lua_isinteger(L, -1) && lua_tointeger(L, -1) >= 1) {
			if (lua_tointeger(L, -1) > max)
				max = lua_tointeger(L, -1);
		} else {
			is_array = false;
		}
	}
	if (count == 0) {
		put(e, "{}", 2);
	} else if (is_array) {
		if (max > JSON_MAX_SPARSE && (lua_Unsigned)max / 2 > count)
			luaL_error(L, "json.encode: array too sparse (max index %I, %d elements)",
				   (LUAI_UACINT)max, (int)count);
		put(e, "[", 1);
		for (lua_Integer i = 1; i <= max; i++) {
			if (i > 1)
				put(e, ",", 1);
			lua_rawgeti(L, t, i);
			encode_value(e, lua_gettop(L));
			lua_pop(L, 1);
		}
		put(e, "]", 1);
	} else {
		encode_object(e, t, count);
	}

	e->depth--;
	lua_pushvalue(L, t);
	lua_pushnil(L);
	lua_rawset(L, e->visiting);
}

/* Write the value at absolute index idx. */
static void encode_value(struct enc *e, int idx)
{
	lua_State *L = e->L;
	char buf[32];
	size_t len;
	const char *s;

	switch (lua_type(L, idx)) {
	case LUA_TNIL:
		put(e, "null", 4);
		break;
	case LUA_TBOOLEAN:
		puts_(e, lua_toboolean(L, idx) ? "true" : "false");
		break;
	case LUA_TNUMBER:
		if (lua_isinteger(L, idx)) {
			snprintf(buf, sizeof buf, LUA_INTEGER_FMT,
				 (LUAI_UACINT)lua_tointeger(L, idx));
			puts_(e, buf);
		} else {
			encode_float(e, (double)lua_tonumber(L, idx));
		}
		break;
	case LUA_TSTRING:
		s = lua_tolstring(L, idx, &len);
		encode_string(e, s, len);
		break;
	case LUA_TTABLE:
		encode_table(e, idx);
		break;
	default:
		luaL_error(L, "json.encode: cannot encode a %s value", luaL_typename(L, idx));
	}
}

/* json.encode(value) -> string */
static int json_encode(lua_State *L)
{
	struct enc e;

	lua_settop(L, 1);
	e.L = L;
	e.b = lua_newuserdatauv(L, sizeof *e.b, 0);
	memset(e.b, 0, sizeof *e.b);
	luaL_setmetatable(L, JBUF_MT);
	lua_newtable(L);
	e.visiting = lua_gettop(L);
	e.depth = 0;
	encode_value(&e, 1);
	lua_pushlstring(L, e.b->p, e.b->len);
	free(e.b->p);
	e.b->p = NULL;
	return 1;
}

/* ------------------------------------------------------------- decoding */

struct dec {
	lua_State *L;
	const char *s, *p, *end;
	int depth;
};

/* Raise "json.decode: <msg> at line L column C" for position pos. */
__attribute__((format(printf, 3, 4), noreturn))
static void dec_error(struct dec *d, const char *pos, const char *fmt, ...)
{
	char msg[160];
	va_list ap;
	int line = 1;
	const char *bol = d->s;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	for (const char *c = d->s; c < pos; c++)
		if (*c == '\n') {
			line++;
			bol = c + 1;
		}
	luaL_error(d->L, "json.decode: %s at line %d column %d", msg, line,
		   (int)(pos - bol) + 1);
	__builtin_unreachable();
}

/* Raise about whatever is at d->p (a character, a byte or end of input). */
__attribute__((noreturn))
static void dec_unexpected(struct dec *d)
{
	unsigned char c;

	if (d->p >= d->end)
		dec_error(d, d->p, "unexpected end of input");
	c = (unsigned char)*d->p;
	if (c > 0x20 && c < 0x7F)
		dec_error(d, d->p, "unexpected character '%c'", c);
	dec_error(d, d->p, "unexpected byte 0x%02X", c);
}

static void skip_ws(struct dec *d)
{
	while (d->p < d->end && (*d->p == ' ' || *d->p == '\t' ||
				 *d->p == '\n' || *d->p == '\r'))
		d->p++;
}

static void parse_value(struct dec *d);

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

/* Read the 4 hex digits of a \u escape at d->p (just after "\u"). */
static unsigned read_hex4(struct dec *d)
{
	unsigned v = 0;

	for (int i = 0; i < 4; i++) {
		int h = d->p < d->end ? hexval((unsigned char)*d->p) : -1;

		if (h < 0) {
			if (d->p >= d->end)
				dec_unexpected(d);
			dec_error(d, d->p, "invalid \\u escape");
		}
		v = v << 4 | (unsigned)h;
		d->p++;
	}
	return v;
}

/* Encode code point cp as UTF-8 into out; returns the length. */
static int utf8_put(char *out, unsigned cp)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	} else if (cp < 0x800) {
		out[0] = (char)(0xC0 | cp >> 6);
		out[1] = (char)(0x80 | (cp & 0x3F));
		return 2;
	} else if (cp < 0x10000) {
		out[0] = (char)(0xE0 | cp >> 12);
		out[1] = (char)(0x80 | (cp >> 6 & 0x3F));
		out[2] = (char)(0x80 | (cp & 0x3F));
		return 3;
	}
	out[0] = (char)(0xF0 | cp >> 18);
	out[1] = (char)(0x80 | (cp >> 12 & 0x3F));
	out[2] = (char)(0x80 | (cp >> 6 & 0x3F));
	out[3] = (char)(0x80 | (cp & 0x3F));
	return 4;
}

/* d->p at the opening quote; pushes the decoded string. */
static void parse_string(struct dec *d)
{
	const char *start = ++d->p, *q = start;
	luaL_Buffer b;

	while (q < d->end && *q != '"' && *q != '\\' && (unsigned char)*q >= 0x20)
		q++;
	if (q < d->end && *q == '"') {
		lua_pushlstring(d->L, start, (size_t)(q - start));
		d->p = q + 1;
		return;
	}
	luaL_buffinit(d->L, &b);
	luaL_addlstring(&b, start, (size_t)(q - start));
	d->p = q;
	for (;;) {
		const char *esc;
		unsigned char c;
		char u8[4];
		unsigned cp;

		if (d->p >= d->end)
			dec_error(d, start - 1, "unterminated string");
		c = (unsigned char)*d->p;
		if (c == '"') {
			d->p++;
			break;
		}
		if (c < 0x20)
			dec_error(d, d->p, "control character 0x%02X in string", c);
		if (c != '\\') {
			luaL_addchar(&b, (char)c);
			d->p++;
			continue;
		}
		esc = d->p++;
		if (d->p >= d->end)
			dec_error(d, start - 1, "unterminated string");
		switch (*d->p++) {
		case '"': luaL_addchar(&b, '"'); break;
		case '\\': luaL_addchar(&b, '\\'); break;
		case '/': luaL_addchar(&b, '/'); break;
		case 'b': luaL_addchar(&b, '\b'); break;
		case 'f': luaL_addchar(&b, '\f'); break;
		case 'n': luaL_addchar(&b, '\n'); break;
		case 'r': luaL_addchar(&b, '\r'); break;
		case 't': luaL_addchar(&b, '\t'); break;
		case 'u':
			cp = read_hex4(d);
			if (cp >= 0xDC00 && cp <= 0xDFFF)
				dec_error(d, esc, "lone low surrogate in \\u escape");
			if (cp >= 0xD800 && cp <= 0xDBFF) {
				unsigned lo;

				if (d->end - d->p < 2 || d->p[0] != '\\' || d->p[1] != 'u')
					dec_error(d, esc, "lone high surrogate in \\u escape");
				d->p += 2;
				lo = read_hex4(d);
				if (lo < 0xDC00 || lo > 0xDFFF)
					dec_error(d, esc, "invalid surrogate pair in \\u escape");
				cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
			}
			luaL_addlstring(&b, u8, (size_t)utf8_put(u8, cp));
			break;
		default:
			dec_error(d, esc, "invalid escape '\\%c'",
				  isprint((unsigned char)d->p[-1]) ? d->p[-1] : '?');
		}
	}
	luaL_pushresult(&b);
}

static bool isdig(struct dec *d)
{
	return d->p < d->end && *d->p >= '0' && *d->p <= '9';
}

/* d->p at '-' or a digit; pushes an integer or a float. */
static void parse_number(struct dec *d)
{
	const char *start = d->p, *digits;
	bool neg = false, is_float = false;

	if (*d->p == '-') {
		neg = true;
		d->p++;
	}
	digits = d->p;
	if (!isdig(d))
		dec_unexpected(d);
	if (*d->p == '0')
		d->p++;
	else
		while (isdig(d))
			d->p++;
	if (d->p < d->end && *d->p == '.') {
		is_float = true;
		d->p++;
		if (!isdig(d))
			dec_unexpected(d);
		while (isdig(d))
			d->p++;
	}
	if (d->p < d->end && (*d->p == 'e' || *d->p == 'E')) {
		is_float = true;
		d->p++;
		if (d->p < d->end && (*d->p == '+' || *d->p == '-'))
			d->p++;
		if (!isdig(d))
			dec_unexpected(d);
		while (isdig(d))
			d->p++;
	}
	if (!is_float) {
		uint64_t mag = 0;
		bool overflow = false;

		for (const char *c = digits; c < d->p; c++) {
			unsigned dig = (unsigned)(*c - '0');

			if (mag > (UINT64_MAX - dig) / 10) {
				overflow = true;
				break;
			}
			mag = mag * 10 + dig;
		}
		if (!overflow && !neg) {
			/* above i64 max: same bit pattern, like 0xFFFF... in Lua */
			lua_pushinteger(d->L, (lua_Integer)mag);
			return;
		}
		if (!overflow && mag <= (uint64_t)INT64_MAX + 1) {
			lua_pushinteger(d->L, (lua_Integer)(0 - mag));
			return;
		}
	}
	{
		char buf[64];
		size_t n = (size_t)(d->p - start);

		if (n < sizeof buf) {
			memcpy(buf, start, n);
			buf[n] = '\0';
			lua_pushnumber(d->L, (lua_Number)strtod(buf, NULL));
		} else {
			double v;

			lua_pushlstring(d->L, start, n);
			v = strtod(lua_tostring(d->L, -1), NULL);
			lua_pop(d->L, 1);
			lua_pushnumber(d->L, (lua_Number)v);
		}
	}
}

/* d->p at the given literal's first character; checks the rest. */
static void parse_literal(struct dec *d, const char *lit)
{
	size_t n = strlen(lit);

	for (size_t i = 0; i < n; i++, d->p++)
		if (d->p >= d->end || *d->p != lit[i])
			dec_unexpected(d);
}

static void enter(struct dec *d)
{
	if (++d->depth > JSON_MAX_DEPTH)
		dec_error(d, d->p, "nesting deeper than %d levels", JSON_MAX_DEPTH);
	luaL_checkstack(d->L, 4, "json.decode: nesting too deep");
}

static void parse_array(struct dec *d)
{
	lua_Integer i = 1;

	enter(d);
	lua_newtable(d->L);
	d->p++;
	skip_ws(d);
	if (d->p < d->end && *d->p == ']') {
		d->p++;
		d->depth--;
		return;
	}
	for (;; i++) {
		parse_value(d);
		if (lua_isnil(d->L, -1))
			lua_pop(d->L, 1);       /* null: leave a hole */
		else
			lua_rawseti(d->L, -2, i);
		skip_ws(d);
		if (d->p < d->end && *d->p == ',') {
			d->p++;
			continue;
		}
		if (d->p < d->end && *d->p == ']') {
			d->p++;
			break;
		}
		dec_unexpected(d);
	}
	d->depth--;
}

static void parse_object(struct dec *d)
{
	enter(d);
	lua_newtable(d->L);
	d->p++;
	skip_ws(d);
	if (d->p < d->end && *d->p == '}') {
		d->p++;
		d->depth--;
		return;
	}
	for (;;) {
		skip_ws(d);
		if (d->p >= d->end || *d->p != '"')
			dec_unexpected(d);
		parse_string(d);
		skip_ws(d);
		if (d->p >= d->end || *d->p != ':')
			dec_unexpected(d);
		d->p++;
		parse_value(d);
		if (lua_isnil(d->L, -1))
			lua_pop(d->L, 2);       /* null member: key absent */
		else
			lua_rawset(d->L, -3);
		skip_ws(d);
		if (d->p < d->end && *d->p == ',') {
			d->p++;
			continue;
		}
		if (d->p < d->end && *d->p == '}') {
			d->p++;
			break;
		}
		dec_unexpected(d);
	}
	d->depth--;
}

/* Parse one value at d->p (after optional whitespace); pushes it. */
static void parse_value(struct dec *d)
{
	skip_ws(d);
	if (d->p >= d->end)
		dec_unexpected(d);
	switch (*d->p) {
	case '{':
		parse_object(d);
		break;
	case '[':
		parse_array(d);
		break;
	case '"':
		parse_string(d);
		break;
	case 't':
		parse_literal(d, "true");
		lua_pushboolean(d->L, 1);
		break;
	case 'f':
		parse_literal(d, "false");
		lua_pushboolean(d->L, 0);
		break;
	case 'n':
		parse_literal(d, "null");
		lua_pushnil(d->L);
		break;
	default:
		if (*d->p == '-' || (*d->p >= '0' && *d->p <= '9'))
			parse_number(d);
		else
			dec_unexpected(d);
	}
}

/* json.decode(str) -> value */
static int json_decode(lua_State *L)
{
	size_t len;
	struct dec d;

	d.s = luaL_checklstring(L, 1, &len);
	d.L = L;
	d.p = d.s;
	d.end = d.s + len;
	d.depth = 0;
	lua_settop(L, 1);
	parse_value(&d);
	skip_ws(&d);
	if (d.p < d.end) {
		unsigned char c = (unsigned char)*d.p;

		if (c > 0x20 && c < 0x7F)
			dec_error(&d, d.p, "unexpected trailing character '%c'", c);
		dec_error(&d, d.p, "unexpected trailing byte 0x%02X", c);
	}
	return 1;
}

static const luaL_Reg json_funcs[] = {
	{"encode", json_encode},
	{"decode", json_decode},
	{NULL, NULL}
};

int luaopen_provium_json(lua_State *L)
{
	if (luaL_newmetatable(L, JBUF_MT)) {
		lua_pushcfunction(L, jbuf_gc);
		lua_setfield(L, -2, "__gc");
	}
	lua_pop(L, 1);
	luaL_newlib(L, json_funcs);
	return 1;
}
