/* agent_client.c — host end of the agent channel: listen, accept, Hello,
 * request/response by id, stream demultiplexing.
 *
 * Owns: the listening socket (and its path), the connected fd, a frame
 * reader (frame.h), the list of outstanding requests, the per-channel
 * stream queues.
 *
 * State: listening -> connected -> hello'd -> (broken | disconnected) ->
 * connected again after the next accept. "broken" is sticky for the
 * connection: the first protocol violation or I/O error is remembered and
 * every later call on that connection fails with it.
 *
 * All waiting goes through pump(): one poll() on the socket bounded by a
 * deadline (woken every watch interval to run the liveness watch, whose
 * verdict breaks the connection), one read, then every complete frame is
 * dispatched. A request
 * is a struct pending on c->pend; its reply is stored there (the frame
 * body copied, since msgpack objects point into it) until agent_wait
 * collects it. Frames are written by hand (same 4-byte BE framing as
 * frame_write) because frame_write() blocks without a deadline; the write
 * loop keeps reading so a chatty guest cannot deadlock a big write. */
#include "errbuf.h"
#include "vmm/agent_client.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "frame.h"
#include "interrupt.h"

struct pending {
	uint64_t id;
	int kind;
	bool done;
	bool abandoned;             /* its waiter timed out; still in flight in the
	                             * guest until the (dropped) reply arrives */
	unsigned char *body;
	msgpack_unpacked u;
	struct pending *next;
};

struct chunkq {
	unsigned char *data;
	size_t len;
	struct chunkq *next;
};

struct chan {
	uint64_t ch;
	struct chunkq *head, *tail;
	bool ended, forgotten, settled;
	char *error;                /* StreamEnd's error, NULL if none */
	struct chan *next;
};

struct agent_client {
	char *name;
	char *path;                 /* listening socket path, NULL if adopted fd */
	int lfd, fd;
	struct frame_reader rd;
	uint64_t next_id;
	struct pending *pend;
	struct chan **chans;        /* hash table by channel id, chained */
	size_t nbuckets;            /* a power of two, or 0 before the first */
	size_t nchans;              /* entries in the table */
	size_t nlive;               /* of them, not settled (the capped number) */
	size_t buffered;
	bool is_broken;
	char broken[256];
	bool want_hello;
	struct pending hello;       /* the HelloOk/HelloErr once it arrived */
	agent_watch_fn watch;       /* agent_client_set_watch */
	void *watch_ctx;
	int watch_ms;
	int64_t watch_next;         /* when pump calls it next */
	uint64_t route;             /* agent_client_route: worker, 0 = none */
	bool background;            /* agent_client_set_background */
};

#define STR_(x) #x
#define STR(x) STR_(x)

static int64_t limit_ns;   /* agent_client_set_limit; 0 = none */
static char limit_cut[32]; /* the op of the first reply the limit cut */

void agent_client_set_limit(int64_t deadline_ns)
{
	limit_ns = deadline_ns;
	limit_cut[0] = 0;
}

int64_t agent_client_suspend_limit(void)
{
	int64_t was = limit_ns;
	limit_ns = 0;
	return was;
}

void agent_client_restore_limit(int64_t deadline_ns)
{
	limit_ns = deadline_ns;
}

const char *agent_client_limit_cut(void)
{
	return limit_cut[0] ? limit_cut : NULL;
}

/* The deadline of a wait of ms (< 0: none) on c: the test's limit binds
 * unless c is a background client. */
static int64_t deadline_ms(const struct agent_client *c, int ms)
{
	int64_t d = ms < 0 ? INT64_MAX : mono_now_ns() + (int64_t)ms * 1000000;
	if (c->background)
		return d;
	return limit_ns > 0 && limit_ns < d ? limit_ns : d;
}

static int ms_left(int64_t deadline)
{
	if (deadline == INT64_MAX)
		return -1;
	int64_t l = deadline - mono_now_ns();
	if (l <= 0)
		return 0;
	l = (l + 999999) / 1000000;
	return l > 0x7fffffff ? 0x7fffffff : (int)l;
}

static int fail_broken(struct agent_client *c, char *err, size_t errlen)
{
	err_set(err, errlen, "vm `%s`: agent: %s", c->name, c->broken);
	return -1;
}

static int set_broken(struct agent_client *c, char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int set_broken(struct agent_client *c, char *err, size_t errlen, const char *fmt, ...)
{
	if (!c->is_broken) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(c->broken, sizeof c->broken, fmt, ap);
		va_end(ap);
		c->is_broken = true;
	}
	return fail_broken(c, err, errlen);
}

