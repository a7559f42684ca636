/* buf.c — the agent's growable byte buffer, console logging, and
 * agent_write_all (a whole buffer to an fd, EINTR retried).
 *
 * struct buf is a plain (pointer, length, capacity) triple: buf_add
 * appends, buf_consume drops a prefix, buf_free releases. Logging writes
 * one line to stderr, which PID 1 points at /dev/console, so every message
 * lands in the VM's console log on the host.
 */
#include "agent/agent.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int buf_add(struct buf *b, const void *p, size_t n)
{
	if (b->cap - b->len < n) {
		size_t ncap = b->cap ? b->cap : 256;
		char *np;

		while (ncap - b->len < n)
			ncap *= 2;
		np = realloc(b->p, ncap);
		if (!np) {
			errno = ENOMEM;
			return -1;
		}
		b->p = np;
		b->cap = ncap;
	}
	if (n)
		memcpy(b->p + b->len, p, n);
	b->len += n;
	return 0;
}

void buf_consume(struct buf *b, size_t n)
{
	if (n >= b->len) {
		b->len = 0;
		return;
	}
	memmove(b->p, b->p + n, b->len - n);
	b->len -= n;
}

void buf_free(struct buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

void agent_log(const char *fmt, ...)
{
	char line[512];
	va_list ap;
	int n, k;

#ifdef PROVIUM_FUZZ
	if (!getenv("PROVIUM_FUZZ_LOG"))
		return;  /* fuzzing: no log lines unless asked */
#endif
	n = snprintf(line, sizeof line, "provium-agent[%d]: ", (int)getpid());
	va_start(ap, fmt);
	k = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (k < 0)
		k = 0;
	n += k;
	if ((size_t)n > sizeof line - 2)
		n = (int)sizeof line - 2;
	line[n++] = '\n';
	if (write(STDERR_FILENO, line, (size_t)n) < 0) {
		/* nowhere left to report it */
	}
}

int agent_write_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;
	while (n > 0) {
		ssize_t k = write(fd, p, n);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += k;
		n -= (size_t)k;
	}
	return 0;
}
