/* lnet.c — the C half of networking for Lua: the Switch userdata
 * ("provium.netsw", one per Bridge: a user-space switch, net/switch.h),
 * the Capture stream (pcap bytes from a switch capture, a Stream of
 * lstream.c), and the VM's NIC primitives (vm:_nic_link, vm:_net_setup,
 * vm:nic). The policy — bridges, members, partitions, impairments,
 * addressing, /etc/hosts — is Lua (net.lua); this file only moves values
 * between Lua and the switch / VMM backend.
 *
 *   _provium_netsw_new(name, seed)        -> Switch
 *   sw:adopt_vm(vm, id, mac, label)       -> port id, or nil when the VM's
 *                                            backend has no NICs (graph only)
 *   sw:uplink(net, host, dns)             -> port id (dotted IPv4, /24)
 *   sw:remove(port) / sw:enable(port, up)
 *   sw:link(from, to, {blocked=, drop_pct=, latency_ms=, jitter_ms=, bps=})
 *   sw:counters(port) -> {rx_bytes, tx_bytes, rx_packets, tx_packets, errors, dropped}
 *   sw:stats() -> {frames, bytes, deliveries, cpu_ns};  sw:seed() -> integer
 *   sw:capture(port|nil, vm|nil, detail)  -> Capture stream (kind "capture")
 *   sw:close()                            idempotent; also __gc
 *   vm:_nic_link(id, up)                  -> true, or nil (no NICs here)
 *   vm:_net_setup{mac=, addr=, prefix=, gateway=, dns=, hosts=, wait_ms=}
 *                                         -> ifname, or nil (no agent)
 *
 * Misuse and failures raise; messages name the bridge (switch) or VM. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <lua.h>
#include <lauxlib.h>

#include "lua/lvm_priv.h"
#include "net/switch.h"
#include "vmm/guest_ops.h"

#define NETSW_MT "provium.netsw"
#define CAPTURE_CHUNK (64u << 10)

struct lnetsw {
	struct netsw *sw;         /* NULL once closed */
	char name[128];
};

static struct lnetsw *checksw(lua_State *L)
{
	struct lnetsw *s = luaL_checkudata(L, 1, NETSW_MT);
	if (!s->sw)
		luaL_error(L, "bridge `%s`: the switch is closed", s->name);
	return s;
}

static int sw_new(lua_State *L)
{
	const char *name = luaL_checkstring(L, 1);
	lua_Integer seed = luaL_checkinteger(L, 2);
	struct lnetsw *s = lua_newuserdatauv(L, sizeof *s, 0);
	char err[512];
	memset(s, 0, sizeof *s);
	snprintf(s->name, sizeof s->name, "%s", name);
	luaL_setmetatable(L, NETSW_MT);
	s->sw = netsw_new(name, (uint64_t)seed, err, sizeof err);
	if (!s->sw)
		return luaL_error(L, "bridge `%s`: %s", name, err);
	return 1;
}

static int parse_mac(const char *s, uint8_t mac[6])
{
	unsigned v[6];
	if (sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) != 6)
		return -1;
	for (int i = 0; i < 6; i++)
		mac[i] = (uint8_t)v[i];
	return 0;
}

/* sw:adopt_vm(vm, id, mac, label) */
static int sw_adopt_vm(lua_State *L)
{
	struct lnetsw *s = checksw(L);
	struct lvm *v = lvm_check(L, 2);
	const char *id = luaL_checkstring(L, 3), *mac = luaL_checkstring(L, 4);
	const char *label = luaL_checkstring(L, 5);
	uint8_t m[6];
	char err[LVM_ERRLEN];
	int fd = -1, port;
	if (parse_mac(mac, m) < 0)
		return luaL_error(L, "bridge `%s`: bad MAC `%s`", s->name, mac);
	if (!v->be)
		return luaL_error(L, "bridge `%s`: vm `%s` is closed", s->name, v->name);
	if (!v->ops->nic_add) {
		lua_pushnil(L);
		return 1;
	}
	if (v->ops->nic_add(v->be, id, mac, &fd, err, sizeof err) < 0)
		return luaL_error(L, "bridge `%s`: vm `%s`: NIC: %s", s->name, v->name, err);
	port = netsw_port_adopt(s->sw, label, m, fd, err, sizeof err);
	if (port < 0)
		return luaL_error(L, "bridge `%s`: vm `%s`: %s", s->name, v->name, err);
	lua_pushinteger(L, port);
	return 1;
}