/* ---- bookkeeping ---------------------------------------------------- */

static void pending_clear(struct pending *p)
{
	if (p->done) {
		msgpack_unpacked_destroy(&p->u);
		free(p->body);
	}
	p->done = false;
	p->body = NULL;
}

static void drop_pending(struct agent_client *c, uint64_t id)
{
	for (struct pending **pp = &c->pend; *pp; pp = &(*pp)->next) {
		if ((*pp)->id == id) {
			struct pending *p = *pp;
			*pp = p->next;
			pending_clear(p);
			free(p);
			return;
		}
	}
}

static struct pending *find_pending(struct agent_client *c, uint64_t id)
{
	for (struct pending *p = c->pend; p; p = p->next)
		if (p->id == id)
			return p;
	return NULL;
}

static void chan_free_data(struct agent_client *c, struct chan *ch)
{
	while (ch->head) {
		struct chunkq *q = ch->head;
		ch->head = q->next;
		c->buffered -= q->len;
		free(q->data);
		free(q);
	}
	ch->tail = NULL;
}

static size_t chan_bucket(const struct agent_client *c, uint64_t channel)
{
	/* Fibonacci hashing: agent ids are sequential, the table is 2^k. */
	return (size_t)((channel * 0x9E3779B97F4A7C15ull) >> 32) & (c->nbuckets - 1);
}

/* Double the table when it is as full as it is wide. -1 on ENOMEM (the
 * old table stays). */
static int chans_grow(struct agent_client *c)
{
	size_t n = c->nbuckets ? c->nbuckets * 2 : 64, old = c->nbuckets;
	struct chan **t = calloc(n, sizeof *t), **ot = c->chans;
	if (!t)
		return -1;
	c->chans = t;
	c->nbuckets = n;
	for (size_t i = 0; i < old; i++) {
		while (ot[i]) {
			struct chan *ch = ot[i];
			size_t b = chan_bucket(c, ch->ch);
			ot[i] = ch->next;
			ch->next = t[b];
			t[b] = ch;
		}
	}
	free(ot);
	return 0;
}

/* The channel's entry, created when asked to and under the cap; NULL
 * otherwise (with errno EMFILE at the cap). O(1) on average. */
static struct chan *find_chan(struct agent_client *c, uint64_t channel, bool create)
{
	if (c->nbuckets) {
		for (struct chan *ch = c->chans[chan_bucket(c, channel)]; ch; ch = ch->next)
			if (ch->ch == channel)
				return ch;
	}
	if (!create)
		return NULL;
	if (c->nlive >= AGENT_MAX_CHANNELS) {
		errno = EMFILE;
		return NULL;
	}
	if (c->nchans >= c->nbuckets && chans_grow(c) < 0)
		return NULL;
	struct chan *ch = calloc(1, sizeof *ch);
	if (!ch)
		return NULL;
	size_t b = chan_bucket(c, channel);
	ch->ch = channel;
	ch->next = c->chans[b];
	c->chans[b] = ch;
	c->nchans++;
	c->nlive++;
	return ch;
}

/* A channel is settled once nothing more can come for it and nobody
 * will read it (ended and forgotten): its entry stays, small, so late or
 * repeated frames are recognised, but it no longer counts against the
 * cap. */
static void chan_settle_check(struct agent_client *c, struct chan *ch)
{
	if (ch->ended && ch->forgotten && !ch->settled) {
		ch->settled = true;
		free(ch->error);
		ch->error = NULL;
		c->nlive--;
	}
}

static void reset_connection(struct agent_client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	frame_reader_free(&c->rd);
	frame_reader_init(&c->rd, PROTO_FRAME_MAX);
	while (c->pend)
		drop_pending(c, c->pend->id);
	for (size_t i = 0; i < c->nbuckets; i++) {
		while (c->chans[i]) {
			struct chan *ch = c->chans[i];
			c->chans[i] = ch->next;
			chan_free_data(c, ch);
			free(ch->error);
			free(ch);
		}
	}
	free(c->chans);
	c->chans = NULL;
	c->nbuckets = 0;
	c->nchans = 0;
	c->nlive = 0;
	c->buffered = 0;
	pending_clear(&c->hello);
	c->want_hello = false;
	c->is_broken = false;
	c->broken[0] = 0;
}

/* ---- dispatch ------------------------------------------------------- */


