/* snaptree.h — a directory tree as one snapshot section (the `--vmm local`
 * backend's whole guest state is its scratch directory).
 *
 * snaptree_write() walks dir (depth-first, names sorted) and streams a
 * simple archive into the writer's open section: one record per directory,
 * regular file and symlink (other types are skipped), then an end record.
 * snaptree_extract() reads the current section of a reader into dir (which
 * must exist and be empty), refusing absolute paths, `..` components and
 * writes through symlinks: archive bytes are untrusted input.
 * Both: 0 / -1 with err. */
#ifndef PROVIUM_SNAPTREE_H
#define PROVIUM_SNAPTREE_H

#include <stddef.h>

struct snap_writer;
struct snap_reader;

int snaptree_write(struct snap_writer *w, const char *dir, char *err, size_t errlen);
int snaptree_extract(struct snap_reader *r, const char *dir, char *err, size_t errlen);

#endif
