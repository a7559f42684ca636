/* test_cli.c — command-line parsing, test filters, pool arithmetic. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cli.h"
#include "filter.h"
#include "pool.h"

static char err[256];

/* cli_parse() keeps pointers into argv, so the copies live until the
 * group teardown frees them all. */
static char **kept[256];
static size_t nkept;

static int free_kept(void **state)
{
	(void)state;
	for (size_t i = 0; i < nkept; i++) {
		for (char **a = kept[i]; *a; a++)
			free(*a);
		free(kept[i]);
	}
	nkept = 0;
	return 0;
}

static int parse_v(struct cli_opts *o, const char *const *words)
{
	int n = 0;
	while (words[n])
		n++;
	char **argv = calloc((size_t)n + 2, sizeof *argv);
	assert_true(argv && nkept < sizeof kept / sizeof *kept);
	kept[nkept++] = argv;
	argv[0] = strdup("provium");
	for (int i = 0; i < n; i++)
		argv[i + 1] = strdup(words[i]);
	return cli_parse(n + 1, argv, o, err, sizeof err);
}
#define PARSE(o, ...) parse_v((o), (const char *const[]){ __VA_ARGS__, NULL })

static void defaults(void **state)
{
	struct cli_opts o;
	(void)state;
	assert_int_equal(parse_v(&o, (const char *const[]){ NULL }), CLI_OK);
	assert_int_equal(o.cmd, CMD_RUN);
	assert_int_equal(o.npaths, 0);
	assert_true(o.timeout_ns == 300LL * 1000000000LL);
	assert_int_equal(o.vmm, VMM_QEMU);
	assert_true(o.overcommit == 1.0);
	cli_opts_free(&o);
}

static void flags_and_paths_mixed(void **state)
{
	struct cli_opts o;
	(void)state;
	assert_int_equal(PARSE(&o, "tests/", "--filter", "net", "--vmm=local", "a.test.lua",
			       "--timeout", "30s", "--mem", "4G", "--cpus", "3", "-v", "--fail-fast",
			       "--save-events", "/tmp/e", "--tag", "smoke", "--tag", "fast",
			       "--tag-meta", "subsystems=peinit", "--include-slow"), CLI_OK);
	assert_int_equal(o.npaths, 2);
	assert_string_equal(o.paths[0], "tests/");
	assert_string_equal(o.paths[1], "a.test.lua");
	assert_string_equal(o.filter, "net");
	assert_int_equal(o.vmm, VMM_LOCAL);
	assert_true(o.timeout_ns == 30LL * 1000000000LL);
	assert_true(o.mem == 4ull << 30);
	assert_int_equal(o.cpus, 3);
	assert_int_equal(o.verbosity, VERB_VERBOSE);
	assert_true(o.fail_fast);
	assert_string_equal(o.save_events, "/tmp/e");
	assert_int_equal(o.tf.ntags, 2);
	assert_int_equal(o.tf.ntag_meta, 1);
	assert_string_equal(o.tf.tag_meta[0].key, "subsystems");
	assert_string_equal(o.tf.tag_meta[0].value, "peinit");
	assert_true(o.tf.include_slow);
	cli_opts_free(&o);
}

static void timeouts(void **state)
{
	struct cli_opts o;
	(void)state;
	assert_int_equal(PARSE(&o, "--timeout", "0"), CLI_OK);
	assert_true(o.timeout_ns == 0);
	cli_opts_free(&o);
	assert_int_equal(PARSE(&o, "--timeout", "45"), CLI_OK);
	assert_true(o.timeout_ns == 45LL * 1000000000LL);
	cli_opts_free(&o);
	assert_int_equal(PARSE(&o, "--timeout=500ms"), CLI_OK);
	assert_true(o.timeout_ns == 500LL * 1000000LL);
	cli_opts_free(&o);
	assert_int_equal(PARSE(&o, "--timeout", "soon"), CLI_ERROR);
	cli_opts_free(&o);
}

