/* vmm.h — the VMM backend interface: what lvm.c asks of "a guest".
 *
 * Two implementations: `local` (local.c: no guest at all, ops run on the
 * host against a per-VM scratch directory, for fast tests of the framework
 * and bindings) and `qemu` (qemu*.c: a real guest driven over QMP and the
 * agent channel). vmm.c holds the lookup by name and the result
 * destructors below. lvm.c owns the state machine (Created -> Booted <->
 * Paused, -> Shutdown) and calls a backend only in a state where the call
 * makes sense; a backend therefore never re-checks states.
 *
 * Calling sequence:
 *     vmm_backend_by_name("local") -> ops
 *     ops->create(&vm, &args, err)          once, at lab:vm(name, profile)
 *     ops->boot(vm, &boot_opts, &info, err) Created -> Booted
 *     ops->exec / read_file / ... (Booted)
 *     ops->shutdown(vm, err)                -> Shutdown
 *     ops->destroy(vm)                      frees everything; never fails
 *
 * Error contract: every int-returning op returns 0 on success; -1 on
 * failure with a human message in err (and errno set when it is an OS
 * error); or VMM_UNSUPPORTED when this backend cannot serve the op at all.
 * A NULL function pointer means the same as returning VMM_UNSUPPORTED.
 * lvm.c turns VMM_UNSUPPORTED into
 *     vm `a`: <op> is not supported by the <name> backend<unsupported_hint>
 * Buffers returned through char ** are malloc'd; the caller frees them. */
#ifndef PROVIUM_VMM_H
#define PROVIUM_VMM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VMM_UNSUPPORTED (-2)

struct vmm_vm;    /* one guest, backend-private */
struct vmm_proc;  /* one async process inside a guest */
struct vmm_file;  /* one open guest-side file */

/* A profile as seen by a backend (borrowed strings: valid for the call). */
struct vmm_profile {
	const char *name;
	const char *kernel, *initrd, *cmdline, *guest_os;
	const char *agent_overlay_path, *modules;
	bool inject_agent;
	int64_t agent_boot_timeout_ns;
	const char *accel;        /* "auto", "kvm", "tcg" */
	uint64_t memory;          /* 0 = unset */
	int cpus;                 /* 0 = unset */
};

struct vmm_create_args {
	const char *name;         /* VM name as given to lab:vm */
	const char *run_dir;      /* the runner's private scratch directory */
	const struct vmm_profile *profile;
};

struct vmm_inject_file {
	const char *path;
	const char *content;
	size_t len;
	int mode;                 /* permission bits; -1 = 0644 */
};

/* A boot-time disk (docs/disks.md): cold-plugged at launch as virtio-blk
 * with serial id. root: the profile's root image (the kernel gets
 * root=/dev/vda). cow: guest writes go to a copy-on-write layer of
 * provium's, never to the image (always for root; every disk of a VM
 * booted in a fixture build) — the layer a snapshot captures; otherwise
 * they reach the image through the write-back server. The backend fills
 * dev with the guest's path once it has booted ("" when unknown). */
struct vmm_boot_disk {
	const char *id;
	const char *image;        /* absolute */
	bool root;
	bool cow;
	char dev[64];
};
#define VMM_BOOT_DISKS 8

/* Creation-time and per-boot opts, already merged and validated. */
struct vmm_boot_opts {
	uint64_t memory;          /* bytes, 0 = profile/default */
	int cpus;                 /* 0 = profile/default */
	const char *kernel_cmdline; /* NULL = profile's */
	const char *kernel_cmdline_append; /* appended after a space, or NULL */
	int64_t agent_timeout_ns; /* boot deadline to the agent handshake; 0 = profile's agent_boot_timeout */
	bool has_rng_seed;
	uint64_t rng_seed;
	bool has_initial_time;
	double initial_time;
	const struct vmm_inject_file *files;
	size_t nfiles;
	struct vmm_boot_disk *disks;   /* root first; at most VMM_BOOT_DISKS */
	size_t ndisks;
	/* no hotplug slots (qemu: no pcie-root-ports; disks and NICs can then
	 * only be cold-plugged before boot). The Lua boot opt `hotplug`
	 * decides it (lvm.c); zeroed opts keep the slots. */
	bool no_hotplug;
};

struct vmm_boot_info {
	uint32_t cid;             /* vsock CID; 0 when the backend has none */
	uint64_t memory_bytes;    /* effective memory cap */
};

