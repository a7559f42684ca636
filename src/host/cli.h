/* cli.h — the provium command line, parsed into one struct.
 *
 * cli_parse() only parses and validates shapes (mutual exclusions, numbers,
 * sizes, durations); it never touches the file system or prints. Its result:
 *   CLI_OK     opts filled; opts->cmd says what to run
 *   CLI_HELP   the user asked for usage (print cli_usage(), exit 0)
 *   CLI_ERROR  usage error, message in err (exit 2)
 * Both `--flag VALUE` and `--flag=VALUE` are accepted; `--` ends flags. */
#ifndef PROVIUM_CLI_H
#define PROVIUM_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "filter.h"
#include "runner.h"

enum cli_cmd { CMD_RUN = 0, CMD_LIST, CMD_LSP_SETUP, CMD_FIXTURE, CMD_REPL, CMD_VERSION };
enum cli_result { CLI_OK = 0, CLI_HELP = 1, CLI_ERROR = -1 };
enum verbosity { VERB_NORMAL = 0, VERB_VERBOSE, VERB_QUIET };
enum color_mode { COLOR_AUTO = 0, COLOR_ALWAYS, COLOR_NEVER };

struct cli_opts {
	enum cli_cmd cmd;
	const char *help_topic;     /* for CLI_HELP: NULL or a subcommand name */
	const char *config_path;    /* NULL = default ./provium.toml */
	char **paths; size_t npaths;
	const char *filter;         /* --filter substring */
	struct test_filter tf;
	bool rerun_failed, watch;
	const char *since;
	int shard_k, shard_n;       /* --shard K/N (1 <= K <= N); 0/0 = all files */
	bool allow_empty;           /* --allow-empty: no file / no test run is exit 0 */
	enum vmm_kind vmm;
	int accel;                  /* -1 = per profile; else an enum accel_kind (--accel) */
	uint64_t mem;               /* 0 = default (80 % of RAM) */
	int cpus;                   /* 0 = default (online CPUs) */
	double overcommit;          /* clamped to [0.5, 8] */
	double overcommit_given;    /* as typed (main notes a clamp) */
	bool no_preflight, no_ksm;
	int64_t timeout_ns;         /* 0 disables; default 300 s */
	bool fail_fast;
	enum verbosity verbosity;
	bool json, events_stdout, coverage;
	const char *save_events, *events_socket;
	long durations;             /* --durations N: list the N slowest tests (0 = all); -1 = off */
	const char *junit_path;     /* --junit PATH: JUnit XML report, or NULL */
	bool no_capture;            /* --no-capture: runner output streamed live, `[path] ` prefixed */
	enum color_mode color;      /* --color=auto|always|never */
	/* list */
	bool list_fixtures;
	bool list_tests;            /* list --tests: each file's tests (static scan) */
	/* lsp-setup */
	const char *lsp_dir; bool lsp_force;
	/* fixture / repl: the rest of the words, unparsed */
	char **rest; size_t nrest;
};

int cli_parse(int argc, char **argv, struct cli_opts *o, char *err, size_t errlen);
void cli_opts_free(struct cli_opts *o);
/* Usage text for the whole program (topic NULL) or one subcommand. */
void cli_usage(FILE *f, const char *topic);

#endif
