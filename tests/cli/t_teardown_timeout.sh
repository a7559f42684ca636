#!/usr/bin/env bash
# The per-test timeout (meta.timeout / provium.timeout) covers the test
# scope's teardown, not only the body (issue 11). On --vmm local: a body
# that returns at once leaving processes that ignore SIGTERM (proc:close
# waits up to 2 s each for them) overruns its 1 s deadline during
# teardown -> the test fails with "timed out after 1s during teardown (in
# proc:close)", every process is still killed, the next test runs. A
# teardown within its deadline passes.
. "$(dirname "$0")/cli/lib.sh"
W=$T/w
mkdir -p "$W"
cd "$W"
: >provium.toml
L="$P --vmm local --no-preflight --config $W/provium.toml"

cat >slow_teardown.test.lua <<LUA
test("leaves stubborn processes", {timeout = "1s"}, function(t)
	local vm = provium:vm("v", "default"):boot()
	for _ = 1, 4 do
		vm:run_async("trap '' TERM; echo \$\$ >>$T/pids; exec sleep 60")
	end
	-- every process has started (its pid is written) before the body ends
	wait_until(function()
		local f = io.open("$T/pids"); if not f then return false end
		local n = 0
		for _ in f:lines() do n = n + 1 end
		f:close()
		return n == 4
	end, {timeout = 0.9, interval = 0.02})
end)
test("the next test runs", function(t) t:assert_eq(1, 1) end)
LUA
cat >quick_teardown.test.lua <<'LUA'
provium.timeout = "5s"
test("a process that leaves on SIGTERM", function(t)
	provium:vm("v", "default"):boot():run_async("exec sleep 60")
end)
LUA

run $L --save-events "$T/ev" slow_teardown.test.lua
expect_rc 1 "a teardown over the deadline"
reason=$($DECODE "$T/ev" | python3 -c '
import json, sys
for l in sys.stdin:
    e = json.loads(l)
    if e["kind"] == "test_failed":
        print(e["payload"]["reason"])')
[ "$reason" = "test timed out after 1s during teardown (in proc:close)" ] ||
	fail "the failure reason is not the overrun: $reason
$out"
expect_in "$out" "FAIL slow_teardown.test.lua (1 passed, 1 failed, 0 skipped)" "counts"
[ "$(wc -l <"$T/pids")" -eq 4 ] || fail "expected 4 pids, got: $(cat "$T/pids")"
for pid in $(cat "$T/pids"); do
	kill -0 "$pid" 2>/dev/null && { kill -KILL "$pid"; fail "process $pid survived the cut teardown"; }
done
ok "a teardown overrunning meta.timeout fails the test, and frees everything"

run $L quick_teardown.test.lua
expect_rc 0 "a teardown within the deadline"
expect_in "$out" "1 passed, 0 failed" "quick teardown passes"
ok "a teardown within provium.timeout passes"
