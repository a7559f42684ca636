/* psi.h — host pressure (Linux PSI) for the dispatcher's throttle.
 *
 * The pools-and-parallelism page: when host CPU pressure crosses the
 * threshold (PSI_THRESHOLD_PCT of `some avg10`), new file dispatches pause
 * until it drops; files in flight continue. Memory pressure counts too (as
 * in the reference implementation). The dispatcher only asks while some
 * file is in flight, so an idle run is never held back (see dispatch.c).
 *
 * Knobs (environment, for tests and shared hosts):
 *   PROVIUM_NO_PSI=1      never report pressure (throttling off)
 *   PROVIUM_PSI_DIR=DIR   read DIR/cpu and DIR/memory instead of
 *                         /proc/pressure/{cpu,memory}
 * A missing or unparsable pressure file counts as no pressure. */
#ifndef PROVIUM_PSI_H
#define PROVIUM_PSI_H

#include <stdbool.h>

#define PSI_THRESHOLD_PCT 50.0
/* At or below this `some avg10` the host CPU counts as idle. */
#define PSI_IDLE_PCT 10.0

/* `some avg10` of a PSI file (percent), or -1 when unavailable/garbled. */
double psi_some_avg10(const char *path);
/* Whether the host is over the threshold now (cpu or memory). */
bool psi_pressured(void);
/* Memory pressure alone over the threshold (warm spare QEMUs are dropped
 * under it: qemu_spare.h). */
bool psi_memory_pressured(void);
/* Host CPU idle (cpu `some avg10` <= PSI_IDLE_PCT): a warm spare QEMU may
 * start at once beside a restored guest instead of after its first op.
 * False when PSI is off or unreadable: the conservative answer. */
bool psi_cpu_idle(void);

#endif
