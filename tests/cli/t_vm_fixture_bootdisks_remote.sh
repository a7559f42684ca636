#!/usr/bin/env bash
# t_vm_fixture_bootdisks_remote.sh — a fixture with boot-time disks
# through the remote fixture store (--vmm qemu, a real nginx): machine A
# (project at $T/a) builds it — the build writes to its root and data
# disks — and uploads the entry; machine B (the same project copied to
# $T/b, its own cache_dir; A's directory is then removed) gets a remote
# hit, and the restored guest sees the build's disk writes over B's own
# images (the overlays travel inside the entry; the images are opened
# from the restoring VM's profile, not A's paths).
# Exit 77 without qemu-system-x86_64, the guest kit, python3 or nginx.
. "$(dirname "$0")/cli/lib.sh"
command -v qemu-system-x86_64 >/dev/null || { echo "skip: qemu-system-x86_64 not installed"; exit 77; }
command -v python3 >/dev/null || { echo "skip: no python3"; exit 77; }
kit=$ROOT/build/guest
[ -f "$kit/vmlinuz" ] && [ -f "$kit/agent-overlay.cpio.gz" ] || { echo "skip: no guest kit (make guest)"; exit 77; }
. "$(dirname "$0")/cli/nginx.sh"
start_nginx

A=$T/a
mkdir -p "$A/tests/fixtures" "$A/img"
python3 - "$A/img" <<'PY'
import sys
d = sys.argv[1]
for name, mark in (("root.img", b"ROOT-IMAGE"), ("data.img", b"DATA-IMAGE")):
    with open(f"{d}/{name}", "wb") as f:
        f.write(mark + bytes(2 * 1024 * 1024 - len(mark)))
PY
cat >"$A/tests/fixtures/disky.fixture.lua" <<'LUA'
local vm = provium:vm("fx", "disky"):boot()
vm:run("printf BUILT-ON-A | dd of=" .. vm:disk("data"):guest_device() ..
	" bs=4096 seek=1 count=1 conv=sync oflag=direct 2>&1"):assert_ok()
vm:run("printf ROOT-ON-A | dd of=/dev/vda bs=4096 seek=1 count=1 conv=sync oflag=direct 2>&1"):assert_ok()
return vm:snapshot()
LUA
cat >"$A/tests/use.test.lua" <<'LUA'
local function page(vm, dev, n)
	return vm:run(("dd if=%s bs=4096 skip=%d count=1 iflag=direct 2>/dev/null"):format(dev, n)).stdout:sub(1, 10)
end
test("the restored disks hold the build's writes", function(t)
	local vm = provium:vm_fixture("fixtures/disky")
	local data = vm:disk("data"):guest_device()
	t:assert_eq(page(vm, data, 1), "BUILT-ON-A")
	t:assert_eq(page(vm, data, 0), "DATA-IMAGE")
	t:assert_eq(page(vm, "/dev/vda", 1):sub(1, 9), "ROOT-ON-A")
	t:assert_eq(page(vm, "/dev/vda", 0), "ROOT-IMAGE")
end)
LUA
machine() { # NAME DIR
	cat >"$2/provium.toml" <<TOML
[provium]
roots = ["tests"]
cache_dir = "$T/cache-$1"
cache_remote = "http://127.0.0.1:$PORT/fx"

[profiles.disky]
kernel = "$kit/vmlinuz"
initrd = "$kit/initrd.cpio.gz"
agent_overlay_path = "$kit/agent-overlay.cpio.gz"
cmdline = "panic=-1 quiet"
root = "img/root.img"
disks = [{id = "data", image = "img/data.img"}]
TOML
	rm -f "$T/ev"
	(cd "$2" && "$P" --vmm qemu --no-preflight --save-events "$T/ev" tests/use.test.lua) >"$T/o" 2>&1 ||
		fail "machine $1: $(cat "$T/o")"
	ev=$($DECODE "$T/ev" | python3 -c '
import json, sys
for l in sys.stdin:
    f = json.loads(l)
    if f["kind"].startswith("fixture_"): print(f["kind"])')
}
machine A "$A"
grep -qx fixture_build_started <<<"$ev" || fail "A did not build: $ev"
grep -qx fixture_remote_put <<<"$ev" || fail "A did not upload: $ev"
ok "machine A built a fixture with root and data disks and uploaded it"
cp -a "$A" "$T/b"
rm -rf "$A" "$T/cache-A"
machine B "$T/b"
! grep -qx fixture_build_started <<<"$ev" || fail "B built: $ev"
grep -qx fixture_remote_hit <<<"$ev" || fail "B: no remote hit: $ev"
ok "machine B restored it from the remote over its own images: the disk writes are there"
exit 0
