#!/usr/bin/env bash
# t_qmp_live.sh — the QMP client and QEMU launcher against a real QEMU.
#
# Builds tests/tools/qmp-probe.c against build/libprovium.a, then:
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

if [ ! -f build/libprovium.a ]; then
	make -s build/libprovium.a >"$tmp/make.log" 2>&1 || { cat "$tmp/make.log"; fail "cannot build build/libprovium.a"; }
fi
cc -std=c11 -D_GNU_SOURCE -Isrc -Isrc/host $(pkg-config --cflags msgpack jansson 2>/dev/null) \
	-o "$tmp/qmp-probe" tests/tools/qmp-probe.c build/libprovium.a \
	$(pkg-config --libs lua5.4 msgpack jansson libzstd libcrypto libedit libcurl 2>/dev/null || echo -llua5.4 -lmsgpackc -ljansson -lzstd -lcrypto -ledit -lcurl) -lslirp -lxxhash -lpthread -lm \
	2>"$tmp/cc.log" || { cat "$tmp/cc.log"; fail "cannot build qmp-probe"; }

# 1. the QMP conversation
mkdir "$tmp/run1"
timeout 60 "$tmp/qmp-probe" "$tmp/run1" >"$tmp/out1" 2>&1
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
(timeout 60 "$tmp/qmp-probe" --orphan "$tmp/run2" >"$tmp/out2" 2>&1) 2>/dev/null
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
