/* qemu_ramsum.h — integrity of expanded RAM files.
 *
 * A fixture restore maps "<snap>.ram-<id>", expanded once from the
 * snapshot's "ram" section and then reused by every restore. The file
 * lives outside the snapshot's own checksums, so a flipped byte in it
 * would reach the guest unnoticed. Its digest is therefore recorded next
 * to it, in "<snap>.ram-<id>.sum" ("xxh3-64 <16 hex digits>\n", written
 * and renamed into place before the RAM file itself), and checked before
 * each restore maps it.
 *
 * The digest is canonical, independent of how the file system stores
 * holes: XXH3-64 over, for every 4 KiB page of the file that is not all
 * zeros, in ascending order, its offset (u64 little-endian) and its bytes.
 * The expander hashes the pages it writes (extents must be page aligned
 * and ascending); the verifier reads only the file's data regions
 * (SEEK_DATA/SEEK_HOLE), so the cost follows the guest's used memory, not
 * its size.
 *
 * Calling sequence:
 *     ramsum_init(&s);  ramsum_pages(&s, off, buf, n) ...;  d = ramsum_digest(&s);
 *     ramsum_write(ram_path, d, err, n);          // the sidecar, atomically
 *     ramsum_check(ram_path, why, n);             // 1 good, 0 bad (why)
 */
#ifndef PROVIUM_QEMU_RAMSUM_H
#define PROVIUM_QEMU_RAMSUM_H

#include <stddef.h>
#include <stdint.h>

#define XXH_STATIC_LINKING_ONLY   /* XXH3_state_t by value */
#include <xxhash.h>

#define RAMSUM_PAGE 4096u

struct ramsum {
	XXH3_state_t st;
};

void ramsum_init(struct ramsum *s);
/* Feed n bytes that sit at file offset off (both multiples of
 * RAMSUM_PAGE): the non-zero pages count. */
void ramsum_pages(struct ramsum *s, uint64_t off, const unsigned char *buf, size_t n);
uint64_t ramsum_digest(struct ramsum *s);

/* Record the digest of ram_path in its sidecar (temp, fsync, rename).
 * 0 / -1 with err. */
int ramsum_write(const char *ram_path, uint64_t digest, char *err, size_t errlen);

/* Compare ram_path's content with its sidecar. 1 when they match; 0
 * otherwise (the sidecar is missing or malformed, the file cannot be
 * read, or the content differs), with why saying which. */
int ramsum_check(const char *ram_path, char *why, size_t whylen);

/* Remove the sidecar of ram_path (best effort). */
void ramsum_remove(const char *ram_path);

#endif
