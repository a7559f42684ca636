/* qemu_spare.h — warm spare QEMUs for snapshot restores (qemu_spare.c).
 *
 * After a restore, the `qemu` backend asks for one spare of the same
 * command line and snapshot. It is launched (-incoming defer, -S) and
 * primed in the background: the snapshot's stream loaded, the guest
 * run to the agent's Hello and one warm-up `sh -c true`, then paused.
 * The next restore of that snapshot with that exact command line takes
 * it: only `cont` and the guest clock remain, instead of a QEMU start,
 * the stream, the guest's way to Hello and TCG translating its
 * fork/exec path in the test's first op.
 *
 * Calling sequence (qemu_snapshot.c):
 *   qspare_take(&spec, snap, vm_dir, deadline, &proc, &qmp, &agent_fd)
 *       1 = taken: primed and paused, past Hello (cont it)
 *   ... (not taken) qemu_spawn(&spec, ...) and a full restore, as before
 *   after a successful restore: qspare_prepare(&spec, snap, fast, vm_dir)
 *   then at once if the host CPU is idle (psi_cpu_idle), one priming at
 *   a time: qspare_launch_pending(1); at every successful agent op:
 *   qspare_launch_pending(QSPARE_MAX)
 *   at the end of the file (runner.c): qspare_drop_all()
 *
 * Policy: at most QSPARE_MAX spares at once; up to two per command line
 * and snapshot (back-to-back restores find one primed while the other
 * primes), the second only in a free entry; a full table replaces
 * another command line's second spare, else the oldest entry; at most
 * one priming started beside a restore (a lab's next restores come
 * right after) and all wanted ones once the guest runs ops
 * (qspare_launch_pending(QSPARE_MAX)); none while PROVIUM_SPARE=0 or host memory is
 * under pressure (psi.h: a spare is dropped, not taken, then).
 * Guest state: a taken spare's guest is the snapshot's, run to Hello
 * and past one `sh -c true` (its pids start a little later than after a
 * restore without a spare); it was paused from then until taken.
 * Lifetime: spawned by qemu_spawn from the main thread (PR_SET_PDEATHSIG:
 * they die with the runner, even on SIGKILL); killed by qspare_drop_all
 * at the file's end (its priming thread stopped and joined first).
 * Errors: none surface; a spare that cannot be had, failed its priming
 * or is dead is simply not used (the restore spawns QEMU itself). */
#ifndef PROVIUM_QEMU_SPARE_H
#define PROVIUM_QEMU_SPARE_H

#include <stdbool.h>
#include <stdint.h>

#include "pool.h"
#include "vmm/qemu_launch.h"

struct qmp;

/* counted in the pool per file (pool.h) */
#define QSPARE_MAX POOL_SPARES

/* Spares are on (PROVIUM_SPARE unset or not "0"). */
bool qspare_enabled(void);

/* A spare launched with spec's command line (run_dir and name aside)
 * for snapshot snap, primed (waiting for its priming at most until
 * deadline_ns or 10 s): paused past Hello, its qmp.sock, console.sock,
 * console.log and qemu.log moved into vm_dir. 1 = taken (*proc, *qmp
 * and *agent_fd, a connection past Hello, are the caller's), 0 = none. */
int qspare_take(const struct qemu_spec *spec, const char *snap, const char *vm_dir,
		int64_t deadline_ns, struct qemu_proc *proc, struct qmp **qmp, int *agent_fd);

/* 1 when a primed spare checked the digest of RAM file ram_path
 * (qemu_ramsum.h) and the file's identity (inode, size, mtime, ctime)
 * is still what it was then: the restore need not check it again.
 * Waits for a spare still priming with that file (as qspare_take
 * would). 0 otherwise. */
int qspare_ram_checked(const char *ram_path, int64_t deadline_ns);

/* Want a spare for spec's command line restoring snapshot snap (fast:
 * it has a RAM file, mapped by spec) next to vm_dir (spec is copied),
 * unless one is there already or spares are off. Only for specs without
 * passed fds. 1 = a spare of that command line is wanted or there, 0 =
 * none. It is launched by qspare_launch_pending. */
int qspare_prepare(const struct qemu_spec *spec, const char *snap, bool fast, const char *vm_dir);

/* Launch wanted spares, oldest first, and start priming them while
 * fewer than max_inflight primings run (the qemu backend calls it after
 * each successful agent op, with QSPARE_MAX: the restored guest's
 * first op is then not slowed by a QEMU starting beside it on a busy
 * host; and right after a restore on an idle host, with 1). Cheap when
 * none is wanted. */
void qspare_launch_pending(int max_inflight);

/* Kill every spare and remove its directory. Safe to repeat. */
void qspare_drop_all(void);

/* Spares alive now (tests, traces). */
int qspare_count(void);

#endif
