/* qemu_bootdisk.c — boot-time disks for the qemu backend (docs/disks.md):
 * the disks of vm:boot{disks=} and the profile's `disks` / `root`,
 * cold-plugged on the QEMU command line instead of hotplugged.
 *
 * Disk i of a boot sits on pcie.0 at addr 0x08 + i (the root image, when
 * there is one, is i = 0 and so the guest's /dev/vda) with serial = id:
 *   copy-on-write (root; every disk of a fixture build or a restore):
 *            -blockdev driver=qcow2,node-name=bd<i>,file=<overlay>,
 *                      backing=raw <image>, read-only
 *            the overlay (<run dir>/bd<i>-<n>.qcow2, qcow2new.h) is
 *            provium's: the image never changes, and a snapshot carries
 *            the overlay (qemu_bootdisk_snap.c)
 *   others:  -blockdev driver=nbd,node-name=bd<i>,server=<run dir>/bd<i>.sock
 *            served by a write-back NBD server (nbdmed.h) over the image,
 *            so disk:power_cut() loses exactly what the guest did not flush
 * and -device virtio-blk-pci,drive=bd<i>,serial=<id>,bus=pcie.0,addr=0x<8+i>.
 * The servers end when QEMU does (qbdisk_stop_all): written through on
 * every stop but the power cut; overlays are removed then. Error
 * contract as qemu.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "errbuf.h"
#include "vmm/qcow2new.h"
#include "vmm/qemu_priv.h"

/* s with every ',' doubled (QEMU's option syntax), into buf. */
static int commas(char *buf, size_t len, const char *s)
{
	size_t n = 0;
	for (; *s; s++) {
		if (n + 3 >= len)
			return -1;
		buf[n++] = *s;
		if (*s == ',')
			buf[n++] = ',';
	}
	buf[n] = 0;
	return 0;
}

/* Append disk i's -blockdev (already in x->bdisk[i][0]) and its
 * virtio-blk device on pcie.0 (serial = its id) to x. */
static void add_disk(struct extra_args *x, size_t i, const char *serial)
{
	snprintf(x->bdisk[i][1], sizeof x->bdisk[i][1],
	         "virtio-blk-pci,drive=bd%zu,serial=%s,bus=pcie.0,addr=0x%zx", i, serial, 8 + i);
	x->v[x->n++] = "-blockdev";
	x->v[x->n++] = x->bdisk[i][0];
	x->v[x->n++] = "-device";
	x->v[x->n++] = x->bdisk[i][1];
	x->v[x->n] = NULL;
}

int qbdisk_stop_all(struct vmm_vm *vm, enum nbdmed_end how, char *err, size_t errlen)
{
	int rc = 0;
	for (size_t i = 0; i < vm->nbdisks; i++) {
		struct qbdisk *d = &vm->bdisks[i];
		char e[256];
		if (nbdmed_stop(&d->med, how, e, sizeof e) < 0 && rc == 0) {
			err_set(err, errlen, "disk `%s`: %s", d->id, e);
			rc = -1;
		}
		qbdisk_list_free(d, 1);
	}
	vm->nbdisks = 0;
	return rc;
}

void qbdisk_list_free(struct qbdisk *list, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct qbdisk *d = &list[i];
		if (d->overlay)
			unlink(d->overlay);
		free(d->overlay);
		free(d->id);
		free(d->image);
		memset(d, 0, sizeof *d);
		d->med.ctl = -1;
	}
}

int qbdisk_overlay_path(struct vmm_vm *vm, size_t i, char **out)
{
	static unsigned gen;    /* VMs may boot on several threads (workers) */
	unsigned n = __atomic_add_fetch(&gen, 1, __ATOMIC_RELAXED);
	char dir[4096];
	qvm_run_path(vm, "", dir, sizeof dir);
	if (asprintf(out, "%sbd%zu-%u.qcow2", dir, i, n) < 0) {
		*out = NULL;
		return -1;
	}
	unlink(*out);    /* a leftover of an earlier runner in this directory */
	return 0;
}

int qbdisk_cow_args(const struct qbdisk *d, size_t i, struct extra_args *x, char *err,
                    size_t errlen)
{
	char img[4200], ov[4200], serial[64];
	if (commas(serial, sizeof serial, d->id) < 0 || commas(img, sizeof img, d->image) < 0 ||
	    commas(ov, sizeof ov, d->overlay) < 0) {
		err_set(err, errlen, "disk `%s`: image path too long", d->id);
		return -1;
	}
	snprintf(x->bdisk[i][0], sizeof x->bdisk[i][0],
	         "driver=qcow2,node-name=bd%zu,file.driver=file,file.filename=%s,"
	         "backing.driver=raw,backing.read-only=on,backing.file.driver=file,"
	         "backing.file.filename=%s", i, ov, img);
	add_disk(x, i, serial);
	return 0;
}

