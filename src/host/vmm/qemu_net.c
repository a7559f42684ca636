/* qemu_net.c — NICs of the qemu backend (vmm.h nic_add / nic_link): a
 * virtio-net-pci device per bridge the VM is attached to, its frames going
 * through one end of a SOCK_DGRAM socketpair (-netdev dgram,local.type=fd)
 * whose other end a user-space switch (net/switch.h) serves.
 *
 * Where a NIC sits (the migration stream needs the same place on restore):
 *
 *   cold  plugged at QEMU start (boot: every NIC, in id order; restore:
 *         where the snapshot says) on pcie.0 at addr 0x10 + k, with the
 *         QEMU names pn<k> (netdev) and pnic<k> (device); no root port,
 *         since each root port costs QEMU start-up time
 *   hot   added while QEMU runs, into a free hotplug root port
 *         "pdisk<n>-port" (shared with qemu_disk.c), named pnh<n> /
 *         pnich<n>; hotplug passes the fd with getfd under the netdev name
 *
 * The VM owns both ends of each NIC's socketpair for its whole life, so
 * every boot and every restore hands the same socket to the new QEMU, and
 * a switch port (which adopts a dup of the host end) never changes. Boot
 * cold-plugs all NICs in id order (eth<N> is the Nth bridge by name); a
 * restore puts each NIC its snapshot lists back where it was with the
 * recorded MAC, creating the NIC when the VM had not been given it (its
 * frames wait in the socket until a bridge adopts the host end). Link
 * state is ours to remember: applied after every start.
 *
 * Errors: 0 / -1 with err filled (no "vm `x`:" prefix). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "errbuf.h"
#include "vmm/qemu_priv.h"

static struct qnic *find(struct vmm_vm *vm, const char *id)
{
	for (int i = 0; i < QEMU_NET_SLOTS; i++)
		if (vm->nics[i].id && !strcmp(vm->nics[i].id, id))
			return &vm->nics[i];
	return NULL;
}

static struct qnic *free_entry(struct vmm_vm *vm)
{
	for (int i = 0; i < QEMU_NET_SLOTS; i++)
		if (!vm->nics[i].id)
			return &vm->nics[i];
	return NULL;
}

static bool cold_used(const struct vmm_vm *vm, int k)
{
	for (int i = 0; i < QEMU_NET_SLOTS; i++)
		if (vm->nics[i].id && vm->nics[i].cold == k)
			return true;
	return false;
}

bool qnet_port_used(const struct vmm_vm *vm, int n)
{
	for (int i = 0; i < QEMU_NET_SLOTS; i++)
		if (vm->nics[i].id && vm->nics[i].port == n)
			return true;
	return false;
}

static bool plugged(const struct qnic *n)
{
	return n->cold >= 0 || n->port >= 0;
}

/* The QEMU names of n where it sits. */
static void names(const struct qnic *n, char *netdev, char *dev, size_t len)
{
	if (n->cold >= 0) {
		snprintf(netdev, len, "pn%d", n->cold);
		snprintf(dev, len, "pnic%d", n->cold);
	} else {
		snprintf(netdev, len, "pnh%d", n->port);
		snprintf(dev, len, "pnich%d", n->port);
	}
}

static bool mac_ok(const char *mac)
{
	if (strlen(mac) != 17)
		return false;
	for (int i = 0; i < 17; i++) {
		char c = mac[i];
		bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
		if (i % 3 == 2 ? c != ':' : !hex)
			return false;
	}
	return true;
}

static void entry_clear(struct qnic *n)
{
	if (n->fd >= 0)
		close(n->fd);
	if (n->host >= 0)
		close(n->host);
	free(n->id);
	memset(n, 0, sizeof *n);
	n->fd = n->host = -1;
	n->cold = n->port = -1;
}

/* A new entry for id with a fresh socketpair (link up, no slot). Both
 * ends are non-blocking: QEMU polls its end, and a host end nobody reads
 * yet must not block QEMU's sends (they fail with EAGAIN, QEMU retries). */
static struct qnic *entry_new(struct vmm_vm *vm, const char *id, const char *mac,
			      char *err, size_t errlen)
{
	struct qnic *n = free_entry(vm);
	int sp[2];
	if (!n) {
		err_set(err, errlen, "too many NICs (a VM has at most %d)", QEMU_NET_SLOTS);
		return NULL;
	}
	memset(n, 0, sizeof *n);
	n->fd = n->host = -1;
	n->cold = n->port = -1;
	n->link_up = true;
	snprintf(n->mac, sizeof n->mac, "%s", mac);
	if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sp) < 0) {
		err_set(err, errlen, "NIC `%s`: socketpair: %s", id, strerror(errno));
		return NULL;
	}
	n->fd = sp[0];
	n->host = sp[1];
	if (!(n->id = strdup(id))) {
		err_set(err, errlen, "out of memory");
		entry_clear(n);
		return NULL;
	}
	return n;
}

