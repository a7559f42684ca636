/* qemu_disk.c — vm:attach_disk for the qemu backend: hotplug a host image
 * into the running guest as a virtio-blk disk, make the guest's I/O on it
 * fail or crawl (disk:fault_inject), unplug it (disk:detach).
 *
 * Every VM is launched with QEMU_DISK_SLOTS empty pcie-root-ports
 * ("pdisk<N>-port", qemu_launch.c); slot N uses these QEMU names:
 *
 *   pdisk<N>-file          blockdev, driver file (the image)
 *   pdisk<N>-tg<G>         object throttle-group (20 IOPS: ~50 ms a request)
 *   pdisk<N>-thr<G>        blockdev, driver throttle in that group, over -file
 *   pdisk<N>-dbg<G>        blockdev, driver blkdebug (EIO rules), over -thr
 *                          or -file
 *   pdisk<N>               blockdev, driver raw: the device's drive; its
 *                          `file` child is the top of the fault chain
 *   pdisk<N>-dev           virtio-blk-pci in pdisk<N>-port, serial = id
 *
 * A fault change builds a new chain (generation G+1) under the raw node
 * and switches to it with blockdev-reopen, then deletes the old chain. The
 * raw node fires blkdebug's read_aio / write_aio events before each guest
 * read / write, so the EIO rules (restricted by iotype) hit exactly the
 * guest's reads or writes; flushes pass.
 *
 * attach returns once the guest kernel shows the disk (a /sys/block/vd*
 * whose serial is the id, and its /dev node), so a test can use the device
 * at once. Errors: 0 / -1 with err filled (no "vm `x`:" prefix). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "errbuf.h"
#include "vmm/qemu_priv.h"

#define QDISK_SERIAL_MAX   20      /* virtio-blk's serial field */
#define QDISK_SEEN_MS      15000   /* guest shows a new disk */
#define QDISK_DELETED_MS   10000   /* guest lets go of an unplugged disk */
#define QDISK_SLOW_IOPS    20      /* "slow": about 50 ms per request */

static struct qdisk *find(struct vmm_vm *vm, const char *id)
{
	for (int i = 0; i < QEMU_DISK_SLOTS; i++)
		if (vm->disks[i].id && !strcmp(vm->disks[i].id, id))
			return &vm->disks[i];
	return NULL;
}

static int slot_of(const struct vmm_vm *vm, const struct qdisk *d)
{
	return (int)(d - vm->disks);
}

static int qmp_do(struct vmm_vm *vm, const char *cmd, json_t *args, char *err, size_t errlen)
{
	int rc;
	if (!args) {
		err_set(err, errlen, "%s: out of memory", cmd);
		return -1;
	}
	rc = qmp_execute(vm->qmp, cmd, args, QMP_TIMEOUT_MS, NULL, err, errlen);
	json_decref(args);
	return rc;
}

/* blockdev-del / object-del that must not disturb the caller's err. */
static void del_node(struct vmm_vm *vm, const char *node)
{
	char e[256];
	qmp_do(vm, "blockdev-del", json_pack("{s:s}", "node-name", node), e, sizeof e);
}

static void del_object(struct vmm_vm *vm, const char *id)
{
	char e[256];
	qmp_do(vm, "object-del", json_pack("{s:s}", "id", id), e, sizeof e);
}

/* Delete generation gen of slot n's fault chain (what faults built),
 * parents first. */
