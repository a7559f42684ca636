/* qemu_migrate.h — moving a QEMU guest's state in and out of a snapfile:
 * the migration stream, and the RAM file of the fast path.
 *
 * The qemu backend (qemu.c) decides *when* (preconditions, stop/cont,
 * which QEMU to start); this module does the byte moving:
 *
 *   save:  qmig_save_stream(qmp, w)  getfd(one end of a socketpair) +
 *          migrate "fd:" while the host reads the other end and feeds
 *          snapfile_write (zstd) — the raw stream never touches disk.
 *   load:  qmig_load_stream(qmp, r)  QEMU started with -incoming defer:
 *          getfd + migrate-incoming "fd:" while the host writes the
 *          decompressed section into the other end.
 *   RAM (the fast path): guest RAM lives in a file-backed memory backend;
 *          with x-ignore-shared the migration stream holds device state
 *          only, and the RAM file's non-zero extents go in their own
 *          section ("ram": records of u64 offset, u64 length, bytes;
 *          big-endian). qmig_expand_ram writes them back into a sparse
 *          file that a restored QEMU maps privately (share=off).
 *
 * A socketpair rather than a pipe: send(MSG_NOSIGNAL) turns a QEMU that
 * gave up mid-load into EPIPE instead of SIGPIPE.
 *
 * Errors: 0 / -1 with err (QEMU's own migration error quoted when it has
 * one). Deadlines: QMIG_STALL_MS without progress is a failure. */
#ifndef PROVIUM_QEMU_MIGRATE_H
#define PROVIUM_QEMU_MIGRATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "snap/snapfile.h"
#include "vmm/qmp.h"

#define QMIG_STALL_MS 60000

/* The VM must be stopped. Streams the whole migration into the open
 * section of w. ignore_shared sets x-ignore-shared (else clears it). */
int qmig_save_stream(struct qmp *q, struct snap_writer *w, bool ignore_shared,
                     char *err, size_t errlen);

/* QEMU waits in -incoming defer; feeds the current section of r until its
 * end and waits for the migration to complete (QEMU is then paused when
 * started with -S). */
int qmig_load_stream(struct qmp *q, struct snap_reader *r, bool ignore_shared,
                     char *err, size_t errlen);

/* Write the non-zero pages of the first size bytes of fd (pread; the VM
 * is stopped) as "ram" records into the open section of w. */
int qmig_write_ram(struct snap_writer *w, int fd, uint64_t size, char *err, size_t errlen);

/* Expand the current ("ram") section of r into a sparse file of size
 * bytes at path: written to path.tmp.<pid>, fsync'd, renamed into place
 * (concurrent expanders race harmlessly: each rename installs a complete
 * file). */
int qmig_expand_ram(struct snap_reader *r, const char *path, uint64_t size,
                    char *err, size_t errlen);

/* "7.2.0 (Debian 1:7.2+dfsg-7)" from query-version; malloc'd or NULL. */
char *qmig_qemu_version(struct qmp *q, char *err, size_t errlen);

#endif
