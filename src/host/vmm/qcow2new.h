/* qcow2new.h — write an empty qcow2 image: the copy-on-write overlay of a
 * boot-time disk (qemu_bootdisk.c). No qemu-img needed: the file is what
 * `qemu-img create -f qcow2 -o compat=1.1,cluster_size=65536` writes,
 * with no backing file name in it (QEMU gets the backing node on its
 * command line, so the overlay names no host path and can be carried to
 * another machine inside a snapshot).
 *
 * Errors: 0 / -1 with err filled. */
#ifndef PROVIUM_QCOW2NEW_H
#define PROVIUM_QCOW2NEW_H

#include <stddef.h>
#include <stdint.h>

/* The largest virtual size qcow2_create accepts (its L1 table then fits
 * the clusters it lays out: 64 TiB). */
#define QCOW2NEW_MAX_SIZE (UINT64_C(64) << 40)

/* Create (O_EXCL) path as an empty qcow2 of size bytes (a non-zero
 * multiple of 512), fsync'd. */
int qcow2_create(const char *path, uint64_t size, char *err, size_t errlen);

#endif
