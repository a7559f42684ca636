#!/usr/bin/env python3
"""mkcorpus.py — writes the generated seeds of tests/fuzz/corpus/ (small
valid inputs and one regression input per fixed finding). Run it from the
repository root; hand-written seeds (toml, lua) are copied files, and
snap/file-two-sections is a real snapshot file (snapfile_create: a "data"
and an "fs" section holding snap/tree's archive) behind a 0 byte.

Names starting with regress- are the regression inputs:
  agent_client/regress-array32    msgpack array32 of 2^32-1 elements in a 5-byte frame
  agent_client/regress-streamend-flood  9000 StreamEnd frames on distinct channels
  agent_server/regress-array32    the same against the agent's server
  events/regress-array32          the same in a runner event frame
  events/regress-ts-2p63          test_started with ts 2^64-1, runner dies
  snap/regress-symlink-then-dir   symlink "a" -> ../outside, then directory "a" 0777
"""
import os
import struct

def mp(o):
    if o is None:
        return b"\xc0"
    if o is True:
        return b"\xc3"
    if o is False:
        return b"\xc2"
    if isinstance(o, int):
        if 0 <= o < 128:
            return bytes([o])
        if 0 <= o < 2**16:
            return b"\xcd" + struct.pack(">H", o)
        if 0 <= o < 2**32:
            return b"\xce" + struct.pack(">I", o)
        if o >= 0:
            return b"\xcf" + struct.pack(">Q", o)
        return b"\xd3" + struct.pack(">q", o)
    if isinstance(o, str):
        b = o.encode()
        return (bytes([0xa0 | len(b)]) if len(b) < 32 else b"\xd9" + bytes([len(b)])) + b
    if isinstance(o, bytes):
        return b"\xc4" + bytes([len(o)]) + o
    if isinstance(o, list):
        return bytes([0x90 | len(o)]) + b"".join(mp(x) for x in o)
    if isinstance(o, dict):
        return bytes([0x80 | len(o)]) + b"".join(mp(k) + mp(v) for k, v in o.items())
    raise TypeError(o)

def frame(body):
    return struct.pack(">I", len(body)) + body

ARRAY32 = frame(b"\xdd\xff\xff\xff\xff")

def put(target, name, data):
    d = os.path.join("tests/fuzz/corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)

# host agent client: what a guest sends
ok1 = frame(mp({"kind": 200, "id": 1, "outcome": "ok", "value": None}))
err1 = frame(mp({"kind": 200, "id": 1, "outcome": "err", "code": "ENOENT", "errno": 2, "message": "no such file"}))
data = frame(mp({"kind": 300, "channel": 1, "data": b"hello"}))
end = frame(mp({"kind": 301, "channel": 1}))
enderr = frame(mp({"kind": 301, "channel": 1, "error": "read failed"}))
hello_ok = frame(mp({"kind": 2, "agent_version": "1", "guest_os": "Linux", "features": ["exec", "files"]}))
put("agent_client", "reply-ok", b"\x01" + ok1[1:] if False else ok1)
put("agent_client", "reply-err", err1)
put("agent_client", "stream", data + data + end)
put("agent_client", "stream-error", data + enderr + ok1)
put("agent_client", "hello-ok", hello_ok + ok1)
put("agent_client", "regress-array32", ARRAY32)
put("agent_client", "regress-streamend-flood",
    b"".join(frame(mp({"kind": 301, "channel": c})) for c in range(2, 9002)))

# agent server: what a host sends (last byte: where reads are cut)
hello = frame(mp({"kind": 1, "protocol_version": 3}))
ping = frame(mp({"kind": 110, "id": 1}))
stat = frame(mp({"kind": 103, "id": 2, "path": "/etc"}))
put("agent_server", "hello-ping", hello + ping + stat + b"\x00")
put("agent_server", "hello-badversion", frame(mp({"kind": 1, "protocol_version": 2})) + ping + b"\x00")
put("agent_server", "junk-then-hello", b"\x00\x00\x10" + hello + ping + b"\x05")
put("agent_server", "oversize-then-hello", b"\x7f\xff\xff\xff" + b"x" * 10 + hello + ping + b"\x00")
put("agent_server", "noid-unknown", hello + frame(mp({"kind": 110})) + frame(mp({"kind": 199, "id": 3})) + b"\xff")
put("agent_server", "regress-array32", hello + ARRAY32 + b"\x00")

# runner events (last byte: where reads are cut)
def ev(kind, payload, ts=1700000000000000000):
    return frame(mp({"ts": ts, "kind": kind, "payload": payload}))
started = ev("test_started", {"path": "a.test.lua", "name": "t1", "meta": {"tags": ["x"]}})
put("events", "pass", started + ev("test_passed", {"name": "t1", "duration_ns": 5}) + ev("_file_done", {}) + b"\x00")
put("events", "fail-log", started + ev("_test_log", {"name": "t1", "log": ["a", "b"]}) +
    ev("test_failed", {"name": "t1", "reason": "boom", "console_excerpt": "c", "duration_ns": 2**64 - 1}) + b"\x00")
put("events", "claim-open", ev("claim_acquired", {"amount": {"memory_bytes": 1 << 20, "cpus": 1}}) + started +
    ev("_chunk_error", {"message": "x"}) + b"\xff")
put("events", "regress-array32", ARRAY32 + b"\x00")
put("events", "regress-ts-2p63", ev("test_started", {"name": "t"}, ts=2**64 - 1) + b"\x00")

# QMP: greeting, capabilities reply (id 1), then two query-status replies
greet = b'{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}}, "capabilities": []}}\r\n'
put("qmp", "ok", greet + b'{"return": {}, "id": 1}\r\n{"return": {"status": "running", "running": true}, "id": 2}\r\n'
    b'{"event": "STOP", "timestamp": {"seconds": 1, "microseconds": 2}}\r\n{"return": {}, "id": 3}\r\n')
put("qmp", "error", greet + b'{"return": {}, "id": 1}\r\n{"error": {"class": "GenericError", "desc": "no"}, "id": 2}\r\n')
put("qmp", "late-id", greet + b'{"return": {}, "id": 1}\r\n{"return": 5, "id": 9}\r\n{"event": "RESUME"}\r\n')

# snapshot: byte 0 bit 0 = 1: an "fs" archive wrapped into a valid file
def rec(t, path, mode=0o644, size=0, body=b"", mtime=0):
    p = path.encode()
    return t + struct.pack(">H", len(p)) + p + struct.pack(">Iqq", mode, mtime, size) + body
E = rec(b"E", "", 0)
put("snap", "tree", b"\x01" + rec(b"D", "d", 0o755) + rec(b"F", "d/f", 0o600, 3, b"abc") +
    rec(b"L", "d/l", 0o777, 1, b"f") + E)
put("snap", "escape", b"\x01" + rec(b"F", "../x", 0o600, 1, b"a") + rec(b"F", "/abs", 0o600, 1, b"a") + E)
put("snap", "regress-symlink-then-dir", b"\x01" + rec(b"L", "a", 0o777, 10, b"../outside") +
    rec(b"D", "a", 0o777) + rec(b"F", "a/x", 0o777, 1, b"z") + E)
put("snap", "raw-magic", b"\x00PRVMSNAP\x00\x00\x00\x03\x00\x00\x00\x02{}\x00\x00\x00\x00")
