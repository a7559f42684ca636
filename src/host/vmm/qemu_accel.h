/* qemu_accel.h — accel = "auto": decide KVM or TCG for this machine,
 * kernel and QEMU, once, and remember the verdict.
 *
 * /dev/kvm missing or not openable read-write -> TCG, no probe, no cache.
 * Otherwise the verdict is cached in <cache_dir>/<sha256> keyed by (host
 * kernel release+version, the QEMU binary's identity — path, inode, size,
 * mtime, which change with every upgrade, so no subprocess is needed to
 * ask its version —, the kernel image's identity). On a miss, a probe boot
 * under KVM runs with a deadline of timeout_ms (default 4000): either the
 * caller's boot callback (which should reach the agent handshake) or, when
 * it is NULL, a built-in probe that boots the kernel alone under KVM and
 * waits for the kernel's banner on the serial console. Cost: one probe
 * per machine, kernel and QEMU — up to timeout_ms when KVM hangs, as it
 * does on nested hosts without SVM; the guest is killed at the deadline.
 * The built-in probe's run directory is a temp dir (tempfile.h,
 * "$TMPDIR/provium-accel-XXXXXX"), removed when the probe ends.
 *
 * The cache is a directory of one-word files ("kvm\n" / "tcg\n") named by
 * the hash, each written atomically (atomicfile.h). */
#ifndef PROVIUM_QEMU_ACCEL_H
#define PROVIUM_QEMU_ACCEL_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

typedef int (*qemu_probe_fn)(void *ctx, int64_t deadline_ns, char *err, size_t errlen);

struct qemu_accel_probe {
	const char *qemu;          /* NULL = default binary */
	const char *kernel;        /* kernel image to probe with (required for a probe) */
	const char *cache_dir;     /* NULL = $XDG_CACHE_HOME or ~/.cache, + /provium/accel */
	const char *kvm_dev;       /* NULL = "/dev/kvm" */
	int timeout_ms;            /* 0 = 4000 */
	qemu_probe_fn boot;        /* NULL = built-in console-banner probe */
	void *ctx;
};

/* Returns ACCEL_KVM or ACCEL_TCG (want itself unless ACCEL_AUTO). why (may
 * be NULL) says how the verdict was reached, e.g. "cached", "/dev/kvm:
 * Permission denied", "KVM probe: timed out". Never fails: doubt -> TCG. */
enum accel_kind qemu_accel_resolve(enum accel_kind want, const struct qemu_accel_probe *p,
				   char *why, size_t whylen);

/* The cache file path qemu_accel_resolve would use (tests). 0 or -1. */
int qemu_accel_cache_path(const struct qemu_accel_probe *p, char *buf, size_t len);

#endif
