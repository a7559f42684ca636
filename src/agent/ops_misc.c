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
	reply_ok_begin(&o, id);
	msgpack_pack_map(&o.pk, 1);
	proto_pack_key(&o.pk, PROTO_F_CHANNEL);
	msgpack_pack_uint64(&o.pk, t->chan);
	out_send(&o, id);
	if (tail_poll(t) < 0)
		tail_free(t);
}

void op_tail(uint64_t id, const msgpack_object *req)
{
	char *path = req_strdup(req, "path");
	const msgpack_object *start = proto_get(req, "start");
	struct stat st;
	off_t off;
	int64_t v;
	int fd;

	if (!path) {
		reply_bad(id, "missing or invalid path field");
		return;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	free(path);
	if (fd < 0 || fstat(fd, &st) < 0) {
		reply_errno(id, errno);
		if (fd >= 0)
			close(fd);
		return;
	}
	off = st.st_size;  /* "end" */
	if (start) {
		const char *s;
		size_t n;

		if (proto_obj_bytes(start, &s, &n) == 0) {
			if ((n == 9 && !memcmp(s, "beginning", 9)) ||
			    (n == 5 && !memcmp(s, "start", 5)))
				off = 0;
			else if (!(n == 3 && !memcmp(s, "end", 3)))
				goto bad;
		} else if (proto_obj_int(start, &v) == 0) {
			off = v >= 0 ? (off_t)v : st.st_size + (off_t)v;
			if (off < 0)
				off = 0;
		} else {
			goto bad;
		}
	}
	tail_start(id, fd, off);
	return;
bad:
	close(fd);
	reply_bad(id, "start must be \"beginning\", \"end\" or an integer");
}

void op_fd_stream(uint64_t id, const msgpack_object *req)
{
	uint64_t h;
	int fd, nfd;
	off_t off;

	if (proto_get_uint(req, "handle", &h) < 0) {
		reply_bad(id, "missing handle field");
		return;
	}
	fd = file_handle_fd(h);
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
	uint64_t chan;

	if (proto_get_uint(req, PROTO_F_CHANNEL, &chan) < 0) {
		reply_bad(id, "missing channel field");
		return;
	}
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
 * bv[target] at offset, for each [target, offset, source] of patches.
 * Everything is validated first; on a bad patch replies bad_request and
 * returns -1 with no buffer touched. */
static int apply_patches(uint64_t id, const msgpack_object *patches, char **bv,
			 const size_t *bl, uint32_t nb)
{
	char msg[160];

	if (patches->type != MSGPACK_OBJECT_ARRAY) {
		reply_bad(id, "patches must be an array of [target, offset, source]");
		return -1;
	}
	for (uint32_t i = 0; i < patches->via.array.size; i++) {
		const msgpack_object *p = &patches->via.array.ptr[i];
		int64_t tgt, off, src;

		if (p->type != MSGPACK_OBJECT_ARRAY || p->via.array.size != 3 ||
		    proto_obj_int(&p->via.array.ptr[0], &tgt) < 0 ||
		    proto_obj_int(&p->via.array.ptr[1], &off) < 0 ||
		    proto_obj_int(&p->via.array.ptr[2], &src) < 0) {
			snprintf(msg, sizeof msg, "patches[%u] must be "
				 "[target, offset, source] integers", i);
			reply_bad(id, msg);
			return -1;
		}
		if (tgt < 0 || tgt >= nb || src < 0 || src >= nb) {
			snprintf(msg, sizeof msg, "patches[%u]: buffer index "
				 "out of range (target %lld, source %lld, %u bufs)",
				 i, (long long)tgt, (long long)src, nb);
			reply_bad(id, msg);
			return -1;
		}
		if (off < 0 || (uint64_t)off > bl[tgt] ||
		    bl[tgt] - (uint64_t)off < 8) {
			snprintf(msg, sizeof msg, "patches[%u]: offset %lld + 8 "
				 "exceeds buffer %lld of %zu bytes",
				 i, (long long)off, (long long)tgt, bl[tgt]);
			reply_bad(id, msg);
			return -1;
		}
	}
	for (uint32_t i = 0; i < patches->via.array.size; i++) {
		const msgpack_object *p = &patches->via.array.ptr[i];
		int64_t tgt, off, src;
		uint64_t addr;

		proto_obj_int(&p->via.array.ptr[0], &tgt);
		proto_obj_int(&p->via.array.ptr[1], &off);
		proto_obj_int(&p->via.array.ptr[2], &src);
		addr = (uint64_t)(uintptr_t)bv[src];
		for (int b = 0; b < 8; b++)
			bv[tgt][off + b] = (char)(addr >> (8 * b));
	}
	return 0;
}

void op_syscall(uint64_t id, const msgpack_object *req)
{
	const msgpack_object *args = proto_get(req, "args");
	const msgpack_object *bufs = proto_get(req, "bufs");
	const msgpack_object *ptrs = proto_get(req, "ptrs");
	const msgpack_object *patches = proto_get(req, PROTO_F_PATCHES);
	long a[6] = { 0 };
	char **bv = NULL;
	size_t *bl = NULL;
	uint32_t nb = 0;
	int64_t nr;
	long ret;
	int e;
	struct out o;

	if (proto_get_int(req, "nr", &nr) < 0) {
		reply_bad(id, "missing nr field");
		return;
	}
	if (args && (args->type != MSGPACK_OBJECT_ARRAY || args->via.array.size > 6)) {
		reply_bad(id, "args must be an array of up to 6 integers");
		return;
	}
	for (uint32_t i = 0; args && i < args->via.array.size; i++) {
		int64_t v;

		if (proto_obj_int(&args->via.array.ptr[i], &v) < 0) {
			if (args->via.array.ptr[i].type == MSGPACK_OBJECT_POSITIVE_INTEGER)
				v = (int64_t)args->via.array.ptr[i].via.u64;
			else {
				reply_bad(id, "args must be integers");
				return;
			}
		}
		a[i] = (long)v;
	}
	if (bufs) {
		if (bufs->type != MSGPACK_OBJECT_ARRAY || !ptrs ||
		    ptrs->type != MSGPACK_OBJECT_ARRAY ||
		    ptrs->via.array.size != bufs->via.array.size) {
			reply_bad(id, "bufs needs a ptrs array of the same length");
			return;
		}
		nb = bufs->via.array.size;
		bv = calloc(nb + 1, sizeof(*bv));
		bl = calloc(nb + 1, sizeof(*bl));
		if (!bv || !bl) {
			reply_errno(id, ENOMEM);
			goto out;
		}
		for (uint32_t i = 0; i < nb; i++) {
			const char *p;
			size_t n;
			int64_t slot;

			if (proto_obj_bytes(&bufs->via.array.ptr[i], &p, &n) < 0 ||
			    proto_obj_int(&ptrs->via.array.ptr[i], &slot) < 0 ||
			    slot < -1 || slot > 5) {
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
	if (patches && apply_patches(id, patches, bv, bl, nb) < 0)
		goto out;
	errno = 0;
	ret = syscall((long)nr, a[0], a[1], a[2], a[3], a[4], a[5]);
	e = ret == -1 ? errno : 0;
	reply_ok_begin(&o, id);
	msgpack_pack_map(&o.pk, nb ? 3 : 2);
	proto_pack_key(&o.pk, "ret");
	msgpack_pack_int64(&o.pk, ret);
	proto_pack_key(&o.pk, PROTO_F_ERRNO);
	msgpack_pack_int(&o.pk, e);
	if (nb) {
		proto_pack_key(&o.pk, "out_bufs");
		msgpack_pack_array(&o.pk, nb);
		for (uint32_t i = 0; i < nb; i++)
			proto_pack_bytes(&o.pk, bv[i], bl[i]);
	}
	out_send(&o, id);
out:
	for (uint32_t i = 0; bv && i < nb; i++)
		free(bv[i]);
	free(bv);
	free(bl);
}

void op_read_mem(uint64_t id, const msgpack_object *req)
{
	uint64_t addr, len;
	struct out o;
	char *b;
	int fd;
	ssize_t n;

	if (proto_get_uint(req, "addr", &addr) < 0 ||
	    proto_get_uint(req, "len", &len) < 0) {
		reply_bad(id, "read_mem needs addr and len (uint)");
		return;
	}
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
	int rb = 0;

	proto_get_bool(req, "reboot", &rb);
	reply_nil(id);
	server_flush();
	agent_poweroff(rb);
}
