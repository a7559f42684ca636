#!/usr/bin/env bash
# Conformance of fixtures with the reference's fixture tests, on --vmm
# local: vm_fixture builds on the first run and hits the cache on the
# second (one .snap entry), a missing fixture and a fixture returning a
# non-snapshot fail the test with a message naming the cause,
# `fixture build` of a cached fixture says `already built`, of an unknown
# one exits 2, and `fixture stale` lists what has no entry.
. "$(dirname "$0")/cli/lib.sh"
W=$T/w
mkdir -p "$W/tests"
cd "$W"
cat >provium.toml <<TOML
[provium]
roots = ["tests"]
cache_dir = "$W/cache"
TOML
cat >tests/warm.fixture.lua <<'LUA'
local vm = provium:vm("warm", "default"):boot()
vm:write_file("/tmp/marker", "warm-state")
return vm:snapshot()
LUA
echo 'return 42 -- not a Snapshot' >tests/bad.fixture.lua
cat >tests/uses.test.lua <<'LUA'
test("warm", function(t)
	local vm = provium:vm_fixture("warm")
	t:assert_eq(vm:state(), "booted")
	t:assert_eq(vm:read_file("/tmp/marker"), "warm-state")
end)
LUA
cat >tests/errors.test.lua <<'LUA'
test("missing", function(t) provium:vm_fixture("does-not-exist") end)
test("bad", function(t) provium:vm_fixture("bad") end)
LUA
L="$P --vmm local --no-preflight --config $W/provium.toml"

rm -f "$T/ev"
run $L --save-events "$T/ev" tests/uses.test.lua
expect_rc 0 "cold run"
[ "$(ls cache | grep -c '\.snap$')" -eq 1 ] || fail "expected one cached snapshot: $(ls cache)"
grep -q '"fixture_build_done"' <($DECODE "$T/ev") || fail "cold run did not build"
rm -f "$T/ev"
run $L --save-events "$T/ev" tests/uses.test.lua
expect_rc 0 "warm run"
ev=$($DECODE "$T/ev")
grep -q '"fixture_cache_hit"' <<<"$ev" || fail "warm run did not hit"
! grep -q '"fixture_build_started"' <<<"$ev" || fail "warm run rebuilt"
ok "build on the first run, cache hit on the second"

run $L tests/errors.test.lua
expect_rc 1 "fixture errors"
expect_in "$out" "does-not-exist" "missing fixture named"
expect_in "$out" "not found" "missing fixture says not found"
grep -A1 "FAIL bad" <<<"$out" | grep -q "Snapshot" || fail "non-snapshot return not explained: $out"
expect_in "$out" "got number" "non-snapshot return names the type"
ok "fixture errors fail the test with the cause"

run $L fixture build warm
expect_rc 0 "build cached"
expect_in "$out" "already built" "already built"
run $L fixture build does-not-exist
expect_rc 2 "unknown fixture"
expect_in "$err" "fixture \`does-not-exist\` not found in any test root" "unknown fixture message"
run $L fixture stale
expect_rc 0 "stale"
expect_in "$out" "bad.fixture.lua" "the never-built fixture is stale"
expect_not_in "$out" "warm.fixture.lua" "the cached one is not"
expect_in "$out" "1 stale fixture(s)" "count"
ok "fixture subcommands"
