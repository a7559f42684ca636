/* cli.c — parsing argv into struct cli_opts (see cli.h).
 *
 * A table-free hand parser: the first positional word may name a
 * subcommand (list, lsp-setup, fixture, repl, help), also after run flags
 * (`--config x.toml fixture list`: those flags apply as in a run and their
 * values are skipped by the flag parser itself), but not after a path
 * (`tests list` is two paths; `./list` names a directory called list).
 * Otherwise everything is flags and paths in any order. Each flag is
 * matched by take_flag(), which understands both `--x VALUE` and
 * `--x=VALUE`. Values are validated here (sizes, numbers,
 * durations via units.h) so the rest of the program gets clean data.
 * Nothing is printed; errors come back as one message. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "units.h"

#define DEFAULT_TIMEOUT_NS (300LL * 1000000000LL)

struct argp {
	int argc, i;
	char **argv;
	char *err;
	size_t errlen;
	int failed;
};

__attribute__((format(printf, 2, 3)))
static void fail(struct argp *a, const char *fmt, ...)
{
	va_list ap;
	if (a->failed)
		return;
	a->failed = 1;
	va_start(ap, fmt);
	vsnprintf(a->err, a->errlen, fmt, ap);
	va_end(ap);
}

/* Does argv[i] name flag `name`? If it takes a value, store it in *val
 * (from `=VALUE` or the next word). Returns 1 when matched. */
static int take_flag(struct argp *a, const char *name, const char **val)
{
	const char *w = a->argv[a->i];
	size_t n = strlen(name);

	if (strncmp(w, name, n) != 0)
		return 0;
	if (w[n] == '\0') {
		if (val) {
			if (a->i + 1 >= a->argc) {
				fail(a, "%s needs a value", name);
				*val = NULL;
				return 1;
			}
			*val = a->argv[++a->i];
		}
		return 1;
	}
	if (w[n] == '=') {
		if (!val) {
			fail(a, "%s takes no value", name);
			return 1;
		}
		*val = w + n + 1;
		return 1;
	}
	return 0;
}

static int push_str(char ***v, size_t *n, const char *s)
{
	char **nv = realloc(*v, (*n + 1) * sizeof **v);
	if (!nv)
		return -1;
	*v = nv;
	nv[*n] = strdup(s);
	if (!nv[*n])
		return -1;
	(*n)++;
	return 0;
}

static int push_kv(struct argp *a, struct kv **v, size_t *n, const char *flag, const char *s)
{
	struct kv kv;
	struct kv *nv;

	if (kv_parse(s, &kv) < 0) {
		fail(a, "%s expects KEY=VALUE, got `%s`", flag, s);
		return -1;
	}
	nv = realloc(*v, (*n + 1) * sizeof **v);
	if (!nv) {
		free(kv.key);
		free(kv.value);
		return -1;
	}
	*v = nv;
	nv[(*n)++] = kv;
	return 0;
}

