/* conwatch.h — watch a guest's serial console log for the guest's death.
 *
 * QEMU appends the guest's ttyS0 to <run dir>/console.log (qemu_launch.h).
 * A struct conwatch reads what the log grew by since its last look and
 * matches every complete line against the kernel's panic banner
 *
 *     [    2.345678] Kernel panic - not syncing: Attempted to kill init! ...
 *     [    2.401234] ---[ end Kernel panic - not syncing: ... ]---
 *
 * (panic() always prints "Kernel panic - not syncing", at KERN_EMERG, so
 * even a `quiet` console shows it; the end marker is the last thing a
 * panicked kernel prints). The first such line makes the watch "dead"
 * for good and is remembered, with its place in the log, so that an error
 * can quote it and show the lines before it.
 *
 * Calling sequence: conwatch_reset when QEMU (re)creates the log, then
 * conwatch_poll(path) as often as wanted (it only reads new bytes);
 * conwatch_excerpt once dead. conwatch_feed is the same matching on bytes
 * in hand (tests). No allocation is held: the struct is plain data. */
#ifndef PROVIUM_CONWATCH_H
#define PROVIUM_CONWATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define CONWATCH_LINE_MAX 512   /* longer lines are matched on their start */

struct conwatch {
	off_t off;                /* bytes of the log consumed */
	off_t line_off;           /* where the line being assembled starts */
	char line[CONWATCH_LINE_MAX];
	size_t len;               /* bytes of it kept (at most LINE_MAX - 1) */
	bool dead;                /* a panic line was seen */
	bool ended;               /* ... and the "---[ end Kernel panic" line */
	char panic[256];          /* the first panic line, from "Kernel panic" on */
	off_t panic_off, panic_end;  /* that line's bytes in the log */
};

/* Forget everything (the log was recreated). */
void conwatch_reset(struct conwatch *w);

/* Is this one console line (without its newline) a panic banner? */
bool conwatch_is_panic_line(const char *line, size_t len);

/* Match the next n bytes of the log (they follow what was fed before).
 * Returns w->dead. */
bool conwatch_feed(struct conwatch *w, const char *buf, size_t n);

/* Feed what the log at path grew by (a log shorter than what was consumed
 * was recreated: start over). A missing log is no news. Returns w->dead. */
bool conwatch_poll(struct conwatch *w, const char *path);

/* Once dead: the console around the panic, at most max bytes, malloc'd
 * (NULL when not dead, on error, or max < 64): the lines before the panic
 * line and the panic line itself (as many as fit in about three quarters
 * of max), then what followed up to the end marker — all of it if it
 * fits, else its first lines, "[... N lines ...]" and the log's last
 * line. \r removed. */
char *conwatch_excerpt(const struct conwatch *w, const char *path, size_t max);

#endif
