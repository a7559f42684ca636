#!/bin/bash
# smoke.sh — boot the guest kit under TCG and drive provium-agent.
#
# Boots build/guest/vmlinuz with initrd = initrd.cpio.gz + agent-overlay.cpio.gz
# (concatenated, like provium does), waits for the agent socket, then runs
# tests/guest/agentc.py: Hello, exec, files, clock, handles, processes,
# streams, syscall, net_setup (hosts block, resolv.conf, ENODEV), 100
# reconnects each followed by a working op, and a HelloErr on a bad
# version. Reports boot-to-handshake time (measured, not asserted). Exit 0
# pass, 77 skip (no kit / no qemu), else fail. QEMU is killed on every exit
# path.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
kit=${PROVIUM_GUEST_KIT:-$root/build/guest}
reconnects=${SMOKE_RECONNECTS:-100}

command -v qemu-system-x86_64 >/dev/null || { echo "skip: no qemu-system-x86_64"; exit 77; }
for f in vmlinuz initrd.cpio.gz agent-overlay.cpio.gz; do
	[ -f "$kit/$f" ] || { echo "skip: $kit/$f missing (make guest)"; exit 77; }
done

tmp=$(mktemp -d)
qpid=
cleanup() {
	if [ -n "$qpid" ] && kill -0 "$qpid" 2>/dev/null; then
		kill "$qpid" 2>/dev/null
		for _ in $(seq 50); do kill -0 "$qpid" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$qpid" 2>/dev/null
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

cat "$kit/initrd.cpio.gz" "$kit/agent-overlay.cpio.gz" > "$tmp/initrd"
t0=$(date +%s.%N)
qemu-system-x86_64 -accel tcg -m 256 -nodefaults -display none -no-reboot \
	-serial "file:$tmp/console.log" \
	-device virtio-serial-pci \
	-chardev "socket,id=agent,path=$tmp/agent.sock,server=on,wait=off" \
	-device virtserialport,chardev=agent,name=org.provium.agent \
	-monitor "unix:$tmp/mon.sock,server=on,wait=off" \
	-kernel "$kit/vmlinuz" -initrd "$tmp/initrd" \
	-append 'console=ttyS0 rdinit=/sbin/provium-agent panic=-1 quiet' &
qpid=$!

for _ in $(seq 300); do
	[ -S "$tmp/agent.sock" ] && break
	kill -0 "$qpid" 2>/dev/null || { echo "FAIL: qemu exited early"; cat "$tmp/console.log"; exit 1; }
	sleep 0.1
done
[ -S "$tmp/agent.sock" ] || { echo "FAIL: no agent socket"; exit 1; }

# Handshake timing: retry Hello until the agent answers (bounded).
python3 - "$tmp/agent.sock" "$t0" <<'PY' || { echo "FAIL: no handshake"; cat "$tmp/console.log"; exit 1; }
import sys, time
sys.path.insert(0, "tests/guest")
import agentc
path, t0 = sys.argv[1], float(sys.argv[2])
deadline = time.time() + 120
while time.time() < deadline:
    try:
        c = agentc.Conn(path, timeout=1.0)
        h = c.hello()
        c.close()
        print("info boot-to-handshake %.2f s (qemu start to HelloOk, TCG)" % (time.time() - t0))
        sys.exit(0)
    except (OSError, agentc.AgentError):
        time.sleep(0.05)
sys.exit(1)
PY

cd "$root"
python3 "$here/agentc.py" "$tmp/agent.sock" smoke --reconnects "$reconnects"
rc=$?

# ACPI power button (QEMU monitor system_powerdown): the agent, as the
# minimal init, must power the guest off, which ends QEMU (-no-reboot).
python3 - "$tmp/mon.sock" <<'PY'
import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
time.sleep(0.2); s.sendall(b"system_powerdown\n"); time.sleep(0.2); s.close()
PY
gone=0
for _ in $(seq 300); do
	kill -0 "$qpid" 2>/dev/null || { gone=1; break; }
	sleep 0.1
done
if [ $gone = 1 ]; then
	echo "ok   power button powers the guest off"
else
	echo "FAIL power button: qemu still running after 30 s"
	rc=1
fi

if [ $rc -ne 0 ]; then
	echo "--- console ---"
	tail -40 "$tmp/console.log"
fi
exit $rc