static void mutual_exclusions(void **state)
{
	struct cli_opts o;
	(void)state;
	assert_int_equal(PARSE(&o, "-v", "-q"), CLI_ERROR);
	assert_non_null(strstr(err, "mutually exclusive"));
	cli_opts_free(&o);
	assert_int_equal(PARSE(&o, "--quiet", "--verbose"), CLI_ERROR);
	cli_opts_free(&o);
	assert_int_equal(PARSE(&o, "--json", "--events-stdout"), CLI_ERROR);
	assert_non_null(strstr(err, "--json"));
	cli_opts_free(&o);
}

static void usage_errors(void **state)
{
	struct cli_opts o;
	(void)state;
	assert_int_equal(PARSE(&o, "--bogus"), CLI_ERROR);
	assert_non_null(strstr(err, "--bogus"));
	cli_opts_free(&o);
	assert_int_equal(PARSE(&o, "--filter"), CLI_ERROR);
	cli_opts_free(&o);
	assert_int_equal(PARSE(&o, "--vmm", "kvm"), CLI_ERROR);
	cli_opts_free(&o);
	assert_int_equal(PARSE(&o, "--cpus", "0"), CLI_ERROR);
	cli_opts_free(&o);
	assert_int_equal(PARSE(&o, "--tag-meta", "novalue"), CLI_ERROR);
	cli_opts_free(&o);
	assert_int_equal(PARSE(&o, "--fail-fast=yes"), CLI_ERROR);
	cli_opts_free(&o);
}

static void overcommit_clamped(void **state)
{
	struct cli_opts o;
	(void)state;
	assert_int_equal(PARSE(&o, "--cpu-overcommit", "100"), CLI_OK);
	assert_true(o.overcommit == 8.0);
	cli_opts_free(&o);
	assert_int_equal(PARSE(&o, "--cpu-overcommit", "0.1"), CLI_OK);
	assert_true(o.overcommit == 0.5);
	cli_opts_free(&o);
}

static void test_name_selection(void **state)
{
	struct cli_opts o;
	(void)state;
	assert_int_equal(PARSE(&o, "-k", "boot", "--test", "ping", "--test=a b", "t/x.test.lua::n"), CLI_OK);
	assert_int_equal(o.tf.nnames, 3);
	assert_string_equal(o.tf.names[0], "boot");
	assert_string_equal(o.tf.names[1], "ping");
	assert_string_equal(o.tf.names[2], "a b");
	assert_int_equal(o.npaths, 1);
	assert_string_equal(o.paths[0], "t/x.test.lua::n");
	char *j = test_filter_to_json(&o.tf);
	assert_non_null(strstr(j, "\"test\":[\"boot\",\"ping\",\"a b\"]"));
	free(j);
	cli_opts_free(&o);
	assert_int_equal(PARSE(&o, "-k"), CLI_ERROR);
	cli_opts_free(&o);
	assert_int_equal(PARSE(&o, "--test="), CLI_ERROR);
	assert_non_null(strstr(err, "-k/--test"));
	cli_opts_free(&o);
	assert_int_equal(PARSE(&o, "--tests"), CLI_ERROR); /* a list flag, not a run flag */
	cli_opts_free(&o);
	assert_int_equal(PARSE(&o, "list", "--tests", "-k", "x"), CLI_OK);
	assert_true(o.list_tests);
	assert_int_equal(o.tf.nnames, 1);
	cli_opts_free(&o);
	assert_int_equal(PARSE(&o, "list", "--tests", "--fixtures"), CLI_ERROR);
	cli_opts_free(&o);
}

static void watch_drops_rerun_failed(void **state)
{
	struct cli_opts o;
	(void)state;
	assert_int_equal(PARSE(&o, "--rerun-failed", "--watch"), CLI_OK);
	assert_false(o.rerun_failed);
	assert_true(o.watch);
	cli_opts_free(&o);
}

