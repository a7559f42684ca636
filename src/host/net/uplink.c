/* uplink.c — the switch's uplink port: a libslirp (4.7) stack, NAT from
 * the bridge's subnet to the host, run inside the switch thread
 * (netsw_priv.h has the interface, switch.h the model).
 *
 * Owns: the Slirp instance (and through it slirp's host sockets) and the
 * timers slirp asked for.
 *
 * Addressing (struct netsw_uplink_cfg): slirp answers ARP for cfg->host
 * (the gateway) and cfg->dns; TCP/UDP to cfg->host:PORT is slirp's alias
 * for the host's 127.0.0.1:PORT; cfg->dns forwards to the host's
 * resolver; anything else leaves through the host's sockets. IPv6 is off.
 * DHCP is off: the harness configures guests statically, and a DHCP
 * server would hand out addresses it also assigns. slirp learns a guest's
 * MAC from the guest's ARP traffic; its own MAC is 52:55 followed by the
 * IPv4 address it answers for.
 *
 * Calling sequence (all under the switch's mutex): uplink_new ->
 * { uplink_poll_fill -> [ppoll] -> uplink_poll_done | uplink_input }* ->
 * uplink_free. slirp calls back into this file (send_packet -> the
 * switch's rx function, timers, a no-op for fd registration: the switch
 * rebuilds its poll set every turn anyway).
 *
 * Errors: uplink_new reports a bad configuration or a slirp failure in
 * err; afterwards there is nothing to report: slirp's complaints about
 * guest misbehaviour (guest_error) are ignored, frames slirp cannot place
 * are its own business (TCP retransmits). */
#include "errbuf.h"
#include "net/netsw_priv.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include <slirp/libslirp.h>

/* One timer slirp created (timer_new). */
struct utimer {
	struct utimer *next;
	SlirpTimerCb cb;
	void *cb_opaque;
	int64_t expire_ms;          /* slirp's clock (ms); -1 = disarmed */
};

struct uplink {
	Slirp *slirp;
	netsw_uplink_rx_fn *rx;
	void *opaque;
	struct utimer *timers;
};

/* The add_poll / get_revents context of one fill / done pair. */
struct pollctx {
	struct netsw_pollset *ps;
	const struct netsw_pollset *cps;
	uint64_t tag;
};

/* ---- slirp callbacks ------------------------------------------------------ */

static ssize_t cb_send_packet(const void *buf, size_t len, void *opaque)
{
	struct uplink *u = opaque;
	u->rx(u->opaque, buf, len);
	return (ssize_t)len;
}

static void cb_guest_error(const char *msg, void *opaque)
{
	(void)msg;
	(void)opaque;
}

static int64_t cb_clock_get_ns(void *opaque)
{
	(void)opaque;
	return mono_now_ns();
}

static void *cb_timer_new(SlirpTimerCb cb, void *cb_opaque, void *opaque)
{
	struct uplink *u = opaque;
	struct utimer *t = calloc(1, sizeof *t);
	if (!t)
		return NULL;
	t->cb = cb;
	t->cb_opaque = cb_opaque;
	t->expire_ms = -1;
	t->next = u->timers;
	u->timers = t;
	return t;
}

static void cb_timer_free(void *timer, void *opaque)
{
	struct uplink *u = opaque;
	for (struct utimer **pp = &u->timers; *pp; pp = &(*pp)->next)
		if (*pp == timer) {
			*pp = (*pp)->next;
			free(timer);
			return;
		}
}

static void cb_timer_mod(void *timer, int64_t expire_ms, void *opaque)
{
	struct utimer *t = timer;
	(void)opaque;
	if (t)
		t->expire_ms = expire_ms < 0 ? 0 : expire_ms;
}

static void cb_poll_fd(int fd, void *opaque)
{
	(void)fd;
	(void)opaque;
}

static void cb_notify(void *opaque)
{
	(void)opaque;
}

static int cb_add_poll(int fd, int events, void *opaque)
{
	struct pollctx *c = opaque;
	short ev = 0;
	if (events & SLIRP_POLL_IN)
		ev |= POLLIN;
	if (events & SLIRP_POLL_OUT)
		ev |= POLLOUT;
	if (events & SLIRP_POLL_PRI)
		ev |= POLLPRI;
	if (events & SLIRP_POLL_ERR)
		ev |= POLLERR;
	if (events & SLIRP_POLL_HUP)
		ev |= POLLHUP;
	return netsw_pollset_add(c->ps, fd, ev, c->tag);
}

static int cb_get_revents(int idx, void *opaque)
{
	const struct pollctx *c = opaque;
	if (idx < 0 || (size_t)idx >= c->cps->n)
		return 0;
	short re = c->cps->fds[idx].revents;
	int r = 0;
	if (re & POLLIN)
		r |= SLIRP_POLL_IN;
	if (re & POLLOUT)
		r |= SLIRP_POLL_OUT;
	if (re & POLLPRI)
		r |= SLIRP_POLL_PRI;
	if (re & POLLERR)
		r |= SLIRP_POLL_ERR;
	if (re & POLLHUP)
		r |= SLIRP_POLL_HUP;
	return r;
}

static const SlirpCb callbacks = {
	.send_packet = cb_send_packet,
	.guest_error = cb_guest_error,
	.clock_get_ns = cb_clock_get_ns,
	.timer_new = cb_timer_new,
	.timer_free = cb_timer_free,
	.timer_mod = cb_timer_mod,
	.register_poll_fd = cb_poll_fd,
	.unregister_poll_fd = cb_poll_fd,
	.notify = cb_notify,
};

