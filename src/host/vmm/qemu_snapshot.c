/* qemu_snapshot.c — vm:snapshot() and vm:restore() for the `qemu` VMM
 * backend (qemu_snapshot, qemu_restore in its vmm_ops table): the
 * snapshot header and section order, quiescing the agent channel, and
 * bringing up a new QEMU from a snapshot. The bytes themselves (RAM file,
 * migration stream) are moved by qemu_migrate.c; booting pieces shared with
 * qemu.c (initrd, accelerator, extra arguments, handshake) come from
 * qemu_priv.h. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "errbuf.h"
#include "events.h"
#include "proto/protocol.h"
#include "snap/snapfile.h"
#include "vmm/agent_client.h"
#include "vmm/guest_ops.h"
#include "vmm/qemu_launch.h"
#include "vmm/qemu_priv.h"
#include "vmm/qemu_ramsum.h"
#include "vmm/qemu_migrate.h"
#include "psi.h"
#include "vmm/qemu_spare.h"
#include "vmm/qmp.h"
#include "vmm/vmm.h"

/* ---- snapshots ---------------------------------------------------------------------------
 *
 * Take: the channel must be quiet (agent_client_pending after a Ping),
 * QMP `stop`, then the VM's boot-opt files (section "boot_files", the
 * newc archive merged into its initrd, when it has any: a restore boots
 * the same initrd, which vm:reset() reloads), then (fast path, RAM in a
 * shared file) the RAM file's non-zero pages as section "ram" and the
 * migration stream with x-ignore-shared (device state only) as section
 * "migration"; otherwise just the full migration stream. `cont` if the
 * VM was running: it keeps running after vm:snapshot().
 *
 * Boot-time disks (copy-on-write ones only; qemu_bootdisk_snap.c): the
 * header's `disks` and, after boot_files, one "disk:<id>" section each
 * with the overlay QEMU flushed at `stop`.
 *
 * Sections in order: [boot_files] [disk:<id>...] [ram] migration; a
 * snapshot without boot_files or disks (none at boot, or an older
 * provium) restores as before.
 *
 * Restore: a new QEMU with the header's memory/cpus and device layout,
 * -incoming defer and -S; with a "ram" section the RAM is first expanded
 * (once per snapshot file: "<snap>.ram-<ram_id>", reused while it exists)
 * into a sparse file that QEMU maps privately (share=off: copy-on-write,
 * the file is never written, many VMs share its page cache). Then
 * migrate-incoming, `cont`, a fresh Hello (the agent starts a new
 * session) and the guest wall clock set to the host's unless the VM had
 * pinned initial_time. vmgenid: the new QEMU picks a new generation id,
 * which the guest kernel turns into an RNG reseed. */

/* The device layouts a restore can rebuild (header "devices"; QEMU's
 * migration needs the very same devices on both sides). NICs
 * (virtio-net-pci on pcie.0 or in a root port) are listed in
 * backend_data "nics" (qemu_net.c). The hotplug root ports are there
 * only when the VM was booted with them (boot opt hotplug), so a restore
 * launches QEMU with exactly the ports the snapshot was taken with. */
#define SNAP_DEVICES "[\"q35\",\"virtio-serial-pci\",\"virtserialport:" QEMU_AGENT_PORT_NAME \
	"\",\"pcie-root-port*4\",\"isa-serial:console\",\"vmgenid\"]"
/* the same plus the seeded virtio-rng of a VM booted with rng_seed */
#define SNAP_DEVICES_RNG "[\"q35\",\"virtio-serial-pci\",\"virtserialport:" QEMU_AGENT_PORT_NAME \
	"\",\"pcie-root-port*4\",\"isa-serial:console\",\"vmgenid\",\"virtio-rng-pci\"]"
/* both without the hotplug root ports */
#define SNAP_DEVICES_NOSLOTS "[\"q35\",\"virtio-serial-pci\",\"virtserialport:" \
	QEMU_AGENT_PORT_NAME "\",\"isa-serial:console\",\"vmgenid\"]"
#define SNAP_DEVICES_NOSLOTS_RNG "[\"q35\",\"virtio-serial-pci\",\"virtserialport:" \
	QEMU_AGENT_PORT_NAME "\",\"isa-serial:console\",\"vmgenid\",\"virtio-rng-pci\"]"