static void subcommands(void **state)
{
	struct cli_opts o;
	(void)state;
	assert_int_equal(PARSE(&o, "list", "--fixtures"), CLI_OK);
	assert_int_equal(o.cmd, CMD_LIST);
	assert_true(o.list_fixtures);
	cli_opts_free(&o);
	assert_int_equal(PARSE(&o, "lsp-setup", "dir", "--force"), CLI_OK);
	assert_int_equal(o.cmd, CMD_LSP_SETUP);
	assert_string_equal(o.lsp_dir, "dir");
	assert_true(o.lsp_force);
	cli_opts_free(&o);
	assert_int_equal(PARSE(&o, "help", "list"), CLI_HELP);
	assert_string_equal(o.help_topic, "list");
	cli_opts_free(&o);
	assert_int_equal(PARSE(&o, "fixture", "build", "x"), CLI_OK);
	assert_int_equal(o.cmd, CMD_FIXTURE);
	assert_int_equal(o.nrest, 2);
	cli_opts_free(&o);
	assert_int_equal(PARSE(&o, "--help"), CLI_HELP);
	cli_opts_free(&o);
	assert_int_equal(PARSE(&o, "--version"), CLI_OK);
	assert_int_equal(o.cmd, CMD_VERSION);
	cli_opts_free(&o);
}

static void subcommand_after_flags(void **state)
{
	struct cli_opts o;
	(void)state;
	/* value-taking flags before the subcommand: their values are skipped */
	assert_int_equal(PARSE(&o, "--config", "x.toml", "fixture", "list"), CLI_OK);
	assert_int_equal(o.cmd, CMD_FIXTURE);
	assert_string_equal(o.config_path, "x.toml");
	assert_int_equal(o.nrest, 1);
	assert_string_equal(o.rest[0], "list");
	cli_opts_free(&o);
	assert_int_equal(PARSE(&o, "--vmm", "local", "list", "--filter", "net", "dir"), CLI_OK);
	assert_int_equal(o.cmd, CMD_LIST);
	assert_int_equal(o.vmm, VMM_LOCAL);
	assert_string_equal(o.filter, "net");
	assert_int_equal(o.npaths, 1);
	assert_string_equal(o.paths[0], "dir");
	cli_opts_free(&o);
	assert_int_equal(PARSE(&o, "--config=c.toml", "--no-preflight", "repl", "default"), CLI_OK);
	assert_int_equal(o.cmd, CMD_REPL);
	assert_string_equal(o.config_path, "c.toml");
	assert_true(o.no_preflight);
	assert_int_equal(o.nrest, 1);
	assert_string_equal(o.rest[0], "default");
	cli_opts_free(&o);
	assert_int_equal(PARSE(&o, "--timeout", "5s", "-v", "help", "list"), CLI_HELP);
	assert_string_equal(o.help_topic, "list");
	cli_opts_free(&o);
	/* a subcommand name as a flag's value is that value */
	assert_int_equal(PARSE(&o, "--filter", "list", "tests"), CLI_OK);
	assert_int_equal(o.cmd, CMD_RUN);
	assert_string_equal(o.filter, "list");
	assert_int_equal(o.npaths, 1);
	cli_opts_free(&o);
	/* after a path, or spelled as a path, or after --, it is a path */
	assert_int_equal(PARSE(&o, "tests", "list"), CLI_OK);
	assert_int_equal(o.cmd, CMD_RUN);
	assert_int_equal(o.npaths, 2);
	assert_string_equal(o.paths[1], "list");
	cli_opts_free(&o);
	assert_int_equal(PARSE(&o, "--vmm", "local", "./list"), CLI_OK);
	assert_int_equal(o.cmd, CMD_RUN);
	assert_int_equal(o.npaths, 1);
	assert_string_equal(o.paths[0], "./list");
	cli_opts_free(&o);
	assert_int_equal(PARSE(&o, "--", "list"), CLI_OK);
	assert_int_equal(o.cmd, CMD_RUN);
	assert_int_equal(o.npaths, 1);
	cli_opts_free(&o);
	/* a bad flag before the subcommand is still an error */
	assert_int_equal(PARSE(&o, "--frob", "list"), CLI_ERROR);
	assert_non_null(strstr(err, "--frob"));
	cli_opts_free(&o);
	assert_int_equal(PARSE(&o, "--config"), CLI_ERROR);
	cli_opts_free(&o);
}

