#!/usr/bin/env bash
# Test and file durations: -v shows them, --json carries duration_ns per
# test and per file, --durations N lists the N slowest tests (0 = all)
# after the summary.
. "$(dirname "$0")/cli/lib.sh"
mkdir -p "$T/p/tests"
cd "$T/p"
cat >tests/d.test.lua <<'LUA'
local function spin(s) local t0 = os.clock() while os.clock() - t0 < s do end end
test("fast", function(t) end)
test("slow", function(t) spin(0.3) end)
test("medium", function(t) spin(0.15) end)
test("failing slowly", function(t) spin(0.05); t:fail("nope") end)
test("skipped", {skip = "later"}, function(t) end)
LUA

run "$P" --vmm local --no-preflight tests -v
expect_rc 1 "-v run"
grep -qE '^    PASS slow \(([3-9][0-9]{2}|[0-9]{4,}) ms\)$' <<<"$out" || fail "-v: slow test duration: $out"
grep -qE '^    PASS fast \([0-9]+ ms\)$' <<<"$out" || fail "-v: fast test duration: $out"
grep -qxF '    FAIL failing slowly' <<<"$out" || fail "-v: FAIL line keeps its shape: $out"
grep -qE '^FAIL tests/d.test.lua \(3 passed, 1 failed, 1 skipped\) [0-9]+\.[0-9]{2}s$' <<<"$out" ||
	fail "-v: file duration: $out"
expect_not_in "$out" "slowest" "no --durations, no list"
run "$P" --vmm local --no-preflight tests
grep -qxF '    FAIL failing slowly' <<<"$out" || fail "default FAIL line changed: $out"
ok "-v durations"

run "$P" --vmm local --no-preflight tests --durations 2
expect_rc 1 "--durations 2"
python3 - "$T/.out" <<'PY' || fail "--durations 2: $out"
import re, sys
lines = open(sys.argv[1]).read().split("\n")
i = lines.index("slowest 2 tests:")
assert any(l.startswith("1 file(s);") for l in lines[:i]), "list comes after the summary"
assert lines[i - 1] == "", "blank line before the list"
rows = lines[i + 1:i + 3]
assert [re.fullmatch(r"  \d+\.\d\ds  (.*)", r).group(1) for r in rows] == \
    ["tests/d.test.lua::slow", "tests/d.test.lua::medium"], rows
assert float(rows[0].split()[0][:-1]) >= 0.29, rows
assert lines[i + 3:] == [""], lines[i + 3:]
PY
run "$P" --vmm local --no-preflight tests --durations=0
python3 - "$T/.out" <<'PY' || fail "--durations 0: $out"
import sys
lines = open(sys.argv[1]).read().split("\n")
i = lines.index("slowest 4 tests:")          # every test that ran; not the skipped one
names = [l.split("  ")[2] for l in lines[i + 1:i + 5]]
assert names[:3] == ["tests/d.test.lua::slow", "tests/d.test.lua::medium",
                     "tests/d.test.lua::failing slowly"], names
assert names[3] == "tests/d.test.lua::fast"
PY
run "$P" --vmm local --no-preflight tests --durations 3 --json
expect_in "$err" "slowest 3 tests:" "--json: the list goes with the summary (stderr)"
expect_not_in "$out" "slowest" "--json: stdout stays JSON"
ok "--durations"

python3 - "$T/.out" <<'PY' || fail "--json durations: $out"
import json, sys
(o,) = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
assert list(o)[-1] == "duration_ns" and isinstance(o["duration_ns"], int), o
t = {x["name"]: x for x in o["tests"]}
for x in t.values():
    assert list(x) == ["name", "status", "message", "log", "duration_ns"], list(x)
    assert isinstance(x["duration_ns"], int) and x["duration_ns"] >= 0
assert t["skipped"]["duration_ns"] == 0
assert t["slow"]["duration_ns"] >= 290_000_000, t["slow"]
assert t["slow"]["duration_ns"] > t["medium"]["duration_ns"] > t["fast"]["duration_ns"]
assert o["duration_ns"] >= t["slow"]["duration_ns"] + t["medium"]["duration_ns"]
PY
ok "--json duration_ns"

run "$P" --durations -1;  expect_rc 2 "--durations -1"
run "$P" --durations x;   expect_rc 2 "--durations x"
expect_in "$err" "--durations" "error names the flag"
run "$P" --help
expect_in "$out" "--durations N" "usage lists --durations"
ok "--durations usage errors"
