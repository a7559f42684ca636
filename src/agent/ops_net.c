/* ops_net.c — net_setup: one NIC's IPv4 address and link state, the
 * default route, /etc/resolv.conf and the provium-managed block of
 * /etc/hosts, with nothing but ioctls and file I/O (the guest may have no
 * ip(8), and the agent execs nothing for this).
 *
 * A request goes through three stages:
 *
 *     parse (all fields checked; bad_request before anything changes)
 *       |
 *       v
 *     find the NIC by MAC --not there yet--> PENDING (polled every
 *       |                                    NET_POLL_MS by net_tick,
 *       | found, or no mac given             until wait_ms runs out:
 *       v                                    ENODEV naming the MAC)
 *     apply: address, link, default route, resolv.conf, hosts block
 *
 * Waiting for a hotplugged NIC never blocks the server loop: a pending
 * request sits in a list the loop ticks (like tails). Pending requests
 * belong to the connection: a disconnect drops them unapplied, since
 * their reply could not be delivered anyway.
 *
 * Applying is not transactional: the first failing step answers with its
 * errno (code "EADDRNOTAVAIL", ...) and a message naming the step; the
 * steps before it stay done. Files are replaced atomically (a temp file
 * in the same directory, fsync, rename), keeping the old file's mode.
 *
 * The /etc/hosts block is every line from BLOCK_BEGIN to BLOCK_END,
 * markers included. Replacing it removes every such block (a begin
 * without an end runs to EOF) and puts the new one where the first was,
 * or at the end of the file; everything else is kept byte for byte.
 */
#include "agent/agent.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <net/route.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define NET_POLL_MS 10
#define NET_WAIT_DEFAULT_MS 5000
#define NET_WAIT_MAX_MS (24 * 3600 * 1000)
#define NET_PREFIX_DEFAULT 24
/* Bound on deleting default routes one by one (each SIOCDELRT removes one). */
#define NET_MAX_DEFAULT_ROUTES 256

#define HOSTS_PATH "/etc/hosts"
#define RESOLV_PATH "/etc/resolv.conf"
#define BLOCK_BEGIN "# provium: begin (managed; do not edit)"
#define BLOCK_END "# provium: end"

enum gw_mode { GW_KEEP, GW_DELETE, GW_REPLACE };

/* One parsed request; owns hosts. */
struct netreq {
	uint64_t id, gen;
	int64_t deadline;          /* while pending */
	uint64_t wait_ms;
	char mac[18];              /* lower case; "" = no mac */
	int has_addr;
	struct in_addr addr;
	unsigned prefix;
	int up;                    /* -1 = leave the link alone */
	enum gw_mode gw;
	struct in_addr gateway;
	int has_dns;
	struct in_addr dns;
	char *hosts;               /* NULL = leave /etc/hosts alone */
	size_t hosts_len;
	struct netreq *next;
};

static struct netreq *pending;

static void netreq_free(struct netreq *r)
{
	free(r->hosts);
	free(r);
}

/* ---- parsing ---- */

/* A decoded dotted quad field (has, s) into *a: 0 absent, 1 set, -1
 * after replying bad_request. empty_ok: "" is returned as 2 (gateway). */
static int get_ipv4(uint64_t id, bool has, struct proto_str s, const char *key,
		    struct in_addr *a, int empty_ok)
{
	char tmp[INET_ADDRSTRLEN], msg[160];
	const char *p = s.p;
	size_t n = s.n;

	if (!has)
		return 0;
	if (n == 0 && empty_ok)
		return 2;
	if (n < sizeof tmp && !memchr(p, 0, n)) {
		memcpy(tmp, p, n);
		tmp[n] = 0;
		if (inet_pton(AF_INET, tmp, a) == 1)
			return 1;
	}
	snprintf(msg, sizeof msg, "%s \"%.*s\" is not a dotted IPv4 address "
		 "(a.b.c.d)", key, n > 40 ? 40 : (int)n, p);
	reply_bad(id, msg);
	return -1;
}

/* "xx:xx:xx:xx:xx:xx" (hex, any case) into lower-case out[18]. 0 or -1. */
static int parse_mac(const char *p, size_t n, char *out)
{
	if (n != 17)
		return -1;
	for (size_t i = 0; i < 17; i++) {
		unsigned char c = (unsigned char)p[i];

		if (i % 3 == 2 ? c != ':' : !isxdigit(c))
			return -1;
		out[i] = (char)tolower(c);
	}
	out[17] = 0;
	return 0;
}

