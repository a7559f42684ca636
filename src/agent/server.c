/* server.c — the agent's op server: connection, framing, handshake,
 * dispatch, replies, stream channels and the poll loop.
 *
 * The port. The host side of the virtio-serial port "org.provium.agent"
 * comes and goes (host not connected yet at boot, a provium restart, a
 * snapshot restore). The guest sees that only as: poll() reports POLLHUP
 * and read() returns 0 while no host is connected. So the port is opened
 * once and never closed; the connection state machine is
 *
 *     DOWN --(poll without POLLHUP)--> UP, waiting for Hello
 *      ^                                   | Hello, version ok -> HelloOk
 *      |                                   v
 *      +----(POLLHUP / read()==0)------ SESSION (requests served)
 *
 * Going DOWN drops the partial input frame and all queued output, bumps
 * the generation (late replies for the old connection are discarded, see
 * server_live()), and ends every stream channel; the loop then re-checks
 * the port every BACKOFF_MS (POLLHUP is level-triggered, polling it
 * continuously would spin). A Hello in SESSION also starts a new session.
 *
 * Partial frames of an old connection. Bytes left in the port by a host
 * that went away mid-frame may sit in front of the next host's Hello, and
 * a host can drop and re-open the connection between two polls so that
 * no POLLHUP is ever seen (the kernel offers no reliable open/close event:
 * the port's SIGIO also fires for every data arrival). The agent
 * therefore resynchronises on the canonical bytes of a Hello frame (as
 * proto_pack_hello makes them — hosts must send exactly those):
 *   - before a session, an incomplete frame that contains a Hello is junk:
 *     input restarts at the Hello at once (a host sends nothing else
 *     before its Hello);
 *   - in a session, an incomplete frame that has stalled for STALL_MS
 *     (a live host writes whole frames) and contains a Hello is junk too;
 *   - a length above PROTO_FRAME_MAX (never allocated) drops everything
 *     up to the next Hello.
 *
 * Framing: u32 big-endian length + one msgpack map (protocol.h). Output is
 * queued and written non-blocking (POLLOUT).
 *
 * The loop is single-threaded: the port, a SIGCHLD signalfd, and every
 * watch registered by the op modules (process pipes, worker sockets) are
 * polled together, with the poll timeout bounded by the modules' timers
 * (proc_tick, tail_tick, net_tick, worker_tick). Nothing here blocks
 * except poll() itself.
 *
 * Workers (ops_worker.c). A request carrying "worker" is not run here:
 * its frame is handed to worker_relay unchanged. A worker process is a
 * fork of this server that calls server_become_worker: it drops
 * everything it inherited (fds, processes, file handles, tails, other
 * workers), takes its end of a socketpair as its port, starts in a
 * session (no Hello on that private channel) and runs this same loop;
 * the EOF of that socket ends the worker (exit 0).
 */
#include "agent/agent.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#define BACKOFF_MS 20
#define STALL_MS 200
#define READ_CHUNK (256u << 10)

struct watch {
	int fd;
	short events;
	uint64_t serial;
	watch_cb cb;
	void *ctx;
};

static struct {
	int fd;                 /* the port, -1 until found */
	int up;                 /* host believed connected */
	int session;            /* Hello accepted */
	uint64_t gen;
	int64_t retry_at;       /* while DOWN: next time to look at the port */
	struct buf in;
	int desync;             /* dropping input until the next Hello */
	int64_t last_rx;        /* when bytes last arrived */
	int stall_checked;      /* the current stall was already examined */
	char hello[64];         /* the framed Hello this agent accepts */
	size_t hello_len;
	struct buf out;
	size_t out_off;
	uint64_t next_chan;
	struct watch *w;
	size_t nw, capw;
	uint64_t next_serial;
	int sfd;                /* the SIGCHLD signalfd */
	uint64_t worker;        /* inside a worker: its handle, else 0 */
} S = { .fd = -1, .next_chan = 1, .sfd = -1 };

