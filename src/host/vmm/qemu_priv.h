/* qemu_priv.h — private to the `qemu` VMM backend (qemu.c, qemu_ops.c,
 * qemu_snapshot.c, qemu_net.c, qemu_disk.c); nothing outside
 * src/host/vmm/qemu*.c includes it.
 *
 * It holds what those files share: struct vmm_vm (one VM: its profile,
 * run directory and running QEMU), the agent round trip (qvm_call; the
 * requests themselves come from vmm/agent_codec.h), and the helpers that boot and restore both need (initrd,
 * accelerator, extra QEMU arguments, handshake, "gone" bookkeeping).
 * Everything used by one file only stays `static` there. Error contract
 * as in qemu.c: 0 / -1 with err filled, no "vm `x`:" prefix. */
#ifndef PROVIUM_QEMU_PRIV_H
#define PROVIUM_QEMU_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>
#include <msgpack.h>

#include "vmm/agent_client.h"
#include "vmm/agent_codec.h"
#include "vmm/conwatch.h"
#include "vmm/nbdmed.h"
#include "vmm/qemu_launch.h"
#include "vmm/qmp.h"
#include "vmm/vmm.h"

#define QMP_TIMEOUT_MS 5000

struct vmm_vm {
	char *name;
	char *dir;                /* run directory */
	bool dir_tmp;             /* a /tmp fallback: removed at destroy */
	/* the profile, copied at create */
	char *kernel, *initrd, *cmdline, *overlay_path, *accel;
	bool inject_agent;
	int64_t agent_boot_timeout_ns;
	char *profile;            /* profile name (snapshot header) */
	/* as booted or restored (snapshot header) */
	uint64_t memory;          /* bytes, MiB-rounded */
	int cpus;
	bool has_initial_time;
	bool slots;               /* the running QEMU has the hotplug root ports */
	char *boot_cmdline;       /* the final kernel cmdline */
	/* the boot-opt `files` as the newc archive merged into the initrd
	 * (NULL when none): a snapshot carries it ("boot_files" section) so
	 * the restored QEMU boots the same initrd on vm:reset() */
	unsigned char *boot_cpio;
	size_t boot_cpio_len;
	char *qemu_version;       /* query-version, fetched once */
	/* fast path: guest RAM in an unlinked /dev/shm file QEMU maps
	 * share=on (it opens /proc/<us>/fd/<ram_fd>); -1 when the RAM is
	 * anonymous or a private mapping of a restored snapshot's RAM */
	int ram_fd;
	/* rng_seed: virtio-rng fed from a FIFO by a seeded generator
	 * (rngfeed.c); rng_pid is that generator while the guest runs */
	bool has_rng_seed;
	uint64_t rng_seed;
	pid_t rng_pid;
	/* hotplugged disks (qemu_disk.c), one per pcie-root-port; cleared
	 * whenever QEMU stops (qvm_stop_guest) */
	struct qdisk {
		char *id;             /* NULL = slot free */
		char *image;
		unsigned faults;      /* VMM_DISK_* currently in the node chain */
		unsigned gen;         /* names of the current fault-chain nodes */
		bool stuck;           /* device_del never completed: slot unusable */
	} disks[QEMU_DISK_SLOTS];
	/* boot-time disks (qemu_bootdisk.c) of the running QEMU, cold-plugged
	 * on pcie.0 at addr 0x08 + index; a copy-on-write one (root, and
	 * every disk of a fixture build or a restore) writes to its qcow2
	 * overlay in the run directory, the others are served by their
	 * write-back NBD server (nbdmed.h). Emptied when QEMU stops. */
	struct qbdisk {
		char *id, *image;
		bool root;
		bool cow;
		char *overlay;        /* cow: the qcow2 overlay (owned, removed at stop) */
		uint64_t size;        /* the image's size in bytes */
		char dev[64];         /* the guest's /dev/vdX, "" when unknown */
		struct nbdmed med;
	} bdisks[VMM_BOOT_DISKS];
	size_t nbdisks;
	/* the images the next restore opens by disk id (qemu_restore_images) */
	struct { char *id, *image; } rimages[VMM_BOOT_DISKS];
	size_t nrimages;
	/* NICs (qemu_net.c), entries in nic_add order. Where the running
	 * QEMU has one: cold >= 0 = on pcie.0 at addr 0x10 + cold (boot,
	 * restore); port >= 0 = hotplugged into root port pdisk<port>-port;
	 * both -1 = not plugged (before the next boot) */
	struct qnic {
		char *id;             /* the bridge's name; NULL = entry free */
		char mac[18];
		int fd;               /* QEMU's end of the NIC's socketpair */
		int host;             /* the other end (switch ports get dups) */
		int cold, port;
		bool link_up;
	} nics[QEMU_NET_SLOTS];
	/* the running guest */
	struct qemu_proc proc;
	struct qmp *qmp;
	struct agent_client *ac;
	char *gone;               /* why ops fail fast; NULL while usable */
	bool paused;              /* QMP stop, no cont yet: the agent cannot answer,
	                           * so handle cleanup skips its round trips */
	/* console.log watched for a kernel panic (conwatch.h): polled by the
	 * handshake and, as the agent channel's watch, while an op waits;
	 * reset whenever a new QEMU recreates the log */
	struct conwatch con;
	char pathbuf[4096];       /* qemu_run_path_op's answer */
	int refs;                 /* 1 for the VM + 1 per open file/process */
	bool destroyed;
};

