/* snapfile.c — write and read `*.snap` files (format in snapfile.h).
 *
 * Owns: the byte layout, the zstd streaming on both sides, and every
 * validation a reader makes before a backend trusts a byte: magic, format
 * version, header checksum and required fields, section framing, zstd
 * frame checksum and exact decompressed length, and the trailer (a file
 * cut short anywhere reads as "truncated").
 *
 * Writer state: created -> (section open -> section closed)* -> finished.
 * A section is written with placeholder lengths that section_end patches
 * (the file is always a regular file, so seeking back is fine). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <zstd.h>

#include "errbuf.h"
#include "snap/snapfile.h"

static const char MAGIC[8] = {'P', 'R', 'V', 'M', 'S', 'N', 'A', 'P'};

struct snap_writer {
	FILE *f;
	char *path;
	ZSTD_CCtx *cz;
	bool in_section;
	long long sect_len_off;   /* offset of raw_len */
	uint64_t raw, zlen;
	uint32_t nsections;
	unsigned char obuf[1 << 16];
};

struct snap_reader {
	FILE *f;
	char *path;
	ZSTD_DCtx *dz;
	char name[256];
	bool in_section, frame_done;
	uint64_t raw_len, zleft, produced;
	unsigned char ibuf[1 << 16];
	size_t ipos, ilen;
};

static uint32_t fnv1a(const void *p, size_t n)
{
	const unsigned char *b = p;
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 16777619u;
	return h;
}

static void put32(unsigned char *b, uint32_t v)
{
	b[0] = (unsigned char)(v >> 24); b[1] = (unsigned char)(v >> 16);
	b[2] = (unsigned char)(v >> 8); b[3] = (unsigned char)v;
}

static void put64(unsigned char *b, uint64_t v)
{
	put32(b, (uint32_t)(v >> 32));
	put32(b + 4, (uint32_t)v);
}

static uint32_t get32(const unsigned char *b)
{
	return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

static uint64_t get64(const unsigned char *b)
{
	return (uint64_t)get32(b) << 32 | get32(b + 4);
}

/* ---- header JSON ------------------------------------------------------ */

static char *header_json(const struct snap_header *h)
{
	json_t *o = json_object();
	char *s;
	if (!o)
		return NULL;
	json_object_set_new(o, "vm_name", json_string(h->vm_name ? h->vm_name : ""));
	json_object_set_new(o, "profile", json_string(h->profile ? h->profile : ""));
	json_object_set_new(o, "backend", json_string(h->backend ? h->backend : ""));
	json_object_set_new(o, "qemu_version", json_string(h->qemu_version ? h->qemu_version : ""));
	json_object_set_new(o, "memory", json_integer((json_int_t)h->memory));
	json_object_set_new(o, "cpus", json_integer(h->cpus));
	if (h->kernel_cmdline)
		json_object_set_new(o, "kernel_cmdline", json_string(h->kernel_cmdline));
	json_object_set_new(o, "has_initial_time", json_boolean(h->has_initial_time));
	if (h->boot_opts) {
		json_t *v = json_loads(h->boot_opts, 0, NULL);
		if (v)
			json_object_set_new(o, "boot_opts", v);
	}
	if (h->devices) {
		json_t *v = json_loads(h->devices, 0, NULL);
		if (v)
			json_object_set_new(o, "devices", v);
	}
	if (h->disks) {
		json_t *v = json_loads(h->disks, 0, NULL);
		if (v)
			json_object_set_new(o, "disks", v);
	}
	if (h->backend_data) {
		json_t *v = json_loads(h->backend_data, 0, NULL);
		if (v)
			json_object_set_new(o, "backend_data", v);
	}
	s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(o);
	return s;
}

static char *dupstr_field(json_t *o, const char *k, bool *ok)
{
	json_t *v = json_object_get(o, k);
	char *s;
	if (!json_is_string(v)) {
		*ok = false;
		return NULL;
	}
	s = strdup(json_string_value(v));
	if (!s)
		*ok = false;
	return s;
}

static int header_parse(const char *txt, size_t len, struct snap_header *h,
                        char *err, size_t errlen, const char *path)
{
	json_error_t je;
	json_t *o = json_loadb(txt, len, 0, &je), *v;
	bool ok = true;
	memset(h, 0, sizeof(*h));
	if (!json_is_object(o)) {
		err_set(err, errlen, "snapshot `%s`: corrupt header (%s)", path, je.text);
		json_decref(o);
		return -1;
	}
	h->vm_name = dupstr_field(o, "vm_name", &ok);
	h->profile = dupstr_field(o, "profile", &ok);
	h->backend = dupstr_field(o, "backend", &ok);
	h->qemu_version = dupstr_field(o, "qemu_version", &ok);
	v = json_object_get(o, "memory");
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		ok = false;
	else
		h->memory = (uint64_t)json_integer_value(v);
	v = json_object_get(o, "cpus");
	if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 4096)
		ok = false;
	else
		h->cpus = (int)json_integer_value(v);
	v = json_object_get(o, "kernel_cmdline");
	if (json_is_string(v))
		h->kernel_cmdline = strdup(json_string_value(v));
	h->has_initial_time = json_is_true(json_object_get(o, "has_initial_time"));
	if ((v = json_object_get(o, "boot_opts")))
		h->boot_opts = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
	if ((v = json_object_get(o, "devices")))
		h->devices = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
	if ((v = json_object_get(o, "disks"))) {
		if (!json_is_array(v))
			ok = false;
		else if (json_array_size(v))
			h->disks = json_dumps(v, JSON_COMPACT);
	}
	if ((v = json_object_get(o, "backend_data")) && json_is_object(v))
		h->backend_data = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(o);
	if (!ok || !h->vm_name[0] || !h->backend[0]) {
		snap_header_free(h);
		err_set(err, errlen, "snapshot `%s`: corrupt header (missing or invalid fields)", path);
		return -1;
	}
	return 0;
}

