/* qemu_spare.h — warm spare QEMUs for snapshot restores (qemu_spare.c).
 *
 * After a restore, the `qemu` backend asks for one spare launched with the
 * same command line (-incoming defer, -S: nothing runs); the next restore
 * with that exact command line takes it, so it is only QMP connect +
 * migrate-incoming + cont + Hello instead of a QEMU start (~130 ms of
 * TCG start-up, more on a loaded host).
 *
 * Calling sequence (qemu_snapshot.c):
 *   qspare_take(&spec, vm_dir, deadline, &proc, &qmp, &agent_fd)  1 = taken
 *   ... (not taken) qemu_spawn(&spec, ...) as before
 *   after a successful restore: qspare_prepare(&spec, vm_dir)   (wanted)
 *   then at once if the host CPU is idle (psi_cpu_idle), else at the
 *   restored VM's first agent op: qspare_launch_pending()
 *   at the end of the file (runner.c): qspare_drop_all()
 *
 * Policy: at most QSPARE_MAX spares at once, one per distinct command
 * line (the oldest is replaced); none while PROVIUM_SPARE=0 or host memory
 * is under pressure (psi.h: a spare is dropped, not taken, then).
 * Lifetime: spawned by qemu_spawn (PR_SET_PDEATHSIG: they die with the
 * runner, even on SIGKILL); killed by qspare_drop_all at the file's end.
 * Errors: none surface; a spare that cannot be had or is dead is simply
 * not used (the restore spawns QEMU itself). */
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

/* A live spare launched with spec's command line (run_dir and name
 * aside): QMP connected (until deadline), its agent connection accepted,
 * its qmp.sock, console.sock, console.log and qemu.log moved into vm_dir.
 * 1 = taken (*proc, *qmp, *agent_fd are the caller's), 0 = none. */
int qspare_take(const struct qemu_spec *spec, const char *vm_dir, int64_t deadline_ns,
		struct qemu_proc *proc, struct qmp **qmp, int *agent_fd);

/* Want a spare for spec's command line next to vm_dir (spec is copied),
 * unless one is there already or spares are off. Only for specs without
 * passed fds. 1 = a spare of that command line is wanted or there, 0 =
 * none. It is launched by qspare_launch_pending. */
int qspare_prepare(const struct qemu_spec *spec, const char *vm_dir);

/* Launch every wanted spare (the qemu backend calls it after each
 * successful agent op: the restored guest's first op is then not slowed
 * by a QEMU starting beside it). Cheap when none is wanted. */
void qspare_launch_pending(void);

/* Kill every spare and remove its directory. Safe to repeat. */
void qspare_drop_all(void);

/* Spares alive now (tests, traces). */
int qspare_count(void);

#endif
