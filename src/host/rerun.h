/* rerun.h — the --rerun-failed state file.
 *
 * Location: $PROVIUM_RERUN_STATE, else ~/.cache/provium/rerun.json, else
 * (no $HOME) /tmp/provium-rerun.json. Content: a JSON array of the
 * canonical (absolute, symlink-free) paths of the files that failed;
 * {"failed": [...]} (an earlier provium's form) is read too. Written
 * atomically (temp file in the same directory, fsync, rename) only after a
 * run with failures; a clean run leaves it alone. */
#ifndef PROVIUM_RERUN_H
#define PROVIUM_RERUN_H

#include <stddef.h>

/* malloc'd path of the state file. */
char *rerun_state_path(void);

/* Load the failed set. 1 loaded (n >= 1), 0 no state file or an empty
 * set, -1 error (err). */
int rerun_load(const char *path, char ***paths, size_t *n, char *err, size_t errlen);

/* Write the failed set atomically (creating parent dirs). 0 or -1 (err). */
int rerun_save(const char *path, char *const *paths, size_t n, char *err, size_t errlen);

void rerun_free(char **paths, size_t n);

#endif
