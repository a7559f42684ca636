#!/usr/bin/env python3
"""bench/net_kernel_bridge.py — the kernel-bridge baseline for bench/run.sh.

Two guests of the guest kit (build/guest) on a Linux bridge with two TAPs,
all inside an existing network namespace the caller made (and deletes):

    bench/net_kernel_bridge.py --netns NAME [--kit DIR] [--pings 20]
                               [--mib 20] [--runs 3] [--port 9100]
                               [--tmpdir DIR]

Needs root. Boots the guests with qemu-system-x86_64 -accel tcg (started
through `ip netns exec NAME`, so the TAPs are the namespace's), drives
their agents with tests/guest/agentc.py (net_setup addresses the NICs and
writes a.lan / b.lan into /etc/hosts), then measures what bench/run.sh
measures through provium's switch:

    ping RTT median, a -> b.lan   (ping -c N -i 0.2)
    ping RTT median, a's loopback (ping -c N -i 0.2 127.0.0.1)
    MiB of TCP a -> b             (dd | nc; timed until b's nc exits;
                                   median, min and max of --runs)

and prints "key value" lines (seconds) on stdout. Every wait is bounded;
the QEMUs are killed on every exit path (finally, SIGTERM/SIGINT/SIGHUP,
and PR_SET_PDEATHSIG should this process die without cleaning up). All
traffic stays between the two guests inside the namespace.
"""
import argparse
import ctypes
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "guest"))
import agentc  # noqa: E402

BOOT_TIMEOUT = 240.0      # both guests booting on TCG at once, cores busy
OP_TIMEOUT = 120.0        # socket timeout of one agent op
PREFIX = "198.18.0."
GUESTS = [("a", "tap0", "52:56:00:be:00:01", 1), ("b", "tap1", "52:56:00:be:00:02", 2)]

PROCS = []


def log(msg):
    print("net_kernel_bridge: " + msg, file=sys.stderr, flush=True)


def kill_all():
    for p in PROCS:
        if p.poll() is None:
            try:
                p.kill()
            except OSError:
                pass
    for p in PROCS:
        try:
            p.wait(timeout=10)
        except Exception:
            pass


def on_signal(sig, _frame):
    raise SystemExit(128 + sig)


