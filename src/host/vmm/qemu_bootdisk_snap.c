/* qemu_bootdisk_snap.c — boot-time disks in snapshots (docs/disks.md,
 * decisions.md "Snapshots of boot-time disks"): what vm:snapshot() records
 * of them and how vm:restore() brings them back.
 *
 * Only copy-on-write disks are captured (qbdisk_write_back names one that
 * is not: its writes reach the image, which a snapshot does not carry).
 * Taking (the VM stopped, so QEMU has flushed every overlay: `stop`
 * drains and flushes all block devices): the header's `disks` array
 * {id, image, root, size, dev, digest: the image's XXH3-128} and, per
 * disk in boot order, a section
 * "disk:<id>" holding the whole overlay file (only the clusters the guest
 * wrote, plus qcow2 metadata). The images stay out of the snapshot: they
 * are inputs (the fixture key hashes their content).
 *
 * Restoring: each disk opens the image the restoring VM's profile gives
 * its id (vmm_ops.restore_images: a cache entry built elsewhere names
 * that machine's paths), else the path the header recorded (a boot opt
 * disk), which must have the recorded size and digest (a fixture's boot
 * opt images are not in its key: a changed one must not be served as the
 * old disk; the error makes the cache evict and rebuild); each section is written to a NEW overlay in the VM's run
 * directory (the snapshot file is only read, so two restores are
 * independent and neither touches a cache entry), and QEMU opens it over
 * the image exactly as at boot (qbdisk_cow_args). The section's zstd
 * checksum is verified when its end is read, before QEMU ever opens the
 * copy: a damaged overlay fails the restore as a corrupt snapshot. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "config.h"
#include "errbuf.h"
#include "filehash.h"
#include "fsutil.h"
#include "snap/snapfile.h"
#include "vmm/qemu_priv.h"

#define COPY_CHUNK (1u << 20)

char *qbdisk_snapshot_json(const struct vmm_vm *vm, char *err, size_t errlen)
{
	json_t *a;
	char *txt;
	if (err && errlen)
		err[0] = 0;
	if (!vm->nbdisks)
		return NULL;
	if (!(a = json_array()))
		goto oom;
	for (size_t i = 0; i < vm->nbdisks; i++) {
		const struct qbdisk *d = &vm->bdisks[i];
		char hex[33];
		if (filehash_hex(d->image, hex) < 0) {
			err_set(err, errlen, "disk `%s`: image `%s`: %s", d->id, d->image, strerror(errno));
			json_decref(a);
			return NULL;
		}
		if (json_array_append_new(a, json_pack("{s:s,s:s,s:b,s:I,s:s,s:s}", "id", d->id,
		                                       "image", d->image, "root", d->root,
		                                       "size", (json_int_t)d->size, "dev",
		                                       d->dev, "digest", hex)) < 0) {
			json_decref(a);
			goto oom;
		}
	}
	txt = json_dumps(a, JSON_COMPACT);
	json_decref(a);
	if (txt)
		return txt;
oom:
	err_set(err, errlen, "out of memory");
	return NULL;
}

int qbdisk_write_sections(const struct vmm_vm *vm, struct snap_writer *w, char *err, size_t errlen)
{
	unsigned char *buf = NULL;
	int rc = -1;
	if (!vm->nbdisks)
		return 0;
	if (!(buf = malloc(COPY_CHUNK))) {
		err_set(err, errlen, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < vm->nbdisks; i++) {
		const struct qbdisk *d = &vm->bdisks[i];
		char name[64];
		int fd;
		ssize_t got;
		snprintf(name, sizeof name, "disk:%s", d->id);
		if ((fd = open(d->overlay, O_RDONLY | O_CLOEXEC)) < 0) {
			err_set(err, errlen, "disk `%s`: overlay `%s`: %s", d->id, d->overlay,
			        strerror(errno));
			goto out;
		}
		if (snapfile_section_begin(w, name, err, errlen) < 0) {
			close(fd);
			goto out;
		}
		while ((got = read(fd, buf, COPY_CHUNK)) != 0) {
			if (got < 0 && errno == EINTR)
				continue;
			if (got < 0) {
				err_set(err, errlen, "disk `%s`: reading overlay `%s`: %s", d->id,
				        d->overlay, strerror(errno));
				close(fd);
				goto out;
			}
			if (snapfile_write(w, buf, (size_t)got, err, errlen) < 0) {
				close(fd);
				goto out;
			}
		}
		close(fd);
		if (snapfile_section_end(w, err, errlen) < 0)
			goto out;
	}
	rc = 0;
out:
	free(buf);
	return rc;
}

void qbdisk_restore_images_clear(struct vmm_vm *vm)
{
	for (size_t i = 0; i < vm->nrimages; i++) {
		free(vm->rimages[i].id);
		free(vm->rimages[i].image);
	}
	memset(vm->rimages, 0, sizeof vm->rimages);
	vm->nrimages = 0;
}

int qbdisk_restore_images(struct vmm_vm *vm, const struct vmm_boot_disk *d, size_t n,
                          char *err, size_t errlen)
{
	qbdisk_restore_images_clear(vm);
	for (size_t i = 0; i < n && i < VMM_BOOT_DISKS; i++) {
		if (!(vm->rimages[i].id = strdup(d[i].id)) ||
		    !(vm->rimages[i].image = strdup(d[i].image))) {
			free(vm->rimages[i].id);
			vm->rimages[i].id = NULL;
			qbdisk_restore_images_clear(vm);
			err_set(err, errlen, "out of memory");
			return -1;
		}
		vm->nrimages = i + 1;
	}
	return 0;
}

/* The image the restoring VM gives disk id, else recorded. */
static const char *image_for(const struct vmm_vm *vm, const char *id, const char *recorded)
{
	for (size_t i = 0; i < vm->nrimages; i++)
		if (!strcmp(vm->rimages[i].id, id))
			return vm->rimages[i].image;
	return recorded;
}

