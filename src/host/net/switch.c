/* switch.c — the user-space L2 switch (the model and the API: switch.h).
 *
 * Owns: the switch thread and the eventfd that wakes it; every port (the
 * switch's end of a guest's socketpair, or the uplink's slirp stack via
 * uplink.c); the MAC table; the links, one per (ingress, egress) pair that
 * has carried a frame or been configured, each with its parameters, its
 * PRNG counters and its queue accounting; every queued frame (the timer
 * heap, then the egress port's pending list); every capture's write end
 * and buffer.
 *
 * Locking. One mutex guards all of it. The switch thread holds the mutex
 * except while it sleeps in ppoll(); an API call takes it, changes state
 * and pokes the eventfd so the thread rebuilds its poll set. A port
 * removed while the thread sleeps is closed at once: after the sleep the
 * thread maps every pollfd back to a port or capture *id* (ids are never
 * reused) and skips ids that are gone, so a recycled fd number is never
 * touched. The uplink's slirp is only ever called under the mutex. An API
 * caller announces itself in `waiters` and the thread yields the lock to
 * it (lock_thread), so callers do not starve while frames stream.
 *
 * A frame's path. Read from a port (or handed over by slirp) -> size
 * checked (14..NETSW_FRAME_MAX) -> dropped if the port is disabled ->
 * captured (bridge-wide and the ingress port's captures) -> source MAC
 * learned -> egress: the port the destination was learned on, else every
 * other enabled port -> per egress, the link: one PRNG draw, then blocked,
 * drop_pct, the NETSW_QUEUE_MAX bound (tail drop), and a release time
 * (serialisation behind the link's previous frame, latency, jitter,
 * clamped to the previous frame's release so a link never reorders) ->
 * sent at once when due and nothing of that link or egress is queued,
 * else copied into the timer heap (until due) and then the egress port's
 * pending list (until its socket takes it: POLLOUT).
 *
 * Thread loop, one turn: deliver due frames; flush captures; build the
 * poll set (eventfd, ports, captures, slirp) and the timeout (heap top,
 * slirp's timers); unlock; ppoll; lock;
 * slirp's revents and timers; then each ready descriptor: eventfd drained,
 * ports written (POLLOUT) and read (up to RX_BATCH frames), captures
 * flushed or closed (reader gone).
 *
 * Error contract. API calls return 0, an id or an fd, or -1 with err
 * filled ("netsw NAME: ..."); nothing here prints. Inside the thread
 * there is nobody to tell: socket errors are counted in the port's
 * errors, frames lost to allocation failures in the ingress port's
 * dropped. */
#include "errbuf.h"
#include "net/netsw_priv.h"
#include "net/switch.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define ETH_HLEN   14
#define RX_BATCH   64            /* frames read from one port per turn */
#define MAC_MAX    4096          /* learned addresses; beyond: flood */
#define SOCK_BUF   (4 << 20)     /* SO_SNDBUF/SO_RCVBUF asked for */
#define CAP_KEEP   (256u << 10)  /* an idle capture buffer above this is freed */
#define PCAP_HDR   24
#define PCAP_REC   16
#define PCAP_SNAP  65535u

enum { TAG_EVENT = 1, TAG_PORT, TAG_CAPTURE, TAG_UPLINK };
#define TAG(kind, id) ((uint64_t)(kind) << 32 | (uint32_t)(id))
#define TAG_KIND(t)   ((int)((t) >> 32))
#define TAG_ID(t)     ((int)(uint32_t)(t))

/* One copy of a frame on its way to one egress port. */
struct frame {
	struct frame *next;      /* the egress port's pending list */
	struct link *link;
	int64_t due;             /* release time, CLOCK_MONOTONIC ns */
	uint64_t seq;            /* heap tie-break: FIFO among equal due */
	uint32_t len;
	uint8_t data[];
};

/* The PRNG stream of one traffic class on one link. */
struct class_ctr {
	uint32_t cls;            /* ethertype << 8 | IP protocol */
	uint64_t stream;         /* seed ^ hash(labels, class) */
	uint64_t n;              /* frames drawn so far */
};

struct link {
	struct port *from, *to;
	struct netsw_link p;
	int64_t busy_until;      /* serialiser free again (bps) */
	int64_t last_due;        /* release time of the link's last frame */
	size_t queued;           /* bytes of this link in heap + pending */
	size_t in_heap;          /* frames of this link in the heap */
	struct class_ctr *cls;
	size_t ncls;
};

struct port {
	struct netsw *sw;
	int id;
	char *label;
	int fd;                  /* the switch's socket end; -1: uplink */
	struct uplink *uplink;   /* the uplink port's slirp, else NULL */
	bool up;
	bool hung;               /* POLLHUP without data: no longer read */
	struct netsw_counters ctr;
	struct frame *pend, **pend_tail;  /* due, waiting for POLLOUT */
	struct link **links;     /* this -> other */
	size_t nlinks;
};

struct mac_ent {
	uint8_t mac[6];
	int port;
};

struct capture {
	int id;
	int port;                /* -1: the whole switch */
	int fd;                  /* the write end, non-blocking */
	uint8_t *buf;
	size_t off, len, cap;    /* unsent bytes are buf[off..len) */
};

struct netsw {
	char *name;
	uint64_t seed;
	pthread_t thread;
	bool thread_started;
	pthread_mutex_t mu;
	atomic_int waiters;      /* API callers queueing for mu */
	int efd;
	bool stop;
	int next_id, next_cap_id;
	struct port **ports;     /* ascending id */
	size_t nports;
	struct mac_ent *macs;
	size_t nmacs, capmacs;
	struct frame **heap;
	size_t nheap, capheap;
	uint64_t seq;
	struct capture **caps;
	size_t ncaps;
	struct netsw_stats st;
	int64_t now;             /* this turn's clock */
	/* the switch thread's own */
	struct netsw_pollset ps;
	uint8_t *rxbuf;
};

