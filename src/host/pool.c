/* pool.c — the resource pool arithmetic (see pool.h for the policy).
 * Pure bookkeeping: no locking (the dispatcher is single-threaded), no
 * events (the dispatcher emits pool_state from pool_available()). */
#include <math.h>
#include <stdio.h>
#include <unistd.h>

#include "pool.h"

void pool_init(struct pool *p, uint64_t mem, int cpus, double overcommit)
{
	if (mem == 0) {
		long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
		uint64_t ram = (pages > 0 && psz > 0) ? (uint64_t)pages * (uint64_t)psz : (4ull << 30);
		mem = ram / 10 * 8;
	}
	if (cpus <= 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		cpus = n > 0 ? (int)n : 1;
	}
	if (overcommit < 0.5)
		overcommit = 0.5;
	if (overcommit > 8.0)
		overcommit = 8.0;
	double c = round((double)cpus * overcommit);
	p->total.mem = mem;
	p->total.cpus = c < 1.0 ? 1 : c > (double)UINT32_MAX ? UINT32_MAX : (uint32_t)c;
	p->used.mem = 0;
	p->used.cpus = 0;
}

struct amount pool_reservation(bool local, bool has_mem, uint64_t mem, bool has_cpus, int64_t cpus)
{
	struct amount a = { POOL_RUNNER_MEM, POOL_RUNNER_CPUS };
	if (local) {
		a.mem = POOL_LOCAL_MEM;
		a.cpus = 0;
	}
	if (has_mem)
		a.mem = mem > UINT64_MAX - a.mem ? UINT64_MAX : a.mem + mem;
	if (has_cpus && cpus > (int64_t)a.cpus)
		a.cpus = cpus > UINT32_MAX ? UINT32_MAX : (uint32_t)cpus;
	return a;
}

struct amount pool_with_spares(struct amount a)
{
	uint64_t add = POOL_SPARES * POOL_SPARE_MEM;
	a.mem = a.mem > UINT64_MAX - add ? UINT64_MAX : a.mem + add;
	return a;
}

bool pool_ever_fits(const struct pool *p, struct amount a)
{
	return a.mem <= p->total.mem && a.cpus <= p->total.cpus;
}

bool pool_fits(const struct pool *p, struct amount a)
{
	/* An idle pool always admits a file that could ever fit. */
	if (p->used.mem == 0 && p->used.cpus == 0)
		return pool_ever_fits(p, a);
	return a.mem <= p->total.mem - p->used.mem && a.cpus <= p->total.cpus - p->used.cpus;
}

void pool_take(struct pool *p, struct amount a)
{
	p->used.mem += a.mem;
	p->used.cpus += a.cpus;
}

void pool_give(struct pool *p, struct amount a)
{
	p->used.mem = a.mem > p->used.mem ? 0 : p->used.mem - a.mem;
	p->used.cpus = a.cpus > p->used.cpus ? 0 : p->used.cpus - a.cpus;
}

struct amount pool_available(const struct pool *p)
{
	struct amount a = { p->total.mem - p->used.mem, p->total.cpus - p->used.cpus };
	return a;
}

static void fmt_gib(uint64_t b, char *buf, size_t n)
{
	snprintf(buf, n, "%.2f GiB", (double)b / (double)(1ull << 30));
}

bool pool_exceeds_message(const struct pool *p, struct amount a, char *buf, size_t n)
{
	char need[32], have[32];

	if (pool_ever_fits(p, a))
		return false;
	fmt_gib(a.mem, need, sizeof need);
	fmt_gib(p->total.mem, have, sizeof have);
	snprintf(buf, n, "file needs %s and %u CPU(s), which exceeds pool total: the whole pool is %s and %u CPU(s); "
		 "lower its claim or raise --mem/--cpus", need, a.cpus, have, p->total.cpus);
	return true;
}