int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t server_gen(void)
{
	return S.gen;
}

int server_live(uint64_t gen)
{
	return S.session && gen == S.gen;
}

/* ---- watches ---- */

int watch_add(int fd, short events, watch_cb cb, void *ctx)
{
	if (S.nw == S.capw) {
		size_t ncap = S.capw ? S.capw * 2 : 16;
		struct watch *nw = realloc(S.w, ncap * sizeof(*nw));

		if (!nw)
			return -1;
		S.w = nw;
		S.capw = ncap;
	}
	S.w[S.nw++] = (struct watch){ fd, events, ++S.next_serial, cb, ctx };
	return 0;
}

void watch_events(int fd, short events)
{
	for (size_t i = 0; i < S.nw; i++)
		if (S.w[i].fd == fd)
			S.w[i].events = events;
}

void watch_del(int fd)
{
	for (size_t i = 0; i < S.nw; i++) {
		if (S.w[i].fd == fd) {
			S.w[i] = S.w[--S.nw];
			return;
		}
	}
}

/* ---- output ---- */

/* Write as much queued output as the port takes now. */
static void flush_out(void)
{
	while (S.out_off < S.out.len) {
		ssize_t n = write(S.fd, S.out.p + S.out_off, S.out.len - S.out_off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			break;  /* EAGAIN (poll for POLLOUT) or a hangup poll sees */
		}
		S.out_off += (size_t)n;
	}
	if (S.out_off == S.out.len) {
		S.out.len = 0;
		S.out_off = 0;
		if (S.out.cap > (4u << 20)) {
			buf_free(&S.out);
		}
	}
}

/* Blocking-ish flush used before power off: bounded by ~2 s. */
void server_flush(void)
{
	for (int i = 0; i < 200 && S.out_off < S.out.len && S.up; i++) {
		struct pollfd p = { .fd = S.fd, .events = POLLOUT };

		if (poll(&p, 1, 10) > 0 && (p.revents & POLLOUT))
			flush_out();
		if (p.revents & POLLHUP)
			break;
	}
}

static void out_init(struct out *o)
{
	static const char zero[4];

	msgpack_sbuffer_init(&o->sb);
	msgpack_packer_init(&o->pk, &o->sb, msgpack_sbuffer_write);
	msgpack_sbuffer_write(&o->sb, zero, 4);
}

/* Queue a framed message (sbuffer with 4 reserved bytes). Frees o. */
static void out_queue(struct out *o)
{
	size_t body = o->sb.size - 4;
	unsigned char *h = (unsigned char *)o->sb.data;

	h[0] = (unsigned char)(body >> 24);
	h[1] = (unsigned char)(body >> 16);
	h[2] = (unsigned char)(body >> 8);
	h[3] = (unsigned char)body;
	if (!S.up || !S.session) {
		msgpack_sbuffer_destroy(&o->sb);
		return;
	}
	if (S.out.len == 0) {
		/* Hand the buffer over instead of copying (large reads). */
		buf_free(&S.out);
		S.out.p = o->sb.data;
		S.out.len = o->sb.size;
		S.out.cap = o->sb.alloc;
		S.out_off = 0;
		o->sb.data = NULL;
	} else if (buf_add(&S.out, o->sb.data, o->sb.size) < 0) {
		agent_log("out of memory queueing %zu bytes", o->sb.size);
	}
	msgpack_sbuffer_destroy(&o->sb);
	flush_out();
}

int server_send_raw(const void *p, size_t n)
{
	if (!S.up || !S.session)
		return 0;
	if (buf_add(&S.out, p, n) < 0)
		return -1;
	flush_out();
	return 0;
}

void server_forward(const char *frame, size_t n)
{
	if (server_send_raw(frame, n) < 0)
		agent_log("out of memory queueing %zu bytes", n);
}

