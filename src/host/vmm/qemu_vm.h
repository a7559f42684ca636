/* qemu_vm.h — test hooks of the `qemu` VMM backend (qemu.c).
 *
 * The backend itself is reached through vmm.h (`vmm_qemu_ops`). These
 * extra entry points exist for tests only (tests/cli/vm/qemu-drive.c):
 * they let a test find the QEMU of a VM and drop/re-establish the agent
 * connection the way a snapshot restore will. */
#ifndef PROVIUM_QEMU_VM_H
#define PROVIUM_QEMU_VM_H

#include <stddef.h>
#include <sys/types.h>

#include "vmm/vmm.h"

/* The QEMU process id of a booted VM, 0 when none runs. */
pid_t qemu_vm_pid(const struct vmm_vm *vm);

/* Drop the host end of the agent channel and connect again: QMP
 * chardev-change makes QEMU re-connect to agent.sock, then accept and a
 * fresh Hello. The guest sees a host disconnect + reconnect. 0 or -1. */
int qemu_vm_reconnect(struct vmm_vm *vm, char *err, size_t errlen);

/* Ask the guest agent for hostile bytes instead of a reply (its
 * `_fault_frame` hook, src/agent/ops_fault.c; mode: oversized, truncated,
 * array32, streamend). The host must reject them: -1 with err naming the
 * cause, and the VM is gone (ops fail fast with that cause). Returns 0
 * only if the agent answered normally, which the tests treat as a bug. */
int qemu_vm_fault_frame(struct vmm_vm *vm, const char *mode, char *err, size_t errlen);

#endif