/* Route one frame body (copied first: objects point into it). */
static int dispatch(struct agent_client *c, const unsigned char *body, size_t len,
		    char *err, size_t errlen)
{
	unsigned char *copy = malloc(len ? len : 1);
	if (!copy)
		return set_broken(c, err, errlen, "out of memory for a %zu-byte frame", len);
	memcpy(copy, body, len);
	msgpack_unpacked u;
	msgpack_unpacked_init(&u);
	size_t off = 0;
	int64_t kind;
	const char *why = NULL;
	int r = proto_msgpack_sane(copy, len) < 0 ? MSGPACK_UNPACK_PARSE_ERROR
					    : msgpack_unpack_next(&u, (const char *)copy, len, &off);
	if (r != MSGPACK_UNPACK_SUCCESS)
		why = "frame is not valid msgpack";
	else if (off != len)
		why = "frame has trailing bytes after its msgpack value";
	else if (u.data.type != MSGPACK_OBJECT_MAP)
		why = "frame is not a msgpack map";
	else if (proto_get_int(&u.data, PROTO_F_KIND, &kind) < 0)
		why = "frame has no integer kind";
	if (why) {
		msgpack_unpacked_destroy(&u);
		free(copy);
		return set_broken(c, err, errlen, "%s", why);
	}

	uint64_t id, channel;
	switch (kind) {
	case PROTO_K_HELLO_OK:
	case PROTO_K_HELLO_ERR:
		if (c->want_hello && !c->hello.done) {
			c->hello.done = true;
			c->hello.kind = (int)kind;
			c->hello.body = copy;
			c->hello.u = u;
			return 0;
		}
		break; /* an answer to a re-sent Hello: ignore */
	case PROTO_K_OP_RESULT: {
		const msgpack_object *oc = proto_get(&u.data, PROTO_F_OUTCOME);
		if (proto_get_uint(&u.data, PROTO_F_ID, &id) < 0 || !oc || oc->type != MSGPACK_OBJECT_STR) {
			why = "OpResult without a valid id and outcome";
			break;
		}
		struct pending *p = find_pending(c, id);
		if (p && p->abandoned) {
			drop_pending(c, id);   /* the late reply: the op is over */
			break;
		}
		if (!p || p->done)
			break; /* unknown id: drop */
		p->done = true;
		p->body = copy;
		p->u = u;
		return 0;
	}
	case PROTO_K_STREAM_DATA:
	case PROTO_K_STREAM_END: {
		if (proto_get_uint(&u.data, PROTO_F_CHANNEL, &channel) < 0) {
			why = "stream frame without a channel";
			break;
		}
		const char *d = NULL;
		size_t dl = 0;
		if (kind == PROTO_K_STREAM_DATA && proto_get_bytes(&u.data, PROTO_F_DATA, &d, &dl) < 0) {
			why = "StreamData without data";
			break;
		}
		struct chan *ch = find_chan(c, channel, true);
		if (!ch) {
			why = errno == EMFILE
				? "more than " STR(AGENT_MAX_CHANNELS) " stream channels open at once"
				: "out of memory for a stream channel";
			break;
		}
		if (ch->ended)
			break;
		if (ch->forgotten) {
			ch->ended = kind == PROTO_K_STREAM_END;
			chan_settle_check(c, ch);
			break;
		}
		if (kind == PROTO_K_STREAM_END) {
			const char *e = NULL;
			size_t el = 0;
			ch->ended = true;
			if (proto_get_bytes(&u.data, PROTO_F_ERROR, &e, &el) == 0)
				ch->error = strndup(e, el > 200 ? 200 : el);
			break;
		}
		if (dl == 0)
			break;
		if (c->buffered + dl > AGENT_STREAM_BUFFER_MAX) {
			why = "stream data buffered beyond the limit (nobody reads the stream?)";
			break;
		}
		struct chunkq *q = malloc(sizeof *q);
		unsigned char *data = malloc(dl);
		if (!q || !data) {
			free(q);
			free(data);
			why = "out of memory for stream data";
			break;
		}
		memcpy(data, d, dl);
		q->data = data;
		q->len = dl;
		q->next = NULL;
		if (ch->tail)
			ch->tail->next = q;
		else
			ch->head = q;
		ch->tail = q;
		c->buffered += dl;
		break;
	}
	default:
		why = "frame of an unexpected kind";
		break;
	}
	msgpack_unpacked_destroy(&u);
	free(copy);
	if (why)
		return set_broken(c, err, errlen, "%s (kind %lld)", why, (long long)kind);
	return 0;
}

