#!/usr/bin/env bash
# A file that boots a VM without declaring memory or cpus is still charged
# for one (the original's conformance_boot_sizing): a pool smaller than that
# reservation refuses it with "exceeds pool total"; a pool that fits runs it.
. "$(dirname "$0")/cli/lib.sh"
mk_project
cd "$T/p"
L="$P --vmm local --no-preflight"

cat >"$T/p/undeclared.test.lua" <<'LUA'
test("boots with nothing declared", function(t)
	local vm = provium:vm("v", "default"):boot()
	t:assert(vm ~= nil)
end)
LUA
run $L undeclared.test.lua --mem 100M
expect_rc 1 "undeclared boot over a small pool"
expect_in "$out" "exceeds pool total" "pool message"
ok "undeclared boot is charged: refused by a pool smaller than one VM"

run $L undeclared.test.lua --mem 1G --cpus 1
expect_rc 0 "undeclared boot in a pool that fits"
expect_in "$out" "1 passed" "the test ran"
ok "undeclared boot fits a pool sized for it"
