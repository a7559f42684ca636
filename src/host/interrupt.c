/* interrupt.c — the process-wide interrupt request (contract in
 * interrupt.h). Owns two flags; nothing else. */
#include "interrupt.h"

#include <signal.h>

static volatile sig_atomic_t g_armed, g_requested;

void intr_arm(bool on)
{
	g_requested = 0;
	g_armed = on;
}

bool intr_armed(void)
{
	return g_armed;
}

void intr_request(void)
{
	g_requested = 1;
}

bool intr_pending(void)
{
	return g_armed && g_requested;
}

void intr_clear(void)
{
	g_requested = 0;
}