/* ---- locking ---------------------------------------------------------- */

/* An API caller's lock: announced, so the thread lets it in. */
static void lock_api(struct netsw *sw)
{
	atomic_fetch_add(&sw->waiters, 1);
	pthread_mutex_lock(&sw->mu);
	atomic_fetch_sub(&sw->waiters, 1);
}

/* The thread's lock: first let any queued API caller through. */
static void lock_thread(struct netsw *sw)
{
	while (atomic_load(&sw->waiters) > 0)
		sched_yield();
	pthread_mutex_lock(&sw->mu);
}

/* Make the thread rebuild its poll set and timeout. */
static void wake(struct netsw *sw)
{
	uint64_t one = 1;
	ssize_t n = write(sw->efd, &one, sizeof one);
	(void)n; /* EAGAIN: the counter is already non-zero, a wake is due */
}

/* ---- small helpers ---------------------------------------------------- */

/* The live port with this id, or NULL. */
static struct port *port_by_id(const struct netsw *sw, int id)
{
	for (size_t i = 0; i < sw->nports; i++)
		if (sw->ports[i]->id == id)
			return sw->ports[i];
	return NULL;
}

/* Ask for big socket buffers: forced (CAP_NET_ADMIN), else capped by
 * net.core.[rw]mem_max. Best effort: the defaults work, just tighter. */
static void grow_sockbuf(int fd, bool rcv)
{
	int sz = SOCK_BUF;
	int force = rcv ? SO_RCVBUFFORCE : SO_SNDBUFFORCE;
	int plain = rcv ? SO_RCVBUF : SO_SNDBUF;
	if (setsockopt(fd, SOL_SOCKET, force, &sz, sizeof sz) < 0)
		(void)setsockopt(fd, SOL_SOCKET, plain, &sz, sizeof sz);
}

/* O_NONBLOCK on fd: 0, or -1 with errno. */
static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -1;
	return 0;
}

/* The calling thread's CPU time (0 if the clock fails). */
static int64_t thread_cpu_ns(void)
{
	struct timespec ts;
	if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) < 0)
		return 0;
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int netsw_pollset_add(struct netsw_pollset *ps, int fd, short events, uint64_t tag)
{
	if (ps->n == ps->cap) {
		size_t cap = ps->cap ? ps->cap * 2 : 16;
		struct pollfd *f = realloc(ps->fds, cap * sizeof *f);
		if (!f)
			return -1;
		ps->fds = f;
		uint64_t *t = realloc(ps->tag, cap * sizeof *t);
		if (!t)
			return -1;
		ps->tag = t;
		ps->cap = cap;
	}
	ps->fds[ps->n] = (struct pollfd){ .fd = fd, .events = events };
	ps->tag[ps->n] = tag;
	return (int)ps->n++;
}

/* ---- PRNG -------------------------------------------------------------- */

