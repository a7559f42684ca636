/* qemu_ramsum.c — digests of expanded RAM files (contract in
 * qemu_ramsum.h). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "errbuf.h"
#include "vmm/qemu_ramsum.h"
#include "atomicfile.h"
#include "fsutil.h"

#define READ_CHUNK (1u << 20)

static int page_zero(const unsigned char *p)
{
	static const unsigned char z[RAMSUM_PAGE];
	return !memcmp(p, z, RAMSUM_PAGE);
}

void ramsum_init(struct ramsum *s)
{
	XXH3_64bits_reset(&s->st);
}

void ramsum_pages(struct ramsum *s, uint64_t off, const unsigned char *buf, size_t n)
{
	for (size_t i = 0; i + RAMSUM_PAGE <= n; i += RAMSUM_PAGE) {
		unsigned char le[8];
		uint64_t o = off + i;
		if (page_zero(buf + i))
			continue;
		for (int b = 0; b < 8; b++)
			le[b] = (unsigned char)(o >> (8 * b));
		XXH3_64bits_update(&s->st, le, sizeof le);
		XXH3_64bits_update(&s->st, buf + i, RAMSUM_PAGE);
	}
}

uint64_t ramsum_digest(struct ramsum *s)
{
	return XXH3_64bits_digest(&s->st);
}

static char *sidecar(const char *ram_path, const char *suffix)
{
	char *p;
	return asprintf(&p, "%s.sum%s", ram_path, suffix) < 0 ? NULL : p;
}

int ramsum_write(const char *ram_path, uint64_t digest, char *err, size_t errlen)
{
	char *final = sidecar(ram_path, ""), rec[64];
	struct atomic_file af;
	int n, rc = -1;

	if (!final) {
		err_set(err, errlen, "out of memory");
		return -1;
	}
	n = snprintf(rec, sizeof rec, "xxh3-64 %016" PRIx64 "\n", digest);
	if (af_open(&af, final, 0644) < 0) {
		if (!af.tmp)
			err_set(err, errlen, "out of memory");
		else
			err_set(err, errlen, "create `%s`: %s", af.tmp, strerror(errno));
		goto out;
	}
	if (write_all(af.fd, rec, (size_t)n) < 0 || af_close(&af) < 0) {
		err_set(err, errlen, "write `%s`: %s", af.tmp, strerror(errno));
		goto out;
	}
	if (af_rename(&af) < 0) {
		err_set(err, errlen, "rename `%s`: %s", final, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	af_abort(&af);
	free(final);
	return rc;
}

/* The recorded digest; 0 / -1 (why filled). */
static int read_sidecar(const char *ram_path, uint64_t *out, char *why, size_t whylen)
{
	char *p = sidecar(ram_path, ""), buf[64];
	int fd = p ? open(p, O_RDONLY | O_NOFOLLOW | O_CLOEXEC) : -1;
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
	int e = errno;

	if (fd >= 0)
		close(fd);
	if (n < 0) {
		err_set(why, whylen, "its digest `%s` cannot be read: %s", p ? p : "?", strerror(e));
		free(p);
		return -1;
	}
	buf[n] = 0;
	if (sscanf(buf, "xxh3-64 %16" SCNx64 "\n", out) != 1 || n != 25) {
		err_set(why, whylen, "its digest `%s` is malformed", p);
		free(p);
		return -1;
	}
	free(p);
	return 0;
}

int ramsum_check(const char *ram_path, char *why, size_t whylen)
{
	struct ramsum s;
	struct stat st;
	unsigned char *buf = NULL;
	uint64_t want, got;
	off_t pos = 0;
	int fd, rc = 0;

	if (read_sidecar(ram_path, &want, why, whylen) < 0)
		return 0;
	/* Read, not mapped: faulting a mapping in page by page cost 4x more
	 * than pread of 1 MiB at a time (bench/run.sh, ramsum-check). */
	if ((fd = open(ram_path, O_RDONLY | O_CLOEXEC)) < 0 || fstat(fd, &st) < 0 ||
	    !(buf = malloc(READ_CHUNK))) {
		err_set(why, whylen, "read `%s`: %s", ram_path, strerror(errno));
		goto out;
	}
	ramsum_init(&s);
	while (pos < st.st_size) {
		off_t data = lseek(fd, pos, SEEK_DATA), hole;
		if (data < 0) {
			if (errno == ENXIO)
				break;          /* no data after pos */
			err_set(why, whylen, "read `%s`: %s", ram_path, strerror(errno));
			goto out;
		}
		hole = lseek(fd, data, SEEK_HOLE);
		if (hole < 0 || hole > st.st_size)
			hole = st.st_size;
		/* whole pages: a page only partly in a data region is hashed
		 * whole here, and the next SEEK_DATA starts after it */
		data &= ~(off_t)(RAMSUM_PAGE - 1);
		hole = (hole + RAMSUM_PAGE - 1) & ~(off_t)(RAMSUM_PAGE - 1);
		if (hole > (st.st_size & ~(off_t)(RAMSUM_PAGE - 1)))
			hole = st.st_size & ~(off_t)(RAMSUM_PAGE - 1);
		for (pos = data; pos < hole;) {
			size_t n = (size_t)(hole - pos < READ_CHUNK ? hole - pos : READ_CHUNK);
			ssize_t got_n = pread(fd, buf, n, pos);
			if (got_n < (ssize_t)RAMSUM_PAGE) {
				err_set(why, whylen, "read `%s`: %s", ram_path,
					got_n < 0 ? strerror(errno) : "unexpected end of file");
				goto out;
			}
			got_n &= ~(ssize_t)(RAMSUM_PAGE - 1);
			ramsum_pages(&s, (uint64_t)pos, buf, (size_t)got_n);
			pos += got_n;
		}
		if (pos <= data)
			pos = data + RAMSUM_PAGE;
	}
	got = ramsum_digest(&s);
	if (got != want) {
		err_set(why, whylen, "its content does not match its digest (xxh3-64 %016" PRIx64
			", recorded %016" PRIx64 ")", got, want);
		goto out;
	}
	rc = 1;
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	return rc;
}

void ramsum_remove(const char *ram_path)
{
	char *p = sidecar(ram_path, "");
	if (p)
		unlink(p);
	free(p);
}