int server_is_worker(void)
{
	return S.worker != 0;
}

void reply_ok_begin(struct out *o, uint64_t id)
{
	out_init(o);
	proto_pack_ok_head(&o->pk, id);
}

void out_send(struct out *o, uint64_t id)
{
	if (o->sb.size - 4 > PROTO_FRAME_MAX) {
		msgpack_sbuffer_destroy(&o->sb);
		reply_err(id, PROTO_ERR_TOO_LARGE,
			  "result larger than the maximum frame size", 0);
		return;
	}
	out_queue(o);
}

void reply_nil(uint64_t id)
{
	struct out o;

	reply_ok_begin(&o, id);
	msgpack_pack_nil(&o.pk);
	out_send(&o, id);
}

void reply_int(uint64_t id, int64_t v)
{
	struct out o;

	reply_ok_begin(&o, id);
	msgpack_pack_int64(&o.pk, v);
	out_send(&o, id);
}

void reply_err(uint64_t id, const char *code, const char *msg, int err_no)
{
	struct out o;

	out_init(&o);
	proto_pack_err(&o.pk, id, code, msg, err_no);
	out_queue(&o);
}

void reply_errno(uint64_t id, int err_no)
{
	char nb[16];

	reply_err(id, proto_errno_name(err_no, nb, sizeof nb),
		  strerror(err_no), err_no);
}

void reply_bad(uint64_t id, const char *what)
{
	reply_err(id, PROTO_ERR_BAD_REQUEST, what, 0);
}

/* ---- streams ---- */

uint64_t chan_alloc(void)
{
	return S.next_chan++;
}

void stream_data(uint64_t chan, const void *p, size_t n)
{
	const char *c = p;

	while (n > 0) {
		size_t k = n < PROTO_STREAM_CHUNK ? n : PROTO_STREAM_CHUNK;
		struct out o;

		out_init(&o);
		msgpack_pack_map(&o.pk, 3);
		proto_pack_key(&o.pk, PROTO_F_KIND);
		msgpack_pack_int(&o.pk, PROTO_K_STREAM_DATA);
		proto_pack_key(&o.pk, PROTO_F_CHANNEL);
		msgpack_pack_uint64(&o.pk, chan);
		proto_pack_key(&o.pk, PROTO_F_DATA);
		proto_pack_bytes(&o.pk, c, k);
		out_queue(&o);
		c += k;
		n -= k;
	}
}

void stream_end(uint64_t chan, const char *error)
{
	struct out o;

	out_init(&o);
	msgpack_pack_map(&o.pk, error ? 3 : 2);
	proto_pack_key(&o.pk, PROTO_F_KIND);
	msgpack_pack_int(&o.pk, PROTO_K_STREAM_END);
	proto_pack_key(&o.pk, PROTO_F_CHANNEL);
	msgpack_pack_uint64(&o.pk, chan);
	if (error) {
		proto_pack_key(&o.pk, PROTO_F_ERROR);
		proto_pack_cstr(&o.pk, error);
	}
	out_queue(&o);
}

int req_decode(uint64_t id, const msgpack_object *req, const struct proto_msg *m, void *s)
{
	const char *bad = "malformed request";

	if (proto_decode(m, req, s, &bad) == 0)
		return 0;
	reply_bad(id, bad);
	return -1;
}

char *req_str(uint64_t id, struct proto_str s, const char *what)
{
	char *c = proto_str_dup(s);

	if (!c)
		reply_bad(id, errno == EINVAL ? what : "out of memory");
	return c;
}

/* ---- handshake and dispatch ---- */

static void op_ping(uint64_t id, const msgpack_object *req)
{
	reply_nil(id);
}