/* splitmix64's output function. */
static uint64_t mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* FNV-1a-64 of p[0..n) continuing from h. */
static uint64_t fnv1a(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;
	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

/* The stream seed of class cls on link a -> b: seed ^ FNV-1a-64 over
 * "a\0b\0" and the class as 4 little-endian bytes. */
static uint64_t stream_seed(uint64_t seed, const char *a, const char *b, uint32_t cls)
{
	uint8_t c[4] = { (uint8_t)cls, (uint8_t)(cls >> 8), (uint8_t)(cls >> 16),
	                 (uint8_t)(cls >> 24) };
	uint64_t h = 0xcbf29ce484222325ull;
	h = fnv1a(h, a, strlen(a) + 1);
	h = fnv1a(h, b, strlen(b) + 1);
	h = fnv1a(h, c, sizeof c);
	return seed ^ h;
}

/* Traffic class: ethertype << 8, plus the protocol / next header of an
 * IPv4 / IPv6 packet (extension headers are not walked). */
static uint32_t traffic_class(const uint8_t *f, size_t len)
{
	uint32_t et = (uint32_t)f[12] << 8 | f[13];
	uint32_t proto = 0;
	if (et == 0x0800 && len >= ETH_HLEN + 20)
		proto = f[ETH_HLEN + 9];
	else if (et == 0x86dd && len >= ETH_HLEN + 40)
		proto = f[ETH_HLEN + 6];
	return et << 8 | proto;
}

/* The link's next draw for this frame's class: the n-th output (n from 1)
 * of the splitmix64 sequence started at the class's stream seed. Every
 * frame offered to the link draws, whether or not it is then blocked,
 * lost or sent. (If the class table cannot grow the draw is 0.) */
static uint64_t draw(const struct netsw *sw, struct link *l, const uint8_t *f, size_t len)
{
	uint32_t cls = traffic_class(f, len);
	struct class_ctr *c = NULL;
	for (size_t i = 0; i < l->ncls; i++)
		if (l->cls[i].cls == cls)
			c = &l->cls[i];
	if (!c) {
		struct class_ctr *t = realloc(l->cls, (l->ncls + 1) * sizeof *t);
		if (!t)
			return 0;
		l->cls = t;
		c = &l->cls[l->ncls++];
		c->cls = cls;
		c->stream = stream_seed(sw->seed, l->from->label, l->to->label, cls);
		c->n = 0;
	}
	c->n++;
	return mix64(c->stream + c->n * 0x9e3779b97f4a7c15ull);
}

/* The high 32 bits decide loss, the low 32 bits the jitter. */
static bool draw_lost(uint64_t r, double pct)
{
	return (double)(r >> 32) / 4294967296.0 * 100.0 < pct;
}

static int64_t draw_jitter_ns(uint64_t r, double jitter_ms)
{
	return llround((double)(uint32_t)r / 4294967295.0 * jitter_ms * 1e6);
}

/* ---- MAC table --------------------------------------------------------- */

/* The table entry for mac, or NULL. */
static struct mac_ent *mac_find(struct netsw *sw, const uint8_t mac[6])
{
	for (size_t i = 0; i < sw->nmacs; i++)
		if (memcmp(sw->macs[i].mac, mac, 6) == 0)
			return &sw->macs[i];
	return NULL;
}

/* mac now lives behind port (a multicast source is never learned; a
 * full table learns nothing more: those destinations flood). */
static void mac_learn(struct netsw *sw, const uint8_t mac[6], int port)
{
	if (mac[0] & 1)
		return;
	struct mac_ent *e = mac_find(sw, mac);
	if (e) {
		e->port = port;
		return;
	}
	if (sw->nmacs == sw->capmacs) {
		size_t cap = sw->capmacs ? sw->capmacs * 2 : 16;
		struct mac_ent *t;
		if (cap > MAC_MAX || !(t = realloc(sw->macs, cap * sizeof *t)))
			return;
		sw->macs = t;
		sw->capmacs = cap;
	}
	e = &sw->macs[sw->nmacs++];
	memcpy(e->mac, mac, 6);
	e->port = port;
}

/* Forget every address learned on (or preset for) port. */
static void mac_forget_port(struct netsw *sw, int port)
{
	for (size_t i = 0; i < sw->nmacs;)
		if (sw->macs[i].port == port)
			sw->macs[i] = sw->macs[--sw->nmacs];
		else
			i++;
}

/* ---- capture ----------------------------------------------------------- */

/* Queue bytes into c's buffer: all or nothing (a whole record is dropped
 * when the NETSW_CAPTURE_BUF bound would be passed). */
static bool capture_put(struct capture *c, const void *a, size_t alen,
                        const void *b, size_t blen)
{
	size_t need = alen + blen;
	if (c->len - c->off + need > NETSW_CAPTURE_BUF)
		return false;
	if (c->off && c->len + need > c->cap) {
		memmove(c->buf, c->buf + c->off, c->len - c->off);
		c->len -= c->off;
		c->off = 0;
	}
	if (c->len + need > c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 64 << 10;
		while (cap < c->len + need)
			cap *= 2;
		if (cap > NETSW_CAPTURE_BUF)
			cap = NETSW_CAPTURE_BUF;
		uint8_t *t = realloc(c->buf, cap);
		if (!t)
			return false;
		c->buf = t;
		c->cap = cap;
	}
	memcpy(c->buf + c->len, a, alen);
	if (blen)
		memcpy(c->buf + c->len + alen, b, blen);
	c->len += need;
	return true;
}

/* Does a frame seen at port (entering the switch, or delivered) go into c? */
static bool capture_wants(const struct capture *c, int port, bool entering)
{
	return c->port < 0 ? entering : c->port == port;
}

/* Record a frame in every capture that wants it (buffered; sent by
 * capture_flush). */
static void capture_frame(struct netsw *sw, int port, bool entering,
                          const uint8_t *f, size_t len)
{
	struct timespec ts = { 0, 0 };
	bool have_ts = false;
	for (size_t i = 0; i < sw->ncaps; i++) {
		struct capture *c = sw->caps[i];
		if (!capture_wants(c, port, entering))
			continue;
		if (!have_ts) {
			clock_gettime(CLOCK_REALTIME, &ts);
			have_ts = true;
		}
		uint32_t incl = len > PCAP_SNAP ? PCAP_SNAP : (uint32_t)len;
		uint32_t rec[4] = { (uint32_t)ts.tv_sec, (uint32_t)(ts.tv_nsec / 1000),
		                    incl, (uint32_t)len };
		(void)capture_put(c, rec, sizeof rec, f, incl);
	}
}

/* Send what c holds without blocking. 0, or -1 when the reader is gone
 * (EPIPE, ECONNRESET) or the socket failed: the capture is over. */
static int capture_flush(struct capture *c)
{
	while (c->off < c->len) {
		ssize_t n = send(c->fd, c->buf + c->off, c->len - c->off,
		                 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			c->off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		return -1;
	}
	c->off = c->len = 0;
	if (c->cap > CAP_KEEP) {
		free(c->buf);
		c->buf = NULL;
		c->cap = 0;
	}
	return 0;
}

/* A last non-blocking flush, then close (the reader sees EOF) and free.
 * shutdown first: a ppoll() asleep in the thread still holds the socket,
 * and the reader should see EOF now, not when the thread wakes. */
static void capture_close(struct capture *c)
{
	(void)capture_flush(c);
	(void)shutdown(c->fd, SHUT_WR);
	close(c->fd);
	free(c->buf);
	free(c);
}

/* Remove caps[i] from the switch and close it. */
static void capture_drop_at(struct netsw *sw, size_t i)
{
	struct capture *c = sw->caps[i];
	memmove(&sw->caps[i], &sw->caps[i + 1], (sw->ncaps - i - 1) * sizeof *sw->caps);
	sw->ncaps--;
	capture_close(c);
}

/* Flush every capture with buffered bytes; close those whose reader left. */
static void capture_flush_all(struct netsw *sw)
{
	for (size_t i = 0; i < sw->ncaps;)
		if (sw->caps[i]->off < sw->caps[i]->len && capture_flush(sw->caps[i]) < 0)
			capture_drop_at(sw, i);
		else
			i++;
}

/* ---- the timer heap (min on (due, seq)) -------------------------------- */

/* Heap order: earlier due first, then first queued. */
static bool frame_before(const struct frame *a, const struct frame *b)
{
	return a->due < b->due || (a->due == b->due && a->seq < b->seq);
}

/* Restore the heap order above / below index i. */
static void heap_sift_up(struct frame **h, size_t i)
{
	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (!frame_before(h[i], h[p]))
			break;
		struct frame *t = h[i];
		h[i] = h[p];
		h[p] = t;
		i = p;
	}
}

static void heap_sift_down(struct frame **h, size_t n, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < n && frame_before(h[l], h[m]))
			m = l;
		if (r < n && frame_before(h[r], h[m]))
			m = r;
		if (m == i)
			return;
		struct frame *t = h[i];
		h[i] = h[m];
		h[m] = t;
		i = m;
	}
}

