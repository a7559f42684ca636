#!/usr/bin/env bash
# t_qmp_live.sh — the QMP client and QEMU launcher against a real QEMU.
#
# Uses build/test-tools/qmp-probe (tests/tools/qmp-probe.c, `make test-tools`):
#  1. qmp-probe RUN: QEMU -S without a kernel, agent socket + console wired;
#     QEMU connects to the agent socket; query-status, cont/RESUME,
#     stop/STOP, an error reply, quit; QEMU exits and is reaped.
#  2. qmp-probe --orphan RUN: the probe SIGKILLs itself while its QEMU runs;
#     PR_SET_PDEATHSIG must take QEMU down with it.
#  3. no QEMU started by this test remains (pgrep on the run directory).
# Exit 77 when qemu-system-x86_64 is missing.
set -u
cd "$(dirname "$0")/../.."
command -v qemu-system-x86_64 >/dev/null || { echo "skip: qemu-system-x86_64 not installed"; exit 77; }

tmp=$(mktemp -d /tmp/t_qmp_live.XXXXXX)
cleanup() {
	# kill only the QEMUs this test started, by pid
	for f in "$tmp"/out*; do
		[ -f "$f" ] || continue
		for pid in $(sed -n 's/^ok spawned pid //p' "$f"); do kill -KILL "$pid" 2>/dev/null; done
	done
	rm -rf "$tmp"
}
trap cleanup EXIT

fail() { echo "FAIL: $*"; exit 1; }

# built by make (up to date with the library it drives) unless
# PROVIUM_TEST_TOOLS names a directory of ready ones (e.g. build/asan/test-tools)
if [ -n "${PROVIUM_TEST_TOOLS:-}" ]; then
	probe=$PROVIUM_TEST_TOOLS/qmp-probe
else
	probe=build/test-tools/qmp-probe
	make -s "$probe" >"$tmp/make.log" 2>&1 || { cat "$tmp/make.log"; fail "cannot build $probe"; }
fi
[ -x "$probe" ] || fail "no $probe"

# 1. the QMP conversation
mkdir "$tmp/run1"
timeout 60 "$probe" "$tmp/run1" >"$tmp/out1" 2>&1
rc=$?
cat "$tmp/out1"
[ $rc -eq 0 ] || { echo "--- qemu.log"; cat "$tmp/run1/qemu.log" 2>/dev/null; fail "qmp-probe exited $rc"; }
for want in "ok QEMU connected to the agent socket" "ok query-status: running" "ok stop + STOP" \
	"ok error reply: QMP no-such-command: CommandNotFound" "ok qemu exited with status 0"; do
	grep -qF "$want" "$tmp/out1" || fail "missing line: $want"
done
echo "checked: QMP conversation with a real QEMU"

# 2. QEMU dies with its parent, even on SIGKILL
mkdir "$tmp/run2"
(timeout 60 "$probe" --orphan "$tmp/run2" >"$tmp/out2" 2>&1) 2>/dev/null
rc=$?
cat "$tmp/out2"
[ $rc -eq 137 ] || fail "orphan probe should have died of SIGKILL (137), exited $rc"
qpid=$(sed -n 's/^qemu-pid //p' "$tmp/out2")
[ -n "$qpid" ] || fail "orphan probe printed no qemu pid"
gone=0
for _ in $(seq 1 100); do   # bounded: up to ~10 s
	if ! kill -0 "$qpid" 2>/dev/null || grep -q '^Z' <(ps -o stat= -p "$qpid" 2>/dev/null); then
		gone=1; break
	fi
	sleep 0.1
done
[ $gone -eq 1 ] || fail "QEMU pid $qpid outlived its killed parent"
echo "checked: QEMU pid $qpid died with its SIGKILLed parent"

# 3. nothing left behind
if pgrep -f -- "$tmp/" >/dev/null; then
	pgrep -af -- "$tmp/"
	fail "a QEMU process of this test is still running"
fi
echo "checked: no QEMU process of this test remains"
echo "t_qmp_live: pass"
