#!/usr/bin/env bash
# --events-stdout framing and ordering, --save-events, human output moved to stderr,
# private frames never forwarded.
. "$(dirname "$0")/cli/lib.sh"
mk_project
cd "$T/p"

"$P" --vmm local --no-preflight tests --events-stdout >"$T/ev.bin" 2>"$T/ev.err"; rc=$?
[ $rc -eq 1 ] || fail "--events-stdout exit $rc (expected 1): $(cat "$T/ev.err")"
grep -q "FAIL tests/sub/bad.test.lua" "$T/ev.err" || fail "human output not on stderr: $(cat "$T/ev.err")"
$DECODE "$T/ev.bin" >"$T/ev.jsonl" || fail "stdout is not a clean frame stream"
python3 - "$T/ev.jsonl" <<'PY' || fail "event stream checks"
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
kinds = [e["kind"] for e in ev]
assert all(set(e) == {"ts", "kind", "payload"} for e in ev)
assert not any(k.startswith("_") for k in kinds), kinds
disc = [i for i, k in enumerate(kinds) if k == "file_discovered"]
first_dispatch = kinds.index("file_dispatched")
assert len(disc) == 2 and max(disc) < first_dispatch, kinds
for e in ev:
    if e["kind"] == "file_discovered":
        assert set(e["payload"]) == {"path", "fixture_refs", "declared_claim"}, e
comp = {e["payload"]["path"]: e["payload"] for e in ev if e["kind"] == "file_completed"}
assert comp["tests/smoke.test.lua"]["status"] == "passed", comp
assert comp["tests/sub/bad.test.lua"]["status"] == "failed", comp
assert all(c["duration_ns"] >= 0 for c in comp.values())
disp = [e["payload"] for e in ev if e["kind"] == "file_dispatched"]
assert all(set(d["reservation"]) == {"memory_bytes", "cpus"} for d in disp)
assert kinds.count("test_started") in (4, 5), kinds  # skipped tests: runner-dependent
assert kinds.count("test_failed") == 1 and kinds.count("test_passed") == 3, kinds
PY
ok "--events-stdout"

run "$P" --vmm local --no-preflight tests --save-events "$T/saved.bin"
expect_rc 1 "--save-events exit"
expect_in "$out" "FAIL tests/sub/bad.test.lua" "human output stays on stdout"
$DECODE "$T/saved.bin" >"$T/saved.jsonl" || fail "--save-events file framing"
grep -q '"kind": "file_completed"' "$T/saved.jsonl" || fail "no file_completed in saved events"
ok "--save-events"
