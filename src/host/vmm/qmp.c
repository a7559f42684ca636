/* qmp.c — QMP client: one unix stream socket, newline-delimited JSON.
 *
 * Owns: the socket fd, a line buffer, the id counter, the event queue.
 *
 * State: connected -> (greeting read, capabilities negotiated) ready ->
 * broken (sticky) -> closed. Nothing here blocks without a deadline: every
 * read/write is a poll() bounded by the caller's timeout.
 *
 * Reading: bytes accumulate in q->buf until a '\n'; each complete line is
 * parsed with json_loadb (jansson keeps integers exact as json_int_t).
 * A line is classified as greeting ("QMP"), event ("event"), or reply
 * ("return"/"error" with our "id"). Anything else, malformed JSON, or a
 * line over QMP_MAX_LINE breaks the connection: QEMU never sends those,
 * so they mean the peer is not a sane QEMU and we stop trusting it. */
#include "errbuf.h"
#include "vmm/qmp.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

struct qmp_ev {
	json_t *ev;
	struct qmp_ev *next;
};

struct qmp {
	int fd;
	char *buf;
	size_t len, cap, scanned;
	struct qmp_ev *head, *tail;
	size_t nevents;
	json_int_t next_id;
	bool is_broken;
	char broken[256];
};

static int64_t deadline_from_ms(int timeout_ms)
{
	if (timeout_ms < 0)
		return INT64_MAX;
	return qmp_now_ns() + (int64_t)timeout_ms * 1000000;
}

/* Milliseconds left until deadline, clamped to [0, INT_MAX]; -1 = none. */
static int ms_left(int64_t deadline)
{
	if (deadline == INT64_MAX)
		return -1;
	int64_t left = deadline - qmp_now_ns();
	if (left <= 0)
		return 0;
	left = (left + 999999) / 1000000;
	return left > 0x7fffffff ? 0x7fffffff : (int)left;
}

/* Mark q broken with a reason (first reason wins) and copy it into err. */
static int set_broken(struct qmp *q, char *err, size_t errlen, const char *why)
{
	if (!q->is_broken) {
		q->is_broken = true;
		snprintf(q->broken, sizeof q->broken, "%s", why);
	}
	err_set(err, errlen, "QMP: %s", q->broken);
	return -1;
}

static void enqueue_event(struct qmp *q, json_t *ev)
{
	struct qmp_ev *e = malloc(sizeof *e);
	if (!e) {
		json_decref(ev);
		return;
	}
	e->ev = ev;
	e->next = NULL;
	if (q->tail)
		q->tail->next = e;
	else
		q->head = e;
	q->tail = e;
	if (++q->nevents > QMP_MAX_EVENTS) {
		json_t *old = qmp_pop_event(q);
		json_decref(old);
	}
}

json_t *qmp_pop_event(struct qmp *q)
{
	struct qmp_ev *e = q ? q->head : NULL;
	if (!e)
		return NULL;
	q->head = e->next;
	if (!q->head)
		q->tail = NULL;
	q->nevents--;
	json_t *ev = e->ev;
	free(e);
	return ev;
}

void qmp_clear_events(struct qmp *q)
{
	json_t *ev;
	while ((ev = qmp_pop_event(q)))
		json_decref(ev);
}

/* Remove and return the first queued event named name (NULL = any). */
static json_t *take_event(struct qmp *q, const char *name)
{
	struct qmp_ev *prev = NULL;
	for (struct qmp_ev *e = q->head; e; prev = e, e = e->next) {
		const char *n = json_string_value(json_object_get(e->ev, "event"));
		if (name && (!n || strcmp(n, name) != 0))
			continue;
		if (prev)
			prev->next = e->next;
		else
			q->head = e->next;
		if (q->tail == e)
			q->tail = prev;
		q->nevents--;
		json_t *ev = e->ev;
		free(e);
		return ev;
	}
	return NULL;
}

/* Read the next JSON object line before deadline. 1 with *out, 0 on
 * timeout, -1 broken (err set). */
