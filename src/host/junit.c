/* junit.c — JUnit XML rendering and atomic install (see junit.h).
 *
 * Mapping (also in docs/decisions.md):
 *   <testsuites name="provium" tests failures errors skipped time>
 *     one <testsuite name="<display path>" ... timestamp hostname> per file
 *       one <testcase classname="<path, / -> ., minus .test.lua>"
 *                     name="<test name>" time="<seconds>"> per test:
 *         failed   <failure message="<first line>" type="AssertionError">
 *                  message, then the console excerpt</failure>
 *                  <system-out> the test's t:log lines </system-out>
 *         skipped  <skipped message="<reason>"/>
 *       a file whose top level did not finish (chunk error, crash, timeout)
 *       gets one more testcase, name "(file)", holding an <error> with the
 *       file's error text, so such a file is never green in a reporter.
 *       <system-out> the file's captured stdout/stderr (after the
 *       testcases, as the JUnit schema orders it), when it wrote any
 * Text is escaped for XML 1.0: & < > " ' as entities; control bytes other
 * than \t \n \r, and invalid UTF-8, become U+FFFD (guest output is raw).
 *
 * The document is built in memory (open_memstream), then written to
 * `<path>.tmp.<pid>` (O_CREAT|O_EXCL|O_CLOEXEC), fsynced and renamed over
 * path; the temp file is unlinked on any failure. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "junit.h"
#include "utf8.h"
#include "atomicfile.h"
#include "fsutil.h"

#define REPLACEMENT "\xEF\xBF\xBD" /* U+FFFD */

/* Write s as XML character data / attribute value (both quote kinds
 * escaped, so one routine serves both). */
static void xml_text(FILE *f, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	while (i < len) {
		unsigned char c = p[i];
		if (c >= 0x80) {
			size_t ok = utf8_valid_prefix(p + i, len - i);
			if (ok == 0) {
				fputs(REPLACEMENT, f);
				i++;
				continue;
			}
			/* valid multi-byte run; U+FFFE/U+FFFF are not XML chars */
			for (size_t k = i; k < i + ok;) {
				if (p[k] < 0x80)
					break;
				size_t n = p[k] >= 0xF0 ? 4 : p[k] >= 0xE0 ? 3 : 2;
				if (n == 3 && p[k] == 0xEF && p[k + 1] == 0xBF && p[k + 2] >= 0xBE)
					fputs(REPLACEMENT, f);
				else
					fwrite(p + k, 1, n, f);
				k += n;
				i = k;
			}
			continue;
		}
		switch (c) {
		case '&': fputs("&amp;", f); break;
		case '<': fputs("&lt;", f); break;
		case '>': fputs("&gt;", f); break;
		case '"': fputs("&quot;", f); break;
		case '\'': fputs("&apos;", f); break;
		case '\t': case '\n': fputc(c, f); break;
		case '\r': fputs("&#13;", f); break; /* a raw CR would be normalised away */
		default:
			if (c < 0x20 || c == 0x7F)
				fputs(REPLACEMENT, f);
			else
				fputc(c, f);
		}
		i++;
	}
}

static void xml_str(FILE *f, const char *s)
{
	if (s)
		xml_text(f, s, strlen(s));
}

/* The first line of s (for message attributes). */
static void xml_first_line(FILE *f, const char *s)
{
	if (s)
		xml_text(f, s, strcspn(s, "\n"));
}

static void seconds(FILE *f, int64_t ns)
{
	if (ns < 0)
		ns = 0;
	fprintf(f, "%lld.%03lld", (long long)(ns / 1000000000), (long long)(ns % 1000000000 / 1000000));
}

/* classname: the display path with `/` as `.` and no `.test.lua`. */
static void classname(FILE *f, const char *path)
{
	size_t len = strlen(path);
	const char *suf = ".test.lua";
	if (len > strlen(suf) && !strcmp(path + len - strlen(suf), suf))
		len -= strlen(suf);
	char *c = strndup(path, len);
	if (!c) {
		xml_text(f, path, len);
		return;
	}
	for (char *p = c; *p; p++)
		if (*p == '/')
			*p = '.';
	xml_str(f, c);
	free(c);
}

struct counts { size_t tests, failures, errors, skipped; };

/* Does r need the synthetic "(file)" error testcase? Every non-passed
 * file but a plain FS_FAILED carries a chunk error; a failed file with no
 * failed test (should not happen) gets one too, so it is never green. */
static bool file_errored(const struct file_result *r)
{
	bool any_failed = false;
	for (size_t i = 0; i < r->ntests; i++)
		any_failed |= r->tests[i].status == TS_FAILED;
	return r->chunk_error || (r->status != FS_PASSED && !any_failed);
}

static struct counts count_file(const struct file_result *r)
{
	struct counts c = { 0 };
	for (size_t i = 0; i < r->ntests; i++) {
		c.tests++;
		c.failures += r->tests[i].status == TS_FAILED;
		c.skipped += r->tests[i].status == TS_SKIPPED;
	}
	if (file_errored(r)) {
		c.tests++;
		c.errors++;
	}
	return c;
}

static void counts_attrs(FILE *f, struct counts c)
{
	fprintf(f, " tests=\"%zu\" failures=\"%zu\" errors=\"%zu\" skipped=\"%zu\"",
		c.tests, c.failures, c.errors, c.skipped);
}

