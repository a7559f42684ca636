#!/usr/bin/env python3
"""agentc.py - a tiny test client for provium-agent (tests only).

A hand-written msgpack subset (nil, bool, int, str, bin, array, map) and
the framing of src/proto/protocol.h (u32 big-endian length + one map), so
the guest smoke test needs nothing beyond python3. Usage:

    agentc.py SOCKET smoke [--reconnects N]

connects to QEMU's agent socket, handshakes, and runs the smoke scenario,
printing one line per check and a final "N passed, N failed" line; exit 0
only if every check passed.
"""
import os
import re
import socket
import struct
import sys
import time


def _protocol_version():
    """PROTOCOL_VERSION from src/proto/protocol.h, so this client cannot
    drift from the agent it talks to when the protocol is bumped."""
    h = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                     "..", "..", "src", "proto", "protocol.h")
    with open(h) as f:
        m = re.search(r"^#define PROTOCOL_VERSION (\d+)", f.read(), re.M)
    if not m:
        raise RuntimeError("no PROTOCOL_VERSION in " + h)
    return int(m.group(1))


PROTOCOL_VERSION = _protocol_version()
K_HELLO, K_HELLO_OK, K_HELLO_ERR = 1, 2, 3
K = dict(exec=100, read_file=101, write_file=102, stat=103, listdir=104,
         mkdir=105, unlink=106, rename=107, clock_get=108, clock_set=109,
         ping=110, spawn=120, proc_wait=121, proc_status=122, proc_kill=123,
         proc_stdin=124, proc_stdin_close=125, proc_stream=126,
         file_open=130, file_read=131, file_write=132, file_seek=133,
         file_close=134, tail=140, fd_stream=141, stream_close=142,
         syscall=150, poweroff=151, read_mem=152, net_setup=160,
         worker_spawn=170, worker_join=171, worker_kill=172)
K_OP_RESULT, K_STREAM_DATA, K_STREAM_END = 200, 300, 301


# ---- msgpack subset ----
def _hdr(n, fix, fixmax, c8, c16, c32):
    if fix is not None and n <= fixmax:
        return bytes([fix | n])
    if c8 is not None and n < 256:
        return bytes([c8, n])
    if n < 65536:
        return bytes([c16]) + struct.pack(">H", n)
    return bytes([c32]) + struct.pack(">I", n)


def pack(o):
    """Smallest encodings, like msgpack-c (the agent resyncs on the exact
    bytes of a canonical Hello)."""
    if o is None:
        return b"\xc0"
    if o is True:
        return b"\xc3"
    if o is False:
        return b"\xc2"
    if isinstance(o, int):
        if 0 <= o < 128:
            return bytes([o])
        if -32 <= o < 0:
            return struct.pack("b", o)
        if o >= 0:
            for code, f, lim in ((0xcc, ">B", 2**8), (0xcd, ">H", 2**16),
                                 (0xce, ">I", 2**32), (0xcf, ">Q", 2**64)):
                if o < lim:
                    return bytes([code]) + struct.pack(f, o)
        for code, f, lim in ((0xd0, ">b", 2**7), (0xd1, ">h", 2**15),
                             (0xd2, ">i", 2**31), (0xd3, ">q", 2**63)):
            if -lim <= o:
                return bytes([code]) + struct.pack(f, o)
        raise OverflowError(o)
    if isinstance(o, str):
        b = o.encode()
        return _hdr(len(b), 0xa0, 31, 0xd9, 0xda, 0xdb) + b
    if isinstance(o, (bytes, bytearray)):
        return _hdr(len(o), None, 0, 0xc4, 0xc5, 0xc6) + bytes(o)
    if isinstance(o, (list, tuple)):
        return _hdr(len(o), 0x90, 15, None, 0xdc, 0xdd) + b"".join(pack(x) for x in o)
    if isinstance(o, dict):
        return _hdr(len(o), 0x80, 15, None, 0xde, 0xdf) + b"".join(
            pack(k) + pack(v) for k, v in o.items())
    raise TypeError(type(o))


