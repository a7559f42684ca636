/* tempfile.h — temp files and directories that go away on their own
 * (git's tempfile idea). Everything is created under $TMPDIR (or /tmp
 * when unset or empty) and recorded in one registry; an atexit handler
 * removes what is still registered. Each entry remembers the pid that
 * registered it: a forked child that exits never removes its parent's
 * temps, only its own.
 *
 * Calling sequence:
 *     char *d = make_temp_dir("provium-repl");   "$TMPDIR/provium-repl-XXXXXX"
 *     ... use d ...
 *     temp_remove(d)     remove it now (rm -rf) and drop it from the registry
 *  or temp_forget(d)     hand it over: it stays after exit
 *     free(d)
 *
 * Errors: NULL / -1 with errno; nothing is printed. Not async-signal-safe:
 * a process killed by a signal leaves its temps (rundir.c sweeps the run
 * directories of dead runs). */
#ifndef PROVIUM_TEMPFILE_H
#define PROVIUM_TEMPFILE_H

/* $TMPDIR when set and not empty, else "/tmp". */
const char *temp_base(void);

/* A new directory "<temp_base>/<prefix>-XXXXXX" (mode 0700), registered.
 * A malloc'd path, or NULL with errno. */
char *make_temp_dir(const char *prefix);

/* A new file "<temp_base>/<prefix>-XXXXXX" (mode 0600, O_CLOEXEC) open in
 * *fd, registered. A malloc'd path, or NULL with errno. */
char *make_temp_file(const char *prefix, int *fd);

/* Register an existing path (is_dir: removed with rm -rf) for removal at
 * exit by this process. 0 / -1 (ENOMEM). */
int temp_register(const char *path, int is_dir);

/* Drop path from the registry without touching it (handed over). */
void temp_forget(const char *path);

/* Remove path now (rm -rf for a directory) and drop it from the registry.
 * 0 / -1 with errno. */
int temp_remove(const char *path);

#endif
