/* ops_misc.c — tails (file and fd streams), stream_close, syscall and
 * poweroff.
 *
 * Tails are polled, not inotify-driven: while any tail is open the server
 * loop ticks every TAIL_POLL_MS, and each tail preads from its own offset
 * to EOF, sending what it finds as StreamData. A file that shrinks below
 * the offset was truncated: the tail restarts at 0. A tail owns a private
 * fd (its own open of the path, or a dup of a file handle's fd read with
 * pread, so the handle's cursor is untouched). Tails belong to the
 * connection: a disconnect drops them all.
 *
 * syscall runs the raw syscall(2) in the op server itself, with the
 * request's buffers spliced into the named argument slots and the
 * request's patches (the address of one buffer written into another,
 * for nested pointers) applied first; every index and offset is checked
 * before anything is written. Descriptors a syscall opens live in the op
 * server, so they stay valid for later syscalls. A syscall that kills
 * the server (exit, a fatal signal) is survived by the supervisor
 * restarting it. Routed to a worker (ops_worker.c), the same code runs
 * in the worker process instead.
 *
 * read_mem preads the serving process's own memory through
 * /proc/self/mem (the offset is the virtual address), so a bad address
 * is an errno answer (EIO), never a fault in the agent.
 */
#include "agent/agent.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define TAIL_POLL_MS 50

struct tail {
	uint64_t chan;
	int fd;
	off_t off;
	struct tail *next;
};

static struct tail *tails;
static int64_t next_poll;

static void tail_free(struct tail *t)
{
	struct tail **pp;

	for (pp = &tails; *pp; pp = &(*pp)->next) {
		if (*pp == t) {
			*pp = t->next;
			break;
		}
	}
	close(t->fd);
	free(t);
}