static uint32_t check_ip(lua_State *L, int idx, const char *what)
{
	struct in_addr a;
	const char *s = luaL_checkstring(L, idx);
	if (inet_pton(AF_INET, s, &a) != 1)
		luaL_error(L, "%s: not an IPv4 address: `%s`", what, s);
	return a.s_addr;
}

static int sw_uplink(lua_State *L)
{
	struct lnetsw *s = checksw(L);
	struct netsw_uplink_cfg c = {
		.net = check_ip(L, 2, "uplink net"), .mask = htonl(0xffffff00u),
		.host = check_ip(L, 3, "uplink host"), .dns = check_ip(L, 4, "uplink dns"),
	};
	char err[512];
	int port = netsw_uplink_add(s->sw, &c, err, sizeof err);
	if (port < 0)
		return luaL_error(L, "bridge `%s`: enable_uplink: %s", s->name, err);
	lua_pushinteger(L, port);
	return 1;
}

static int sw_remove(lua_State *L)
{
	struct lnetsw *s = checksw(L);
	char err[512];
	if (netsw_port_remove(s->sw, (int)luaL_checkinteger(L, 2), err, sizeof err) < 0)
		return luaL_error(L, "bridge `%s`: %s", s->name, err);
	return 0;
}

static int sw_enable(lua_State *L)
{
	struct lnetsw *s = checksw(L);
	char err[512];
	if (netsw_port_enable(s->sw, (int)luaL_checkinteger(L, 2), lua_toboolean(L, 3),
			      err, sizeof err) < 0)
		return luaL_error(L, "bridge `%s`: %s", s->name, err);
	return 0;
}

static double num_field(lua_State *L, int t, const char *k)
{
	double d;
	lua_getfield(L, t, k);
	d = lua_isnil(L, -1) ? 0 : luaL_checknumber(L, -1);
	lua_pop(L, 1);
	return d;
}

static int sw_link(lua_State *L)
{
	struct lnetsw *s = checksw(L);
	int from = (int)luaL_checkinteger(L, 2), to = (int)luaL_checkinteger(L, 3);
	struct netsw_link l;
	char err[512];
	luaL_checktype(L, 4, LUA_TTABLE);
	lua_getfield(L, 4, "blocked");
	l.blocked = lua_toboolean(L, -1);
	lua_pop(L, 1);
	l.drop_pct = num_field(L, 4, "drop_pct");
	l.latency_ms = num_field(L, 4, "latency_ms");
	l.jitter_ms = num_field(L, 4, "jitter_ms");
	l.bps = (uint64_t)num_field(L, 4, "bps");
	if (netsw_link_set(s->sw, from, to, &l, err, sizeof err) < 0)
		return luaL_error(L, "bridge `%s`: %s", s->name, err);
	return 0;
}

static void set_int(lua_State *L, const char *k, uint64_t v)
{
	lua_pushinteger(L, (lua_Integer)v);
	lua_setfield(L, -2, k);
}

static int sw_counters(lua_State *L)
{
	struct lnetsw *s = checksw(L);
	struct netsw_counters c;
	char err[512];
	if (netsw_counters(s->sw, (int)luaL_checkinteger(L, 2), &c, err, sizeof err) < 0)
		return luaL_error(L, "bridge `%s`: %s", s->name, err);
	lua_createtable(L, 0, 6);
	set_int(L, "rx_bytes", c.rx_bytes);
	set_int(L, "tx_bytes", c.tx_bytes);
	set_int(L, "rx_packets", c.rx_packets);
	set_int(L, "tx_packets", c.tx_packets);
	set_int(L, "errors", c.errors);
	set_int(L, "dropped", c.dropped);
	return 1;
}

