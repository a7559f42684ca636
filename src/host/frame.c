/* frame.c — length-prefixed frames (see frame.h).
 *
 * A frame is a 4-byte big-endian body length followed by the body. The
 * writer loops over short writes and EINTR so a frame is never split by
 * a signal. The reader is a growable byte buffer: feed() appends whatever
 * read() returned, next() pops one complete frame when the buffer holds
 * one. A declared length above the reader's maximum is reported as
 * EMSGSIZE before anything is allocated for it: the length prefix is
 * untrusted input. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "frame.h"

static int write_all(int fd, const unsigned char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int frame_write(int fd, const void *body, size_t len)
{
	unsigned char hdr[4];

	if (len > UINT32_MAX) {
		errno = EMSGSIZE;
		return -1;
	}
	hdr[0] = (unsigned char)(len >> 24);
	hdr[1] = (unsigned char)(len >> 16);
	hdr[2] = (unsigned char)(len >> 8);
	hdr[3] = (unsigned char)len;
	/* Small frames go out in one write() so concurrent writers on a pipe
	 * (PIPE_BUF) never interleave and readers see whole frames. */
	if (len <= 4096 - 4) {
		unsigned char buf[4096];
		memcpy(buf, hdr, 4);
		if (len)
			memcpy(buf + 4, body, len);
		return write_all(fd, buf, len + 4);
	}
	if (write_all(fd, hdr, 4) < 0)
		return -1;
	return write_all(fd, body, len);
}

void frame_reader_init(struct frame_reader *r, size_t max)
{
	r->buf = NULL;
	r->len = 0;
	r->cap = 0;
	r->max = max ? max : FRAME_MAX_DEFAULT;
}

void frame_reader_free(struct frame_reader *r)
{
	free(r->buf);
	r->buf = NULL;
	r->len = r->cap = 0;
}

int frame_reader_feed(struct frame_reader *r, const void *data, size_t n)
{
	if (n == 0)
		return 0;
	if (r->len + n > r->cap) {
		size_t cap = r->cap ? r->cap : 4096;
		while (cap < r->len + n)
			cap *= 2;
		unsigned char *nb = realloc(r->buf, cap);
		if (!nb) {
			errno = ENOMEM;
			return -1;
		}
		r->buf = nb;
		r->cap = cap;
	}
	memcpy(r->buf + r->len, data, n);
	r->len += n;
	return 0;
}

/* The struct has no "consumed" offset, so a popped frame is detached:
 * its body is copied into spare capacity past the live bytes, the rest of
 * the buffer slides down, and the body is parked right after the
 * remainder (outside [0, len)). The next feed or next call may overwrite
 * it, which is exactly the validity the header promises. */
int frame_reader_next(struct frame_reader *r, const unsigned char **body, size_t *len)
{
	if (r->len < 4)
		return 0;
	size_t n = ((size_t)r->buf[0] << 24) | ((size_t)r->buf[1] << 16) |
		   ((size_t)r->buf[2] << 8) | (size_t)r->buf[3];
	if (n > r->max) {
		errno = EMSGSIZE;
		return -1;
	}
	if (r->len < 4 + n)
		return 0;
	size_t rest = r->len - 4 - n;
	if (r->cap < r->len + n) {
		unsigned char *nb = realloc(r->buf, r->len + n);
		if (!nb) {
			errno = ENOMEM;
			return -1;
		}
		r->buf = nb;
		r->cap = r->len + n;
	}
	/* stash body after the live data, then slide the remainder down */
	unsigned char *stash = r->buf + r->len;
	memcpy(stash, r->buf + 4, n);
	memmove(r->buf, r->buf + 4 + n, rest);
	r->len = rest;
	memmove(r->buf + rest, stash, n);
	*body = r->buf + rest;
	*len = n;
	return 1;
}
