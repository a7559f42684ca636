/* report.c — per-file result bookkeeping and rendering (see report.h).
 *
 * Everything here writes to the FILE* it is given: the caller decides
 * whether human output goes to stdout or (under --events-stdout) stderr,
 * and where the summary goes in --json mode. Output is flushed after each
 * file so a watching user or a pipe sees files as they complete. */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "report.h"
#include "units.h"

const char *file_status_name(enum file_status s)
{
	switch (s) {
	case FS_PASSED: return "passed";
	case FS_FAILED: return "failed";
	case FS_TIMED_OUT: return "timed_out";
	case FS_CRASHED: return "crashed";
	}
	return "failed";
}

int file_result_add_test(struct file_result *r, const char *name, enum test_status st, const char *message)
{
	struct test_result *t;

	if (r->ntests == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 16;
		struct test_result *nv = realloc(r->tests, cap * sizeof *nv);
		if (!nv)
			return -1;
		r->tests = nv;
		r->cap = cap;
	}
	t = &r->tests[r->ntests++];
	memset(t, 0, sizeof *t);
	t->name = strdup(name ? name : "?");
	t->status = st;
	t->message = message ? strdup(message) : NULL;
	/* The runner sends a test's log just before its outcome. */
	if (r->pending_log_name && name && strcmp(r->pending_log_name, name) == 0) {
		t->log = r->pending_log;
		t->nlog = r->npending_log;
		r->pending_log = NULL;
		r->npending_log = 0;
	}
	return 0;
}

void file_result_set_duration(struct file_result *r, int64_t ns)
{
	if (r->ntests)
		r->tests[r->ntests - 1].duration_ns = ns < 0 ? 0 : ns;
}

void file_result_set_console(struct file_result *r, const char *excerpt)
{
	struct test_result *t;
	if (!r->ntests || !excerpt || !*excerpt)
		return;
	t = &r->tests[r->ntests - 1];
	free(t->console);
	t->console = strdup(excerpt);
}

int file_result_add_output(struct file_result *r, const char *buf, size_t n)
{
	if (n >= REPORT_OUTPUT_MAX) {
		/* keep only the last REPORT_OUTPUT_MAX bytes of this chunk */
		r->output_dropped += r->output_len + (n - REPORT_OUTPUT_MAX);
		r->output_len = 0;
		buf += n - REPORT_OUTPUT_MAX;
		n = REPORT_OUTPUT_MAX;
	} else if (r->output_len + n > REPORT_OUTPUT_MAX) {
		/* drop the oldest bytes, up to a line boundary when there is one */
		size_t cut = r->output_len + n - REPORT_OUTPUT_MAX;
		char *nl = memchr(r->output + cut, '\n', r->output_len - cut);
		if (nl)
			cut = (size_t)(nl + 1 - r->output);
		memmove(r->output, r->output + cut, r->output_len - cut);
		r->output_len -= cut;
		r->output_dropped += cut;
	}
	if (r->output_len + n + 1 > r->output_cap) {
		size_t cap = r->output_cap ? r->output_cap : 4096;
		while (cap < r->output_len + n + 1)
			cap *= 2;
		char *nb = realloc(r->output, cap);
		if (!nb)
			return -1;
		r->output = nb;
		r->output_cap = cap;
	}
	memcpy(r->output + r->output_len, buf, n);
	for (size_t i = r->output_len; i < r->output_len + n; i++)
		if (!r->output[i])
			r->output[i] = '?'; /* rendered as a C string */
	r->output_len += n;
	r->output[r->output_len] = '\0';
	return 0;
}

void file_result_add_chunk_error(struct file_result *r, const char *msg)
{
	if (!r->chunk_error) {
		r->chunk_error = strdup(msg);
		return;
	}
	char *s = NULL;
	if (asprintf(&s, "%s\n%s", r->chunk_error, msg) >= 0) {
		free(r->chunk_error);
		r->chunk_error = s;
	}
}

