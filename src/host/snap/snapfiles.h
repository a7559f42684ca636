/* snapfiles.h — the files around a snapshot on disk, beside the snapfile
 * format itself (snapfile.h): how big a snapshot is, deleting it together
 * with the RAM files the qemu backend expanded next to it, and fresh
 * scratch paths for new snapshots. The Lua Snapshot / LabSnapshot objects
 * (lua/lsnapshot.c) are bindings over these.
 *
 * On disk:
 *     <path>              a Snapshot: one snapfile
 *     <path>.ram-<id>     guest RAM expanded from it by restores
 *                         (vmm/qemu_migrate.h), ".tmp.<pid>" while written
 *     <dir>/              a LabSnapshot: lab.json, vm-<n>.snap, lab-<n>/
 *
 * Errors: 0 (or a pointer) / -1 (or NULL) with errno; nothing printed.
 * Callers format the messages. */
#ifndef PROVIUM_SNAPFILES_H
#define PROVIUM_SNAPFILES_H

#include <stdbool.h>
#include <stdint.h>

/* A Snapshot file's size (is_dir false), or the sizes of the regular
 * files directly under a LabSnapshot directory added up (is_dir true;
 * symlinks followed, subdirectories not entered). 0 when path is gone. */
uint64_t snapfiles_size(const char *path, bool is_dir);

/* Unlink every "<path>.ram-*" next to path (RAM files and their temps).
 * Best effort: the number of files removed, -1 with errno only when the
 * directory could not be read at all. */
int snapfiles_rm_ram(const char *path);

/* Delete a snapshot: rm -rf path (fsutil.h) and, for a Snapshot file
 * (is_dir false), its RAM siblings. Idempotent; 0, or -1 with the errno
 * of rm_rf's first failure. */
int snapfiles_delete(const char *path, bool is_dir);

/* A path "<dir>/<prefix>-<pid>-<n><ext>" that does not exist yet (lstat),
 * n counting up within the process. dir NULL = temp_base() (tempfile.h).
 * Nothing is created. malloc'd, or NULL (ENOMEM). */
char *snapfiles_tmp_path(const char *dir, const char *prefix, const char *ext);

/* mkdir path (mode 0755; the parent must exist). fresh: an existing path
 * is an error (EEXIST); else anything already at path is success. */
int snapfiles_mkdir(const char *path, bool fresh);

#endif