static void testcase(FILE *f, const struct file_result *r, const struct test_result *t)
{
	fputs("    <testcase classname=\"", f);
	classname(f, r->path);
	fputs("\" name=\"", f);
	xml_str(f, t->name);
	fputs("\" time=\"", f);
	seconds(f, t->status == TS_SKIPPED ? 0 : t->duration_ns);
	fputc('"', f);
	if (t->status == TS_PASSED) {
		fputs("/>\n", f);
		return;
	}
	fputs(">\n", f);
	if (t->status == TS_SKIPPED) {
		fputs("      <skipped message=\"", f);
		xml_str(f, t->message);
		fputs("\"/>\n", f);
	} else {
		fputs("      <failure message=\"", f);
		xml_first_line(f, t->message);
		fputs("\" type=\"AssertionError\">", f);
		xml_str(f, t->message);
		if (t->console) {
			fputs("\n\nconsole:\n", f);
			xml_str(f, t->console);
		}
		fputs("</failure>\n", f);
	}
	if (t->nlog) {
		fputs("      <system-out>", f);
		for (size_t i = 0; i < t->nlog; i++) {
			xml_str(f, t->log[i]);
			fputc('\n', f);
		}
		fputs("</system-out>\n", f);
	}
	fputs("    </testcase>\n", f);
}

static void suite(FILE *f, const struct file_result *r, const char *stamp, const char *host)
{
	fputs("  <testsuite name=\"", f);
	xml_str(f, r->path);
	fputc('"', f);
	counts_attrs(f, count_file(r));
	fputs(" time=\"", f);
	seconds(f, r->duration_ns);
	fprintf(f, "\" timestamp=\"%s\" hostname=\"", stamp);
	xml_str(f, host);
	fputs("\">\n", f);
	for (size_t i = 0; i < r->ntests; i++)
		testcase(f, r, &r->tests[i]);
	if (file_errored(r)) {
		const char *msg = r->chunk_error ? r->chunk_error : "file failed without a test outcome";
		fputs("    <testcase classname=\"", f);
		classname(f, r->path);
		fputs("\" name=\"(file)\" time=\"", f);
		seconds(f, r->duration_ns);
		fputs("\">\n      <error message=\"", f);
		xml_first_line(f, msg);
		fprintf(f, "\" type=\"%s\">", file_status_name(r->status));
		xml_str(f, msg);
		fputs("</error>\n    </testcase>\n", f);
	}
	if (r->output_len) {
		fputs("    <system-out>", f);
		if (r->output_dropped)
			fprintf(f, "[... %zu earlier bytes dropped ...]\n", r->output_dropped);
		xml_text(f, r->output, r->output_len);
		fputs("</system-out>\n", f);
	}
	fputs("  </testsuite>\n", f);
}

/* Render the whole document into a malloc'd buffer. 0 / -1 (ENOMEM). */
static int render(struct file_result *const *results, size_t n, time_t started,
		  int64_t elapsed_ns, char **buf, size_t *len)
{
	struct counts tot = { 0 };
	char stamp[32] = "1970-01-01T00:00:00", host[256] = "localhost";
	struct tm tm;
	FILE *f = open_memstream(buf, len);

	if (!f)
		return -1;
	if (gmtime_r(&started, &tm))
		strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
	if (gethostname(host, sizeof host) < 0)
		snprintf(host, sizeof host, "localhost");
	host[sizeof host - 1] = '\0';
	for (size_t i = 0; i < n; i++) {
		struct counts c = count_file(results[i]);
		tot.tests += c.tests;
		tot.failures += c.failures;
		tot.errors += c.errors;
		tot.skipped += c.skipped;
	}
	fputs("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"provium\"", f);
	counts_attrs(f, tot);
	fputs(" time=\"", f);
	seconds(f, elapsed_ns);
	fputs("\">\n", f);
	for (size_t i = 0; i < n; i++)
		suite(f, results[i], stamp, host);
	fputs("</testsuites>\n", f);
	if (ferror(f)) {
		fclose(f);
		free(*buf);
		*buf = NULL;
		errno = ENOMEM;
		return -1;
	}
	return fclose(f) == 0 ? 0 : -1;
}

int junit_write(const char *path, struct file_result *const *results, size_t n,
		time_t started, int64_t elapsed_ns, char *err, size_t errlen)
{
	struct atomic_file af = { .fd = -1 };
	char *doc = NULL;
	size_t len = 0;
	int rc = -1;

	if (render(results, n, started, elapsed_ns, &doc, &len) < 0) {
		snprintf(err, errlen, "--junit: out of memory");
		goto out;
	}
	if (af_open(&af, path, 0644) < 0) {
		if (!af.tmp)
			snprintf(err, errlen, "--junit: out of memory");
		else
			snprintf(err, errlen, "--junit: create `%s`: %s", af.tmp, strerror(errno));
		goto out;
	}
	if (write_all(af.fd, doc, len) < 0 || af_close(&af) < 0) {
		snprintf(err, errlen, "--junit: write `%s`: %s", af.tmp, strerror(errno));
		goto out;
	}
	if (af_rename(&af) < 0) {
		snprintf(err, errlen, "--junit: rename to `%s`: %s", path, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	af_abort(&af);
	free(doc);
	return rc;
}
