/* ops_worker.c — workers: separate guest processes the host can route
 * requests to (worker_spawn / worker_join / worker_kill and the relay of
 * requests that carry "worker"; see proto/protocol.h).
 *
 * What it owns: the table of workers of this op server. Each entry is
 * one forked child (server_become_worker runs the op loop there, on the
 * child end of a socketpair) plus this side's end of the socketpair, the
 * bytes queued to it, the bytes read from it, and the ids of the
 * requests relayed to it and not answered yet (with the connection
 * generation they came in on).
 *
 * Life of a worker:
 *
 *   spawn --> RUNNING --(join: our socket end closed)--> JOINING
 *                |  \                                      |
 *                |   (the process dies / is killed)        | reaped
 *                v                                         v
 *             EXITED (status kept, handle still known) --> freed by join
 *
 * Relay. A routed request frame is appended unchanged to the worker's
 * output queue (written as the socket takes it). Frames coming back are
 * split here: an OpResult is forwarded to the host if its id is one we
 * relayed and its connection is still the current one (a reply meant for
 * a host that has since reconnected is dropped, as server.c does for its
 * own replies); stream frames are forwarded as they come. When the
 * socket reaches EOF (the worker died, or was killed), each request
 * still in flight is answered with error worker_gone.
 *
 * Handles. The host picks each worker's handle and sends it in the spawn
 * (a host counter never reused within one provium runner, see
 * vmm/guest_worker.c): a restore brings back the guest's memory, this
 * table included, so a handle chosen here from a counter in the guest
 * would be handed out again after a restore, and a stale host object
 * could reach a newer worker. A handle already in the table is refused
 * (EEXIST); one absent from the spawn gets the next free number here (old
 * tools). The stream channel numbering uses a separate per-boot slot
 * counter (2^24 - 2 spawns), not the handle, which may be large.
 *
 * Kill signals the worker's child processes (its run_async processes:
 * found by their parent pid in /proc, so this works while the worker is
 * blocked in a syscall) and then the worker.
 *
 * Streams. The channels a worker opened (seen in the "channel" of an ok
 * OpResult it sends, within its slot) are remembered until their
 * StreamEnd; when the worker's socket closes, each one still open is
 * ended here with an error naming the worker, so a host reading the
 * stream of a killed worker's process gets an end, not a silence.
 *
 * Reaping. proc_reap (ops_proc.c) waits for every child; the pids it
 * does not know are offered to worker_reaped, which records the status.
 * A join answers once the worker is both reaped and its socket drained.
 *
 * Errors: handlers answer their request exactly once (reply_*); nothing
 * here prints except agent_log for the unexpected.
 */
#include "agent/agent.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

struct relayed {
	uint64_t id, gen;
};

struct worker {
	uint64_t handle;        /* chosen by the host (see the essay) */
	uint64_t slot;          /* its stream channels: slot << 40 | n */
	pid_t pid;
	int fd;                 /* our socket end, -1 once closed */
	struct buf in, out;
	size_t out_off;
	int exited, wstatus;
	int joining;            /* a join waits for the end */
	uint64_t join_id, join_gen;
	int64_t join_deadline;  /* ms, 0 = none */
	struct relayed *rel;
	size_t nrel, caprel;
	uint64_t *chans;        /* its open stream channels (see chan_*) */
	size_t nchans, capchans;
	struct worker *next;
};

static struct worker *workers;
static uint64_t next_handle = 1;        /* for a spawn without "handle" */
static uint64_t next_slot = 1;
#define SLOT_MAX 0xfffffeull            /* 0xffffff: ops_fault's fake channels */

static struct worker *find(uint64_t handle)
{
	for (struct worker *w = workers; w; w = w->next)
		if (w->handle == handle)
			return w;
	return NULL;
}

static void unknown(uint64_t id, uint64_t handle)
{
	char msg[96];

	snprintf(msg, sizeof msg, "unknown worker %llu", (unsigned long long)handle);
	reply_err(id, PROTO_ERR_NO_HANDLE, msg, 0);
}

static void worker_free(struct worker *w)
{
	struct worker **pp;

	for (pp = &workers; *pp; pp = &(*pp)->next) {
		if (*pp == w) {
			*pp = w->next;
			break;
		}
	}
	if (w->fd >= 0) {
		watch_del(w->fd);
		close(w->fd);
	}
	buf_free(&w->in);
	buf_free(&w->out);
	free(w->rel);
	free(w->chans);
	free(w);
}