/* Push f (its seq assigned here): 0, or -1 when the heap cannot grow. */
static int heap_push(struct netsw *sw, struct frame *f)
{
	if (sw->nheap == sw->capheap) {
		size_t cap = sw->capheap ? sw->capheap * 2 : 64;
		struct frame **t = realloc(sw->heap, cap * sizeof *t);
		if (!t)
			return -1;
		sw->heap = t;
		sw->capheap = cap;
	}
	f->seq = sw->seq++;
	sw->heap[sw->nheap] = f;
	heap_sift_up(sw->heap, sw->nheap++);
	f->link->in_heap++;
	return 0;
}

/* Pop the earliest frame (the heap is not empty). */
static struct frame *heap_pop(struct netsw *sw)
{
	struct frame *top = sw->heap[0];
	sw->heap[0] = sw->heap[--sw->nheap];
	heap_sift_down(sw->heap, sw->nheap, 0);
	top->link->in_heap--;
	return top;
}

/* ---- queued frames ----------------------------------------------------- */

/* A queued copy of data on link l (counted in l->queued), or NULL. */
static struct frame *frame_new(struct link *l, const uint8_t *data, size_t len, int64_t due)
{
	struct frame *f = malloc(sizeof *f + len);
	if (!f)
		return NULL;
	f->next = NULL;
	f->link = l;
	f->due = due;
	f->seq = 0;
	f->len = (uint32_t)len;
	memcpy(f->data, data, len);
	l->queued += len;
	return f;
}

/* Free a frame that left the queues (sent, failed or purged). */
static void frame_done(struct frame *f)
{
	f->link->queued -= f->len;
	free(f);
}

/* f waits at the end of p's pending list. */
static void pending_append(struct port *p, struct frame *f)
{
	f->next = NULL;
	*p->pend_tail = f;
	p->pend_tail = &f->next;
}

/* Count and capture a frame delivered to p. */
static void delivered(struct netsw *sw, struct port *p, const uint8_t *f, size_t len)
{
	p->ctr.rx_packets++;
	p->ctr.rx_bytes += len;
	sw->st.deliveries++;
	capture_frame(sw, p->id, false, f, len);
}

/* Hand one frame to port p. 0 sent (counted, captured), 1 would block,
 * -1 failed (counted in p's errors; the frame is gone). */
