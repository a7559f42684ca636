/* repl.h — the `provium repl` subcommand (repl.c): boot a VM (or restore a
 * fixture) and run an interactive Lua prompt against it on stdin/stdout. */
#ifndef PROVIUM_REPL_H
#define PROVIUM_REPL_H

#include "cli.h"

/* Run the subcommand with the words after `repl` in o->rest. Returns the
 * exit status: 0 after `.exit`/EOF, 1 the VM did not come up, 2 usage or
 * config error. */
int cmd_repl(const struct cli_opts *o);

#endif