/* The layout string of (slots, rng). */
static const char *snap_devices(bool slots, bool rng)
{
	return slots ? (rng ? SNAP_DEVICES_RNG : SNAP_DEVICES)
		     : (rng ? SNAP_DEVICES_NOSLOTS_RNG : SNAP_DEVICES_NOSLOTS);
}

/* Which layout devices names: 0 and *slots, *rng; -1 when none. */
static int snap_layout(const char *devices, bool *slots, bool *rng)
{
	for (int i = 0; devices && i < 4; i++) {
		if (!strcmp(devices, snap_devices(i & 1, i & 2))) {
			*slots = i & 1;
			*rng = i & 2;
			return 0;
		}
	}
	return -1;
}
#define RESTORE_HELLO_NS (INT64_C(15) * 1000000000)

static const char *qemu_version(struct vmm_vm *vm, char *err, size_t errlen)
{
	if (!vm->qemu_version && vm->qmp)
		vm->qemu_version = qmig_qemu_version(vm->qmp, err, errlen);
	return vm->qemu_version;
}

/* Is the VM running (not stopped/paused)? -1 on a QMP error. */
static int vm_running(struct vmm_vm *vm, char *err, size_t errlen)
{
	json_t *ret = NULL;
	int r;
	if (qmp_execute(vm->qmp, "query-status", NULL, QMP_TIMEOUT_MS, &ret, err, errlen) < 0)
		return -1;
	r = json_is_true(json_object_get(ret, "running"));
	json_decref(ret);
	return r;
}