struct vmm_exec_req {
	const char *file;         /* executable (PATH-searched) */
	const char *const *argv;  /* NULL-terminated; argv[0] is the program name */
	const char *const *env;   /* NULL-terminated "K=V" entries, or NULL */
	bool env_clear;           /* only env, not merged with the default env */
	const char *cwd;          /* guest path, NULL = "/" */
	const char *stdin_data;
	size_t stdin_len;
	int64_t timeout_ns;       /* < 0: none */
};

enum vmm_exit_status { VMM_EXITED = 0, VMM_SIGNALLED, VMM_TIMED_OUT };

struct vmm_exec_result {
	enum vmm_exit_status status;
	int exit_code;            /* -1 signalled, -2 timed out */
	int signal;               /* when signalled, else 0 */
	char *out, *err;          /* malloc'd, NUL-terminated past *_len */
	size_t out_len, err_len;
};

enum vmm_entry_type {
	VMM_ENT_FILE = 0, VMM_ENT_DIR, VMM_ENT_SYMLINK, VMM_ENT_FIFO,
	VMM_ENT_SOCKET, VMM_ENT_BLOCK, VMM_ENT_CHAR, VMM_ENT_OTHER
};

struct vmm_stat {
	uint64_t size;
	int64_t mtime_ns;
	unsigned perm;            /* mode & 07777 */
	enum vmm_entry_type type;
};

struct vmm_dirent {
	char *name;               /* malloc'd */
	enum vmm_entry_type type;
};

/* open() mode bits (the agent protocol will carry the same set). */
enum {
	VMM_O_READ = 1 << 0, VMM_O_WRITE = 1 << 1, VMM_O_CREATE = 1 << 2,
	VMM_O_TRUNCATE = 1 << 3, VMM_O_APPEND = 1 << 4, VMM_O_EXCLUSIVE = 1 << 5,
};

enum vmm_whence { VMM_SEEK_SET = 0, VMM_SEEK_CUR, VMM_SEEK_END };

struct agent_client;  /* vmm/agent_client.h */
struct vmm_stream;    /* one open byte stream (tail, fd or process output) */

enum vmm_stream_kind {
	VMM_STREAM_TAIL = 0,      /* path, from start/offset */
	VMM_STREAM_FD,            /* file, from its current offset */
	VMM_STREAM_PROC_STDOUT,   /* proc: captured so far, then live */
	VMM_STREAM_PROC_STDERR,
};
enum vmm_tail_start { VMM_TAIL_END = 0, VMM_TAIL_BEGINNING, VMM_TAIL_OFFSET };

struct vmm_stream_req {
	enum vmm_stream_kind kind;
	const char *path;         /* TAIL */
	enum vmm_tail_start start;/* TAIL */
	int64_t offset;           /* TAIL + VMM_TAIL_OFFSET: >= 0 absolute, < 0 before EOF */
	struct vmm_file *file;    /* FD */
	struct vmm_proc *proc;    /* PROC_* */
};

struct vmm_ops {
	const char *name;              /* "local", "qemu" */
	const char *unsupported_hint;  /* appended to "not supported" errors */

	/* lifecycle */
	int (*create)(struct vmm_vm **out, const struct vmm_create_args *a,
	              char *err, size_t errlen);
	int (*boot)(struct vmm_vm *vm, const struct vmm_boot_opts *o,
	            struct vmm_boot_info *info, char *err, size_t errlen);
	int (*shutdown)(struct vmm_vm *vm, char *err, size_t errlen);
	/* Stop at once, no guest shutdown: the guest is about to be replaced
	 * by a restore or thrown away (NULL = use shutdown). */
	int (*halt)(struct vmm_vm *vm, char *err, size_t errlen);
	/* vm:close(): like halt when nothing outside the VM could tell a
	 * guest poweroff from none (no disk, no NIC), else shutdown (NULL =
	 * use shutdown). */
	int (*discard)(struct vmm_vm *vm, char *err, size_t errlen);
	int (*pause)(struct vmm_vm *vm, char *err, size_t errlen);
	int (*resume)(struct vmm_vm *vm, char *err, size_t errlen);
	int (*reset)(struct vmm_vm *vm, char *err, size_t errlen);
	int (*power_button)(struct vmm_vm *vm, char *err, size_t errlen);
	/* Kill whatever runs and free vm. Safe after shutdown; never fails. */
	void (*destroy)(struct vmm_vm *vm);