static void filter_json(void **state)
{
	struct cli_opts o;
	(void)state;
	assert_int_equal(PARSE(&o, "--tag", "a", "--no-tag", "b", "--tag-meta", "k=1", "--tag-meta", "k=2",
			       "--tag-meta", "j=x", "--no-tag-meta", "flaky=true"), CLI_OK);
	char *j = test_filter_to_json(&o.tf);
	assert_string_equal(j, "{\"include_slow\":false,\"tag\":[\"a\"],\"no_tag\":[\"b\"],"
			       "\"tag_meta\":[{\"key\":\"k\",\"value\":\"1\"},{\"key\":\"k\",\"value\":\"2\"},"
			       "{\"key\":\"j\",\"value\":\"x\"}],"
			       "\"no_tag_meta\":[{\"key\":\"flaky\",\"value\":\"true\"}]}");
	free(j);
	cli_opts_free(&o);

	struct kv kv;
	assert_int_equal(kv_parse("a=b=c", &kv), 0);
	assert_string_equal(kv.key, "a");
	assert_string_equal(kv.value, "b=c");
	free(kv.key);
	free(kv.value);
	assert_int_equal(kv_parse("=x", &kv), -1);
	assert_int_equal(kv_parse("x", &kv), -1);
}

static void pool_arithmetic(void **state)
{
	struct pool p;
	(void)state;
	pool_init(&p, 1ull << 30, 2, 1.0);
	assert_int_equal(p.total.cpus, 2);
	struct amount plain = pool_reservation(false, false, 0, false, 0);
	assert_true(plain.mem == POOL_RUNNER_MEM);
	assert_int_equal(plain.cpus, 1);
	struct amount big = pool_reservation(false, true, 2ull << 30, true, 2);
	assert_false(pool_ever_fits(&p, big));
	struct amount allcpu = pool_reservation(false, false, 0, true, 2);
	assert_int_equal(allcpu.cpus, 2);
	assert_true(pool_fits(&p, allcpu));
	pool_take(&p, plain);
	assert_true(pool_fits(&p, plain));
	pool_take(&p, plain);
	assert_false(pool_fits(&p, plain));
	pool_give(&p, plain);
	pool_give(&p, plain);
	assert_int_equal(p.used.cpus, 0);
	pool_init(&p, 1ull << 30, 2, 100.0);
	assert_int_equal(p.total.cpus, 16);

	/* --vmm local: 50 MiB + 0 CPUs per file, plus the claim as declared */
	struct amount l = pool_reservation(true, false, 0, false, 0);
	assert_true(l.mem == 50ull << 20);
	assert_int_equal(l.cpus, 0);
	l = pool_reservation(true, true, 1ull << 30, true, 2);
	assert_true(l.mem == (50ull << 20) + (1ull << 30));
	assert_int_equal(l.cpus, 2);
	l = pool_reservation(true, true, UINT64_MAX - 5, false, 0);
	assert_true(l.mem == UINT64_MAX); /* saturates */
	/* warm spare QEMUs add their memory, never CPUs */
	struct amount sp = pool_with_spares(plain);
	assert_true(sp.mem == POOL_RUNNER_MEM + POOL_SPARES * POOL_SPARE_MEM);
	assert_int_equal(sp.cpus, plain.cpus);
	assert_true(pool_with_spares((struct amount){ UINT64_MAX - 1, 0 }).mem == UINT64_MAX);
	/* exactly the free budget fits; one byte or CPU more does not */
	pool_init(&p, 1024, 4, 1.0);
	pool_take(&p, (struct amount){ 1, 0 });
	assert_true(pool_fits(&p, (struct amount){ 1023, 4 }));
	assert_false(pool_fits(&p, (struct amount){ 1024, 4 }));
	assert_false(pool_fits(&p, (struct amount){ 1023, 5 }));
	pool_give(&p, (struct amount){ 5000, 9 }); /* never below zero */
	assert_true(p.used.mem == 0 && p.used.cpus == 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(defaults),
		cmocka_unit_test(flags_and_paths_mixed),
		cmocka_unit_test(timeouts),
		cmocka_unit_test(mutual_exclusions),
		cmocka_unit_test(usage_errors),
		cmocka_unit_test(overcommit_clamped),
		cmocka_unit_test(watch_drops_rerun_failed),
		cmocka_unit_test(test_name_selection),
		cmocka_unit_test(subcommands),
		cmocka_unit_test(subcommand_after_flags),
		cmocka_unit_test(filter_json),
		cmocka_unit_test(pool_arithmetic),
	};
	return cmocka_run_group_tests_name("cli", tests, NULL, free_kept);
}