static int port_send(struct netsw *sw, struct port *p, const uint8_t *f, size_t len)
{
	if (p->uplink) {
		/* counted first: slirp may answer from inside slirp_input, and
		 * the uplink's capture should show the question first */
		delivered(sw, p, f, len);
		uplink_input(p->uplink, f, len);
		return 0;
	}
	ssize_t n;
	do
		n = send(p->fd, f, len, MSG_DONTWAIT | MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return 1;
	if (n < 0) {
		p->ctr.errors++;
		return -1;
	}
	delivered(sw, p, f, len);
	return 0;
}

/* Send p's pending frames until the socket would block. */
static void pending_flush(struct netsw *sw, struct port *p)
{
	while (p->pend) {
		struct frame *f = p->pend;
		if (port_send(sw, p, f->data, f->len) == 1)
			return;
		p->pend = f->next;
		if (!p->pend)
			p->pend_tail = &p->pend;
		frame_done(f);
	}
}

/* A frame released by the heap goes behind its egress port's pending
 * frames, or straight out when there are none. */
static void frame_release(struct netsw *sw, struct frame *f)
{
	struct port *to = f->link->to;
	if (!to->pend) {
		int rc = port_send(sw, to, f->data, f->len);
		if (rc != 1) {
			frame_done(f);
			return;
		}
	}
	pending_append(to, f);
}

/* Release every frame whose time has come. A release can feed slirp,
 * which can queue new frames: pop first, then release. */
static void run_due(struct netsw *sw)
{
	while (sw->nheap && sw->heap[0]->due <= sw->now)
		frame_release(sw, heap_pop(sw));
}

/* Does frame f (on a link) involve port p? */
static bool frame_touches(const struct frame *f, const struct port *p)
{
	return f->link->from == p || f->link->to == p;
}

/* Forget the timing of every link to or from p (its queue is empty). */
static void links_reset(struct netsw *sw, struct port *p)
{
	for (size_t i = 0; i < sw->nports; i++) {
		struct port *q = sw->ports[i];
		for (size_t j = 0; j < q->nlinks; j++) {
			struct link *l = q->links[j];
			if (l->from == p || l->to == p)
				l->busy_until = l->last_due = 0;
		}
	}
}

/* Drop every queued frame to or from p (counted in the ingress port's
 * dropped). */
static void purge_port(struct netsw *sw, struct port *p)
{
	size_t k = 0;
	for (size_t i = 0; i < sw->nheap; i++) {
		struct frame *f = sw->heap[i];
		if (frame_touches(f, p)) {
			f->link->in_heap--;
			f->link->from->ctr.dropped++;
			frame_done(f);
		} else {
			sw->heap[k++] = f;
		}
	}
	sw->nheap = k;
	for (size_t i = k / 2 + 1; i-- > 0;)
		heap_sift_down(sw->heap, sw->nheap, i);
	for (size_t i = 0; i < sw->nports; i++) {
		struct port *q = sw->ports[i];
		struct frame **pp = &q->pend;
		while (*pp) {
			struct frame *f = *pp;
			if (frame_touches(f, p)) {
				*pp = f->next;
				f->link->from->ctr.dropped++;
				frame_done(f);
			} else {
				pp = &f->next;
			}
		}
		q->pend_tail = pp;
	}
	links_reset(sw, p);
}

/* ---- links --------------------------------------------------------------- */

/* The link from -> to, created open and unimpaired on first use. */
static struct link *link_get(struct port *from, struct port *to)
{
	for (size_t i = 0; i < from->nlinks; i++)
		if (from->links[i]->to == to)
			return from->links[i];
	struct link **t = realloc(from->links, (from->nlinks + 1) * sizeof *t);
	if (!t)
		return NULL;
	from->links = t;
	struct link *l = calloc(1, sizeof *l);
	if (!l)
		return NULL;
	l->from = from;
	l->to = to;
	from->links[from->nlinks++] = l;
	return l;
}

/* Free a link (its frames are already gone). */
static void link_free(struct link *l)
{
	free(l->cls);
	free(l);
}

/* Free q's link to p, if any. */
static void link_drop(struct port *q, const struct port *p)
{
	for (size_t i = 0; i < q->nlinks; i++)
		if (q->links[i]->to == p) {
			link_free(q->links[i]);
			q->links[i] = q->links[--q->nlinks];
			return;
		}
}

/* Serialisation time of len bytes at bps, rounded up. */
static int64_t serial_ns(size_t len, uint64_t bps)
{
	uint64_t bits = (uint64_t)len * 8;
	return (int64_t)((bits * 1000000000ull + bps - 1) / bps);
}

/* When a frame admitted now on l leaves it; advances the link's clocks. */
static int64_t release_time(struct netsw *sw, struct link *l, size_t len, uint64_t r)
{
	int64_t t = sw->now;
	if (l->p.bps) {
		if (l->busy_until > t)
			t = l->busy_until;
		t += serial_ns(len, l->p.bps);
		l->busy_until = t;
	}
	t += llround(l->p.latency_ms * 1e6);
	if (l->p.jitter_ms > 0)
		t += draw_jitter_ns(r, l->p.jitter_ms);
	if (t < l->last_due)
		t = l->last_due;
	l->last_due = t;
	return t;
}

/* One frame from in to out through their link: lost, sent or queued. */
static void link_admit(struct netsw *sw, struct port *in, struct port *out,
                       const uint8_t *f, size_t len)
{
	struct link *l = link_get(in, out);
	if (!l) {
		in->ctr.dropped++;
		return;
	}
	uint64_t r = draw(sw, l, f, len);
	if (l->p.blocked || draw_lost(r, l->p.drop_pct) ||
	    l->queued + len > NETSW_QUEUE_MAX) {
		in->ctr.dropped++;
		return;
	}
	int64_t due = release_time(sw, l, len, r);
	bool at_once = due <= sw->now && !l->in_heap;
	if (at_once && !out->pend && port_send(sw, out, f, len) != 1)
		return;
	struct frame *fr = frame_new(l, f, len, due);
	if (!fr) {
		in->ctr.dropped++;
		return;
	}
	if (at_once) {
		pending_append(out, fr);
	} else if (heap_push(sw, fr) < 0) {
		in->ctr.dropped++;
		frame_done(fr);
	}
}

/* ---- ingress --------------------------------------------------------- */

/* A frame port in sent into the switch. */
static void ingress(struct netsw *sw, struct port *in, const uint8_t *f, size_t len)
{
	sw->st.frames++;
	sw->st.bytes += len;
	if (len < ETH_HLEN || len > NETSW_FRAME_MAX) {
		in->ctr.errors++;
		return;
	}
	if (!in->up) {
		in->ctr.dropped++;
		return;
	}
	in->ctr.tx_packets++;
	in->ctr.tx_bytes += len;
	capture_frame(sw, in->id, true, f, len);
	mac_learn(sw, f + 6, in->id);
	if (!(f[0] & 1)) {
		struct mac_ent *e = mac_find(sw, f);
		if (e) {
			struct port *out = port_by_id(sw, e->port);
			if (out && out != in && out->up)
				link_admit(sw, in, out, f, len);
			else if (out != in)
				in->ctr.dropped++;
			return;
		}
	}
	for (size_t i = 0; i < sw->nports; i++) {
		struct port *out = sw->ports[i];
		if (out != in && out->up)
			link_admit(sw, in, out, f, len);
	}
}

/* slirp's frames enter here (netsw_uplink_rx_fn). */
static void uplink_rx(void *opaque, const uint8_t *f, size_t len)
{
	struct port *p = opaque;
	ingress(p->sw, p, f, len);
}

/* Read up to RX_BATCH frames from guest port p. */
static void port_read(struct netsw *sw, struct port *p)
{
	for (int i = 0; i < RX_BATCH; i++) {
		ssize_t n = recv(p->fd, sw->rxbuf, NETSW_FRAME_MAX, MSG_DONTWAIT | MSG_TRUNC);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				p->ctr.errors++;
			return;
		}
		ingress(sw, p, sw->rxbuf, (size_t)n);
	}
}

/* Clear a socket error (POLLERR) so it is not reported again. */
static void port_clear_error(struct port *p)
{
	int e = 0;
	socklen_t sl = sizeof e;
	(void)getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &e, &sl);
	p->ctr.errors++;
}

/* ---- the thread ---------------------------------------------------------- */

/* Fill sw->ps for this turn; the timeout in ns (-1: none). *up_id is the
 * uplink whose sockets were added (-1: none). */
