/* sinks.c — fan-out of event frames to file, stdout and a unix socket.
 *
 * All sinks receive the same length-prefixed frames. Writes to socket
 * clients use MSG_NOSIGNAL so a vanished dashboard cannot SIGPIPE the
 * dispatcher; the client is simply dropped. The listening socket is
 * non-blocking and accept4()ed with SOCK_CLOEXEC; the socket file is
 * replaced if stale and unlinked at close. The save file is opened for
 * append (the reference keeps earlier runs' frames; only --watch starts
 * each iteration afresh) and each frame is written under flock. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "frame.h"
#include "sinks.h"

int sinks_open(struct sinks *s, const char *save_path, bool append, const char *socket_path,
	       bool to_stdout, char *err, size_t errlen)
{
	memset(s, 0, sizeof *s);
	s->save_fd = s->stdout_fd = s->listen_fd = -1;
	if (save_path) {
		s->save_path = strdup(save_path);
		s->truncate_runs = !append;
		s->save_fd = open(save_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (s->save_fd < 0) {
			snprintf(err, errlen, "--save-events `%s`: %s", save_path, strerror(errno));
			goto fail;
		}
	}
	if (to_stdout)
		s->stdout_fd = 1;
	if (socket_path) {
		struct sockaddr_un sa = { .sun_family = AF_UNIX };
		if (strlen(socket_path) >= sizeof sa.sun_path) {
			snprintf(err, errlen, "--events-socket `%s`: path too long", socket_path);
			goto fail;
		}
		strcpy(sa.sun_path, socket_path);
		s->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (s->listen_fd < 0) {
			snprintf(err, errlen, "--events-socket: socket: %s", strerror(errno));
			goto fail;
		}
		unlink(socket_path); /* a stale socket from an earlier run */
		if (bind(s->listen_fd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
		    listen(s->listen_fd, 16) < 0) {
			snprintf(err, errlen, "--events-socket `%s`: %s", socket_path, strerror(errno));
			goto fail;
		}
		s->socket_path = strdup(socket_path);
	}
	return 0;
fail:
	sinks_close(s);
	return -1;
}

int sinks_begin_run(struct sinks *s)
{
	if (s->save_fd >= 0 && s->truncate_runs && ftruncate(s->save_fd, 0) < 0) {
		snprintf(s->err, sizeof s->err, "--save-events `%s`: %s", s->save_path, strerror(errno));
		return -1;
	}
	return 0;
}

bool sinks_active(const struct sinks *s)
{
	return s->save_fd >= 0 || s->stdout_fd >= 0 || s->listen_fd >= 0;
}

void sinks_accept(struct sinks *s)
{
	if (s->listen_fd < 0)
		return;
	for (;;) {
		int c = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0)
			return;
		int *nv = realloc(s->clients, (s->nclients + 1) * sizeof *nv);
		if (!nv) {
			close(c);
			return;
		}
		s->clients = nv;
		s->clients[s->nclients++] = c;
	}
}

static int send_all(int fd, const unsigned char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* One frame to the save file, under an exclusive flock so several
 * provium processes appending to one file interleave whole frames. */
static int save_frame(int fd, const void *body, size_t len)
{
	int r;
	while (flock(fd, LOCK_EX) < 0)
		if (errno != EINTR)
			return -1;
	r = frame_write(fd, body, len);
	flock(fd, LOCK_UN);
	return r;
}

void sinks_emit(struct sinks *s, const void *body, size_t len)
{
	if (s->save_fd >= 0 && save_frame(s->save_fd, body, len) < 0) {
		if (!s->err[0])
			snprintf(s->err, sizeof s->err, "--save-events `%s`: %s", s->save_path, strerror(errno));
		close(s->save_fd);
		s->save_fd = -1;
	}
	if (s->stdout_fd >= 0 && frame_write(s->stdout_fd, body, len) < 0) {
		if (!s->err[0])
			snprintf(s->err, sizeof s->err, "--events-stdout: %s", strerror(errno));
		s->stdout_fd = -1;
	}
	sinks_accept(s);
	if (s->nclients) {
		unsigned char hdr[4] = { (unsigned char)(len >> 24), (unsigned char)(len >> 16),
					 (unsigned char)(len >> 8), (unsigned char)len };
		size_t w = 0;
		for (size_t i = 0; i < s->nclients; i++) {
			int c = s->clients[i];
			if (send_all(c, hdr, 4) < 0 || send_all(c, body, len) < 0) {
				close(c);
				continue;
			}
			s->clients[w++] = c;
		}
		s->nclients = w;
	}
}

void sinks_close_in_child(struct sinks *s)
{
	if (s->save_fd >= 0)
		close(s->save_fd);
	if (s->listen_fd >= 0)
		close(s->listen_fd);
	for (size_t i = 0; i < s->nclients; i++)
		close(s->clients[i]);
	s->save_fd = s->listen_fd = -1;
	s->nclients = 0;
}

void sinks_close(struct sinks *s)
{
	sinks_close_in_child(s);
	if (s->socket_path)
		unlink(s->socket_path);
	free(s->clients);
	free(s->save_path);
	free(s->socket_path);
	s->clients = NULL;
	s->save_path = s->socket_path = NULL;
	s->stdout_fd = -1;
}