/* Send what was appended since the last look. 0, or -1 if the tail ended. */
static int tail_poll(struct tail *t)
{
	char tmp[PROTO_STREAM_CHUNK];
	struct stat st;

	if (fstat(t->fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size < t->off)
		t->off = 0;
	for (int rounds = 0; rounds < 64; rounds++) {
		ssize_t n = pread(t->fd, tmp, sizeof tmp, t->off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			stream_end(t->chan, strerror(errno));
			return -1;
		}
		if (n == 0)
			break;
		stream_data(t->chan, tmp, (size_t)n);
		t->off += n;
	}
	return 0;
}

int tail_tick(int64_t now)
{
	struct tail *t, *nx;

	if (!tails)
		return -1;
	if (now >= next_poll) {
		for (t = tails; t; t = nx) {
			nx = t->next;
			if (tail_poll(t) < 0)
				tail_free(t);
		}
		next_poll = now + TAIL_POLL_MS;
	}
	return (int)(next_poll - now);
}

void tail_disconnect(void)
{
	while (tails)
		tail_free(tails);
}

/* Register a tail on fd from offset off and answer id with its channel. */
static void tail_start(uint64_t id, int fd, off_t off)
{
	struct tail *t = calloc(1, sizeof(*t));
	struct proto_channel r;
	struct out o;

	if (!t) {
		close(fd);
		reply_errno(id, ENOMEM);
		return;
	}
	t->chan = chan_alloc();
	t->fd = fd;
	t->off = off;
	t->next = tails;
	tails = t;
	r.channel = t->chan;
	reply_ok_begin(&o, id);
	proto_pack_map(&o.pk, &proto_m_channel, &r);
	out_send(&o, id);
	if (tail_poll(t) < 0)
		tail_free(t);
}

void op_tail(uint64_t id, const msgpack_object *req)
{
	struct proto_tail q;
	char *path;
	struct stat st;
	off_t off;
	int fd;

	if (req_decode(id, req, &proto_m_tail, &q) < 0 ||
	    !(path = req_str(id, q.path, "invalid path field (NUL byte)")))
		return;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	free(path);
	if (fd < 0 || fstat(fd, &st) < 0) {
		reply_errno(id, errno);
		if (fd >= 0)
			close(fd);
		return;
	}
	off = st.st_size;  /* "end" */
	if (q.has_start && !q.start.is_int) {
		if (proto_str_is(q.start.s, "beginning") || proto_str_is(q.start.s, "start"))
			off = 0;
		else if (!proto_str_is(q.start.s, "end"))
			goto bad;
	} else if (q.has_start) {
		int64_t v = q.start.i;

		off = v >= 0 ? (off_t)v : st.st_size + (off_t)v;
		if (off < 0)
			off = 0;
	}
	tail_start(id, fd, off);
	return;
bad:
	close(fd);
	reply_bad(id, "start must be \"beginning\", \"end\" or an integer");
}

void op_fd_stream(uint64_t id, const msgpack_object *req)
{
	struct proto_handle q;
	int fd, nfd;
	off_t off;

	if (req_decode(id, req, &proto_m_handle, &q) < 0)
		return;
	fd = file_handle_fd(q.handle);
	if (fd < 0) {
		reply_err(id, PROTO_ERR_NO_HANDLE, "file is closed", EBADF);
		return;
	}
	off = lseek(fd, 0, SEEK_CUR);
	nfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (nfd < 0) {
		reply_errno(id, errno);
		return;
	}
	tail_start(id, nfd, off < 0 ? 0 : off);
}

void op_stream_close(uint64_t id, const msgpack_object *req)
{
	struct proto_channel q;
	uint64_t chan;

	if (req_decode(id, req, &proto_m_channel, &q) < 0)
		return;
	chan = q.channel;
	if (proc_stream_close(chan) == 0) {
		reply_nil(id);
		return;
	}
	for (struct tail *t = tails; t; t = t->next) {
		if (t->chan == chan) {
			tail_free(t);
			reply_nil(id);
			return;
		}
	}
	/* Already ended (EOF) is not an error: closing is idempotent. */
	reply_nil(id);
}

/* Write the address of bv[source] as 8 bytes little-endian into
 * bv[target] at offset, for each [target, offset, source] of patches
 * (decoded: three integers each). Everything is validated first; on a bad
 * patch replies bad_request and returns -1 with no buffer touched. */
static int apply_patches(uint64_t id, const struct proto_list *patches, char **bv,
			 const size_t *bl, uint32_t nb)
{
	char msg[160];

	for (size_t i = 0; i < patches->n; i++) {
		struct proto_elem p = proto_list_at(patches, i);
		int64_t tgt = p.i, off = p.j, src = p.k;

		if (tgt < 0 || tgt >= nb || src < 0 || src >= nb) {
			snprintf(msg, sizeof msg, "patches[%zu]: buffer index "
				 "out of range (target %lld, source %lld, %u bufs)",
				 i, (long long)tgt, (long long)src, nb);
			reply_bad(id, msg);
			return -1;
		}
		if (off < 0 || (uint64_t)off > bl[tgt] ||
		    bl[tgt] - (uint64_t)off < 8) {
			snprintf(msg, sizeof msg, "patches[%zu]: offset %lld + 8 "
				 "exceeds buffer %lld of %zu bytes",
				 i, (long long)off, (long long)tgt, bl[tgt]);
			reply_bad(id, msg);
			return -1;
		}
	}
	for (size_t i = 0; i < patches->n; i++) {
		struct proto_elem p = proto_list_at(patches, i);
		uint64_t addr = (uint64_t)(uintptr_t)bv[p.k];

		for (int b = 0; b < 8; b++)
			bv[p.i][p.j + b] = (char)(addr >> (8 * b));
	}
	return 0;
}

/* The syscall's buffers after the call, as the reply's out_bufs. */
struct outbufs {
	char *const *bv;
	const size_t *bl;
};

static void at_outbuf(const struct proto_list *l, size_t i, struct proto_elem *e)
{
	const struct outbufs *b = l->ctx;

	e->s.p = b->bv[i];
	e->s.n = b->bl[i];
}

void op_syscall(uint64_t id, const msgpack_object *req)
{
	struct proto_syscall q;
	struct proto_syscall_result r = { 0 };
	struct outbufs ob;
	long a[6] = { 0 };
	char **bv = NULL;
	size_t *bl = NULL;
	uint32_t nb = 0;
	long ret;
	struct out o;

	if (req_decode(id, req, &proto_m_syscall, &q) < 0)
		return;
	for (size_t i = 0; q.has_args && i < q.args.n; i++)
		a[i] = (long)proto_list_at(&q.args, i).i;
	if (q.has_bufs) {
		if (!q.has_ptrs || q.ptrs.n != q.bufs.n) {
			reply_bad(id, "bufs needs a ptrs array of the same length");
			return;
		}
		nb = (uint32_t)q.bufs.n;
		bv = calloc(nb + 1, sizeof(*bv));
		bl = calloc(nb + 1, sizeof(*bl));
		if (!bv || !bl) {
			reply_errno(id, ENOMEM);
			goto out;
		}
		for (uint32_t i = 0; i < nb; i++) {
			struct proto_str b = proto_list_at(&q.bufs, i).s;
			const char *p = b.p;
			size_t n = b.n;
			int64_t slot = proto_list_at(&q.ptrs, i).i;

			if (slot < -1 || slot > 5) {
				reply_bad(id, "bufs must be bytes, ptrs slots 0..5 or -1");
				goto out;
			}
			bv[i] = malloc(n ? n : 1);
			if (!bv[i]) {
				reply_errno(id, ENOMEM);
				goto out;
			}
			memcpy(bv[i], p, n);
			bl[i] = n;
			if (slot >= 0)
				a[slot] = (long)bv[i];
		}
	}
	if (q.has_patches && apply_patches(id, &q.patches, bv, bl, nb) < 0)
		goto out;
	errno = 0;
	ret = syscall((long)q.nr, a[0], a[1], a[2], a[3], a[4], a[5]);
	r.ret = ret;
	r.err_no = ret == -1 ? errno : 0;
	r.has_err_no = true;
	if (nb) {
		r.has_out_bufs = true;
		ob = (struct outbufs){ bv, bl };
		r.out_bufs = (struct proto_list){ nb, at_outbuf, &ob, NULL };
	}
	reply_ok_begin(&o, id);
	proto_pack_map(&o.pk, &proto_m_syscall_result, &r);
	out_send(&o, id);
out:
	for (uint32_t i = 0; bv && i < nb; i++)
		free(bv[i]);
	free(bv);
	free(bl);
}

void op_read_mem(uint64_t id, const msgpack_object *req)
{
	struct proto_read_mem q;
	uint64_t addr, len;
	struct out o;
	char *b;
	int fd;
	ssize_t n;

	if (req_decode(id, req, &proto_m_read_mem, &q) < 0)
		return;
	addr = q.addr;
	len = q.len;
	if (len > PROTO_IO_MAX) {
		reply_err(id, PROTO_ERR_TOO_LARGE, "read_mem: len exceeds "
			  "the largest read of one frame", 0);
		return;
	}
	if (addr > (uint64_t)INT64_MAX - len) {
		reply_errno(id, EINVAL);
		return;
	}
	b = malloc(len ? len : 1);
	if (!b) {
		reply_errno(id, ENOMEM);
		return;
	}
	fd = open("/proc/self/mem", O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		reply_errno(id, errno);
		free(b);
		return;
	}
	do
		n = pread(fd, b, len, (off_t)addr);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		reply_errno(id, errno);
	else if ((uint64_t)n < len)
		reply_errno(id, EIO);   /* the range runs into unmapped memory */
	else {
		reply_ok_begin(&o, id);
		proto_pack_bytes(&o.pk, b, len);
		out_send(&o, id);
	}
	close(fd);
	free(b);
}

void op_poweroff(uint64_t id, const msgpack_object *req)
{
	struct proto_poweroff q;

	if (req_decode(id, req, &proto_m_poweroff, &q) < 0)
		return;
	reply_nil(id);
	server_flush();
	agent_poweroff(q.reboot);
}