/* ---- configuration ---------------------------------------------------------- */

/* Is mask (network order) a non-empty prefix short of /31? */
static bool mask_ok(uint32_t mask)
{
	uint32_t m = ntohl(mask);
	return m && (~m & (~m + 1)) == 0 && (~m) >= 3;
}

/* Is a (network order) a host address inside net/mask? */
static bool host_in(uint32_t a, uint32_t net, uint32_t mask)
{
	uint32_t h = ntohl(a) & ~ntohl(mask);
	return (a & mask) == (net & mask) && h != 0 && h != ~ntohl(mask);
}

static int cfg_check(const struct netsw_uplink_cfg *cfg, char *err, size_t errlen)
{
	if (!cfg) {
		err_set(err, errlen, "no configuration");
		return -1;
	}
	if (!mask_ok(cfg->mask)) {
		err_set(err, errlen, "netmask is not a prefix of /1../30");
		return -1;
	}
	if (!host_in(cfg->host, cfg->net, cfg->mask) || !host_in(cfg->dns, cfg->net, cfg->mask) ||
	    cfg->host == cfg->dns) {
		err_set(err, errlen, "host and dns must be two host addresses inside the subnet");
		return -1;
	}
	return 0;
}

/* SlirpConfig for cfg (SLIRP_CONFIG_VERSION_MAX: 4 in libslirp 4.7). */
static void slirp_config(SlirpConfig *c, const struct netsw_uplink_cfg *cfg)
{
	uint32_t net = cfg->net & cfg->mask;
	memset(c, 0, sizeof *c);
	c->version = SLIRP_CONFIG_VERSION_MAX < 4 ? SLIRP_CONFIG_VERSION_MAX : 4;
	c->restricted = 0;
	c->in_enabled = true;
	c->vnetwork.s_addr = net;
	c->vnetmask.s_addr = cfg->mask;
	c->vhost.s_addr = cfg->host;
	c->vnameserver.s_addr = cfg->dns;
	/* unused (DHCP is off) but slirp wants one inside the subnet */
	c->vdhcp_start.s_addr = net | (htonl(100) & ~cfg->mask);
	c->in6_enabled = false;
	c->disable_host_loopback = false;
	c->disable_dhcp = true;
}

/* ---- interface (netsw_priv.h) ------------------------------------------------- */

struct uplink *uplink_new(const struct netsw_uplink_cfg *cfg, netsw_uplink_rx_fn *rx,
                          void *opaque, char *err, size_t errlen)
{
	SlirpConfig sc;
	if (cfg_check(cfg, err, errlen) < 0)
		return NULL;
	struct uplink *u = calloc(1, sizeof *u);
	if (!u) {
		err_set(err, errlen, "out of memory");
		return NULL;
	}
	u->rx = rx;
	u->opaque = opaque;
	slirp_config(&sc, cfg);
	u->slirp = slirp_new(&sc, &callbacks, u);
	if (!u->slirp) {
		err_set(err, errlen, "slirp_new failed");
		uplink_free(u);
		return NULL;
	}
	return u;
}

void uplink_free(struct uplink *u)
{
	if (!u)
		return;
	if (u->slirp)
		slirp_cleanup(u->slirp);   /* frees its timers through cb_timer_free */
	while (u->timers) {
		struct utimer *t = u->timers;
		u->timers = t->next;
		free(t);
	}
	free(u);
}

void uplink_input(struct uplink *u, const uint8_t *frame, size_t len)
{
	slirp_input(u->slirp, frame, (int)len);
}

void uplink_poll_fill(struct uplink *u, struct netsw_pollset *ps, uint64_t tag,
                      int64_t *timeout_ns)
{
	struct pollctx c = { .ps = ps, .cps = ps, .tag = tag };
	uint32_t ms = UINT32_MAX;
	slirp_pollfds_fill(u->slirp, &ms, cb_add_poll, &c);
	int64_t t = ms == UINT32_MAX ? -1 : (int64_t)ms * 1000000;
	int64_t now_ms = mono_now_ns() / 1000000;
	for (struct utimer *x = u->timers; x; x = x->next) {
		if (x->expire_ms < 0)
			continue;
		int64_t d = x->expire_ms > now_ms ? (x->expire_ms - now_ms) * 1000000 : 0;
		if (t < 0 || d < t)
			t = d;
	}
	if (t >= 0 && (*timeout_ns < 0 || t < *timeout_ns))
		*timeout_ns = t;
}

/* Fire one due timer (disarmed first: its callback may re-arm it, free
 * it or create others). false when none is due. */
static bool fire_one(struct uplink *u, int64_t now_ms)
{
	for (struct utimer *x = u->timers; x; x = x->next)
		if (x->expire_ms >= 0 && x->expire_ms <= now_ms) {
			x->expire_ms = -1;
			x->cb(x->cb_opaque);
			return true;
		}
	return false;
}

void uplink_poll_done(struct uplink *u, const struct netsw_pollset *ps, bool poll_failed)
{
	struct pollctx c = { .ps = NULL, .cps = ps, .tag = 0 };
	slirp_pollfds_poll(u->slirp, poll_failed ? 1 : 0, cb_get_revents, &c);
	int64_t now_ms = mono_now_ns() / 1000000;
	/* bounded: a timer re-armed for "now" waits for the next turn */
	for (int i = 0; i < 16 && fire_one(u, now_ms); i++)
		;
}
