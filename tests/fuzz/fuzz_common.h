/* fuzz_common.h — helpers shared by the libFuzzer harnesses: feeding a
 * byte string into a socket from the peer end without blocking. */
#ifndef PROVIUM_FUZZ_COMMON_H
#define PROVIUM_FUZZ_COMMON_H

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

/* Write as much of data[*at..n) as fd takes now (fd non-blocking). */
static inline void fuzz_push(int fd, const uint8_t *data, size_t n, size_t *at)
{
	while (*at < n) {
		ssize_t w = write(fd, data + *at, n - *at);
		if (w <= 0)
			return;
		*at += (size_t)w;
	}
}

static inline void fuzz_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		abort();
}

#endif