/* ---- agent requests (qemu_ops.c) ---------------------------------------- */

/* One request/response with the agent (r NULL: no fields). On failure
 * err says why (without the "vm `x`:" prefix); an agent-side errno is
 * left in errno. reply must be freed by the caller on success only. */
int qvm_call(struct vmm_vm *vm, int kind, const struct agent_req *r, int timeout_ms,
	     struct agent_reply *reply, char *err, size_t errlen);

/* ---- the VM and its QEMU (qemu.c) ----------------------------------------- */

/* "<run dir>/<leaf>" into buf ("" when it does not fit). */
void qvm_run_path(const struct vmm_vm *vm, const char *leaf, char *buf, size_t len);

/* Strip a leading "vm `<name>`: " (lvm.c adds its own) in place. */
void qvm_strip_vm_prefix(const struct vmm_vm *vm, char *err);

/* The last max bytes of <dir>/<leaf>, starting at a line boundary when
 * one is near; NUL-terminated, \r removed. malloc'd, or NULL. */
char *qvm_file_tail(const struct vmm_vm *vm, const char *leaf, size_t max, size_t *outlen);

/* Kill QEMU, reap it, close both channels. Safe to repeat. */
void qvm_stop_guest(struct vmm_vm *vm);

/* ---- disks (qemu_disk.c) ---- */
int qdisk_attach(struct vmm_vm *vm, const char *id, const char *image,
                 char *dev, size_t devlen, char *err, size_t errlen);
int qdisk_faults(struct vmm_vm *vm, const char *id, unsigned faults,
                 char *err, size_t errlen);
int qdisk_detach(struct vmm_vm *vm, const char *id, char *err, size_t errlen);
/* The id of a plugged disk (a snapshot refuses while there is one), or NULL. */
const char *qdisk_any(const struct vmm_vm *vm);
/* Forget every slot (QEMU is gone). */
void qdisk_forget_all(struct vmm_vm *vm);
/* The guest's /dev/vdX whose serial is serial; 1 found, 0 not, -1 error. */
int qdisk_guest_find(struct vmm_vm *vm, const char *serial, char *dev, size_t devlen,
                     char *err, size_t errlen);

/* ---- boot-time disks (qemu_bootdisk.c) ---- */
struct extra_args;
/* Boot: start each disk's server and add its -blockdev/-drive and
 * -device arguments to x. */
int qbdisk_boot_args(struct vmm_vm *vm, const struct vmm_boot_opts *o, struct extra_args *x,
                     char *err, size_t errlen);
