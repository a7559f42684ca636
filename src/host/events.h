/* events.h — building event frames {ts, kind, payload}.
 *
 * Calling sequence:
 *     struct event_buf eb;
 *     event_begin(&eb, "test_started");     // packs {ts, kind, "payload": ...
 *     msgpack_pack_map(&eb.pk, 3); ...      // caller packs the payload map
 *     event_write(fd, &eb);                 // frames, writes, frees
 * event_discard() frees without writing. ts is ns since the Unix epoch. */
#ifndef PROVIUM_EVENTS_H
#define PROVIUM_EVENTS_H

#include <stdint.h>
#include <msgpack.h>

struct event_buf {
	msgpack_sbuffer sb;
	msgpack_packer pk;
};

int64_t event_now_ns(void);
void event_begin(struct event_buf *eb, const char *kind);
/* Pack a C string (str type). */
void event_pack_str(msgpack_packer *pk, const char *s);
int event_write(int fd, struct event_buf *eb);
void event_discard(struct event_buf *eb);

/* Harness warnings from deep inside a runner (a cache entry repaired, a
 * RAM file expanded again): with a diag fd set (the runner's event pipe)
 * they travel as a private _diag frame and the dispatcher prints them on
 * its stderr at once; without one they go to stderr. One line, no
 * trailing newline needed. */
void event_set_diag_fd(int fd);
void event_diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
