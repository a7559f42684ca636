/* lsnapshot.h — Snapshot / LabSnapshot userdata and the snapshot entry
 * points of the Lua side (the fixture one is lfixture.h's).
 *
 * Lua globals installed by lsnapshot_open():
 *     _provium_snapshot_new(path, is_lab) -> Snapshot / LabSnapshot
 *     _provium_snapshot_path(v, want_lab, what) -> path from a userdata or string
 *     _provium_snap_info(path) -> {vm_name, profile, backend, qemu_version,
 *                                   memory, cpus} (raises on a bad header)
 *     _provium_tmp_path(prefix, ext, make_dir) -> a fresh path in the run dir
 *     _provium_rm_rf(path), _provium_mkdir(path)
 *
 * Snapshot methods: path(), size() (0 when gone), delete() (idempotent).
 * LabSnapshot: the same over a directory (size = files directly under it;
 * delete is recursive). */
#ifndef PROVIUM_LSNAPSHOT_H
#define PROVIUM_LSNAPSHOT_H

#include <stdbool.h>
#include <lua.h>

#define SNAPSHOT_MT "provium.snapshot"
#define LABSNAPSHOT_MT "provium.labsnapshot"

/* Register the metatables and globals. */
void lsnapshot_open(lua_State *L);

/* Push a new Snapshot (lab false) / LabSnapshot userdata for path. */
void lsnapshot_push(lua_State *L, const char *path, bool lab);

/* The path of the Snapshot userdata or string at idx; raises otherwise. */
const char *lsnapshot_checkpath(lua_State *L, int idx, bool lab);

/* A fresh path "<run_dir>/<prefix>-<n><ext>" (pushed on the stack too). */
const char *lsnapshot_tmp_path(lua_State *L, const char *prefix, const char *ext);

#endif