int qemu_snapshot(struct vmm_vm *vm, const char *path, char *err, size_t errlen)
{
	struct snap_writer *w = NULL;
	struct snap_header h = { 0 };
	char bd[64], e2[256], *bdata = NULL, *disks = NULL;
	unsigned char rnd[16];
	const char *ver;
	int running, rc = -1;
	bool fast = vm->ram_fd >= 0;

	if (vm->gone)
		return qvm_fail_gone(vm, err, errlen);
	if (!vm->qmp || !vm->ac || agent_client_fd(vm->ac) < 0) {
		err_set(err, errlen, "the VM is not running");
		return -1;
	}
	if (qdisk_any(vm)) {
		err_set(err, errlen, "disk `%s` is attached: detach it first (a snapshot does "
		        "not carry hotplugged disks)", qdisk_any(vm));
		return -1;
	}
	if (qbdisk_write_back(vm)) {
		err_set(err, errlen, "boot-time disk `%s` writes through to its image, which a "
		        "snapshot does not carry: only copy-on-write disks (the profile's root, "
		        "every disk of a VM booted in a fixture build or restored from a "
		        "snapshot) can be snapshotted (docs/disks.md)", qbdisk_write_back(vm));
		return -1;
	}
	if (!(ver = qemu_version(vm, err, errlen)))
		return -1;
	if ((running = vm_running(vm, err, errlen)) < 0)
		return -1;
	/* Quiesce: nothing may be in flight on the agent channel (a reply or
	 * stream data would be lost across a restore, and the op would still
	 * be running in the restored guest). A Ping round trip first reads
	 * whatever the agent sent before its answer (a late reply, which ends
	 * an abandoned request; the tail of a closed stream); what is still
	 * outstanding after it is really in flight. A paused guest cannot
	 * answer: only what already arrived is read. */
	{
		struct agent_reply rep;
		struct agent_req none;
		char what[512];
		size_t n;
		agent_req_init(&none);
		if (running) {
			if (qvm_call(vm, PROTO_K_PING, &none, QMP_TIMEOUT_MS, &rep, err, errlen) < 0)
				return -1;
			agent_reply_free(&rep);
		} else if (agent_client_drain(vm->ac, err, errlen) < 0) {
			qvm_strip_vm_prefix(vm, err);
			return -1;
		}
		if ((n = agent_client_describe_pending(vm->ac, what, sizeof what)) > 0) {
			err_set(err, errlen, "refused: %zu agent operation%s in flight: %s; wait for %s to "
			       "finish (close its stream) before snapshotting", n, n == 1 ? " is" : "s are",
			       what, n == 1 ? "it" : "them");
			return -1;
		}
	}
	if (running && qvm_qmp_cmd(vm, "stop", NULL, err, errlen) < 0)
		return -1;
	{
		FILE *ur = fopen("/dev/urandom", "rbe");
		size_t got = ur ? fread(rnd, 1, sizeof rnd, ur) : 0;
		if (ur)
			fclose(ur);
		if (got != sizeof rnd) {
			uint64_t t = (uint64_t)qmp_now_ns() ^ (uint64_t)getpid() << 32;
			memcpy(rnd, &t, 8);
			memcpy(rnd + 8, &vm, sizeof vm < 8 ? sizeof vm : 8);
		}
	}
	{
		char id[33];
		json_t *o;
		char *txt;
		for (int i = 0; i < 16; i++)
			snprintf(id + 2 * i, 3, "%02x", rnd[i]);
		snprintf(bd, sizeof bd, "%llu", (unsigned long long)vm->rng_seed);
		/* rng_seed is a decimal string (u64 does not fit a JSON integer) */
		o = json_pack("{s:s,s:s,s:I,s:o,s:o}", "ram", fast ? "file" : "stream", "ram_id", id,
			      "ram_size", (json_int_t)vm->memory,
			      "rng_seed", vm->has_rng_seed ? json_string(bd) : json_integer(0),
			      "nics", qnet_snapshot_json(vm));
		txt = o ? json_dumps(o, JSON_COMPACT) : NULL;
		json_decref(o);
		if (!txt) {
			err_set(err, errlen, "out of memory");
			goto out;
		}
		bdata = txt;
	}
	h.vm_name = vm->name;
	h.profile = vm->profile ? vm->profile : (char *)(uintptr_t)"";
	h.backend = (char *)(uintptr_t)"qemu";
	h.qemu_version = (char *)(uintptr_t)ver;
	h.memory = vm->memory;
	h.cpus = vm->cpus;
	h.kernel_cmdline = vm->boot_cmdline;
	h.devices = (char *)(uintptr_t)snap_devices(vm->slots, vm->has_rng_seed);
	h.has_initial_time = vm->has_initial_time;
	h.backend_data = bdata;
	/* after `stop`: QEMU has drained and flushed every overlay */
	if (!(disks = qbdisk_snapshot_json(vm, err, errlen)) && *err)
		goto out;
	h.disks = disks;
	if (snapfile_create(&w, path, &h, err, errlen) < 0)
		goto out;
	if (vm->boot_cpio_len &&
	    (snapfile_section_begin(w, "boot_files", err, errlen) < 0 ||
	     snapfile_write(w, vm->boot_cpio, vm->boot_cpio_len, err, errlen) < 0 ||
	     snapfile_section_end(w, err, errlen) < 0))
		goto out;
	if (qbdisk_write_sections(vm, w, err, errlen) < 0)
		goto out;
	if (fast && (snapfile_section_begin(w, "ram", err, errlen) < 0 ||
		     qmig_write_ram(w, vm->ram_fd, vm->memory, err, errlen) < 0 ||
		     snapfile_section_end(w, err, errlen) < 0))
		goto out;
	if (snapfile_section_begin(w, "migration", err, errlen) < 0 ||
	    qmig_save_stream(vm->qmp, w, fast, err, errlen) < 0 ||
	    snapfile_section_end(w, err, errlen) < 0)
		goto out;
	rc = snapfile_finish(w, err, errlen);
	w = NULL;
out:
	free(bdata);
	free(disks);
	snapfile_abort(w);
	if (running && qvm_qmp_cmd(vm, "cont", NULL, rc < 0 ? e2 : err, rc < 0 ? sizeof e2 : errlen) < 0)
		rc = -1;
	if (rc < 0 && qmp_broken(vm->qmp))
		qvm_check_qemu_died(vm, 500, err, errlen);
	return rc;
}

/* Fill *fast, *ram_id (malloc'd) and vm's rng seed from the header's
 * backend_data. */