static void free_strv(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void file_result_free(struct file_result *r)
{
	for (size_t i = 0; i < r->ntests; i++) {
		free(r->tests[i].name);
		free(r->tests[i].message);
		free(r->tests[i].console);
		free_strv(r->tests[i].log, r->tests[i].nlog);
	}
	free(r->tests);
	free(r->path);
	free(r->chunk_error);
	free(r->output);
	free(r->pending_log_name);
	free_strv(r->pending_log, r->npending_log);
	memset(r, 0, sizeof *r);
}

static void count(const struct file_result *r, size_t *p, size_t *f, size_t *s)
{
	*p = *f = *s = 0;
	for (size_t i = 0; i < r->ntests; i++) {
		switch (r->tests[i].status) {
		case TS_PASSED: (*p)++; break;
		case TS_FAILED: (*f)++; break;
		case TS_SKIPPED: (*s)++; break;
		}
	}
}

/* Print text with the first line after `first`, the rest at `indent`. */
static void print_lines(FILE *out, const char *first, const char *indent, const char *text)
{
	const char *s = text;
	bool head = true;
	do {
		const char *e = strchr(s, '\n');
		int n = e ? (int)(e - s) : (int)strlen(s);
		fprintf(out, "%s%.*s\n", head ? first : indent, n, s);
		head = false;
		s = e ? e + 1 : NULL;
	} while (s && *s);
}

/* json_string() refuses invalid UTF-8; runner messages may carry raw guest
 * bytes, so fall back to replacing every non-ASCII byte with '?'. */
static json_t *jstr(const char *s)
{
	json_t *j = json_string(s);
	if (j)
		return j;
	char *c = strdup(s);
	if (!c)
		return json_null();
	for (char *p = c; *p; p++)
		if ((unsigned char)*p >= 0x80)
			*p = '?';
	j = json_string(c);
	free(c);
	return j ? j : json_null();
}

static json_t *strv_json(char **v, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, jstr(v[i]));
	return a;
}

static json_t *nullable(const char *s)
{
	return s ? jstr(s) : json_null();
}

static void report_json(FILE *out, const struct file_result *r)
{
	json_t *o = json_object(), *tests = json_array();
	static const char *const st[] = { "passed", "failed", "skipped" };

	json_object_set_new(o, "path", jstr(r->path));
	json_object_set_new(o, "timeout", json_string(r->status == FS_TIMED_OUT ? "timed_out" : "in_time"));
	json_object_set_new(o, "passed", json_boolean(r->status == FS_PASSED));
	json_object_set_new(o, "chunk_error", nullable(r->chunk_error));
	for (size_t i = 0; i < r->ntests; i++) {
		const struct test_result *t = &r->tests[i];
		json_t *to = json_object();
		json_object_set_new(to, "name", jstr(t->name));
		json_object_set_new(to, "status", json_string(st[t->status]));
		json_object_set_new(to, "message", nullable(t->message));
		json_object_set_new(to, "log", strv_json(t->log, t->nlog));
		json_object_set_new(to, "duration_ns", json_integer(t->duration_ns));
		json_array_append_new(tests, to);
	}
	json_object_set_new(o, "tests", tests);
	json_object_set_new(o, "duration_ns", json_integer(r->duration_ns < 0 ? 0 : r->duration_ns));
	char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (s)
		fprintf(out, "%s\n", s);
	free(s);
	json_decref(o);
}

/* A status word, coloured when asked (PASS green, FAIL/TIME/ERROR red,
 * SKIP yellow). */
static void word(FILE *out, const char *w, bool color)
{
	const char *c = !color ? NULL : !strcmp(w, "PASS") ? "32" : !strcmp(w, "SKIP") || !strcmp(w, "NOT RUN") ? "33" : "31";
	if (c)
		fprintf(out, "\033[%sm%s\033[0m", c, w);
	else
		fputs(w, out);
}

static void print_log(FILE *out, const struct test_result *t)
{
	if (!t->nlog)
		return;
	fputs("        --- log ---\n", out);
	for (size_t i = 0; i < t->nlog; i++)
		print_lines(out, "        ", "        ", t->log[i]);
}

static void print_output(FILE *out, const struct file_result *r)
{
	if (!r->output_len)
		return;
	fputs("    --- output ---\n", out);
	if (r->output_dropped)
		fprintf(out, "        [... %zu earlier bytes dropped ...]\n", r->output_dropped);
	/* print_lines stops at a trailing newline; empty lines inside stay */
	print_lines(out, "        ", "        ", r->output);
}

