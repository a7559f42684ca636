#!/usr/bin/env python3
"""Drive `provium repl` on a pseudo-terminal (used by t_repl_tty.sh).

usage: pty_repl.py SCENARIO PROVIUM ARGS...
  interrupt  Ctrl-C during `vm:run("sleep 100")`: the op stops with an
             "interrupted" message, the prompt returns, the VM answers the
             next command; Ctrl-C on a half-typed line drops it; `.exit`.
  history    up-arrow twice + Enter re-runs the entry before `.exit` from
             the history file of an earlier session; `.exit`.
  sigterm    SIGTERM at the prompt: the REPL shuts the VM down and exits
             143; prints the pids of its children (QEMU) before that.
Prints the transcript; exits 0 when every expectation held, 1 otherwise
(with the reason on stderr)."""
import os
import pty
import re
import select
import signal
import sys
import time

scenario, argv = sys.argv[1], sys.argv[2:]
pid, fd = pty.fork()
if pid == 0:
    os.execv(argv[0], argv)

buf = b""


def fail(why):
    sys.stdout.write(buf.decode(errors="replace"))
    sys.stderr.write("pty_repl: %s: %s\n" % (scenario, why))
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    sys.exit(1)


def expect(pattern, timeout, start=0):
    """Wait until pattern (bytes regex) appears in the output after
    offset start; returns the offset just past the match."""
    global buf
    end = time.time() + timeout
    while True:
        m = re.search(pattern, buf[start:])
        if m:
            return start + m.end()
        left = end - time.time()
        if left <= 0:
            fail("timed out waiting for %r" % pattern)
        r, _, _ = select.select([fd], [], [], min(left, 0.2))
        if r:
            try:
                data = os.read(fd, 65536)
            except OSError:
                data = b""
            if not data:
                fail("EOF while waiting for %r" % pattern)
            buf += data


def prompt(start, timeout=10):
    """Wait for the prompt, then a moment: bytes typed before libedit has
    put the terminal in raw mode would be echoed twice."""
    p = expect(rb"> ", timeout, start)
    time.sleep(0.5)
    return p


def send(b):
    os.write(fd, b)


def children():
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/stat" % d) as f:
                    st = f.read()
            except OSError:
                continue
            fields = st[st.rindex(")") + 2:].split()
            if int(fields[1]) == pid:
                out.append(int(d))
    return out


def wait_exit(timeout):
    end = time.time() + timeout
    global buf
    while time.time() < end:
        r, _, _ = select.select([fd], [], [], 0.2)
        if r:
            try:
                data = os.read(fd, 65536)
            except OSError:
                data = b""
            buf += data
        p, st = os.waitpid(pid, os.WNOHANG)
        if p == pid:
            return os.waitstatus_to_exitcode(st)
    fail("did not exit within %ds" % timeout)


BOOT = 300
pos = expect(rb"\n> |^> ", BOOT)
time.sleep(0.5)
if scenario == "interrupt":
    send(b'vm:run("sleep 100")\r')
    pos = expect(rb'sleep 100"\)\r\n', 10, pos)
    time.sleep(1.5)                      # the op is running in the VM
    t0 = time.time()
    send(b"\x03")
    pos = expect(rb"interrupted[^\n]*\n", 60, pos)
    pos = expect(rb"the VM is still up[^\n]*\n", 10, pos)
    pos = prompt(pos)
    if time.time() - t0 > 60:
        fail("Ctrl-C took more than 60 s")
    send(b'vm:run("echo alive-$((6*7))").stdout\r')
    pos = expect(rb"alive-42", 120, pos)
    pos = prompt(pos)
    send(b"half-typed garbage")
    pos = expect(rb"garbage", 10, pos)
    send(b"\x03")
    pos = prompt(pos)
    send(b'"after" .. "clear"\r')
    pos = expect(rb"afterclear", 30, pos)
    if b"half-typed" in buf[pos:]:
        fail("the half-typed line was not dropped")
    pos = prompt(pos)
    send(b".exit\r")
    rc = wait_exit(120)
elif scenario == "history":
    send(b"\x1b[A\x1b[A")
    pos = expect(rb'"after" \.\. "clear"', 10, pos)
    send(b"\r")
    pos = expect(rb"afterclear", 30, pos)
    pos = prompt(pos)
    send(b".exit\r")
    rc = wait_exit(120)
elif scenario == "sigterm":
    kids = children()
    print("children: %s" % " ".join(map(str, kids)), flush=True)
    os.kill(pid, signal.SIGTERM)
    rc = wait_exit(120)
    if rc != 143:
        fail("exit %d after SIGTERM, expected 143" % rc)
    pos = expect(rb"the VM was shut down", 1, pos)
    rc = 0
else:
    fail("unknown scenario")
sys.stdout.write(buf.decode(errors="replace"))
if rc != 0:
    sys.stderr.write("pty_repl: %s: exit %d\n" % (scenario, rc))
    sys.exit(1)
