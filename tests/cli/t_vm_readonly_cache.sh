#!/usr/bin/env bash
# A read-only cache_dir on real QEMU: a VM entry is served as a hit in
# place; its RAM file, which cannot be expanded next to the entry, is
# expanded into the VM's run directory instead (qemu_snapshot.c). Needs
# root (mount); skipped otherwise.
. "$(dirname "$0")/cli/lib.sh"
command -v qemu-system-x86_64 >/dev/null || { echo "skip: qemu-system-x86_64 not installed"; exit 77; }
[ -f "$ROOT/build/guest/vmlinuz" ] || { echo "skip: no guest kit (make guest)"; exit 77; }
[ "$(id -u)" = 0 ] || { echo "skip: needs root to mount a tmpfs"; exit 77; }
W=$T/w
mkdir -p "$W/tests/fixtures" "$W/cache"
mount -t tmpfs -o size=400m provium-rovm "$W/cache" 2>/dev/null ||
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
rm -f cache/*.snap.ram-*
mount -o remount,ro "$W/cache" || fail "cannot remount read-only"
for i in 1 2; do
	run "$P" --vmm qemu --no-preflight --save-events "$T/ev$i" tests
	expect_rc 0 "hit $i on a read-only cache"
	$DECODE "$T/ev$i" | grep -q '"fixture_build_started"' && fail "run $i built instead of a hit"
	$DECODE "$T/ev$i" | grep -q '"fixture_cache_hit"' || fail "run $i: no cache hit"
done
ls cache | grep -q '\.ram-' && fail "a RAM file appeared in the read-only cache"
ok "read-only cache on qemu: hits served in place, RAM expanded in the run dir"