static const op_fn ops[PROTO_REQ_LAST - PROTO_REQ_FIRST + 1] = {
	[PROTO_K_EXEC - PROTO_REQ_FIRST] = op_exec,
	[PROTO_K_READ_FILE - PROTO_REQ_FIRST] = op_read_file,
	[PROTO_K_WRITE_FILE - PROTO_REQ_FIRST] = op_write_file,
	[PROTO_K_STAT - PROTO_REQ_FIRST] = op_stat,
	[PROTO_K_LISTDIR - PROTO_REQ_FIRST] = op_listdir,
	[PROTO_K_MKDIR - PROTO_REQ_FIRST] = op_mkdir,
	[PROTO_K_UNLINK - PROTO_REQ_FIRST] = op_unlink,
	[PROTO_K_RENAME - PROTO_REQ_FIRST] = op_rename,
	[PROTO_K_CLOCK_GET - PROTO_REQ_FIRST] = op_clock_get,
	[PROTO_K_CLOCK_SET - PROTO_REQ_FIRST] = op_clock_set,
	[PROTO_K_PING - PROTO_REQ_FIRST] = op_ping,
	[PROTO_K_SPAWN - PROTO_REQ_FIRST] = op_spawn,
	[PROTO_K_PROC_WAIT - PROTO_REQ_FIRST] = op_proc_wait,
	[PROTO_K_PROC_STATUS - PROTO_REQ_FIRST] = op_proc_status,
	[PROTO_K_PROC_KILL - PROTO_REQ_FIRST] = op_proc_kill,
	[PROTO_K_PROC_STDIN - PROTO_REQ_FIRST] = op_proc_stdin,
	[PROTO_K_PROC_STDIN_CLOSE - PROTO_REQ_FIRST] = op_proc_stdin_close,
	[PROTO_K_PROC_STREAM - PROTO_REQ_FIRST] = op_proc_stream,
	[PROTO_K_FILE_OPEN - PROTO_REQ_FIRST] = op_file_open,
	[PROTO_K_FILE_READ - PROTO_REQ_FIRST] = op_file_read,
	[PROTO_K_FILE_WRITE - PROTO_REQ_FIRST] = op_file_write,
	[PROTO_K_FILE_SEEK - PROTO_REQ_FIRST] = op_file_seek,
	[PROTO_K_FILE_CLOSE - PROTO_REQ_FIRST] = op_file_close,
	[PROTO_K_TAIL - PROTO_REQ_FIRST] = op_tail,
	[PROTO_K_FD_STREAM - PROTO_REQ_FIRST] = op_fd_stream,
	[PROTO_K_STREAM_CLOSE - PROTO_REQ_FIRST] = op_stream_close,
	[PROTO_K_SYSCALL - PROTO_REQ_FIRST] = op_syscall,
	[PROTO_K_POWEROFF - PROTO_REQ_FIRST] = op_poweroff,
	[PROTO_K_READ_MEM - PROTO_REQ_FIRST] = op_read_mem,
	[PROTO_K_NET_SETUP - PROTO_REQ_FIRST] = op_net_setup,
	[PROTO_K_WORKER_SPAWN - PROTO_REQ_FIRST] = op_worker_spawn,
	[PROTO_K_WORKER_JOIN - PROTO_REQ_FIRST] = op_worker_join,
	[PROTO_K_WORKER_KILL - PROTO_REQ_FIRST] = op_worker_kill,
	[PROTO_K_FAULT_FRAME - PROTO_REQ_FIRST] = op_fault_frame,
};

static const char *const features[] = {
	PROTO_FEAT_EXEC, PROTO_FEAT_FILES, PROTO_FEAT_CLOCK,
	PROTO_FEAT_PROCESS, PROTO_FEAT_FILE_HANDLES, PROTO_FEAT_TAIL,
	PROTO_FEAT_SYSCALL, PROTO_FEAT_POWEROFF, PROTO_FEAT_NET,
	PROTO_FEAT_WORKERS,
};

/* Forget everything tied to the current connection (not the input: the
 * caller may be parsing it). */
