/* test_netsw.c — the L2 switch (net/switch.h) driven through real
 * socketpair ports with hand-made Ethernet frames, and its libslirp
 * uplink (ARP and a TCP handshake to a listener on 127.0.0.1).
 *
 * The switch is asynchronous, so "X did not arrive" is proven with a
 * sentinel: a later frame on the same link must be the next one the port
 * reads (a link never reorders). Timing checks are lower bounds with very
 * generous upper bounds. Every frame carries a 32-bit tag at TAG_OFF. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "errbuf.h"
#include "net/switch.h"

#define TAG_OFF   40
#define WAIT_MS   2000
#define ET_IPV4   0x0800
#define ET_ARP    0x0806
#define ET_TEST   0x88b5      /* IEEE local experimental */

static const uint8_t MAC_A[6] = { 0x02, 0, 0, 0, 0, 0x0a };
static const uint8_t MAC_B[6] = { 0x02, 0, 0, 0, 0, 0x0b };
static const uint8_t MAC_C[6] = { 0x02, 0, 0, 0, 0, 0x0c };
static const uint8_t BCAST[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

static char err[256];

/* ---- helpers ----------------------------------------------------------- */

static int64_t now_ms(void)
{
	return mono_now_ns() / 1000000;
}

/* A frame of len bytes (>= TAG_OFF + 4): dst, src, ethertype, tag; an
 * IPv4 ethertype gets a header with protocol proto. */
static size_t mkframe(uint8_t *f, size_t len, const uint8_t *dst, const uint8_t *src,
                      uint16_t et, uint8_t proto, uint32_t tag)
{
	memset(f, 0, len);
	memcpy(f, dst, 6);
	memcpy(f + 6, src, 6);
	f[12] = (uint8_t)(et >> 8);
	f[13] = (uint8_t)et;
	if (et == ET_IPV4) {
		f[14] = 0x45;
		f[23] = proto;
	}
	memcpy(f + TAG_OFF, &tag, 4);
	return len;
}

static uint32_t tag_of(const uint8_t *f)
{
	uint32_t t;
	memcpy(&t, f + TAG_OFF, 4);
	return t;
}

static void send_raw(int fd, const uint8_t *f, size_t len)
{
	for (;;) {
		ssize_t n = send(fd, f, len, MSG_DONTWAIT);
		if (n == (ssize_t)len)
			return;
		assert_true(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
		struct pollfd p = { .fd = fd, .events = POLLOUT };
		assert_int_equal(poll(&p, 1, WAIT_MS), 1);
	}
}

static void send_tagged(int fd, const uint8_t *dst, const uint8_t *src, uint32_t tag, size_t len)
{
	uint8_t f[2048];
	send_raw(fd, f, mkframe(f, len, dst, src, ET_TEST, 0, tag));
}

/* The next frame on fd within ms: its length, or -1. */
static ssize_t recv_frame(int fd, uint8_t *buf, size_t cap, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	if (poll(&p, 1, ms) != 1)
		return -1;
	return recv(fd, buf, cap, MSG_DONTWAIT);
}

/* The next frame on fd must carry tag. */
static void expect_tag(int fd, uint32_t tag)
{
	uint8_t f[2048];
	ssize_t n = recv_frame(fd, f, sizeof f, WAIT_MS);
	assert_true(n >= TAG_OFF + 4);
	assert_int_equal(tag_of(f), tag);
}

static struct netsw *sw_new(uint64_t seed)
{
	struct netsw *sw = netsw_new("t", seed, err, sizeof err);
	assert_non_null(sw);
	return sw;
}

static int port(struct netsw *sw, const char *label, const uint8_t *mac, int *fd)
{
	int id = netsw_port_add(sw, label, mac, fd, err, sizeof err);
	assert_true(id >= 0);
	return id;
}

static struct netsw_counters ctr(struct netsw *sw, int p)
{
	struct netsw_counters c;
	assert_int_equal(netsw_counters(sw, p, &c, err, sizeof err), 0);
	return c;
}

/* Wait (bounded) until port p has received n frames from the guest. */
static void wait_tx(struct netsw *sw, int p, uint64_t n)
{
	int64_t end = now_ms() + WAIT_MS;
	while (ctr(sw, p).tx_packets < n) {
		assert_true(now_ms() < end);
		usleep(1000);
	}
}

static void set_link(struct netsw *sw, int from, int to, struct netsw_link l)
{
	assert_int_equal(netsw_link_set(sw, from, to, &l, err, sizeof err), 0);
}

/* Three ports a, b, c (MACs preset unless bare). */
struct trio {
	struct netsw *sw;
	int a, b, c;        /* port ids */
	int fa, fb, fc;     /* guest ends */
};

static void trio_open(struct trio *t, uint64_t seed, bool bare)
{
	t->sw = sw_new(seed);
	t->a = port(t->sw, "a", bare ? NULL : MAC_A, &t->fa);
	t->b = port(t->sw, "b", bare ? NULL : MAC_B, &t->fb);
	t->c = port(t->sw, "c", bare ? NULL : MAC_C, &t->fc);
}

static void trio_close(struct trio *t)
{
	netsw_free(t->sw);
	close(t->fa);
	close(t->fb);
	close(t->fc);
}

/* ---- forwarding ---------------------------------------------------------- */

static void unicast_after_learning(void **state)
{
	struct trio t;
	(void)state;
	trio_open(&t, 1, true);
	send_tagged(t.fa, MAC_B, MAC_A, 1, 64);   /* B unknown: floods */
	expect_tag(t.fb, 1);
	expect_tag(t.fc, 1);
	send_tagged(t.fb, MAC_A, MAC_B, 2, 64);   /* A learned: A only */
	expect_tag(t.fa, 2);
	send_tagged(t.fa, MAC_B, MAC_A, 3, 64);   /* B learned: B only */
	expect_tag(t.fb, 3);
	send_tagged(t.fa, BCAST, MAC_A, 4, 64);   /* sentinel */
	expect_tag(t.fc, 4);                      /* c saw neither 2 nor 3 */
	expect_tag(t.fb, 4);
	trio_close(&t);
}

static void preset_mac_needs_no_learning(void **state)
{
	struct trio t;
	(void)state;
	trio_open(&t, 1, false);
	send_tagged(t.fa, MAC_C, MAC_A, 1, 64);
	expect_tag(t.fc, 1);
	send_tagged(t.fa, BCAST, MAC_A, 2, 64);
	expect_tag(t.fb, 2);                      /* b did not get 1 */
	trio_close(&t);
}

static void broadcast_floods_but_not_back(void **state)
{
	struct trio t;
	(void)state;
	trio_open(&t, 1, false);
	send_tagged(t.fa, BCAST, MAC_A, 1, 64);
	expect_tag(t.fb, 1);
	expect_tag(t.fc, 1);
	const uint8_t mcast[6] = { 0x33, 0x33, 0, 0, 0, 1 };
	send_tagged(t.fa, mcast, MAC_A, 2, 64);
	expect_tag(t.fb, 2);
	expect_tag(t.fc, 2);
	send_tagged(t.fb, BCAST, MAC_B, 3, 64);
	expect_tag(t.fa, 3);                      /* a's own frames never came back */
	trio_close(&t);
}

static void disabled_port_neither_sends_nor_receives(void **state)
{
	struct trio t;
	(void)state;
	trio_open(&t, 1, false);
	assert_int_equal(netsw_port_enable(t.sw, t.b, false, err, sizeof err), 0);
	send_tagged(t.fa, BCAST, MAC_A, 1, 64);
	expect_tag(t.fc, 1);
	send_tagged(t.fa, MAC_B, MAC_A, 2, 64);   /* unicast to a disabled port */
	send_tagged(t.fb, BCAST, MAC_B, 3, 64);   /* from a disabled port */
	send_tagged(t.fb, MAC_C, MAC_B, 4, 64);
	wait_tx(t.sw, t.a, 2);
	int64_t end = now_ms() + WAIT_MS;
	while (ctr(t.sw, t.b).dropped < 2) {
		assert_true(now_ms() < end);
		usleep(1000);
	}
	assert_int_equal(ctr(t.sw, t.b).tx_packets, 0);
	assert_int_equal(ctr(t.sw, t.a).dropped, 1);
	assert_int_equal(netsw_port_enable(t.sw, t.b, true, err, sizeof err), 0);
	send_tagged(t.fa, BCAST, MAC_A, 5, 64);
	expect_tag(t.fb, 5);                      /* nothing before it */
	expect_tag(t.fc, 5);
	send_tagged(t.fb, BCAST, MAC_B, 6, 64);
	expect_tag(t.fc, 6);                      /* 3 and 4 never arrived */
	expect_tag(t.fa, 6);
	trio_close(&t);
}

static void blocked_link_drops_one_direction(void **state)
{
	struct trio t;
	(void)state;
	trio_open(&t, 1, false);
	set_link(t.sw, t.a, t.b, (struct netsw_link){ .blocked = true });
	send_tagged(t.fa, MAC_B, MAC_A, 1, 64);
	send_tagged(t.fb, MAC_A, MAC_B, 2, 64);   /* b -> a is open */
	expect_tag(t.fa, 2);
	send_tagged(t.fa, BCAST, MAC_A, 3, 64);
	expect_tag(t.fc, 3);                      /* a -> c is open */
	assert_int_equal(ctr(t.sw, t.a).dropped, 2);
	set_link(t.sw, t.a, t.b, (struct netsw_link){ 0 });
	send_tagged(t.fa, MAC_B, MAC_A, 4, 64);
	expect_tag(t.fb, 4);                      /* 1 and 3 never arrived */
	trio_close(&t);
}

/* ---- deterministic loss ----------------------------------------------------- */

#define NLOSS 200

/* Send NLOSS IPv4 frames of protocol proto a -> b over a 50 % link on a
 * switch seeded seed; noise > 0 interleaves that many ARP and UDP frames
 * after each. extra_port adds a port first (shifts the ids). got[i] says
 * whether frame i of protocol proto arrived. */
static void loss_pattern(uint64_t seed, int noise, bool extra_port, bool got[NLOSS])
{
	struct netsw *sw = sw_new(seed);
	int fx = -1, fa, fb;
	if (extra_port)
		port(sw, "x", NULL, &fx);
	int a = port(sw, "a", MAC_A, &fa);
	int b = port(sw, "b", MAC_B, &fb);
	set_link(sw, a, b, (struct netsw_link){ .drop_pct = 50 });
	uint8_t f[128];
	uint64_t sent = 0;
	for (uint32_t i = 0; i < NLOSS; i++) {
		send_raw(fa, f, mkframe(f, 64, MAC_B, MAC_A, ET_IPV4, 1, i));
		sent++;
		for (int k = 0; k < noise; k++) {
			send_raw(fa, f, mkframe(f, 64, MAC_B, MAC_A, ET_ARP, 0, 1000 + i));
			send_raw(fa, f, mkframe(f, 64, MAC_B, MAC_A, ET_IPV4, 17, 2000 + i));
			sent += 2;
		}
	}
	wait_tx(sw, a, sent);
	struct netsw_counters ca = ctr(sw, a), cb = ctr(sw, b);
	assert_int_equal(ca.dropped + cb.rx_packets, sent);
	memset(got, 0, NLOSS * sizeof *got);
	for (uint64_t i = 0; i < cb.rx_packets; i++) {
		ssize_t n = recv_frame(fb, f, sizeof f, WAIT_MS);
		assert_int_equal(n, 64);
		if (f[12] == 0x08 && f[13] == 0x00 && f[23] == 1)
			got[tag_of(f)] = true;
	}
	netsw_free(sw);
	close(fa);
	close(fb);
	if (fx >= 0)
		close(fx);
}

static int count_true(const bool *v, int n)
{
	int k = 0;
	for (int i = 0; i < n; i++)
		k += v[i];
	return k;
}

static void drop_pct_is_deterministic(void **state)
{
	bool p1[NLOSS], p2[NLOSS], p3[NLOSS];
	(void)state;
	loss_pattern(42, 0, false, p1);
	loss_pattern(42, 0, false, p2);
	loss_pattern(43, 0, false, p3);
	assert_memory_equal(p1, p2, sizeof p1);
	assert_memory_not_equal(p1, p3, sizeof p1);
	int k = count_true(p1, NLOSS);
	assert_in_range(k, NLOSS * 3 / 10, NLOSS * 7 / 10);
}

static void loss_pattern_is_per_class_and_label(void **state)
{
	bool quiet[NLOSS], noisy[NLOSS];
	(void)state;
	loss_pattern(7, 0, false, quiet);
	loss_pattern(7, 2, true, noisy);   /* ARP + UDP noise, other port ids */
	assert_memory_equal(quiet, noisy, sizeof quiet);
	assert_in_range(count_true(quiet, NLOSS), NLOSS * 3 / 10, NLOSS * 7 / 10);
}

static void seed_is_reported(void **state)
{
	(void)state;
	struct netsw *sw = sw_new(0xdeadbeefcafeull);
	assert_true(netsw_seed(sw) == 0xdeadbeefcafeull);
	netsw_free(sw);
	netsw_free(NULL);
}

/* ---- timing ------------------------------------------------------------------ */

static void latency_delays_delivery(void **state)
{
	struct trio t;
	uint8_t f[256];
	(void)state;
	trio_open(&t, 1, false);
	set_link(t.sw, t.a, t.b, (struct netsw_link){ .latency_ms = 50 });
	int64_t t0 = mono_now_ns();
	send_tagged(t.fa, MAC_B, MAC_A, 1, 64);
	assert_int_equal(recv_frame(t.fb, f, sizeof f, WAIT_MS), 64);
	int64_t dt = mono_now_ns() - t0;
	assert_true(dt >= 50 * 1000000ll);
	assert_true(dt < 1500 * 1000000ll);
	assert_int_equal(tag_of(f), 1);
	trio_close(&t);
}

static void bps_serialises_frames(void **state)
{
	struct trio t;
	uint8_t f[2048];
	(void)state;
	trio_open(&t, 1, false);
	set_link(t.sw, t.a, t.b, (struct netsw_link){ .bps = 1000000 });
	int64_t t0 = mono_now_ns();
	for (uint32_t i = 0; i < 10; i++)
		send_tagged(t.fa, MAC_B, MAC_A, i, 1250);   /* 10 ms each */
	for (uint32_t i = 0; i < 10; i++) {
		assert_int_equal(recv_frame(t.fb, f, sizeof f, WAIT_MS), 1250);
		assert_int_equal(tag_of(f), i);
	}
	int64_t dt = mono_now_ns() - t0;
	assert_true(dt >= 90 * 1000000ll);
	assert_true(dt < 2000 * 1000000ll);
	trio_close(&t);
}

static void jitter_never_reorders(void **state)
{
	struct trio t;
	(void)state;
	trio_open(&t, 3, false);
	set_link(t.sw, t.a, t.b, (struct netsw_link){ .latency_ms = 1, .jitter_ms = 20 });
	for (uint32_t i = 0; i < 100; i++)
		send_tagged(t.fa, MAC_B, MAC_A, i, 64);
	for (uint32_t i = 0; i < 100; i++)
		expect_tag(t.fb, i);
	trio_close(&t);
}

/* ---- counters, limits, errors --------------------------------------------- */

static void counters_are_the_guests_view(void **state)
{
	struct trio t;
	struct netsw_stats st;
	(void)state;
	trio_open(&t, 1, false);
	set_link(t.sw, t.a, t.c, (struct netsw_link){ .blocked = true });
	send_tagged(t.fa, MAC_B, MAC_A, 1, 60);
	send_tagged(t.fa, MAC_B, MAC_A, 2, 100);
	send_tagged(t.fa, MAC_B, MAC_A, 3, 200);
	send_tagged(t.fa, BCAST, MAC_A, 4, 64);   /* b yes, c blocked */
	for (uint32_t i = 1; i <= 4; i++)
		expect_tag(t.fb, i);
	send_tagged(t.fb, MAC_A, MAC_B, 5, 80);
	expect_tag(t.fa, 5);
	struct netsw_counters a = ctr(t.sw, t.a), b = ctr(t.sw, t.b), c = ctr(t.sw, t.c);
	assert_int_equal(a.tx_packets, 4);
	assert_int_equal(a.tx_bytes, 60 + 100 + 200 + 64);
	assert_int_equal(a.rx_packets, 1);
	assert_int_equal(a.rx_bytes, 80);
	assert_int_equal(a.dropped, 1);
	assert_int_equal(a.errors, 0);
	assert_int_equal(b.rx_packets, 4);
	assert_int_equal(b.rx_bytes, 60 + 100 + 200 + 64);
	assert_int_equal(b.tx_packets, 1);
	assert_int_equal(b.tx_bytes, 80);
	assert_int_equal(c.rx_packets + c.tx_packets + c.dropped + c.errors, 0);
	netsw_stats(t.sw, &st);
	assert_int_equal(st.frames, 5);
	assert_int_equal(st.bytes, 60 + 100 + 200 + 64 + 80);
	assert_int_equal(st.deliveries, 5);
	assert_true(st.cpu_ns > 0);
	trio_close(&t);
}

static void bad_sizes_are_errors(void **state)
{
	struct trio t;
	static uint8_t big[NETSW_FRAME_MAX + 1];
	(void)state;
	trio_open(&t, 1, false);
	send_raw(t.fa, (const uint8_t *)"0123456789", 10);
	mkframe(big, sizeof big, BCAST, MAC_A, ET_TEST, 0, 1);
	send_raw(t.fa, big, sizeof big);
	send_tagged(t.fa, BCAST, MAC_A, 2, 64);
	expect_tag(t.fb, 2);                      /* neither got through */
	struct netsw_counters a = ctr(t.sw, t.a);
	assert_int_equal(a.errors, 2);
	assert_int_equal(a.tx_packets, 1);
	/* the largest frame passes */
	mkframe(big, NETSW_FRAME_MAX, MAC_B, MAC_A, ET_TEST, 0, 3);
	send_raw(t.fa, big, NETSW_FRAME_MAX);
	assert_int_equal(recv_frame(t.fb, big, sizeof big, WAIT_MS), NETSW_FRAME_MAX);
	assert_int_equal(tag_of(big), 3);
	trio_close(&t);
}

/* The guest stops reading: frames wait for POLLOUT in the pending list
 * (not dropped) up to the link's bound, then tail drop; all in order. */
static void full_socket_delays_then_bounds(void **state)
{
	struct trio t;
	uint8_t f[2048];
	uint32_t n = 0;
	(void)state;
	trio_open(&t, 1, false);
	/* send until the switch starts dropping (socket buffer + bound full) */
	while (n < 50000) {
		for (int k = 0; k < 200; k++, n++)
			send_tagged(t.fa, MAC_B, MAC_A, n, 1400);
		wait_tx(t.sw, t.a, n);
		if (ctr(t.sw, t.a).dropped)
			break;
	}
	uint64_t dropped = ctr(t.sw, t.a).dropped;
	uint64_t in_socket = ctr(t.sw, t.b).rx_packets;
	assert_true(dropped > 0);
	assert_true(in_socket + dropped < n);     /* the rest is pending */
	for (uint32_t i = 0; i < n - dropped; i++) {
		assert_int_equal(recv_frame(t.fb, f, sizeof f, WAIT_MS), 1400);
		assert_int_equal(tag_of(f), i);       /* a prefix: tail drop */
	}
	assert_int_equal(ctr(t.sw, t.b).rx_packets, n - dropped);
	/* bounded: what was pending fits NETSW_QUEUE_MAX */
	assert_true((n - dropped - in_socket) * 1400 <= NETSW_QUEUE_MAX);
	trio_close(&t);
}

/* A slow link fills its queue: tail drop, and netsw_free frees the rest. */
static void slow_link_queue_is_bounded(void **state)
{
	struct trio t;
	const uint32_t n = 1000;
	(void)state;
	trio_open(&t, 1, false);
	set_link(t.sw, t.a, t.b, (struct netsw_link){ .bps = 100000 });
	for (uint32_t i = 0; i < n; i++)
		send_tagged(t.fa, MAC_B, MAC_A, i, 1400);
	wait_tx(t.sw, t.a, n);
	uint64_t dropped = ctr(t.sw, t.a).dropped;
	assert_true(dropped > 0 && dropped < n);
	assert_true((n - dropped) * 1400 <= NETSW_QUEUE_MAX + 16 * 1400);   /* + released meanwhile */
	expect_tag(t.fb, 0);                      /* 112 ms at 100 kbit/s */
	trio_close(&t);
}

static void dead_guest_is_counted_not_spun_on(void **state)
{
	struct trio t;
	struct netsw_stats s1, s2;
	(void)state;
	trio_open(&t, 1, false);
	close(t.fc);
	send_tagged(t.fa, BCAST, MAC_A, 1, 64);
	expect_tag(t.fb, 1);
	int64_t end = now_ms() + WAIT_MS;
	while (ctr(t.sw, t.c).errors < 1) {
		assert_true(now_ms() < end);
		usleep(1000);
	}
	netsw_stats(t.sw, &s1);
	usleep(200 * 1000);
	netsw_stats(t.sw, &s2);
	assert_true(s2.cpu_ns - s1.cpu_ns < 100 * 1000000ull);
	t.fc = -1;
	netsw_free(t.sw);
	close(t.fa);
	close(t.fb);
}

static void remove_port(void **state)
{
	struct trio t;
	struct netsw_counters c;
	(void)state;
	trio_open(&t, 1, false);
	set_link(t.sw, t.a, t.b, (struct netsw_link){ .latency_ms = 1000 });
	send_tagged(t.fa, MAC_B, MAC_A, 1, 64);   /* queued for b */
	wait_tx(t.sw, t.a, 1);
	assert_int_equal(netsw_port_remove(t.sw, t.b, err, sizeof err), 0);
	assert_int_equal(send(t.fb, "x", 1, MSG_DONTWAIT | MSG_NOSIGNAL), -1);
	send_tagged(t.fa, BCAST, MAC_A, 2, 64);
	expect_tag(t.fc, 2);
	err[0] = 0;
	assert_int_equal(netsw_counters(t.sw, t.b, &c, err, sizeof err), -1);
	assert_true(strstr(err, "no port") != NULL);
	assert_int_equal(netsw_port_remove(t.sw, t.b, err, sizeof err), -1);
	struct netsw_link l = { 0 };
	assert_int_equal(netsw_link_set(t.sw, t.a, t.b, &l, err, sizeof err), -1);
	int fd;
	int d = port(t.sw, "b", MAC_B, &fd);
	assert_true(d > t.c);                     /* ids are never reused */
	send_tagged(t.fa, MAC_B, MAC_A, 3, 64);
	expect_tag(fd, 3);                        /* the old link's delay went with it */
	close(fd);
	trio_close(&t);
}

static void adopt_an_existing_socket(void **state)
{
	struct trio t;
	int sv[2], pp[2];
	(void)state;
	trio_open(&t, 1, false);
	assert_int_equal(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv), 0);
	static const uint8_t MAC_D[6] = { 0x02, 0, 0, 0, 0, 0x0d };
	int d = netsw_port_adopt(t.sw, "d", MAC_D, sv[0], err, sizeof err);
	assert_true(d > t.c);
	send_tagged(t.fa, MAC_D, MAC_A, 1, 64);
	expect_tag(sv[1], 1);
	send_tagged(sv[1], BCAST, MAC_D, 2, 64);
	expect_tag(t.fa, 2);
	assert_int_equal(netsw_port_remove(t.sw, d, err, sizeof err), 0);   /* closes sv[0] */
	close(sv[1]);
	/* not a datagram socket: refused, and the fd is closed all the same */
	assert_int_equal(pipe(pp), 0);
	err[0] = 0;
	assert_int_equal(netsw_port_adopt(t.sw, "e", NULL, pp[0], err, sizeof err), -1);
	assert_true(strstr(err, "datagram") != NULL);
	assert_int_equal(fcntl(pp[0], F_GETFD), -1);
	close(pp[1]);
	trio_close(&t);
}

static void link_set_validates(void **state)
{
	struct trio t;
	(void)state;
	trio_open(&t, 1, false);
	struct netsw_link bad[] = {
		{ .drop_pct = 101 }, { .drop_pct = -1 }, { .latency_ms = -5 },
		{ .jitter_ms = NAN }, { .latency_ms = INFINITY },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		err[0] = 0;
		assert_int_equal(netsw_link_set(t.sw, t.a, t.b, &bad[i], err, sizeof err), -1);
		assert_true(err[0] != 0);
	}
	struct netsw_link ok = { .drop_pct = 100 };
	assert_int_equal(netsw_link_set(t.sw, t.a, t.a, &ok, err, sizeof err), -1);
	assert_int_equal(netsw_link_set(t.sw, t.a, 99, &ok, err, sizeof err), -1);
	assert_int_equal(netsw_link_set(t.sw, 99, t.a, &ok, err, sizeof err), -1);
	assert_int_equal(netsw_port_enable(t.sw, 99, false, err, sizeof err), -1);
	assert_int_equal(netsw_capture_open(t.sw, 99, err, sizeof err), -1);
	trio_close(&t);
}

/* ---- capture ------------------------------------------------------------- */

/* Everything the capture reader gets until EOF (which must come). */
static size_t read_all(int fd, uint8_t *buf, size_t cap)
{
	size_t len = 0;
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		assert_int_equal(poll(&p, 1, WAIT_MS), 1);
		ssize_t n = read(fd, buf + len, cap - len);
		assert_true(n >= 0);
		if (n == 0)
			return len;
		len += (size_t)n;
		assert_true(len < cap);
	}
}