static void chan_add(struct worker *w, uint64_t ch)
{
	if (w->nchans == w->capchans) {
		size_t nc = w->capchans ? w->capchans * 2 : 8;
		uint64_t *np = realloc(w->chans, nc * sizeof(*np));

		if (!np)
			return;         /* that stream just gets no end */
		w->chans = np;
		w->capchans = nc;
	}
	w->chans[w->nchans++] = ch;
}

static void chan_del(struct worker *w, uint64_t ch)
{
	for (size_t i = 0; i < w->nchans; i++) {
		if (w->chans[i] == ch) {
			w->chans[i] = w->chans[--w->nchans];
			return;
		}
	}
}

/* The socket is done (EOF, error, or closed by join): answer what is in
 * flight with worker_gone, end its open streams. */
static void sock_close(struct worker *w)
{
	char msg[128];

	if (w->fd < 0)
		return;
	watch_del(w->fd);
	close(w->fd);
	w->fd = -1;
	snprintf(msg, sizeof msg, "worker %llu ended before answering",
		 (unsigned long long)w->handle);
	for (size_t i = 0; i < w->nrel; i++)
		if (server_live(w->rel[i].gen))
			reply_err(w->rel[i].id, PROTO_ERR_WORKER_GONE, msg, 0);
	w->nrel = 0;
	snprintf(msg, sizeof msg, "worker %llu ended", (unsigned long long)w->handle);
	for (size_t i = 0; i < w->nchans; i++)
		stream_end(w->chans[i], msg);
	w->nchans = 0;
	w->out.len = 0;
	w->out_off = 0;
}

/* Answer a pending join once the worker is reaped and its socket is
 * closed; frees the worker. */
static void maybe_finish_join(struct worker *w)
{
	struct out o;
	int st = w->wstatus;

	if (!w->joining || !w->exited || w->fd >= 0)
		return;
	if (server_live(w->join_gen)) {
		struct proto_worker_exit r = { 0 };

		r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
		r.has_signal = WIFSIGNALED(st);
		r.signal = r.has_signal ? WTERMSIG(st) : 0;
		reply_ok_begin(&o, w->join_id);
		proto_pack_map(&o.pk, &proto_m_worker_exit, &r);
		out_send(&o, w->join_id);
	}
	worker_free(w);
}

static void flush(struct worker *w)
{
	while (w->fd >= 0 && w->out_off < w->out.len) {
		ssize_t n = write(w->fd, w->out.p + w->out_off,
				  w->out.len - w->out_off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				sock_close(w);
			break;
		}
		w->out_off += (size_t)n;
	}
	if (w->fd < 0)
		return;
	if (w->out_off == w->out.len) {
		w->out.len = 0;
		w->out_off = 0;
	}
	watch_events(w->fd, POLLIN | (w->out.len ? POLLOUT : 0));
}

/* One whole frame from the worker: forward it (see the essay). */
static void from_worker(struct worker *w, const char *frame, size_t n)
{
	msgpack_unpacked u;
	size_t off = 0;
	int64_t kind;
	uint64_t id;

	msgpack_unpacked_init(&u);
	if (proto_msgpack_sane(frame + 4, n - 4) < 0 ||
	    msgpack_unpack_next(&u, frame + 4, n - 4, &off) != MSGPACK_UNPACK_SUCCESS ||
	    proto_get_int(&u.data, PROTO_F_KIND, &kind) < 0) {
		agent_log("worker %llu: dropping a malformed frame",
			  (unsigned long long)w->handle);
		goto out;
	}
	if (kind == PROTO_K_OP_RESULT) {
		size_t i;

		if (proto_get_uint(&u.data, PROTO_F_ID, &id) < 0)
			goto out;
		for (i = 0; i < w->nrel && w->rel[i].id != id; i++)
			;
		if (i == w->nrel)
			goto out;       /* not relayed by us (or answered already) */
		if (server_live(w->rel[i].gen)) {
			const msgpack_object *v = proto_get(&u.data, PROTO_F_VALUE);
			uint64_t ch;

			if (v && v->type == MSGPACK_OBJECT_MAP &&
			    proto_get_uint(v, PROTO_F_CHANNEL, &ch) == 0 && ch >> 40 == w->slot)
				chan_add(w, ch);
			server_forward(frame, n);
		}
		w->rel[i] = w->rel[--w->nrel];
	} else if (kind == PROTO_K_STREAM_DATA || kind == PROTO_K_STREAM_END) {
		if (kind == PROTO_K_STREAM_END &&
		    proto_get_uint(&u.data, PROTO_F_CHANNEL, &id) == 0)
			chan_del(w, id);
		server_forward(frame, n);
	}
out:
	msgpack_unpacked_destroy(&u);
}