static void del_chain(struct vmm_vm *vm, int n, unsigned gen, unsigned faults)
{
	char name[64];
	if (faults & (VMM_DISK_EIO_READ | VMM_DISK_EIO_WRITE)) {
		snprintf(name, sizeof name, "pdisk%d-dbg%u", n, gen);
		del_node(vm, name);
	}
	if (faults & VMM_DISK_SLOW) {
		snprintf(name, sizeof name, "pdisk%d-thr%u", n, gen);
		del_node(vm, name);
		snprintf(name, sizeof name, "pdisk%d-tg%u", n, gen);
		del_object(vm, name);
	}
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* The guest's /dev/vdX whose serial is serial, into dev; 1 found, 0 not
 * (yet), -1 the agent failed. */
int qdisk_guest_find(struct vmm_vm *vm, const char *serial, char *dev, size_t devlen,
                     char *err, size_t errlen)
{
	struct vmm_dirent *ents = NULL;
	size_t n = 0;
	int found = 0;
	if (vmm_qemu_ops.listdir(vm, "/sys/block", &ents, &n, err, errlen) < 0)
		return -1;
	for (size_t i = 0; i < n && !found; i++) {
		char path[300], *data = NULL, e[256];
		size_t len = 0;
		struct vmm_stat st;
		if (strncmp(ents[i].name, "vd", 2))
			continue;
		snprintf(path, sizeof path, "/sys/block/%s/serial", ents[i].name);
		if (vmm_qemu_ops.read_file(vm, path, &data, &len, e, sizeof e) < 0)
			continue;
		while (len && (data[len - 1] == '\n' || data[len - 1] == '\0'))
			len--;
		if (len == strlen(serial) && !memcmp(data, serial, len)) {
			snprintf(path, sizeof path, "/dev/%s", ents[i].name);
			if (vmm_qemu_ops.stat(vm, path, &st, e, sizeof e) == 0) {
				snprintf(dev, devlen, "%s", path);
				found = 1;
			}
		}
		free(data);
	}
	vmm_dirents_free(ents, n);
	return found;
}

/* device_del, then wait for its DEVICE_DELETED. 0, or -1 (not released). */
static int unplug_device(struct vmm_vm *vm, int n, char *err, size_t errlen)
{
	char qdev[32];
	int64_t deadline = qmp_now_ns() + (int64_t)QDISK_DELETED_MS * 1000000;
	snprintf(qdev, sizeof qdev, "pdisk%d-dev", n);
	if (qmp_do(vm, "device_del", json_pack("{s:s}", "id", qdev), err, errlen) < 0)
		return -1;
	for (;;) {
		json_t *ev = NULL;
		int left = (int)((deadline - qmp_now_ns()) / 1000000);
		if (left <= 0 ||
		    qmp_wait_event(vm->qmp, "DEVICE_DELETED", left, &ev, err, errlen) < 0) {
			err_set(err, errlen, "the guest did not release the disk within %d s",
			        QDISK_DELETED_MS / 1000);
			return -1;
		}
		const char *d = json_string_value(json_object_get(json_object_get(ev, "data"),
		                                                  "device"));
		bool ours = d && !strcmp(d, qdev);
		json_decref(ev);
		if (ours)
			return 0;
	}
}

static void slot_free(struct qdisk *d)
{
	free(d->id);
	free(d->image);
	memset(d, 0, sizeof *d);
}

int qdisk_attach(struct vmm_vm *vm, const char *id, const char *image,
                 char *dev, size_t devlen, char *err, size_t errlen)
{
	char file[32], fmt[32], qdev[32], port[32], serial[QDISK_SERIAL_MAX + 1];
	struct qdisk *d = NULL;
	int n, found = 0;
	int64_t deadline;

	if (vm->gone)
		return qvm_fail_gone(vm, err, errlen);
	if (!vm->qmp) {
		err_set(err, errlen, "the guest is not running");
		return -1;
	}
	if (find(vm, id)) {
		err_set(err, errlen, "disk `%s` is already plugged", id);
		return -1;
	}
	if (!vm->slots) {
		err_set(err, errlen, "cannot attach disk `%s`: " QVM_NO_SLOTS_ERR, id);
		return -1;
	}
	for (n = 0; n < QEMU_DISK_SLOTS && !d; n++)
		if (!vm->disks[n].id && !vm->disks[n].stuck && !qnet_port_used(vm, n))
			d = &vm->disks[n];
	if (!d) {
		err_set(err, errlen, "all %d hotplug slots of this VM are in use (disks and NICs "
		        "attached while it ran)", QEMU_DISK_SLOTS);
		return -1;
	}
	n = slot_of(vm, d);
	snprintf(file, sizeof file, "pdisk%d-file", n);
	snprintf(fmt, sizeof fmt, "pdisk%d", n);
	snprintf(qdev, sizeof qdev, "pdisk%d-dev", n);
	snprintf(port, sizeof port, "pdisk%d-port", n);
	snprintf(serial, sizeof serial, "%s", id);

	if (qmp_do(vm, "blockdev-add", json_pack("{s:s, s:s, s:s}", "driver", "file",
	                                         "node-name", file, "filename", image),
	           err, errlen) < 0)
		return -1;
	if (qmp_do(vm, "blockdev-add", json_pack("{s:s, s:s, s:s}", "driver", "raw",
	                                         "node-name", fmt, "file", file),
	           err, errlen) < 0) {
		del_node(vm, file);
		return -1;
	}
	if (qmp_do(vm, "device_add", json_pack("{s:s, s:s, s:s, s:s, s:s}",
	                                       "driver", "virtio-blk-pci", "id", qdev,
	                                       "drive", fmt, "bus", port, "serial", serial),
	           err, errlen) < 0) {
		del_node(vm, fmt);
		del_node(vm, file);
		return -1;
	}
	d->id = strdup(id);
	d->image = strdup(image);
	if (!d->id || !d->image) {
		err_set(err, errlen, "out of memory");
		goto unplug;
	}
	deadline = qmp_now_ns() + (int64_t)QDISK_SEEN_MS * 1000000;
	while ((found = qdisk_guest_find(vm, serial, dev, devlen, err, errlen)) == 0 &&
	       qmp_now_ns() < deadline)
		sleep_ms(20);
	if (found == 1)
		return 0;
	if (found == 0)
		err_set(err, errlen, "the guest did not show the disk within %d s "
		        "(does its kernel have virtio_blk and PCIe hotplug?)", QDISK_SEEN_MS / 1000);
unplug:
	{
		char e[256];
		if (unplug_device(vm, n, e, sizeof e) < 0) {
			d->stuck = true;
			return -1;
		}
		del_node(vm, fmt);
		del_node(vm, file);
		slot_free(d);
	}
	return -1;
}

/* The blkdebug rules for faults, as a new JSON array. */
static json_t *eio_rules(unsigned faults)
{
	json_t *a = json_array();
	if (a && (faults & VMM_DISK_EIO_READ))
		json_array_append_new(a, json_pack("{s:s, s:s, s:i}", "event", "read_aio",
		                                   "iotype", "read", "errno", EIO));
	if (a && (faults & VMM_DISK_EIO_WRITE))
		json_array_append_new(a, json_pack("{s:s, s:s, s:i}", "event", "write_aio",
		                                   "iotype", "write", "errno", EIO));
	return a;
}

int qdisk_faults(struct vmm_vm *vm, const char *id, unsigned faults,
                 char *err, size_t errlen)
{
	struct qdisk *d = find(vm, id);
	char file[32], fmt[32], dbg[32], tg[32], thr[32];
	const char *top;
	unsigned gen;
	int n;

	if (vm->gone)
		return qvm_fail_gone(vm, err, errlen);
	if (!d) {
		int b = qbdisk_faults(vm, id, faults, err, errlen);
		if (b)
			return b > 0 ? 0 : -1;
		err_set(err, errlen, "disk `%s` is not plugged", id);
		return -1;
	}
	if (d->faults == faults)
		return 0;
	n = slot_of(vm, d);
	gen = d->gen + 1;
	snprintf(file, sizeof file, "pdisk%d-file", n);
	snprintf(fmt, sizeof fmt, "pdisk%d", n);
	snprintf(dbg, sizeof dbg, "pdisk%d-dbg%u", n, gen);
	snprintf(tg, sizeof tg, "pdisk%d-tg%u", n, gen);
	snprintf(thr, sizeof thr, "pdisk%d-thr%u", n, gen);
	/* raw -> [blkdebug] -> [throttle] -> file: blkdebug must be the raw
	 * node's child, since the read_aio / write_aio events that arm its
	 * rules are fired by raw at its child */
	top = file;
	if (faults & VMM_DISK_SLOW) {
		if (qmp_do(vm, "object-add",
		           json_pack("{s:s, s:s, s:{s:i}}", "qom-type", "throttle-group", "id", tg,
		                     "limits", "iops-total", QDISK_SLOW_IOPS),
		           err, errlen) < 0)
			return -1;
		if (qmp_do(vm, "blockdev-add",
		           json_pack("{s:s, s:s, s:s, s:s}", "driver", "throttle", "node-name", thr,
		                     "throttle-group", tg, "file", top),
		           err, errlen) < 0) {
			del_object(vm, tg);
			return -1;
		}
		top = thr;
	}
	if (faults & (VMM_DISK_EIO_READ | VMM_DISK_EIO_WRITE)) {
		json_t *rules = eio_rules(faults);
		if (qmp_do(vm, "blockdev-add",
		           rules ? json_pack("{s:s, s:s, s:s, s:o}", "driver", "blkdebug",
		                             "node-name", dbg, "image", top, "inject-error", rules)
		                 : NULL,
		           err, errlen) < 0)
			goto fail;
		top = dbg;
	}
	if (qmp_do(vm, "blockdev-reopen",
	           json_pack("{s:[{s:s, s:s, s:s}]}", "options", "driver", "raw",
	                     "node-name", fmt, "file", top),
	           err, errlen) < 0)
		goto fail_all;
	del_chain(vm, n, d->gen, d->faults);
	d->gen = gen;
	d->faults = faults;
	return 0;
fail_all:
	del_chain(vm, n, gen, faults);
	return -1;
fail:
	del_chain(vm, n, gen, faults & VMM_DISK_SLOW);
	return -1;
}

int qdisk_detach(struct vmm_vm *vm, const char *id, char *err, size_t errlen)
{
	struct qdisk *d = find(vm, id);
	char name[32];
	int n;
	if (vm->gone)
		return qvm_fail_gone(vm, err, errlen);
	if (!d) {
		err_set(err, errlen, "Device not found: disk `%s` is not plugged", id);
		return -1;
	}
	n = slot_of(vm, d);
	if (unplug_device(vm, n, err, errlen) < 0) {
		d->stuck = true;   /* the id stays: a re-attach of it is refused */
		return -1;
	}
	snprintf(name, sizeof name, "pdisk%d", n);
	del_node(vm, name);
	del_chain(vm, n, d->gen, d->faults);
	snprintf(name, sizeof name, "pdisk%d-file", n);
	del_node(vm, name);
	slot_free(d);
	return 0;
}

const char *qdisk_any(const struct vmm_vm *vm)
{
	for (int i = 0; i < QEMU_DISK_SLOTS; i++)
		if (vm->disks[i].id)
			return vm->disks[i].id;
	return NULL;
}

void qdisk_forget_all(struct vmm_vm *vm)
{
	for (int i = 0; i < QEMU_DISK_SLOTS; i++)
		slot_free(&vm->disks[i]);
}
