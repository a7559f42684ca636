/* interrupt.h — the process-wide "the user pressed Ctrl-C" request
 * (interrupt.c), for the REPL: its SIGINT handler raises it, and the
 * blocking waits of the backends (the agent's request wait, the local
 * backend's process wait) give up on it, so a running op returns with
 * EINTR instead of running to its end.
 *
 * Nothing reacts until intr_arm(true): the runner never arms it, so a
 * test's ops cannot be cut short this way. */
#ifndef PROVIUM_INTERRUPT_H
#define PROVIUM_INTERRUPT_H

#include <stdbool.h>

/* Let waits honour requests (true) or ignore them (false, the default). */
void intr_arm(bool on);
bool intr_armed(void);

/* Async-signal-safe: record a request. */
void intr_request(void);

/* Armed and requested since the last intr_clear(). */
bool intr_pending(void);
void intr_clear(void);

/* The longest a wait may block between two looks at intr_pending() when
 * armed (ms): the signal may land on another thread, so a wait cannot
 * count on EINTR. */
#define INTR_POLL_MS 100

#endif
