/* units.c — duration and size strings (see units.h for the accepted forms).
 *
 * Owns the grammar of the two little languages users type in provium.toml,
 * on the command line and in Lua (timeouts, memory sizes):
 *   duration = number [ "ns" | "us" | "ms" | "s" | "m" | "h" ]   (bare = seconds)
 *   size     = number [ ("K"|"M"|"G"|"T") [ "B" | "iB" ] ]       (binary multiples)
 *   number   = digits [ "." digits ] | "." digits
 * Numbers are parsed by hand (not strtod) so that "inf", "1e9", "0x10",
 * signs and spaces are all rejected. Results are exact for integers and
 * rounded to the nearest unit for fractions; overflow is an error.
 *
 * Error contract: 0 on success, -1 with a one-line message naming the input
 * ("bad duration `abc`") in err; *out is untouched on error. */
#include "units.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* A non-negative decimal number at *s: integer part in *ip (saturated flag
 * in *big), fraction in *frac (0 <= frac < 1). Advances *s. 0 or -1. */
static int scan_number(const char **s, uint64_t *ip, double *frac, int *big)
{
	const char *p = *s;
	int ndig = 0;
	double scale = 0.1;
	*ip = 0;
	*frac = 0;
	*big = 0;
	while (*p >= '0' && *p <= '9') {
		unsigned d = (unsigned)(*p - '0');
		if (*ip > (UINT64_MAX - d) / 10)
			*big = 1;
		else
			*ip = *ip * 10 + d;
		p++;
		ndig++;
	}
	if (*p == '.') {
		p++;
		if (!(*p >= '0' && *p <= '9'))
			return -1;
		while (*p >= '0' && *p <= '9') {
			*frac += (*p - '0') * scale;
			scale /= 10;
			p++;
			ndig++;
		}
	}
	if (!ndig)
		return -1;
	*s = p;
	return 0;
}

/* ip + frac times unit, rounded; -1 on overflow of limit. */
static int scale_to(uint64_t ip, double frac, uint64_t unit, uint64_t limit, uint64_t *out)
{
	uint64_t whole, part;
	if (unit && ip > limit / unit)
		return -1;
	whole = ip * unit;
	part = (uint64_t)llround(frac * (double)unit);
	if (part > limit - whole)
		return -1;
	*out = whole + part;
	return 0;
}

int parse_duration_ns(const char *s, int64_t *out_ns, char *err, size_t errlen)
{
	static const struct { const char *suffix; uint64_t ns; } units[] = {
		{"", 1000000000ull}, {"s", 1000000000ull}, {"ms", 1000000ull},
		{"us", 1000ull}, {"ns", 1ull}, {"m", 60000000000ull},
		{"h", 3600000000000ull},
	};
	const char *p = s;
	uint64_t ip, v;
	double frac;
	int big;
	size_t i;

	if (!s) {
		snprintf(err, errlen, "bad duration (none given)");
		return -1;
	}
	if (*p == '-') {
		snprintf(err, errlen, "bad duration `%s`: must not be negative", s);
		return -1;
	}
	if (scan_number(&p, &ip, &frac, &big) < 0)
		goto bad;
	for (i = 0; i < sizeof units / sizeof units[0]; i++) {
		if (strcmp(p, units[i].suffix) != 0)
			continue;
		if (big || scale_to(ip, frac, units[i].ns, INT64_MAX, &v) < 0) {
			snprintf(err, errlen, "bad duration `%s`: too large", s);
			return -1;
		}
		*out_ns = (int64_t)v;
		return 0;
	}
bad:
	snprintf(err, errlen, "bad duration `%s` (expected seconds, or a number with ms, s, m or h)",
		 s);
	return -1;
}

int parse_size_bytes(const char *s, uint64_t *out, char *err, size_t errlen)
{
	const char *p = s;
	uint64_t ip, unit = 1, v;
	double frac;
	int big, shift = 0;

	if (!s) {
		snprintf(err, errlen, "bad size (none given)");
		return -1;
	}
	if (*p == '-') {
		snprintf(err, errlen, "bad size `%s`: must not be negative", s);
		return -1;
	}
	if (scan_number(&p, &ip, &frac, &big) < 0)
		goto bad;
	switch (*p) {
	case 'K': case 'k': shift = 10; break;
	case 'M': case 'm': shift = 20; break;
	case 'G': case 'g': shift = 30; break;
	case 'T': case 't': shift = 40; break;
	case 'B': case 'b': break;
	case 0: break;
	default: goto bad;
	}
	if (shift) {
		p++;
		unit = 1ull << shift;
		if (*p == 'i' && (p[1] == 'B' || p[1] == 'b'))
			p += 2;
		else if (*p == 'B' || *p == 'b')
			p++;
	} else if (*p) {
		p++; /* plain "B" */
	}
	if (*p)
		goto bad;
	if (!shift && frac != 0)
		goto bad; /* fractional bytes */
	if (big || scale_to(ip, frac, unit, UINT64_MAX, &v) < 0) {
		snprintf(err, errlen, "bad size `%s`: too large", s);
		return -1;
	}
	*out = v;
	return 0;
bad:
	snprintf(err, errlen, "bad size `%s` (expected bytes, or a number with K, M, G or T)", s);
	return -1;
}

int check_guest_memory(uint64_t bytes, const char *written, char *err, size_t errlen)
{
	if (bytes >= GUEST_MEMORY_MIN)
		return 0;
	if (*written && written[strspn(written, "0123456789")] == 0)
		snprintf(err, errlen, "%s is %llu bytes (a size without a unit is bytes), less than "
			 "the 16M a guest needs; write \"%sM\" for %s MiB", written,
			 (unsigned long long)bytes, written, written);
	else
		snprintf(err, errlen, "`%s` is %llu bytes, less than the 16M a guest needs", written,
			 (unsigned long long)bytes);
	return -1;
}

void format_seconds(int64_t ns, char *buf, size_t len)
{
	uint64_t a = ns < 0 ? (uint64_t)0 - (uint64_t)ns : (uint64_t)ns;
	uint64_t cs = (a + 5000000) / 10000000; /* centiseconds, rounded */
	snprintf(buf, len, "%s%llu.%02llus", ns < 0 ? "-" : "",
		 (unsigned long long)(cs / 100), (unsigned long long)(cs % 100));
}
