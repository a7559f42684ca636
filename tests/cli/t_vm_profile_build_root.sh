#!/usr/bin/env bash
# t_vm_profile_build_root.sh — a profile with build + root + disks on a
# real guest (--vmm qemu): a trivial build command copies the default
# guest's kernel and initrd into {out}; the guest boots them with the
# root image as /dev/vda (root=/dev/vda on its cmdline, serial `root`),
# the root image unchanged by guest writes, the profile's disk visible,
# a boot opt disk with the same id replacing it; the second run does not
# build again. Exit 77 without qemu-system-x86_64 or the guest kit.
. "$(dirname "$0")/cli/lib.sh"
command -v qemu-system-x86_64 >/dev/null || { echo "skip: qemu-system-x86_64 not installed"; exit 77; }
kit=$ROOT/build/guest
[ -f "$kit/vmlinuz" ] && [ -f "$kit/agent-overlay.cpio.gz" ] || { echo "skip: no guest kit (make guest)"; exit 77; }

W=$T/w
mkdir -p "$W/tests" "$W/img"
export PROVIUM_BUILD_DIR=$T/builds
cat >"$W/provium.toml" <<TOML
[profiles.built]
build = "echo run >>'$T/count'; cp '$kit/vmlinuz' {out}/vmlinuz && cp '$kit/initrd.cpio.gz' {out}/initrd.cpio.gz"
build_inputs = ["$kit/vmlinuz", "$kit/initrd.cpio.gz"]
kernel = "{out}/vmlinuz"
initrd = "{out}/initrd.cpio.gz"
agent_overlay_path = "$kit/agent-overlay.cpio.gz"
cmdline = "panic=-1 quiet"
root = "img/root.img"
disks = [{id = "data", image = "img/data.img"}]
TOML
python3 - "$W/img" <<'PY'
import sys
d = sys.argv[1]
for name, mark in (("root.img", b"ROOT-IMAGE"), ("data.img", b"PROFILE-DATA"), ("other.img", b"OPT-DATA")):
    with open(f"{d}/{name}", "wb") as f:
        f.write(mark + bytes(1024 * 1024 - len(mark)))
PY
cp "$W/img/root.img" "$T/root.orig"
cat >"$W/tests/root.test.lua" <<LUA
local function first(vm, dev, n)
	return vm:run(("dd if=%s bs=512 count=1 iflag=direct 2>/dev/null"):format(dev)).stdout:sub(1, n)
end
test("the built kernel boots with the root image as /dev/vda", function(t)
	local vm = provium:vm("r", "built"):boot()
	t:assert_contains(vm:read_file("/proc/cmdline"), "root=/dev/vda")
	t:assert_eq(vm:disk("root"):guest_device(), "/dev/vda")
	t:assert_eq(vm:read_file("/sys/block/vda/serial"):gsub("%s+$", ""), "root")
	t:assert_eq(first(vm, "/dev/vda", 10), "ROOT-IMAGE")
	-- guest writes to root go to a throwaway layer
	vm:run("printf SCRIBBLE | dd of=/dev/vda bs=4096 count=1 conv=sync,fsync oflag=direct 2>&1"):assert_ok()
	t:assert_eq(first(vm, "/dev/vda", 8), "SCRIBBLE")
	local dev = vm:disk("data"):guest_device()
	t:assert_eq(first(vm, dev, 12), "PROFILE-DATA")
	vm:shutdown()
end)
test("a boot opt disk with the profile disk's id replaces it", function(t)
	local vm = provium:vm("o", "built"):boot({disks = {{id = "data", image = "$W/img/other.img"}}})
	t:assert_eq(first(vm, vm:disk("data"):guest_device(), 8), "OPT-DATA")
	vm:shutdown()
end)
LUA
cd "$W"
run "$P" --vmm qemu --no-preflight tests/root.test.lua
expect_rc 0 "profile build + root boot"
ok "a built profile boots with its root image and disks"
cmp -s "$W/img/root.img" "$T/root.orig" || fail "the root image was changed by the guest"
ok "the root image is unchanged"
[ "$(wc -l <"$T/count")" -eq 1 ] || fail "build ran $(wc -l <"$T/count") times in one run"
run "$P" --vmm qemu --no-preflight tests/root.test.lua
expect_rc 0 "second run"
[ "$(wc -l <"$T/count")" -eq 1 ] || fail "build ran again with unchanged inputs"
ok "the build did not run again"
exit 0