int qbdisk_restore_list(struct vmm_vm *vm, const char *disks, struct qbdisk *out, size_t *n,
                        char *err, size_t errlen)
{
	json_t *a, *e;
	size_t i;
	*n = 0;
	if (!disks)
		return 0;
	a = json_loads(disks, 0, NULL);
	if (!json_is_array(a) || json_array_size(a) > VMM_BOOT_DISKS) {
		json_decref(a);
		err_set(err, errlen, "corrupt header (disk list)");
		return -1;
	}
	json_array_foreach(a, i, e) {
		struct qbdisk *d = &out[i];
		const char *id = json_string_value(json_object_get(e, "id"));
		const char *image = json_string_value(json_object_get(e, "image"));
		const char *dev = json_string_value(json_object_get(e, "dev"));
		const char *digest = json_string_value(json_object_get(e, "digest"));
		json_int_t size = json_integer_value(json_object_get(e, "size"));
		struct stat st;
		memset(d, 0, sizeof *d);
		d->med.ctl = -1;
		if (!id || !config_disk_id_ok(id) || !image || image[0] != '/' || size <= 0 ||
		    !json_is_boolean(json_object_get(e, "root"))) {
			err_set(err, errlen, "corrupt header (disk %zu)", i);
			goto fail;
		}
		image = image_for(vm, id, image);
		for (size_t j = 0; j < i; j++)
			if (!strcmp(out[j].id, id)) {
				err_set(err, errlen, "corrupt header (disk `%s` listed twice)", id);
				goto fail;
			}
		if (stat(image, &st) < 0) {
			err_set(err, errlen, "disk `%s`: image `%s`: %s", id, image, strerror(errno));
			goto fail;
		}
		if (!S_ISREG(st.st_mode)) {
			err_set(err, errlen, "disk `%s`: image `%s` is not a regular file", id, image);
			goto fail;
		}
		if ((uint64_t)st.st_size != (uint64_t)size) {
			err_set(err, errlen, "disk `%s`: image `%s` is %llu bytes; it was %llu at the "
			        "snapshot (the image changed)", id, image,
			        (unsigned long long)st.st_size, (unsigned long long)size);
			goto fail;
		}
		/* the overlay's clusters sit on the image's: an image whose
		 * bytes changed would give the guest a disk that never existed */
		if (digest) {
			char hex[33];
			if (filehash_hex(image, hex) < 0) {
				err_set(err, errlen, "disk `%s`: image `%s`: %s", id, image, strerror(errno));
				goto fail;
			}
			if (strcmp(hex, digest) != 0) {
				err_set(err, errlen, "disk `%s`: image `%s` changed since the snapshot (its "
				        "content digest differs): the snapshot's disk writes were made over "
				        "other data", id, image);
				goto fail;
			}
		}
		if (!(d->id = strdup(id)) || !(d->image = strdup(image))) {
			err_set(err, errlen, "out of memory");
			*n = i + 1;
			goto fail_n;
		}
		d->root = json_is_true(json_object_get(e, "root"));
		d->cow = true;
		d->size = (uint64_t)size;
		snprintf(d->dev, sizeof d->dev, "%s", dev ? dev : "");
		*n = i + 1;
	}
	json_decref(a);
	return 0;
fail:
	*n = i;
fail_n:
	json_decref(a);
	qbdisk_list_free(out, *n);
	*n = 0;
	return -1;
}