static void end_session(void)
{
	if (S.session) {
		proc_disconnect();
		tail_disconnect();
		net_disconnect();
	}
	S.session = 0;
	S.gen++;
	S.out.len = 0;
	S.out_off = 0;
}

static void handle_hello(const msgpack_object *m)
{
	uint64_t v = 0;
	struct out o;
	char msg[128];

	if (S.session)
		end_session();  /* a new Hello starts a new session */
	S.out.len = 0;          /* nothing of an older session may follow */
	S.out_off = 0;
	S.session = 1;          /* let out_queue send the answer */
	out_init(&o);
	if (proto_get_uint(m, PROTO_F_PROTOCOL_VERSION, &v) < 0 ||
	    v != PROTOCOL_VERSION) {
		snprintf(msg, sizeof msg,
			 "protocol version mismatch: host %llu, agent %d",
			 (unsigned long long)v, PROTOCOL_VERSION);
		proto_pack_hello_err(&o.pk, msg);
		out_queue(&o);
		S.session = 0;
		agent_log("%s", msg);
		return;
	}
	{
		struct utsname u;
		char os[256];

		if (uname(&u) == 0)
			snprintf(os, sizeof os, "%s %s", u.sysname, u.release);
		else
			snprintf(os, sizeof os, "Linux");
		proto_pack_hello_ok(&o.pk, PROVIUM_VERSION, os, features,
				    sizeof features / sizeof features[0]);
	}
	out_queue(&o);
}

static void handle_frame(const char *p, size_t n)
{
	msgpack_unpacked u;
	size_t off = 0;
	int64_t kind;
	uint64_t id;

	msgpack_unpacked_init(&u);
	if (proto_msgpack_sane(p, n) < 0 ||
	    msgpack_unpack_next(&u, p, n, &off) != MSGPACK_UNPACK_SUCCESS ||
	    u.data.type != MSGPACK_OBJECT_MAP ||
	    proto_get_int(&u.data, PROTO_F_KIND, &kind) < 0) {
		agent_log("ignoring a malformed frame (%zu bytes)", n);
		goto out;
	}
	if (kind == PROTO_K_HELLO) {
		if (!S.worker)          /* a worker's channel has no handshake */
			handle_hello(&u.data);
		goto out;
	}
	if (!S.session)
		goto out;  /* nothing but Hello before a handshake */
	if (kind < PROTO_REQ_FIRST || kind > PROTO_REQ_LAST)
		goto out;
	if (proto_get_uint(&u.data, PROTO_F_ID, &id) < 0) {
		agent_log("request kind %lld without an id", (long long)kind);
		goto out;
	}
	if (!ops[kind - PROTO_REQ_FIRST]) {
		reply_err(id, PROTO_ERR_UNKNOWN_OP, "unknown op", 0);
		goto out;
	}
	if (kind >= PROTO_K_WORKER_SPAWN && kind <= PROTO_K_WORKER_KILL) {
		if (S.worker || proto_get(&u.data, PROTO_F_WORKER)) {
			reply_bad(id, "worker ops are served by the agent itself, "
				  "not inside a worker");
			goto out;
		}
	} else if (!S.worker && proto_get(&u.data, PROTO_F_WORKER)) {
		uint64_t wid;

		if (proto_get_uint(&u.data, PROTO_F_WORKER, &wid) < 0)
			reply_bad(id, "worker must be a worker handle (uint)");
		else
			worker_relay(id, wid, p - 4, n + 4);  /* p follows its header */
		goto out;
	}
#ifdef PROVIUM_FUZZ
	/* Fuzzing (tests/fuzz/fuzz_agent_server.c): never run an op on the
	 * fuzzing host; answer as an op that succeeded would. */
	reply_nil(id);
#else
	ops[kind - PROTO_REQ_FIRST](id, &u.data);
#endif
out:
	msgpack_unpacked_destroy(&u);
}

