#!/usr/bin/env bash
# A claim made inside a test body belongs to that test's scope: it emits
# claim_acquired, and claim_released when the scope closes (before the
# test's outcome), so the next test can claim again and the events pair.
. "$(dirname "$0")/cli/lib.sh"
mkdir -p "$T/p"
cat >"$T/p/c.test.lua" <<'LUA'
test("one", function(t) provium:claim({memory = "1M", cpus = 1}) end)
test("two", function(t) provium:claim({memory = "2M"}) end)
LUA
cd "$T/p"
"$P" --vmm local --no-preflight c.test.lua --events-stdout >"$T/ev.bin" 2>"$T/ev.err"
rc=$?
[ "$rc" -eq 0 ] || fail "exit $rc: $(cat "$T/ev.err")"
$DECODE "$T/ev.bin" >"$T/ev.jsonl" || fail "event stream does not decode"
python3 - "$T/ev.jsonl" <<'PY' || fail "test-scope claim events: $(cat "$T/ev.jsonl")"
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
seq = [(e["kind"], e["payload"].get("name") or e["payload"].get("amount", {}).get("memory_bytes"))
       for e in ev if e["kind"].startswith(("claim_", "test_"))]
assert seq == [("test_started", "one"), ("claim_acquired", 1 << 20), ("claim_released", 1 << 20),
               ("test_passed", "one"),
               ("test_started", "two"), ("claim_acquired", 2 << 20), ("claim_released", 2 << 20),
               ("test_passed", "two")], seq
for e in ev:
    if e["kind"].startswith("claim_"):
        assert e["payload"]["path"] == "c.test.lua", e
PY
ok "test-scope claims pair their events per test"
