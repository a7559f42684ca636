#!/usr/bin/env bash
# A full disk while a fixture hit expands its RAM file: the test fails with
# "No space left on device" and the path, no partial file is left, and the
# good cached entry is kept (not evicted, not rebuilt): once there is room
# again the next run restores it. The cache lives on a small tmpfs of its
# own, so this needs root (mount); skipped otherwise.
. "$(dirname "$0")/cli/lib.sh"
command -v qemu-system-x86_64 >/dev/null || { echo "skip: qemu-system-x86_64 not installed"; exit 77; }
[ -f "$ROOT/build/guest/vmlinuz" ] || { echo "skip: no guest kit (make guest)"; exit 77; }
[ "$(id -u)" = 0 ] || { echo "skip: needs root to mount a small tmpfs"; exit 77; }
W=$T/w
mkdir -p "$W/tests/fixtures" "$W/cache"
mount -t tmpfs -o size=400m provium-enospc "$W/cache" 2>/dev/null ||
	{ echo "skip: cannot mount a tmpfs here"; exit 77; }
trap 'umount -l "$W/cache" 2>/dev/null; rm -rf "$T"' EXIT
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
cat >"$W/tests/a.test.lua" <<'LUA'
test("uses base", function(t)
	t:assert_eq(provium:vm_fixture("fixtures/base"):read_file("/etc/built"), "yes")
end)
LUA
cd "$W"
run "$P" --vmm qemu --no-preflight tests
expect_rc 0 "cold build"
snap=$(ls cache/*.snap)
rm -f cache/*.snap.ram-*
avail=$(df --output=avail -B1 cache | tail -n 1)
fallocate -l $((avail - (8 << 20))) cache/filler || fail "cannot fill the tmpfs"

run "$P" --vmm qemu --no-preflight --save-events "$T/ev" tests
expect_rc 1 "a hit with no room for the RAM file"
expect_in "$out" "No space left on device" "the real errno"
expect_in "$out" ".snap.ram-" "the path"
expect_in "$out" "the cached entry is kept" "what happened to the entry"
expect_not_in "$out$err" "Invalid cross-device link" "no stale errno"
[ -f "$snap" ] || fail "the good entry was evicted"
ls cache/ | grep -q '\.tmp\.' && fail "a partial file was left: $(ls cache)"
$DECODE "$T/ev" | grep -q '"fixture_build_started"' && fail "the entry was rebuilt on a full disk"
ok "full disk during RAM expansion: ENOSPC with the path, entry kept, nothing partial"

rm -f cache/filler
run "$P" --vmm qemu --no-preflight --save-events "$T/ev2" tests
expect_rc 0 "with room again"
$DECODE "$T/ev2" | grep -q '"fixture_build_started"' && fail "rebuilt although the entry was good"
$DECODE "$T/ev2" | grep -q '"fixture_cache_hit"' || fail "no cache hit with room again"
ok "room again: the kept entry restores (a hit, no rebuild)"
