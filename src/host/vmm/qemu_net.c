/* qemu_net.c — NICs of the qemu backend (vmm.h nic_add / nic_link): a
 * virtio-net-pci device per bridge the VM is attached to, its frames going
 * through one end of a SOCK_DGRAM socketpair (-netdev dgram,local.type=fd)
 * whose other end a user-space switch (net/switch.h) serves.
 *
 * Every VM is launched with QEMU_NET_SLOTS empty pcie-root-ports
 * ("pnet<N>-port", qemu_launch.c); a NIC in slot N uses the QEMU names
 *
 *   pn<N>     the netdev (dgram over our fd; hotplug passes it with getfd
 *             under the same name)
 *   pnic<N>   the virtio-net-pci device in pnet<N>-port (set_link target)
 *
 * The VM owns both ends of each NIC's socketpair for its whole life, so
 * every boot and every restore hands the same socket to the new QEMU, and
 * a switch port (which adopts a dup of the host end) never changes. Boot
 * cold-plugs all NICs in id order (eth<N> is the Nth bridge by name); a
 * NIC added while QEMU runs is hotplugged into the first free slot; a
 * restore puts each NIC its snapshot lists back in the recorded slot with
 * the recorded MAC (the migration stream expects that device there),
 * creating the NIC when the VM had not been given it (its frames wait in
 * the socket until a bridge adopts the host end). Link state is ours to
 * remember: applied after every start.
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

static bool slot_used(const struct vmm_vm *vm, int slot)
{
	for (int i = 0; i < QEMU_NET_SLOTS; i++)
		if (vm->nics[i].id && vm->nics[i].slot == slot)
			return true;
	return false;
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
	n->slot = -1;
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
	n->slot = -1;
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

static void add_args(struct vmm_vm *vm, struct qnic *n, struct extra_args *x)
{
	int k = n->slot;
	snprintf(x->net[k][0], sizeof x->net[k][0], "dgram,id=pn%d,local.type=fd,local.str=%d",
		 k, n->fd);
	snprintf(x->net[k][1], sizeof x->net[k][1],
		 "virtio-net-pci,id=pnic%d,netdev=pn%d,mac=%s,bus=pnet%d-port", k, k, n->mac, k);
	x->v[x->n++] = "-netdev";
	x->v[x->n++] = x->net[k][0];
	x->v[x->n++] = "-device";
	x->v[x->n++] = x->net[k][1];
	x->v[x->n] = NULL;
	x->fds[x->nfds++] = n->fd;
	(void)vm;
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
		order[i]->slot = (int)i;
		add_args(vm, order[i], x);
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
		json_t *js = json_object_get(e, "slot");
		int slot = json_is_integer(js) ? (int)json_integer_value(js) : -1;
		struct qnic *n;
		if (!id || !*id || !mac || !mac_ok(mac) || slot < 0 || slot >= QEMU_NET_SLOTS ||
		    slot_used(vm, slot)) {
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
		n->slot = slot;
		add_args(vm, n, x);
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
	char dev[32];
	snprintf(dev, sizeof dev, "pnic%d", n->slot);
	return qmp_do(vm, "set_link", json_pack("{s:s,s:b}", "name", dev, "up", n->link_up), -1,
		      err, errlen);
}

/* Hotplug n into the first free slot of the running QEMU. */
static int hotplug(struct vmm_vm *vm, struct qnic *n, char *err, size_t errlen)
{
	char name[32], dev[32], bus[32];
	int slot = 0;
	while (slot < QEMU_NET_SLOTS && slot_used(vm, slot))
		slot++;
	if (slot == QEMU_NET_SLOTS) {
		err_set(err, errlen, "no free NIC slot (a VM has at most %d)", QEMU_NET_SLOTS);
		return -1;
	}
	snprintf(name, sizeof name, "pn%d", slot);
	snprintf(dev, sizeof dev, "pnic%d", slot);
	snprintf(bus, sizeof bus, "pnet%d-port", slot);
	if (qmp_do(vm, "getfd", json_pack("{s:s}", "fdname", name), n->fd, err, errlen) < 0)
		return -1;
	if (qmp_do(vm, "netdev_add", json_pack("{s:s,s:s,s:{s:s,s:s}}", "type", "dgram",
			"id", name, "local", "type", "fd", "str", name), -1, err, errlen) < 0) {
		char e[256];
		qmp_do(vm, "closefd", json_pack("{s:s}", "fdname", name), -1, e, sizeof e);
		return -1;
	}
	if (qmp_do(vm, "device_add", json_pack("{s:s,s:s,s:s,s:s,s:s}", "driver", "virtio-net-pci",
			"id", dev, "netdev", name, "mac", n->mac, "bus", bus), -1, err, errlen) < 0) {
		char e[256];
		qmp_do(vm, "netdev_del", json_pack("{s:s}", "id", name), -1, e, sizeof e);
		return -1;
	}
	n->slot = slot;
	return 0;
}

int qnet_after_start(struct vmm_vm *vm, char *err, size_t errlen)
{
	for (int i = 0; i < QEMU_NET_SLOTS; i++) {
		struct qnic *n = &vm->nics[i];
		if (!n->id)
			continue;
		if (n->slot < 0 && hotplug(vm, n, err, errlen) < 0)
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
		if (!n->id || n->slot < 0)
			continue;
		json_array_append_new(a, json_pack("{s:s,s:s,s:i,s:b}", "id", n->id, "mac", n->mac,
						   "slot", n->slot, "link", n->link_up));
	}
	return a;
}

void qnet_forget_slots(struct vmm_vm *vm)
{
	for (int i = 0; i < QEMU_NET_SLOTS; i++)
		vm->nics[i].slot = -1;
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
	if (running(vm) && n->slot >= 0)
		return set_link(vm, n, err, errlen);
	return 0;
}
