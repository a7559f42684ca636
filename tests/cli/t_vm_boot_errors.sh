#!/usr/bin/env bash
# t_vm_boot_errors.sh — boots that cannot work, through provium.toml
# profiles: a kernel that does not exist (clear message, no QEMU), and a
# profile without the injected agent (inject_agent = false; the kit's
# busybox init never answers Hello): the boot fails after the profile's
# agent_boot_timeout with the console tail in the error. Exit 77 without
# QEMU or the guest kit.
set -u
cd "$(dirname "$0")/../.."
bin=${PROVIUM_BIN:-build/provium}
command -v qemu-system-x86_64 >/dev/null || { echo "skip: qemu-system-x86_64 not installed"; exit 77; }
kit=$(cd build/guest 2>/dev/null && pwd) || { echo "skip: no guest kit (make guest)"; exit 77; }
[ -f "$kit/vmlinuz" ] || { echo "skip: no guest kit (make guest)"; exit 77; }

tmp=$(mktemp -d /tmp/t_vm_boot_errors.XXXXXX)
cleanup() {
	for q in $(pgrep -f -- "[q]emu-system.*$tmp"); do kill -KILL "$q" 2>/dev/null; done
	rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; [ -f "$tmp/out" ] && cat "$tmp/out"; exit 1; }

cat >"$tmp/provium.toml" <<TOML
[profiles.nokernel]
kernel = "$tmp/no-such-vmlinuz"
initrd = "$kit/initrd.cpio.gz"
cmdline = "quiet"

[profiles.noagent]
kernel = "$kit/vmlinuz"
initrd = "$kit/initrd.cpio.gz"
cmdline = "rdinit=/sbin/init panic=-1"
inject_agent = false
agent_boot_timeout = "5s"
TOML
cat >"$tmp/errors.test.lua" <<'LUA'
test("missing kernel", function(t)
	local err = t:assert_raises(function() provium:vm("a", "nokernel"):boot() end)
	t:assert_contains(err, "vm `a`: boot: kernel `")
	t:assert_contains(err, "no-such-vmlinuz` not found")
end)
test("no agent in the guest", function(t)
	local err = t:assert_raises(function() provium:vm("b", "noagent"):boot() end)
	t:assert_contains(err, "vm `b`: boot: the agent did not answer within 5.0 s")
	t:assert_contains(err, "--- console (last lines) ---")
end)
LUA
mkdir "$tmp/run"
TMPDIR=$tmp/run timeout 120 "$bin" --vmm qemu --no-preflight --config "$tmp/provium.toml" -v \
	"$tmp/errors.test.lua" >"$tmp/out" 2>&1
rc=$?
[ $rc -eq 0 ] || fail "provium exited $rc"
grep -q "2 passed, 0 failed" "$tmp/out" || fail "expected 2 passing tests"
pgrep -f -- "[q]emu-system.*$tmp" >/dev/null && fail "a QEMU of this run is still running"
echo "ok: missing kernel and agent-less guest fail with clear errors"
exit 0
