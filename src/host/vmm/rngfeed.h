/* rngfeed.h — a deterministic entropy source for `rng_seed`.
 *
 * QEMU's `rng-random` backend reads a file; provium gives it a FIFO fed by
 * a small child process that writes the byte stream
 *     SHA-256(seed as 8 LE bytes || counter as 8 LE bytes), counter = 0, 1, ...
 * so a guest reading /dev/hwrng (virtio-rng) sees the same bytes for the
 * same seed, boot after boot. The child dies with its parent
 * (PR_SET_PDEATHSIG) and on EPIPE when QEMU goes away. */
#ifndef PROVIUM_RNGFEED_H
#define PROVIUM_RNGFEED_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Create the FIFO at path and start its feeder. 0, or -1 with err. */
int rngfeed_start(const char *path, uint64_t seed, pid_t *pid, char *err, size_t errlen);

/* The first n bytes of the stream for seed (for tests). */
void rngfeed_bytes(uint64_t seed, unsigned char *out, size_t n);

/* Kill and reap the feeder; safe with pid <= 0. */
void rngfeed_stop(pid_t pid);

#endif
