/* netsw_priv.h — private to the switch (switch.c) and its uplink port
 * (uplink.c); nothing else includes it.
 *
 * The switch thread builds one poll set per loop turn (struct
 * netsw_pollset). The uplink adds slirp's sockets to it before the sleep
 * (uplink_poll_fill) and reads their revents after it (uplink_poll_done);
 * the switch hands the uplink the frames addressed to it (uplink_input)
 * and the uplink hands back the frames slirp emits through the rx callback
 * it was created with.
 *
 * Locking: every uplink_* call and every rx callback runs under the
 * switch's mutex (mostly in the switch thread; uplink_new/uplink_free in
 * the API caller). uplink.c takes no lock of its own. Sequence per loop
 * turn: uplink_poll_fill -> (mutex released, ppoll, mutex retaken) ->
 * uplink_poll_done, with nothing else touching slirp in between; frames
 * may reach uplink_input at any time under the mutex. */
#ifndef PROVIUM_NET_NETSW_PRIV_H
#define PROVIUM_NET_NETSW_PRIV_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/switch.h"

/* The descriptors one ppoll() waits on; tag[i] says whose fds[i] is. */
struct netsw_pollset {
	struct pollfd *fds;
	uint64_t *tag;
	size_t n, cap;
};

/* Append fd with events and tag; its index, or -1 (ENOMEM: not polled). */
int netsw_pollset_add(struct netsw_pollset *ps, int fd, short events, uint64_t tag);

/* Called by the uplink for each frame slirp sends towards the guests. */
typedef void netsw_uplink_rx_fn(void *opaque, const uint8_t *frame, size_t len);

struct uplink;

/* A slirp stack configured from cfg (validated here); frames it emits go
 * to rx(opaque, ...). -1 with err filled on a bad cfg or slirp failure. */
struct uplink *uplink_new(const struct netsw_uplink_cfg *cfg, netsw_uplink_rx_fn *rx,
                          void *opaque, char *err, size_t errlen);

/* slirp_cleanup (closes its host sockets) and free. NULL is fine. */
void uplink_free(struct uplink *u);

/* A frame from the switch to slirp (the uplink port's egress). */
void uplink_input(struct uplink *u, const uint8_t *frame, size_t len);

/* Before the sleep: add slirp's sockets to ps (tagged tag) and lower
 * *timeout_ns (relative, -1 = none) to slirp's next timer. */
void uplink_poll_fill(struct uplink *u, struct netsw_pollset *ps, uint64_t tag,
                      int64_t *timeout_ns);

/* After the sleep: slirp reads its sockets' revents from ps (the set the
 * last uplink_poll_fill filled) and runs its due timers. poll_failed when
 * ppoll returned an error. */
void uplink_poll_done(struct uplink *u, const struct netsw_pollset *ps, bool poll_failed);

#endif