static int snap_backend_data(struct vmm_vm *vm, const struct snap_header *h, const char *path,
			     bool *fast, char **ram_id, json_t **nics, char *err, size_t errlen)
{
	json_t *o = h->backend_data ? json_loads(h->backend_data, 0, NULL) : NULL;
	const char *ram = json_string_value(json_object_get(o, "ram"));
	const char *id = json_string_value(json_object_get(o, "ram_id"));
	const char *seed = json_string_value(json_object_get(o, "rng_seed"));
	*fast = ram && !strcmp(ram, "file");
	*ram_id = NULL;
	/* rng_seed is a decimal string (u64 does not fit a JSON integer) */
	{
		bool slots, rng = false;
		snap_layout(h->devices, &slots, &rng);   /* checked by the caller */
		vm->has_rng_seed = rng;
	}
	vm->rng_seed = seed ? strtoull(seed, NULL, 10) : 0;
	if (*fast) {
		size_t n = id ? strlen(id) : 0;
		if (n != 32 || strspn(id, "0123456789abcdef") != n ||
		    json_integer_value(json_object_get(o, "ram_size")) != (json_int_t)h->memory) {
			json_decref(o);
			err_set(err, errlen, "snapshot `%s`: corrupt header (backend data)", path);
			return -1;
		}
		*ram_id = strdup(id);
	}
	*nics = json_incref(json_object_get(o, "nics"));
	if (*nics && !json_is_array(*nics)) {
		json_decref(*nics);
		*nics = NULL;
		json_decref(o);
		free(*ram_id);
		*ram_id = NULL;
		err_set(err, errlen, "snapshot `%s`: corrupt header (NIC list)", path);
		return -1;
	}
	json_decref(o);
	return 0;
}

#define BOOT_FILES_MAX (UINT64_C(1) << 30)

/* The whole current section of r (raw bytes long) into *buf. */
static int read_section(struct snap_reader *r, uint64_t raw, unsigned char **buf, size_t *len,
			char *err, size_t errlen)
{
	size_t have = 0, got;
	*buf = NULL;
	*len = 0;
	if (raw == 0 || raw > BOOT_FILES_MAX) {
		err_set(err, errlen, "corrupt (`boot_files` section of %llu bytes)",
		       (unsigned long long)raw);
		return -1;
	}
	if (!(*buf = malloc((size_t)raw + 1))) {
		err_set(err, errlen, "out of memory");
		return -1;
	}
	/* one byte of room past raw: the end must come exactly there */
	for (;;) {
		if (snapfile_read(r, *buf + have, (size_t)raw + 1 - have, &got, err, errlen) < 0)
			goto fail;
		if (!got)
			break;
		have += got;
		if (have > raw)
			break;
	}
	if (have != raw) {
		err_set(err, errlen, "corrupt (`boot_files` section length)");
		goto fail;
	}
	*len = have;
	return 0;
fail:
	free(*buf);
	*buf = NULL;
	return -1;
}

/* PROVIUM_TRACE_RESTORE=1: one stderr line per restore phase with the
 * milliseconds since the restore began (a measuring aid, off by default). */
static void restore_trace(int64_t t0, const char *phase)
{
	static int on = -1;
	if (on < 0) {
		const char *e = getenv("PROVIUM_TRACE_RESTORE");
		on = e && *e && strcmp(e, "0") != 0;
	}
	if (on)
		fprintf(stderr, "provium: restore: %8.2f ms  %s\n",
			(double)(qmp_now_ns() - t0) / 1e6, phase);
}

