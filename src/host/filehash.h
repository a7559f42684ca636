/* filehash.h — content digests of host files, remembered per process.
 *
 * A fixture key hashes kernels, initrds and disk images on every fixture
 * call (fixture/key.c), and a snapshot of a VM with boot-time disks
 * records the digest of each image a restore will open again
 * (vmm/qemu_bootdisk_snap.c): both want the bytes' XXH3-128, read once
 * per process per file version. The memo is keyed by (device, inode,
 * size, mtime): a file rewritten in place gets a new mtime, a replaced
 * one a new inode. At most 256 files are remembered; later ones are
 * simply hashed again each time.
 *
 *   filehash(path, &st, &h)      0, or -1 with errno (unreadable)
 *   filehash_hex(path, hex)      stat + filehash; 32 hex digits + NUL */
#ifndef PROVIUM_FILEHASH_H
#define PROVIUM_FILEHASH_H

#include <sys/stat.h>
#include <xxhash.h>

/* The XXH3-128 of regular file path's bytes; st is its stat. */
int filehash(const char *path, const struct stat *st, XXH128_hash_t *out);

/* The same as 32 lowercase hex digits into hex (33 bytes). */
int filehash_hex(const char *path, char hex[33]);

#endif