/* Run the watch when it is due: 0, or -1 (broken with its reason). */
static int run_watch(struct agent_client *c, char *err, size_t errlen)
{
	char why[256] = "";
	if (!c->watch || mono_now_ns() < c->watch_next)
		return 0;
	c->watch_next = mono_now_ns() + (int64_t)c->watch_ms * 1000000;
	if (c->watch(c->watch_ctx, why, sizeof why) == 0)
		return 0;
	return set_broken(c, err, errlen, "%s", why[0] ? why : "the guest died");
}

/* poll() on fd for events until deadline, waking for the watch: the
 * poll result, 0 only once the deadline has passed. */
static int poll_watched(struct agent_client *c, struct pollfd *pfd, int64_t deadline,
			char *err, size_t errlen)
{
	for (;;) {
		int wait = ms_left(deadline), pr;
		if (c->watch) {
			int w = ms_left(c->watch_next);
			if (wait < 0 || w < wait)
				wait = w;
		}
		pr = poll(pfd, 1, wait);
		if (run_watch(c, err, errlen) < 0)
			return -2;
		if (pr != 0 || ms_left(deadline) == 0)
			return pr;
	}
}

/* Read what is available (after waiting up to deadline) and dispatch every
 * complete frame. 1 = read something, 0 = timeout, -1 = broken. */
static int pump(struct agent_client *c, int64_t deadline, char *err, size_t errlen)
{
	if (c->is_broken)
		return fail_broken(c, err, errlen);
	if (c->fd < 0)
		return set_broken(c, err, errlen, "not connected");
	struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
	int pr = poll_watched(c, &pfd, deadline, err, errlen);
	if (pr == -2)
		return -1;
	if (pr < 0)
		return errno == EINTR ? 1 : set_broken(c, err, errlen, "poll: %s", strerror(errno));
	if (pr == 0)
		return 0;
	unsigned char buf[65536];
	ssize_t n = read(c->fd, buf, sizeof buf);
	if (n < 0) {
		if (errno == EINTR || errno == EAGAIN)
			return 1;
		if (errno == ECONNRESET)
			return set_broken(c, err, errlen, "connection closed by the guest side");
		return set_broken(c, err, errlen, "read: %s", strerror(errno));
	}
	if (n == 0)
		return set_broken(c, err, errlen, "connection closed by the guest side");
	if (frame_reader_feed(&c->rd, buf, (size_t)n) < 0)
		return set_broken(c, err, errlen, "out of memory");
	for (;;) {
		const unsigned char *body;
		size_t len;
		int r = frame_reader_next(&c->rd, &body, &len);
		if (r == 0)
			break;
		if (r < 0) {
			if (errno == EMSGSIZE)
				return set_broken(c, err, errlen, "frame length exceeds the maximum of %u bytes",
						  PROTO_FRAME_MAX);
			return set_broken(c, err, errlen, "out of memory");
		}
		if (dispatch(c, body, len, err, errlen) < 0)
			return -1;
	}
	return 1;
}

/* Write one frame before deadline, draining incoming frames meanwhile. */
static int write_frame(struct agent_client *c, const void *body, size_t len, int64_t deadline,
		       char *err, size_t errlen)
{
	if (c->is_broken)
		return fail_broken(c, err, errlen);
	if (c->fd < 0)
		return set_broken(c, err, errlen, "not connected");
	if (len > PROTO_FRAME_MAX) {
		err_set(err, errlen, "vm `%s`: agent: request of %zu bytes exceeds the frame maximum",
		       c->name, len);
		return -1;
	}
	unsigned char hdr[4] = { (unsigned char)(len >> 24), (unsigned char)(len >> 16),
				 (unsigned char)(len >> 8), (unsigned char)len };
	size_t off = 0, total = len + 4;
	while (off < total) {
		struct pollfd pfd = { .fd = c->fd, .events = POLLOUT | POLLIN };
		int pr = poll_watched(c, &pfd, deadline, err, errlen);
		if (pr == -2)
			return -1;
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr < 0)
			return set_broken(c, err, errlen, "poll: %s", strerror(errno));
		if (pr == 0) {
			/* a partial frame is on the wire: the stream is unusable */
			if (off > 0)
				return set_broken(c, err, errlen, "timed out in the middle of a write");
			err_set(err, errlen, "vm `%s`: agent: timed out sending a request", c->name);
			return -1;
		}
		if (pfd.revents & POLLIN) {
			if (pump(c, mono_now_ns(), err, errlen) < 0)
				return -1;
			if (!(pfd.revents & POLLOUT))
				continue;
		}
		if (pfd.revents & (POLLERR | POLLHUP) && !(pfd.revents & POLLOUT))
			return set_broken(c, err, errlen, "connection closed by the guest side");
		struct iovec iov[2];
		int niov = 0;
		if (off < 4) {
			iov[niov++] = (struct iovec){ hdr + off, 4 - off };
			iov[niov++] = (struct iovec){ (void *)(uintptr_t)body, len };
		} else {
			iov[niov++] = (struct iovec){ (unsigned char *)(uintptr_t)body + (off - 4), total - off };
		}
		struct msghdr mh = { .msg_iov = iov, .msg_iovlen = (size_t)niov };
		ssize_t n = sendmsg(c->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			if (errno == EPIPE || errno == ECONNRESET)
				return set_broken(c, err, errlen, "connection closed by the guest side");
			return set_broken(c, err, errlen, "write: %s", strerror(errno));
		}
		off += (size_t)n;
	}
	return 0;
}