/* An expanded RAM file of this size is in place. */
static bool ram_file_ok(const char *p, uint64_t size)
{
	struct stat st;
	return stat(p, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size == size;
}

/* Where the expanded RAM file of snapshot path lives: next to it
 * ("<snap>.ram-<id>", shared by every restore), or, when that directory
 * is read-only (a shared cache volume served in place), in the VM's run
 * directory (expanded again by each restore, removed with the VM). */
static int ram_path_for(struct vmm_vm *vm, const char *path, const char *ram_id, char **out)
{
	const char *slash = strrchr(path, '/');
	char *dir = slash ? strndup(path, (size_t)(slash - path)) : strdup(".");
	bool writable = dir && access(dir, W_OK) == 0;
	free(dir);
	if (writable || !vm->dir)
		return asprintf(out, "%s.ram-%s", path, ram_id) < 0 ? -1 : 0;
	return asprintf(out, "%s/%s.ram-%s", vm->dir, slash ? slash + 1 : path, ram_id) < 0 ? -1 : 0;
}

int qemu_restore(struct vmm_vm *vm, const char *path, char *err, size_t errlen)
{
	struct snap_reader *r = NULL;
	struct snap_header h = { 0 };
	struct ram_args ra;
	char *ram_id = NULL, *ram_path = NULL, *initrd = NULL, apath[4096], qpath[4096];
	unsigned char *cpio = NULL;
	size_t cpio_len = 0;
	const char *sect, *ver;
	uint64_t raw;
	bool fast = false, have_h = false, expand = true, spare = false, spare_ok = false;
	bool slots = true, rng_dev = false;
	struct qemu_spec s = { 0 };
	struct extra_args xa = { .n = 0 };
	int afd = -1;
	json_t *nics = NULL;
	struct qbdisk rdisks[VMM_BOOT_DISKS];
	size_t nrd = 0;
	int rc = -1, k;
	int64_t deadline, t0 = qmp_now_ns();

	if (snapfile_open(&r, path, &h, err, errlen) < 0)
		return -1;
	restore_trace(t0, "snapshot header read");
	have_h = true;
	if (strcmp(h.backend, "qemu") != 0) {
		err_set(err, errlen, "snapshot `%s` was taken by the %s backend, not qemu", path, h.backend);
		goto out;
	}
	if (snap_layout(h.devices, &slots, &rng_dev) < 0) {
		err_set(err, errlen, "snapshot `%s`: its device layout %s is not one this provium builds",
		       path, h.devices ? h.devices : "(none)");
		goto out;
	}
	if (h.memory < (1u << 20) || h.cpus < 1) {
		err_set(err, errlen, "snapshot `%s`: corrupt header (memory/cpus)", path);
		goto out;
	}
	if (snap_backend_data(vm, &h, path, &fast, &ram_id, &nics, err, errlen) < 0)
		goto out;
	if (qbdisk_restore_list(vm, h.disks, rdisks, &nrd, err, errlen) < 0) {
		char e2[1024];
		snprintf(e2, sizeof e2, "snapshot `%s`: %s", path, err);
		err_set(err, errlen, "%s", e2);
		goto out;
	}
	k = snapfile_next_section(r, &sect, &raw, err, errlen);
	if (k == 1 && !strcmp(sect, "boot_files")) {
		if (read_section(r, raw, &cpio, &cpio_len, err, errlen) < 0) {
			char e2[1024];
			snprintf(e2, sizeof e2, "snapshot `%s`: %s", path, err);
			err_set(err, errlen, "%s", e2);
			goto out;
		}
		k = snapfile_next_section(r, &sect, &raw, err, errlen);
	}
	restore_trace(t0, "boot_files section read");
	for (size_t i = 0; i < nrd; i++) {
		if (k != 1 || qbdisk_restore_section(vm, &rdisks[i], i, sect, r, err, errlen) < 0) {
			char e2[1024];
			if (k == 1 && strncmp(err, "snapshot `", 10))
				snprintf(e2, sizeof e2, "snapshot `%s`: %s", path, err);
			else if (k == 0)
				snprintf(e2, sizeof e2, "snapshot `%s`: corrupt (no overlay section "
				         "for disk `%s`)", path, rdisks[i].id);
			else
				snprintf(e2, sizeof e2, "%s", err);
			err_set(err, errlen, "%s", e2);
			goto out;
		}
		k = snapfile_next_section(r, &sect, &raw, err, errlen);
	}
	if (nrd)
		restore_trace(t0, "disk overlays written");
	if (fast) {
		if (k != 1 || strcmp(sect, "ram") != 0) {
			if (k >= 0)
				err_set(err, errlen, "snapshot `%s`: corrupt (no `ram` section)", path);
			goto out;
		}
		if (ram_path_for(vm, path, ram_id, &ram_path) < 0) {
			ram_path = NULL;
			err_set(err, errlen, "out of memory");
			goto out;
		}
		/* Only complete files ever carry the final name (qmig_expand_ram
		 * renames a fsync'd temp), but the bytes in them are checked
		 * against the digest recorded at expansion before a guest sees
		 * them: a damaged file is expanded again from the snapshot. */
		if (ram_file_ok(ram_path, h.memory)) {
			char why[256];
			if (qspare_ram_checked(ram_path, qmp_now_ns() + RESTORE_HELLO_NS)) {
				expand = false;   /* a primed spare checked it */
			} else if (ramsum_check(ram_path, why, sizeof why) == 1) {
				expand = false;
			} else {
				event_diag("provium: warning: RAM file `%s` failed its integrity "
					   "check (%s); expanding it again from `%s`", ram_path, why, path);
				unlink(ram_path);
				ramsum_remove(ram_path);
			}
		}
		if (expand && qmig_expand_ram(r, ram_path, h.memory, err, errlen) < 0) {
			char e2[1024];
			snprintf(e2, sizeof e2, "snapshot `%s`: %s", path, err);
			err_set(err, errlen, "%s", e2);
			goto out;
		}
		k = snapfile_next_section(r, &sect, &raw, err, errlen);
		restore_trace(t0, "RAM file checked/expanded");
	}
	if (k != 1 || strcmp(sect, "migration") != 0) {
		if (k >= 0)
			err_set(err, errlen, "snapshot `%s`: corrupt (no `migration` section)", path);
		goto out;
	}

	/* The same machine: header memory/cpus/cmdline, the profile's kernel
	 * and the initrd it booted (profile + agent + its boot files): fw_cfg
	 * contents are not part of the stream, and vm:reset() boots them. */
	if (!vm->kernel || !qvm_file_exists(vm->kernel)) {
		err_set(err, errlen, "kernel `%s` not found (run `make guest` for the default profile)",
		       vm->kernel ? vm->kernel : "");
		goto out;
	}
	if (qvm_boot_initrd(vm, cpio, cpio_len, &initrd, err, errlen) < 0)
		goto out;
	restore_trace(t0, "initrd ready");
	qvm_stop_guest(vm);
	vm->slots = slots;   /* the new QEMU gets the snapshot's root ports */
	free(vm->gone);
	vm->gone = NULL;
	if (!vm->ac) {
		qvm_run_path(vm, "agent.sock", apath, sizeof apath);
		vm->ac = agent_client_listen(vm->name, apath, err, errlen);
		if (!vm->ac) {
			qvm_strip_vm_prefix(vm, err);
			goto out;
		}
		agent_client_set_watch(vm->ac, qvm_guest_watch, vm, QVM_WATCH_MS);
	}
	{
		struct qemu_spec s0 = {
			.name = vm->name, .run_dir = vm->dir, .kernel = vm->kernel, .initrd = initrd,
			.cmdline = h.kernel_cmdline, .memory = h.memory, .cpus = h.cpus,
			.accel = qvm_pick_accel(vm, initrd, h.kernel_cmdline), .agent = true,
			.console = true, .vmgenid = true, .disk_slots = slots,
			.incoming_defer = true, .paused = true,
		};
		s = s0;
		if (fast) {
			qvm_ram_args_set(&ra, ram_path, h.memory, false);
			qvm_extra_add_ram(&xa, &ra);
		}
		if (qvm_extra_add_rng(vm, &xa, err, errlen) < 0)
			goto out;
		if (qbdisk_restore_install(vm, rdisks, nrd, &xa, err, errlen) < 0)
			goto fail;
		if (qnet_restore_args(vm, nics, &xa, err, errlen) < 0) {
			char e2[1024];
			snprintf(e2, sizeof e2, "snapshot `%s`: %s", path, err);
			err_set(err, errlen, "%s", e2);
			goto out;
		}
		if (xa.n)
			s.extra = xa.v;
		s.pass_fds = xa.fds;
		s.npass_fds = xa.nfds;
		/* a seeded RNG has its generator per VM: no spare for it */
		spare_ok = !vm->has_rng_seed && !xa.nfds && !nrd;
		qvm_console_restart(vm);
		deadline = qmp_now_ns() + RESTORE_HELLO_NS;
		if (spare_ok && qspare_take(&s, path, vm->dir, deadline, &vm->proc, &vm->qmp, &afd) == 1) {
			agent_client_adopt_conn(vm->ac, afd);
			spare = true;
			restore_trace(t0, "warm spare QEMU taken (primed: stream loaded, past Hello, paused)");
		} else if (qemu_spawn(&s, &vm->proc, err, errlen) < 0) {
			goto out;
		}
	}
	if (!spare)
		restore_trace(t0, "QEMU spawned");
	qvm_run_path(vm, "qmp.sock", qpath, sizeof qpath);
	while (!vm->qmp) {
		int64_t slice = qmp_now_ns() + 250000000;
		if (qemu_wait(&vm->proc, 0) != 0)
			goto dead;
		vm->qmp = qmp_connect(qpath, slice < deadline ? slice : deadline, err, errlen);
		if (!vm->qmp && qmp_now_ns() >= deadline)
			goto fail;
	}
	if (!spare) {
		restore_trace(t0, "QMP connected");
		if (agent_client_accept(vm->ac, deadline, err, errlen) < 0)
			goto fail;
		restore_trace(t0, "agent socket accepted");
	}
	free(vm->qemu_version);
	vm->qemu_version = NULL;
	if (!(ver = qemu_version(vm, err, errlen)))
		goto fail;
	if (strcmp(ver, h.qemu_version) != 0) {
		err_set(err, errlen, "snapshot `%s` was taken with QEMU %s; this is QEMU %s", path,
		       h.qemu_version, ver);
		goto fail;
	}
	restore_trace(t0, "QEMU version checked");
	if (spare) {
		/* primed: the stream is loaded and Hello answered; only cont */
		if (qvm_qmp_cmd(vm, "cont", NULL, err, errlen) < 0)
			goto fail;
		restore_trace(t0, "cont");
		goto started;
	}
	if (qmig_load_stream(vm->qmp, r, fast, err, errlen) < 0) {
		char e2[1024];
		snprintf(e2, sizeof e2, "snapshot `%s`: %s", path, err);
		err_set(err, errlen, "%s", e2);
		goto fail;
	}
	k = snapfile_next_section(r, &sect, &raw, err, errlen);
	if (k != 0) {
		if (k > 0)
			err_set(err, errlen, "snapshot `%s`: corrupt (unexpected section `%s`)", path, sect);
		goto fail;
	}
	restore_trace(t0, "migration stream loaded");
	if (qvm_qmp_cmd(vm, "cont", NULL, err, errlen) < 0)
		goto fail;
	restore_trace(t0, "cont");
	if (qvm_handshake(vm, &vm->proc, NULL, vm->ac, false, deadline, err, errlen) < 0) {
		qvm_strip_vm_prefix(vm, err);
		goto fail;
	}
	restore_trace(t0, "agent Hello answered");
started:
	if (qnet_after_start(vm, err, errlen) < 0)
		goto fail;
	vm->memory = h.memory;
	vm->cpus = h.cpus;
	vm->has_initial_time = h.has_initial_time;
	free(vm->boot_cmdline);
	vm->boot_cmdline = h.kernel_cmdline ? strdup(h.kernel_cmdline) : NULL;
	free(vm->boot_cpio);
	vm->boot_cpio = cpio;
	vm->boot_cpio_len = cpio_len;
	cpio = NULL;
	vm->ram_fd = -1;
	if (!h.has_initial_time) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		if (guest_clock_set(&vmm_qemu_ops, vm, (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec,
				    err, errlen) < 0) {
			qvm_strip_vm_prefix(vm, err);
			goto fail;
		}
		restore_trace(t0, "guest clock set");
	}
	/* the next restore of this snapshot (the next test's fixture,
	 * reset_between_tests) takes a QEMU that is already up */
	if (spare_ok && qspare_prepare(&s, path, fast, vm->dir) == 1) {
		/* An idle host has a core for the spare's start-up while the
		 * guest runs its first op; a busy one gets it after that op. */
		if (psi_cpu_idle()) {
			qspare_launch_pending(1);
			restore_trace(t0, "warm spare QEMU launched (host CPU idle)");
		} else {
			restore_trace(t0, "warm spare QEMU wanted (launched after the first op)");
		}
	} else {
		restore_trace(t0, "restored (no warm spare)");
	}
	rc = 0;
	goto out;
dead:
	qvm_check_qemu_died(vm, 200, err, errlen);
fail:
	if (vm->proc.pid > 0 && !vm->proc.reaped && qemu_wait(&vm->proc, 0) == 1) {
		char what[1024];
		snprintf(what, sizeof what, "%s", err);
		qvm_check_qemu_died(vm, 0, err, errlen);
		if (!strstr(err, what)) {
			char both[2048];
			snprintf(both, sizeof both, "%s (%s)", what, err);
			err_set(err, errlen, "%s", both);
		}
	}
	free(vm->gone);
	vm->gone = NULL;
	qvm_stop_guest(vm);
out:
	qbdisk_list_free(rdisks, nrd);
	qbdisk_restore_images_clear(vm);
	json_decref(nics);
	snapfile_close(r);
	if (have_h)
		snap_header_free(&h);
	free(ram_id);
	free(ram_path);
	free(initrd);
	free(cpio);
	return rc;
}