	/* layer-1 ops (Booted) */
	int (*exec)(struct vmm_vm *vm, const struct vmm_exec_req *r,
	            struct vmm_exec_result *res, char *err, size_t errlen);
	int (*read_file)(struct vmm_vm *vm, const char *path, char **data,
	                 size_t *len, char *err, size_t errlen);
	int (*write_file)(struct vmm_vm *vm, const char *path, const char *data,
	                  size_t len, char *err, size_t errlen);
	int (*stat)(struct vmm_vm *vm, const char *path, struct vmm_stat *st,
	            char *err, size_t errlen);
	/* *ents sorted by name; free with vmm_dirents_free. */
	int (*listdir)(struct vmm_vm *vm, const char *path,
	               struct vmm_dirent **ents, size_t *n, char *err, size_t errlen);
	int (*mkdir)(struct vmm_vm *vm, const char *path, bool parents,
	             int perm /* -1 = default */, char *err, size_t errlen);
	int (*unlink)(struct vmm_vm *vm, const char *path, char *err, size_t errlen);
	int (*rename)(struct vmm_vm *vm, const char *from, const char *to,
	              char *err, size_t errlen);

	/* open files */
	int (*open)(struct vmm_vm *vm, const char *path, int mode, int perm,
	            struct vmm_file **out, char *err, size_t errlen);
	int (*file_read)(struct vmm_file *f, void *buf, size_t n, size_t *got,
	                 char *err, size_t errlen);
	int (*file_write)(struct vmm_file *f, const void *buf, size_t n,
	                  size_t *put, char *err, size_t errlen);
	int (*file_seek)(struct vmm_file *f, int64_t off, enum vmm_whence w,
	                 int64_t *pos, char *err, size_t errlen);
	uint64_t (*file_handle)(struct vmm_file *f);
	/* The guest worker whose tables hold f (0 = the agent; NULL op: 0). */
	uint64_t (*file_route)(struct vmm_file *f);
	void (*file_close)(struct vmm_file *f);   /* frees f */

	/* async processes */
	int (*exec_async)(struct vmm_vm *vm, const struct vmm_exec_req *r,
	                  struct vmm_proc **out, char *err, size_t errlen);
	/* Wait up to timeout_ns (< 0: forever). Returns 0 with *done set and
	 * res filled when the process ended; *done false on timeout (the
	 * process is left running). */
	int (*proc_wait)(struct vmm_proc *p, int64_t timeout_ns, bool *done,
	                 struct vmm_exec_result *res, char *err, size_t errlen);
	int (*proc_kill)(struct vmm_proc *p, int sig, char *err, size_t errlen);
	int (*proc_stdin_write)(struct vmm_proc *p, const char *data, size_t len,
	                        size_t *put, char *err, size_t errlen);
	int (*proc_close_stdin)(struct vmm_proc *p, char *err, size_t errlen);
	int64_t (*proc_pid)(struct vmm_proc *p);
	uint64_t (*proc_handle)(struct vmm_proc *p);
	/* The guest worker p runs under (0 = the agent; NULL op: 0). */
	uint64_t (*proc_route)(struct vmm_proc *p);
	void (*proc_free)(struct vmm_proc *p);    /* kills if still running */

	/* guest-kernel features (NULL in the local backend) */
	/* Has the guest died under a Booted/Paused VM (QEMU exited: a guest
	 * poweroff or panic, a kill)? Non-blocking; vm:state() says "dead". */
	bool (*gone)(struct vmm_vm *vm);
	int (*console_tail)(struct vmm_vm *vm, size_t max, char **out,
	                    size_t *len, char *err, size_t errlen);
	int (*snapshot)(struct vmm_vm *vm, const char *path, char *err, size_t errlen);
	int (*restore)(struct vmm_vm *vm, const char *path, char *err, size_t errlen);
	/* Images for the next restore's boot-time disks, by id (the restoring
	 * VM's profile's `root` and `disks`): a snapshot's disk with a listed
	 * id opens that image, the others the path the snapshot recorded. The
	 * list is copied and used by the next restore only. NULL: the backend
	 * snapshots no boot-time disks. */
	int (*restore_images)(struct vmm_vm *vm, const struct vmm_boot_disk *d, size_t n,
	                      char *err, size_t errlen);
	int (*syscall)(struct vmm_vm *vm, int64_t nr, const int64_t args[6],
	               int64_t *ret, int *err_no, char *err, size_t errlen);

