#!/usr/bin/env bash
# Repeated vm_fixture / lab_fixture calls in one file (--vmm local): the
# usual pattern calls provium:vm_fixture("fixtures/clean") at the top of
# every test and expects a fresh restore each time. A repeat call for the
# same fixture closes what the earlier call made and restores a fresh
# VM / sub-lab under the same name; a name held by anything that did not
# come from that fixture still raises DuplicateVmName / DuplicateLabName.
. "$(dirname "$0")/cli/lib.sh"

W=$T/w
mkdir -p "$W/tests/fixtures" "$W/kern"
echo k >"$W/kern/vmlinuz"
cat >"$W/provium.toml" <<TOML
[provium]
roots = ["tests"]
cache_dir = "$W/cache"

[profiles.default]
kernel = "$W/kern/vmlinuz"
cmdline = "console=ttyS0"
TOML
cat >"$W/tests/fixtures/clean.fixture.lua" <<'LUA'
local vm = provium:vm("clean", "default"):boot()
vm:write_file("/marker", "pristine")
return vm:snapshot()
LUA
cat >"$W/tests/fixtures/clash.fixture.lua" <<'LUA'
local vm = provium:vm("clean", "default"):boot()
return vm:snapshot()
LUA
cat >"$W/tests/fixtures/solo.fixture.lua" <<'LUA'
local vm = provium:vm("solo", "default"):boot()
return vm:snapshot()
LUA
cat >"$W/tests/fixtures/cluster.fixture.lua" <<'LUA'
local a = provium:vm("a", "default"):boot()
a:write_file("/marker", "pristine")
provium:bridge("lan"):attach({a})
return provium:snapshot()
LUA
cat >"$W/tests/repeat.test.lua" <<'LUA'
local solo = provium:vm("solo", "default")
local seen = {}
test("first call restores the fixture", function(t)
	local vm = provium:vm_fixture("fixtures/clean")
	t:assert_eq(vm:read_file("/marker"), "pristine")
	vm:write_file("/marker", "dirty")
	vm:write_file("/extra", "x")
	seen.vm = vm
end)
test("a second test's call sees fresh state", function(t)
	local vm = provium:vm_fixture("fixtures/clean")
	t:assert(not rawequal(vm, seen.vm), "a new VM")
	t:assert_eq(seen.vm:state(), "shutdown")
	t:assert_eq(vm:read_file("/marker"), "pristine")
	t:assert_eq(vm:exists("/extra"), false)
	t:assert(rawequal(provium:vm("clean"), vm), "the name now names the fresh VM")
	vm:write_file("/marker", "dirty again")
	local again = provium:vm_fixture("fixtures/clean")
	t:assert_eq(vm:state(), "shutdown")
	t:assert_eq(again:read_file("/marker"), "pristine")
	seen.vm = again
end)
test("a different fixture with the same VM name still clashes", function(t)
	local err = t:assert_raises(function() provium:vm_fixture("fixtures/clash") end)
	t:assert_contains(err, "DuplicateVmName")
	t:assert_eq(seen.vm:read_file("/marker"), "pristine")
	t:assert_eq(seen.vm:state(), "booted")
end)
test("a user VM holding the fixture's name clashes on every call", function(t)
	for _ = 1, 2 do
		local err = t:assert_raises(function() provium:vm_fixture("fixtures/solo") end)
		t:assert_contains(err, "DuplicateVmName")
	end
	t:assert(rawequal(provium:vm("solo"), solo))
	t:assert_eq(solo:state(), "created")
end)
test("lab_fixture: first call", function(t)
	local lab = provium:lab_fixture("fixtures/cluster")
	t:assert_eq(lab.a:read_file("/marker"), "pristine")
	lab.a:write_file("/marker", "dirty")
	seen.lab = lab
end)
test("lab_fixture: a repeat call restores a fresh sub-lab", function(t)
	local lab = provium:lab_fixture("fixtures/cluster")
	t:assert(not rawequal(lab, seen.lab), "a new sub-lab")
	t:assert_eq(seen.lab.a:state(), "shutdown")
	t:assert_eq(lab.a:read_file("/marker"), "pristine")
	t:assert_eq(lab.lan:members()[1], "a")
end)
LUA
cat >"$W/tests/labclash.test.lua" <<'LUA'
provium:lab("cluster")
test("a sub-lab not from the fixture clashes", function(t)
	local err = t:assert_raises(function() provium:lab_fixture("fixtures/cluster") end)
	t:assert_contains(err, "DuplicateLabName")
end)
LUA
cd "$W" || fail "cd"
run "$P" --vmm local --no-preflight tests
expect_rc 0 "repeat fixture calls"
expect_in "$out" "7 passed, 0 failed" "every test passes"
ok "repeat vm_fixture/lab_fixture calls restore fresh; foreign names still clash"
exit 0