static int read_obj(struct qmp *q, int64_t deadline, json_t **out, char *err, size_t errlen)
{
	if (q->is_broken)
		return set_broken(q, err, errlen, q->broken);
	for (;;) {
		char *nl = q->len > q->scanned ? memchr(q->buf + q->scanned, '\n', q->len - q->scanned) : NULL;
		if (nl) {
			size_t linelen = (size_t)(nl - q->buf);
			size_t i = 0;
			while (i < linelen && (q->buf[i] == ' ' || q->buf[i] == '\t' || q->buf[i] == '\r'))
				i++;
			json_t *obj = NULL;
			json_error_t jerr;
			bool blank = (i == linelen);
			if (!blank)
				obj = json_loadb(q->buf, linelen, 0, &jerr);
			memmove(q->buf, nl + 1, q->len - linelen - 1);
			q->len -= linelen + 1;
			q->scanned = 0;
			if (blank)
				continue;
			if (!obj) {
				char why[200];
				snprintf(why, sizeof why, "malformed JSON from QEMU: %s", jerr.text);
				return set_broken(q, err, errlen, why);
			}
			if (!json_is_object(obj)) {
				json_decref(obj);
				return set_broken(q, err, errlen, "QEMU sent a JSON value that is not an object");
			}
			*out = obj;
			return 1;
		}
		q->scanned = q->len;
		if (q->len > QMP_MAX_LINE)
			return set_broken(q, err, errlen, "line from QEMU exceeds the maximum size");
		if (q->cap - q->len < 4096) {
			size_t ncap = q->cap ? q->cap * 2 : 8192;
			if (ncap > QMP_MAX_LINE + 8192)
				ncap = QMP_MAX_LINE + 8192;
			char *nb = realloc(q->buf, ncap);
			if (!nb)
				return set_broken(q, err, errlen, "out of memory");
			q->buf = nb;
			q->cap = ncap;
		}
		struct pollfd pfd = { .fd = q->fd, .events = POLLIN };
		int pr = poll(&pfd, 1, ms_left(deadline));
		if (pr < 0) {
			if (errno == EINTR)
				continue;
			char why[128];
			snprintf(why, sizeof why, "poll: %s", strerror(errno));
			return set_broken(q, err, errlen, why);
		}
		if (pr == 0)
			return 0;
		ssize_t n = read(q->fd, q->buf + q->len, q->cap - q->len);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			if (errno == ECONNRESET)
				return set_broken(q, err, errlen, "QEMU closed the QMP connection");
			char why[128];
			snprintf(why, sizeof why, "read: %s", strerror(errno));
			return set_broken(q, err, errlen, why);
		}
		if (n == 0)
			return set_broken(q, err, errlen, "QEMU closed the QMP connection");
		q->len += (size_t)n;
	}
}

/* Write all of buf before deadline, the first chunk carrying fd (if >= 0). */
static int write_all(struct qmp *q, const char *buf, size_t len, int fd, int64_t deadline,
		     char *err, size_t errlen)
{
	size_t off = 0;
	while (off < len) {
		struct pollfd pfd = { .fd = q->fd, .events = POLLOUT };
		int pr = poll(&pfd, 1, ms_left(deadline));
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr <= 0) {
			err_set(err, errlen, "QMP: %s", pr == 0 ? "timed out sending a command" : strerror(errno));
			return -1;
		}
		ssize_t n;
		if (fd >= 0 && off == 0) {
			struct iovec iov = { .iov_base = (void *)(uintptr_t)buf, .iov_len = len };
			union {
				char b[CMSG_SPACE(sizeof(int))];
				struct cmsghdr align;
			} cbuf;
			memset(&cbuf, 0, sizeof cbuf);
			struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
					      .msg_control = cbuf.b, .msg_controllen = sizeof cbuf.b };
			struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
			c->cmsg_level = SOL_SOCKET;
			c->cmsg_type = SCM_RIGHTS;
			c->cmsg_len = CMSG_LEN(sizeof(int));
			memcpy(CMSG_DATA(c), &fd, sizeof(int));
			n = sendmsg(q->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
		} else {
			n = send(q->fd, buf + off, len - off, MSG_NOSIGNAL | MSG_DONTWAIT);
		}
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			if (errno == EPIPE || errno == ECONNRESET)
				return set_broken(q, err, errlen, "QEMU closed the QMP connection");
			char why[128];
			snprintf(why, sizeof why, "write: %s", strerror(errno));
			return set_broken(q, err, errlen, why);
		}
		off += (size_t)n;
	}
	return 0;
}

