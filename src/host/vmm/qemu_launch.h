/* qemu_launch.h — build a QEMU command line, spawn it tied to its runner,
 * kill and reap it; assemble the kernel cmdline. (accel = "auto" is
 * resolved by qemu_accel.h.)
 *
 * Calling sequence for one VM (the VM layer does this):
 *   qemu_cmdline_assemble(profile_or_boot_cmdline, inject_agent, &cmdline)
 *   accel = qemu_accel_resolve(profile->accel, &probe, why)   (qemu_accel.h)
 *   agent_listen(<run_dir>/agent.sock)          (agent_client.h) BEFORE spawn
 *   qemu_spawn(&spec, &proc)                    QEMU connects to agent.sock
 *   qmp_connect(<run_dir>/qmp.sock) ... qmp "cont" if spec.paused
 *   qemu_kill(&proc) / qemu_wait(&proc, ms)
 *
 * Run directory layout (qemu_run_path() names them):
 *   qmp.sock      QMP, QEMU is the server
 *   agent.sock    agent virtio-serial port, provium is the server
 *   console.sock  ttyS0, QEMU is the server (wait=off), everything also
 *   console.log   ...written here by the chardev's logfile=
 *   qemu.log      QEMU's own stdout/stderr
 * Unix socket paths are limited to 107 bytes: qemu_spawn() refuses a run
 * directory whose socket paths would not fit, naming the path.
 *
 * Lifetime: the child sets PR_SET_PDEATHSIG(SIGKILL) and re-checks its
 * parent after that, so QEMU dies with the runner (even on SIGKILL of the
 * runner). PDEATHSIG follows the forking *thread*: spawn from the runner's
 * main thread. QEMU runs in a process group of its own (the terminal's
 * Ctrl-C never reaches it), so the dispatcher's kill of a runner's group
 * does not reach QEMU directly: PDEATHSIG ends it with the runner. */
#ifndef PROVIUM_QEMU_LAUNCH_H
#define PROVIUM_QEMU_LAUNCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "config.h"

#define QEMU_AGENT_PORT_NAME "org.provium.agent"
#define QEMU_AGENT_RDINIT    "/sbin/provium-agent"
#define QEMU_DEFAULT_MEMORY  (256ull << 20)
/* PCIe root ports "pdisk0".."pdisk3": the hotplug slots, shared by
 * vm:attach_disk (qemu_disk.c) and NICs attached to a running VM
 * (qemu_net.c). Every root port costs QEMU start-up time under TCG
 * (~25 ms each, measured), so there are no more of them. */
#define QEMU_DISK_SLOTS      4
/* NICs a VM can have: cold-plugged ones sit on pcie.0 (no root port) */
#define QEMU_NET_SLOTS       8

struct qemu_spec {
	const char *qemu;          /* binary; NULL = $PROVIUM_QEMU or "qemu-system-x86_64" */
	const char *name;          /* VM name for -name (NULL = none) */
	const char *run_dir;       /* required; see the layout above */
	const char *kernel;        /* NULL = no -kernel (QMP-only tests) */
	const char *initrd;        /* already merged with the overlay; NULL = none */
	const char *cmdline;       /* final cmdline (qemu_cmdline_assemble); NULL = none */
	uint64_t memory;           /* bytes, rounded up to MiB; 0 = QEMU_DEFAULT_MEMORY */
	int cpus;                  /* 0 = 1 */
	enum accel_kind accel;     /* ACCEL_KVM or ACCEL_TCG; ACCEL_AUTO is treated as TCG */
	bool agent;                /* -chardev socket ...agent.sock,server=off + virtserialport */
	bool console;              /* ttyS0 -> console.sock + console.log */
	bool vmgenid;              /* -device vmgenid */
	bool incoming_defer;       /* -incoming defer (restores) */
	bool paused;               /* -S: start with vCPUs stopped */
	bool disk_slots;           /* QEMU_DISK_SLOTS empty pcie-root-ports */
	/* fds QEMU inherits under the same numbers (NIC sockets named by
	 * -netdev dgram,local.type=fd,local.str=N in extra); every other fd
	 * above 2 is closed at exec */
	const int *pass_fds;
	size_t npass_fds;
	const char *const *extra;  /* NULL-terminated extra arguments, or NULL */
};

struct qemu_proc {
	pid_t pid;                 /* 0 = not running / reaped */
	int status;                /* wait status once reaped */
	bool reaped;
};

/* The QEMU binary to run: want when not NULL or empty, else
 * $PROVIUM_QEMU when set and not empty, else "qemu-system-x86_64". */
const char *qemu_binary(const char *want);

/* "<run_dir>/<leaf>" into buf. 0, or -1 (ENAMETOOLONG) if it does not fit. */
int qemu_run_path(char *buf, size_t len, const char *run_dir, const char *leaf);

/* Build the argv (NULL-terminated, every string malloc'd). 0 or -1 + err. */
int qemu_build_argv(const struct qemu_spec *s, char ***argv, char *err, size_t errlen);
void qemu_argv_free(char **argv);

/* Spawn QEMU (see Lifetime above): stdin /dev/null, stdout+stderr to
 * <run_dir>/qemu.log. Fills p. 0, or -1 + err (exec failure included). */
int qemu_spawn(const struct qemu_spec *s, struct qemu_proc *p, char *err, size_t errlen);

/* Wait up to timeout_ms (<0 = forever) for p to exit and reap it.
 * 1 = exited (p->status set), 0 = still running, -1 = error. */
int qemu_wait(struct qemu_proc *p, int timeout_ms);

/* SIGKILL and reap. Safe on an already-reaped or never-spawned proc. */
void qemu_kill(struct qemu_proc *p);

/* SIGKILL p's QEMU without waiting for the kernel to tear it down (a
 * VM restored over: ~5-10 ms of a 256 MiB QEMU's exit the restore need
 * not wait for); p reads as reaped, killed by SIGKILL. The process is
 * reaped by qemu_reap_killed. */
void qemu_kill_nowait(struct qemu_proc *p);

/* Reap the QEMUs qemu_kill_nowait left, without blocking unless block
 * (a file's end: none may outlive it). */
void qemu_reap_killed(bool block);

/* Describe p->status: "exited with status 1" / "killed by signal 9". */
void qemu_describe_status(const struct qemu_proc *p, char *buf, size_t len);

/* Final kernel cmdline: base (may be NULL) + "console=ttyS0" unless a
 * console=ttyS0[,opts] is present + with inject_agent
 * "rdinit=/sbin/provium-agent" (kept once if already there). Parameters
 * are inserted before a standalone "--" (whatever follows goes to init).
 * A different rdinit= with inject_agent is the documented conflict error.
 * *out is malloc'd. 0 or -1 + err. */
int qemu_cmdline_assemble(const char *base, bool inject_agent, char **out, char *err, size_t errlen);

#endif
