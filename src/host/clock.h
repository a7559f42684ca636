/* clock.h — the one monotonic clock of the host code (CLOCK_MONOTONIC):
 * deadlines, timeouts and durations all read it, never the wall clock. */
#ifndef PROVIUM_CLOCK_H
#define PROVIUM_CLOCK_H

#include <stdint.h>

/* CLOCK_MONOTONIC in nanoseconds. */
int64_t mono_now_ns(void);

/* CLOCK_MONOTONIC in milliseconds. */
int64_t mono_now_ms(void);

#endif
