/* rerun.h — the --rerun-failed state file, one per project.
 *
 * Location: $PROVIUM_RERUN_STATE when set (used as is), else
 * ~/.cache/provium/rerun/<dir name>-<hash of the project directory>.json
 * ($HOME unset: /tmp instead of ~), so two projects never share a list.
 * The project directory is the config file's (the cwd without one).
 * Content: a JSON array of the canonical (absolute, symlink-free) paths
 * of the files in the list; {"failed": [...]} (an earlier provium's form)
 * is read too. After each completed run the list is updated
 * (rerun_update): files that failed join it, files that passed leave it,
 * files the run did not select keep their place. It is written
 * atomically (temp file in the same directory, fsync, rename), and not
 * created by runs that never failed. */
#ifndef PROVIUM_RERUN_H
#define PROVIUM_RERUN_H

#include <stddef.h>

/* malloc'd path of the state file of the project in project_dir (an
 * absolute directory), or NULL (out of memory). */
char *rerun_state_path(const char *project_dir);

/* Load the failed set. 1 loaded (n >= 1), 0 no state file or an empty
 * set, -1 error (err). */
int rerun_load(const char *path, char ***paths, size_t *n, char *err, size_t errlen);

/* Update the list (*list, *n; malloc'd, NULL-terminated or NULL) after a
 * run: drop entries in passed, append entries of failed not yet in it
 * (order: old entries first). 1 changed, 0 unchanged, -1 out of memory. */
int rerun_update(char ***list, size_t *n, char *const *failed, size_t nfailed,
		 char *const *passed, size_t npassed);

/* Write the failed set atomically (creating parent dirs). 0 or -1 (err). */
int rerun_save(const char *path, char *const *paths, size_t n, char *err, size_t errlen);

void rerun_free(char **paths, size_t n);

#endif
