#!/usr/bin/env bash
# The remote fixture store on real guests (--vmm qemu): machine A builds
# a VM fixture and uploads it to a real nginx; machine B (its own
# cache_dir) restores it from the remote without building and the
# restored guest works (state written by the fixture, a command runs).
# A QEMU that reports another version (a wrapper on PROVIUM_QEMU that
# answers --version itself and runs the real one otherwise) gets a
# different key: no remote hit, a local build, and it works.
# Exit 77 without qemu-system-x86_64, the guest kit or nginx.
. "$(dirname "$0")/cli/lib.sh"
command -v qemu-system-x86_64 >/dev/null || { echo "skip: qemu-system-x86_64 not installed"; exit 77; }
[ -f "$ROOT/build/guest/vmlinuz" ] || { echo "skip: no guest kit (make guest)"; exit 77; }
command -v python3 >/dev/null || { echo "skip: no python3"; exit 77; }
. "$(dirname "$0")/cli/nginx.sh"
start_nginx

W=$T/w
mkdir -p "$W/tests/fixtures"
cat >"$W/tests/fixtures/base.fixture.lua" <<'LUA'
local vm = provium:vm("base", "default"):boot()
vm:write_file("/etc/built", "on-A")
return vm:snapshot()
LUA
cat >"$W/tests/use.test.lua" <<'LUA'
test("restored guest works", function(t)
	local vm = provium:vm_fixture("fixtures/base")
	t:assert_eq(vm:read_file("/etc/built"), "on-A")
	t:assert_eq(vm:run("echo alive"):assert_ok().stdout, "alive\n")
end)
LUA
machine() { # NAME: run use.test.lua with cache_dir $T/cache-NAME
	cat >"$W/provium.toml" <<TOML
[provium]
roots = ["tests"]
cache_dir = "$T/cache-$1"
cache_remote = "http://127.0.0.1:$PORT/fx"
TOML
	rm -f "$T/ev"
	(cd "$W" && "$P" --vmm qemu --no-preflight --save-events "$T/ev" tests/use.test.lua) >"$T/o" 2>&1 ||
		fail "machine $1: $(cat "$T/o")"
	ev=$($DECODE "$T/ev" | python3 -c '
import json, sys
for l in sys.stdin:
    f = json.loads(l)
    if f["kind"].startswith("fixture_"): print(f["kind"])')
}
machine A
grep -qx fixture_build_started <<<"$ev" || fail "A did not build: $ev"
grep -qx fixture_remote_put <<<"$ev" || fail "A did not upload: $ev"
ok "machine A built and uploaded a VM fixture"
machine B
! grep -qx fixture_build_started <<<"$ev" || fail "B built: $ev"
grep -qx fixture_remote_hit <<<"$ev" || fail "B: no remote hit: $ev"
ok "machine B restored the VM fixture from the remote and the guest works"

real=$(command -v qemu-system-x86_64)
cat >"$T/fakeqemu" <<SH
#!/bin/sh
[ "\$1" = --version ] && { echo "QEMU emulator version 99.9.9"; exit 0; }
exec "$real" "\$@"
SH
chmod +x "$T/fakeqemu"
PROVIUM_QEMU=$T/fakeqemu machine C
! grep -qx fixture_remote_hit <<<"$ev" || fail "C (other QEMU version): remote hit: $ev"
grep -qx fixture_remote_miss <<<"$ev" || fail "C: no remote miss: $ev"
grep -qx fixture_build_started <<<"$ev" || fail "C: not built: $ev"
ok "another QEMU version: different key, no remote hit, built locally"
