/* preflight.h — startup checks of what the chosen backend needs. */
#ifndef PROVIUM_PREFLIGHT_H
#define PROVIUM_PREFLIGHT_H

#include <stddef.h>
#include "config.h"

/* Check the host for the qemu backend: the QEMU binary ($PROVIUM_QEMU or
 * qemu-system-x86_64 on PATH) and, for every profile whose accel is kvm,
 * an openable /dev/kvm. 0, or -1 with an actionable message in err. */
int preflight_qemu(const struct config *cfg, char *err, size_t errlen);

#endif
