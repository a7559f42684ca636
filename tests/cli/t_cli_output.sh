#!/usr/bin/env bash
# Default, -v, -q and --json renderers; summary line; exit codes 0/1.
. "$(dirname "$0")/cli/lib.sh"
mk_project
cd "$T/p"

run "$P" --vmm local --no-preflight tests/smoke.test.lua
expect_rc 0 "passing file"
expect_in "$out" "PASS tests/smoke.test.lua (2 passed, 0 failed, 1 skipped)" "PASS line"
expect_in "$out" "1 file(s); 2 passed, 0 failed, 1 skipped; " "summary"
[ "$(tail -n 2 <<<"$out" | head -n 1)" = "" ] || fail "no blank line before the summary: $out"
expect_not_in "$out" "    PASS one" "default hides passing tests"
ok "default output, passing"

run "$P" --vmm local --no-preflight tests
expect_rc 1 "a failing file"
expect_in "$out" "FAIL tests/sub/bad.test.lua (1 passed, 1 failed, 0 skipped)" "FAIL line"
expect_in "$out" "    FAIL broken" "failing test line"
expect_in "$out" "        second line" "message lines indented 8"
expect_in "$out" "PASS tests/smoke.test.lua" "other file still runs"
expect_in "$out" "2 file(s); 3 passed, 1 failed, 1 skipped; " "summary"
ok "default output, failing"

run "$P" --vmm local --no-preflight tests -v
expect_in "$out" "    PASS one" "-v passing test"
expect_in "$out" "    SKIP later" "-v skipped test"
expect_in "$out" "not yet" "-v skip reason"
run "$P" --vmm local --no-preflight tests -q
expect_rc 1 "-q exit"
expect_not_in "$out" "smoke.test.lua" "-q hides passing files"
expect_in "$out" "FAIL tests/sub/bad.test.lua" "-q shows failing files"
expect_in "$out" "2 file(s);" "-q summary"
ok "-v and -q"

run "$P" --vmm local --no-preflight tests --filter smoke
expect_rc 0 "--filter"; expect_in "$out" "1 file(s);" "--filter selects one file"

run "$P" --vmm local --no-preflight tests --json
expect_rc 1 "--json exit"
expect_not_in "$out" "file(s);" "--json: no summary on stdout"
expect_in "$err" "2 file(s);" "--json: summary on stderr"
python3 - "$T/.out" <<'PY' || fail "--json objects: $out"
import json, sys
lines = [l for l in open(sys.argv[1]) if l.strip()]
assert len(lines) == 2, lines
objs = {o["path"]: o for o in map(json.loads, lines)}
for o in objs.values():
    assert list(o) == ["path", "timeout", "passed", "chunk_error", "tests", "duration_ns"], list(o)
    assert o["timeout"] == "in_time"
    for t in o["tests"]:
        assert list(t) == ["name", "status", "message", "log", "duration_ns"], list(t)
s = objs["tests/smoke.test.lua"]
assert s["passed"] is True and s["chunk_error"] is None
assert [t["status"] for t in s["tests"]] == ["passed", "passed", "skipped"]
b = objs["tests/sub/bad.test.lua"]
assert b["passed"] is False
br = [t for t in b["tests"] if t["name"] == "broken"][0]
assert br["status"] == "failed" and "expected failure" in br["message"]
assert br["log"] == ["a log line"] or any("a log line" in l for l in br["log"]), br["log"]
PY
ok "--json shape"
