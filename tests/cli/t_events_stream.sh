#!/usr/bin/env bash
# Conformance of the event stream with the reference: --save-events holds
# exactly the run's frames (one file_dispatched / file_completed per file,
# one outcome per test), frames are {ts, kind, payload}, payload fields are
# the documented ones (vm_spawned.memory_bytes, test_failed.console_excerpt,
# file_blocked.waiting_for.memory_bytes — never a bare `memory`), and a
# second run appends to the same file (only --watch truncates per run).
. "$(dirname "$0")/cli/lib.sh"
W=$T/w
mkdir -p "$W/t"
cd "$W"
: >provium.toml
export PROVIUM_NO_PSI=1
L="$P --vmm local --no-preflight --config $W/provium.toml"

cat >t/spec.test.lua <<'LUA'
test("a", {spec = "PSD-X §1"}, function(t) t:assert(true) end)
test("b", {spec = "PSD-X §1"}, function(t) t:assert(true) end)
test("c", {spec = "PSD-X §2"}, function(t)
	provium:vm("v", "default", {memory = "64M"}):boot()
	t:fail("nope")
end)
LUA
run $L --save-events "$T/ev" t
expect_rc 1 "the failing test makes the run exit 1"
$DECODE "$T/ev" >"$T/ev.json" || fail "frames do not decode"
python3 - "$T/ev.json" <<'PY' || fail "event stream: $(cat "$T/ev.json")"
import json, sys
evs = [json.loads(l) for l in open(sys.argv[1])]
for e in evs:
    assert set(e) == {"ts", "kind", "payload"}, e
    assert isinstance(e["ts"], int) and e["ts"] > 0, e
kinds = [e["kind"] for e in evs]
assert kinds.count("file_dispatched") == 1, kinds
assert kinds.count("file_completed") == 1, kinds
assert kinds.count("test_passed") == 2, kinds
assert kinds.count("test_failed") == 1, kinds
assert kinds.count("test_started") == 3, kinds
by = {}
for e in evs:
    by.setdefault(e["kind"], []).append(e["payload"])
vs = by["vm_spawned"][0]
assert set(vs) == {"file", "vm_name", "profile", "memory_bytes", "cid"}, vs
assert vs["memory_bytes"] == 64 << 20 and vs["vm_name"] == "v" and vs["profile"] == "default", vs
assert vs["file"] == "t/spec.test.lua", vs
tf = by["test_failed"][0]
assert set(tf) == {"path", "name", "duration_ns", "reason", "console_excerpt", "meta"}, tf
assert tf["name"] == "c" and tf["reason"] == "t/spec.test.lua:5: nope" and tf["meta"] == {"spec": "PSD-X §2"}, tf
assert isinstance(tf["console_excerpt"], str), tf
fc = by["file_completed"][0]
assert set(fc) == {"path", "status", "duration_ns"} and fc["status"] == "failed", fc
fd = by["file_discovered"][0]
assert set(fd) == {"path", "fixture_refs", "declared_claim"}, fd
PY
ok "one run's frames and payloads"

# a second run appends to the same file
run $L --save-events "$T/ev" t
$DECODE "$T/ev" >"$T/ev2.json" || fail "appended frames do not decode"
[ "$(grep -c '"file_dispatched"' "$T/ev2.json")" -eq 2 ] || fail "second run did not append: $(grep -c . "$T/ev2.json") frames"
ok "--save-events appends across runs"

# file_blocked and pool_state carry memory_bytes, never a bare `memory` key
mkdir b
for i in 1 2; do echo 'test("t", function(t) end)' >b/$i.test.lua; done
run $L --mem 60M --save-events "$T/b.ev" b
expect_rc 0 "blocked run"
grep -q '"file_blocked"' <($DECODE "$T/b.ev") || fail "no file_blocked with a one-file pool"
python3 - "$T/b.ev" <<'PY' || fail "a bare \`memory\` key in the stream"
import sys
b = open(sys.argv[1], "rb").read()
assert b"memory_bytes" in b
assert b"\xa6memory" not in b   # msgpack fixstr "memory"
PY
ok "ResourceAmount is {memory_bytes, cpus}"
