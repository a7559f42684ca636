#!/usr/bin/env bash
# t_vm_fixture_bootdisks.sh — a fixture on a profile with boot-time disks
# (`root` and `disks`) on a real guest (--vmm qemu): the build writes to
# both (one write still in QEMU's overlay cache, one only in the guest's
# page cache) and snapshots; two tests restore it and both see the
# writes, the first one's later write is not seen by the second; a second
# run restores from the cache; the images never change (checksums); a
# damaged overlay section in the cache entry -> warning, rebuild, pass; a
# plain boot's write-back disk still refuses a snapshot, naming it; a lab
# fixture with a boot-time-disk member beside a plain one restores both.
# Exit 77 without qemu-system-x86_64 or the guest kit.
. "$(dirname "$0")/cli/lib.sh"
command -v qemu-system-x86_64 >/dev/null || { echo "skip: qemu-system-x86_64 not installed"; exit 77; }
command -v python3 >/dev/null || { echo "skip: no python3"; exit 77; }
kit=$ROOT/build/guest
[ -f "$kit/vmlinuz" ] && [ -f "$kit/agent-overlay.cpio.gz" ] || { echo "skip: no guest kit (make guest)"; exit 77; }

W=$T/w
mkdir -p "$W/tests/fixtures" "$W/img"
cat >"$W/provium.toml" <<TOML
[provium]
roots = ["tests"]
cache_dir = "$W/cache"

[profiles.disky]
kernel = "$kit/vmlinuz"
initrd = "$kit/initrd.cpio.gz"
agent_overlay_path = "$kit/agent-overlay.cpio.gz"
cmdline = "panic=-1 quiet"
root = "img/root.img"
disks = [{id = "data", image = "img/data.img"}]
TOML
python3 - "$W/img" <<'PY'
import sys
d = sys.argv[1]
for name, mark in (("root.img", b"ROOT-IMAGE"), ("data.img", b"DATA-IMAGE")):
    with open(f"{d}/{name}", "wb") as f:
        f.write(mark + bytes(4 * 1024 * 1024 - len(mark)))
PY
sums() { sha256sum "$W/img/root.img" "$W/img/data.img" | awk '{print $1}'; }
orig=$(sums)

cat >"$W/tests/fixtures/disky.fixture.lua" <<LUA
local vm = provium:vm("fx", "disky"):boot()
local data = vm:disk("data"):guest_device()
local function put(dev, page, text, flags)
	vm:run(("printf %s | dd of=%s bs=4096 seek=%d count=1 conv=sync %s 2>&1"):format(
		text, dev, page, flags)):assert_ok()
end
-- O_DIRECT without fsync: in QEMU's overlay, not yet flushed by QEMU
put(data, 1, "FIXTURE-DATA", "oflag=direct")
put("/dev/vda", 1, "FIXTURE-ROOT", "oflag=direct")
-- only in the guest's page cache (guest RAM)
put(data, 2, "GUEST-CACHED", "")
local f = io.open("$T/builds", "a"); f:write("b\n"); f:close()
return vm:snapshot()
LUA
cat >"$W/tests/lib.lua" <<'LUA'
local M = {}
function M.page(vm, dev, n, direct)
	return vm:run(("dd if=%s bs=4096 skip=%d count=1 %s 2>/dev/null"):format(
		dev, n, direct and "iflag=direct" or "")).stdout:sub(1, 12)
end
function M.fixture_state(t, vm)
	local data = vm:disk("data"):guest_device()
	t:assert_eq(vm:disk("root"):guest_device(), "/dev/vda")
	t:assert_eq(M.page(vm, data, 1, true), "FIXTURE-DATA")
	t:assert_eq(M.page(vm, "/dev/vda", 1, true), "FIXTURE-ROOT")
	t:assert_eq(M.page(vm, data, 2, false), "GUEST-CACHED")
	t:assert_eq(M.page(vm, data, 0, true):sub(1, 10), "DATA-IMAGE")
	t:assert_eq(M.page(vm, "/dev/vda", 0, true):sub(1, 10), "ROOT-IMAGE")
	return data
