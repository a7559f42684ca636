/* switch.h — one user-space L2 switch per bridge (docs/decisions.md,
 * "Networking"). A switch owns a thread with its own poll loop, so frames
 * flow while the runner's Lua thread blocks on an agent op.
 *
 * Ports. A guest NIC is one end of a socketpair(AF_UNIX, SOCK_DGRAM): the
 * switch keeps one end, QEMU gets the other (-netdev dgram,local.type=fd)
 * and one datagram is one Ethernet frame. The uplink (libslirp, uplink.c)
 * is one more port served inside the switch thread. Ports have a label
 * (the VM name, "uplink" for the uplink) and an id (>= 0, never reused by
 * one switch).
 *
 * Forwarding. MAC learning (source MAC -> ingress port), plus the MAC a
 * port was created with; unknown unicast, broadcast and multicast flood to
 * every other enabled port. A disabled port (nic:disconnect) neither sends
 * nor receives. Each frame to each egress port goes through the link
 * (ingress -> egress) parameters, set by netsw_link_set:
 *
 *   blocked      drop (partitions, isolation)
 *   drop_pct     lose this percentage, decided by the seeded PRNG
 *   latency_ms   one-way delay (+ uniform jitter in [0, jitter_ms])
 *   bps          serialisation rate in bits/s (0 = unlimited): a frame of
 *                n bytes occupies the link for n*8/bps seconds, frames
 *                queue behind it (bounded, tail drop beyond
 *                NETSW_QUEUE_MAX bytes per link)
 *
 * A link never reorders its own frames (a frame is never released before
 * the previous one on the same link). Egress honours POLLOUT: a full
 * socket buffer delays frames, it does not drop them (up to the bound).
 * New link parameters apply to frames admitted afterwards: frames already
 * in flight (latency, serialisation) keep their schedule, so blocking a
 * link does not recall them. Disabling or removing a port drops every
 * frame queued to or from it.
 *
 * Randomness is deterministic: the draw for a frame on link (a -> b) of
 * traffic class c (ethertype, and the IP protocol for IPv4/IPv6) is
 * splitmix64(seed, hash(label a, label b, c), n) where n counts that
 * link+class's frames. Labels, not port ids, so the stream does not depend
 * on attach order; classes, so background IPv6/ARP noise does not shift
 * the loss pattern of an ICMP or TCP flow. Every frame offered to a link
 * draws (n advances) whether or not the link is impaired or blocked, so
 * the pattern depends only on the seed and the traffic.
 *
 * Capture. netsw_capture_open returns the read end of a stream socket
 * carrying classic pcap (magic a1b2c3d4, v2.4, snaplen 65535, linktype 1
 * Ethernet): the global header, then one record per frame. A bridge-wide
 * capture (port -1) records every frame as it enters the switch; a port
 * capture records the frames that port sends and the frames delivered to
 * it. The switch never blocks on a capture: it buffers up to
 * NETSW_CAPTURE_BUF bytes per capture and beyond that drops whole records.
 * The capture ends when the reader closes its end (or the switch is
 * freed, or a port capture's port removed: the reader sees EOF).
 *
 * Peers. *peer_fd is blocking (QEMU makes its end non-blocking itself).
 * Once a port is removed, sends on its peer fail (EPIPE or ECONNREFUSED);
 * a peer that closes its end makes the switch's sends to it fail, counted
 * in that port's errors (the port stays until removed).
 *
 * The uplink (uplink.c) answers ARP for cfg->host and cfg->dns with MAC
 * 52:55:<IPv4 address>, learns guests' MACs from their ARP, does no DHCP
 * (guests are configured statically) and no IPv6.
 *
 * Threading. Every function here is called from the owning (runner) thread
 * and is safe while the switch thread runs: changes are made under the
 * switch's mutex and the thread is woken through an eventfd. All functions
 * return 0 (or an id / fd >= 0) on success, -1 with err filled on failure.
 */
#ifndef PROVIUM_NET_SWITCH_H
#define PROVIUM_NET_SWITCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NETSW_QUEUE_MAX   (1u << 20)   /* bytes queued per link */
#define NETSW_CAPTURE_BUF (8u << 20)   /* bytes buffered per capture */
#define NETSW_FRAME_MAX   65536u