def unpack(b, i=0):
    t = b[i]
    if t < 0x80:
        return t, i + 1
    if t >= 0xe0:
        return t - 256, i + 1
    if 0x80 <= t <= 0x8f:
        return _map(b, i + 1, t & 15)
    if 0x90 <= t <= 0x9f:
        return _arr(b, i + 1, t & 15)
    if 0xa0 <= t <= 0xbf:
        n = t & 31
        return b[i + 1:i + 1 + n].decode(errors="replace"), i + 1 + n
    if t == 0xc0:
        return None, i + 1
    if t == 0xc2:
        return False, i + 1
    if t == 0xc3:
        return True, i + 1
    if t in (0xc4, 0xc5, 0xc6):
        w = {0xc4: 1, 0xc5: 2, 0xc6: 4}[t]
        n = int.from_bytes(b[i + 1:i + 1 + w], "big")
        s = i + 1 + w
        return bytes(b[s:s + n]), s + n
    ints = {0xcc: ">B", 0xcd: ">H", 0xce: ">I", 0xcf: ">Q",
            0xd0: ">b", 0xd1: ">h", 0xd2: ">i", 0xd3: ">q"}
    if t in ints:
        f = ints[t]
        n = struct.calcsize(f)
        return struct.unpack(f, b[i + 1:i + 1 + n])[0], i + 1 + n
    if t in (0xd9, 0xda, 0xdb):
        w = {0xd9: 1, 0xda: 2, 0xdb: 4}[t]
        n = int.from_bytes(b[i + 1:i + 1 + w], "big")
        s = i + 1 + w
        return b[s:s + n].decode(errors="replace"), s + n
    if t in (0xdc, 0xdd):
        w = 2 if t == 0xdc else 4
        return _arr(b, i + 1 + w, int.from_bytes(b[i + 1:i + 1 + w], "big"))
    if t in (0xde, 0xdf):
        w = 2 if t == 0xde else 4
        return _map(b, i + 1 + w, int.from_bytes(b[i + 1:i + 1 + w], "big"))
    raise ValueError("msgpack type 0x%02x" % t)


def _arr(b, i, n):
    out = []
    for _ in range(n):
        v, i = unpack(b, i)
        out.append(v)
    return out, i


def _map(b, i, n):
    out = {}
    for _ in range(n):
        k, i = unpack(b, i)
        v, i = unpack(b, i)
        out[k] = v
    return out, i


# ---- connection ----
class AgentError(Exception):
    pass


class Conn:
    def __init__(self, path, timeout=30.0):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(timeout)
        self.s.connect(path)
        self.buf = b""
        self.next_id = 1
        self.results = {}
        self.streams = {}

    def close(self):
        self.s.close()

    def send(self, msg):
        body = pack(msg)
        self.s.sendall(struct.pack(">I", len(body)) + body)

    def recv(self):
        while True:
            if len(self.buf) >= 4:
                n = struct.unpack(">I", self.buf[:4])[0]
                if len(self.buf) >= 4 + n:
                    body = self.buf[4:4 + n]
                    self.buf = self.buf[4 + n:]
                    return unpack(body)[0]
            chunk = self.s.recv(1 << 20)
            if not chunk:
                raise AgentError("connection closed")
            self.buf += chunk

    def hello(self, version=PROTOCOL_VERSION):
        self.send({"kind": K_HELLO, "protocol_version": version})
        while True:
            m = self.recv()
            # Frames before the handshake answer belong to an old session.
            if m.get("kind") in (K_HELLO_OK, K_HELLO_ERR):
                return m

    def request(self, op, **fields):
        rid = self.next_id
        self.next_id += 1
        msg = {"kind": K[op], "id": rid}
        msg.update(fields)
        self.send(msg)
        return rid

    def wait(self, rid):
        while rid not in self.results:
            m = self.recv()
            k = m.get("kind")
            if k == K_OP_RESULT:
                self.results[m["id"]] = m
            elif k == K_STREAM_DATA:
                self.streams.setdefault(m["channel"], []).append(m["data"])
            elif k == K_STREAM_END:
                self.streams.setdefault(m["channel"], []).append(None)
        m = self.results.pop(rid)
        if m["outcome"] != "ok":
            e = m["error"]
            raise AgentError("%s: %s" % (e["code"], e["message"]))
        return m.get("value")

    def call(self, op, **fields):
        return self.wait(self.request(op, **fields))