/* True if line (n bytes, no '\n'; a trailing '\r' is ignored) is marker. */
static int is_marker(const char *line, size_t n, const char *marker)
{
	size_t m = strlen(marker);

	if (n > 0 && line[n - 1] == '\r')
		n--;
	return n == m && memcmp(line, marker, m) == 0;
}

/* The hosts text may not hold a marker line (it would split the block the
 * next time the file is read) nor NUL bytes. 0, or -1 after replying. */
static int check_hosts_text(uint64_t id, const char *p, size_t n)
{
	const char *end = p + n;

	if (memchr(p, 0, n)) {
		reply_bad(id, "hosts must not contain NUL bytes");
		return -1;
	}
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);

		if (is_marker(p, len, BLOCK_BEGIN) || is_marker(p, len, BLOCK_END)) {
			reply_bad(id, "hosts must not contain the provium block "
				  "marker lines (\"" BLOCK_BEGIN "\" / \"" BLOCK_END "\")");
			return -1;
		}
		p += len + (nl ? 1 : 0);
	}
	return 0;
}

/* Parse and validate every field of req. NULL after replying (bad_request
 * or ENOMEM). */
static struct netreq *parse(uint64_t id, const msgpack_object *req)
{
	struct proto_net_setup q;
	struct netreq *r;
	const char *p;
	size_t n;
	uint64_t u;
	int rc;

	if (req_decode(id, req, &proto_m_net_setup, &q) < 0)
		return NULL;
	r = calloc(1, sizeof(*r));
	if (!r) {
		reply_errno(id, ENOMEM);
		return NULL;
	}
	r->id = id;
	r->gen = server_gen();
	r->up = -1;
	r->prefix = NET_PREFIX_DEFAULT;

	if (q.has_mac && parse_mac(q.mac.p, q.mac.n, r->mac) < 0) {
		reply_bad(id, "mac must be a string \"xx:xx:xx:xx:xx:xx\" (hex)");
		goto bad;
	}
	u = q.has_wait_ms ? q.wait_ms : NET_WAIT_DEFAULT_MS;
	r->wait_ms = u > NET_WAIT_MAX_MS ? NET_WAIT_MAX_MS : u;
	r->deadline = now_ms() + (int64_t)r->wait_ms;

	rc = get_ipv4(id, q.has_addr, q.addr, "addr", &r->addr, 0);
	if (rc < 0)
		goto bad;
	r->has_addr = rc;
	if (q.has_prefix) {
		if (q.prefix > 32) {
			reply_bad(id, "prefix must be an integer 0..32");
			goto bad;
		}
		r->prefix = (unsigned)q.prefix;
	}
	if (q.has_up) {
		r->up = q.up;
	} else if (r->mac[0]) {
		r->up = 1;
	}
	rc = get_ipv4(id, q.has_gateway, q.gateway, "gateway", &r->gateway, 1);
	if (rc < 0)
		goto bad;
	r->gw = rc == 0 ? GW_KEEP : rc == 2 ? GW_DELETE : GW_REPLACE;
	rc = get_ipv4(id, q.has_dns, q.dns, "dns", &r->dns, 0);
	if (rc < 0)
		goto bad;
	r->has_dns = rc;

	p = q.hosts.p;
	n = q.hosts.n;
	if (q.has_hosts) {
		if (check_hosts_text(id, p, n) < 0)
			goto bad;
		r->hosts = malloc(n + 1);
		if (!r->hosts) {
			reply_errno(id, ENOMEM);
			goto bad;
		}
		memcpy(r->hosts, p, n);
		r->hosts[n] = 0;
		r->hosts_len = n;
	}

	if (!r->mac[0]) {
		const char *need = r->has_addr ? "addr" : r->up >= 0 ? "up"
			: r->gw == GW_REPLACE ? "gateway" : NULL;

		if (need) {
			char msg[80];

			snprintf(msg, sizeof msg, "%s needs mac (the interface "
				 "to configure)", need);
			reply_bad(id, msg);
			goto bad;
		}
	}
	return r;
bad:
	netreq_free(r);
	return NULL;
}

/* ---- finding the NIC ---- */

/* The interface whose MAC is mac (lower case) into ifname[IFNAMSIZ].
 * 1 found, 0 not (yet). */