/* ---- connection ----------------------------------------------------- */

static struct agent_client *client_new(const char *vm_name)
{
	struct agent_client *c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	c->name = strdup(vm_name ? vm_name : "?");
	if (!c->name) {
		free(c);
		return NULL;
	}
	c->lfd = c->fd = -1;
	frame_reader_init(&c->rd, PROTO_FRAME_MAX);
	return c;
}

struct agent_client *agent_client_listen(const char *vm_name, const char *path,
					 char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof sa.sun_path) {
		err_set(err, errlen, "vm `%s`: agent socket path too long (max %zu bytes): %s",
		       vm_name, sizeof sa.sun_path - 1, path);
		return NULL;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	struct agent_client *c = client_new(vm_name);
	if (!c || !(c->path = strdup(path))) {
		agent_client_free(c);
		err_set(err, errlen, "out of memory");
		return NULL;
	}
	c->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (c->lfd < 0) {
		err_set(err, errlen, "vm `%s`: agent socket: %s", vm_name, strerror(errno));
		goto fail;
	}
	unlink(path); /* a stale socket from an earlier run */
	if (bind(c->lfd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(c->lfd, 4) < 0) {
		err_set(err, errlen, "vm `%s`: agent socket %s: %s", vm_name, path, strerror(errno));
		goto fail;
	}
	return c;
fail:
	free(c->path);
	c->path = NULL; /* do not unlink what we did not create */
	agent_client_free(c);
	return NULL;
}

struct agent_client *agent_client_from_fd(const char *vm_name, int fd)
{
	struct agent_client *c = client_new(vm_name);
	if (!c)
		return NULL;
	c->fd = fd;
	return c;
}

int agent_client_accept(struct agent_client *c, int64_t deadline_ns, char *err, size_t errlen)
{
	reset_connection(c);
	if (c->lfd < 0) {
		err_set(err, errlen, "vm `%s`: agent: no listening socket", c->name);
		return -1;
	}
	for (;;) {
		int fd = accept4(c->lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd >= 0) {
			c->fd = fd;
			return 0;
		}
		if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED) {
			err_set(err, errlen, "vm `%s`: agent accept: %s", c->name, strerror(errno));
			return -1;
		}
		int left = ms_left(deadline_ns);
		if (left == 0) {
			err_set(err, errlen, "vm `%s`: agent: QEMU did not connect to the agent socket in time",
			       c->name);
			return -1;
		}
		struct pollfd pfd = { .fd = c->lfd, .events = POLLIN };
		poll(&pfd, 1, left);
	}
}

static char *obj_strdup(const msgpack_object *o)
{
	const char *p;
	size_t n;
	if (!o || proto_obj_bytes(o, &p, &n) < 0)
		return strdup("");
	return strndup(p, n > 4096 ? 4096 : n);
}

void agent_hello_free(struct agent_hello *h)
{
	if (!h)
		return;
	free(h->agent_version);
	free(h->guest_os);
	for (size_t i = 0; i < h->nfeatures; i++)
		free(h->features[i]);
	free(h->features);
	memset(h, 0, sizeof *h);
}