void snap_header_free(struct snap_header *h)
{
	if (!h)
		return;
	free(h->vm_name);
	free(h->profile);
	free(h->backend);
	free(h->qemu_version);
	free(h->kernel_cmdline);
	free(h->boot_opts);
	free(h->devices);
	free(h->disks);
	free(h->backend_data);
	memset(h, 0, sizeof(*h));
}

/* ---- writer ------------------------------------------------------------ */

static int wr(struct snap_writer *w, const void *p, size_t n, char *err, size_t errlen)
{
	if (n && fwrite(p, 1, n, w->f) != n) {
		err_set(err, errlen, "write `%s`: %s", w->path, strerror(errno));
		return -1;
	}
	return 0;
}

int snapfile_create(struct snap_writer **out, const char *path, const struct snap_header *h,
                    char *err, size_t errlen)
{
	struct snap_writer *w = calloc(1, sizeof(*w));
	char *hj = NULL;
	unsigned char b[8];
	size_t hl;
	if (!w || !(w->path = strdup(path)) || !(hj = header_json(h))) {
		err_set(err, errlen, "snapshot `%s`: out of memory", path);
		goto fail;
	}
	w->f = fopen(path, "wbxe");
	if (!w->f && errno == EEXIST && unlink(path) == 0)
		w->f = fopen(path, "wbxe");
	if (!w->f) {
		err_set(err, errlen, "create `%s`: %s", path, strerror(errno));
		goto fail;
	}
	hl = strlen(hj);
	if (wr(w, MAGIC, 8, err, errlen) < 0)
		goto fail_unlink;
	put32(b, SNAPFILE_VERSION);
	put32(b + 4, (uint32_t)hl);
	if (wr(w, b, 8, err, errlen) < 0 || wr(w, hj, hl, err, errlen) < 0)
		goto fail_unlink;
	put32(b, fnv1a(hj, hl));
	if (wr(w, b, 4, err, errlen) < 0)
		goto fail_unlink;
	free(hj);
	*out = w;
	return 0;
fail_unlink:
	fclose(w->f);
	w->f = NULL;
	unlink(path);
fail:
	free(hj);
	if (w) {
		if (w->f)
			fclose(w->f);
		free(w->path);
		free(w);
	}
	return -1;
}

