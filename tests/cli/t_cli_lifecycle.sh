#!/usr/bin/env bash
# Per-file timeout kills the runner group, a crashing runner, --fail-fast.
. "$(dirname "$0")/cli/lib.sh"
mkdir -p "$T/p/t"
cd "$T/p"
marker="provium-cli-sleep-$$-$RANDOM"
cat >t/hang.test.lua <<LUA
test("hangs", function(t) os.execute("sleep 60; : $marker") end)
LUA
# crash and ok claim a whole CPU each: under --cpus 1 they run in turn
# (human output is in completion order)
cat >t/crash.test.lua <<'LUA'
provium:claim({cpus = 1})
test("first", function(t) end)
test("exits", function(t) os.exit(3) end)
LUA
cat >t/ok.test.lua <<'LUA'
provium:claim({cpus = 1})
test("fine", function(t) end)
LUA

run "$P" --vmm local --no-preflight t/hang.test.lua t/ok.test.lua --timeout 1s
expect_rc 1 "timeout run"
expect_in "$out" "TIME t/hang.test.lua" "TIME line"
expect_in "$out" "PASS t/ok.test.lua" "other file unaffected"
for _ in $(seq 50); do pgrep -f "$marker" >/dev/null || break; sleep 0.1; done
pgrep -f "$marker" >/dev/null && fail "the runner's child survived the timeout kill"
ok "--timeout kills the group"

run "$P" --vmm local --no-preflight t/hang.test.lua --timeout 1s --json
python3 -c 'import json,sys; o=json.loads(sys.argv[1]); assert o["timeout"]=="timed_out" and o["passed"] is False' "$out" \
	|| fail "--json timed_out: $out"
ok "--json timeout field"

run "$P" --vmm local --no-preflight t/crash.test.lua t/ok.test.lua
expect_rc 1 "crash run"
expect_in "$out" "FAIL t/crash.test.lua" "crashed file fails"
expect_in "$out" "runner exited with status 3" "crash reason"
expect_in "$out" "PASS t/ok.test.lua" "other file unaffected"
ok "crashed runner"

run "$P" --vmm local --no-preflight --cpus 1 --fail-fast t/crash.test.lua t/ok.test.lua
expect_rc 1 "fail-fast"
expect_in "$out" "1 file(s);" "--fail-fast stops after the first failed file"
expect_not_in "$out" "t/ok.test.lua" "--fail-fast did not dispatch the next file"
ok "--fail-fast"
