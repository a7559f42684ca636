/* nbdmed.c — the write-back NBD server behind a boot-time disk (see
 * nbdmed.h for why and how it is used).
 *
 * Protocol: fixed-newstyle NBD, one export (any name), one client at a
 * time, simple replies only. Options other than EXPORT_NAME / INFO / GO /
 * ABORT are refused with NBD_REP_ERR_UNSUP, which keeps QEMU on the
 * classic 28-byte request and 16-byte simple reply (no structured
 * replies, no extended headers). The export advertises HAS_FLAGS and
 * SEND_FLUSH only: QEMU then emulates FUA with a flush and zero-writes
 * with plain writes, so every write and every flush reaches us as such.
 *
 * State: the image fd, an unlinked overlay file of the same size and a
 * bitmap of the sectors (512 bytes) the overlay holds. A write goes to
 * the overlay (a partial sector is completed from the current contents
 * first); a read takes each sector from the overlay when its bit is set,
 * else from the image; FLUSH copies the held sectors into the image,
 * fdatasyncs it and empties the overlay. Control messages on a
 * socketpair, each answered with one byte 'k':
 *   'F' <mask>  set the fault bits (EIO on reads / writes, 50 ms a request)
 *   'C'         write the held sectors through, then exit
 *   'D'         forget them (the power cut), then exit
 * EOF on the control socket, and SIGTERM, are taken as 'C'. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "errbuf.h"
#include "fsutil.h"
#include "vmm/nbdmed.h"

#define SECTOR 512u
#define MAX_REQ (32u << 20)   /* QEMU's NBD client never asks for more */
#define SLOW_MS 50
#define CTL_TIMEOUT_MS 30000

#define NBD_MAGIC      0x4e42444d41474943ull   /* "NBDMAGIC" */
#define IHAVEOPT       0x49484156454f5054ull   /* "IHAVEOPT" */
#define REP_MAGIC      0x0003e889045565a9ull
#define REQ_MAGIC      0x25609513u
#define SIMPLE_MAGIC   0x67446698u
#define HS_FIXED_NEWSTYLE 1u
#define HS_NO_ZEROES      2u
#define CL_NO_ZEROES      2u
#define TX_HAS_FLAGS   1u
#define TX_SEND_FLUSH  4u
#define OPT_EXPORT_NAME 1u
#define OPT_ABORT       2u
#define OPT_INFO        6u
#define OPT_GO          7u
#define REP_ACK         1u
#define REP_INFO        3u
#define REP_ERR_UNSUP   0x80000001u
#define CMD_READ  0
#define CMD_WRITE 1
#define CMD_DISC  2
#define CMD_FLUSH 3
#define E_IO    5u
#define E_INVAL 22u

struct med {
	int img, ovl;
	uint64_t size, nsec;
	unsigned char *dirty;
	unsigned faults;
};

/* ---- wire helpers (blocking) ------------------------------------------------ */

static void put16(unsigned char *b, uint16_t v) { b[0] = v >> 8; b[1] = v & 0xff; }
static void put32(unsigned char *b, uint32_t v) { put16(b, v >> 16); put16(b + 2, v & 0xffff); }
static void put64(unsigned char *b, uint64_t v) { put32(b, v >> 32); put32(b + 4, v & 0xffffffff); }
static uint16_t get16(const unsigned char *b) { return (uint16_t)(b[0] << 8 | b[1]); }
static uint32_t get32(const unsigned char *b) { return (uint32_t)get16(b) << 16 | get16(b + 2); }
static uint64_t get64(const unsigned char *b) { return (uint64_t)get32(b) << 32 | get32(b + 4); }

/* ---- the overlay ------------------------------------------------------------ */

static bool held(const struct med *m, uint64_t s) { return m->dirty[s / 8] >> (s % 8) & 1; }
static void hold(struct med *m, uint64_t s) { m->dirty[s / 8] |= (unsigned char)(1u << (s % 8)); }

static int pread_full(int fd, void *p, size_t n, uint64_t off)
{
	char *c = p;
	while (n) {
		ssize_t r = pread(fd, c, n, (off_t)off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0) {          /* a sparse overlay past its end: zeros */
			memset(c, 0, n);
			return 0;
		}
		c += r;
		n -= (size_t)r;
		off += (uint64_t)r;
	}
	return 0;
}

