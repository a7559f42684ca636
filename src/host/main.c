/* main.c — the provium entry point: parse the command line, load the
 * config, then run one of: the test run (default), `list`, `lsp-setup`,
 * `fixture` (fixture/cli_fixture.c) or `repl` (repl.c).
 *
 * The config is --config, else the nearest provium.toml from the cwd
 * upwards; its directory is the project (display paths, rerun state).
 * The test run: discovery roots are the CLI paths (`FILE::NAME` words
 * split by testsel.c), else the config's roots, else `.`; the selection
 * filters apply in the documented order (--filter, --rerun-failed,
 * --since, then --shard; names picked by path::NAME attached last);
 * dispatch_run() does the rest, and the project's rerun list is updated.
 * Under --watch the whole sequence repeats whenever a stat of the watched
 * tree changes (500 ms poll, rediscovering every tick).
 *
 * Exit status: 0 every file passed, 1 some file did not, 2 usage, config
 * or internal error, 5 nothing ran, 128 + signal (130 for Ctrl-C) when
 * interrupted. Messages: `provium: <message>` on stderr. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "config.h"
#include "coverage.h"
#include "discover.h"
#include "dispatch.h"
#include "events.h"
#include "fixture/cli_fixture.h"
#include "junit.h"
#include "listing.h"
#include "live.h"
#include "lsp.h"
#include "pool.h"
#include "report.h"
#include "rerun.h"
#include "preflight.h"
#include "repl.h"
#include "sinks.h"
#include "testsel.h"

#ifndef PROVIUM_VERSION
#define PROVIUM_VERSION "unknown"
#endif

static int die2(const char *msg)
{
	fprintf(stderr, "provium: %s\n", msg);
	return 2;
}

static int load_config(const struct cli_opts *o, struct config *cfg)
{
	char err[1024];

	/* --config, else the nearest provium.toml upwards from the cwd */
	if (config_open(cfg, o->config_path, err, sizeof err) < 0)
		return die2(err);
	if (config_add_builtin_default(cfg) < 0 || discover_set_base(cfg->dir) < 0)
		return die2("out of memory");
	if (o->accel >= 0)
		for (size_t i = 0; i < cfg->nprofiles; i++)
			cfg->profiles[i].accel = (enum accel_kind)o->accel;
	return 0;
}

/* The paths discovery walks: CLI paths, else config roots, else `.`. */
static const char *const *scan_paths(const struct cli_opts *o, const struct config *cfg, size_t *n)
{
	static const char *const dot[] = { "." };
	if (o->npaths) {
		*n = o->npaths;
		return (const char *const *)o->paths;
	}
	if (cfg->nroots) {
		*n = cfg->nroots;
		return (const char *const *)cfg->roots;
	}
	*n = 1;
	return dot;
}

/* The roots handed to runners (require, fixtures): the config's roots,
 * else the absolute directories of the scanned paths. */
static char **runner_roots(const char *const *paths, size_t n, const struct config *cfg)
{
	size_t k = cfg->nroots ? cfg->nroots : n;
	char **r = calloc(k + 1, sizeof *r);
	size_t w = 0;

	for (size_t i = 0; r && i < k; i++) {
		if (cfg->nroots) {
			r[w++] = strdup(cfg->roots[i]);
			continue;
		}
		char *a = realpath(paths[i], NULL);
		struct stat st;
		if (!a)
			continue;
		if (stat(a, &st) == 0 && !S_ISDIR(st.st_mode)) {
			char *s = strrchr(a, '/');
			if (s && s != a)
				*s = '\0';
			else if (s)
				s[1] = '\0';
		}
		r[w++] = a;
	}
	return r;
}