/* The -netdev/-device pair of n (plugged where n->cold / n->port say). */
static void add_args(struct qnic *n, struct extra_args *x)
{
	char nd[32], dev[32], where[48];
	int k = (int)x->nfds;
	names(n, nd, dev, sizeof nd);
	if (n->cold >= 0)
		snprintf(where, sizeof where, "bus=pcie.0,addr=0x%x", 0x10 + n->cold);
	else
		snprintf(where, sizeof where, "bus=pdisk%d-port", n->port);
	snprintf(x->net[k][0], sizeof x->net[k][0], "dgram,id=%s,local.type=fd,local.str=%d",
		 nd, n->fd);
	snprintf(x->net[k][1], sizeof x->net[k][1], "virtio-net-pci,id=%s,netdev=%s,mac=%s,%s",
		 dev, nd, n->mac, where);
	x->v[x->n++] = "-netdev";
	x->v[x->n++] = x->net[k][0];
	x->v[x->n++] = "-device";
	x->v[x->n++] = x->net[k][1];
	x->v[x->n] = NULL;
	x->fds[x->nfds++] = n->fd;
}

static int by_id(const void *a, const void *b)
{
	const struct qnic *const *x = a, *const *y = b;
	return strcmp((*x)->id, (*y)->id);
}

void qnet_boot_args(struct vmm_vm *vm, struct extra_args *x)
{
	struct qnic *order[QEMU_NET_SLOTS];
	size_t n = 0;
	for (int i = 0; i < QEMU_NET_SLOTS; i++)
		if (vm->nics[i].id)
			order[n++] = &vm->nics[i];
	qsort(order, n, sizeof order[0], by_id);
	for (size_t i = 0; i < n; i++) {
		order[i]->cold = (int)i;
		order[i]->port = -1;
		add_args(order[i], x);
	}
}

int qnet_restore_args(struct vmm_vm *vm, json_t *nics, struct extra_args *x,
		      char *err, size_t errlen)
{
	size_t i;
	json_t *e;
	qnet_forget_slots(vm);
	json_array_foreach(nics, i, e) {
		const char *id = json_string_value(json_object_get(e, "id"));
		const char *mac = json_string_value(json_object_get(e, "mac"));
		json_t *jc = json_object_get(e, "cold"), *jp = json_object_get(e, "port");
		int cold = json_is_integer(jc) ? (int)json_integer_value(jc) : -1;
		int port = json_is_integer(jp) ? (int)json_integer_value(jp) : -1;
		struct qnic *n;
		bool place_ok = (cold >= 0 && cold < QEMU_NET_SLOTS && port < 0 && !cold_used(vm, cold)) ||
				(port >= 0 && port < QEMU_DISK_SLOTS && cold < 0 && !qnet_port_used(vm, port) &&
				 vm->slots);
		if (!id || !*id || !mac || !mac_ok(mac) || !place_ok) {
			err_set(err, errlen, "corrupt header (NIC list entry %zu)", i);
			return -1;
		}
		n = find(vm, id);
		if (!n) {
			/* Not attached (yet): the stream needs the device; its
			 * frames wait until a bridge adopts the host end. */
			if (!(n = entry_new(vm, id, mac, err, errlen)))
				return -1;
			n->link_up = !json_is_false(json_object_get(e, "link"));
		}
		snprintf(n->mac, sizeof n->mac, "%s", mac);
		n->cold = cold;
		n->port = port;
		add_args(n, x);
	}
	return 0;
}

static int qmp_do(struct vmm_vm *vm, const char *cmd, json_t *args, int fd, char *err,
		  size_t errlen)
{
	int rc;
	if (!args) {
		err_set(err, errlen, "%s: out of memory", cmd);
		return -1;
	}
	if (fd >= 0)
		rc = qmp_execute_fd(vm->qmp, cmd, args, fd, QMP_TIMEOUT_MS, NULL, err, errlen);
	else
		rc = qmp_execute(vm->qmp, cmd, args, QMP_TIMEOUT_MS, NULL, err, errlen);
	json_decref(args);
	if (rc < 0 && qmp_broken(vm->qmp))
		qvm_check_qemu_died(vm, 500, err, errlen);
	return rc;
}

static int set_link(struct vmm_vm *vm, const struct qnic *n, char *err, size_t errlen)
{
	char nd[32], dev[32];
	names(n, nd, dev, sizeof nd);
	return qmp_do(vm, "set_link", json_pack("{s:s,s:b}", "name", dev, "up", n->link_up), -1,
		      err, errlen);
}

