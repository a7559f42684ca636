/* preflight.c — what `--vmm qemu` needs from the host, checked once at
 * startup so that a missing piece fails the run with an actionable message
 * (exit 2) instead of failing every test that boots a VM.
 *
 * Checked: the QEMU binary, and /dev/kvm for profiles pinned to kvm.
 * Not checked: `auto` profiles (the accel probe falls back to TCG by
 * itself), networking tools (provium creates no host network yet), and
 * the guest kit (a boot reports a missing kernel naming the path). */
#include "preflight.h"
#include "fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* 1 when prog is an executable path or found on PATH. */
static int on_path(const char *prog)
{
	char *p = path_lookup(prog);
	int found = p != NULL;
	free(p);
	return found;
}

int preflight_qemu(const struct config *cfg, char *err, size_t errlen)
{
	const char *qemu = getenv("PROVIUM_QEMU");
	size_t i;
	if (!qemu || !*qemu)
		qemu = "qemu-system-x86_64";
	if (!on_path(qemu)) {
		snprintf(err, errlen,
		         "preflight: `%s` not found (install it: apt-get install qemu-system-x86; "
		         "or run without guests: --vmm local; or skip this check: --no-preflight)",
		         qemu);
		return -1;
	}
	for (i = 0; i < cfg->nprofiles; i++) {
		int fd;
		if (cfg->profiles[i].accel != ACCEL_KVM)
			continue;
		fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
		if (fd < 0) {
			snprintf(err, errlen,
			         "preflight: profile `%s` has accel = \"kvm\" but /dev/kvm cannot be opened: %s "
			         "(load kvm-intel or kvm-amd and join the kvm group, or use accel = \"tcg\" / \"auto\")",
			         cfg->profiles[i].name, strerror(errno));
			return -1;
		}
		close(fd);
	}
	return 0;
}