/* Offset of the next framed Hello (any protocol_version, so a
 * mismatching host still gets its HelloErr) in S.in at or after from, or
 * -1. S.hello holds the canonical body up to the version value. */
static ssize_t find_hello(size_t from)
{
	size_t at = from + 4;

	while (at < S.in.len) {
		const unsigned char *p = memmem(S.in.p + at, S.in.len - at,
						S.hello, S.hello_len);
		size_t off, len;

		if (!p)
			return -1;
		off = (size_t)((const char *)p - S.in.p);
		len = (size_t)p[-4] << 24 | (size_t)p[-3] << 16 |
		      (size_t)p[-2] << 8 | p[-1];
		if (len > S.hello_len && len <= S.hello_len + 9)
			return (ssize_t)(off - 4);
		at = off + 1;
	}
	return -1;
}

/* S.hello: the canonical Hello body minus its version value (the last
 * byte of a Hello with version 0: one positive fixint). */
static void init_hello(void)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	proto_pack_hello(&pk, 0);
	S.hello_len = sb.size - 1;
	memcpy(S.hello, sb.data, S.hello_len);
	msgpack_sbuffer_destroy(&sb);
}

/* Split S.in into frames and handle each. */
static void parse_input(void)
{
	size_t pos = 0;

	while (S.up) {
		const unsigned char *h;
		size_t len;
		ssize_t q;

		if (S.desync) {
			q = find_hello(pos);
			if (q < 0) {
				/* keep a tail that may hold the start of a Hello */
				if (S.in.len - pos > S.hello_len + 4)
					pos = S.in.len - S.hello_len - 4;
				break;
			}
			agent_log("resynchronised at a Hello");
			pos = (size_t)q;
			S.desync = 0;
		}
		if (S.in.len - pos < 4)
			break;
		h = (const unsigned char *)S.in.p + pos;
		len = (size_t)h[0] << 24 | (size_t)h[1] << 16 |
		      (size_t)h[2] << 8 | h[3];
		if (len > PROTO_FRAME_MAX) {
			agent_log("over-size frame (%zu bytes): dropping input "
				  "up to the next Hello", len);
			S.desync = 1;
			pos++;
			continue;
		}
		if (S.in.len - pos - 4 < len) {
			/* Incomplete. After a host open/close it may be the
			 * remains of the old connection: look for a Hello. */
			if ((!S.session || now_ms() - S.last_rx >= STALL_MS) &&
			    (q = find_hello(pos + 1)) >= 0) {
				agent_log("dropping a partial frame of an old connection");
				pos = (size_t)q;
				continue;
			}
			break;
		}
		handle_frame(S.in.p + pos + 4, len);
		pos += 4 + len;
	}
	if (S.up)
		buf_consume(&S.in, pos);
}

static void port_down(void)
{
	if (S.worker)
		_exit(0);       /* the agent closed our channel: the worker ends */
	if (S.up)
		agent_log("host disconnected");
	end_session();
	S.up = 0;
	S.in.len = 0;
	S.desync = 0;
	/* Bytes still queued in the port may belong to the old connection,
	 * or already to a new one: they cannot be told apart by reading, so
	 * nothing is drained here. Before a Hello only a Hello is acted on,
	 * and a partial old frame gives way to a Hello (parse_input). */
	S.retry_at = now_ms() + BACKOFF_MS;
}

static void port_readable(void)
{
	for (;;) {
		ssize_t n;

		if (S.in.cap - S.in.len < READ_CHUNK) {
			char *np = realloc(S.in.p, S.in.len + READ_CHUNK);

			if (!np)
				return;
			S.in.p = np;
			S.in.cap = S.in.len + READ_CHUNK;
		}
		n = read(S.fd, S.in.p + S.in.len, READ_CHUNK);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return;  /* EAGAIN */
		}
		if (n == 0) {
			port_down();
			return;
		}
		S.in.len += (size_t)n;
		S.last_rx = now_ms();
		S.stall_checked = 0;
		parse_input();
		if (!S.up)
			return;
	}
}

