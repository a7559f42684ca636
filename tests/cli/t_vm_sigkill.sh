#!/usr/bin/env bash
# t_vm_sigkill.sh — SIGKILL provium while a VM of the run is booted: no
# qemu-system process of that run may remain (PR_SET_PDEATHSIG on the
# runner and on QEMU). The run's temp dir is private (TMPDIR), so its
# QEMUs are exactly the processes whose command line names it.
# Exit 77 without qemu-system-x86_64 or the guest kit.
set -u
cd "$(dirname "$0")/../.."
bin=${PROVIUM_BIN:-build/provium}
command -v qemu-system-x86_64 >/dev/null || { echo "skip: qemu-system-x86_64 not installed"; exit 77; }
[ -f build/guest/vmlinuz ] || { echo "skip: no guest kit (make guest)"; exit 77; }
[ -x "$bin" ] || { echo "FAIL: $bin missing"; exit 1; }

tmp=$(mktemp -d /tmp/t_vm_sigkill.XXXXXX)
pid=
cleanup() {
	[ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
	for q in $(pgrep -f -- "[q]emu-system.*$tmp"); do kill -KILL "$q" 2>/dev/null; done
	rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }

mkdir "$tmp/run"
SLEEPER_MARK=$tmp/mark TMPDIR=$tmp/run "$bin" --vmm qemu --no-preflight tests/cli/vm/sleeper.test.lua \
	>"$tmp/out" 2>&1 &
pid=$!
for _ in $(seq 1200); do
	[ -s "$tmp/mark" ] && break
	kill -0 "$pid" 2>/dev/null || { cat "$tmp/out"; fail "provium exited before the VM booted"; }
	sleep 0.1
done
[ -s "$tmp/mark" ] || fail "the VM did not boot within 120 s"
n=$(pgrep -f -- "[q]emu-system.*$tmp" | wc -l)
[ "$n" -ge 1 ] || fail "no QEMU of this run found while booted"
echo "ok: $n QEMU running under $tmp; SIGKILL provium ($pid)"
kill -KILL "$pid"
wait "$pid" 2>/dev/null
pid=
for _ in $(seq 100); do
	pgrep -f -- "[q]emu-system.*$tmp" >/dev/null || { echo "ok: no QEMU of the run remains"; exit 0; }
	sleep 0.1
done
pgrep -af -- "[q]emu-system.*$tmp"
fail "QEMU outlived the killed provium by 10 s"
