/* overlay.h — the initrd the guest boots: profile initrd + agent overlay
 * (+ a generated cpio of boot-opt `files`), merged into one content-hash
 * cached file.
 *
 * Calling sequence (VM layer, at boot):
 *   overlay_find(profile->agent_overlay_path, NULL, &ovl)     if inject_agent
 *   overlay_files_cpio(files, n, &buf, &len)                  if boot files
 *   parts = { {initrd}, {ovl}, {NULL, buf, len} }
 *   overlay_merge(scratch_root, parts, nparts, &merged)       -> -initrd
 *
 * Merging concatenates the parts, each padded with zero bytes to a 4-byte
 * boundary (the kernel's initramfs unpacker skips zero padding between
 * archives and needs an uncompressed newc archive to start 4-aligned).
 * The file is named by the SHA-256 of exactly those merged bytes:
 *   <scratch_root>/agent-overlay-cache/<sha256>.cpio.gz
 * (the .gz suffix is the documented name; the content is a concatenation
 * of whatever the parts are). A hit costs one read pass for the hash; a
 * miss writes a temp file (O_EXCL, same directory), fsyncs and renames, so
 * concurrent runners never see a half-written file.
 *
 * Errors: 0 / -1 with a message naming the path in err. */
#ifndef PROVIUM_OVERLAY_H
#define PROVIUM_OVERLAY_H

#include <stddef.h>

#define OVERLAY_NAME "agent-overlay.cpio.gz"
#define OVERLAY_CACHE_DIR "agent-overlay-cache"

/* One input: a file (path != NULL) or bytes in memory. */
struct overlay_part {
	const char *path;
	const void *data;
	size_t len;
};

/* One boot file: absolute guest path, content, permission bits. */
struct overlay_file {
	const char *path;
	const void *data;
	size_t len;
	unsigned mode;             /* 0 = 0644 */
};

/* Find the agent overlay. Order: profile_path (if non-NULL), then
 * $PROVIUM_OVERLAY, then <exe_dir>/../share/provium/agent-overlay.cpio.gz,
 * then walking up from exe_dir: <dir>/build/guest/agent-overlay.cpio.gz
 * and <dir>/dist/agent-overlay.cpio.gz. exe_dir NULL = the directory of
 * /proc/self/exe. An explicitly set path (profile or env) that does not
 * exist is an error naming it (no silent fallback). *out malloc'd. */
int overlay_find(const char *profile_path, const char *exe_dir, char **out,
		 char *err, size_t errlen);

/* Build an uncompressed newc cpio holding files (plus an entry for every
 * parent directory, 0755, each once) and the trailer. Paths must be
 * absolute without "." / ".." components. Deterministic: mtime 0, uid 0,
 * gid 0. *buf malloc'd. */
int overlay_files_cpio(const struct overlay_file *files, size_t n, unsigned char **buf,
		       size_t *len, char *err, size_t errlen);

/* The cache path the merge of parts would get (hashes the inputs). */
int overlay_cache_path(const char *scratch_root, const struct overlay_part *parts, size_t n,
		       char **out, char *err, size_t errlen);

/* Merge parts into the cache (see above); *out malloc'd = the cached path. */
int overlay_merge(const char *scratch_root, const struct overlay_part *parts, size_t n,
		  char **out, char *err, size_t errlen);

#endif