/* Hotplug n into the first free hotplug root port of the running QEMU. */
static int hotplug(struct vmm_vm *vm, struct qnic *n, char *err, size_t errlen)
{
	char name[32], dev[32], bus[32];
	int p = 0;
	if (!vm->slots) {
		err_set(err, errlen, "cannot attach bridge `%s`: " QVM_NO_SLOTS_ERR, n->id);
		return -1;
	}
	while (p < QEMU_DISK_SLOTS && (qnet_port_used(vm, p) || vm->disks[p].id || vm->disks[p].stuck))
		p++;
	if (p == QEMU_DISK_SLOTS) {
		err_set(err, errlen, "all %d hotplug slots of this VM are in use (disks and NICs "
			"attached while it ran); attach bridges before boot to cold-plug NICs",
			QEMU_DISK_SLOTS);
		return -1;
	}
	n->cold = -1;
	n->port = p;
	names(n, name, dev, sizeof name);
	snprintf(bus, sizeof bus, "pdisk%d-port", p);
	if (qmp_do(vm, "getfd", json_pack("{s:s}", "fdname", name), n->fd, err, errlen) < 0)
		goto fail;
	if (qmp_do(vm, "netdev_add", json_pack("{s:s,s:s,s:{s:s,s:s}}", "type", "dgram",
			"id", name, "local", "type", "fd", "str", name), -1, err, errlen) < 0) {
		char e[256];
		qmp_do(vm, "closefd", json_pack("{s:s}", "fdname", name), -1, e, sizeof e);
		goto fail;
	}
	if (qmp_do(vm, "device_add", json_pack("{s:s,s:s,s:s,s:s,s:s}", "driver", "virtio-net-pci",
			"id", dev, "netdev", name, "mac", n->mac, "bus", bus), -1, err, errlen) < 0) {
		char e[256];
		qmp_do(vm, "netdev_del", json_pack("{s:s}", "id", name), -1, e, sizeof e);
		goto fail;
	}
	return 0;
fail:
	n->port = -1;
	return -1;
}

int qnet_after_start(struct vmm_vm *vm, char *err, size_t errlen)
{
	for (int i = 0; i < QEMU_NET_SLOTS; i++) {
		struct qnic *n = &vm->nics[i];
		if (!n->id)
			continue;
		if (!plugged(n) && hotplug(vm, n, err, errlen) < 0)
			return -1;
		if (set_link(vm, n, err, errlen) < 0)
			return -1;
	}
	return 0;
}

json_t *qnet_snapshot_json(const struct vmm_vm *vm)
{
	json_t *a = json_array();
	for (int i = 0; a && i < QEMU_NET_SLOTS; i++) {
		const struct qnic *n = &vm->nics[i];
		if (!n->id || !plugged(n))
			continue;
		json_array_append_new(a, json_pack("{s:s,s:s,s:i,s:b}", "id", n->id, "mac", n->mac,
						   n->cold >= 0 ? "cold" : "port",
						   n->cold >= 0 ? n->cold : n->port, "link", n->link_up));
	}
	return a;
}

void qnet_forget_slots(struct vmm_vm *vm)
{
	for (int i = 0; i < QEMU_NET_SLOTS; i++)
		vm->nics[i].cold = vm->nics[i].port = -1;
}

void qnet_free(struct vmm_vm *vm)
{
	for (int i = 0; i < QEMU_NET_SLOTS; i++)
		if (vm->nics[i].id)
			entry_clear(&vm->nics[i]);
}

static bool running(const struct vmm_vm *vm)
{
	return vm->qmp && !vm->gone && vm->proc.pid > 0 && !vm->proc.reaped;
}

int qemu_nic_add(struct vmm_vm *vm, const char *id, const char *mac, int *host_fd,
		 char *err, size_t errlen)
{
	struct qnic *n = find(vm, id);
	bool fresh = !n;
	if (!mac_ok(mac)) {
		err_set(err, errlen, "NIC `%s`: bad MAC `%s`", id, mac);
		return -1;
	}
	if (!n && !(n = entry_new(vm, id, mac, err, errlen)))
		return -1;
	if (fresh && running(vm) && hotplug(vm, n, err, errlen) < 0) {
		entry_clear(n);
		return -1;
	}
	if ((*host_fd = fcntl(n->host, F_DUPFD_CLOEXEC, 3)) < 0) {
		err_set(err, errlen, "NIC `%s`: %s", id, strerror(errno));
		return -1;
	}
	return 0;
}

int qemu_nic_link(struct vmm_vm *vm, const char *id, bool up, char *err, size_t errlen)
{
	struct qnic *n = find(vm, id);
	if (!n) {
		err_set(err, errlen, "no NIC on bridge `%s`", id);
		return -1;
	}
	n->link_up = up;
	if (running(vm) && plugged(n))
		return set_link(vm, n, err, errlen);
	return 0;
}