static int find_if(const char *mac, char *ifname)
{
	DIR *d = opendir("/sys/class/net");
	struct dirent *e;
	int found = 0;

	if (!d)
		return 0;
	while (!found && (e = readdir(d))) {
		char path[300], addr[64];
		ssize_t k;
		int fd;

		if (e->d_name[0] == '.' || strlen(e->d_name) >= IFNAMSIZ)
			continue;
		snprintf(path, sizeof path, "/sys/class/net/%s/address", e->d_name);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		k = read(fd, addr, sizeof addr - 1);
		close(fd);
		if (k <= 0)
			continue;
		addr[k] = 0;
		addr[strcspn(addr, "\n")] = 0;
		if (strcasecmp(addr, mac) == 0) {
			snprintf(ifname, IFNAMSIZ, "%s", e->d_name);
			found = 1;
		}
	}
	closedir(d);
	return found;
}

/* ---- steps: 0, or -1 with errno and what[] naming the step ---- */

static void set_sin(struct sockaddr *sa, struct in_addr a)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr = a };

	memcpy(sa, &sin, sizeof sin);
}

static void what_fmt(char *what, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void what_fmt(char *what, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, len, fmt, ap);
	va_end(ap);
}

/* Replace ifname's address (SIOCSIFADDR swaps the primary one) and set
 * its netmask. */
static int set_addr(int s, const char *ifname, struct in_addr a,
		    unsigned prefix, char *what, size_t wlen)
{
	struct in_addr mask = {
		.s_addr = htonl(prefix ? 0xffffffffu << (32 - prefix) : 0)
	};
	char as[INET_ADDRSTRLEN];
	struct ifreq ifr;

	inet_ntop(AF_INET, &a, as, sizeof as);
	memset(&ifr, 0, sizeof ifr);
	snprintf(ifr.ifr_name, IFNAMSIZ, "%s", ifname);
	set_sin(&ifr.ifr_addr, a);
	if (ioctl(s, SIOCSIFADDR, &ifr) < 0) {
		what_fmt(what, wlen, "set address %s on %s", as, ifname);
		return -1;
	}
	set_sin(&ifr.ifr_netmask, mask);
	if (ioctl(s, SIOCSIFNETMASK, &ifr) < 0) {
		what_fmt(what, wlen, "set netmask /%u on %s", prefix, ifname);
		return -1;
	}
	return 0;
}

static int set_link(int s, const char *ifname, int up, char *what, size_t wlen)
{
	struct ifreq ifr;
	short want;

	memset(&ifr, 0, sizeof ifr);
	snprintf(ifr.ifr_name, IFNAMSIZ, "%s", ifname);
	if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0) {
		what_fmt(what, wlen, "get flags of %s", ifname);
		return -1;
	}
	want = (short)(up ? ifr.ifr_flags | IFF_UP : ifr.ifr_flags & ~IFF_UP);
	if (want == ifr.ifr_flags)
		return 0;
	ifr.ifr_flags = want;
	if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0) {
		what_fmt(what, wlen, "bring %s %s", ifname, up ? "up" : "down");
		return -1;
	}
	return 0;
}

/* Delete every IPv4 default route (whatever its device), then, for
 * GW_REPLACE, add "default via gw dev ifname". */
static int set_gateway(int s, const char *ifname, enum gw_mode mode,
		       struct in_addr gw, char *what, size_t wlen)
{
	struct in_addr any = { .s_addr = 0 };
	char dev[IFNAMSIZ], gs[INET_ADDRSTRLEN];
	struct rtentry rt;
	int i;

	for (i = 0; i < NET_MAX_DEFAULT_ROUTES; i++) {
		memset(&rt, 0, sizeof rt);
		set_sin(&rt.rt_dst, any);
		set_sin(&rt.rt_genmask, any);
		rt.rt_flags = RTF_UP;
		if (ioctl(s, SIOCDELRT, &rt) == 0)
			continue;
		if (errno == ESRCH)
			break;
		what_fmt(what, wlen, "delete the default route");
		return -1;
	}
	if (i == NET_MAX_DEFAULT_ROUTES) {
		errno = EMLINK;
		what_fmt(what, wlen, "delete the default routes (more than %d)",
			 NET_MAX_DEFAULT_ROUTES);
		return -1;
	}
	if (mode != GW_REPLACE)
		return 0;
	snprintf(dev, sizeof dev, "%s", ifname);  /* rt_dev is not const */
	memset(&rt, 0, sizeof rt);
	set_sin(&rt.rt_dst, any);
	set_sin(&rt.rt_genmask, any);
	set_sin(&rt.rt_gateway, gw);
	rt.rt_flags = RTF_UP | RTF_GATEWAY;
	rt.rt_dev = dev;
	if (ioctl(s, SIOCADDRT, &rt) < 0) {
		inet_ntop(AF_INET, &gw, gs, sizeof gs);
		what_fmt(what, wlen, "add default route via %s dev %s", gs, ifname);
		return -1;
	}
	return 0;
}

