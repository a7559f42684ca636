#!/usr/bin/env bash
# A read-only cache_dir (a shared NFS export / CI cache volume, here a
# tmpfs remounted read-only) serves its entries as hits; a fixture it
# lacks fails with a clear message naming cache_overflow_dir, and with
# cache_overflow_dir set is built there (and hit there next time).
# Needs root (mount); skipped otherwise.
. "$(dirname "$0")/cli/lib.sh"
command -v python3 >/dev/null || { echo "skip: no python3"; exit 77; }
[ "$(id -u)" = 0 ] || { echo "skip: needs root to mount a tmpfs"; exit 77; }
W=$T/w
mkdir -p "$W/tests/fixtures" "$W/ro"
mount -t tmpfs -o size=64m provium-rocache "$W/ro" 2>/dev/null ||
	{ echo "skip: cannot mount a tmpfs here"; exit 77; }
trap 'umount -l "$W/ro" 2>/dev/null; rm -rf "$T"' EXIT
echo k >"$W/k"
conf() {
	cat >"$W/provium.toml" <<TOML
[provium]
roots = ["tests"]
cache_dir = "$W/ro"
${1:-}

[profiles.default]
kernel = "$W/k"
cmdline = "console=ttyS0"
TOML
}
for f in a b; do
	cat >"$W/tests/fixtures/$f.fixture.lua" <<LUA
local vm = provium:vm("$f", "default"):boot()
vm:write_file("/f", "$f")
return vm:snapshot()
LUA
	cat >"$W/tests/$f.test.lua" <<LUA
test("$f", function(t) t:assert_eq(provium:vm_fixture("fixtures/$f"):read_file("/f"), "$f") end)
LUA
done
cd "$W"
conf
run "$P" --vmm local --no-preflight tests/a.test.lua
expect_rc 0 "populate the cache"
mount -o remount,ro "$W/ro" || { echo "skip: cannot remount read-only"; exit 77; }
kinds() { $DECODE "$T/ev" | python3 -c '
import json, sys
for l in sys.stdin:
    f = json.loads(l)
    if f["kind"].startswith("fixture_"): print(f["kind"])'; }
rm -f "$T/ev"
run "$P" --vmm local --no-preflight --save-events "$T/ev" tests/a.test.lua
expect_rc 0 "hit from the read-only cache"
kinds | grep -qx fixture_cache_hit || fail "no hit: $(kinds)"
kinds | grep -qx fixture_build_started && fail "built: $(kinds)"
expect_not_in "$err" "Read-only file system" "no lock error"
ok "read-only cache dir serves hits"
run "$P" --vmm local --no-preflight tests/b.test.lua
expect_rc 1 "missing fixture, no overflow"
expect_in "$out$err" "is read-only (Read-only file system) and has no entry for it; set [provium] cache_overflow_dir" "clear message"
ok "a fixture the read-only cache lacks fails with a clear message"
conf "cache_overflow_dir = \"$W/over\""
rm -f "$T/ev"
run "$P" --vmm local --no-preflight --save-events "$T/ev" tests/a.test.lua tests/b.test.lua
expect_rc 0 "overflow build"
[ "$(kinds | grep -cx fixture_build_started)" -eq 1 ] || fail "expected one build (b): $(kinds)"
ls "$W/over/"*.snap >/dev/null 2>&1 || fail "nothing built into the overflow dir"
rm -f "$T/ev"
run "$P" --vmm local --no-preflight --save-events "$T/ev" tests/b.test.lua
expect_rc 0 "overflow hit"
kinds | grep -qx fixture_cache_hit || fail "no hit in overflow: $(kinds)"
ok "cache_overflow_dir takes the builds a read-only cache cannot"