def pdeathsig():
    """preexec_fn: SIGKILL the child when this process dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def sh(*argv):
    r = subprocess.run(list(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=30)
    if r.returncode != 0:
        raise RuntimeError("%s: %s" % (" ".join(argv), r.stdout.decode(errors="replace")))


def setup_bridge(ns):
    sh("ip", "-n", ns, "link", "set", "lo", "up")
    sh("ip", "-n", ns, "link", "add", "br0", "type", "bridge", "forward_delay", "0",
       "stp_state", "0")
    for _, tap, _, _ in GUESTS:
        sh("ip", "-n", ns, "tuntap", "add", "dev", tap, "mode", "tap")
        sh("ip", "-n", ns, "link", "set", tap, "master", "br0")
        sh("ip", "-n", ns, "link", "set", tap, "up")
    sh("ip", "-n", ns, "link", "set", "br0", "up")


def launch(ns, kit, initrd, d, tap, mac):
    os.makedirs(d, exist_ok=True)
    argv = ["ip", "netns", "exec", ns,
            "qemu-system-x86_64", "-nodefaults", "-no-user-config", "-display", "none",
            "-machine", "q35", "-accel", "tcg", "-m", "256M", "-smp", "1", "-no-reboot",
            "-serial", "file:%s/console.log" % d,
            "-chardev", "socket,id=agent,path=%s/agent.sock,server=on,wait=off" % d,
            "-device", "virtio-serial-pci,id=vser0",
            "-device", "virtserialport,bus=vser0.0,chardev=agent,name=org.provium.agent",
            "-netdev", "tap,id=n0,ifname=%s,script=no,downscript=no" % tap,
            "-device", "virtio-net-pci,netdev=n0,mac=%s" % mac,
            "-kernel", os.path.join(kit, "vmlinuz"), "-initrd", initrd,
            "-append", "console=ttyS0 panic=-1 quiet rdinit=/sbin/provium-agent"]
    out = open(os.path.join(d, "qemu.log"), "wb")
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                         preexec_fn=pdeathsig, close_fds=True)
    out.close()
    PROCS.append(p)
    return p


def connect(path, proc, name, deadline):
    last = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("guest %s: qemu exited with %s" % (name, proc.returncode))
        if os.path.exists(path):
            c = None
            try:
                c = agentc.Conn(path, timeout=5)
                h = c.hello()
                if h.get("kind") != agentc.K_HELLO_OK:
                    raise RuntimeError("guest %s: hello refused: %r" % (name, h))
                c.s.settimeout(OP_TIMEOUT)
                return c
            except (OSError, agentc.AgentError, socket.timeout) as e:
                last = e
                if c is not None:
                    c.close()
        time.sleep(0.2)
    raise RuntimeError("guest %s: no agent within %.0f s (%s)" % (name, BOOT_TIMEOUT, last))


def run(c, cmd, timeout_s=60):
    return c.call("exec", shell=cmd, timeout_ms=int(timeout_s * 1000))


def out(r):
    return (r.get("stdout") or b"").decode(errors="replace") + \
        (r.get("stderr") or b"").decode(errors="replace")


def median(v):
    v = sorted(v)
    return v[max(0, (len(v) + 1) // 2 - 1)]


def rtts(c, host, n):
    r = run(c, "ping -c %d -i 0.2 %s" % (n, host), 60)
    ms = [float(x) for x in re.findall(r"time=([\d.]+) ms", out(r))]
    if len(ms) < n // 2:
        raise RuntimeError("ping %s: %d replies of %d: %s" % (host, len(ms), n, out(r)))
    return [x / 1000 for x in ms]


def bounded(what, fn, timeout_s):
    deadline = time.monotonic() + timeout_s
    while True:
        if fn():
            return
        if time.monotonic() > deadline:
            raise RuntimeError("%s: not within %.0f s" % (what, timeout_s))
        time.sleep(0.1)


def xfer(a, b, mib, port):
    """Seconds for mib MiB a -> b, until b's nc has seen a's FIN and exited."""
    srv = b.call("spawn", shell="nc -l -p %d > /dev/null" % port)["handle"]
    bounded("b listens on %d" % port, lambda: run(
        b, "netstat -lnt | grep -q ':%d '" % port, 10)["status"] == 0, 30)
    t0 = time.monotonic()
    cli = a.call("spawn", shell="dd if=/dev/zero bs=64k count=%d 2>/dev/null | nc -w 2 b.lan %d"
                 % (mib * 16, port))["handle"]
    r = b.call("proc_wait", handle=srv, timeout_ms=600000)
    dt = time.monotonic() - t0
    rc = a.call("proc_wait", handle=cli, timeout_ms=60000)
    if r.get("timed_out") or r.get("status") != 0:
        raise RuntimeError("b's nc: %r" % r)
    if rc.get("timed_out") or rc.get("status") != 0:
        raise RuntimeError("a's dd | nc: %r" % rc)
    return dt


def bench(ns, kit, pings, mib, runs, port, tmp):
    initrd = os.path.join(tmp, "initrd")
    with open(initrd, "wb") as f:
        for part in ("initrd.cpio.gz", "agent-overlay.cpio.gz"):
            with open(os.path.join(kit, part), "rb") as g:
                shutil.copyfileobj(g, f)
    setup_bridge(ns)
    procs = [launch(ns, kit, initrd, os.path.join(tmp, name), tap, mac)
             for name, tap, mac, _ in GUESTS]
    deadline = time.monotonic() + BOOT_TIMEOUT
    conns = [connect(os.path.join(tmp, name, "agent.sock"), p, name, deadline)
             for (name, _, _, _), p in zip(GUESTS, procs)]
    hosts = "".join("%s%d\t%s.lan\n" % (PREFIX, h, name) for name, _, _, h in GUESTS)
    for c, (name, _, mac, h) in zip(conns, GUESTS):
        r = c.call("net_setup", mac=mac, addr=PREFIX + str(h), prefix=24, hosts=hosts,
                   wait_ms=10000)
        log("guest %s: %s is %s%d" % (name, r.get("ifname"), PREFIX, h))
    a, b = conns
    bounded("a reaches b.lan", lambda: run(a, "ping -c 1 -W 1 b.lan", 10)["status"] == 0, 60)
    bounded("b reaches a.lan", lambda: run(b, "ping -c 1 -W 1 a.lan", 10)["status"] == 0, 60)

    res = {}
    res["kb_ping_median"] = median(rtts(a, "b.lan", pings))
    res["kb_loop_median"] = median(rtts(a, "127.0.0.1", pings))

    times = [xfer(a, b, mib, port + i) for i in range(1, runs + 1)]
    res["kb_xfer_s"] = median(times)
    res["kb_xfer_min"] = min(times)
    res["kb_xfer_max"] = max(times)
    res["kb_xfer_mib"] = mib
    for c in conns:
        c.close()
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--netns", required=True)
    ap.add_argument("--kit", default=os.path.join(ROOT, "build", "guest"))
    ap.add_argument("--pings", type=int, default=20)
    ap.add_argument("--mib", type=int, default=20)
    ap.add_argument("--runs", type=int, default=3, help="transfers (median, min, max)")
    ap.add_argument("--port", type=int, default=9100)
    ap.add_argument("--tmpdir", default=None,
                    help="where the run directory goes (default: $TMPDIR)")
    args = ap.parse_args()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)
    tmp = tempfile.mkdtemp(prefix="provium-kb-", dir=args.tmpdir)
    try:
        res = bench(args.netns, args.kit, args.pings, args.mib, args.runs, args.port, tmp)
        for k, v in res.items():
            print("%s %.6f" % (k, v))
        return 0
    except Exception as e:
        log("failed: %s" % e)
        for name, _, _, _ in GUESTS:
            for f in ("qemu.log", "console.log"):
                p = os.path.join(tmp, name, f)
                if os.path.exists(p):
                    with open(p, "rb") as fh:
                        tail = fh.read()[-1500:].decode(errors="replace")
                    if tail.strip():
                        log("--- %s %s (tail) ---\n%s" % (name, f, tail))
        return 1
    finally:
        kill_all()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