/* Render an "error" member as "<cmd>: <class>: <desc>". */
static void render_error(const char *cmd, json_t *e, char *err, size_t errlen)
{
	const char *cls = json_string_value(json_object_get(e, "class"));
	const char *desc = json_string_value(json_object_get(e, "desc"));
	err_set(err, errlen, "QMP %s: %s: %s", cmd, cls ? cls : "UnknownError",
	       desc ? desc : "(no description)");
}

static int execute(struct qmp *q, const char *cmd, json_t *args, int fd, int timeout_ms,
		   json_t **ret, char *err, size_t errlen)
{
	int64_t deadline = deadline_from_ms(timeout_ms);
	if (ret)
		*ret = NULL;
	if (q->is_broken)
		return set_broken(q, err, errlen, q->broken);
	json_int_t id = ++q->next_id;
	json_t *msg = json_object();
	if (!msg || json_object_set_new(msg, "execute", json_string(cmd)) < 0 ||
	    json_object_set_new(msg, "id", json_integer(id)) < 0 ||
	    (args && json_object_set(msg, "arguments", args) < 0)) {
		json_decref(msg);
		err_set(err, errlen, "QMP %s: cannot build the command", cmd);
		return -1;
	}
	char *text = json_dumps(msg, JSON_COMPACT);
	json_decref(msg);
	if (!text) {
		err_set(err, errlen, "QMP %s: cannot encode the command", cmd);
		return -1;
	}
	size_t tl = strlen(text);
	char *line = malloc(tl + 2);
	if (!line) {
		free(text);
		err_set(err, errlen, "QMP %s: out of memory", cmd);
		return -1;
	}
	memcpy(line, text, tl);
	line[tl] = '\n';
	line[tl + 1] = 0;
	free(text);
	int rc = write_all(q, line, tl + 1, fd, deadline, err, errlen);
	free(line);
	if (rc < 0)
		return -1;

	for (;;) {
		json_t *obj = NULL;
		int r = read_obj(q, deadline, &obj, err, errlen);
		if (r < 0)
			return -1;
		if (r == 0) {
			err_set(err, errlen, "QMP %s: timed out after %d ms", cmd, timeout_ms);
			return -1;
		}
		if (json_is_string(json_object_get(obj, "event"))) {
			enqueue_event(q, obj);
			continue;
		}
		json_t *rv = json_object_get(obj, "return");
		json_t *ev = json_object_get(obj, "error");
		if (!rv && !ev) {
			json_decref(obj);
			return set_broken(q, err, errlen, "unexpected message from QEMU (no return, error or event)");
		}
		json_t *rid = json_object_get(obj, "id");
		if (!json_is_integer(rid) || json_integer_value(rid) != id) {
			json_decref(obj); /* a late reply to an earlier, timed-out command */
			continue;
		}
		if (ev) {
			render_error(cmd, ev, err, errlen);
			json_decref(obj);
			return -1;
		}
		if (ret)
			*ret = json_incref(rv);
		json_decref(obj);
		return 0;
	}
}

int qmp_execute(struct qmp *q, const char *cmd, json_t *args, int timeout_ms,
		json_t **ret, char *err, size_t errlen)
{
	return execute(q, cmd, args, -1, timeout_ms, ret, err, errlen);
}

int qmp_execute_fd(struct qmp *q, const char *cmd, json_t *args, int fd, int timeout_ms,
		   json_t **ret, char *err, size_t errlen)
{
	if (fd < 0) {
		err_set(err, errlen, "QMP %s: no fd to pass", cmd);
		return -1;
	}
	return execute(q, cmd, args, fd, timeout_ms, ret, err, errlen);
}

