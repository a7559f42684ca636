/* lfixture.h — the Lua side of fixtures: running a *.fixture.lua, and the
 * _provium_fixture global.
 *
 * Lua global installed by lfixture_open():
 *     _provium_fixture(kind, name, restore_fn) -> restore_fn's result:
 *         get-or-build (fixture/build.h, with lfixture_build as the build
 *         step); restore_fn(entry_path) runs under the entry's shared lock;
 *         raising {user_error = msg} there is a caller error (entry kept),
 *         any other error marks the entry corrupt.
 *
 * No Lua header is needed to use lfixture_build (cli_fixture.c passes it
 * to fixture_build_any). */
#ifndef PROVIUM_LFIXTURE_H
#define PROVIUM_LFIXTURE_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "fixture/build.h"

struct lua_State;

/* Register _provium_fixture. cfg and event_fd are what fixture builds and
 * events need (process-wide: one runner per process). */
void lfixture_open(struct lua_State *L, const struct config *cfg, int event_fd);

/* A fixture_build_fn (build.h): run the fixture file of name (resolved
 * under e->roots) in a fresh Lua state in this process, with its own root
 * lab; the chunk must return a Snapshot (kind FX_VM) or a LabSnapshot
 * (FX_LAB), either when any (*got says which). Its VMs are torn down
 * before it returns; the snapshot's path is left at *out (malloc'd,
 * outside the build's scratch dir) for the caller to install. ctx is
 * unused. 0, or -1 with err. */
int lfixture_build(void *ctx, const struct fixture_env *e, const char *name, enum fx_kind kind,
                   bool any, enum fx_kind *got, char **out, char *err, size_t errlen);

#endif
