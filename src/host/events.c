/* events.c — building event frames {ts, kind, payload} (see events.h).
 *
 * event_begin() opens a 3-entry map and packs ts and kind; the caller packs
 * the payload map as the third value. event_write() frames the buffer with
 * frame_write() and frees it; event_discard() only frees. The buffer is a
 * msgpack_sbuffer, so a caller that needs the raw body (the dispatcher
 * feeding its sinks) may read eb.sb.data / eb.sb.size before discarding. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "events.h"
#include "frame.h"

int64_t event_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void event_pack_str(msgpack_packer *pk, const char *s)
{
	size_t n = s ? strlen(s) : 0;
	msgpack_pack_str(pk, n);
	msgpack_pack_str_body(pk, s ? s : "", n);
}

void event_begin(struct event_buf *eb, const char *kind)
{
	msgpack_sbuffer_init(&eb->sb);
	msgpack_packer_init(&eb->pk, &eb->sb, msgpack_sbuffer_write);
	msgpack_pack_map(&eb->pk, 3);
	event_pack_str(&eb->pk, "ts");
	msgpack_pack_int64(&eb->pk, event_now_ns());
	event_pack_str(&eb->pk, "kind");
	event_pack_str(&eb->pk, kind);
	event_pack_str(&eb->pk, "payload");
}

int event_write(int fd, struct event_buf *eb)
{
	int rc = frame_write(fd, eb->sb.data, eb->sb.size);
	int saved = errno;
	msgpack_sbuffer_destroy(&eb->sb);
	errno = saved;
	return rc;
}

void event_discard(struct event_buf *eb)
{
	msgpack_sbuffer_destroy(&eb->sb);
}

static int diag_fd = -1;

void event_set_diag_fd(int fd)
{
	diag_fd = fd;
}

void event_diag(const char *fmt, ...)
{
	struct event_buf eb;
	char *msg = NULL;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&msg, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (diag_fd < 0) {
		fprintf(stderr, "%s\n", msg);
	} else {
		event_begin(&eb, "_diag");
		msgpack_pack_map(&eb.pk, 1);
		event_pack_str(&eb.pk, "message");
		event_pack_str(&eb.pk, msg);
		event_write(diag_fd, &eb);
	}
	free(msg);
}
