/* rundir.h — ownership of provium's per-run directories
 * (`$TMPDIR/provium-run-XXXXXX`), so a run that was SIGKILLed does not
 * leave its directory behind for long.
 *
 * Calling sequence (dispatch_tmp_create does both):
 *     rundir_sweep_stale(base);   // remove dead runs' directories
 *     mkdtemp(...);
 *     rundir_mark_owner(dir);     // record our pid and its start time
 *
 * A directory is stale when its `owner` file names a process that no
 * longer exists, or a pid now reused by a process that started at another
 * time (the start time in /proc/<pid>/stat), as git treats a lock file
 * whose owner is gone. A directory without an owner file (another run
 * between its mkdtemp and its mark, or a run of an older provium) is only
 * stale after an hour. Only directories owned by our uid are touched;
 * symlinks are never followed. Errors are ignored: sweeping is best
 * effort, and a directory that cannot be removed is left as it was. */
#ifndef PROVIUM_RUNDIR_H
#define PROVIUM_RUNDIR_H

#include <sys/types.h>

/* Remove stale `provium-run-*` directories under base. The number of
 * directories removed. */
int rundir_sweep_stale(const char *base);

/* Write dir/owner ("<pid> <starttime>\n"). 0 / -1 with errno. */
int rundir_mark_owner(const char *dir);

/* Is the process described by an owner file's contents still running?
 * 1 yes, 0 no, -1 the text is not an owner record. */
int rundir_owner_alive(const char *text);

#endif
