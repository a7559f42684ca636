#!/usr/bin/env bash
# A file that declares no claim is still charged the per-file overhead
# (on --vmm local: 50 MiB, the pools page): a pool smaller than that
# reservation refuses it with "exceeds pool total" (the original's
# conformance_boot_sizing wording); a pool that fits runs it. (Boots are
# not gated per VM: docs/decisions.md.)
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
run $L undeclared.test.lua --mem 40M
expect_rc 1 "undeclared boot over a small pool"
expect_in "$out" "exceeds pool total" "pool message"
ok "an undeclared file is charged the overhead: refused by a pool smaller than it"

run $L undeclared.test.lua --mem 1G --cpus 1
expect_rc 0 "undeclared boot in a pool that fits"
expect_in "$out" "1 passed" "the test ran"
ok "undeclared boot fits a pool sized for it"
