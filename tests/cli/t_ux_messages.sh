#!/usr/bin/env bash
# New-user error messages: a typo in a profile name suggests the closest
# declared profile and lists the known ones; a missing kernel on a
# profile of the user's points at that profile's entry in provium.toml
# (not at `make guest`, which only builds the built-in `default` kit);
# running a directory with no tests says so and exits 5 (nothing ran).
. "$(dirname "$0")/cli/lib.sh"
W=$T/w
mkdir -p "$W/tests" "$W/empty"
cat >"$W/provium.toml" <<TOML
[provium]
roots = ["tests"]
cache_dir = "$W/cache"

[profiles.mine]
kernel = "$W/no-such-vmlinuz"
cmdline = "console=ttyS0"
TOML
cat >"$W/tests/typo.test.lua" <<'LUA'
test("typo", function(t) provium:vm("a", "mien"):boot() end)
LUA
cd "$W" || exit 1
run "$P" --vmm local --no-preflight tests/typo.test.lua
expect_rc 1 "typo run"
expect_in "$out" 'typo.test.lua:1: vm `a`: unknown profile `mien` (declare [profiles.mien] in provium.toml)' "names the profile at the user's line"
expect_in "$out" 'did you mean `mine`?' "suggests the closest profile"
expect_in "$out" 'Known profiles: default, mine' "lists the known profiles"
ok "profile typo"

run "$P" --vmm local --no-preflight empty
expect_rc 5 "empty dir"
expect_in "$err" "provium: nothing to run: exit 5" "says why it exits 5"
expect_in "$out" 'provium: no *.test.lua files found' "no-tests notice"
expect_not_in "$out" "0 file(s)" "no summary for an empty selection"
ok "no tests"

cat >"$W/tests/kern.test.lua" <<'LUA'
test("boot", function(t) provium:vm("a", "mine"):boot() end)
LUA
run timeout 120 "$P" --vmm qemu --no-preflight tests/kern.test.lua
expect_rc 1 "missing kernel"
expect_in "$out" "no-such-vmlinuz\` not found" "names the kernel path"
expect_in "$out" "[profiles.mine]" "points at the user's profile"
expect_not_in "$out" "make guest" "no kit hint for a user profile"
ok "missing kernel on a user profile"

mkdir -p "$W/tests/fixtures"
rm -f "$W/tests/typo.test.lua" "$W/tests/kern.test.lua"
cat >"$W/tests/fixtures/f.fixture.lua" <<'LUA'
local vm = provium:vm("f", "default"):boot()
error("setup broke")
return vm:snapshot()
LUA
cat >"$W/tests/u.test.lua" <<'LUA'
test("uses", function(t) provium:vm_fixture("fixtures/f") end)
LUA
run "$P" --vmm local --no-preflight tests/u.test.lua
expect_rc 1 "failing fixture"
expect_in "$out" 'u.test.lua:1: building fixture `fixtures/f` (tests/fixtures/f.fixture.lua) failed: fixtures/f.fixture.lua:2: setup broke' "names the fixture file as the user sees it, and the line"
run "$P" fixture build --vmm local fixtures/f
expect_rc 1 "fixture build of a failing fixture"
expect_in "$err" '(tests/fixtures/f.fixture.lua) failed:' "fixture build names the file"
ok "failing fixture"
