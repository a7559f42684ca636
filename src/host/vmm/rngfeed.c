/* rngfeed.c — the seeded byte stream behind `rng_seed` (see rngfeed.h).
 *
 * Owns one child process per seeded VM. Calling sequence:
 *     rngfeed_start(path, seed, &pid, ...)   before QEMU is spawned
 *     ... QEMU opens path with -object rng-random,filename=path ...
 *     rngfeed_stop(pid)                      when the VM is destroyed */
#include "vmm/rngfeed.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/sha.h>

static void block(uint64_t seed, uint64_t counter, unsigned char out[32])
{
	unsigned char in[16];
	for (int i = 0; i < 8; i++) {
		in[i] = (unsigned char)(seed >> (8 * i));
		in[8 + i] = (unsigned char)(counter >> (8 * i));
	}
	SHA256(in, sizeof in, out);
}

void rngfeed_bytes(uint64_t seed, unsigned char *out, size_t n)
{
	unsigned char b[32];
	uint64_t c = 0;
	while (n) {
		size_t k = n < sizeof b ? n : sizeof b;
		block(seed, c++, b);
		memcpy(out, b, k);
		out += k;
		n -= k;
	}
}

/* The child: write the stream until the reader goes away. */
static void feed(const char *path, uint64_t seed, pid_t parent)
{
	unsigned char buf[4096];
	uint64_t c = 0;
	int fd;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(0);
	/* a fork without exec: drop the runner's sockets and event pipe so no
	 * peer waits on this process for an EOF */
#ifdef CLOSE_RANGE_CLOEXEC /* close_range() is declared too */
	(void)close_range(3, ~0U, 0);
#endif
	signal(SIGPIPE, SIG_DFL);
	fd = open(path, O_WRONLY | O_CLOEXEC);  /* blocks until QEMU opens it */
	if (fd < 0)
		_exit(1);
	for (;;) {
		size_t off = 0;
		for (size_t i = 0; i < sizeof buf; i += 32)
			block(seed, c++, buf + i);
		while (off < sizeof buf) {
			ssize_t w = write(fd, buf + off, sizeof buf - off);
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				_exit(0);
			off += (size_t)w;
		}
	}
}

int rngfeed_start(const char *path, uint64_t seed, pid_t *pid, char *err, size_t errlen)
{
	pid_t parent = getpid(), p;
	if (mkfifo(path, 0600) < 0 && errno != EEXIST) {
		snprintf(err, errlen, "rng_seed: mkfifo `%s`: %s", path, strerror(errno));
		return -1;
	}
	p = fork();
	if (p < 0) {
		snprintf(err, errlen, "rng_seed: fork: %s", strerror(errno));
		return -1;
	}
	if (p == 0)
		feed(path, seed, parent);
	*pid = p;
	return 0;
}

void rngfeed_stop(pid_t pid)
{
	if (pid <= 0)
		return;
	kill(pid, SIGKILL);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
}