/* Find the port: the udev symlink if present, else by name in sysfs. */
static int open_port(void)
{
	char path[300];
	DIR *d;
	struct dirent *e;
	int fd;

	fd = open("/dev/virtio-ports/" PROTO_PORT_NAME,
		  O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd >= 0)
		return fd;
	d = opendir("/sys/class/virtio-ports");
	if (!d)
		return -1;
	while ((e = readdir(d))) {
		char name[128];
		FILE *f;
		int match = 0;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "/sys/class/virtio-ports/%s/name",
			 e->d_name);
		f = fopen(path, "re");
		if (!f)
			continue;
		if (fgets(name, sizeof name, f)) {
			name[strcspn(name, "\n")] = 0;
			match = strcmp(name, PROTO_PORT_NAME) == 0;
		}
		fclose(f);
		if (!match)
			continue;
		snprintf(path, sizeof path, "/dev/%s", e->d_name);
		fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
		break;
	}
	closedir(d);
	return fd;
}

static int server_loop(void) __attribute__((noreturn));

int server_main(void)
{
	sigset_t set;
	int64_t start = now_ms(), logged = 0;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_BLOCK, &set, NULL);
	S.sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (S.sfd < 0) {
		agent_log("signalfd: %s", strerror(errno));
		return -1;
	}

	while ((S.fd = open_port()) < 0) {
		if (now_ms() - start > 2000 && !logged) {
			agent_log("waiting for the virtio port " PROTO_PORT_NAME);
			logged = 1;
		}
		usleep(20000);
	}
	agent_log("op server on port " PROTO_PORT_NAME " (%lld ms)",
		  (long long)(now_ms() - start));
	init_hello();
	server_loop();
}

/* Called in the child right after the fork of worker_spawn, from inside
 * an op handler of the parent's loop: the parent's stack below is simply
 * abandoned (never returned to). Every inherited fd but the channel and
 * the signalfd is closed (process pipes, files, tails, the port, other
 * workers' sockets: a worker must not keep any of them open), the
 * parent's tables are dropped without signalling anything, and the
 * loop starts over with fd as the port, already in a session. Its
 * stream channels are slot << 40 | n (slot: the agent's per-boot worker
 * counter, see ops_worker.c), apart from the agent's own (< 2^40). */
void server_become_worker(int fd, uint64_t handle, uint64_t slot)
{
	int maxfd = (int)sysconf(_SC_OPEN_MAX);

	S.session = 0;          /* nothing of the parent's may reach fd */
	S.up = 0;
	tail_disconnect();
	net_disconnect();
	proc_forget_all();
	files_forget_all();
	worker_forget_all();
	if (maxfd < 0 || maxfd > 65536)
		maxfd = 65536;
	for (int i = 3; i < maxfd; i++)
		if (i != fd && i != S.sfd)
			close(i);
	S.nw = 0;
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);  /* as the port is */
	S.fd = fd;
	S.worker = handle;
	S.next_chan = (slot << 40) | 1;
	S.in.len = 0;
	S.out.len = 0;
	S.out_off = 0;
	S.desync = 0;
	S.up = 1;
	S.session = 1;
	S.gen++;
	server_loop();
}