static uint32_t u32_at(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

static uint16_t u16_at(const uint8_t *p)
{
	uint16_t v;
	memcpy(&v, p, 2);
	return v;
}

/* Check the global header; the records' tags and lengths into tags/lens.
 * Returns the number of records. */
static int parse_pcap(const uint8_t *b, size_t len, uint32_t *tags, uint32_t *lens, int max)
{
	assert_true(len >= 24);
	assert_int_equal(u32_at(b), 0xa1b2c3d4);
	assert_int_equal(u16_at(b + 4), 2);
	assert_int_equal(u16_at(b + 6), 4);
	assert_int_equal(u32_at(b + 16), 65535);
	assert_int_equal(u32_at(b + 20), 1);
	size_t off = 24;
	int n = 0;
	while (off < len) {
		assert_true(off + 16 <= len && n < max);
		uint32_t incl = u32_at(b + off + 8), orig = u32_at(b + off + 12);
		assert_int_equal(incl, orig);
		assert_true(u32_at(b + off) > 1600000000u);   /* CLOCK_REALTIME */
		assert_true(u32_at(b + off + 4) < 1000000u);
		assert_true(off + 16 + incl <= len);
		tags[n] = tag_of(b + off + 16);
		lens[n] = incl;
		n++;
		off += 16 + incl;
	}
	return n;
}

static void capture_whole_switch(void **state)
{
	struct trio t;
	static uint8_t buf[1 << 16];
	uint32_t tags[8], lens[8];
	(void)state;
	trio_open(&t, 1, false);
	int cap = netsw_capture_open(t.sw, -1, err, sizeof err);
	assert_true(cap >= 0);
	set_link(t.sw, t.a, t.c, (struct netsw_link){ .blocked = true });
	send_tagged(t.fa, BCAST, MAC_A, 1, 60);   /* recorded once, on entry */
	expect_tag(t.fb, 1);
	send_tagged(t.fb, MAC_C, MAC_B, 2, 61);
	expect_tag(t.fc, 2);
	send_tagged(t.fa, MAC_C, MAC_A, 3, 1500); /* blocked: still entered */
	wait_tx(t.sw, t.a, 2);
	netsw_free(t.sw);                         /* the reader sees EOF */
	size_t len = read_all(cap, buf, sizeof buf);
	close(cap);
	assert_int_equal(parse_pcap(buf, len, tags, lens, 8), 3);
	assert_int_equal(tags[0], 1);
	assert_int_equal(lens[0], 60);
	assert_int_equal(tags[1], 2);
	assert_int_equal(lens[1], 61);
	assert_int_equal(tags[2], 3);
	assert_int_equal(lens[2], 1500);
	close(t.fa);
	close(t.fb);
	close(t.fc);
}

static void capture_one_port(void **state)
{
	struct trio t;
	static uint8_t buf[1 << 16];
	uint32_t tags[8], lens[8];
	(void)state;
	trio_open(&t, 1, false);
	int cap = netsw_capture_open(t.sw, t.a, err, sizeof err);
	assert_true(cap >= 0);
	send_tagged(t.fb, MAC_C, MAC_B, 1, 64);   /* not a's */
	expect_tag(t.fc, 1);
	send_tagged(t.fa, MAC_B, MAC_A, 2, 70);   /* a sends */
	expect_tag(t.fb, 2);
	send_tagged(t.fc, MAC_A, MAC_C, 3, 80);   /* delivered to a */
	expect_tag(t.fa, 3);
	send_tagged(t.fb, BCAST, MAC_B, 4, 90);   /* delivered to a */
	expect_tag(t.fa, 4);
	expect_tag(t.fc, 4);
	assert_int_equal(netsw_port_remove(t.sw, t.a, err, sizeof err), 0);
	size_t len = read_all(cap, buf, sizeof buf);   /* ends with the port */
	close(cap);
	assert_int_equal(parse_pcap(buf, len, tags, lens, 8), 3);
	assert_int_equal(tags[0], 2);
	assert_int_equal(lens[0], 70);
	assert_int_equal(tags[1], 3);
	assert_int_equal(lens[1], 80);
	assert_int_equal(tags[2], 4);
	assert_int_equal(lens[2], 90);
	trio_close(&t);
}

static void capture_reader_may_leave(void **state)
{
	struct trio t;
	(void)state;
	trio_open(&t, 1, false);
	int cap = netsw_capture_open(t.sw, -1, err, sizeof err);
	assert_true(cap >= 0);
	send_tagged(t.fa, BCAST, MAC_A, 1, 64);
	expect_tag(t.fb, 1);
	close(cap);
	for (uint32_t i = 2; i < 50; i++) {
		send_tagged(t.fa, BCAST, MAC_A, i, 1000);
		expect_tag(t.fb, i);
	}
	trio_close(&t);
}

/* ---- uplink ------------------------------------------------------------ */

#define NET   "198.18.3.0"
#define HOST  "198.18.3.254"
#define DNS   "198.18.3.253"
#define GUEST "198.18.3.1"

static uint32_t ip(const char *s)
{
	struct in_addr a;
	assert_int_equal(inet_pton(AF_INET, s, &a), 1);
	return a.s_addr;
}

static struct netsw_uplink_cfg uplink_cfg(void)
{
	return (struct netsw_uplink_cfg){ .net = ip(NET), .mask = ip("255.255.255.0"),
	                                  .host = ip(HOST), .dns = ip(DNS) };
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Internet checksum over the sum so far plus p[0..n). */
static uint16_t csum(uint32_t sum, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i + 1 < n; i += 2)
		sum += get16(p + i);
	if (n & 1)
		sum += (uint32_t)p[n - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static size_t arp_request(uint8_t *f, const uint8_t *mac, uint32_t sip, uint32_t tip)
{
	memset(f, 0, 60);
	memcpy(f, BCAST, 6);
	memcpy(f + 6, mac, 6);
	put16(f + 12, ET_ARP);
	put16(f + 14, 1);        /* Ethernet */
	put16(f + 16, ET_IPV4);
	f[18] = 6;
	f[19] = 4;
	put16(f + 20, 1);        /* request */
	memcpy(f + 22, mac, 6);
	memcpy(f + 28, &sip, 4);
	memcpy(f + 38, &tip, 4);
	return 60;
}

/* A TCP segment (no options) of guest (smac, sip:sport) to (dmac, dip:dport). */
struct seg {
	const uint8_t *dmac, *smac;
	uint32_t sip, dip;
	uint16_t sport, dport;
	uint32_t seq, ack;
	uint8_t flags;
	const char *data;
};

static size_t tcp_seg(uint8_t *f, const struct seg *s)
{
	size_t dlen = s->data ? strlen(s->data) : 0;
	uint8_t *iph = f + 14, *th = iph + 20;
	memset(f, 0, 14 + 40);
	memcpy(f, s->dmac, 6);
	memcpy(f + 6, s->smac, 6);
	put16(f + 12, ET_IPV4);
	iph[0] = 0x45;
	put16(iph + 2, (uint16_t)(40 + dlen));
	put16(iph + 4, 1);
	put16(iph + 6, 0x4000);  /* DF */
	iph[8] = 64;
	iph[9] = 6;
	memcpy(iph + 12, &s->sip, 4);
	memcpy(iph + 16, &s->dip, 4);
	put16(iph + 10, csum(0, iph, 20));
	put16(th, s->sport);
	put16(th + 2, s->dport);
	put16(th + 4, (uint16_t)(s->seq >> 16));
	put16(th + 6, (uint16_t)s->seq);
	put16(th + 8, (uint16_t)(s->ack >> 16));
	put16(th + 10, (uint16_t)s->ack);
	th[12] = 5 << 4;
	th[13] = s->flags;
	put16(th + 14, 65535);
	memcpy(th + 20, s->data ? s->data : "", dlen);
	uint8_t pseudo[12];
	memcpy(pseudo, &s->sip, 4);
	memcpy(pseudo + 4, &s->dip, 4);
	pseudo[8] = 0;
	pseudo[9] = 6;
	put16(pseudo + 10, (uint16_t)(20 + dlen));
	uint32_t sum = 0;
	for (int i = 0; i < 12; i += 2)
		sum += get16(pseudo + i);
	put16(th + 16, csum(sum, th, 20 + dlen));
	return 14 + 40 + dlen;
}

/* The next TCP segment from HOST on fd that has a flag of want (other
 * frames, e.g. slirp's ARP or bare ACKs, are skipped); its TCP header. */
static const uint8_t *next_tcp(int fd, uint8_t *f, size_t cap, uint8_t want, size_t *plen)
{
	int64_t end = now_ms() + WAIT_MS;
	while (now_ms() < end) {
		ssize_t n = recv_frame(fd, f, cap, WAIT_MS);
		assert_true(n > 0);
		if (get16(f + 12) != ET_IPV4 || f[14 + 9] != 6)
			continue;
		size_t ihl = (size_t)(f[14] & 15) * 4;
		const uint8_t *th = f + 14 + ihl;
		size_t thl = (size_t)(th[12] >> 4) * 4;
		*plen = get16(f + 14 + 2) - ihl - thl;
		if (!(th[13] & want) && !(want == 0 && *plen))
			continue;
		return th;
	}
	fail_msg("no TCP segment with flags %#x", want);
	return NULL;
}

/* A listener on 127.0.0.1, ephemeral port. */
static int listener(uint16_t *port_out)
{
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(s >= 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof sa;
	assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof sa), 0);
	assert_int_equal(listen(s, 4), 0);
	assert_int_equal(getsockname(s, (struct sockaddr *)&sa, &sl), 0);
	*port_out = ntohs(sa.sin_port);
	return s;
}

static const uint8_t HOST_BYTES[4] = { 198, 18, 3, 254 };

static void uplink_arp_and_tcp_to_host_loopback(void **state)
{
	static const uint8_t GMAC[6] = { 0x02, 0x42, 0, 0, 0, 1 };
	uint8_t f[2048], smac[6];
	uint16_t lport;
	(void)state;
	struct netsw *sw = sw_new(1);
	int fg;
	int g = port(sw, "g", GMAC, &fg);
	struct netsw_uplink_cfg cfg = uplink_cfg();
	int up = netsw_uplink_add(sw, &cfg, err, sizeof err);
	assert_true(up > g);
	assert_int_equal(netsw_uplink_add(sw, &cfg, err, sizeof err), -1);
	int cap = netsw_capture_open(sw, up, err, sizeof err);
	assert_true(cap >= 0);

	/* ARP: who has HOST? */
	send_raw(fg, f, arp_request(f, GMAC, ip(GUEST), ip(HOST)));
	ssize_t n = recv_frame(fg, f, sizeof f, WAIT_MS);
	assert_true(n >= 42);
	assert_int_equal(get16(f + 12), ET_ARP);
	assert_int_equal(get16(f + 20), 2);                 /* reply */
	assert_memory_equal(f, GMAC, 6);
	assert_memory_equal(f + 28, HOST_BYTES, 4);
	assert_memory_equal(f + 32, GMAC, 6);
	memcpy(smac, f + 22, 6);
	assert_memory_equal(f + 6, smac, 6);

	/* TCP SYN to HOST:lport reaches 127.0.0.1:lport; slirp answers SYN-ACK */
	int ls = listener(&lport);
	struct seg s = { .dmac = smac, .smac = GMAC, .sip = ip(GUEST), .dip = ip(HOST),
	                 .sport = 40000, .dport = lport, .seq = 1000, .flags = 0x02 };
	send_raw(fg, f, tcp_seg(f, &s));
	size_t plen;
	const uint8_t *th = next_tcp(fg, f, sizeof f, 0x02, &plen);
	assert_memory_equal(f + 14 + 12, HOST_BYTES, 4);
	assert_int_equal(get16(th), lport);
	assert_int_equal(get16(th + 2), 40000);
	assert_int_equal(th[13] & 0x12, 0x12);              /* SYN|ACK */
	assert_int_equal(get32(th + 8), 1001);
	uint32_t hseq = get32(th + 4) + 1;
	struct pollfd p = { .fd = ls, .events = POLLIN };
	assert_int_equal(poll(&p, 1, WAIT_MS), 1);
	int cs = accept(ls, NULL, NULL);
	assert_true(cs >= 0);

	/* data both ways: guest "ping" -> host socket, host "pong" -> guest */
	s.seq = 1001;
	s.ack = hseq;
	s.flags = 0x18;                                     /* PSH|ACK */
	s.data = "ping";
	send_raw(fg, f, tcp_seg(f, &s));
	char got[8] = "";
	p.fd = cs;
	assert_int_equal(poll(&p, 1, WAIT_MS), 1);
	assert_int_equal(read(cs, got, sizeof got), 4);
	assert_memory_equal(got, "ping", 4);
	assert_int_equal(write(cs, "pong", 4), 4);
	th = next_tcp(fg, f, sizeof f, 0, &plen);           /* first with data */
	assert_int_equal(plen, 4);
	assert_memory_equal(th + (th[12] >> 4) * 4, "pong", 4);
	assert_int_equal(get32(th + 4), hseq);
	struct netsw_counters cu = ctr(sw, up);
	assert_true(cu.rx_packets >= 2 && cu.tx_packets >= 2);

	netsw_free(sw);
	close(cs);
	close(ls);
	close(fg);

	/* the uplink's capture: the question (delivered to slirp) comes
	 * before slirp's answer (sent from inside slirp_input) */
	static uint8_t buf[1 << 16];
	size_t len = read_all(cap, buf, sizeof buf);
	close(cap);
	assert_true(len >= 24 + 2 * (16 + 42));
	const uint8_t *r1 = buf + 24, *r2 = r1 + 16 + u32_at(r1 + 8);
	assert_int_equal(get16(r1 + 16 + 12), ET_ARP);
	assert_int_equal(get16(r1 + 16 + 20), 1);
	assert_int_equal(get16(r2 + 16 + 12), ET_ARP);
	assert_int_equal(get16(r2 + 16 + 20), 2);
}

static void uplink_config_is_checked(void **state)
{
	(void)state;
	struct netsw *sw = sw_new(1);
	struct netsw_uplink_cfg cfg = uplink_cfg();
	cfg.host = ip("10.0.0.1");
	err[0] = 0;
	assert_int_equal(netsw_uplink_add(sw, &cfg, err, sizeof err), -1);
	assert_true(err[0] != 0);
	cfg = uplink_cfg();
	cfg.mask = ip("255.0.255.0");
	assert_int_equal(netsw_uplink_add(sw, &cfg, err, sizeof err), -1);
	cfg = uplink_cfg();
	int up = netsw_uplink_add(sw, &cfg, err, sizeof err);
	assert_true(up >= 0);
	assert_int_equal(netsw_port_remove(sw, up, err, sizeof err), 0);
	assert_true(netsw_uplink_add(sw, &cfg, err, sizeof err) > up);
	netsw_free(sw);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(unicast_after_learning),
		cmocka_unit_test(preset_mac_needs_no_learning),
		cmocka_unit_test(broadcast_floods_but_not_back),
		cmocka_unit_test(disabled_port_neither_sends_nor_receives),
		cmocka_unit_test(blocked_link_drops_one_direction),
		cmocka_unit_test(drop_pct_is_deterministic),
		cmocka_unit_test(loss_pattern_is_per_class_and_label),
		cmocka_unit_test(seed_is_reported),
		cmocka_unit_test(latency_delays_delivery),
		cmocka_unit_test(bps_serialises_frames),
		cmocka_unit_test(jitter_never_reorders),
		cmocka_unit_test(counters_are_the_guests_view),
		cmocka_unit_test(bad_sizes_are_errors),
		cmocka_unit_test(full_socket_delays_then_bounds),
		cmocka_unit_test(slow_link_queue_is_bounded),
		cmocka_unit_test(dead_guest_is_counted_not_spun_on),
		cmocka_unit_test(remove_port),
		cmocka_unit_test(adopt_an_existing_socket),
		cmocka_unit_test(link_set_validates),
		cmocka_unit_test(capture_whole_switch),
		cmocka_unit_test(capture_one_port),
		cmocka_unit_test(capture_reader_may_leave),
		cmocka_unit_test(uplink_arp_and_tcp_to_host_loopback),
		cmocka_unit_test(uplink_config_is_checked),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