int agent_client_hello(struct agent_client *c, int64_t deadline_ns, struct agent_hello *hello,
		       char *err, size_t errlen)
{
	if (hello)
		memset(hello, 0, sizeof *hello);
	pending_clear(&c->hello);
	c->want_hello = true;
	int64_t next_send = 0;
	while (!c->hello.done) {
		if (mono_now_ns() >= next_send) {
			msgpack_sbuffer sb;
			msgpack_packer pk;
			msgpack_sbuffer_init(&sb);
			msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
			proto_pack_hello(&pk, PROTOCOL_VERSION);
			int r = write_frame(c, sb.data, sb.size, deadline_ns, err, errlen);
			msgpack_sbuffer_destroy(&sb);
			if (r < 0)
				goto fail;
			next_send = mono_now_ns() + 2000000000LL;
		}
		int64_t until = next_send < deadline_ns ? next_send : deadline_ns;
		int r = pump(c, until, err, errlen);
		if (r < 0)
			goto fail;
		if (r == 0 && mono_now_ns() >= deadline_ns && !c->hello.done) {
			err_set(err, errlen, "vm `%s`: agent did not answer Hello in time", c->name);
			goto fail;
		}
	}
	c->want_hello = false;
	/* A new agent session: what an earlier one abandoned will never be
	 * answered. */
	for (struct pending **pp = &c->pend; *pp;) {
		struct pending *p = *pp;
		if (p->abandoned) {
			*pp = p->next;
			pending_clear(p);
			free(p);
		} else {
			pp = &p->next;
		}
	}
	const msgpack_object *m = &c->hello.u.data;
	if (c->hello.kind == PROTO_K_HELLO_ERR) {
		char *msg = obj_strdup(proto_get(m, PROTO_F_MESSAGE));
		/* An old (or newer) agent in the guest kit: say how to fix it. */
		bool vers = msg && strstr(msg, "protocol version mismatch");
		err_set(err, errlen, "vm `%s`: agent refused the handshake: %s%s", c->name, msg ? msg : "?",
		        vers ? " (the guest kit's provium-agent speaks another protocol than this "
		               "provium: rebuild the kit with `make guest`)" : "");
		free(msg);
		pending_clear(&c->hello);
		return -1;
	}
	if (hello) {
		hello->agent_version = obj_strdup(proto_get(m, PROTO_F_AGENT_VERSION));
		hello->guest_os = obj_strdup(proto_get(m, PROTO_F_GUEST_OS));
		const msgpack_object *f = proto_get(m, PROTO_F_FEATURES);
		if (f && f->type == MSGPACK_OBJECT_ARRAY && f->via.array.size) {
			hello->features = calloc(f->via.array.size, sizeof(char *));
			for (uint32_t i = 0; hello->features && i < f->via.array.size; i++) {
				char *s = obj_strdup(&f->via.array.ptr[i]);
				if (s)
					hello->features[hello->nfeatures++] = s;
			}
		}
	}
	pending_clear(&c->hello);
	return 0;
fail:
	c->want_hello = false;
	return -1;
}

/* ---- requests ------------------------------------------------------- */

static const char *op_name(int kind)
{
	const char *n = proto_kind_name(kind);
	return n ? n : "op";
}

int agent_send(struct agent_client *c, int kind, size_t nfields, agent_build_fn build, void *ctx,
	       int timeout_ms, uint64_t *id, char *err, size_t errlen)
{
	if (c->is_broken)
		return fail_broken(c, err, errlen);
	struct pending *p = calloc(1, sizeof *p);
	if (!p) {
		err_set(err, errlen, "out of memory");
		return -1;
	}
	p->id = ++c->next_id;
	p->kind = kind;
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	proto_pack_request_head(&pk, kind, p->id, nfields + (c->route ? 1 : 0));
	if (c->route) {
		proto_pack_key(&pk, PROTO_F_WORKER);
		msgpack_pack_uint64(&pk, c->route);
	}
	if (build)
		build(&pk, ctx);
	p->next = c->pend;
	c->pend = p;
	uint64_t myid = p->id;
	int r = write_frame(c, sb.data, sb.size, deadline_ms(c, timeout_ms), err, errlen);
	msgpack_sbuffer_destroy(&sb);
	if (r < 0) {
		drop_pending(c, myid);
		return -1;
	}
	if (id)
		*id = myid;
	return 0;
}

uint64_t agent_client_route(struct agent_client *c, uint64_t worker)
{
	uint64_t old = c->route;
	c->route = worker;
	return old;
}

uint64_t agent_client_current_route(const struct agent_client *c)
{
	return c->route;
}