/* After the handshake: fill each disk's dev in o. */
void qbdisk_after_start(struct vmm_vm *vm, const struct vmm_boot_opts *o);
/* Is id a boot-time disk of the running QEMU? Then apply faults: 1 done,
 * -1 failed (err); 0 = not one. */
int qbdisk_faults(struct vmm_vm *vm, const char *id, unsigned faults, char *err, size_t errlen);
/* The id of a boot-time disk that is not copy-on-write (a snapshot
 * refuses while there is one: its writes reach the image), or NULL. */
const char *qbdisk_write_back(const struct vmm_vm *vm);
/* Snapshot side, the VM stopped (QEMU flushed its overlays): the header's
 * `disks` array text (malloc'd; NULL when the VM has none, *err empty, or
 * on OOM with err), and one "disk:<id>" section per disk holding its
 * overlay file. */
char *qbdisk_snapshot_json(const struct vmm_vm *vm, char *err, size_t errlen);
struct snap_writer;
int qbdisk_write_sections(const struct vmm_vm *vm, struct snap_writer *w, char *err, size_t errlen);
/* Restore side: the disks of header text disks (NULL = none) into
 * out[0..*n), checked (ids, images present with the recorded sizes) —
 * no files yet. qbdisk_restore_section writes the current "disk:<id>"
 * section of r (name checked against out[i]) to a new overlay in the run
 * directory; qbdisk_restore_install moves the list into the VM (QEMU
 * stopped) and adds its arguments; qbdisk_list_free frees a list not
 * installed (removing its overlays). */
struct snap_reader;
/* A fresh overlay name for disk i in the run directory (malloc'd). */
int qbdisk_overlay_path(struct vmm_vm *vm, size_t i, char **out);
/* The -blockdev/-device arguments of copy-on-write disk d at index i. */
int qbdisk_cow_args(const struct qbdisk *d, size_t i, struct extra_args *x, char *err,
                    size_t errlen);
int qbdisk_restore_list(struct vmm_vm *vm, const char *disks, struct qbdisk *out, size_t *n,
                        char *err, size_t errlen);
/* vmm_ops.restore_images; qbdisk_restore_images_clear drops the list. */
int qbdisk_restore_images(struct vmm_vm *vm, const struct vmm_boot_disk *d, size_t n,
                          char *err, size_t errlen);
void qbdisk_restore_images_clear(struct vmm_vm *vm);
int qbdisk_restore_section(struct vmm_vm *vm, struct qbdisk *d, size_t i, const char *sect,
                           struct snap_reader *r, char *err, size_t errlen);
int qbdisk_restore_install(struct vmm_vm *vm, struct qbdisk *list, size_t n, struct extra_args *x,
                           char *err, size_t errlen);
void qbdisk_list_free(struct qbdisk *list, size_t n);
/* QEMU is gone: end the servers, writing held data through (or dropping
 * it: the power cut). 0, or -1 with err (the first failure). */
int qbdisk_stop_all(struct vmm_vm *vm, enum nbdmed_end how, char *err, size_t errlen);

/* Mark the VM unusable with reason (ops then fail fast with it). */
void qvm_set_gone(struct vmm_vm *vm, const char *reason);

/* After a failed channel operation: if the guest died — a kernel panic
 * on the console, or QEMU exited (or does so within wait_ms) — describe
 * that into err (the panic line and the console around it, or QEMU's
 * status and the console tail), mark the VM gone and stop QEMU. Returns
 * true when the guest is gone. */
bool qvm_check_qemu_died(struct vmm_vm *vm, int wait_ms, char *err, size_t errlen);

/* -1 with EIO and "the VM is gone: <why>". */
int qvm_fail_gone(struct vmm_vm *vm, char *err, size_t errlen);

/* One QMP command (reply ignored); a broken QMP marks the VM gone. */
int qvm_qmp_cmd(struct vmm_vm *vm, const char *cmd, json_t *args, char *err, size_t errlen);

/* p exists and is a regular file. */
bool qvm_file_exists(const char *p);

/* The initrd QEMU gets: the profile's, merged with the agent overlay and
 * the boot-files archive (cpio) when there are any. *out malloc'd (NULL
 * = none). */