static int64_t poll_build(struct netsw *sw, int *up_id)
{
	struct netsw_pollset *ps = &sw->ps;
	int64_t timeout = -1;
	ps->n = 0;
	*up_id = -1;
	(void)netsw_pollset_add(ps, sw->efd, POLLIN, TAG(TAG_EVENT, 0));
	for (size_t i = 0; i < sw->nports; i++) {
		struct port *p = sw->ports[i];
		if (p->fd < 0)
			continue;
		short ev = (short)((p->hung ? 0 : POLLIN) | (p->pend ? POLLOUT : 0));
		if (ev)
			(void)netsw_pollset_add(ps, p->fd, ev, TAG(TAG_PORT, p->id));
	}
	for (size_t i = 0; i < sw->ncaps; i++) {
		struct capture *c = sw->caps[i];
		short ev = c->off < c->len ? POLLOUT : 0;
		(void)netsw_pollset_add(ps, c->fd, ev, TAG(TAG_CAPTURE, c->id));
	}
	if (sw->nheap) {
		timeout = sw->heap[0]->due - sw->now;
		if (timeout < 0)
			timeout = 0;
	}
	for (size_t i = 0; i < sw->nports; i++)
		if (sw->ports[i]->uplink) {
			uplink_poll_fill(sw->ports[i]->uplink, ps, TAG(TAG_UPLINK, 0), &timeout);
			*up_id = sw->ports[i]->id;
		}
	return timeout;
}

/* Port id is writable / readable / failed (gone meanwhile: nothing). */
static void on_port_event(struct netsw *sw, int id, short re)
{
	struct port *p = port_by_id(sw, id);
	if (!p)
		return;
	if (re & POLLOUT)
		pending_flush(sw, p);
	if (re & POLLIN)
		port_read(sw, p);
	else if (re & POLLERR)
		port_clear_error(p);
	else if (re & POLLHUP)
		p->hung = true;
}

/* Capture id is writable, or its reader left (then it is closed). */
static void on_capture_event(struct netsw *sw, int id, short re)
{
	for (size_t i = 0; i < sw->ncaps; i++) {
		if (sw->caps[i]->id != id)
			continue;
		if ((re & (POLLHUP | POLLERR)) || ((re & POLLOUT) && capture_flush(sw->caps[i]) < 0))
			capture_drop_at(sw, i);
		return;
	}
}

/* Act on what ppoll reported (ids that vanished meanwhile are skipped). */
static void poll_dispatch(struct netsw *sw, int up_id, bool failed)
{
	struct netsw_pollset *ps = &sw->ps;
	struct port *u = up_id >= 0 ? port_by_id(sw, up_id) : NULL;
	if (u && u->uplink)
		uplink_poll_done(u->uplink, ps, failed);
	if (failed)
		return;
	for (size_t i = 0; i < ps->n; i++) {
		short re = ps->fds[i].revents;
		uint64_t t = ps->tag[i];
		if (!re)
			continue;
		switch (TAG_KIND(t)) {
		case TAG_EVENT: {
			uint64_t v;
			ssize_t n = read(sw->efd, &v, sizeof v);
			(void)n;
			break;
		}
		case TAG_PORT:
			on_port_event(sw, TAG_ID(t), re);
			break;
		case TAG_CAPTURE:
			on_capture_event(sw, TAG_ID(t), re);
			break;
		default:
			break;
		}
	}
}

/* The switch thread: loop turns (see the top of the file) until stop. */
static void *switch_main(void *arg)
{
	struct netsw *sw = arg;
	lock_thread(sw);
	while (!sw->stop) {
		int up_id;
		sw->now = mono_now_ns();
		run_due(sw);
		capture_flush_all(sw);
		int64_t timeout = poll_build(sw, &up_id);
		struct timespec ts = { (time_t)(timeout / 1000000000), (long)(timeout % 1000000000) };
		pthread_mutex_unlock(&sw->mu);
		int n = ppoll(sw->ps.fds, sw->ps.n, timeout >= 0 ? &ts : NULL, NULL);
		bool failed = n < 0;
		lock_thread(sw);
		sw->now = mono_now_ns();
		poll_dispatch(sw, up_id, failed);
	}
	sw->st.cpu_ns = (uint64_t)thread_cpu_ns();
	pthread_mutex_unlock(&sw->mu);
	return NULL;
}

/* ---- API ----------------------------------------------------------------- */

/* Start the thread with every signal blocked: signals belong to the
 * runner's thread. */
static int start_thread(struct netsw *sw)
{
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int rc = pthread_create(&sw->thread, NULL, switch_main, sw);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc) {
		errno = rc;
		return -1;
	}
	sw->thread_started = true;
	return 0;
}

struct netsw *netsw_new(const char *name, uint64_t seed, char *err, size_t errlen)
{
	const char *nm = name ? name : "?";
	struct netsw *sw = calloc(1, sizeof *sw);
	if (!sw) {
		err_set(err, errlen, "netsw %s: out of memory", nm);
		return NULL;
	}
	sw->efd = -1;
	sw->seed = seed;
	atomic_init(&sw->waiters, 0);
	pthread_mutex_init(&sw->mu, NULL);
	sw->name = strdup(nm);
	sw->rxbuf = malloc(NETSW_FRAME_MAX);
	if (!sw->name || !sw->rxbuf) {
		err_set(err, errlen, "netsw %s: out of memory", nm);
		goto fail;
	}
	sw->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (sw->efd < 0) {
		err_set(err, errlen, "netsw %s: eventfd: %s", sw->name, strerror(errno));
		goto fail;
	}
	if (start_thread(sw) < 0) {
		err_set(err, errlen, "netsw %s: thread: %s", sw->name, strerror(errno));
		goto fail;
	}
	return sw;
fail:
	netsw_free(sw);
	return NULL;
}

/* Unlink ports[i], drop what it queued and what others queued for it,
 * forget its MACs, links and captures, close it. Under the mutex. */
static void port_destroy_at(struct netsw *sw, size_t i)
{
	struct port *p = sw->ports[i];
	purge_port(sw, p);
	for (size_t j = 0; j < sw->nports; j++)
		if (sw->ports[j] != p)
			link_drop(sw->ports[j], p);
	for (size_t j = 0; j < p->nlinks; j++)
		link_free(p->links[j]);
	free(p->links);
	mac_forget_port(sw, p->id);
	for (size_t j = 0; j < sw->ncaps;)
		if (sw->caps[j]->port == p->id)
			capture_drop_at(sw, j);
		else
			j++;
	memmove(&sw->ports[i], &sw->ports[i + 1], (sw->nports - i - 1) * sizeof *sw->ports);
	sw->nports--;
	uplink_free(p->uplink);
	if (p->fd >= 0) {
		/* the peer's sends fail (EPIPE) from now on, even while a
		 * sleeping ppoll() keeps the socket itself alive */
		(void)shutdown(p->fd, SHUT_RDWR);
		close(p->fd);
	}
	free(p->label);
	free(p);
}