int qbdisk_restore_section(struct vmm_vm *vm, struct qbdisk *d, size_t i, const char *sect,
                           struct snap_reader *r, char *err, size_t errlen)
{
	unsigned char *buf;
	size_t got;
	int fd, rc = -1;
	if (strncmp(sect, "disk:", 5) || strcmp(sect + 5, d->id)) {
		err_set(err, errlen, "corrupt (section `%s` where disk `%s`'s overlay belongs)",
		        sect, d->id);
		return -1;
	}
	if (qbdisk_overlay_path(vm, i, &d->overlay) < 0 || !(buf = malloc(COPY_CHUNK))) {
		free(d->overlay);
		d->overlay = NULL;
		err_set(err, errlen, "out of memory");
		return -1;
	}
	if ((fd = open(d->overlay, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0) {
		err_set(err, errlen, "disk `%s`: overlay `%s`: %s", d->id, d->overlay, strerror(errno));
		free(d->overlay);
		d->overlay = NULL;
		free(buf);
		return -1;
	}
	for (;;) {
		/* got == 0 only after the section's checksum and length verified */
		if (snapfile_read(r, buf, COPY_CHUNK, &got, err, errlen) < 0)
			goto out;
		if (!got)
			break;
		if (write_all(fd, buf, got) < 0) {
			err_set(err, errlen, "disk `%s`: writing overlay `%s`: %s", d->id, d->overlay,
			        strerror(errno));
			goto out;
		}
	}
	rc = 0;
out:
	if (close(fd) < 0 && rc == 0) {
		err_set(err, errlen, "disk `%s`: overlay `%s`: %s", d->id, d->overlay, strerror(errno));
		rc = -1;
	}
	free(buf);
	return rc;
}

int qbdisk_restore_install(struct vmm_vm *vm, struct qbdisk *list, size_t n, struct extra_args *x,
                           char *err, size_t errlen)
{
	for (size_t i = 0; i < n; i++) {
		vm->bdisks[i] = list[i];
		memset(&list[i], 0, sizeof list[i]);
		vm->nbdisks = i + 1;
		if (!vm->bdisks[i].overlay) {
			err_set(err, errlen, "corrupt (no overlay section for disk `%s`)",
			        vm->bdisks[i].id);
			return -1;
		}
		if (qbdisk_cow_args(&vm->bdisks[i], i, x, err, errlen) < 0)
			return -1;
	}
	return 0;
}
