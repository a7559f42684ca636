#!/usr/bin/env bash
# `provium fixture build|rebuild` decide vm vs lab from what the chunk
# returns, not from its text: a lab fixture returning `cluster:snapshot()`
# (a sub-lab under another name), one returning provium:snapshot(), and a
# vm fixture that only mentions provium:snapshot( in a comment and a
# string each land under the right layout; lab_fixture then restores the
# lab with its VMs reachable by dot sugar, provium.vm_fixture works, and
# rebuild evicts both layouts of the key.
. "$(dirname "$0")/cli/lib.sh"
W=$T/w
mkdir -p "$W/tests/fixtures"
cat >"$W/provium.toml" <<TOML
[provium]
roots = ["tests"]
cache_dir = "$W/cache"

[profiles.default]
kernel = "$W/k"
cmdline = "console=ttyS0"
TOML
echo k >"$W/k"
cat >"$W/tests/fixtures/cl.fixture.lua" <<'LUA'
local cluster = provium:lab("cl")
local a = cluster:vm("a", "default"):boot()
local b = cluster:vm("b", "default"):boot()
return cluster:snapshot()
LUA
cat >"$W/tests/fixtures/v.fixture.lua" <<'LUA'
-- return provium:snapshot() in a comment must not matter
local s = "provium:snapshot("
local vm = provium:vm("v", "default"):boot()
return vm:snapshot()
LUA
cat >"$W/tests/fixtures/top.fixture.lua" <<'LUA'
local x = provium:vm("x", "default"):boot()
return provium:snapshot()
LUA
cat >"$W/tests/fixtures/bad.fixture.lua" <<'LUA'
return 42
LUA
cat >"$W/tests/use.test.lua" <<'LUA'
test("lab", function(t)
	local c = provium:lab_fixture("fixtures/cl")
	t:assert_eq(c.a:run("echo hi"):assert_ok().stdout, "hi\n")
	t:assert_eq(c.b:run("echo b"):assert_ok().stdout, "b\n")
	local c2 = provium:lab_fixture("fixtures/top")
	t:assert(c2.x ~= nil, "x reachable")
end)
test("vm", function(t)
	local v = provium.vm_fixture("fixtures/v")
	t:assert_eq(v:run("echo hi"):assert_ok().stdout, "hi\n")
end)
LUA
cd "$W" || exit 1
for f in cl top v; do
	run "$P" fixture build --vmm local "fixtures/$f"
	expect_rc 0 "fixture build fixtures/$f"
done
run "$P" fixture list --vmm local
expect_rc 0 "fixture list"
grep -E '^ +[0-9.]+MiB  lab  [0-9a-f]{64}  tests/fixtures/cl.fixture.lua(  \(built here\))?$' <<<"$out" >/dev/null ||
	fail "cl listed as a lab fixture: $out"
grep -E '^ +[0-9.]+MiB  lab  [0-9a-f]{64}  tests/fixtures/top.fixture.lua(  \(built here\))?$' <<<"$out" >/dev/null ||
	fail "top listed as a lab fixture: $out"
grep -E '^ +[0-9.]+MiB  vm   [0-9a-f]{64}  tests/fixtures/v.fixture.lua(  \(built here\))?$' <<<"$out" >/dev/null ||
	fail "v listed as a vm fixture: $out"
expect_in "$out" "3 entries," "counts line"
ok "kinds decided by the returned userdata"
run "$P" fixture build --vmm local fixtures/cl
expect_rc 0 "second build"; expect_in "$out" "already built: fixtures/cl" "already built"
run "$P" fixture build --vmm local fixtures/bad
expect_rc 1 "bad fixture"
expect_in "$err" "must return a Snapshot" "bad fixture message"
expect_in "$err" "got number" "bad fixture names what it got"
ok "non-snapshot return rejected"
run "$P" --vmm local --no-preflight tests/use.test.lua
expect_rc 0 "tests restoring the built fixtures"
ok "lab_fixture dot sugar and provium.vm_fixture"
# A stray .snap under the lab fixture's key: rebuild evicts both layouts.
key=$(ls cache | sed -n 's/\.lab$//p' | while read -r k; do
	[ -f "cache/$k.lab/lab.json" ] && grep -q '"a' "cache/$k.lab/lab.json" && echo "$k"; done | head -1)
[ -n "$key" ] || fail "no lab entry with VM a: $(ls cache)"
echo junk >"cache/$key.snap"
run "$P" fixture rebuild --vmm local fixtures/cl
expect_rc 0 "rebuild"; expect_in "$out" "rebuilt: fixtures/cl" "rebuilt"
[ ! -e "cache/$key.snap" ] || fail "rebuild left the other layout's entry"
[ -d "cache/$key.lab" ] || fail "rebuild did not install the lab layout"
ok "rebuild evicts both layouts"
