/* nbdmed.h — the write-back cache between a guest and a boot-time disk
 * image: a small NBD server (one per disk, in a child process of the
 * runner) that holds every write the guest has not flushed, so that
 * disk:power_cut() can lose exactly those, as a real power cut does.
 *
 * Why a server of our own: unflushed writes QEMU makes to a plain -drive
 * sit in the host page cache, which outlives QEMU, so killing QEMU loses
 * nothing. Here a write lands in an overlay (an unlinked sparse file plus
 * a bitmap of the sectors it holds); NBD_CMD_FLUSH copies the overlay into
 * the image and fdatasyncs it. Reads see the overlay over the image.
 *
 * Calling sequence (one mediator per disk, started before QEMU):
 *   nbdmed_start(image, sock_path, &m)   binds sock_path, forks the server
 *   QEMU: -blockdev driver=nbd,server.type=unix,server.path=<sock_path>
 *   nbdmed_faults(&m, mask)              guest reads/writes fail/crawl
 *   nbdmed_stop(&m, NBDMED_DROP)         power cut: unflushed writes lost
 *   nbdmed_stop(&m, NBDMED_COMMIT)       any other stop: written through
 * Stop only after QEMU is gone (no request may still be on its way). The
 * server dies with the runner (PR_SET_PDEATHSIG). 0 / -1 with err. */
#ifndef PROVIUM_NBDMED_H
#define PROVIUM_NBDMED_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct nbdmed {
	pid_t pid;                /* the server; 0 = not running */
	int ctl;                  /* our end of the control socketpair */
};

enum nbdmed_end { NBDMED_COMMIT = 'C', NBDMED_DROP = 'D' };

/* Fault bits, the same values as VMM_DISK_* (vmm.h). */
enum { NBDMED_EIO_READ = 1, NBDMED_EIO_WRITE = 2, NBDMED_SLOW = 4 };

int nbdmed_start(const char *image, const char *sock_path, struct nbdmed *m,
                 char *err, size_t errlen);
/* Replace the fault set; returns once the server applies it. */
int nbdmed_faults(struct nbdmed *m, unsigned mask, char *err, size_t errlen);
/* End the server, first committing or dropping the unflushed writes;
 * returns once it has. Safe on a stopped mediator. */
int nbdmed_stop(struct nbdmed *m, enum nbdmed_end how, char *err, size_t errlen);

#endif