# ---- smoke scenario ----
def smoke(path, reconnects):
    passed = failed = 0

    def check(name, cond, detail=""):
        nonlocal passed, failed
        if cond:
            passed += 1
            print("ok   %s" % name)
        else:
            failed += 1
            print("FAIL %s %s" % (name, detail))

    c = Conn(path)
    t0 = time.monotonic()
    h = c.hello()
    check("hello", h.get("kind") == K_HELLO_OK, repr(h))
    print("info handshake %.1f ms, agent %s, %s, features %s" % (
        (time.monotonic() - t0) * 1000, h.get("agent_version"),
        h.get("guest_os"), ",".join(h.get("features", []))))

    r = c.call("exec", shell="echo hi")
    check("exec echo hi", r["status"] == 0 and r["stdout"] == b"hi\n", repr(r))
    r = c.call("exec", argv=["sh", "-c", "echo err >&2; exit 3"])
    check("exec argv status+stderr", r["status"] == 3 and r["stderr"] == b"err\n", repr(r))
    r = c.call("exec", shell="cat; echo $FOO; pwd", stdin=b"in\n",
               env={"FOO": "bar"}, cwd="/tmp")
    check("exec stdin/env/cwd", r["stdout"] == b"in\nbar\n/tmp\n", repr(r))
    r = c.call("exec", argv=["env"], env={"ONLY": "1"}, env_clear=True)
    check("exec env_clear", r["stdout"] == b"ONLY=1\n", repr(r))
    r = c.call("exec", shell="kill -TERM $$")
    check("exec signalled", r["status"] == -1 and r["signal"] == 15, repr(r))
    t = time.monotonic()
    r = c.call("exec", shell="sleep 30", timeout_ms=300)
    check("exec timeout", r["timed_out"] is True and r["status"] == -2, repr(r))
    print("info timeout returned after %.2f s" % (time.monotonic() - t))
    try:
        c.call("exec", argv=["/no/such/binary"])
        check("exec missing binary errors", False)
    except AgentError as e:
        check("exec missing binary errors", "ENOENT" in str(e), str(e))

    # Multiplexing: a slow exec must not hold up a fast op.
    slow = c.request("exec", shell="sleep 2; echo slow")
    t = time.monotonic()
    c.call("ping")
    fast = time.monotonic() - t
    check("multiplexed ping during slow exec", fast < 1.5, "%.2fs" % fast)
    r = c.wait(slow)
    check("slow exec result", r["stdout"] == b"slow\n", repr(r))

    data = bytes(range(256)) * 1000
    c.call("write_file", path="/tmp/f", data=data, mode=0o600)
    check("write_file/read_file", c.call("read_file", path="/tmp/f") == data)
    st = c.call("stat", path="/tmp/f")
    check("stat", st["size"] == len(data) and st["perm"] == 0o600 and
          st["entry_type"] == "file", repr(st))
    c.call("mkdir", path="/tmp/d/e/f", parents=True)
    ls = c.call("listdir", path="/tmp/d")
    check("mkdir parents + listdir", ls == [{"name": "e", "entry_type": "directory"}], repr(ls))
    c.call("rename", **{"from": "/tmp/f", "to": "/tmp/g"})
    c.call("unlink", path="/tmp/g")
    try:
        c.call("stat", path="/tmp/g")
        check("rename+unlink", False)
    except AgentError as e:
        check("rename+unlink", "ENOENT" in str(e), str(e))

    ns = c.call("clock_get")
    c.call("clock_set", ns=1700000000 * 10**9)
    ns2 = c.call("clock_get")
    check("clock set/get", 1700000000 * 10**9 <= ns2 < 1700000100 * 10**9, repr(ns2))
    c.call("clock_set", ns=int(time.time() * 1e9))

    h = c.call("file_open", path="/tmp/h", mode=1 | 2 | 4 | 8, perm=0o644)
    n = c.call("file_write", handle=h, data=b"hello world")
    c.call("file_seek", handle=h, offset=6, whence="set")
    s = c.call("file_read", handle=h, n=5)
    pos = c.call("file_seek", handle=h, offset=0, whence="cur")
    c.call("file_close", handle=h)
    check("file handles", n == 11 and s == b"world" and pos == 11, repr((n, s, pos)))

    p = c.call("spawn", argv=["cat"])
    c.call("proc_stdin", handle=p["handle"], data=b"hello\n")
    c.call("proc_stdin_close", handle=p["handle"])
    r = c.call("proc_wait", handle=p["handle"], timeout_ms=10000)
    check("spawn/stdin/wait", r["stdout"] == b"hello\n" and r["status"] == 0, repr(r))
    p = c.call("spawn", shell="echo one; sleep 0.3; echo two; sleep 100")
    ch = c.call("proc_stream", handle=p["handle"], which="stdout")["channel"]
    deadline = time.monotonic() + 10
    while b"".join(x for x in c.streams.get(ch, []) if x) != b"one\ntwo\n" \
            and time.monotonic() < deadline:
        c.call("ping")
        time.sleep(0.05)
    check("proc stream", b"".join(x for x in c.streams.get(ch, []) if x) == b"one\ntwo\n",
          repr(c.streams.get(ch)))
    c.call("proc_kill", handle=p["handle"], signal=9)
    r = c.call("proc_wait", handle=p["handle"])
    check("proc kill", r["signal"] == 9, repr(r))
    r = c.call("exec", shell="head -c 3000000 /dev/zero; echo done >&2")
    check("exec 3 MB of stdout", len(r["stdout"]) == 3000000 and r["stderr"] == b"done\n",
          repr((len(r["stdout"]), r["stderr"])))
    c.call("write_file", path="/tmp/log", data=b"old\n")
    ch = c.call("tail", path="/tmp/log", start="beginning")["channel"]
    c.call("write_file", path="/tmp/log", data=b"new\n", append=True)
    deadline = time.monotonic() + 10
    got = b""
    while got != b"old\nnew\n" and time.monotonic() < deadline:
        c.call("ping")
        got = b"".join(x for x in c.streams.get(ch, []) if x)
        time.sleep(0.05)
    c.call("stream_close", channel=ch)
    check("tail from beginning + append", got == b"old\nnew\n", repr(got))
    r = c.call("syscall", nr=39)  # getpid
    check("syscall getpid", r["ret"] > 1 and r["errno"] == 0, repr(r))
    # patches: the address of bufs[1] written LE into bufs[0] at offset 8
    # (ioctl(-1, FIONREAD, ...) fails with EBADF before reading anything)
    r = c.call("syscall", nr=16, args=[-1, 0x541B], bufs=[bytes(16), b"x"],
               ptrs=[2, -1], patches=[[0, 8, 1]])
    addr = int.from_bytes(r["out_bufs"][0][8:16], "little")
    check("syscall patch writes the address",
          r["errno"] == 9 and addr != 0 and r["out_bufs"][0][:8] == bytes(8), repr(r))
    for bad in ([[0, 9, 1]], [[0, -1, 1]], [[2, 0, 1]], [[0, 0, 5]], [[0, 0]], [7], "x"):
        try:
            c.call("syscall", nr=16, args=[-1, 0x541B], bufs=[bytes(16), b"x"],
                   ptrs=[2, -1], patches=bad)
            check("bad patch %r refused" % (bad,), False)
        except AgentError as e:
            check("bad patch %r refused" % (bad,), "bad_request" in str(e), str(e))
    check("agent serves after bad patches", c.call("ping") is None)
    # One strictness (proto/codec.c): a missing required field or a field of
    # the wrong type, optional or not, is bad_request naming the field.
    for op, fields, key in (("read_file", {}, "path"),
                            ("write_file", {"path": "/tmp/s"}, "data"),
                            ("write_file", {"path": "/tmp/s", "data": b"", "append": 1}, "append"),
                            ("stat", {"path": "/", "follow": "yes"}, "follow"),
                            ("mkdir", {"path": "/tmp/s2", "parents": 0}, "parents"),
                            ("exec", {"argv": ["true"], "timeout_ms": -1}, "timeout_ms"),
                            ("exec", {"argv": ["true", 5]}, "argv"),
                            ("syscall", {"nr": 39, "args": [0] * 7}, "args")):
        try:
            c.call(op, **fields)
            check("%s %r refused" % (op, fields), False)
        except AgentError as e:
            check("%s %r refused" % (op, fields),
                  "bad_request" in str(e) and "`%s`" % key in str(e), str(e))
    check("agent serves after bad requests", c.call("ping") is None)

    # net_setup. The smoke guest has no NIC: the managed /etc/hosts block,
    # resolv.conf, validation, and a MAC that never appears.
    begin, end = b"# provium: begin (managed; do not edit)\n", b"# provium: end\n"
    orig = c.call("read_file", path="/etc/hosts")
    r = c.call("net_setup", hosts="10.0.0.1 a.lan\n10.0.0.2 b.lan")
    got = c.call("read_file", path="/etc/hosts")
    want = orig + begin + b"10.0.0.1 a.lan\n10.0.0.2 b.lan\n" + end
    check("net_setup appends the hosts block", r == {"ifname": ""} and got == want,
          repr((r, got)))
    c.call("write_file", path="/etc/hosts", data=b"10.9.9.9 user.lan\n", append=True)
    c.call("net_setup", hosts="10.0.0.3 c.lan\n")
    got = c.call("read_file", path="/etc/hosts")
    want = orig + begin + b"10.0.0.3 c.lan\n" + end + b"10.9.9.9 user.lan\n"
    check("net_setup replaces the block in place, keeps the rest", got == want, repr(got))
    c.call("net_setup", hosts="")
    got = c.call("read_file", path="/etc/hosts")
    check("net_setup hosts \"\" removes the block", got == orig + b"10.9.9.9 user.lan\n",
          repr(got))
    c.call("write_file", path="/etc/hosts", data=orig)
    r = c.call("net_setup", dns="10.0.2.3", gateway="")
    got = c.call("read_file", path="/etc/resolv.conf")
    check("net_setup dns writes resolv.conf", got == b"nameserver 10.0.2.3\n", repr((r, got)))
    for bad in (dict(addr="10.0.0.1"), dict(up=True),
                dict(mac="52:56:00:00:00:99", addr="10.0.0.256"),
                dict(mac="52:56:00:00:00:99", addr="10.0.0.1", prefix=33),
                dict(mac="52:56:00:00:0:99"), dict(dns="example.org"),
                dict(hosts="# provium: end\n"), dict(wait_ms=-1)):
        try:
            c.call("net_setup", **bad)
            check("net_setup %r refused" % (bad,), False)
        except AgentError as e:
            check("net_setup %r refused" % (bad,), "bad_request" in str(e), str(e))
    mac = "52:56:de:ad:be:ef"
    t = time.monotonic()
    try:
        c.call("net_setup", mac=mac, addr="10.0.0.1", wait_ms=100)
        check("net_setup unknown mac -> ENODEV", False)
    except AgentError as e:
        el = time.monotonic() - t
        check("net_setup unknown mac -> ENODEV", "ENODEV" in str(e) and mac in str(e)
              and el < 2.0, "%s (%.2f s)" % (e, el))
    # Waiting for a NIC does not hold up other ops.
    slow = c.request("net_setup", mac=mac.upper(), wait_ms=1500)
    t = time.monotonic()
    c.call("ping")
    fast = time.monotonic() - t
    check("ping while net_setup waits for its NIC", fast < 1.0, "%.2fs" % fast)
    try:
        c.wait(slow)
        check("net_setup waits wait_ms, then ENODEV", False)
    except AgentError as e:
        el = time.monotonic() - t
        check("net_setup waits wait_ms, then ENODEV", "ENODEV" in str(e) and el >= 1.4,
              "%s (%.2f s)" % (e, el))

    # Reconnect storm: drop the connection N times; each new session must
    # handshake and serve an op. Half the drops happen mid-frame.
    c.close()
    ok = 0
    times = []
    for i in range(reconnects):
        t = time.monotonic()
        c = Conn(path)
        h = c.hello()
        r = c.call("exec", shell="echo %d" % i) if i % 10 == 0 else None
        v = c.call("read_file", path="/proc/uptime")
        if h.get("kind") == K_HELLO_OK and v and (r is None or r["stdout"] == b"%d\n" % i):
            ok += 1
        if i % 2:
            c.s.sendall(b"\x00\x00\x01\x00\x81")  # a partial frame
        c.close()
        times.append(time.monotonic() - t)
    times.sort()
    check("%d reconnects, each followed by a working op" % reconnects,
          ok == reconnects, "%d/%d" % (ok, reconnects))
    if times:
        print("info reconnect+op median %.1f ms, max %.1f ms" % (
            times[len(times) // 2] * 1000, times[-1] * 1000))

    c = Conn(path)
    v = c.hello(version=999)
    check("hello version mismatch -> HelloErr", v.get("kind") == K_HELLO_ERR and
          "version mismatch: host 999, agent %d" % PROTOCOL_VERSION in v.get("message", ""),
          repr(v))
    v = c.hello()
    check("hello after HelloErr", v.get("kind") == K_HELLO_OK, repr(v))
    c.close()
    print("%d passed, %d failed, 0 skipped" % (passed, failed))
    return failed == 0


def main():
    if len(sys.argv) < 3 or sys.argv[2] != "smoke":
        print(__doc__)
        return 2
    n = 100
    if "--reconnects" in sys.argv:
        n = int(sys.argv[sys.argv.index("--reconnects") + 1])
    return 0 if smoke(sys.argv[1], n) else 1


if __name__ == "__main__":
    sys.exit(main())
