#!/usr/bin/env bash
# t_vm_hostile_frames.sh — one run (--vmm qemu) where a guest agent sends
# garbage and a fixture's cache entry is damaged (issue 10 item 3): the
# VM that sent the bad frame fails its op with an error naming the cause
# (the agent's `_fault_frame` test hook, docs/internals.md), its file's
# other VM and the other files keep working, the damaged entry is
# rejected with a warning naming the fixture and rebuilt, the summary
# counts are right, and no QEMU of the run is left behind.
# Exit 77 without qemu-system-x86_64 or the guest kit.
. "$(dirname "$0")/cli/lib.sh"
command -v qemu-system-x86_64 >/dev/null || { echo "skip: qemu-system-x86_64 not installed"; exit 77; }
[ -f "$ROOT/build/guest/vmlinuz" ] || { echo "skip: no guest kit (make guest)"; exit 77; }

W=$T/w
mkdir -p "$W/tests/fixtures" "$T/run"
cat >"$W/provium.toml" <<TOML
[provium]
roots = ["tests"]
cache_dir = "$W/cache"
TOML
cat >"$W/tests/fixtures/base.fixture.lua" <<'LUA'
local vm = provium:vm("base", "default"):boot()
vm:write_file("/etc/built", "yes")
return vm:snapshot()
LUA
cat >"$W/tests/fix.test.lua" <<'LUA'
test("uses the fixture", function(t)
	t:assert_eq(provium:vm_fixture("fixtures/base"):read_file("/etc/built"), "yes")
end)
LUA
cat >"$W/tests/hostile.test.lua" <<'LUA'
local healthy = provium:vm("healthy", "default"):boot()
test("guarded: an oversized frame is rejected", function(t)
	local bad = provium:vm("bad", "default"):boot()
	local err = tostring(t:assert_raises(function() bad:_fault_frame("oversized") end))
	t:assert_contains(err, "frame length exceeds the maximum")
	t:assert_eq(bad:state(), "dead")
end)
test("unguarded: a truncated frame fails the test", function(t)
	local bad = provium:vm("bad", "default"):boot()
	bad:_fault_frame("truncated")
end)
test("the file's other VM still answers", function(t)
	t:assert_eq(healthy:run("echo alive").stdout, "alive\n")
end)
LUA
cat >"$W/tests/other.test.lua" <<'LUA'
test("another file's VM", function(t)
	t:assert_eq(provium:vm("o", "default"):boot():run("echo other").stdout, "other\n")
end)
LUA
cd "$W"
qemus() { pgrep -f -- "[q]emu-system.*$T/run" | wc -l; }
trap 'for q in $(pgrep -f -- "[q]emu-system.*$T/run"); do kill -KILL "$q"; done; rm -rf "$T"' EXIT

# the fixture's entry, then damage it (and drop its expanded RAM files)
TMPDIR=$T/run run "$P" --vmm qemu --no-preflight tests/fix.test.lua
expect_rc 0 "building the fixture"
s=$(ls cache/*.snap | head -n 1)
[ -f "$s" ] || fail "no cache entry: $(ls cache)"
printf 'XXXXXXXXXXXXXXXX' | dd of="$s" bs=1 seek=$(($(stat -c %s "$s") / 2)) conv=notrunc status=none
rm -f cache/*.ram-*

TMPDIR=$T/run run "$P" --vmm qemu --no-preflight --save-events "$T/ev" tests
expect_rc 1 "the run with a hostile agent and a damaged entry"
expect_in "$out" "FAIL tests/hostile.test.lua (2 passed, 1 failed, 0 skipped)" "hostile file counts"
expect_in "$out" "vm \`bad\`: _fault_frame: agent: frame is not valid msgpack" "the cause is named"
expect_in "$out" "PASS tests/other.test.lua (1 passed, 0 failed, 0 skipped)" "other file"
expect_in "$out" "PASS tests/fix.test.lua (1 passed, 0 failed, 0 skipped)" "fixture file"
expect_in "$out" "3 file(s); 4 passed, 1 failed, 0 skipped" "run summary"
expect_in "$err" 'warning: fixture `fixtures/base`' "the damaged entry is named"
$DECODE "$T/ev" | grep -q '"fixture_build_done"' || fail "the damaged entry was not rebuilt"
sleep 1
[ "$(qemus)" -eq 0 ] || fail "$(qemus) QEMU process(es) of the run left behind"
ok "hostile frames end only their VM; a damaged entry is rebuilt; counts right; no QEMU left"
