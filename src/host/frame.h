/* frame.h — length-prefixed frames: 4-byte big-endian length + body.
 *
 * Used by the runner→dispatcher event pipe, the event sinks and (later)
 * the agent channel. Readers enforce a maximum body size; a length above
 * it is a protocol error, never an allocation. */
#ifndef PROVIUM_FRAME_H
#define PROVIUM_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define FRAME_MAX_DEFAULT (16u << 20)

/* Write one whole frame (retrying on EINTR / short writes). 0 or -1/errno. */
int frame_write(int fd, const void *body, size_t len);

/* Incremental reader: feed bytes as they arrive, pop whole frames. */
struct frame_reader {
	unsigned char *buf;
	size_t len, cap;
	size_t max;              /* max body size */
};

void frame_reader_init(struct frame_reader *r, size_t max);
void frame_reader_free(struct frame_reader *r);
/* Append n bytes. 0 or -1 (ENOMEM). */
int frame_reader_feed(struct frame_reader *r, const void *data, size_t n);
/* Pop the next complete frame: returns 1 and sets *body and *len (valid until
 * the next feed/next call), 0 if incomplete, -1 if the declared length
 * exceeds max (EMSGSIZE). */
int frame_reader_next(struct frame_reader *r, const unsigned char **body, size_t *len);

#endif
