#!/usr/bin/env bash
# A per-test timeout says where the test was when its time ran out: the
# user file's line (the innermost frame from a *.test.lua or helper, not
# the embedded preludes) and, when a blocking VM op was cut short, the
# op's name. The old prefix `test timed out after <N>s` is kept.
. "$(dirname "$0")/cli/lib.sh"
W=$T/w
mkdir -p "$W/tests"
cat >"$W/tests/where.test.lua" <<'LUA'
local function spin()
	while true do end
end
test("busy", {timeout = 0.3}, function(t)
	spin()
end)
test("blocking run", {timeout = "1s"}, function(t)
	local vm = provium:vm("a", "default")
	vm:boot()
	vm:run("sleep 5")
end)
test("blocking wait", {timeout = "1s"}, function(t)
	local vm = provium:vm("b", "default")
	vm:boot()
	vm:run_async("sleep 5"):wait()
end)
LUA
cd "$W" || exit 1
run timeout 120 "$P" --vmm local --no-preflight -v tests/where.test.lua
expect_rc 1 "timeouts"
expect_in "$out" "FAIL tests/where.test.lua (0 passed, 3 failed, 0 skipped)" "counts"
expect_in "$out" "test timed out after 0.3s (at tests/where.test.lua:2)" \
	"busy loop: the line inside the user's helper, no op"
expect_in "$out" "test timed out after 1s (at tests/where.test.lua:10, in vm:run)" \
	"blocking vm:run: the caller's line and the op"
expect_in "$out" "test timed out after 1s (at tests/where.test.lua:15, in proc:wait)" \
	"blocking proc:wait: the caller's line and the op"
expect_not_in "$out" "[provium" "no embedded prelude position"
ok "timeout messages name the line and the op"