static int parse_int(const char *s, long min, long max, long *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

static int is_sub(const char *w)
{
	return !strcmp(w, "list") || !strcmp(w, "lsp-setup") || !strcmp(w, "fixture") ||
	       !strcmp(w, "repl") || !strcmp(w, "help");
}

/* Flags shared by the run mode and `list`. Returns 1 if argv[i] was one. */
static int common_flag(struct argp *a, struct cli_opts *o)
{
	const char *v;

	if (take_flag(a, "--config", &v)) {
		if (v)
			o->config_path = v;
		return 1;
	}
	if (take_flag(a, "--filter", &v)) {
		if (v)
			o->filter = v;
		return 1;
	}
	return 0;
}

static void run_flag(struct argp *a, struct cli_opts *o)
{
	const char *v = NULL;
	char e[200];
	long n;

	if (common_flag(a, o))
		return;
	if (take_flag(a, "--test", &v) || take_flag(a, "-k", &v)) {
		if (v && !*v)
			fail(a, "-k/--test: expected a part of a test name");
		else if (v && push_str(&o->tf.names, &o->tf.nnames, v) < 0)
			fail(a, "out of memory");
	} else if (take_flag(a, "--include-slow", NULL)) {
		o->tf.include_slow = true;
	} else if (take_flag(a, "--tag", &v)) {
		if (v && push_str(&o->tf.tags, &o->tf.ntags, v) < 0)
			fail(a, "out of memory");
	} else if (take_flag(a, "--no-tag", &v)) {
		if (v && push_str(&o->tf.no_tags, &o->tf.nno_tags, v) < 0)
			fail(a, "out of memory");
	} else if (take_flag(a, "--tag-meta", &v)) {
		if (v)
			push_kv(a, &o->tf.tag_meta, &o->tf.ntag_meta, "--tag-meta", v);
	} else if (take_flag(a, "--no-tag-meta", &v)) {
		if (v)
			push_kv(a, &o->tf.no_tag_meta, &o->tf.nno_tag_meta, "--no-tag-meta", v);
	} else if (take_flag(a, "--rerun-failed", NULL)) {
		o->rerun_failed = true;
	} else if (take_flag(a, "--since", &v)) {
		o->since = v;
	} else if (take_flag(a, "--watch", NULL)) {
		o->watch = true;
	} else if (take_flag(a, "--vmm", &v)) {
		if (!v)
			return;
		if (!strcmp(v, "qemu"))
			o->vmm = VMM_QEMU;
		else if (!strcmp(v, "local"))
			o->vmm = VMM_LOCAL;
		else
			fail(a, "--vmm must be `qemu` or `local`, got `%s`", v);
	} else if (take_flag(a, "--accel", &v)) {
		if (!v)
			return;
		if (!strcmp(v, "auto"))
			o->accel = ACCEL_AUTO;
		else if (!strcmp(v, "kvm"))
			o->accel = ACCEL_KVM;
		else if (!strcmp(v, "tcg"))
			o->accel = ACCEL_TCG;
		else
			fail(a, "--accel must be `auto`, `kvm` or `tcg`, got `%s`", v);
	} else if (take_flag(a, "--mem", &v)) {
		if (v && (parse_size_bytes(v, &o->mem, e, sizeof e) < 0 || o->mem == 0))
			fail(a, "--mem: invalid size `%s`", v);
	} else if (take_flag(a, "--cpus", &v)) {
		if (v && parse_int(v, 1, 1 << 20, &n) < 0)
			fail(a, "--cpus: expected a positive integer, got `%s`", v);
		else if (v)
			o->cpus = (int)n;
	} else if (take_flag(a, "--cpu-overcommit", &v)) {
		char *end;
		if (!v)
			return;
		errno = 0;
		double d = strtod(v, &end);
		if (errno || end == v || *end || d != d)
			fail(a, "--cpu-overcommit: expected a number, got `%s`", v);
		else {
			o->overcommit = d < 0.5 ? 0.5 : d > 8.0 ? 8.0 : d;
			o->overcommit_given = d;
		}
	} else if (take_flag(a, "--no-preflight", NULL)) {
		o->no_preflight = true;
	} else if (take_flag(a, "--no-ksm", NULL)) {
		o->no_ksm = true;
	} else if (take_flag(a, "--timeout", &v)) {
		if (v && parse_duration_ns(v, &o->timeout_ns, e, sizeof e) < 0)
			fail(a, "--timeout: %s", e);
	} else if (take_flag(a, "--fail-fast", NULL)) {
		o->fail_fast = true;
	} else if (take_flag(a, "--allow-empty", NULL)) {
		o->allow_empty = true;
	} else if (take_flag(a, "--shard", &v)) {
		char buf[64], *slash;
		long k, nn;
		if (!v)
			return;
		snprintf(buf, sizeof buf, "%s", v);
		slash = strchr(buf, '/');
		if (slash)
			*slash = '\0';
		if (!slash || parse_int(buf, 1, 1 << 20, &k) < 0 ||
		    parse_int(slash + 1, 1, 1 << 20, &nn) < 0 || k > nn) {
			fail(a, "--shard: expected K/N with 1 <= K <= N (e.g. 2/4), got `%s`", v);
			return;
		}
		o->shard_k = (int)k;
		o->shard_n = (int)nn;
	} else if (take_flag(a, "--verbose", NULL) || take_flag(a, "-v", NULL)) {
		if (o->verbosity == VERB_QUIET)
			fail(a, "-v/--verbose and -q/--quiet are mutually exclusive");
		o->verbosity = VERB_VERBOSE;
	} else if (take_flag(a, "--quiet", NULL) || take_flag(a, "-q", NULL)) {
		if (o->verbosity == VERB_VERBOSE)
			fail(a, "-v/--verbose and -q/--quiet are mutually exclusive");
		o->verbosity = VERB_QUIET;
	} else if (take_flag(a, "--json", NULL)) {
		o->json = true;
	} else if (take_flag(a, "--durations", &v)) {
		if (v && parse_int(v, 0, 1 << 30, &n) < 0)
			fail(a, "--durations: expected a count >= 0 (0 = all), got `%s`", v);
		else if (v)
			o->durations = n;
	} else if (take_flag(a, "--junit", &v)) {
		if (v && !*v)
			fail(a, "--junit: expected a file path");
		else if (v)
			o->junit_path = v;
	} else if (take_flag(a, "--no-capture", NULL)) {
		o->no_capture = true;
	} else if (take_flag(a, "--color", &v)) {
		if (!v)
			return;
		if (!strcmp(v, "auto"))
			o->color = COLOR_AUTO;
		else if (!strcmp(v, "always"))
			o->color = COLOR_ALWAYS;
		else if (!strcmp(v, "never"))
			o->color = COLOR_NEVER;
		else
			fail(a, "--color must be `auto`, `always` or `never`, got `%s`", v);
	} else if (take_flag(a, "--save-events", &v)) {
		o->save_events = v;
	} else if (take_flag(a, "--events-stdout", NULL)) {
		o->events_stdout = true;
	} else if (take_flag(a, "--events-socket", &v)) {
		o->events_socket = v;
	} else if (take_flag(a, "--coverage", NULL)) {
		o->coverage = true;
	} else {
		fail(a, "unknown flag `%s` (see provium --help)", a->argv[a->i]);
	}
}

/* The subcommand at argv[a->i] and its arguments to the end. Flags that
 * came before it have already been applied by run_flag(). */
static int parse_sub(struct argp *a, struct cli_opts *o, char *err, size_t errlen)
{
	int argc = a->argc;
	char **argv = a->argv;
	const char *sub = argv[a->i++];
	if (!strcmp(sub, "help")) {
		o->help_topic = a->i < argc ? argv[a->i] : NULL;
		if (o->help_topic && !is_sub(o->help_topic)) {
			snprintf(err, errlen, "no help for `%s`", o->help_topic);
			return CLI_ERROR;
		}
		return CLI_HELP;
	}
	o->cmd = !strcmp(sub, "list") ? CMD_LIST : !strcmp(sub, "lsp-setup") ? CMD_LSP_SETUP
		: !strcmp(sub, "fixture") ? CMD_FIXTURE : CMD_REPL;
	for (; a->i < argc && !a->failed; a->i++) {
		const char *w = argv[a->i];
		if (!strcmp(w, "--help") || !strcmp(w, "-h")) {
			o->help_topic = sub;
			return CLI_HELP;
		}
		if (o->cmd == CMD_FIXTURE || o->cmd == CMD_REPL) {
			if (push_str(&o->rest, &o->nrest, w) < 0)
				fail(a, "out of memory");
			continue;
		}
		if (o->cmd == CMD_LIST) {
			/* run-mode flags are accepted so `provium list` can be
			 * given the same command line as a run (a dry run):
			 * --filter, --since and --rerun-failed select. */
			if (take_flag(a, "--fixtures", NULL))
				o->list_fixtures = true;
			else if (take_flag(a, "--tests", NULL))
				o->list_tests = true;
			else if (w[0] == '-' && w[1] != '\0')
				run_flag(a, o);
			else if (push_str(&o->paths, &o->npaths, w) < 0)
				fail(a, "out of memory");
			continue;
		}
		/* lsp-setup */
		if (take_flag(a, "--force", NULL))
			o->lsp_force = true;
		else if (w[0] == '-')
			fail(a, "lsp-setup: unknown flag `%s`", w);
		else if (o->lsp_dir)
			fail(a, "lsp-setup takes at most one directory");
		else
			o->lsp_dir = w;
	}
	if (!a->failed && o->list_fixtures && o->list_tests)
		fail(a, "list: --fixtures and --tests are mutually exclusive");
	return a->failed ? CLI_ERROR : CLI_OK;
}

int cli_parse(int argc, char **argv, struct cli_opts *o, char *err, size_t errlen)
{
	struct argp a = { .argc = argc, .argv = argv, .i = 1, .err = err, .errlen = errlen };
	bool dashdash = false;

	memset(o, 0, sizeof *o);
	o->overcommit = o->overcommit_given = 1.0;
	o->timeout_ns = DEFAULT_TIMEOUT_NS;
	o->vmm = VMM_QEMU;
	o->accel = -1;
	o->durations = -1;
	err[0] = '\0';

	for (; a.i < argc && !a.failed; a.i++) {
		const char *w = argv[a.i];
		/* The first positional word names a subcommand even after
		 * flags (`--config x.toml fixture list`); run_flag() has
		 * consumed the values of the flags before it. A path named
		 * like a subcommand is still reachable as `./list`. */
		if (!dashdash && o->npaths == 0 && is_sub(w))
			return parse_sub(&a, o, err, errlen);
		if (dashdash || w[0] != '-' || w[1] == '\0') {
			if (push_str(&o->paths, &o->npaths, w) < 0)
				fail(&a, "out of memory");
			continue;
		}
		if (!strcmp(w, "--")) {
			dashdash = true;
			continue;
		}
		if (!strcmp(w, "--help") || !strcmp(w, "-h"))
			return CLI_HELP;
		if (!strcmp(w, "--version") || !strcmp(w, "-V")) {
			o->cmd = CMD_VERSION;
			return CLI_OK;
		}
		run_flag(&a, o);
	}
	if (!a.failed && o->json && o->events_stdout)
		fail(&a, "--json and --events-stdout are mutually exclusive");
	if (!a.failed && o->watch)
		o->rerun_failed = false; /* documented: dropped under --watch */
	return a.failed ? CLI_ERROR : CLI_OK;
}

void cli_opts_free(struct cli_opts *o)
{
	for (size_t i = 0; i < o->npaths; i++)
		free(o->paths[i]);
	free(o->paths);
	for (size_t i = 0; i < o->nrest; i++)
		free(o->rest[i]);
	free(o->rest);
	test_filter_free(&o->tf);
	memset(o, 0, sizeof *o);
}

void cli_usage(FILE *f, const char *topic)
{
	if (topic && !strcmp(topic, "list")) {
		fputs("usage: provium list [--tests | --fixtures] [--json] [--config PATH] [--filter STR] [PATHS]...\n"
		      "  List discovered *.test.lua files (or, with --fixtures, fixture names:\n"
		      "  root-relative paths without the .fixture.lua suffix). Runs nothing.\n"
		      "  --tests    also each file's tests and their tags, as a static scan sees\n"
		      "             them (a computed name is listed with its line)\n"
		      "  --json     one JSON document {\"files\": [{\"path\", \"tests\"}]}\n"
		      "  Run flags are accepted; --filter, --since, --rerun-failed, --shard,\n"
		      "  -k/--test and path::NAME select.\n", f);
		return;
	}
	if (topic && !strcmp(topic, "lsp-setup")) {
		fputs("usage: provium lsp-setup [DIR] [--force]\n"
		      "  Write DIR/.provium-meta/types.lua (---@meta stubs for the harness globals)\n"
		      "  and DIR/.luarc.json. An existing .luarc.json is kept unless --force;\n"
		      "  the snippet to merge by hand is printed instead. DIR defaults to `.`.\n", f);
		return;
	}
	if (topic && !strcmp(topic, "fixture")) {
		fputs("usage: provium fixture list|build PATH|rebuild PATH|clean|stale\n"
		      "  Manage the fixture cache. Flags: --config PATH, --vmm qemu|local.\n", f);
		return;
	}
	if (topic && !strcmp(topic, "repl")) {
		fputs("usage: provium repl <PROFILE> [--name NAME] [--fixture PATH]\n"
		      "  Boot a VM (or restore a fixture) and read Lua lines from stdin against\n"
		      "  it: `vm` is the VM, `provium` the lab. `.exit` or EOF shuts it down.\n"
		      "  Flags: --name NAME (default repl), --fixture PATH (PROFILE then optional),\n"
		      "  --vmm qemu|local, --config PATH, --no-preflight.\n", f);
		return;
	}
	fputs("usage: provium [PATHS]... [FLAGS]\n"
	      "       provium list [--tests | --fixtures] [--json]\n"
	      "       provium lsp-setup [DIR] [--force]\n"
	      "       provium fixture list|build|rebuild|clean|stale\n"
	      "       provium repl <PROFILE> [--name NAME] [--fixture PATH]\n"
	      "       provium help [SUBCOMMAND]\n"
	      "\n"
	      "Runs every *.test.lua under PATHS (or the config's roots, or `.`).\n"
	      "A PATH of the form FILE::NAME runs only the test named NAME (exact) of FILE.\n"
	      "\n"
	      "Selection:\n"
	      "  --config PATH          config file (default: the nearest provium.toml\n"
	      "                         in the cwd or a parent directory)\n"
	      "  --filter STR           only files whose path contains STR\n"
	      "  -k, --test STR         only tests whose name contains STR (repeatable: any)\n"
	      "  --include-slow         include meta.slow tests\n"
	      "  --tag TAG              only tests with one of these tags (repeatable)\n"
	      "  --no-tag TAG           skip tests with any of these tags (repeatable)\n"
	      "  --tag-meta KEY=VALUE   only tests whose meta[KEY] contains VALUE (repeatable)\n"
	      "  --no-tag-meta KEY=VALUE  skip tests whose meta[KEY] contains VALUE\n"
	      "  --rerun-failed         only files in this project's failed list (failed\n"
	      "                         files join it, passing files leave it)\n"
	      "  --since PATH           only files modified after PATH\n"
	      "  --watch                re-run when files change (500 ms poll)\n"
	      "  --shard K/N            only the K-th of N disjoint parts of the selection (CI jobs)\n"
	      "  --allow-empty          no file selected or no test run is not an error (exit 0)\n"
	      "VMM and resources:\n"
	      "  --vmm qemu|local       VMM backend (default qemu)\n"
	      "  --accel auto|kvm|tcg   accelerator for every profile (default: the profile's, auto)\n"
	      "  --mem SIZE             pool memory (default 80% of RAM)\n"
	      "  --cpus N               pool CPUs (default: online CPUs)\n"
	      "  --cpu-overcommit F     multiplier on --cpus, clamped to [0.5, 8]\n"
	      "  --no-preflight         skip the startup environment checks\n"
	      "  --no-ksm               skip KSM tuning\n"
	      "Lifecycle:\n"
	      "  --timeout DUR          per-file timeout (default 300s; 0 disables)\n"
	      "  --fail-fast            stop dispatching after the first failed file\n"
	      "Output:\n"
	      "  -v, --verbose          show passing and skipped tests too\n"
	      "  -q, --quiet            show only failing files and the summary\n"
	      "  --json                 one JSON object per file on stdout\n"
	      "  --no-capture           stream each file's stdout/stderr live, `[path] ` prefixed\n"
	      "                         (default: captured, shown under failing files; all with -v)\n"
	      "  --color auto|always|never  PASS/FAIL colours (auto: on a terminal, unless NO_COLOR)\n"
	      "  --durations N          list the N slowest tests after the summary (0 = all)\n"
	      "  --junit PATH           after the run, write a JUnit XML report to PATH\n"
	      "                         (CI test reporters; exit 2 if it cannot be written)\n"
	      "  --save-events PATH     write the event stream to PATH\n"
	      "  --events-stdout        event frames on stdout (human output to stderr)\n"
	      "  --events-socket PATH   serve the event stream on a unix socket\n"
	      "  --coverage             after the run, pipe the events to provium-coverage (on PATH)\n"
	      "  -h, --help             this text;  -V, --version  the version\n"
	      "\n"
	      "Exit status: 0 all files passed, 1 some file failed, 2 usage/config/internal error,\n"
	      "5 nothing ran (no file selected, or every test skipped; --allow-empty makes it 0),\n"
	      "130 interrupted by Ctrl-C (143 by SIGTERM): the files that finished are summarised.\n", f);
}