static int server_loop(void)
{
	int sfd = S.sfd;
	struct pollfd *pfd = NULL;
	uint64_t *serial = NULL;
	size_t cap = 0;

	for (;;) {
		size_t n = 0, need = S.nw + 2;
		int64_t now = now_ms();
		int timeout = -1, t, portslot = -1;

		if (need > cap) {
			cap = need * 2;
			pfd = realloc(pfd, cap * sizeof(*pfd));
			serial = realloc(serial, cap * sizeof(*serial));
			if (!pfd || !serial) {
				agent_log("out of memory");
				_exit(1);
			}
		}
		pfd[n++] = (struct pollfd){ .fd = sfd, .events = POLLIN };
		if (S.up || now >= S.retry_at) {
			portslot = (int)n;
			pfd[n++] = (struct pollfd){ .fd = S.fd, .events = POLLIN |
				(S.out_off < S.out.len ? POLLOUT : 0) };
		} else {
			timeout = (int)(S.retry_at - now);
		}
		for (size_t i = 0; i < S.nw; i++) {
			serial[n] = S.w[i].serial;
			pfd[n++] = (struct pollfd){ .fd = S.w[i].fd,
						    .events = S.w[i].events };
		}
		t = proc_tick(now);
		if (t >= 0 && (timeout < 0 || t < timeout))
			timeout = t;
		t = tail_tick(now);
		if (t >= 0 && (timeout < 0 || t < timeout))
			timeout = t;
		t = net_tick(now);
		if (t >= 0 && (timeout < 0 || t < timeout))
			timeout = t;
		t = worker_tick(now);
		if (t >= 0 && (timeout < 0 || t < timeout))
			timeout = t;
		if (S.up && S.in.len && !S.stall_checked) {
			t = (int)(S.last_rx + STALL_MS - now);
			if (t < 0)
				t = 0;
			if (timeout < 0 || t < timeout)
				timeout = t;
		}

		if (poll(pfd, n, timeout) < 0) {
			if (errno == EINTR)
				continue;
			agent_log("poll: %s", strerror(errno));
			usleep(10000);
			continue;
		}

		if (portslot >= 0) {
			short re = pfd[portslot].revents;

			if (re & (POLLHUP | POLLERR | POLLNVAL)) {
				port_down();
			} else {
				if (!S.up) {
					S.up = 1;
					S.in.len = 0;
					S.desync = 0;
				}
				if (re & POLLIN)
					port_readable();
				if (S.up && (re & POLLOUT))
					flush_out();
			}
		}
		if (pfd[0].revents & POLLIN) {
			struct signalfd_siginfo si;

			while (read(sfd, &si, sizeof si) > 0)
				;
			proc_reap();
		}
		/* A partial frame that stopped growing: look at it once. */
		if (S.up && S.in.len && !S.stall_checked &&
		    now_ms() - S.last_rx >= STALL_MS) {
			S.stall_checked = 1;
			parse_input();
		}
		for (size_t i = portslot >= 0 ? 2 : 1; i < n; i++) {
			if (!pfd[i].revents)
				continue;
			for (size_t j = 0; j < S.nw; j++) {
				if (S.w[j].serial == serial[i]) {
					S.w[j].cb(S.w[j].ctx, S.w[j].fd,
						  pfd[i].revents);
					break;
				}
			}
		}
	}
}

#ifdef PROVIUM_FUZZ
/* Fuzzing entry (tests/fuzz/fuzz_agent_server.c), built only with
 * -DPROVIUM_FUZZ: data arrives on a connected port in chunks (a chunk
 * ends after each byte equal to split, so partial frames are seen too)
 * and goes through parse_input/handle_frame/handle_hello; ops are not
 * run (handle_frame answers them with nil) and replies go to fd -1.
 * Every piece of state is reset afterwards. */
int agent_fuzz_input(const unsigned char *data, size_t n, int split);
int agent_fuzz_input(const unsigned char *data, size_t n, int split)
{
	size_t at = 0;

	init_hello();
	S.fd = -1;
	S.up = 1;
	S.last_rx = now_ms();
	while (at < n && S.up) {
		size_t k = 1;

		while (at + k < n && data[at + k - 1] != (unsigned char)split)
			k++;
		if (buf_add(&S.in, data + at, k) < 0)
			break;
		at += k;
		S.stall_checked = 0;
		parse_input();
	}
	end_session();
	buf_free(&S.in);
	buf_free(&S.out);
	S.out_off = 0;
	S.up = 0;
	S.desync = 0;
	return 0;
}
#endif