static int sw_stats(lua_State *L)
{
	struct lnetsw *s = checksw(L);
	struct netsw_stats st;
	netsw_stats(s->sw, &st);
	lua_createtable(L, 0, 4);
	set_int(L, "frames", st.frames);
	set_int(L, "bytes", st.bytes);
	set_int(L, "deliveries", st.deliveries);
	set_int(L, "cpu_ns", st.cpu_ns);
	return 1;
}

static int sw_seed(lua_State *L)
{
	lua_pushinteger(L, (lua_Integer)netsw_seed(checksw(L)->sw));
	return 1;
}

/* ---- Capture streams ---------------------------------------------------- */

struct cap_ctx {
	int fd;
};

static int cap_next(void *ctx, int64_t timeout_ns, char **data, size_t *len, bool *eof,
		    char *err, size_t errlen)
{
	struct cap_ctx *c = ctx;
	struct pollfd p = { .fd = c->fd, .events = POLLIN };
	int ms = (int)((timeout_ns + 999999) / 1000000), r;
	ssize_t n;
	char *buf;
	do
		r = poll(&p, 1, ms);
	while (r < 0 && errno == EINTR);
	if (r < 0) {
		snprintf(err, errlen, "poll: %s", strerror(errno));
		return -1;
	}
	if (r == 0)
		return 0;
	if (!(buf = malloc(CAPTURE_CHUNK))) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	do
		n = read(c->fd, buf, CAPTURE_CHUNK);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		free(buf);
		snprintf(err, errlen, "read: %s", strerror(errno));
		return -1;
	}
	if (n == 0) {
		free(buf);
		*eof = true;
		return 1;
	}
	*data = buf;
	*len = (size_t)n;
	return 1;
}

static void cap_close(void *ctx)
{
	struct cap_ctx *c = ctx;
	close(c->fd);
	free(c);
}

static const struct lstream_src cap_src = {cap_next, cap_close};

/* sw:capture(port|nil, vm|nil, detail) */
static int sw_capture(lua_State *L)
{
	struct lnetsw *s = checksw(L);
	int port = lua_isnil(L, 2) ? -1 : (int)luaL_checkinteger(L, 2);
	const char *detail = luaL_checkstring(L, 4);
	struct cap_ctx *c;
	char err[512];
	int fd;
	if (!lua_isnil(L, 3))
		lvm_check(L, 3);
	lstream_new(L, lua_isnil(L, 3) ? 0 : 3, "capture", detail, "capture closed");
	if ((fd = netsw_capture_open(s->sw, port, err, sizeof err)) < 0)
		return luaL_error(L, "bridge `%s`: capture: %s", s->name, err);
	if (!(c = malloc(sizeof *c))) {
		close(fd);
		return luaL_error(L, "bridge `%s`: capture: out of memory", s->name);
	}
	c->fd = fd;
	lstream_attach(L, -1, &cap_src, c);
	return 1;
}

static int sw_close(lua_State *L)
{
	struct lnetsw *s = luaL_checkudata(L, 1, NETSW_MT);
	netsw_free(s->sw);
	s->sw = NULL;
	return 0;
}

static int sw_tostring(lua_State *L)
{
	struct lnetsw *s = luaL_checkudata(L, 1, NETSW_MT);
	lua_pushfstring(L, "switch `%s`%s", s->name, s->sw ? "" : " (closed)");
	return 1;
}

/* ---- VM primitives ------------------------------------------------------- */

static int vm_nic_link(lua_State *L)
{
	struct lvm *v = lvm_check(L, 1);
	const char *id = luaL_checkstring(L, 2);
	char err[LVM_ERRLEN];
	if (!v->be || !v->ops->nic_link) {
		lua_pushnil(L);
		return 1;
	}
	if (v->ops->nic_link(v->be, id, lua_toboolean(L, 3), err, sizeof err) < 0)
		return luaL_error(L, "vm `%s`: set_link on bridge `%s`: %s", v->name, id, err);
	lua_pushboolean(L, 1);
	return 1;
}