int qbdisk_boot_args(struct vmm_vm *vm, const struct vmm_boot_opts *o, struct extra_args *x,
                     char *err, size_t errlen)
{
	char e[256];
	qbdisk_stop_all(vm, NBDMED_COMMIT, e, sizeof e);
	if (o->ndisks > VMM_BOOT_DISKS) {
		err_set(err, errlen, "%zu boot-time disks; at most %d", o->ndisks, VMM_BOOT_DISKS);
		return -1;
	}
	for (size_t i = 0; i < o->ndisks; i++) {
		struct qbdisk *d = &vm->bdisks[i];
		char serial[64], sock[4096], sk[4200], me[512];
		struct stat st;
		if (!(d->id = strdup(o->disks[i].id)) || !(d->image = strdup(o->disks[i].image))) {
			free(d->id);
			d->id = NULL;
			err_set(err, errlen, "out of memory");
			goto fail;
		}
		d->root = o->disks[i].root;
		d->cow = d->root || o->disks[i].cow;
		d->med.ctl = -1;
		vm->nbdisks++;
		if (stat(d->image, &st) < 0) {
			err_set(err, errlen, "disk `%s`: image `%s`: %s", d->id, d->image, strerror(errno));
			goto fail;
		}
		d->size = (uint64_t)st.st_size;
		if (d->cow) {
			if (qbdisk_overlay_path(vm, i, &d->overlay) < 0) {
				err_set(err, errlen, "out of memory");
				goto fail;
			}
			if (qcow2_create(d->overlay, d->size, me, sizeof me) < 0) {
				free(d->overlay);
				d->overlay = NULL;
				err_set(err, errlen, "disk `%s`: %s", d->id, me);
				goto fail;
			}
			if (qbdisk_cow_args(d, i, x, err, errlen) < 0)
				goto fail;
			continue;
		}
		if (commas(serial, sizeof serial, d->id) < 0) {
			err_set(err, errlen, "disk `%s`: id too long", d->id);
			goto fail;
		}
		qvm_run_path(vm, "", sock, sizeof sock);
		snprintf(sock + strlen(sock), sizeof sock - strlen(sock), "bd%zu.sock", i);
		if (nbdmed_start(d->image, sock, &d->med, me, sizeof me) < 0) {
			err_set(err, errlen, "disk `%s`: %s", d->id, me);
			goto fail;
		}
		if (commas(sk, sizeof sk, sock) < 0) {
			err_set(err, errlen, "disk `%s`: socket path too long", d->id);
			goto fail;
		}
		snprintf(x->bdisk[i][0], sizeof x->bdisk[i][0],
		         "driver=nbd,node-name=bd%zu,server.type=unix,server.path=%s", i, sk);
		add_disk(x, i, serial);
	}
	return 0;
fail:
	qbdisk_stop_all(vm, NBDMED_COMMIT, e, sizeof e);
	return -1;
}

void qbdisk_after_start(struct vmm_vm *vm, const struct vmm_boot_opts *o)
{
	for (size_t i = 0; i < o->ndisks && i < vm->nbdisks; i++) {
		char e[256];
		o->disks[i].dev[0] = 0;
		if (qdisk_guest_find(vm, o->disks[i].id, o->disks[i].dev, sizeof o->disks[i].dev,
		                     e, sizeof e) <= 0)
			o->disks[i].dev[0] = 0;
		snprintf(vm->bdisks[i].dev, sizeof vm->bdisks[i].dev, "%s", o->disks[i].dev);
	}
}

int qbdisk_faults(struct vmm_vm *vm, const char *id, unsigned faults, char *err, size_t errlen)
{
	for (size_t i = 0; i < vm->nbdisks; i++) {
		struct qbdisk *d = &vm->bdisks[i];
		if (strcmp(d->id, id))
			continue;
		if (d->root) {
			err_set(err, errlen, "the root disk takes no faults");
			return -1;
		}
		if (d->cow) {
			err_set(err, errlen, "disk `%s` is copy-on-write (a VM booted in a fixture "
			        "build or restored from a snapshot): it takes no faults", id);
			return -1;
		}
		return nbdmed_faults(&d->med, faults, err, errlen) < 0 ? -1 : 1;
	}
	return 0;
}

const char *qbdisk_write_back(const struct vmm_vm *vm)
{
	for (size_t i = 0; i < vm->nbdisks; i++)
		if (!vm->bdisks[i].cow)
			return vm->bdisks[i].id;
	return NULL;
}