	/* ---- guest agent, run directory, host-served streams ----
	 * Ops that the guest agent serves (clock, syscall with buffers,
	 * tails, fd/process streams, pipelined batches) are implemented once,
	 * over the agent channel, in guest_ops.c; a backend only exposes its
	 * connected client here (NULL when it has none, e.g. before boot).
	 * guest_ops.c prefers a backend's own stream_* ops when present (the
	 * local backend serves tails of host files that way). */
	struct agent_client *(*agent)(struct vmm_vm *vm);
	/* "<the VM's run directory>/<leaf>" ("console.sock", "console.log"),
	 * or NULL when the backend has no such file. The string is owned by
	 * the backend and valid until the next run_path call for this vm;
	 * callers copy it at once. */
	const char *(*run_path)(struct vmm_vm *vm, const char *leaf);
	/* Host-served streams (see struct vmm_stream_req). stream_next:
	 * 1 = a chunk (*data malloc'd, *len > 0) or the end (*eof set);
	 * 0 = nothing within timeout_ns; -1 = error. stream_close frees s. */
	int (*stream_open)(struct vmm_vm *vm, const struct vmm_stream_req *r,
	                   struct vmm_stream **out, char *err, size_t errlen);
	int (*stream_next)(struct vmm_stream *s, int64_t timeout_ns, char **data,
	                   size_t *len, bool *eof, char *err, size_t errlen);
	void (*stream_close)(struct vmm_stream *s);

	/* ---- disks (NULL: disks are host-side bookkeeping only) ----
	 * disk_attach plugs image (an absolute path) into the running guest
	 * as a virtio-blk disk whose serial is id, and waits until the guest
	 * kernel shows it; dev gets its guest path ("/dev/vdb"). disk_faults
	 * makes the guest's I/O on it fail or slow down (VMM_DISK_* bits;
	 * 0 = none). disk_detach unplugs it (best effort: -1 with err when
	 * the guest did not let go). */
	int (*disk_attach)(struct vmm_vm *vm, const char *id, const char *image,
	                   char *dev, size_t devlen, char *err, size_t errlen);
	int (*disk_faults)(struct vmm_vm *vm, const char *id, unsigned faults,
	                   char *err, size_t errlen);
	int (*disk_detach)(struct vmm_vm *vm, const char *id, char *err, size_t errlen);
	/* The power goes out: the guest stops dead and every boot-time disk
	 * loses the writes the guest has not flushed. The VM is then down
	 * as after shutdown. */
	int (*power_cut)(struct vmm_vm *vm, char *err, size_t errlen);

	/* ---- NICs (NULL: bridges are graph state only in this backend) ----
	 * nic_add gives the VM a virtio-net NIC named id (the bridge's name)
	 * with mac ("52:56:.."). Its frames go through a SOCK_DGRAM socketpair
	 * the VM owns for its whole life (QEMU gets one end at every boot and
	 * restore); *host_fd is a new fd (O_CLOEXEC, the caller's) on the other
	 * end, for a switch port to adopt. Before boot the NIC is recorded and
	 * cold-plugged at boot (root ports in id order, so eth<N> is the Nth
	 * NIC by id); while running it is hotplugged at once. Adding an id the
	 * VM already has (e.g. a NIC a restore brought back) just returns its
	 * host end again. nic_link sets its carrier (QMP set_link; remembered
	 * for later boots). A restore recreates the NICs its snapshot lists,
	 * in the same slots with the same MACs. */
	int (*nic_add)(struct vmm_vm *vm, const char *id, const char *mac, int *host_fd,
	               char *err, size_t errlen);
	int (*nic_link)(struct vmm_vm *vm, const char *id, bool up, char *err, size_t errlen);
};

/* disk fault bits (disk:fault_inject modes) */
#define VMM_DISK_EIO_READ  1u
#define VMM_DISK_EIO_WRITE 2u
#define VMM_DISK_SLOW      4u

/* The backend called name ("local" or "qemu"), or NULL. (vmm.c) */
const struct vmm_ops *vmm_backend_by_name(const char *name);

extern const struct vmm_ops vmm_local_ops;
extern const struct vmm_ops vmm_qemu_ops;

/* Free what an exec / list_dir result holds (vmm.c); res itself stays. */
void vmm_exec_result_free(struct vmm_exec_result *res);
void vmm_dirents_free(struct vmm_dirent *ents, size_t n);

#endif
