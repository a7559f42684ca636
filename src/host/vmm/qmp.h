/* qmp.h — a QEMU Machine Protocol client over a unix socket.
 *
 * Calling sequence:
 *   q = qmp_connect(path, deadline, err)     connect, read greeting, negotiate
 *   qmp_execute(q, "query-status", NULL, timeout_ms, &ret, err)
 *   qmp_wait_event(q, "STOP", timeout_ms, &ev, err)
 *   qmp_close(q)
 *
 * Every command carries an "id"; a reply whose id is not the one awaited
 * (a late answer to a command that timed out) is dropped, so a timeout
 * never desynchronises the stream. Events that arrive while a command is
 * outstanding are queued (bounded: the oldest is dropped past
 * QMP_MAX_EVENTS) and handed out by qmp_wait_event()/qmp_pop_event().
 *
 * Every byte from QEMU is untrusted: a line longer than QMP_MAX_LINE, a
 * line that is not a JSON object, or EOF makes the connection "broken";
 * the call that saw it and every later call fail with that reason.
 *
 * Errors: functions return 0 / -1 (or NULL) and write a one-line message
 * into err (never printed here). A QMP-level error reply is rendered as
 * "<command>: <class>: <desc>". Timeouts say "timed out". */
#ifndef PROVIUM_QMP_H
#define PROVIUM_QMP_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "clock.h"

#define QMP_MAX_LINE   (4u << 20)
#define QMP_MAX_EVENTS 1024

struct qmp;

/* Deadlines throughout vmm/ are absolute values of the monotonic clock
 * (clock.h); qmp_now_ns is its name there. */
static inline int64_t qmp_now_ns(void)
{
	return mono_now_ns();
}

/* Connect to the QMP socket at path, retrying ECONNREFUSED/ENOENT until
 * deadline_ns (absolute, qmp_now_ns() base), read the greeting and
 * negotiate capabilities. NULL with err on failure. */
struct qmp *qmp_connect(const char *path, int64_t deadline_ns, char *err, size_t errlen);

/* Adopt an already-connected fd (tests use a socketpair). Reads the
 * greeting and negotiates like qmp_connect. Takes ownership of fd even on
 * failure. */
struct qmp *qmp_open_fd(int fd, int64_t deadline_ns, char *err, size_t errlen);

/* Run one command. args may be NULL (borrowed, not stolen). On success
 * *ret (if ret is non-NULL) gets a new reference to the "return" value.
 * -1 with err on a QMP error reply, a timeout, or a broken connection. */
int qmp_execute(struct qmp *q, const char *cmd, json_t *args, int timeout_ms,
		json_t **ret, char *err, size_t errlen);

/* Same, passing fd along with the command as SCM_RIGHTS (for "getfd" /
 * "add-fd"). The caller keeps its own copy of fd. */
int qmp_execute_fd(struct qmp *q, const char *cmd, json_t *args, int fd, int timeout_ms,
		   json_t **ret, char *err, size_t errlen);

/* Wait for an event named name (NULL = any) for up to timeout_ms. Queued
 * events are searched first; non-matching events stay queued. On success
 * *ev (if non-NULL) gets the whole event object (new reference). */
int qmp_wait_event(struct qmp *q, const char *name, int timeout_ms, json_t **ev,
		   char *err, size_t errlen);

/* Pop the oldest queued event without blocking; NULL if none. */
json_t *qmp_pop_event(struct qmp *q);

/* Drop every queued event. */
void qmp_clear_events(struct qmp *q);

/* The socket fd (for poll loops that want to know when QEMU spoke). */
int qmp_fd(const struct qmp *q);

/* Non-NULL once the connection is unusable: the reason. */
const char *qmp_broken(const struct qmp *q);

/* Close the socket and free everything. NULL is fine. */
void qmp_close(struct qmp *q);

#endif