int agent_wait(struct agent_client *c, uint64_t id, int timeout_ms, struct agent_reply *reply,
	       char *err, size_t errlen)
{
	int64_t deadline = deadline_ms(c, timeout_ms);
	memset(reply, 0, sizeof *reply);
	struct pending *p = find_pending(c, id);
	if (!p || p->abandoned) {
		err_set(err, errlen, "vm `%s`: agent: no outstanding request %llu", c->name,
		       (unsigned long long)id);
		return -1;
	}
	const char *name = op_name(p->kind);
	while (!(p = find_pending(c, id))->done) {
		int64_t until = deadline;
		if (!c->background && intr_armed()) {
			int64_t slice = mono_now_ns() + (int64_t)INTR_POLL_MS * 1000000;
			if (slice < until)
				until = slice;
		}
		int r = pump(c, until, err, errlen);
		if (r < 0) {
			drop_pending(c, id);
			return -1;
		}
		if (!find_pending(c, id)->done && !c->background && intr_pending()) {
			/* Ctrl-C in the REPL: abandoned like a timeout, the guest
			 * side runs on and its late reply is dropped. */
			find_pending(c, id)->abandoned = true;
			err_set(err, errlen, "vm `%s`: %s: interrupted (the op may still be running "
			        "in the guest)", c->name, name);
			errno = EINTR;
			return -1;
		}
		if (r == 0 && until < deadline)
			continue;   /* a slice ended, not the deadline */
		if (r == 0 && !find_pending(c, id)->done) {
			/* Abandon it, but remember it until the guest answers:
			 * the op is still running there (agent_client_pending). */
			find_pending(c, id)->abandoned = true;
			if (!c->background && limit_ns > 0 && deadline == limit_ns) {
				if (!limit_cut[0])
					snprintf(limit_cut, sizeof limit_cut, "%s", name);
				err_set(err, errlen, "vm `%s`: %s: agent did not answer before the test's deadline",
				        c->name, name);
			} else
				err_set(err, errlen, "vm `%s`: %s: agent did not answer within %d ms", c->name,
				        name, timeout_ms);
			return -1;
		}
	}
	/* move the reply out of the pending list */
	for (struct pending **pp = &c->pend; *pp; pp = &(*pp)->next) {
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	}
	reply->body_ = p->body;
	reply->u_ = p->u;
	reply->have_u_ = true;
	free(p);
	const msgpack_object *m = &reply->u_.data;
	const msgpack_object *oc = proto_get(m, PROTO_F_OUTCOME);
	if (oc->via.str.size == 2 && memcmp(oc->via.str.ptr, PROTO_OUTCOME_OK, 2) == 0) {
		reply->value = proto_get(m, PROTO_F_VALUE);
		return 0;
	}
	const msgpack_object *e = proto_get(m, PROTO_F_ERROR);
	const char *code = NULL, *msg = NULL;
	size_t codel = 0, msgl = 0;
	int64_t en = 0;
	if (e) {
		proto_get_bytes(e, PROTO_F_CODE, &code, &codel);
		proto_get_bytes(e, PROTO_F_MESSAGE, &msg, &msgl);
		proto_get_int(e, PROTO_F_ERRNO, &en);
	}
	snprintf(reply->code, sizeof reply->code, "%.*s", code ? (int)(codel > 31 ? 31 : codel) : 8,
		 code ? code : "internal");
	snprintf(reply->message, sizeof reply->message, "%.*s", msg ? (int)(msgl > 255 ? 255 : msgl) : 15,
		 msg ? msg : "unknown failure");
	reply->err_no = en > 0 && en < 4096 ? (int)en : 0;
	err_set(err, errlen, "vm `%s`: %s: %s", c->name, name, reply->message);
	return -1;
}

int agent_call(struct agent_client *c, int kind, size_t nfields, agent_build_fn build, void *ctx,
	       int timeout_ms, struct agent_reply *reply, char *err, size_t errlen)
{
	uint64_t id;
	int64_t deadline = deadline_ms(c, timeout_ms);
	memset(reply, 0, sizeof *reply);
	if (agent_send(c, kind, nfields, build, ctx, timeout_ms, &id, err, errlen) < 0)
		return -1;
	int left = ms_left(deadline);
	return agent_wait(c, id, left < 0 ? -1 : left, reply, err, errlen);
}

void agent_reply_free(struct agent_reply *reply)
{
	if (!reply)
		return;
	if (reply->have_u_)
		msgpack_unpacked_destroy(&reply->u_);
	free(reply->body_);
	memset(reply, 0, sizeof *reply);
}

/* ---- streams -------------------------------------------------------- */