int qvm_boot_initrd(const struct vmm_vm *vm, const unsigned char *cpio, size_t cpio_len,
		    char **out, char *err, size_t errlen);

/* Wait for QMP (when qmp is non-NULL), QEMU's connection to agent.sock
 * (when accept) and HelloOk, in slices so that an early QEMU exit or a
 * kernel panic on the console is seen at once. 0, or -1 with err. */
int qvm_handshake(struct vmm_vm *vm, struct qemu_proc *proc, struct qmp **qmp,
		  struct agent_client *ac, bool accept, int64_t deadline, char *err, size_t errlen);

/* A new QEMU is about to (re)create console.log: remove the old log and
 * start watching afresh. */
void qvm_console_restart(struct vmm_vm *vm);

/* The agent channel's watch (agent_client_set_watch, ctx = the VM, every
 * QVM_WATCH_MS): -1 with why once the console shows a kernel panic or
 * QEMU has exited, so a waiting op fails at once, not at its timeout. */
#define QVM_WATCH_MS 250
int qvm_guest_watch(void *ctx, char *why, size_t whylen);

/* The accelerator for this VM ($PROVIUM_ACCEL, then the profile's;
 * "auto" probes KVM by booting this guest). */
enum accel_kind qvm_pick_accel(const struct vmm_vm *vm, const char *initrd, const char *cmdline);

/* Drop one reference; the last frees the VM. */
void qvm_vm_unref(struct vmm_vm *vm);

/* The extra QEMU arguments that put guest RAM in a memory-backend-file. */
struct ram_args {
	char obj[4200];
	const char *v[5];
};

/* The QEMU arguments of one boot or restore beyond qemu_launch's own:
 * guest RAM in a file (ram_args) and the seeded virtio-rng. */
struct extra_args {
	char rng_obj[4200];
	char net[QEMU_NET_SLOTS][2][192];
	char bdisk[VMM_BOOT_DISKS][2][8800];
	int fds[QEMU_NET_SLOTS];
	size_t nfds;
	const char *v[10 + 4 * QEMU_NET_SLOTS + 4 * VMM_BOOT_DISKS];
	size_t n;
};

/* ra := the arguments mapping mem_path (size bytes) as guest RAM. */
void qvm_ram_args_set(struct ram_args *ra, const char *mem_path, uint64_t size, bool share);

/* Append ra's arguments to x. */
void qvm_extra_add_ram(struct extra_args *x, const struct ram_args *ra);

/* With rng_seed: start the generator on <run dir>/rng.fifo and add a
 * virtio-rng-pci device reading it. 0, or -1 with err. */
int qvm_extra_add_rng(struct vmm_vm *vm, struct extra_args *x, char *err, size_t errlen);

/* The error of a hotplug into a VM without slots (vm->slots false). */
#define QVM_NO_SLOTS_ERR "this VM was booted without hotplug slots (no PCIe root ports, which cost ~0.4 CPU-s of every cold boot): boot it with {hotplug = true} to attach disks or bridges while it runs (docs/decisions.md)"

/* ---- NICs (qemu_net.c) ---- */
/* Boot: cold-plug every NIC on pcie.0 (in id order) and add its
 * -netdev/-device arguments and fd to x. */
void qnet_boot_args(struct vmm_vm *vm, struct extra_args *x);
/* Restore: put each NIC of the snapshot's list (backend_data "nics", a
 * JSON array, may be NULL) where it was, with its MAC, making a new one
 * for an id the VM lacks, and add the arguments to x. The VM's other
 * NICs stay unplugged (hotplugged by qnet_after_start). */
int qnet_restore_args(struct vmm_vm *vm, json_t *nics, struct extra_args *x,
                      char *err, size_t errlen);
