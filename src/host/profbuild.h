/* profbuild.h — a profile's `build` hook (docs/profiles.md).
 *
 * profbuild_ensure() makes sure the build of one profile has run for its
 * current key: config.c names the output directory after the key (the
 * command as written + the declared inputs' content), so a directory
 * holding the stamp `.provium-built` is a finished build of exactly these
 * inputs and nothing runs. Otherwise, under an exclusive lock on
 * <out>.lock (concurrent runners wait for one build), the directory is
 * emptied and `sh -c <cmd>` runs in cwd with PROVIUM_OUT=<out>, its output
 * in <out>.log; exit 0 writes the stamp. 0, or -1 with err (the exit
 * status and the log's last lines). Prints nothing. */
#ifndef PROVIUM_PROFBUILD_H
#define PROVIUM_PROFBUILD_H

#include <stddef.h>

int profbuild_ensure(const char *cmd, const char *out, const char *cwd, char *err, size_t errlen);

#endif