/* Replace path with n bytes of data: a temp file next to it (O_EXCL),
 * the old file's mode and owner (else 0644), fsync, rename. 0 or -1 with
 * errno; a failed call removes its temp file. */
static int install_file(const char *path, const char *data, size_t n)
{
	const char *slash = strrchr(path, '/');
	char tmp[PATH_MAX];
	struct stat st;
	int fd, e;

	if (snprintf(tmp, sizeof tmp, "%.*s.%s.provium-XXXXXX",
		     (int)(slash - path + 1), path, slash + 1) >= (int)sizeof tmp) {
		errno = ENAMETOOLONG;
		return -1;
	}
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return -1;
	if (stat(path, &st) < 0)
		st.st_mode = 0644;
	else if (fchown(fd, st.st_uid, st.st_gid) < 0 && errno != EPERM)
		goto fail;  /* EPERM: not root, the file stays ours */
	if (fchmod(fd, st.st_mode & 07777) < 0 || agent_write_all(fd, data, n) < 0 ||
	    fsync(fd) < 0)
		goto fail;
	if (close(fd) < 0) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) < 0)
		goto fail;
	return 0;
fail:
	e = errno;
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	errno = e;
	return -1;
}

/* Whole file into b; a missing file is empty. 0 or -1. */
static int slurp(const char *path, struct buf *b)
{
	char tmp[8192];
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return errno == ENOENT ? 0 : -1;
	for (;;) {
		ssize_t k = read(fd, tmp, sizeof tmp);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0 || (k > 0 && buf_add(b, tmp, (size_t)k) < 0)) {
			int e = errno;

			close(fd);
			errno = e;
			return -1;
		}
		if (k == 0)
			break;
	}
	close(fd);
	return 0;
}

/* old with every managed block removed and text's block (none when
 * tlen == 0) put where the first one was, else appended. 0 or -1. */
static int splice_hosts(const char *old, size_t olen, const char *text,
			size_t tlen, struct buf *out)
{
	const char *p = old, *end = old + olen;
	size_t at = (size_t)-1;
	int inside = 0, rc = 0;
	struct buf blk = { 0 };

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
		size_t full = len + (nl ? 1 : 0);

		if (!inside && is_marker(p, len, BLOCK_BEGIN)) {
			inside = 1;
			if (at == (size_t)-1)
				at = out->len;
		} else if (inside) {
			if (is_marker(p, len, BLOCK_END))
				inside = 0;
		} else {
			rc |= buf_add(out, p, full);
		}
		p += full;
	}
	if (tlen) {
		rc |= buf_add(&blk, BLOCK_BEGIN "\n", strlen(BLOCK_BEGIN) + 1);
		rc |= buf_add(&blk, text, tlen);
		if (text[tlen - 1] != '\n')
			rc |= buf_add(&blk, "\n", 1);
		rc |= buf_add(&blk, BLOCK_END "\n", strlen(BLOCK_END) + 1);
	}
	if (at == (size_t)-1) {
		if (blk.len && out->len && out->p[out->len - 1] != '\n')
			rc |= buf_add(out, "\n", 1);
		rc |= buf_add(out, blk.p, blk.len);
	} else if (blk.len) {
		/* insert blk at offset at */
		size_t tail = out->len - at;

		rc |= buf_add(out, blk.p, blk.len);
		if (rc == 0) {
			memmove(out->p + at + blk.len, out->p + at, tail);
			memcpy(out->p + at, blk.p, blk.len);
		}
	}
	buf_free(&blk);
	return rc ? -1 : 0;
}