int snapfile_section_begin(struct snap_writer *w, const char *name, char *err, size_t errlen)
{
	size_t nl = strlen(name);
	unsigned char b[16] = {0};
	if (w->in_section || nl == 0 || nl > 255) {
		err_set(err, errlen, "snapshot `%s`: bad section `%s`", w->path, name);
		return -1;
	}
	if (!w->cz && !(w->cz = ZSTD_createCCtx())) {
		err_set(err, errlen, "snapshot `%s`: out of memory", w->path);
		return -1;
	}
	ZSTD_CCtx_reset(w->cz, ZSTD_reset_session_and_parameters);
	ZSTD_CCtx_setParameter(w->cz, ZSTD_c_compressionLevel, 1);
	ZSTD_CCtx_setParameter(w->cz, ZSTD_c_checksumFlag, 1);
	if (wr(w, "SECT", 4, err, errlen) < 0)
		return -1;
	b[0] = (unsigned char)(nl >> 8);
	b[1] = (unsigned char)nl;
	if (wr(w, b, 2, err, errlen) < 0 || wr(w, name, nl, err, errlen) < 0)
		return -1;
	w->sect_len_off = ftello(w->f);
	memset(b, 0, sizeof(b));
	if (wr(w, b, 16, err, errlen) < 0)
		return -1;
	w->in_section = true;
	w->raw = w->zlen = 0;
	return 0;
}

static int compress_some(struct snap_writer *w, const void *buf, size_t n,
                         ZSTD_EndDirective mode, char *err, size_t errlen)
{
	ZSTD_inBuffer in = {buf, n, 0};
	for (;;) {
		ZSTD_outBuffer ob = {w->obuf, sizeof(w->obuf), 0};
		size_t left = ZSTD_compressStream2(w->cz, &ob, &in, mode);
		if (ZSTD_isError(left)) {
			err_set(err, errlen, "snapshot `%s`: zstd: %s", w->path, ZSTD_getErrorName(left));
			return -1;
		}
		if (wr(w, w->obuf, ob.pos, err, errlen) < 0)
			return -1;
		w->zlen += ob.pos;
		if (mode == ZSTD_e_end ? left == 0 : in.pos == in.size)
			return 0;
	}
}

int snapfile_write(struct snap_writer *w, const void *buf, size_t n, char *err, size_t errlen)
{
	if (!w->in_section) {
		err_set(err, errlen, "snapshot `%s`: write outside a section", w->path);
		return -1;
	}
	w->raw += n;
	return compress_some(w, buf, n, ZSTD_e_continue, err, errlen);
}

int snapfile_section_end(struct snap_writer *w, char *err, size_t errlen)
{
	unsigned char b[16];
	long long end;
	if (!w->in_section) {
		err_set(err, errlen, "snapshot `%s`: no open section", w->path);
		return -1;
	}
	if (compress_some(w, "", 0, ZSTD_e_end, err, errlen) < 0)
		return -1;
	end = ftello(w->f);
	put64(b, w->raw);
	put64(b + 8, w->zlen);
	if (fseeko(w->f, w->sect_len_off, SEEK_SET) < 0 || wr(w, b, 16, err, errlen) < 0 ||
	    fseeko(w->f, end, SEEK_SET) < 0) {
		err_set(err, errlen, "write `%s`: %s", w->path, strerror(errno));
		return -1;
	}
	w->in_section = false;
	w->nsections++;
	return 0;
}

static void writer_free(struct snap_writer *w)
{
	ZSTD_freeCCtx(w->cz);
	free(w->path);
	free(w);
}

int snapfile_finish(struct snap_writer *w, char *err, size_t errlen)
{
	unsigned char b[4];
	if (w->in_section && snapfile_section_end(w, err, errlen) < 0)
		goto fail;
	put32(b, w->nsections);
	if (wr(w, "SEND", 4, err, errlen) < 0 || wr(w, b, 4, err, errlen) < 0)
		goto fail;
	if (fflush(w->f) != 0 || fsync(fileno(w->f)) < 0) {
		err_set(err, errlen, "write `%s`: %s", w->path, strerror(errno));
		goto fail;
	}
	if (fclose(w->f) != 0) {
		w->f = NULL;
		err_set(err, errlen, "close `%s`: %s", w->path, strerror(errno));
		unlink(w->path);
		writer_free(w);
		return -1;
	}
	writer_free(w);
	return 0;
fail:
	snapfile_abort(w);
	return -1;
}