void netsw_free(struct netsw *sw)
{
	if (!sw)
		return;
	if (sw->thread_started) {
		lock_api(sw);
		sw->stop = true;
		wake(sw);
		pthread_mutex_unlock(&sw->mu);
		pthread_join(sw->thread, NULL);
	}
	while (sw->nports)
		port_destroy_at(sw, sw->nports - 1);
	while (sw->ncaps)
		capture_drop_at(sw, sw->ncaps - 1);
	/* the heap is empty now: every frame was on a link of some port */
	free(sw->heap);
	free(sw->caps);
	free(sw->ports);
	free(sw->macs);
	free(sw->ps.fds);
	free(sw->ps.tag);
	free(sw->rxbuf);
	if (sw->efd >= 0)
		close(sw->efd);
	pthread_mutex_destroy(&sw->mu);
	free(sw->name);
	free(sw);
}

/* Append a new port (id assigned here) to sw->ports. Under the mutex. */
static struct port *port_new(struct netsw *sw, const char *label, char *err, size_t errlen)
{
	struct port **t = realloc(sw->ports, (sw->nports + 1) * sizeof *t);
	if (!t) {
		err_set(err, errlen, "netsw %s: out of memory", sw->name);
		return NULL;
	}
	sw->ports = t;
	struct port *p = calloc(1, sizeof *p);
	if (!p || !(p->label = strdup(label))) {
		free(p);
		err_set(err, errlen, "netsw %s: out of memory", sw->name);
		return NULL;
	}
	p->sw = sw;
	p->id = sw->next_id++;
	p->fd = -1;
	p->up = true;
	p->pend_tail = &p->pend;
	sw->ports[sw->nports++] = p;
	return p;
}

/* Is fd a datagram socket we can make ours (non-blocking, close-on-exec,
 * big buffers)? 0, or -1 with err filled. */
static int adopt_prepare(struct netsw *sw, int fd, char *err, size_t errlen)
{
	int type = 0;
	socklen_t sl = sizeof type;
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &sl) < 0 || type != SOCK_DGRAM) {
		err_set(err, errlen, "netsw %s: fd %d is not a datagram socket", sw->name, fd);
		return -1;
	}
	if (set_nonblock(fd) < 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
		err_set(err, errlen, "netsw %s: fd %d: fcntl: %s", sw->name, fd, strerror(errno));
		return -1;
	}
	grow_sockbuf(fd, false);
	grow_sockbuf(fd, true);
	return 0;
}

int netsw_port_adopt(struct netsw *sw, const char *label, const uint8_t mac[6], int fd,
                     char *err, size_t errlen)
{
	if (!label) {
		err_set(err, errlen, "netsw %s: a port needs a label", sw->name);
		goto fail;
	}
	if (adopt_prepare(sw, fd, err, errlen) < 0)
		goto fail;
	lock_api(sw);
	struct port *p = port_new(sw, label, err, errlen);
	if (!p) {
		pthread_mutex_unlock(&sw->mu);
		goto fail;
	}
	p->fd = fd;
	if (mac)
		mac_learn(sw, mac, p->id);
	int id = p->id;
	wake(sw);
	pthread_mutex_unlock(&sw->mu);
	return id;
fail:
	if (fd >= 0)
		close(fd);
	return -1;
}

int netsw_port_add(struct netsw *sw, const char *label, const uint8_t mac[6],
                   int *peer_fd, char *err, size_t errlen)
{
	int sv[2];
	if (!peer_fd) {
		err_set(err, errlen, "netsw %s: port_add needs peer_fd", sw->name);
		return -1;
	}
	if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv) < 0) {
		err_set(err, errlen, "netsw %s: socketpair: %s", sw->name, strerror(errno));
		return -1;
	}
	grow_sockbuf(sv[1], false);
	grow_sockbuf(sv[1], true);
	int id = netsw_port_adopt(sw, label, mac, sv[0], err, errlen);   /* owns sv[0] */
	if (id < 0)
		close(sv[1]);
	else
		*peer_fd = sv[1];
	return id;
}

int netsw_uplink_add(struct netsw *sw, const struct netsw_uplink_cfg *cfg,
                     char *err, size_t errlen)
{
	char why[256] = "";
	int id = -1;
	lock_api(sw);
	for (size_t i = 0; i < sw->nports; i++)
		if (sw->ports[i]->uplink) {
			err_set(err, errlen, "netsw %s: already has an uplink (port %d)",
			        sw->name, sw->ports[i]->id);
			goto out;
		}
	struct port *p = port_new(sw, "uplink", err, errlen);
	if (!p)
		goto out;
	p->uplink = uplink_new(cfg, uplink_rx, p, why, sizeof why);
	if (!p->uplink) {
		err_set(err, errlen, "netsw %s: uplink: %s", sw->name, why);
		port_destroy_at(sw, sw->nports - 1);
		goto out;
	}
	id = p->id;
	wake(sw);
out:
	pthread_mutex_unlock(&sw->mu);
	return id;
}

/* The index of port id in sw->ports, or -1 with err filled. */
static int port_index(struct netsw *sw, int id, char *err, size_t errlen)
{
	for (size_t i = 0; i < sw->nports; i++)
		if (sw->ports[i]->id == id)
			return (int)i;
	err_set(err, errlen, "netsw %s: no port %d", sw->name, id);
	return -1;
}

