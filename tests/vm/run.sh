#!/usr/bin/env bash
# tests/vm/run.sh — the VM suites on real guests (QEMU, TCG here).
#
# Builds provium and the guest kit (`make guest`), then runs
# `build/provium --vmm qemu tests/vm`, whose last line is provium's
# summary "... N passed, N failed, N skipped". When QEMU or the kit cannot
# be had, prints "vm: 0 passed, 0 failed, 1 skipped" and exits 0.
set -u
cd "$(dirname "$0")/../.."

skip() {
	echo "skip: $*"
	echo "vm: 0 passed, 0 failed, 1 skipped"
	exit 0
}

command -v qemu-system-x86_64 >/dev/null 2>&1 || skip "qemu-system-x86_64 is not installed"
make -s >/dev/null 2>&1 || { make 2>&1 | tail -20; echo "vm: 0 passed, 1 failed, 0 skipped"; exit 1; }
kit=build/guest
have_kit() { [ -f "$kit/vmlinuz" ] && [ -f "$kit/initrd.cpio.gz" ] && [ -f "$kit/agent-overlay.cpio.gz" ]; }
make -s guest >/dev/null 2>&1
if ! have_kit && [ -x build/provium-agent ] && [ -x guest/build-kit.sh ]; then
	guest/build-kit.sh build/provium-agent "$kit" >/dev/null 2>&1
fi
have_kit || skip "the guest kit ($kit) could not be built (make guest)"

exec build/provium --vmm qemu tests/vm "$@"