/* Read what the worker wrote; split and forward frames. EOF closes. */
static void sock_read(struct worker *w)
{
	for (;;) {
		size_t pos = 0;
		ssize_t n;

		if (w->in.cap - w->in.len < 65536) {
			char *np = realloc(w->in.p, w->in.len + 65536);

			if (!np)
				return;
			w->in.p = np;
			w->in.cap = w->in.len + 65536;
		}
		n = read(w->fd, w->in.p + w->in.len, w->in.cap - w->in.len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			sock_close(w);
			return;
		}
		w->in.len += (size_t)n;
		while (w->in.len - pos >= 4) {
			const unsigned char *h = (const unsigned char *)w->in.p + pos;
			size_t len = (size_t)h[0] << 24 | (size_t)h[1] << 16 |
				     (size_t)h[2] << 8 | h[3];

			if (len > PROTO_FRAME_MAX) {
				agent_log("worker %llu: over-size frame; killing it",
					  (unsigned long long)w->handle);
				kill(w->pid, SIGKILL);
				sock_close(w);
				return;
			}
			if (w->in.len - pos - 4 < len)
				break;
			from_worker(w, w->in.p + pos, len + 4);
			if (w->fd < 0)
				return;
			pos += 4 + len;
		}
		buf_consume(&w->in, pos);
	}
}

static void sock_cb(void *ctx, int fd, short revents)
{
	struct worker *w = ctx;

	(void)fd;
	if (revents & POLLOUT)
		flush(w);
	if (w->fd >= 0 && (revents & (POLLIN | POLLHUP | POLLERR)))
		sock_read(w);
	maybe_finish_join(w);
}

void op_worker_spawn(uint64_t id, const msgpack_object *req)
{
	struct proto_handle q;
	struct proto_handle_pid r = { 0 };
	struct worker *w;
	struct out o;
	uint64_t h = 0;
	int sv[2];
	pid_t pid;

	if (req_decode(id, req, &proto_m_handle_opt, &q) < 0)
		return;
	if (q.has_handle) {
		h = q.handle;
		if (h == 0) {
			reply_bad(id, "handle must be a uint > 0");
			return;
		}
		if (find(h)) {
			char msg[96];

			snprintf(msg, sizeof msg, "worker %llu already exists",
				 (unsigned long long)h);
			reply_err(id, "EEXIST", msg, EEXIST);
			return;
		}
	} else {
		while (find(next_handle))
			next_handle++;
		h = next_handle++;
	}
	if (next_slot > SLOT_MAX) {
		reply_errno(id, ENOSPC);
		return;
	}
	w = calloc(1, sizeof(*w));
	if (!w) {
		reply_errno(id, ENOMEM);
		return;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		reply_errno(id, errno);
		free(w);
		return;
	}
	w->handle = h;
	w->slot = next_slot++;
	pid = fork();
	if (pid < 0) {
		int e = errno;

		close(sv[0]);
		close(sv[1]);
		free(w);
		reply_errno(id, e);
		return;
	}
	if (pid == 0) {
		close(sv[0]);
		server_become_worker(sv[1], w->handle, w->slot);
	}
	close(sv[1]);
	fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK);
	w->pid = pid;
	w->fd = sv[0];
	if (watch_add(w->fd, POLLIN, sock_cb, w) < 0) {
		kill(pid, SIGKILL);
		close(w->fd);
		w->fd = -1;
		/* the reap finds no worker and drops the status */
		free(w);
		reply_errno(id, ENOMEM);
		return;
	}
	w->next = workers;
	workers = w;
	reply_ok_begin(&o, id);
	r.handle = w->handle;
	r.pid = pid;
	r.has_pid = true;
	proto_pack_map(&o.pk, &proto_m_handle_pid, &r);
	out_send(&o, id);
}

void op_worker_join(uint64_t id, const msgpack_object *req)
{
	struct proto_handle q;
	uint64_t h, tmo;
	struct worker *w;

	if (req_decode(id, req, &proto_m_wait, &q) < 0)
		return;
	h = q.handle;
	tmo = q.timeout_ms;   /* 0 / absent: forever */
	w = find(h);
	if (!w || w->joining) {
		unknown(id, h);
		return;
	}
	w->joining = 1;
	w->join_id = id;
	w->join_gen = server_gen();
	w->join_deadline = tmo ? now_ms() + (int64_t)tmo : 0;
	if (w->fd >= 0) {
		/* An idle worker sees EOF and exits 0; answer what it already
		 * sent first. */
		sock_read(w);
		sock_close(w);
	}
	maybe_finish_join(w);
}