end
return M
LUA
cat >"$W/tests/a.test.lua" <<'LUA'
local lib = require("lib")
test("a restore sees the fixture's disk writes, and writes more", function(t)
	local vm = provium:vm_fixture("fixtures/disky")
	local data = lib.fixture_state(t, vm)
	vm:run("printf LATER-WRITE | dd of=" .. data .. " bs=4096 seek=3 count=1 conv=sync,fsync oflag=direct 2>&1"):assert_ok()
	vm:run("printf LATER-ROOT | dd of=/dev/vda bs=4096 seek=3 count=1 conv=sync,fsync oflag=direct 2>&1"):assert_ok()
	t:assert_eq(lib.page(vm, data, 3, true):sub(1, 11), "LATER-WRITE")
	local ok, e = pcall(function() vm:disk("data"):power_cut() end)
	t:assert(not ok, "power_cut of a restored (copy-on-write) disk was accepted")
	t:assert_contains(tostring(e), "copy-on-write")
	ok, e = pcall(function() vm:disk("data"):fault_inject("eio_read") end)
	t:assert(not ok, "faults on a restored (copy-on-write) disk were accepted")
	t:assert_contains(tostring(e), "copy-on-write")
end)
test("a second restore does not see the first one's writes", function(t)
	local vm = provium:vm_fixture("fixtures/disky")
	local data = lib.fixture_state(t, vm)
	t:assert_eq(lib.page(vm, data, 3, true), string.rep("\0", 12))
	t:assert_eq(lib.page(vm, "/dev/vda", 3, true), string.rep("\0", 12))
end)
test("a snapshot of a restored VM carries the disks again", function(t)
	local vm = provium:vm_fixture("fixtures/disky")
	local data = vm:disk("data"):guest_device()
	vm:run("printf SECOND-SNAP | dd of=" .. data .. " bs=4096 seek=4 count=1 conv=sync oflag=direct 2>&1"):assert_ok()
	local snap = vm:snapshot()
	local vm2 = provium:vm("again", "disky")
	vm2:restore(snap)
	lib.fixture_state(t, vm2)
	t:assert_eq(lib.page(vm2, vm2:disk("data"):guest_device(), 4, true):sub(1, 11), "SECOND-SNAP")
end)
LUA
cat >"$W/tests/b.test.lua" <<'LUA'
local lib = require("lib")
test("a later run restores from the cache", function(t)
	local vm = provium:vm_fixture("fixtures/disky")
	local data = lib.fixture_state(t, vm)
	t:assert_eq(lib.page(vm, data, 3, true), string.rep("\0", 12))
end)
LUA
cat >"$W/tests/plain.test.lua" <<'LUA'
test("a plain boot's write-back disk refuses a snapshot", function(t)
	local vm = provium:vm("p", "disky"):boot()
	local ok, e = pcall(function() return vm:snapshot() end)
	t:assert(not ok, "snapshot accepted")
	t:assert_contains(tostring(e), "boot-time disk `data` writes through to its image")
end)
LUA
cd "$W"

run "$P" --vmm qemu --no-preflight --save-events "$T/ev1" tests/a.test.lua
expect_rc 0 "first run (build + three restores)"
[ "$(wc -l <"$T/builds")" -eq 1 ] || fail "expected one build, got $(wc -l <"$T/builds")"
ok "a fixture with root + data disks builds once; restores see its writes, not each other's"
[ "$(sums)" = "$orig" ] || fail "an image changed in the first run"
ok "the images are unchanged after the build and the restores"

run "$P" --vmm qemu --no-preflight --save-events "$T/ev2" tests/b.test.lua
expect_rc 0 "second run"
[ "$(wc -l <"$T/builds")" -eq 1 ] || fail "the second run built again"
$DECODE "$T/ev2" | grep -q '"fixture_cache_hit"' || fail "no cache hit in the second run"
ok "a later run restores from the cache"
[ "$(sums)" = "$orig" ] || fail "an image changed in the second run"