int netsw_port_remove(struct netsw *sw, int port, char *err, size_t errlen)
{
	lock_api(sw);
	int i = port_index(sw, port, err, errlen);
	if (i >= 0) {
		port_destroy_at(sw, (size_t)i);
		wake(sw);
	}
	pthread_mutex_unlock(&sw->mu);
	return i >= 0 ? 0 : -1;
}

int netsw_port_enable(struct netsw *sw, int port, bool up, char *err, size_t errlen)
{
	lock_api(sw);
	int i = port_index(sw, port, err, errlen);
	if (i >= 0) {
		struct port *p = sw->ports[i];
		if (p->up && !up)
			purge_port(sw, p);
		p->up = up;
		wake(sw);
	}
	pthread_mutex_unlock(&sw->mu);
	return i >= 0 ? 0 : -1;
}

/* Are link parameters sane? (NaN fails every comparison.) */
static bool link_valid(const struct netsw_link *l)
{
	return l->drop_pct >= 0 && l->drop_pct <= 100 &&
	       l->latency_ms >= 0 && l->latency_ms <= 3600e3 &&
	       l->jitter_ms >= 0 && l->jitter_ms <= 3600e3;
}

int netsw_link_set(struct netsw *sw, int from, int to, const struct netsw_link *l,
                   char *err, size_t errlen)
{
	int rc = -1;
	if (!l || !link_valid(l)) {
		err_set(err, errlen, "netsw %s: link %d -> %d: drop_pct must be in 0..100, "
		        "latency_ms and jitter_ms in 0..3600000", sw->name, from, to);
		return -1;
	}
	if (from == to) {
		err_set(err, errlen, "netsw %s: link %d -> %d: a port has no link to itself",
		        sw->name, from, to);
		return -1;
	}
	lock_api(sw);
	int a = port_index(sw, from, err, errlen);
	int b = a >= 0 ? port_index(sw, to, err, errlen) : -1;
	if (b >= 0) {
		struct link *k = link_get(sw->ports[a], sw->ports[b]);
		if (k) {
			k->p = *l;
			rc = 0;
			wake(sw);
		} else {
			err_set(err, errlen, "netsw %s: out of memory", sw->name);
		}
	}
	pthread_mutex_unlock(&sw->mu);
	return rc;
}

int netsw_counters(struct netsw *sw, int port, struct netsw_counters *c,
                   char *err, size_t errlen)
{
	lock_api(sw);
	int i = port_index(sw, port, err, errlen);
	if (i >= 0)
		*c = sw->ports[i]->ctr;
	pthread_mutex_unlock(&sw->mu);
	return i >= 0 ? 0 : -1;
}

void netsw_stats(struct netsw *sw, struct netsw_stats *st)
{
	clockid_t cid;
	struct timespec ts;
	lock_api(sw);
	*st = sw->st;
	/* the thread's CPU clock, read from here: sampling it in the thread
	 * cost ~1.3 us per loop turn (bench/run.sh) */
	if (!sw->stop && pthread_getcpuclockid(sw->thread, &cid) == 0 &&
	    clock_gettime(cid, &ts) == 0)
		st->cpu_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	pthread_mutex_unlock(&sw->mu);
}

/* The pcap global header: magic in host byte order (readers detect the
 * order from it), v2.4, snaplen, linktype 1 (Ethernet). */
static void pcap_header(uint8_t h[PCAP_HDR])
{
	uint32_t magic = 0xa1b2c3d4, zone = 0, sigfigs = 0, snap = PCAP_SNAP, link = 1;
	uint16_t major = 2, minor = 4;
	memcpy(h, &magic, 4);
	memcpy(h + 4, &major, 2);
	memcpy(h + 6, &minor, 2);
	memcpy(h + 8, &zone, 4);
	memcpy(h + 12, &sigfigs, 4);
	memcpy(h + 16, &snap, 4);
	memcpy(h + 20, &link, 4);
}

/* A capture on write end fd, its header queued, added to sw. Under the
 * mutex. */
static int capture_add(struct netsw *sw, int port, int fd, char *err, size_t errlen)
{
	uint8_t hdr[PCAP_HDR];
	struct capture **t = realloc(sw->caps, (sw->ncaps + 1) * sizeof *t);
	struct capture *c = t ? calloc(1, sizeof *c) : NULL;
	if (t)
		sw->caps = t;
	if (!c) {
		err_set(err, errlen, "netsw %s: out of memory", sw->name);
		return -1;
	}
	c->id = sw->next_cap_id++;
	c->port = port;
	c->fd = fd;
	pcap_header(hdr);
	if (!capture_put(c, hdr, sizeof hdr, NULL, 0)) {
		free(c);
		err_set(err, errlen, "netsw %s: out of memory", sw->name);
		return -1;
	}
	sw->caps[sw->ncaps++] = c;
	return 0;
}

int netsw_capture_open(struct netsw *sw, int port, char *err, size_t errlen)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		err_set(err, errlen, "netsw %s: socketpair: %s", sw->name, strerror(errno));
		return -1;
	}
	/* sv[0] is the reader's, sv[1] the switch's: one direction only */
	(void)shutdown(sv[0], SHUT_WR);
	(void)shutdown(sv[1], SHUT_RD);
	grow_sockbuf(sv[1], false);
	if (set_nonblock(sv[1]) < 0) {
		err_set(err, errlen, "netsw %s: O_NONBLOCK: %s", sw->name, strerror(errno));
		goto fail;
	}
	lock_api(sw);
	int rc = port == -1 || port_index(sw, port, err, errlen) >= 0 ? 0 : -1;
	if (rc == 0)
		rc = capture_add(sw, port, sv[1], err, errlen);
	if (rc == 0)
		wake(sw);
	pthread_mutex_unlock(&sw->mu);
	if (rc < 0)
		goto fail;
	return sv[0];
fail:
	close(sv[0]);
	close(sv[1]);
	return -1;
}

uint64_t netsw_seed(const struct netsw *sw)
{
	return sw->seed;
}