static int pwrite_full(int fd, const void *p, size_t n, uint64_t off)
{
	const char *c = p;
	while (n) {
		ssize_t r = pwrite(fd, c, n, (off_t)off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		c += r;
		n -= (size_t)r;
		off += (uint64_t)r;
	}
	return 0;
}

/* [off, off+len) as the guest sees it: held sectors from the overlay. */
static int med_read(struct med *m, uint64_t off, uint32_t len, unsigned char *buf)
{
	uint64_t end = off + len;
	while (off < end) {
		uint64_t s = off / SECTOR, stop = (s + 1) * SECTOR;
		bool h = held(m, s);
		/* extend the run while the next sectors come from the same file */
		while (stop < end && held(m, stop / SECTOR) == h)
			stop += SECTOR;
		if (stop > end)
			stop = end;
		if (pread_full(h ? m->ovl : m->img, buf, (size_t)(stop - off), off) < 0)
			return -1;
		buf += stop - off;
		off = stop;
	}
	return 0;
}

static int med_write(struct med *m, uint64_t off, uint32_t len, const unsigned char *data)
{
	uint64_t end = off + len;
	while (off < end) {
		uint64_t s = off / SECTOR, in = off % SECTOR;
		if (in == 0 && end - off >= SECTOR) {
			/* whole sectors: one write */
			uint64_t n = (end - off) / SECTOR * SECTOR;
			if (pwrite_full(m->ovl, data, (size_t)n, off) < 0)
				return -1;
			for (uint64_t k = 0; k < n / SECTOR; k++)
				hold(m, s + k);
			data += n;
			off += n;
		} else {
			unsigned char b[SECTOR];
			uint64_t n = SECTOR - in < end - off ? SECTOR - in : end - off;
			if (med_read(m, s * SECTOR, SECTOR, b) < 0)
				return -1;
			memcpy(b + in, data, (size_t)n);
			if (pwrite_full(m->ovl, b, SECTOR, s * SECTOR) < 0)
				return -1;
			hold(m, s);
			data += n;
			off += n;
		}
	}
	return 0;
}

static void med_forget(struct med *m)
{
	memset(m->dirty, 0, (size_t)(m->nsec + 7) / 8);
	/* give the overlay's blocks back */
	if (ftruncate(m->ovl, 0) == 0 && ftruncate(m->ovl, (off_t)m->size) < 0)
		return;
}

/* Write the held sectors into the image and make them durable. */
static int med_flush(struct med *m)
{
	static unsigned char buf[1 << 20];
	for (uint64_t s = 0; s < m->nsec;) {
		uint64_t e;
		if (!m->dirty[s / 8] && s % 8 == 0) {
			s += 8;
			continue;
		}
		if (!held(m, s)) {
			s++;
			continue;
		}
		for (e = s; e < m->nsec && held(m, e) && (e - s) * SECTOR < sizeof buf; e++)
			;
		if (pread_full(m->ovl, buf, (size_t)((e - s) * SECTOR), s * SECTOR) < 0 ||
		    pwrite_full(m->img, buf, (size_t)((e - s) * SECTOR), s * SECTOR) < 0)
			return -1;
		s = e;
	}
	if (fdatasync(m->img) < 0)
		return -1;
	med_forget(m);
	return 0;
}

/* ---- NBD ---------------------------------------------------------------------- */

static int opt_reply(int c, uint32_t opt, uint32_t type, const void *data, uint32_t len)
{
	unsigned char h[20];
	put64(h, REP_MAGIC);
	put32(h + 8, opt);
	put32(h + 12, type);
	put32(h + 16, len);
	return write_all(c, h, sizeof h) < 0 || (len && write_all(c, data, len) < 0) ? -1 : 0;
}

/* Negotiate; 1 = go to transmission, 0 = client left, -1 = broken. */
static int handshake(int c, const struct med *m)
{
	unsigned char b[18];
	uint32_t cflags;
	uint16_t tx = TX_HAS_FLAGS | TX_SEND_FLUSH;

	put64(b, NBD_MAGIC);
	put64(b + 8, IHAVEOPT);
	put16(b + 16, HS_FIXED_NEWSTYLE | HS_NO_ZEROES);
	if (write_all(c, b, 18) < 0 || read_all(c, b, 4) < 0)
		return -1;
	cflags = get32(b);
	for (;;) {
		unsigned char h[16], info[12];
		uint32_t opt, len;
		char *data = NULL;
		if (read_all(c, h, 16) < 0 || get64(h) != IHAVEOPT)
			return -1;
		opt = get32(h + 8);
		len = get32(h + 12);
		if (len > 65536)
			return -1;
		if (len && (!(data = malloc(len)) || read_all(c, data, len) < 0)) {
			free(data);
			return -1;
		}
		free(data);
		switch (opt) {
		case OPT_EXPORT_NAME: {
			unsigned char r[10 + 124] = {0};
			put64(r, m->size);
			put16(r + 8, tx);
			return write_all(c, r, cflags & CL_NO_ZEROES ? 10 : sizeof r) < 0 ? -1 : 1;
		}
		case OPT_ABORT:
			opt_reply(c, opt, REP_ACK, NULL, 0);
			return 0;
		case OPT_INFO:
		case OPT_GO:
			put16(info, 0);   /* NBD_INFO_EXPORT */
			put64(info + 2, m->size);
			put16(info + 10, tx);
			if (opt_reply(c, opt, REP_INFO, info, sizeof info) < 0 ||
			    opt_reply(c, opt, REP_ACK, NULL, 0) < 0)
				return -1;
			if (opt == OPT_GO)
				return 1;
			break;
		default:
			if (opt_reply(c, opt, REP_ERR_UNSUP, NULL, 0) < 0)
				return -1;
		}
	}
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* One request. 0 = served, -1 = the connection is over. */
static int serve_one(int c, struct med *m, unsigned char **buf)
{
	unsigned char q[28], r[16];
	uint16_t type;
	uint64_t off;
	uint32_t len, e = 0;

	if (read_all(c, q, 28) < 0 || get32(q) != REQ_MAGIC)
		return -1;
	type = get16(q + 6);
	off = get64(q + 16);
	len = get32(q + 24);
	put32(r, SIMPLE_MAGIC);
	memcpy(r + 8, q + 8, 8);   /* cookie */
	if (type == CMD_DISC)
		return -1;
	if ((type == CMD_READ || type == CMD_WRITE) && len > MAX_REQ)
		return -1;
	if (type == CMD_WRITE && read_all(c, *buf, len) < 0)
		return -1;
	if ((m->faults & NBDMED_SLOW) && (type == CMD_READ || type == CMD_WRITE))
		sleep_ms(SLOW_MS);
	switch (type) {
	case CMD_READ:
		if (off > m->size || len > m->size - off)
			e = E_INVAL;
		else if ((m->faults & NBDMED_EIO_READ) || med_read(m, off, len, *buf) < 0)
			e = E_IO;
		break;
	case CMD_WRITE:
		if (off > m->size || len > m->size - off)
			e = E_INVAL;
		else if ((m->faults & NBDMED_EIO_WRITE) || med_write(m, off, len, *buf) < 0)
			e = E_IO;
		break;
	case CMD_FLUSH:
		if (med_flush(m) < 0)
			e = E_IO;
		break;
	default:
		e = E_INVAL;
	}
	put32(r + 4, e);
	if (write_all(c, r, 16) < 0)
		return -1;
	if (type == CMD_READ && !e && write_all(c, *buf, len) < 0)
		return -1;
	return 0;
}

static volatile sig_atomic_t terminated;

static void on_term(int sig)
{
	(void)sig;
	terminated = 1;
}

static void server(int lst, int ctl, struct med *m)
{
	unsigned char *buf = malloc(MAX_REQ);
	struct sigaction sa = {.sa_handler = on_term};
	int conn = -1;
	if (!buf)
		_exit(1);
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);   /* no SA_RESTART: poll returns */
	for (;;) {
		if (terminated)
			_exit(med_flush(m) < 0);
		struct pollfd p[3] = {{ctl, POLLIN, 0}, {lst, conn < 0 ? POLLIN : 0, 0},
				      {conn, POLLIN, 0}};
		if (poll(p, conn < 0 ? 2 : 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			_exit(1);
		}
		if (p[0].revents) {
			unsigned char msg[2];
			ssize_t n = read(ctl, msg, sizeof msg);
			char ok = 'k';
			if (n < 0 && errno == EINTR)
				continue;
			if (n >= 2 && msg[0] == 'F') {
				m->faults = msg[1];
				if (write_all(ctl, &ok, 1) < 0)
					_exit(1);
				continue;
			}
			if (n >= 1 && msg[0] == 'D')
				med_forget(m);
			else if (med_flush(m) < 0)
				ok = 'e';
			if (n > 0)
				write_all(ctl, &ok, 1);
			_exit(ok == 'k' ? 0 : 1);
		}
		if (conn < 0 && (p[1].revents & POLLIN)) {
			int c = accept4(lst, NULL, NULL, SOCK_CLOEXEC);
			if (c >= 0 && handshake(c, m) == 1)
				conn = c;
			else if (c >= 0)
				close(c);
			continue;
		}
		if (conn >= 0 && p[2].revents && serve_one(conn, m, &buf) < 0) {
			close(conn);
			conn = -1;
		}
	}
}

/* ---- the runner's side ---------------------------------------------------------- */

int nbdmed_start(const char *image, const char *sock_path, struct nbdmed *m,
                 char *err, size_t errlen)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct med md = {.img = -1, .ovl = -1};
	struct stat st;
	char ovl_path[4200];
	int lst = -1, sp[2] = {-1, -1};
	pid_t pid;

	m->pid = 0;
	m->ctl = -1;
	if (strlen(sock_path) >= sizeof sa.sun_path) {
		err_set(err, errlen, "socket path `%s` is too long", sock_path);
		return -1;
	}
	if ((md.img = open(image, O_RDWR | O_CLOEXEC)) < 0 || fstat(md.img, &st) < 0) {
		err_set(err, errlen, "image `%s`: %s", image, strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st.st_mode) || st.st_size <= 0 || st.st_size % SECTOR) {
		err_set(err, errlen, "image `%s` must be a regular file whose size is a non-zero "
			"multiple of 512 bytes (it is %lld bytes)", image, (long long)st.st_size);
		goto fail;
	}
	md.size = (uint64_t)st.st_size;
	md.nsec = md.size / SECTOR;
	snprintf(ovl_path, sizeof ovl_path, "%s.ovl", sock_path);
	if ((md.ovl = open(ovl_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0 ||
	    unlink(ovl_path) < 0 || ftruncate(md.ovl, (off_t)md.size) < 0) {
		err_set(err, errlen, "overlay `%s`: %s", ovl_path, strerror(errno));
		goto fail;
	}
	if (!(md.dirty = calloc(1, (size_t)(md.nsec + 7) / 8 + 1))) {
		err_set(err, errlen, "out of memory");
		goto fail;
	}
	strcpy(sa.sun_path, sock_path);
	unlink(sock_path);
	if ((lst = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    bind(lst, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(lst, 2) < 0 ||
	    socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0) {
		err_set(err, errlen, "nbd socket `%s`: %s", sock_path, strerror(errno));
		goto fail;
	}
	pid = fork();
	if (pid < 0) {
		err_set(err, errlen, "fork: %s", strerror(errno));
		goto fail;
	}
	if (pid == 0) {
		pid_t parent = getppid();
		int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(1);
		signal(SIGPIPE, SIG_IGN);
		signal(SIGINT, SIG_IGN);
		if (nul >= 0) {
			dup2(nul, 0);
			dup2(nul, 1);
			dup2(nul, 2);
		}
		/* keep only what the server uses: no runner pipe stays open */
		{
			int keep[4] = {lst, sp[1], md.img, md.ovl};
			for (int fd = 3; fd < 1024; fd++) {
				bool k = false;
				for (int i = 0; i < 4; i++)
					k |= keep[i] == fd;
				if (!k)
					close(fd);
			}
		}
		server(lst, sp[1], &md);
		_exit(0);
	}
	close(lst);
	close(sp[1]);
	close(md.img);
	close(md.ovl);
	free(md.dirty);
	m->pid = pid;
	m->ctl = sp[0];
	return 0;
fail:
	if (lst >= 0)
		close(lst);
	if (sp[0] >= 0) {
		close(sp[0]);
		close(sp[1]);
	}
	if (md.img >= 0)
		close(md.img);
	if (md.ovl >= 0)
		close(md.ovl);
	free(md.dirty);
	return -1;
}

/* Send msg, wait for the 'k'. */
static int ctl_call(struct nbdmed *m, const unsigned char *msg, size_t n, char *err, size_t errlen)
{
	struct pollfd p = {m->ctl, POLLIN, 0};
	char ack = 0;
	int r;
	if (write(m->ctl, msg, n) != (ssize_t)n) {
		err_set(err, errlen, "disk server: %s", strerror(errno));
		return -1;
	}
	do
		r = poll(&p, 1, CTL_TIMEOUT_MS);
	while (r < 0 && errno == EINTR);
	if (r <= 0 || read(m->ctl, &ack, 1) != 1 || ack != 'k') {
		err_set(err, errlen, "disk server: %s", r == 0 ? "no answer in 30 s"
			: ack == 'e' ? "writing the held data to the image failed" : "it exited");
		return -1;
	}
	return 0;
}

int nbdmed_faults(struct nbdmed *m, unsigned mask, char *err, size_t errlen)
{
	unsigned char msg[2] = {'F', (unsigned char)mask};
	if (!m->pid) {
		err_set(err, errlen, "disk server is not running");
		return -1;
	}
	return ctl_call(m, msg, 2, err, errlen);
}

int nbdmed_stop(struct nbdmed *m, enum nbdmed_end how, char *err, size_t errlen)
{
	unsigned char msg[1] = {(unsigned char)how};
	int rc = 0, st;
	if (!m->pid)
		return 0;
	rc = ctl_call(m, msg, 1, err, errlen);
	if (rc < 0)
		kill(m->pid, SIGKILL);
	while (waitpid(m->pid, &st, 0) < 0 && errno == EINTR)
		;
	close(m->ctl);
	m->ctl = -1;
	m->pid = 0;
	return rc;
}
