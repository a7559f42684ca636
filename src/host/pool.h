/* pool.h — the dispatcher's resource pool (memory bytes + CPUs).
 *
 * One pool per run. Totals: --mem or 80 % of physical RAM; --cpus or the
 * online CPUs, times --cpu-overcommit (clamped to [0.5, 8], rounded to the
 * nearest CPU, at least 1).
 *
 * Per-file reservation (pool_reservation), by backend:
 *   --vmm local: the documented per-file overhead, POOL_LOCAL_MEM (50 MiB)
 *     and 0 CPUs, plus the file's declared claim (memory and cpus as
 *     claimed) — the reference's arithmetic.
 *   --vmm qemu: a runner overhead of POOL_RUNNER_MEM (256 MiB: Lua state,
 *     QEMU process overhead, page cache) plus the declared memory claim;
 *     CPUs are max(1, claimed cpus) — a TCG guest keeps a host CPU busy, so
 *     unclaimed files are not all started at once on a small host. The
 *     runner's own CPU is counted only for files that claim none, so a file
 *     claiming every host CPU still fits an idle pool.
 *
 * Warm spare QEMUs (vmm/qemu_spare.h): with --vmm qemu and spares on
 * (PROVIUM_SPARE not "0"), a file's reservation grows by POOL_SPARES x
 * POOL_SPARE_MEM (pool_with_spares): a runner keeps at most POOL_SPARES
 * primed spares, each ~58 MiB proportional set size measured on a 256
 * MiB TCG guest (~44 MiB of it anonymous: QEMU's own, the TCG code of
 * the guest's way to Hello and one `sh -c true`, and the few guest pages
 * those dirtied; the rest of its guest RAM is a private mapping of the
 * snapshot's RAM file, shared through the page cache). A spare's CPU is
 * its start-up and priming burst (~0.2-0.3 CPU-s, within the runner's
 * own CPU); paused, it uses none.
 *
 * Files are admitted FIFO: pool_fits() says whether a reservation fits
 * what is free now, pool_ever_fits() whether it could fit an empty pool
 * (a file that never fits is an error, not a hang). */
#ifndef PROVIUM_POOL_H
#define PROVIUM_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define POOL_RUNNER_MEM (256ull << 20)
#define POOL_RUNNER_CPUS 1
#define POOL_LOCAL_MEM (50ull << 20)
#define POOL_SPARES 3
#define POOL_SPARE_MEM (64ull << 20)

struct amount {
	uint64_t mem;
	uint32_t cpus;
};

struct pool {
	struct amount total, used;
};

/* mem 0 / cpus 0 mean the defaults; overcommit is applied to cpus. */
void pool_init(struct pool *p, uint64_t mem, int cpus, double overcommit);
struct amount pool_reservation(bool local, bool has_mem, uint64_t mem, bool has_cpus, int64_t cpus);
/* a plus the memory of POOL_SPARES warm spare QEMUs */
struct amount pool_with_spares(struct amount a);
bool pool_fits(const struct pool *p, struct amount a);
bool pool_ever_fits(const struct pool *p, struct amount a);
void pool_take(struct pool *p, struct amount a);
void pool_give(struct pool *p, struct amount a);
struct amount pool_available(const struct pool *p);

/* When a can never fit p (!pool_ever_fits), write the one message both
 * the dispatcher (a declared claim) and the runner (a claim made at run
 * time, e.g. through a helper) give, and return true. */
bool pool_exceeds_message(const struct pool *p, struct amount a, char *buf, size_t n);

#endif