void report_file(FILE *out, const struct file_result *r, const struct report_style *st)
{
	enum verbosity v = st->verbosity;
	bool c = st->color;
	size_t p, f, s;

	if (st->json) {
		report_json(out, r);
		fflush(out);
		return;
	}
	/* -q: only files with failures (their status line, their failed tests
	 * and messages, as the reference prints them), then the summary. */
	if (v == VERB_QUIET && r->status == FS_PASSED)
		return;
	count(r, &p, &f, &s);
	word(out, r->status == FS_PASSED ? "PASS" : r->status == FS_TIMED_OUT ? "TIME" : "FAIL", c);
	fprintf(out, " %s (%zu passed, %zu failed, %zu skipped)", r->path, p, f, s);
	if (v == VERB_VERBOSE) {
		char secs[32];
		format_seconds(r->duration_ns, secs, sizeof secs);
		fprintf(out, " %s", secs);
	}
	fputc('\n', out);
	if (r->chunk_error) {
		fputs("    ", out);
		word(out, "ERROR", c);
		print_lines(out, " ", "        ", r->chunk_error);
	}
	for (size_t i = 0; i < r->ntests; i++) {
		const struct test_result *t = &r->tests[i];
		if (t->status == TS_FAILED) {
			fputs("    ", out);
			word(out, "FAIL", c);
			fprintf(out, " %s\n", t->name);
			if (t->message && *t->message)
				print_lines(out, "        ", "        ", t->message);
			if (t->console)
				print_lines(out, "        ", "        ", t->console);
			print_log(out, t);
		} else if (v == VERB_VERBOSE && t->status == TS_PASSED) {
			fputs("    ", out);
			word(out, "PASS", c);
			fprintf(out, " %s (%lld ms)\n", t->name, (long long)(t->duration_ns / 1000000));
			print_log(out, t);
		} else if (v == VERB_VERBOSE) {
			fputs("    ", out);
			word(out, "SKIP", c);
			if (t->message && *t->message)
				fprintf(out, " %s (%s)\n", t->name, t->message);
			else
				fprintf(out, " %s\n", t->name);
			print_log(out, t);
		}
	}
	if (st->show_output && (r->status != FS_PASSED || v == VERB_VERBOSE))
		print_output(out, r);
	fflush(out);
}

void report_totals_add(struct run_totals *t, const struct file_result *r)
{
	size_t p, f, s;
	count(r, &p, &f, &s);
	t->files++;
	t->passed += p;
	t->failed += f;
	t->skipped += s;
	for (size_t i = 0; i < r->ntests; i++)
		if (r->tests[i].status == TS_SKIPPED && r->tests[i].message &&
		    !strncmp(r->tests[i].message, "filtered:", 9))
			t->filtered++;
	if (r->status != FS_PASSED)
		t->files_failed++;
	if (r->chunk_error || r->status == FS_TIMED_OUT)
		t->files_errored++;
}

void report_summary(FILE *out, const struct run_totals *t, int64_t elapsed_ns)
{
	char secs[32];
	format_seconds(elapsed_ns, secs, sizeof secs);
	/* ", N file(s) errored" only when some file produced no outcome for
	 * its tests (chunk error, crash, timeout): otherwise a run where every
	 * file crashed would read like a run with nothing to do. */
	fprintf(out, "\n%zu file(s); %zu passed, %zu failed, %zu skipped", t->files, t->passed,
		t->failed, t->skipped);
	if (t->files_errored)
		fprintf(out, ", %zu file(s) errored", t->files_errored);
	fprintf(out, "; %s\n", secs);
	fflush(out);
}

void report_interrupted(FILE *out, int sig, char *const *interrupted, size_t ninterrupted,
			char *const *not_run, size_t nnot_run, bool color)
{
	const char *ab = sigabbrev_np(sig);
	fprintf(out, "\ninterrupted by SIG%s: %zu file(s) did not finish\n", ab ? ab : "?",
		ninterrupted + nnot_run);
	for (size_t i = 0; i < ninterrupted; i++) {
		fputs("    ", out);
		word(out, "INTERRUPTED", color);
		fprintf(out, " %s\n", interrupted[i]);
	}
	for (size_t i = 0; i < nnot_run; i++) {
		fputs("    ", out);
		word(out, "NOT RUN", color);
		fprintf(out, " %s\n", not_run[i]);
	}
	fflush(out);
}

struct timed { int64_t ns; const char *path, *name; size_t seq; };

/* Slowest first; equal durations keep run order (qsort is not stable). */
static int cmp_timed(const void *a, const void *b)
{
	const struct timed *x = a, *y = b;
	if (x->ns != y->ns)
		return x->ns > y->ns ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

void report_durations(FILE *out, struct file_result *const *results, size_t nresults, size_t n)
{
	struct timed *v = NULL;
	size_t nv = 0, total = 0;

	for (size_t i = 0; i < nresults; i++)
		total += results[i]->ntests;
	if (total && !(v = calloc(total, sizeof *v)))
		return;
	for (size_t i = 0; i < nresults; i++)
		for (size_t k = 0; k < results[i]->ntests; k++) {
			const struct test_result *t = &results[i]->tests[k];
			if (t->status == TS_SKIPPED)
				continue;
			v[nv] = (struct timed){ t->duration_ns, results[i]->path, t->name, nv };
			nv++;
		}
	if (nv) {
		qsort(v, nv, sizeof *v, cmp_timed);
		if (n == 0 || n > nv)
			n = nv;
		fprintf(out, "\nslowest %zu tests:\n", n);
		for (size_t i = 0; i < n; i++) {
			char secs[32];
			format_seconds(v[i].ns, secs, sizeof secs);
			fprintf(out, "  %s  %s::%s\n", secs, v[i].path, v[i].name);
		}
		fflush(out);
	}
	free(v);
}