void snapfile_abort(struct snap_writer *w)
{
	int e = errno;
	if (!w)
		return;
	if (w->f)
		fclose(w->f);
	unlink(w->path);
	writer_free(w);
	errno = e;
}

/* ---- reader ------------------------------------------------------------ */

/* Exactly n bytes or "truncated". */
static int rd(struct snap_reader *r, void *p, size_t n, char *err, size_t errlen)
{
	if (n && fread(p, 1, n, r->f) != n) {
		if (ferror(r->f))
			err_set(err, errlen, "read `%s`: %s", r->path, strerror(errno));
		else
			err_set(err, errlen, "snapshot `%s`: truncated", r->path);
		return -1;
	}
	return 0;
}

int snapfile_open(struct snap_reader **out, const char *path, struct snap_header *h,
                  char *err, size_t errlen)
{
	struct snap_reader *r = calloc(1, sizeof(*r));
	unsigned char b[8];
	char *hj = NULL;
	uint32_t ver, hl;
	if (!r || !(r->path = strdup(path))) {
		err_set(err, errlen, "snapshot `%s`: out of memory", path);
		goto fail;
	}
	r->f = fopen(path, "rbe");
	if (!r->f) {
		err_set(err, errlen, "open `%s`: %s", path, strerror(errno));
		goto fail;
	}
	if (rd(r, b, 8, err, errlen) < 0)
		goto fail;
	if (memcmp(b, MAGIC, 8) != 0) {
		err_set(err, errlen, "snapshot `%s`: not a provium snapshot (bad magic)", path);
		goto fail;
	}
	if (rd(r, b, 8, err, errlen) < 0)
		goto fail;
	ver = get32(b);
	hl = get32(b + 4);
	if (ver < SNAPFILE_MIN_VERSION || ver > SNAPFILE_VERSION) {
		err_set(err, errlen, "snapshot `%s`: format version %u, this provium reads versions "
		       "%u to %u", path, ver, SNAPFILE_MIN_VERSION, SNAPFILE_VERSION);
		goto fail;
	}
	if (hl == 0 || hl > SNAPFILE_MAX_HEADER) {
		err_set(err, errlen, "snapshot `%s`: corrupt header (length %u)", path, hl);
		goto fail;
	}
	if (!(hj = malloc(hl))) {
		err_set(err, errlen, "snapshot `%s`: out of memory", path);
		goto fail;
	}
	if (rd(r, hj, hl, err, errlen) < 0 || rd(r, b, 4, err, errlen) < 0)
		goto fail;
	if (get32(b) != fnv1a(hj, hl)) {
		err_set(err, errlen, "snapshot `%s`: corrupt header (checksum mismatch)", path);
		goto fail;
	}
	if (header_parse(hj, hl, h, err, errlen, path) < 0)
		goto fail;
	h->version = ver;
	free(hj);
	*out = r;
	return 0;
fail:
	free(hj);
	snapfile_close(r);
	return -1;
}

int snapfile_next_section(struct snap_reader *r, const char **name, uint64_t *raw_len,
                          char *err, size_t errlen)
{
	unsigned char b[16];
	uint32_t nl;
	if (r->in_section) {
		/* Skip the compressed bytes not read yet (buffered ones were
		 * already taken off zleft). */
		uint64_t skip = r->zleft;
		if (skip && fseeko(r->f, (off_t)skip, SEEK_CUR) < 0) {
			err_set(err, errlen, "read `%s`: %s", r->path, strerror(errno));
			return -1;
		}
		r->in_section = false;
	}
	if (rd(r, b, 4, err, errlen) < 0)
		return -1;
	if (!memcmp(b, "SEND", 4)) {
		unsigned char extra;
		if (rd(r, b, 4, err, errlen) < 0)
			return -1;
		if (fread(&extra, 1, 1, r->f) != 0) {
			err_set(err, errlen, "snapshot `%s`: corrupt (bytes after the trailer)", r->path);
			return -1;
		}
		return 0;
	}
	if (memcmp(b, "SECT", 4) != 0) {
		err_set(err, errlen, "snapshot `%s`: corrupt section framing", r->path);
		return -1;
	}
	if (rd(r, b, 2, err, errlen) < 0)
		return -1;
	nl = (uint32_t)b[0] << 8 | b[1];
	if (nl == 0 || nl >= sizeof(r->name)) {
		err_set(err, errlen, "snapshot `%s`: corrupt section name", r->path);
		return -1;
	}
	if (rd(r, r->name, nl, err, errlen) < 0 || rd(r, b, 16, err, errlen) < 0)
		return -1;
	r->name[nl] = '\0';
	r->raw_len = get64(b);
	r->zleft = get64(b + 8);
	r->produced = 0;
	r->ipos = r->ilen = 0;
	r->frame_done = false;
	r->in_section = true;
	if (!r->dz && !(r->dz = ZSTD_createDCtx())) {
		err_set(err, errlen, "snapshot `%s`: out of memory", r->path);
		return -1;
	}
	ZSTD_DCtx_reset(r->dz, ZSTD_reset_session_only);
	*name = r->name;
	*raw_len = r->raw_len;
	return 1;
}

