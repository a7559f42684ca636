/* snapfile.h — the on-disk snapshot file (`*.snap`), shared by every VMM
 * backend and by the fixture cache.
 *
 * Layout (all integers big-endian):
 *     "PRVMSNAP"  u32 format_version  u32 header_len  header  u32 fnv1a(header)
 *     section*    "SECT" u16 name_len name u64 raw_len u64 zlen <zlen bytes: one zstd frame>
 *     trailer     "SEND" u32 nsections
 * The header is a JSON object (struct snap_header below); each section is a
 * named payload (the local backend writes one "fs" section holding an
 * archive of the VM's scratch tree; the QEMU backend writes its migration
 * stream and disk overlays) compressed as ONE zstd frame with a content
 * checksum, so garbling anywhere is detected by the reader.
 *
 * Writing (streams; nothing is buffered whole):
 *     snapfile_create(&w, path, &hdr) -> section_begin(w, "fs") ->
 *     snapfile_write(w, buf, n)... -> section_end(w) -> ... -> snapfile_finish(w)
 *     (finish writes the trailer, fsyncs and closes; snapfile_abort unlinks).
 * Reading:
 *     snapfile_open(&r, path, &hdr)      magic, version, header checksum/fields
 *     while (snapfile_next_section(r, &name, &raw) == 1)
 *         snapfile_read(r, buf, n, &got) until got == 0
 *     snapfile_close(r)
 * Every reader error is a message naming the file and what is wrong
 * ("truncated", "corrupt section", "format version 7, this provium reads 1").
 *
 * Errors: 0 / -1 with err filled (errno kept when it is an OS error). */
#ifndef PROVIUM_SNAPFILE_H
#define PROVIUM_SNAPFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* 2: the q35 machine gained QEMU_DISK_SLOTS pcie-root-ports (hotplug)
 * 3: qemu backend_data lists the VM's NICs (bridges) and where each sits
 * 4: header `disks` lists the boot-time disks, a "disk:<id>" section each
 *    carries its copy-on-write overlay (qcow2); version 3 files (no disks)
 *    are still read */
#define SNAPFILE_VERSION 4u
#define SNAPFILE_MIN_VERSION 3u
#define SNAPFILE_MAX_HEADER (1u << 20)

struct snap_header {
	uint32_t version;         /* filled by the reader; writers leave 0 */
	char *vm_name;
	char *profile;
	char *backend;            /* "local", "qemu" */
	char *qemu_version;       /* QEMU version string, or "local" */
	uint64_t memory;          /* bytes */
	int cpus;
	char *kernel_cmdline;     /* may be NULL */
	char *boot_opts;          /* JSON object text (as booted), may be NULL */
	char *devices;            /* JSON array text (device layout), may be NULL */
	char *disks;              /* JSON array text: the boot-time disks, one
	                           * {id, image, root, size, dev} each, in boot
	                           * order; NULL = none (and in version 3) */
	bool has_initial_time;    /* the VM pinned its clock */
	char *backend_data;       /* JSON object text, backend-private (qemu: ram_id,
	                           * ram_size, ...), may be NULL; additive, so
	                           * older readers ignore it */
};

struct snap_writer;
struct snap_reader;

int snapfile_create(struct snap_writer **out, const char *path, const struct snap_header *h,
                    char *err, size_t errlen);
int snapfile_section_begin(struct snap_writer *w, const char *name, char *err, size_t errlen);
int snapfile_write(struct snap_writer *w, const void *buf, size_t n, char *err, size_t errlen);
int snapfile_section_end(struct snap_writer *w, char *err, size_t errlen);
/* Trailer, fsync, close, free. On failure the file is removed. */
int snapfile_finish(struct snap_writer *w, char *err, size_t errlen);
/* Close, unlink the partial file, free. NULL is fine. */
void snapfile_abort(struct snap_writer *w);

/* Open and validate the header; h is filled (free with snap_header_free)
 * only on success. */
int snapfile_open(struct snap_reader **out, const char *path, struct snap_header *h,
                  char *err, size_t errlen);
/* 1 with the next section's name (valid until the next call) and raw
 * length; 0 at a valid trailer; -1 on corruption. Unread bytes of the
 * previous section are skipped (without being verified). */
int snapfile_next_section(struct snap_reader *r, const char **name, uint64_t *raw_len,
                          char *err, size_t errlen);
/* Decompressed bytes of the current section; *got == 0 at its end (which
 * is when the checksum and length are verified). */
int snapfile_read(struct snap_reader *r, void *buf, size_t n, size_t *got,
                  char *err, size_t errlen);
void snapfile_close(struct snap_reader *r);

/* Read the header only (validated). */
int snapfile_read_header(const char *path, struct snap_header *h, char *err, size_t errlen);
/* Walk and decompress everything, verifying every checksum. */
int snapfile_verify(const char *path, char *err, size_t errlen);

void snap_header_free(struct snap_header *h);

#endif
