#!/usr/bin/env bash
# The test_* event payloads the runner emits: exactly the documented
# fields, meta always a map, declarative skips without test_started,
# t:log lines reaching --json but never a sink as a private frame.
. "$(dirname "$0")/cli/lib.sh"
mkdir -p "$T/p"
cat >"$T/p/ev.test.lua" <<'LUA'
test("passes", {tags = {"a"}, spec = "S §1", n = 3, nested = {k = {1, 2}}}, function(t) t:log("a line") end)
test("fails", function(t) t:log(7); t:fail("nope") end)
test("inline skip", function(t) t:skip("not here") end)
test("meta skip", {skip = "later"}, function(t) end)
LUA
cd "$T/p"
"$P" --vmm local --no-preflight ev.test.lua --events-stdout >"$T/ev.bin" 2>"$T/ev.err"
$DECODE "$T/ev.bin" >"$T/ev.jsonl" || fail "event stream does not decode"
python3 - "$T/ev.jsonl" <<'PY' || fail "test event payloads: $(cat "$T/ev.jsonl")"
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
tev = [(e["kind"], e["payload"]) for e in ev if e["kind"].startswith("test_")]
assert not any(e["kind"].startswith("_") for e in ev)
fields = {
    "test_started": {"path", "name", "meta"},
    "test_passed": {"path", "name", "duration_ns", "meta"},
    "test_failed": {"path", "name", "duration_ns", "reason", "console_excerpt", "meta"},
    "test_skipped": {"path", "name", "reason", "meta"},
}
for k, p in tev:
    assert set(p) == fields[k], (k, sorted(p))
    assert isinstance(p["meta"], dict), (k, p["meta"])
    assert p["path"] == "ev.test.lua", p
seq = [(k, p["name"]) for k, p in tev]
assert seq == [("test_started", "passes"), ("test_passed", "passes"),
               ("test_started", "fails"), ("test_failed", "fails"),
               ("test_started", "inline skip"), ("test_skipped", "inline skip"),
               ("test_skipped", "meta skip")], seq
m = tev[0][1]["meta"]
assert m == {"tags": ["a"], "spec": "S §1", "n": 3, "nested": {"k": [1, 2]}}, m
assert tev[3][1]["reason"] == "ev.test.lua:2: nope", tev[3][1]  # t:fail: at its caller's line
assert tev[3][1]["console_excerpt"] == ""
assert tev[5][1]["reason"] == "not here"
assert tev[6][1]["reason"] == "skipped: later"
assert all(p["duration_ns"] >= 0 for k, p in tev if "duration_ns" in p)
PY
ok "test event payloads"

run "$P" --vmm local --no-preflight ev.test.lua --json
python3 - "$T/.out" <<'PY' || fail "--json log lines: $out"
import json, sys
o = json.loads(open(sys.argv[1]).read().strip().splitlines()[0])
logs = {t["name"]: t["log"] for t in o["tests"]}
assert logs["passes"] == ["a line"], logs
assert logs["fails"] == ["7"], logs
PY
ok "t:log reaches the file outcome"
