/* lstate.h — the Lua state a test file runs in, built for the forked
 * runner (runner.c), a fixture build (lfixture.c) and `provium repl`.
 *
 * Setup, in order: standard libraries, the runtime primitives
 * (lruntime.c), the json module, the lab C module, the snapshot
 * (lsnapshot.c) and fixture (lfixture.c) globals; the runner-side
 * globals of docs/internals.md for o (_provium_file, _provium_file_dir,
 * _provium_run_dir, _provium_vmm, _provium_profiles, _provium_filter,
 * _provium_roots); package.path so `require("a.b")` resolves beside the
 * file and under every root; then the embedded preludes lab.lua, net.lua,
 * compare.lua (how assertions show and compare values) and framework.lua. */
#ifndef PROVIUM_LSTATE_H
#define PROVIUM_LSTATE_H

#include <stddef.h>
#include <lua.h>

#include "runner.h"   /* struct runner_opts: what the state is for */

/* A new state as above, with framework.lua's result table on the stack.
 * The file at o->path is not loaded, and no root lab exists yet (call
 * _provium_new_root). NULL with err on failure. */
lua_State *lstate_new(const struct runner_opts *o, char *err, size_t errlen);

#endif
