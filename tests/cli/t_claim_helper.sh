#!/usr/bin/env bash
# A claim made through a helper (a local function of the file, or a module
# the file requires) meets the same pool-total check as a literal
# top-level provium:claim: too big fails with the dispatcher's message, one
# that fits runs. The dispatcher's static scan sees only the literal call;
# lab:claim checks the others at run time (docs/decisions.md).
. "$(dirname "$0")/cli/lib.sh"
W=$T/w
mkdir -p "$W/psi" "$W/t" "$W/t/lib"
cd "$W"
: >provium.toml
export PROVIUM_PSI_DIR=$W/psi
L="$P --vmm local --no-preflight --config $W/provium.toml --mem 1G"

cat >t/literal.test.lua <<'LUA'
provium:claim({memory = "4G"})
test("t", function(t) end)
LUA
cat >t/helper.test.lua <<'LUA'
local function want(mem) provium:claim({memory = mem}) end
want("4G")
test("t", function(t) end)
LUA
cat >t/lib/sizing.lua <<'LUA'
return {claim = function(mem, cpus) provium:claim({memory = mem, cpus = cpus}) end}
LUA
cat >t/module.test.lua <<'LUA'
require("lib.sizing").claim("4G")
test("t", function(t) end)
LUA
cat >t/in_test.test.lua <<'LUA'
local function want(mem) provium:claim({memory = mem}) end
test("claims too much", function(t) want("4G") end)
LUA
cat >t/fits.test.lua <<'LUA'
local function want(mem) provium:claim({memory = mem}) end
want("100M")
test("runs", function(t) t:assert_eq(1, 1) end)
LUA
cat >t/cpus.test.lua <<'LUA'
local function want(n) provium:claim({cpus = n}) end
want(100000)
test("t", function(t) end)
LUA

msg="file needs 4.05 GiB and 0 CPU(s), which exceeds pool total: the whole pool is 1.00 GiB"
run $L t/literal.test.lua
expect_rc 1 "literal claim"
expect_in "$out" "$msg" "literal claim message"
lit=$out

for f in helper module in_test; do
	run $L t/$f.test.lua
	expect_rc 1 "$f claim"
	expect_in "$out" "$msg" "$f claim: the literal claim's message"
	expect_in "$out" "lower its claim or raise --mem/--cpus" "$f claim: the advice"
done
expect_not_in "$out" "1 passed" "a too-big claim in a test body fails that test"

run $L t/cpus.test.lua
expect_rc 1 "cpus claim"
expect_in "$out" "and 100000 CPU(s), which exceeds pool total" "cpus claim message"

run $L t/fits.test.lua
expect_rc 0 "a helper claim that fits"
expect_in "$out" "1 passed, 0 failed" "fits: summary"
ok "helper-made claims are checked against the pool like literal ones"
