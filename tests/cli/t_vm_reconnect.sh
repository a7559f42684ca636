#!/usr/bin/env bash
# t_vm_reconnect.sh — 100 host reconnects in a row to one guest, each
# followed by a working op, through the qemu backend itself (the C driver
# tests/cli/vm/qemu-drive.c, built by `make test-tools` into
# build/test-tools/), then destroy must leave no QEMU. Exit 77 without
# QEMU or the guest kit.
set -u
cd "$(dirname "$0")/../.."
command -v qemu-system-x86_64 >/dev/null || { echo "skip: qemu-system-x86_64 not installed"; exit 77; }
kit=${PROVIUM_KIT_DIR:-build/guest}
[ -f "$kit/vmlinuz" ] || { echo "skip: no guest kit (make guest)"; exit 77; }

tmp=$(mktemp -d /tmp/t_vm_reconnect.XXXXXX)
cleanup() {
	for q in $(pgrep -f -- "[q]emu-system.*$tmp"); do kill -KILL "$q" 2>/dev/null; done
	rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }

# built by make (up to date with the library it drives) unless
# PROVIUM_TEST_TOOLS names a directory of ready ones (e.g. build/asan/test-tools)
if [ -n "${PROVIUM_TEST_TOOLS:-}" ]; then
	drive=$PROVIUM_TEST_TOOLS/qemu-drive
else
	drive=build/test-tools/qemu-drive
	make -s "$drive" >"$tmp/make.log" 2>&1 || { cat "$tmp/make.log"; fail "cannot build $drive"; }
fi
[ -x "$drive" ] || fail "no $drive"
mkdir "$tmp/run"
timeout 300 "$drive" "$kit" "$tmp/run" 100
rc=$?
[ $rc -eq 0 ] || fail "qemu-drive exited $rc"
pgrep -f -- "[q]emu-system.*$tmp" >/dev/null && fail "a QEMU of this test is still running"
exit 0