struct netsw;

struct netsw_link {
	bool blocked;
	double drop_pct;      /* 0..100 */
	double latency_ms;    /* >= 0 */
	double jitter_ms;     /* >= 0 */
	uint64_t bps;         /* 0 = unlimited */
};

/* From the port's (the guest's) point of view: rx = frames the switch
 * delivered to the port (handed to its socket or to slirp), tx = frames
 * the port sent into the switch while enabled and of a valid size. */
struct netsw_counters {
	uint64_t rx_bytes, rx_packets, tx_bytes, tx_packets;
	uint64_t dropped;     /* frames from this port lost to links/queues, one
	                         per lost copy (a broadcast can lose several);
	                         also unicast to a disabled port and every frame
	                         sent while this port was disabled */
	uint64_t errors;      /* send/recv errors on the port's socket, and
	                         frames under 14 or over NETSW_FRAME_MAX bytes */
};

struct netsw_stats {
	uint64_t frames;      /* frames received from ports (any size, any
	                         port state; bytes likewise) */
	uint64_t bytes;
	uint64_t deliveries;  /* frames sent to ports */
	uint64_t cpu_ns;      /* the switch thread's CPU time */
};

/* Uplink addressing (IPv4, network byte order). */
struct netsw_uplink_cfg {
	uint32_t net, mask;   /* the bridge's subnet, e.g. 198.18.3.0/24 */
	uint32_t host;        /* the gateway address guests route through (.254) */
	uint32_t dns;         /* slirp's DNS forwarder (.253) */
};

/* A new switch with its thread running. name is for messages. */
struct netsw *netsw_new(const char *name, uint64_t seed, char *err, size_t errlen);

/* Stop the thread, close every port and capture. NULL is fine. */
void netsw_free(struct netsw *sw);

/* A new port for a guest NIC. *peer_fd is the other end of the
 * socketpair (O_CLOEXEC; the caller owns it and hands it to QEMU).
 * mac may be NULL. Returns the port id. */
int netsw_port_add(struct netsw *sw, const char *label, const uint8_t mac[6],
                   int *peer_fd, char *err, size_t errlen);

/* A new port on an existing socket end (a SOCK_DGRAM socketpair end
 * whose peer QEMU holds, e.g. a VM's NIC socket: vmm.h nic_add). The
 * switch takes ownership of fd (closed on failure too) and makes it
 * non-blocking. Returns the port id. */
int netsw_port_adopt(struct netsw *sw, const char *label, const uint8_t mac[6], int fd,
                     char *err, size_t errlen);

/* The uplink port: libslirp NAT to the host (uplink.c). Connections to
 * cfg->host reach the host's loopback. At most one per switch. */
int netsw_uplink_add(struct netsw *sw, const struct netsw_uplink_cfg *cfg,
                     char *err, size_t errlen);

/* Remove a port (its socket end is closed, its queued frames dropped,
 * its learned MACs forgotten). */
int netsw_port_remove(struct netsw *sw, int port, char *err, size_t errlen);

/* Enable or disable a port (disabled: drops everything from and to it). */
int netsw_port_enable(struct netsw *sw, int port, bool up, char *err, size_t errlen);

/* Set the parameters of link from -> to (both port ids; from != to).
 * Every link starts as all-zero (open, unimpaired). */
int netsw_link_set(struct netsw *sw, int from, int to, const struct netsw_link *l,
                   char *err, size_t errlen);

int netsw_counters(struct netsw *sw, int port, struct netsw_counters *c,
                   char *err, size_t errlen);

void netsw_stats(struct netsw *sw, struct netsw_stats *st);

/* A capture of the whole switch (port -1) or one port: returns the read
 * end (O_CLOEXEC, blocking) of a SOCK_STREAM socketpair; the caller owns
 * and closes it. */
int netsw_capture_open(struct netsw *sw, int port, char *err, size_t errlen);

/* The seed this switch draws with. */
uint64_t netsw_seed(const struct netsw *sw);

#endif
