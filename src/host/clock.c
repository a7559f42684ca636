/* clock.c — the monotonic clock (clock.h). clock_gettime(CLOCK_MONOTONIC)
 * cannot fail on Linux for a valid clock id, so there is no error path. */
#include <time.h>

#include "clock.h"

int64_t mono_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t mono_now_ms(void)
{
	return mono_now_ns() / 1000000;
}