/* The parent pid in /proc/<pid>/stat (the field after the state, which
 * follows the last ')' of the command name), or -1. */
static pid_t parent_of(const char *pid)
{
	char path[sizeof "/proc//stat" + 256], st[512], *p;   /* any d_name */
	ssize_t n;
	int fd;

	snprintf(path, sizeof path, "/proc/%s/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, st, sizeof st - 1);
	close(fd);
	if (n <= 0)
		return -1;
	st[n] = 0;
	p = strrchr(st, ')');
	if (!p || p[1] != ' ' || !p[2] || p[3] != ' ')
		return -1;
	return (pid_t)strtol(p + 4, NULL, 10);
}

/* Send sig to every child process of parent (best effort: a child that
 * is exiting meanwhile is simply missed or already a zombie). */
static void signal_children(pid_t parent, int sig)
{
	DIR *d = opendir("/proc");
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d))) {
		if (!isdigit((unsigned char)e->d_name[0]))
			continue;
		if (parent_of(e->d_name) == parent)
			kill((pid_t)strtol(e->d_name, NULL, 10), sig);
	}
	closedir(d);
}

void op_worker_kill(uint64_t id, const msgpack_object *req)
{
	struct proto_handle q;
	uint64_t h;
	int64_t sig;
	struct worker *w;

	if (req_decode(id, req, &proto_m_kill, &q) < 0)
		return;
	h = q.handle;
	sig = q.has_signal ? q.signal : SIGTERM;
	w = find(h);
	if (!w || w->joining) {
		unknown(id, h);
		return;
	}
	if (sig < 0 || sig > 64) {
		reply_bad(id, "signal out of range");
		return;
	}
	if (w->exited) {
		reply_errno(id, ESRCH);
		return;
	}
	signal_children(w->pid, (int)sig);
	if (kill(w->pid, (int)sig) < 0)
		reply_errno(id, errno);
	else
		reply_nil(id);
}

void worker_relay(uint64_t id, uint64_t wid, const char *frame, size_t n)
{
	struct worker *w = find(wid);

	if (!w || w->joining) {
		unknown(id, wid);
		return;
	}
	if (w->fd < 0) {
		char msg[96];

		snprintf(msg, sizeof msg, "worker %llu has exited",
			 (unsigned long long)wid);
		reply_err(id, PROTO_ERR_WORKER_GONE, msg, 0);
		return;
	}
	if (w->nrel == w->caprel) {
		size_t nc = w->caprel ? w->caprel * 2 : 8;
		struct relayed *nr = realloc(w->rel, nc * sizeof(*nr));

		if (!nr) {
			reply_errno(id, ENOMEM);
			return;
		}
		w->rel = nr;
		w->caprel = nc;
	}
	if (buf_add(&w->out, frame, n) < 0) {
		reply_errno(id, ENOMEM);
		return;
	}
	w->rel[w->nrel++] = (struct relayed){ id, server_gen() };
	flush(w);
}

int worker_reaped(pid_t pid, int wstatus)
{
	struct worker *w;

	for (w = workers; w && (w->pid != pid || w->exited); w = w->next)
		;
	if (!w)
		return 0;
	w->exited = 1;
	w->wstatus = wstatus;
	if (w->fd >= 0)
		sock_read(w);   /* its last replies, then EOF */
	maybe_finish_join(w);
	return 1;
}

int worker_tick(int64_t now)
{
	int64_t next = -1;

	for (struct worker *w = workers; w; w = w->next) {
		if (!w->joining || !w->join_deadline || w->exited)
			continue;
		if (now >= w->join_deadline) {
			kill(w->pid, SIGKILL);
			w->join_deadline = 0;
			continue;
		}
		if (next < 0 || w->join_deadline - now < next)
			next = w->join_deadline - now;
	}
	return next < 0 ? -1 : (int)(next > 0x7fffffff ? 0x7fffffff : next);
}

/* A fresh worker: the entries are the parent's (their fds are closed
 * by server_become_worker); dropped without freeing, as a fork's copy. */
void worker_forget_all(void)
{
	workers = NULL;
}
