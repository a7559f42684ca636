/* qemu_migrate.c — the byte moving of QEMU snapshots: migration streams
 * over a socketpair into and out of snapfile sections, and the RAM section of
 * the fast path (see qemu_migrate.h for the shapes and why).
 *
 * Flow control is the socket itself: QEMU's migration thread (save) or
 * main-loop coroutine (load) blocks on it while we compress or
 * decompress, so nothing is ever held whole in memory. QMP replies to
 * `migrate` / `migrate-incoming` at once; completion is polled with
 * `query-migrate` after the socket reached EOF (save) or all bytes were
 * sent (load). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "errbuf.h"
#include "vmm/qemu_ramsum.h"
#include "vmm/qemu_migrate.h"
#include "atomicfile.h"

#define CHUNK (1u << 20)
#define PAGE 4096u
#define QMP_MS 10000
#define FDNAME "provium-mig"

static int set_caps(struct qmp *q, bool ignore_shared, char *err, size_t errlen)
{
	json_t *a = json_pack("{s:[{s:s, s:b}]}", "capabilities", "capability", "x-ignore-shared",
			      "state", ignore_shared);
	int rc = a ? qmp_execute(q, "migrate-set-capabilities", a, QMP_MS, NULL, err, errlen) : -1;
	json_decref(a);
	return rc;
}

/* Hand one end of a new socketpair to QEMU as FDNAME; the other end is
 * returned in *mine. */
static int pass_fd(struct qmp *q, int *mine, char *err, size_t errlen)
{
	int sv[2], rc, sz = 4 << 20;
	json_t *a;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		err_set(err, errlen, "socketpair: %s", strerror(errno));
		return -1;
	}
	setsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
	setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
	setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
	a = json_pack("{s:s}", "fdname", FDNAME);
	rc = a ? qmp_execute_fd(q, "getfd", a, sv[1], QMP_MS, NULL, err, errlen) : -1;
	json_decref(a);
	close(sv[1]);
	if (rc < 0) {
		close(sv[0]);
		return -1;
	}
	*mine = sv[0];
	return 0;
}

/* Poll query-migrate until a final status. 0 on "completed". */
static int wait_migration(struct qmp *q, const char *what, char *err, size_t errlen)
{
	int64_t end = qmp_now_ns() + (int64_t)QMIG_STALL_MS * 1000000;
	int sleep_ms = 1;
	for (;;) {
		json_t *ret = NULL;
		const char *st;
		if (qmp_execute(q, "query-migrate", NULL, QMP_MS, &ret, err, errlen) < 0)
			return -1;
		st = json_string_value(json_object_get(ret, "status"));
		if (st && !strcmp(st, "completed")) {
			json_decref(ret);
			return 0;
		}
		if (st && (!strcmp(st, "failed") || !strcmp(st, "cancelled"))) {
			const char *d = json_string_value(json_object_get(ret, "error-desc"));
			err_set(err, errlen, "%s: QEMU's migration %s%s%s", what, st, d ? ": " : "",
			       d ? d : "");
			json_decref(ret);
			return -1;
		}
		json_decref(ret);
		if (qmp_now_ns() > end) {
			err_set(err, errlen, "%s: the migration did not complete within %d s (status %s)",
			       what, QMIG_STALL_MS / 1000, st ? st : "none");
			return -1;
		}
		poll(NULL, 0, sleep_ms);
		if (sleep_ms < 20)
			sleep_ms *= 2;
	}
}

/* Both directions start alike: capabilities, our end of a socketpair
 * handed to QEMU, `cmd` ("migrate" / "migrate-incoming") on it, a copy
 * buffer. 0 with *fd and *buf set (the caller closes / frees them, also
 * on failure: -1 may leave *fd open), or -1 with err. */