static int set_hosts(const char *text, size_t tlen, char *what, size_t wlen)
{
	struct buf old = { 0 }, neu = { 0 };
	int rc = -1;

	if (slurp(HOSTS_PATH, &old) < 0) {
		what_fmt(what, wlen, "read " HOSTS_PATH);
		goto out;
	}
	if (splice_hosts(old.p, old.len, text, tlen, &neu) < 0) {
		what_fmt(what, wlen, "update " HOSTS_PATH);
		goto out;
	}
	rc = 0;
	if (neu.len == old.len && (!neu.len || !memcmp(neu.p, old.p, neu.len)))
		goto out;  /* unchanged (a missing file stays missing) */
	rc = install_file(HOSTS_PATH, neu.p ? neu.p : "", neu.len);
	if (rc < 0)
		what_fmt(what, wlen, "write " HOSTS_PATH);
out:
	buf_free(&old);
	buf_free(&neu);
	return rc;
}

static int set_dns(struct in_addr dns, char *what, size_t wlen)
{
	char line[64], as[INET_ADDRSTRLEN];
	int n;

	inet_ntop(AF_INET, &dns, as, sizeof as);
	n = snprintf(line, sizeof line, "nameserver %s\n", as);
	if (install_file(RESOLV_PATH, line, (size_t)n) < 0) {
		what_fmt(what, wlen, "write " RESOLV_PATH);
		return -1;
	}
	return 0;
}

/* Do every step of r on ifname ("" when no mac) and answer r->id. */
static void apply(const struct netreq *r, const char *ifname)
{
	char what[160], nb[16], msg[320];
	int s = -1, e;
	struct out o;

	what[0] = 0;
	if (ifname[0] || r->gw != GW_KEEP) {
		s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (s < 0) {
			what_fmt(what, sizeof what, "socket(AF_INET)");
			goto fail;
		}
	}
	if (r->has_addr && set_addr(s, ifname, r->addr, r->prefix, what, sizeof what) < 0)
		goto fail;
	if (r->up >= 0 && set_link(s, ifname, r->up, what, sizeof what) < 0)
		goto fail;
	if (r->gw != GW_KEEP &&
	    set_gateway(s, ifname, r->gw, r->gateway, what, sizeof what) < 0)
		goto fail;
	if (r->has_dns && set_dns(r->dns, what, sizeof what) < 0)
		goto fail;
	if (r->hosts && set_hosts(r->hosts, r->hosts_len, what, sizeof what) < 0)
		goto fail;
	if (s >= 0)
		close(s);
	reply_ok_begin(&o, r->id);
	proto_pack_map(&o.pk, &proto_m_ifname, &(struct proto_ifname){ proto_cstr(ifname) });
	out_send(&o, r->id);
	return;
fail:
	e = errno;
	if (s >= 0)
		close(s);
	snprintf(msg, sizeof msg, "%s: %s", what, strerror(e));
	reply_err(r->id, proto_errno_name(e, nb, sizeof nb), msg, e);
}

static void no_such_nic(const struct netreq *r)
{
	char msg[128];

	snprintf(msg, sizeof msg, "no network interface with MAC %s (waited %llu ms)",
		 r->mac, (unsigned long long)r->wait_ms);
	reply_err(r->id, "ENODEV", msg, ENODEV);
}

void op_net_setup(uint64_t id, const msgpack_object *req)
{
	struct netreq *r = parse(id, req);
	char ifname[IFNAMSIZ] = "";

	if (!r)
		return;
	if (r->mac[0] && !find_if(r->mac, ifname)) {
		if (now_ms() >= r->deadline) {
			no_such_nic(r);
			netreq_free(r);
			return;
		}
		struct netreq **pp = &pending;

		while (*pp)  /* in arrival order: net_tick looks again */
			pp = &(*pp)->next;
		*pp = r;
		return;
	}
	apply(r, ifname);
	netreq_free(r);
}

int net_tick(int64_t now)
{
	struct netreq **pp = &pending, *r;
	int64_t next = -1;

	while ((r = *pp)) {
		char ifname[IFNAMSIZ];
		int found = find_if(r->mac, ifname);

		if (!found && now < r->deadline) {
			int64_t t = r->deadline - now < NET_POLL_MS
				? r->deadline - now : NET_POLL_MS;

			if (next < 0 || t < next)
				next = t;
			pp = &r->next;
			continue;
		}
		*pp = r->next;
		if (server_live(r->gen)) {
			if (found)
				apply(r, ifname);
			else
				no_such_nic(r);
		}
		netreq_free(r);
	}
	return (int)next;
}

void net_disconnect(void)
{
	while (pending) {
		struct netreq *r = pending;

		pending = r->next;
		netreq_free(r);
	}
}