int snapfile_read(struct snap_reader *r, void *buf, size_t n, size_t *got,
                  char *err, size_t errlen)
{
	ZSTD_outBuffer ob = {buf, n, 0};
	*got = 0;
	if (!r->in_section) {
		err_set(err, errlen, "snapshot `%s`: read outside a section", r->path);
		return -1;
	}
	while (ob.pos == 0 && n > 0) {
		if (r->frame_done) {
			if (r->ipos != r->ilen || r->zleft != 0 || r->produced != r->raw_len) {
				err_set(err, errlen, "snapshot `%s`: corrupt section `%s` (length mismatch)",
				       r->path, r->name);
				return -1;
			}
			r->in_section = false;
			return 0;
		}
		if (r->ipos == r->ilen) {
			size_t want = r->zleft < sizeof(r->ibuf) ? (size_t)r->zleft : sizeof(r->ibuf);
			if (want == 0) {
				err_set(err, errlen, "snapshot `%s`: corrupt section `%s` (incomplete zstd frame)",
				       r->path, r->name);
				return -1;
			}
			if (rd(r, r->ibuf, want, err, errlen) < 0)
				return -1;
			r->zleft -= want;
			r->ipos = 0;
			r->ilen = want;
		}
		ZSTD_inBuffer in = {r->ibuf, r->ilen, r->ipos};
		size_t rc = ZSTD_decompressStream(r->dz, &ob, &in);
		r->ipos = in.pos;
		if (ZSTD_isError(rc)) {
			err_set(err, errlen, "snapshot `%s`: corrupt section `%s` (zstd: %s)",
			       r->path, r->name, ZSTD_getErrorName(rc));
			return -1;
		}
		r->produced += ob.pos;
		if (rc == 0)
			r->frame_done = true;
		if (r->produced > r->raw_len) {
			err_set(err, errlen, "snapshot `%s`: corrupt section `%s` (length mismatch)",
			       r->path, r->name);
			return -1;
		}
	}
	*got = ob.pos;
	return 0;
}

void snapfile_close(struct snap_reader *r)
{
	int e = errno;
	if (!r)
		return;
	if (r->f)
		fclose(r->f);
	ZSTD_freeDCtx(r->dz);
	free(r->path);
	free(r);
	errno = e;
}

int snapfile_read_header(const char *path, struct snap_header *h, char *err, size_t errlen)
{
	struct snap_reader *r;
	if (snapfile_open(&r, path, h, err, errlen) < 0)
		return -1;
	snapfile_close(r);
	return 0;
}

int snapfile_verify(const char *path, char *err, size_t errlen)
{
	struct snap_reader *r;
	struct snap_header h;
	const char *name;
	uint64_t raw;
	int rc;
	static char buf[1 << 16];
	if (snapfile_open(&r, path, &h, err, errlen) < 0)
		return -1;
	snap_header_free(&h);
	while ((rc = snapfile_next_section(r, &name, &raw, err, errlen)) == 1) {
		size_t got;
		do {
			if (snapfile_read(r, buf, sizeof(buf), &got, err, errlen) < 0) {
				snapfile_close(r);
				return -1;
			}
		} while (got);
	}
	snapfile_close(r);
	return rc;
}