static void free_strv(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

/* --filter: a substring of the display path. `|` separates alternatives
 * (the CLI guide shards with `--filter "$(... | tr '\n' '|')"`); empty
 * alternatives are ignored, and a filter with none matches everything. */
static bool filter_match(const char *path, const char *filter)
{
	bool any = false;

	for (const char *p = filter;;) {
		const char *e = strchr(p, '|');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		if (n) {
			any = true;
			for (const char *h = path; *h; h++)
				if (!strncmp(h, p, n))
					return true;
		}
		if (!e)
			break;
		p = e + 1;
	}
	return !any;
}

static int keep_filter(const struct found_file *f, void *arg)
{
	return filter_match(f->display, *(const char **)arg);
}

struct strset { char **v; size_t n; };

static int keep_rerun(const struct found_file *f, void *arg)
{
	const struct strset *s = arg;
	for (size_t i = 0; i < s->n; i++)
		if (!strcmp(s->v[i], f->abs))
			return 1;
	return 0;
}

static int keep_since(const struct found_file *f, void *arg)
{
	const struct timespec *ref = arg;
	return f->mtime.tv_sec > ref->tv_sec ||
	       (f->mtime.tv_sec == ref->tv_sec && f->mtime.tv_nsec > ref->tv_nsec);
}

/* --shard K/N: the files whose rank in byte order of their display path
 * is K-1 modulo N (round robin: the N shards differ by at most one file,
 * and every machine running the same command from the same directory
 * computes the same split). */
struct shard_sel {
	const struct found_file *base;
	const bool *keep;
};

static const struct file_list *shard_sort_list;

static int cmp_rank(const void *a, const void *b)
{
	const struct found_file *v = shard_sort_list->v;
	return strcmp(v[*(const size_t *)a].display, v[*(const size_t *)b].display);
}

static int keep_shard(const struct found_file *f, void *arg)
{
	const struct shard_sel *s = arg;
	return s->keep[f - s->base];
}

/* Apply --shard to fl. 0, or -1 (out of memory). */
static int shard_files(const struct cli_opts *o, struct file_list *fl)
{
	size_t *order;
	bool *keep;
	if (o->shard_n <= 1 || fl->n == 0)
		return 0;
	order = malloc(fl->n * sizeof *order);
	keep = calloc(fl->n, sizeof *keep);
	if (!order || !keep) {
		free(order);
		free(keep);
		return -1;
	}
	for (size_t i = 0; i < fl->n; i++)
		order[i] = i;
	shard_sort_list = fl;
	qsort(order, fl->n, sizeof *order, cmp_rank);
	for (size_t r = 0; r < fl->n; r++)
		keep[order[r]] = (int)(r % (size_t)o->shard_n) == o->shard_k - 1;
	struct shard_sel s = { .base = fl->v, .keep = keep };
	file_list_filter(fl, keep_shard, &s);
	free(order);
	free(keep);
	return 0;
}

/* Discover and apply --filter / --rerun-failed / --since / --shard.
 * 0 ok, 1 nothing to do and that is fine (nothing to rerun, an empty
 * shard: notice printed), 2 error (printed). */
static int select_files(const struct cli_opts *o, const struct testsel *ts, const char *project,
			const char *const *paths, size_t np, struct file_list *fl, bool rerun)
{
	char err[1024];

	/* config roots that do not exist are skipped; CLI paths must exist */
	if (discover_roots(paths, np, ".test.lua", o->npaths == 0, fl, err, sizeof err) < 0)
		return die2(err);
	if (o->filter) {
		const char *flt = o->filter;
		file_list_filter(fl, keep_filter, &flt);
	}
	if (rerun) {
		struct strset s = { 0 };
		char *sp = rerun_state_path(project);
		int r = sp ? rerun_load(sp, &s.v, &s.n, err, sizeof err) : -1;
		if (r < 0) {
			free(sp);
			file_list_free(fl);
			return die2(sp ? err : "out of memory");
		}
		if (r == 0) {
			fprintf(stderr, "provium --rerun-failed: no prior failure state at `%s` — nothing to re-run "
				"(this project's last runs left no failed file). Run `provium <paths>` "
				"once to populate.\n", sp);
			free(sp);
			file_list_free(fl);
			return 1;
		}
		file_list_filter(fl, keep_rerun, &s);
		rerun_free(s.v, s.n);
		free(sp);
	}
	if (o->since) {
		/* A reference that cannot be stat'ed selects nothing out, as in
		 * the reference implementation: the run is not narrowed. */
		struct stat st;
		if (stat(o->since, &st) < 0)
			fprintf(stderr, "provium: --since reference `%s`: %s; not narrowing the run\n",
				o->since, strerror(errno));
		else
			file_list_filter(fl, keep_since, &st.st_mtim);
	}
	size_t before = fl->n;
	if (shard_files(o, fl) < 0) {
		file_list_free(fl);
		return die2("out of memory");
	}
	if (before > 0 && fl->n == 0) {
		/* more shards than files: this job has nothing to do, and that
		 * is not a typo in the selection */
		fprintf(stderr, "provium: shard %d/%d is empty (%zu file(s) selected in all)\n",
			o->shard_k, o->shard_n, before);
		file_list_free(fl);
		return 1;
	}
	if (testsel_apply(ts, fl) < 0) {
		file_list_free(fl);
		return die2("out of memory");
	}
	return 0;
}

/* An empty selection is said on stdout, as one JSON object under --json
 * so line-by-line consumers can parse it (stderr under --events-stdout,
 * which reserves stdout for frames). It exits NOTHING_RAN_EXIT unless
 * --allow-empty: a typo in a path, --filter or --tag must not turn CI
 * green (pytest's exit 5, nextest's --no-tests=fail). */
#define NOTHING_RAN_EXIT 5

static void no_tests_notice(const struct cli_opts *o)
{
	if (o->json)
		printf("{\"type\":\"no_files\",\"message\":\"no *.test.lua files found\"}\n");
	else
		fprintf(o->events_stdout ? stderr : stdout, "provium: no *.test.lua files found\n");
	if (!o->watch && !o->allow_empty)
		fprintf(stderr, "provium: nothing to run: exit %d (check the paths, --filter, "
			"--since, --shard; --allow-empty accepts an empty run)\n", NOTHING_RAN_EXIT);
	if (o->watch)
		fprintf(stderr, "provium --watch: no *.test.lua files match yet — watching for new files\n");
	fflush(NULL);
}

static int cmd_list(const struct cli_opts *o, const struct testsel *ts, const struct config *cfg)
{
	struct file_list fl;
	char err[1024];
	size_t np;
	const char *const *paths = scan_paths(o, cfg, &np);

	if (!o->list_fixtures) {
		/* the run's own selection: --filter, --rerun-failed, --since,
		 * --shard, path::NAME (and -k for --tests) */
		int s = select_files(o, ts, cfg->dir, paths, np, &fl, o->rerun_failed);
		if (s == 1 && o->json)
			printf("{\"files\": []}\n"); /* still one document */
		if (s != 0)
			return s == 1 ? 0 : 2;
		s = list_test_files(stdout, &fl, &o->tf, o->list_tests, o->json);
		file_list_free(&fl);
		return s < 0 ? die2("out of memory") : 0;
	}
	if (discover_roots(paths, np, ".fixture.lua", o->npaths == 0, &fl, err, sizeof err) < 0)
		return die2(err);
	for (size_t i = 0; i < fl.n; i++) {
		const struct found_file *f = &fl.v[i];
		if (o->filter && !filter_match(f->display, o->filter))
			continue;
		size_t n = strlen(f->relroot);
		printf("%.*s\n", (int)(n >= 12 ? n - 12 : n), f->relroot);
	}
	file_list_free(&fl);
	return 0;
}

/* A cheap fingerprint of everything --watch cares about: every regular
 * file's path, size and mtime under the scanned paths (sums, order-free). */
static uint64_t tree_stamp(const char *const *paths, size_t np)
{
	struct file_list fl;
	char err[256];
	uint64_t h = 1469598103934665603ull;

	if (discover_roots(paths, np, "", true, &fl, err, sizeof err) < 0)
		return 0;
	for (size_t i = 0; i < fl.n; i++) {
		const struct found_file *f = &fl.v[i];
		uint64_t x = (uint64_t)f->mtime.tv_sec * 1000000007ull + (uint64_t)f->mtime.tv_nsec +
			     (uint64_t)f->size * 31;
		for (const char *p = f->display; *p; p++)
			x = (x ^ (unsigned char)*p) * 1099511628211ull;
		h += x * 0x9e3779b97f4a7c15ull;
	}
	h += fl.n;
	file_list_free(&fl);
	return h;
}

/* Update the project's --rerun-failed list after a completed run: the
 * files that failed join it, the files that passed leave it (see
 * rerun.h) — unless the run picked some of their tests by name (-k,
 * path::NAME): the test that failed may be one it left out. A problem is
 * a warning: the run's result stands. */
static void rerun_record(const struct cli_opts *o, const char *project, const struct file_list *fl,
			 const struct dispatch_outcome *oc)
{
	char err[1024];
	char **list = NULL, **passed = NULL;
	size_t n = 0, np = 0;
	char *sp = rerun_state_path(project);
	int r = sp ? rerun_load(sp, &list, &n, err, sizeof err) : -1;

	if (r < 0) {
		fprintf(stderr, "provium: warning: not updating the rerun state: %s\n",
			sp ? err : "out of memory");
		goto out;
	}
	if (r == 0 && oc->nfailed == 0 && access(sp, F_OK) < 0)
		goto out; /* never failed: create nothing */
	passed = calloc(fl->n + 1, sizeof *passed);
	if (!passed)
		goto oom;
	for (size_t i = 0; i < oc->nresults; i++) {
		const struct file_result *res = oc->results[i];
		if (res->status != FS_PASSED)
			continue;
		for (size_t j = 0; j < fl->n; j++)
			if (!strcmp(fl->v[j].display, res->path) && !o->tf.nnames && !fl->v[j].ntests)
				passed[np++] = fl->v[j].abs;
	}
	r = rerun_update(&list, &n, oc->failed_abs, oc->nfailed, passed, np);
	if (r < 0)
		goto oom;
	if (r > 0 && rerun_save(sp, list, n, err, sizeof err) < 0)
		fprintf(stderr, "provium: warning: could not save rerun state: %s\n", err);
	goto out;
oom:
	fprintf(stderr, "provium: warning: not updating the rerun state: out of memory\n");
out:
	free(passed);
	rerun_free(list, n);
	free(sp);
}

/* --junit: write the report of the files in oc. 0 (also without --junit),
 * -1 after saying why on stderr. */
static int write_junit(const struct cli_opts *o, const struct dispatch_outcome *oc,
		       time_t started, int64_t elapsed_ns)
{
	char err[1024];

	if (!o->junit_path)
		return 0;
	if (junit_write(o->junit_path, oc->results, oc->nresults, started, elapsed_ns,
			err, sizeof err) < 0) {
		fprintf(stderr, "provium: %s\n", err);
		return -1;
	}
	return 0;
}

static int cmd_run(struct cli_opts *o, const struct testsel *ts, const struct config *cfg)
{
	char err[1024];
	size_t np;
	const char *const *paths = scan_paths(o, cfg, &np);
	char **roots = runner_roots(paths, np, cfg);
	struct sinks sinks;
	struct pool pool;
	struct coverage cov = { 0 };
	char *tmp = NULL;
	char *fj = NULL;
	int rc = 2;
	FILE *out = o->events_stdout ? stderr : stdout;
	FILE *sum = (o->events_stdout || o->json) ? stderr : stdout;

	if (!roots)
		return die2("out of memory");
	fj = test_filter_to_json(&o->tf);
	if (!fj || setenv("PROVIUM_TEST_FILTER", fj, 1) < 0) {
		free(fj);
		free_strv(roots);
		return die2("cannot export PROVIUM_TEST_FILTER");
	}
	free(fj);
	/* --no-ksm is accepted: provium does no KSM tuning (sharing fixture
	 * RAM copy-on-write is the density mechanism instead). */
	if (o->vmm == VMM_QEMU && !o->no_preflight && preflight_qemu(cfg, err, sizeof err) < 0) {
		free_strv(roots);
		return die2(err);
	}
	fixture_cache_startup(cfg);   /* LRU eviction before anything dispatches */
	if (o->overcommit != o->overcommit_given)
		fprintf(stderr, "provium: --cpu-overcommit %g clamped to %g (sane range 0.5–8.0)\n",
			o->overcommit_given, o->overcommit);
	pool_init(&pool, o->mem, o->cpus, o->overcommit);
	if (o->coverage && coverage_prepare(&cov, o->save_events, err, sizeof err) < 0) {
		free_strv(roots);
		return die2(err);
	}
	/* --save-events appends (earlier runs' frames stay, as in the
	 * reference); --watch and --coverage's own scratch file start each
	 * run empty. */
	bool append = o->save_events && !o->watch;
	if (sinks_open(&sinks, o->coverage ? cov.events_path : o->save_events, append,
		       o->events_socket, o->events_stdout, err, sizeof err) < 0) {
		coverage_cleanup(&cov);
		free_strv(roots);
		return die2(err);
	}
	if (dispatch_signals_install() < 0 || dispatch_tmp_create(&tmp, err, sizeof err) < 0) {
		sinks_close(&sinks);
		free_strv(roots);
		return die2(tmp ? err : "cannot set up signal handling or the run directory");
	}

	uint64_t stamp = o->watch ? tree_stamp(paths, np) : 0;
	for (;;) {
		struct file_list fl;
		struct dispatch_outcome oc;
		int s = select_files(o, ts, cfg->dir, paths, np, &fl, o->rerun_failed);
		if (s == 1) {
			rc = 0;
			break;
		}
		if (s == 2) {
			rc = 2;
			if (!o->watch)
				break;
			goto wait_change;
		}
		if (fl.n == 0) {
			file_list_free(&fl);
			no_tests_notice(o);
			rc = o->allow_empty ? 0 : NOTHING_RAN_EXIT;
			if (!o->watch)
				break;
			goto wait_change;
		}
		sinks_begin_run(&sinks);
		struct dispatch_opts d = {
			.cfg = cfg, .roots = (const char *const *)roots, .filter = &o->tf, .vmm = o->vmm,
			.timeout_ns = o->timeout_ns, .fail_fast = o->fail_fast,
			.events_stdout = o->events_stdout, .pool = &pool, .sinks = &sinks, .out = out,
			.verbosity = o->verbosity, .json = o->json, .tmp_dir = tmp,
			.no_capture = o->no_capture, .color = !o->json && live_color(out, o->color),
		};
		int64_t t0 = event_now_ns();
		time_t wall0 = time(NULL);
		if (dispatch_run(&d, &fl, &oc, err, sizeof err) < 0) {
			file_list_free(&fl);
			fprintf(stderr, "provium: %s\n", err);
			rc = 2;
			break;
		}
		if (!oc.signal)
			rerun_record(o, cfg->dir, &fl, &oc);
		file_list_free(&fl);
		if (oc.signal) {
			int sig = oc.signal;
			/* interrupted: the summary and the report hold the files
			 * that finished; the ones that did not are listed */
			report_interrupted(sum, sig, oc.interrupted, oc.ninterrupted, oc.not_run, oc.nnot_run,
					   d.color && sum == out);
			report_summary(sum, &oc.totals, event_now_ns() - t0);
			fprintf(stderr, "provium: interrupted: exit %d\n", 128 + sig);
			write_junit(o, &oc, wall0, event_now_ns() - t0);
			dispatch_outcome_free(&oc);
			sinks_close(&sinks);
			free_strv(roots);
			fflush(NULL);
			exit(128 + sig); /* atexit removes the run dir */
		}
		report_summary(sum, &oc.totals, event_now_ns() - t0);
		if (o->durations >= 0)
			report_durations(sum, oc.results, oc.nresults, (size_t)o->durations);
		int jr = write_junit(o, &oc, wall0, event_now_ns() - t0);
		if (sinks.err[0])
			fprintf(stderr, "provium: %s\n", sinks.err);
		rc = oc.totals.files_failed ? 1 : 0;
		if (jr < 0)
			rc = 2; /* CI would read a stale or missing report as the result */
		/* Nothing selected to run: every test was left out by a selection
		 * flag (tests skipped by meta.skip / todo / t:skip were selected,
		 * as in pytest), or the files define none. */
		if (!rc && !o->allow_empty &&
		    oc.totals.passed + oc.totals.failed + oc.totals.skipped - oc.totals.filtered == 0) {
			fprintf(stderr, "provium: no test ran (%zu left out by the selection flags): exit %d "
				"(check -k/--test, path::NAME, --tag, --no-tag, --tag-meta, --include-slow; "
				"--allow-empty accepts an empty run)\n", oc.totals.filtered, NOTHING_RAN_EXIT);
			rc = NOTHING_RAN_EXIT;
		}
		if (o->coverage) {
			/* documented: a failed coverage post-run makes the exit 1 */
			int cr = coverage_run(&cov, o->json || o->events_stdout, err, sizeof err);
			if (cr != 0) {
				fprintf(stderr, "provium: %s\n", err);
				rc = cr < 0 ? 2 : rc ? rc : 1;
			}
		}
		dispatch_outcome_free(&oc);
		if (!o->watch)
			break;
wait_change:
		/* --watch: poll every 500 ms until something changes. */
		for (;;) {
			dispatch_sleep_ms(500);
			if (dispatch_pending_signal()) {
				sinks_close(&sinks);
				free_strv(roots);
				exit(128 + dispatch_pending_signal());
			}
			sinks_accept(&sinks);
			uint64_t now = tree_stamp(paths, np);
			if (now != stamp) {
				stamp = now;
				break;
			}
		}
	}
	sinks_close(&sinks);
	coverage_cleanup(&cov);
	free_strv(roots);
	return rc;
}

int main(int argc, char **argv)
{
	struct cli_opts o;
	struct config cfg;
	char err[512];
	int rc;

	switch (cli_parse(argc, argv, &o, err, sizeof err)) {
	case CLI_HELP:
		cli_usage(stdout, o.help_topic);
		cli_opts_free(&o);
		return 0;
	case CLI_ERROR:
		fprintf(stderr, "provium: %s\n", err);
		cli_opts_free(&o);
		return 2;
	default:
		break;
	}
	if (o.cmd == CMD_VERSION) {
		printf("provium %s\n", PROVIUM_VERSION);
		cli_opts_free(&o);
		return 0;
	}
	if (o.cmd == CMD_FIXTURE) {
		rc = cmd_fixture(&o);
		cli_opts_free(&o);
		return rc;
	}
	if (o.cmd == CMD_REPL) {
		rc = cmd_repl(&o);
		cli_opts_free(&o);
		return rc;
	}
	if (o.cmd == CMD_LSP_SETUP) {
		rc = lsp_setup(o.lsp_dir ? o.lsp_dir : ".", o.lsp_force, stdout, err, sizeof err);
		cli_opts_free(&o);
		if (rc == LSP_ERROR)
			return die2(err);
		return 0; /* LSP_KEPT too: refusing to overwrite is a notice, not a failure */
	}
	struct testsel ts;
	/* path::NAME words: split before anything looks at the paths */
	if (testsel_split(o.paths, o.npaths, &ts, err, sizeof err) < 0) {
		cli_opts_free(&o);
		return die2(err);
	}
	memset(&cfg, 0, sizeof cfg);
	if (load_config(&o, &cfg) != 0) {
		config_free(&cfg);
		testsel_free(&ts);
		cli_opts_free(&o);
		return 2;
	}
	rc = o.cmd == CMD_LIST ? cmd_list(&o, &ts, &cfg) : cmd_run(&o, &ts, &cfg);
	config_free(&cfg);
	testsel_free(&ts);
	cli_opts_free(&o);
	return rc == NOTHING_RAN_EXIT ? rc : rc > 2 ? 2 : rc;
}