static const char *opt_str(lua_State *L, int t, const char *k)
{
	const char *s;
	lua_getfield(L, t, k);
	s = lua_isnil(L, -1) ? NULL : luaL_checkstring(L, -1);
	lua_pop(L, 1);  /* the table keeps the string alive */
	return s;
}

static int opt_int(lua_State *L, int t, const char *k, int def)
{
	int v;
	lua_getfield(L, t, k);
	v = lua_isnil(L, -1) ? def : (int)luaL_checkinteger(L, -1);
	lua_pop(L, 1);
	return v;
}

static int vm_net_setup(lua_State *L)
{
	struct lvm *v = lvm_check(L, 1);
	struct guest_net_setup r;
	char ifname[64] = "", err[LVM_ERRLEN];
	int rc;
	luaL_checktype(L, 2, LUA_TTABLE);
	r.mac = opt_str(L, 2, "mac");
	r.addr = opt_str(L, 2, "addr");
	r.prefix = opt_int(L, 2, "prefix", 24);
	r.up = opt_int(L, 2, "up", -1);
	r.gateway = opt_str(L, 2, "gateway");
	r.dns = opt_str(L, 2, "dns");
	r.hosts = opt_str(L, 2, "hosts");
	r.wait_ms = opt_int(L, 2, "wait_ms", 10000);
	if (!v->be || v->state != VM_BOOTED) {
		lua_pushnil(L);
		return 1;
	}
	rc = guest_net_setup(v->ops, v->be, &r, ifname, sizeof ifname, err, sizeof err);
	if (rc == VMM_UNSUPPORTED) {
		lua_pushnil(L);
		return 1;
	}
	if (rc < 0)
		return luaL_error(L, "vm `%s`: network setup: %s", v->name, lvm_errtext(v, err));
	lua_pushstring(L, ifname);
	return 1;
}

/* vm:nic(name): the policy lives in net.lua. */
static int vm_nic(lua_State *L)
{
	lvm_check(L, 1);
	lua_settop(L, 2);
	if (lua_getglobal(L, "_provium_vm_nic") != LUA_TFUNCTION)
		return luaL_error(L, "vm:nic: networking is not loaded");
	lua_insert(L, 1);
	lua_call(L, 2, 1);
	return 1;
}

void lnet_hook(lua_State *L, int vm_idx, const char *hook)
{
	vm_idx = lua_absindex(L, vm_idx);
	if (lua_getglobal(L, hook) != LUA_TFUNCTION) {
		lua_pop(L, 1);
		return;
	}
	lua_pushvalue(L, vm_idx);
	lua_call(L, 1, 0);
}

static const luaL_Reg sw_methods[] = {
	{"adopt_vm", sw_adopt_vm}, {"uplink", sw_uplink}, {"remove", sw_remove},
	{"enable", sw_enable}, {"link", sw_link}, {"counters", sw_counters},
	{"stats", sw_stats}, {"seed", sw_seed}, {"capture", sw_capture}, {"close", sw_close},
	{NULL, NULL}
};

static const luaL_Reg sw_meta[] = {
	{"__gc", sw_close}, {"__close", sw_close}, {"__tostring", sw_tostring}, {NULL, NULL}
};

/* With the VM methods table at the top of the stack (lvm_register). */
void lnet_register(lua_State *L)
{
	lua_pushcfunction(L, vm_nic);
	lua_setfield(L, -2, "nic");
	lua_pushcfunction(L, vm_nic_link);
	lua_setfield(L, -2, "_nic_link");
	lua_pushcfunction(L, vm_net_setup);
	lua_setfield(L, -2, "_net_setup");
	lvm_new_class(L, NETSW_MT, sw_meta, sw_methods);
	lua_pop(L, 1);
	lua_register(L, "_provium_netsw_new", sw_new);
}