static int start_migration(struct qmp *q, const char *cmd, bool ignore_shared, int *fd,
			   char **buf, char *err, size_t errlen)
{
	json_t *a;
	int rc;

	*fd = -1;
	*buf = NULL;
	if (set_caps(q, ignore_shared, err, errlen) < 0 || pass_fd(q, fd, err, errlen) < 0)
		return -1;
	if (!(a = json_pack("{s:s}", "uri", "fd:" FDNAME))) {
		err_set(err, errlen, "out of memory");
		return -1;
	}
	rc = qmp_execute(q, cmd, a, QMP_MS, NULL, err, errlen);
	json_decref(a);
	if (rc < 0)
		return -1;
	if (!(*buf = malloc(CHUNK))) {
		err_set(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

int qmig_save_stream(struct qmp *q, struct snap_writer *w, bool ignore_shared,
		     char *err, size_t errlen)
{
	char *buf;
	int fd, rc = -1;

	if (start_migration(q, "migrate", ignore_shared, &fd, &buf, err, errlen) < 0)
		goto out;
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;
		int pr = poll(&p, 1, QMIG_STALL_MS);
		if (pr == 0) {
			err_set(err, errlen, "the migration stream stalled for %d s", QMIG_STALL_MS / 1000);
			goto out;
		}
		if (pr < 0) {
			if (errno == EINTR)
				continue;
			err_set(err, errlen, "poll: %s", strerror(errno));
			goto out;
		}
		n = recv(fd, buf, CHUNK, 0);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0) {
			err_set(err, errlen, "reading the migration stream: %s", strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		if (snapfile_write(w, buf, (size_t)n, err, errlen) < 0)
			goto out;
	}
	rc = wait_migration(q, "snapshot", err, errlen);
out:
	if (rc < 0) {
		char e2[128];
		qmp_execute(q, "migrate_cancel", NULL, QMP_MS, NULL, e2, sizeof e2);
	}
	free(buf);
	if (fd >= 0)
		close(fd);
	return rc;
}

static int send_all(int fd, const char *p, size_t n, char *err, size_t errlen)
{
	while (n) {
		struct pollfd pf = { .fd = fd, .events = POLLOUT };
		ssize_t w;
		int pr = poll(&pf, 1, QMIG_STALL_MS);
		if (pr == 0) {
			err_set(err, errlen, "QEMU stopped reading the migration stream for %d s",
			       QMIG_STALL_MS / 1000);
			return -1;
		}
		if (pr < 0 && errno == EINTR)
			continue;
		w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (w < 0) {
			err_set(err, errlen, "QEMU stopped reading the migration stream (%s)",
			       strerror(errno));
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int qmig_load_stream(struct qmp *q, struct snap_reader *r, bool ignore_shared,
		     char *err, size_t errlen)
{
	char *buf;
	int fd, rc = -1;

	if (start_migration(q, "migrate-incoming", ignore_shared, &fd, &buf, err, errlen) < 0)
		goto out;
	for (;;) {
		size_t got = 0;
		if (snapfile_read(r, buf, CHUNK, &got, err, errlen) < 0)
			goto out;
		if (!got)
			break;
		if (send_all(fd, buf, got, err, errlen) < 0) {
			/* QEMU's own reason is better than EPIPE when it has one */
			char e2[512];
			if (wait_migration(q, "restore", e2, sizeof e2) < 0 && strstr(e2, "failed"))
				err_set(err, errlen, "%s", e2);
			goto out;
		}
	}
	shutdown(fd, SHUT_WR);
	rc = wait_migration(q, "restore", err, errlen);
out:
	free(buf);
	if (fd >= 0)
		close(fd);
	return rc;
}

static void put64(unsigned char *b, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		b[i] = (unsigned char)v;
}

static uint64_t get64(const unsigned char *b)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | b[i];
	return v;
}

static bool page_zero(const unsigned char *p)
{
	static const unsigned char z[PAGE];
	return !memcmp(p, z, PAGE);
}

int qmig_write_ram(struct snap_writer *w, int fd, uint64_t size, char *err, size_t errlen)
{
	unsigned char *buf = malloc(CHUNK), hdr[16];
	uint64_t off = 0;
	int rc = -1;

	if (!buf) {
		err_set(err, errlen, "out of memory");
		return -1;
	}
	while (off < size) {
		/* Holes of the sparse/tmpfs file are skipped without reading. */
		off_t data = lseek(fd, (off_t)off, SEEK_DATA);
		size_t n, i;
		ssize_t got;
		if (data < 0 && errno == ENXIO)
			break;
		if (data >= 0 && (uint64_t)data > off)
			off = (uint64_t)data & ~(uint64_t)(PAGE - 1);
		if (off >= size)
			break;
		n = size - off < CHUNK ? (size_t)(size - off) : CHUNK;
		got = pread(fd, buf, n, (off_t)off);
		if (got < 0) {
			err_set(err, errlen, "reading guest RAM: %s", strerror(errno));
			goto out;
		}
		if (got == 0)
			break;
		n = (size_t)got & ~(size_t)(PAGE - 1);
		if (!n)
			break;
		for (i = 0; i < n;) {
			size_t j;
			if (page_zero(buf + i)) {
				i += PAGE;
				continue;
			}
			for (j = i + PAGE; j < n && !page_zero(buf + j); j += PAGE)
				;
			put64(hdr, off + i);
			put64(hdr + 8, j - i);
			if (snapfile_write(w, hdr, sizeof hdr, err, errlen) < 0 ||
			    snapfile_write(w, buf + i, j - i, err, errlen) < 0)
				goto out;
			i = j;
		}
		off += n;
	}
	rc = 0;
out:
	free(buf);
	return rc;
}

/* Read exactly n bytes of the current section; 1 = done, 0 = clean end
 * before any byte, -1 = error (a record cut short is corruption). */
static int read_exact(struct snap_reader *r, void *p, size_t n, char *err, size_t errlen)
{
	size_t have = 0;
	while (have < n) {
		size_t got = 0;
		if (snapfile_read(r, (char *)p + have, n - have, &got, err, errlen) < 0)
			return -1;
		if (!got) {
			if (!have)
				return 0;
			err_set(err, errlen, "corrupt RAM section (record cut short)");
			return -1;
		}
		have += got;
	}
	return 1;
}

int qmig_expand_ram(struct snap_reader *r, const char *path, uint64_t size,
		    char *err, size_t errlen)
{
	struct atomic_file af = { .fd = -1 };
	unsigned char *buf = malloc(CHUNK), hdr[16];
	uint64_t next = 0;  /* extents are page aligned and ascending */
	struct ramsum sum;
	int rc = -1;

	ramsum_init(&sum);

	if (!buf) {
		err_set(err, errlen, "out of memory");
		goto out;
	}
	if (af_open(&af, path, 0644) < 0) {
		if (!af.tmp)
			err_set(err, errlen, "out of memory");
		else
			err_set(err, errlen, "create `%s`: %s", af.tmp, strerror(errno));
		goto out;
	}
	if (ftruncate(af.fd, (off_t)size) < 0) {
		err_set(err, errlen, "ftruncate `%s`: %s", af.tmp, strerror(errno));
		goto out;
	}
	for (;;) {
		uint64_t off, len;
		int k = read_exact(r, hdr, sizeof hdr, err, errlen);
		if (k < 0)
			goto out;
		if (k == 0)
			break;
		off = get64(hdr);
		len = get64(hdr + 8);
		if (off > size || len > size - off) {
			err_set(err, errlen, "corrupt RAM section (extent beyond %llu bytes)",
			       (unsigned long long)size);
			goto out;
		}
		if (off < next || off % PAGE || len % PAGE) {
			err_set(err, errlen, "corrupt RAM section (extent at %llu not page aligned "
				"or out of order)", (unsigned long long)off);
			goto out;
		}
		next = off + len;
		while (len) {
			size_t n = len < CHUNK ? (size_t)len : CHUNK;
			int k2 = read_exact(r, buf, n, err, errlen);
			if (k2 != 1) {
				if (k2 == 0)
					err_set(err, errlen, "corrupt RAM section (extent cut short)");
				goto out;
			}
			errno = 0;
			if (pwrite(af.fd, buf, n, (off_t)off) != (ssize_t)n) {
				/* a short write without an error is a full disk */
				err_set(err, errlen, "write `%s`: %s", af.tmp, strerror(errno ? errno : ENOSPC));
				goto out;
			}
			ramsum_pages(&sum, off, buf, n);
			off += n;
			len -= n;
		}
	}
	if (af_close(&af) < 0) {
		err_set(err, errlen, "write `%s`: %s", af.tmp, strerror(errno));
		goto out;
	}
	/* the digest first: a RAM file under its final name always has one */
	if (ramsum_write(path, ramsum_digest(&sum), err, errlen) < 0)
		goto out;
	if (af_rename(&af) < 0) {
		err_set(err, errlen, "rename `%s`: %s", path, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	af_abort(&af);
	free(buf);
	return rc;
}

char *qmig_qemu_version(struct qmp *q, char *err, size_t errlen)
{
	json_t *ret = NULL, *v;
	char *s = NULL;
	const char *pkg;
	if (qmp_execute(q, "query-version", NULL, QMP_MS, &ret, err, errlen) < 0)
		return NULL;
	v = json_object_get(ret, "qemu");
	pkg = json_string_value(json_object_get(ret, "package"));
	if (asprintf(&s, "%lld.%lld.%lld%s%s",
		     (long long)json_integer_value(json_object_get(v, "major")),
		     (long long)json_integer_value(json_object_get(v, "minor")),
		     (long long)json_integer_value(json_object_get(v, "micro")),
		     pkg && *pkg ? " " : "", pkg && *pkg ? pkg : "") < 0)
		s = NULL;
	json_decref(ret);
	if (!s)
		err_set(err, errlen, "out of memory");
	return s;
}