# damage the captured overlay of disk `data` inside the cache entry
snap=$(ls "$W"/cache/*.snap | head -n 1)
python3 - "$snap" <<'PY' || fail "could not find the disk section in $snap"
import struct, sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
hl = struct.unpack(">I", b[12:16])[0]
off = 16 + hl + 4
while b[off:off + 4] == b"SECT":
    nl = struct.unpack(">H", b[off + 4:off + 6])[0]
    name = bytes(b[off + 6:off + 6 + nl]).decode()
    zl = struct.unpack(">Q", b[off + 14 + nl:off + 22 + nl])[0]
    data = off + 22 + nl
    if name == "disk:data":
        mid = data + zl // 2
        b[mid:mid + 8] = bytes(x ^ 0xFF for x in b[mid:mid + 8])
        open(p, "wb").write(b)
        sys.exit(0)
    off = data + zl
sys.exit(1)
PY
run "$P" --vmm qemu --no-preflight --save-events "$T/ev3" tests/b.test.lua
expect_rc 0 "run with a damaged overlay"
expect_in "$err" 'warning: fixture `fixtures/disky`' "the warning names the fixture"
expect_in "$err" 'corrupt section `disk:data`' "the warning names the damaged overlay"
[ "$(wc -l <"$T/builds")" -eq 2 ] || fail "a damaged overlay was not rebuilt"
ok "a damaged overlay in the cache -> warning, rebuild, pass"
[ "$(sums)" = "$orig" ] || fail "an image changed in the rebuild"
ok "the images are unchanged after all runs"

run "$P" --vmm qemu --no-preflight tests/plain.test.lua
expect_rc 0 "plain boot's snapshot refusal"
ok "a plain boot's write-back disk refuses a snapshot"

# --- a lab fixture: a VM with boot-time disks beside one without ---
cat >"$W/tests/fixtures/disklab.fixture.lua" <<'LUA'
local d = provium:vm("d", "disky"):boot()
local plain = provium:vm("plain", "default"):boot()
d:run("printf LAB-DATA | dd of=" .. d:disk("data"):guest_device() ..
	" bs=4096 seek=5 count=1 conv=sync oflag=direct 2>&1"):assert_ok()
plain:write_file("/etc/lab", "plain member")
return provium:snapshot()
LUA
cat >"$W/tests/lab.test.lua" <<'LUA'
local lib = require("lib")
for i = 1, 2 do
	test("lab restore " .. i .. " sees its member's disk and the other member", function(t)
		local l = provium:lab_fixture("fixtures/disklab")
		local data = l.d:disk("data"):guest_device()
		t:assert_eq(lib.page(l.d, data, 5, true):sub(1, 8), "LAB-DATA")
		t:assert_eq(lib.page(l.d, data, 6, true), string.rep("\0", 12), "an earlier restore's write")
		t:assert_eq(l.plain:read_file("/etc/lab"), "plain member")
		l.d:run("printf LAB-LATER | dd of=" .. data .. " bs=4096 seek=6 count=1 conv=sync oflag=direct 2>&1"):assert_ok()
	end)
end
LUA
run "$P" --vmm qemu --no-preflight tests/lab.test.lua
expect_rc 0 "lab fixture with a boot-time-disk member"
expect_in "$out" "2 passed, 0 failed" "lab fixture with a boot-time-disk member"
[ "$(sums)" = "$orig" ] || fail "an image changed in the lab runs"
ok "a lab fixture carries its member's boot-time disks; restores are independent"

# --- a boot-opt disk image is not in the fixture's key: when its bytes
# change (same size), the cached overlay must not be served over them ---
python3 - "$W/img/extra.img" EXTRA-ONE <<'PY'
import sys
with open(sys.argv[1], "wb") as f:
    f.write(sys.argv[2].encode() + bytes(1024 * 1024 - len(sys.argv[2])))
PY
cat >"$W/tests/fixtures/optdisk.fixture.lua" <<LUA
local vm = provium:vm("o", "default", {disks = {{id = "extra", image = "$W/img/extra.img"}}}):boot()
vm:run("printf OPT-WRITE | dd of=" .. vm:disk("extra"):guest_device() ..
	" bs=4096 seek=1 count=1 conv=sync oflag=direct 2>&1"):assert_ok()
local f = io.open("$T/optbuilds", "a"); f:write("b\n"); f:close()
return vm:snapshot()
LUA
cat >"$W/tests/opt.test.lua" <<'LUA'
local lib = require("lib")
test("a boot-opt disk's image and the fixture's write", function(t)
	local vm = provium:vm_fixture("fixtures/optdisk")
	local dev = vm:disk("extra"):guest_device()
	t:assert_eq(lib.page(vm, dev, 0, true):sub(1, 9), os.getenv("WANT_MARK"))
	t:assert_eq(lib.page(vm, dev, 1, true):sub(1, 9), "OPT-WRITE")
end)
LUA
WANT_MARK=EXTRA-ONE run "$P" --vmm qemu --no-preflight tests/opt.test.lua
expect_rc 0 "boot-opt disk fixture, first run"
WANT_MARK=EXTRA-ONE run "$P" --vmm qemu --no-preflight tests/opt.test.lua
expect_rc 0 "boot-opt disk fixture, cached"
[ "$(wc -l <"$T/optbuilds")" -eq 1 ] || fail "the unchanged image was rebuilt"
python3 - "$W/img/extra.img" EXTRA-TWO <<'PY'
import sys
with open(sys.argv[1], "r+b") as f:
    f.write(sys.argv[2].encode())
PY
WANT_MARK=EXTRA-TWO run "$P" --vmm qemu --no-preflight tests/opt.test.lua
expect_rc 0 "boot-opt disk fixture after its image changed"
expect_in "$err" "changed since the snapshot" "the warning says the image changed"
[ "$(wc -l <"$T/optbuilds")" -eq 2 ] || fail "a changed image did not rebuild the fixture"
ok "a boot-opt disk image changed in place -> the cached entry is not served, rebuilt"
exit 0