int qmp_wait_event(struct qmp *q, const char *name, int timeout_ms, json_t **ev,
		   char *err, size_t errlen)
{
	int64_t deadline = deadline_from_ms(timeout_ms);
	json_t *e = take_event(q, name);
	while (!e) {
		json_t *obj = NULL;
		int r = read_obj(q, deadline, &obj, err, errlen);
		if (r < 0)
			return -1;
		if (r == 0) {
			err_set(err, errlen, "QMP: timed out after %d ms waiting for event %s",
			       timeout_ms, name ? name : "(any)");
			return -1;
		}
		const char *n = json_string_value(json_object_get(obj, "event"));
		if (!n) {
			if (json_object_get(obj, "return") || json_object_get(obj, "error")) {
				json_decref(obj); /* stray late reply */
				continue;
			}
			json_decref(obj);
			return set_broken(q, err, errlen, "unexpected message from QEMU (no return, error or event)");
		}
		if (!name || strcmp(n, name) == 0)
			e = obj;
		else
			enqueue_event(q, obj);
	}
	if (ev)
		*ev = e;
	else
		json_decref(e);
	return 0;
}

/* Read the greeting and negotiate capabilities. */
static int handshake(struct qmp *q, int64_t deadline, char *err, size_t errlen)
{
	json_t *obj = NULL;
	int r = read_obj(q, deadline, &obj, err, errlen);
	if (r < 0)
		return -1;
	if (r == 0) {
		err_set(err, errlen, "QMP: timed out waiting for the greeting");
		return -1;
	}
	bool ok = json_is_object(json_object_get(obj, "QMP"));
	json_decref(obj);
	if (!ok)
		return set_broken(q, err, errlen, "first message from QEMU is not a QMP greeting");
	int left = ms_left(deadline);
	return execute(q, "qmp_capabilities", NULL, -1, left < 0 ? 10000 : left, NULL, err, errlen);
}

struct qmp *qmp_open_fd(int fd, int64_t deadline_ns, char *err, size_t errlen)
{
	struct qmp *q = calloc(1, sizeof *q);
	if (!q) {
		close(fd);
		err_set(err, errlen, "QMP: out of memory");
		return NULL;
	}
	q->fd = fd;
	if (handshake(q, deadline_ns, err, errlen) < 0) {
		qmp_close(q);
		return NULL;
	}
	return q;
}

struct qmp *qmp_connect(const char *path, int64_t deadline_ns, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof sa.sun_path) {
		err_set(err, errlen, "QMP socket path too long (%zu bytes, max %zu): %s",
		       strlen(path), sizeof sa.sun_path - 1, path);
		return NULL;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	for (;;) {
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			err_set(err, errlen, "QMP socket: %s", strerror(errno));
			return NULL;
		}
		if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0)
			return qmp_open_fd(fd, deadline_ns, err, errlen);
		int e = errno;
		close(fd);
		if ((e != ENOENT && e != ECONNREFUSED && e != EINTR) || qmp_now_ns() >= deadline_ns) {
			err_set(err, errlen, "QMP connect %s: %s", path, strerror(e));
			return NULL;
		}
		/* QEMU has not created/bound the socket yet: retry shortly (a
		 * failed connect costs microseconds; QEMU binds it 30-40 ms after
		 * exec under TCG, and a restore waits on exactly this). */
		poll(NULL, 0, 1);
	}
}

int qmp_fd(const struct qmp *q)
{
	return q ? q->fd : -1;
}

const char *qmp_broken(const struct qmp *q)
{
	return q && q->is_broken ? q->broken : NULL;
}

void qmp_close(struct qmp *q)
{
	if (!q)
		return;
	int e = errno;
	if (q->fd >= 0)
		close(q->fd);
	qmp_clear_events(q);
	free(q->buf);
	free(q);
	errno = e;
}