/* After QMP is up: hotplug NICs without a slot, apply link states. */
int qnet_after_start(struct vmm_vm *vm, char *err, size_t errlen);
/* The NIC list a snapshot records (new reference). */
json_t *qnet_snapshot_json(const struct vmm_vm *vm);
/* QEMU is gone: every NIC is unplugged. */
void qnet_forget_slots(struct vmm_vm *vm);
/* Does a NIC sit in hotplug root port n (qemu_disk.c must not use it)? */
bool qnet_port_used(const struct vmm_vm *vm, int n);
/* Close every NIC fd (destroy). */
void qnet_free(struct vmm_vm *vm);
int qemu_nic_add(struct vmm_vm *vm, const char *id, const char *mac, int *host_fd,
                 char *err, size_t errlen);
int qemu_nic_link(struct vmm_vm *vm, const char *id, bool up, char *err, size_t errlen);

/* ---- the vmm_ops entries defined outside qemu.c ----------------------------- */

/* qemu_ops.c: agent-backed guest operations */
int qemu_exec(struct vmm_vm *vm, const struct vmm_exec_req *x,
	      struct vmm_exec_result *res, char *err, size_t errlen);
int qemu_read_file(struct vmm_vm *vm, const char *path, char **data, size_t *len,
		   char *err, size_t errlen);
int qemu_write_file(struct vmm_vm *vm, const char *path, const char *data, size_t len,
		    char *err, size_t errlen);
int qemu_stat(struct vmm_vm *vm, const char *path, struct vmm_stat *st,
	      char *err, size_t errlen);
int qemu_listdir(struct vmm_vm *vm, const char *path, struct vmm_dirent **ents,
		 size_t *n, char *err, size_t errlen);
int qemu_mkdir(struct vmm_vm *vm, const char *path, bool parents, int perm,
	       char *err, size_t errlen);
int qemu_unlink(struct vmm_vm *vm, const char *path, char *err, size_t errlen);
int qemu_rename(struct vmm_vm *vm, const char *from, const char *to,
		char *err, size_t errlen);
int qemu_open(struct vmm_vm *vm, const char *path, int mode, int perm,
	      struct vmm_file **out, char *err, size_t errlen);
int qemu_file_read(struct vmm_file *f, void *buf, size_t n, size_t *got,
		   char *err, size_t errlen);
int qemu_file_write(struct vmm_file *f, const void *buf, size_t n, size_t *put,
		    char *err, size_t errlen);
int qemu_file_seek(struct vmm_file *f, int64_t off, enum vmm_whence w, int64_t *pos,
		   char *err, size_t errlen);
uint64_t qemu_file_handle(struct vmm_file *f);
uint64_t qemu_file_route(struct vmm_file *f);
void qemu_file_close(struct vmm_file *f);
int qemu_exec_async(struct vmm_vm *vm, const struct vmm_exec_req *x,
		    struct vmm_proc **out, char *err, size_t errlen);
int qemu_proc_wait(struct vmm_proc *p, int64_t timeout_ns, bool *done,
		   struct vmm_exec_result *res, char *err, size_t errlen);
int qemu_proc_kill(struct vmm_proc *p, int sig, char *err, size_t errlen);
int qemu_proc_stdin_write(struct vmm_proc *p, const char *data, size_t len, size_t *put,
			  char *err, size_t errlen);
int qemu_proc_close_stdin(struct vmm_proc *p, char *err, size_t errlen);
int64_t qemu_proc_pid(struct vmm_proc *p);
uint64_t qemu_proc_handle(struct vmm_proc *p);
uint64_t qemu_proc_route(struct vmm_proc *p);
void qemu_proc_free(struct vmm_proc *p);
int qemu_console_tail(struct vmm_vm *vm, size_t max, char **out, size_t *len,
		      char *err, size_t errlen);
int qemu_syscall(struct vmm_vm *vm, int64_t nr, const int64_t args[6], int64_t *ret,
		 int *err_no, char *err, size_t errlen);
struct agent_client *qemu_agent(struct vmm_vm *vm);
const char *qemu_run_path_op(struct vmm_vm *vm, const char *leaf);

/* qemu_snapshot.c: vm:snapshot() and vm:restore() */
int qemu_snapshot(struct vmm_vm *vm, const char *path, char *err, size_t errlen);
int qemu_restore(struct vmm_vm *vm, const char *path, char *err, size_t errlen);

#endif