int agent_stream_next(struct agent_client *c, uint64_t channel, int timeout_ms,
		      struct agent_chunk *chunk, char *err, size_t errlen)
{
	int64_t deadline = deadline_ms(c, timeout_ms);
	memset(chunk, 0, sizeof *chunk);
	for (;;) {
		struct chan *ch = find_chan(c, channel, false);
		if (ch && ch->head) {
			struct chunkq *q = ch->head;
			ch->head = q->next;
			if (!ch->head)
				ch->tail = NULL;
			c->buffered -= q->len;
			chunk->data = q->data;
			chunk->len = q->len;
			free(q);
			return 1;
		}
		if (ch && ch->ended) {
			chunk->eof = true;
			snprintf(chunk->error, sizeof chunk->error, "%s", ch->error ? ch->error : "");
			agent_stream_forget(c, channel);
			return 1;
		}
		int r = pump(c, deadline, err, errlen);
		if (r < 0)
			return -1;
		if (r == 0) {
			ch = find_chan(c, channel, false);
			if (!ch || (!ch->head && !ch->ended))
				return 0;
		}
	}
}

void agent_stream_forget(struct agent_client *c, uint64_t channel)
{
	struct chan *ch = find_chan(c, channel, true);
	if (!ch)
		return;
	chan_free_data(c, ch);
	ch->forgotten = true;
	chan_settle_check(c, ch);
}

/* ---- accessors and teardown ----------------------------------------- */

void agent_client_set_watch(struct agent_client *c, agent_watch_fn fn, void *ctx,
			    int interval_ms)
{
	c->watch = fn;
	c->watch_ctx = ctx;
	c->watch_ms = interval_ms > 0 ? interval_ms : 250;
	c->watch_next = mono_now_ns() + (int64_t)c->watch_ms * 1000000;
}

/* An open channel: data seen, no StreamEnd yet, not closed by the host. */
static bool chan_open(const struct chan *ch)
{
	return !ch->ended && !ch->forgotten;
}

int agent_client_pending(const struct agent_client *c)
{
	int n = 0;
	if (!c)
		return 0;
	for (const struct pending *p = c->pend; p; p = p->next)
		n += !p->done;
	for (size_t i = 0; i < c->nbuckets; i++)
		for (const struct chan *ch = c->chans[i]; ch; ch = ch->next)
			n += chan_open(ch);
	return n;
}

int agent_client_drain(struct agent_client *c, char *err, size_t errlen)
{
	int r;
	while ((r = pump(c, mono_now_ns(), err, errlen)) == 1)
		;
	return r < 0 ? -1 : 0;
}

size_t agent_client_describe_pending(const struct agent_client *c, char *buf, size_t len)
{
	size_t n = 0, cnt = 0;
	if (len)
		buf[0] = 0;
	if (!c)
		return 0;
	for (const struct pending *p = c->pend; p; p = p->next) {
		if (p->done)
			continue;
		if (n < len)
			n += (size_t)snprintf(buf + n, len - n, "%s%s (request %llu%s)", cnt ? ", " : "",
					      op_name(p->kind), (unsigned long long)p->id,
					      p->abandoned ? ", its caller timed out" : "");
		cnt++;
	}
	for (size_t i = 0; i < c->nbuckets; i++) {
		for (const struct chan *ch = c->chans[i]; ch; ch = ch->next) {
			if (!chan_open(ch))
				continue;
			if (n < len)
				n += (size_t)snprintf(buf + n, len - n, "%sstream channel %llu",
						      cnt ? ", " : "", (unsigned long long)ch->ch);
			cnt++;
		}
	}
	return cnt;
}

const char *agent_client_broken(const struct agent_client *c)
{
	return c && c->is_broken ? c->broken : NULL;
}

int agent_client_fd(const struct agent_client *c)
{
	return c ? c->fd : -1;
}

void agent_client_adopt_conn(struct agent_client *c, int fd)
{
	reset_connection(c);
	c->fd = fd;
}

void agent_client_set_background(struct agent_client *c)
{
	c->background = true;
}

int agent_client_release_conn(struct agent_client *c)
{
	int fd = c->fd;
	if (fd < 0 || c->is_broken || c->rd.len || c->pend || c->nchans)
		return -1;
	c->fd = -1;
	reset_connection(c);
	return fd;
}

void agent_client_disconnect(struct agent_client *c)
{
	if (c)
		reset_connection(c);
}

void agent_client_free(struct agent_client *c)
{
	if (!c)
		return;
	int e = errno;
	reset_connection(c);
	frame_reader_free(&c->rd);
	if (c->lfd >= 0)
		close(c->lfd);
	if (c->path)
		unlink(c->path);
	free(c->path);
	free(c->name);
	free(c);
	errno = e;
}
