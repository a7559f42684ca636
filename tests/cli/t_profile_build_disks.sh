#!/usr/bin/env bash
# Profile keys build / build_inputs / root / disks and [profiles] from_dir
# on --vmm local: the build runs once per build key (its command and its
# declared inputs' content) and not again while nothing changed; a failing
# build fails the VM with its exit status and log; the fixture cache key
# follows the build inputs, the root image, the disk images and disk ids
# (never a stale snapshot); from_dir profiles load, and an error inside one
# names that file and line:col (exit 2).
. "$(dirname "$0")/cli/lib.sh"
command -v python3 >/dev/null || { echo "skip: no python3"; exit 77; }

W=$T/w
mkdir -p "$W/tests/fixtures" "$W/src" "$W/img"
export PROVIUM_BUILD_DIR=$T/builds W_SRC=$W/src
cat >"$W/provium.toml" <<TOML
[provium]
roots = ["tests"]
cache_dir = "$W/cache"

[profiles.built]
build = "echo run >>'$T/count'; cp src/kernel.txt {out}/vmlinuz; cp src/initrd.txt {out}/initrd"
build_inputs = ["src/kernel.txt", "src/initrd.txt"]
kernel = "{out}/vmlinuz"
initrd = "{out}/initrd"
cmdline = "console=ttyS0"
root = "img/root.img"
disks = [{id = "data", image = "img/data.img"}]
TOML
echo k1 >"$W/src/kernel.txt"; echo i1 >"$W/src/initrd.txt"
echo r1 >"$W/img/root.img"; echo d1 >"$W/img/data.img"
cat >"$W/tests/fixtures/base.fixture.lua" <<'LUA'
local vm = provium:vm("base", "built"):boot()
return vm:snapshot()
LUA
cat >"$W/tests/use.test.lua" <<'LUA'
test("uses the fixture", function(t)
	local vm = provium:vm_fixture("fixtures/base")
	t:assert(vm ~= nil)
end)
test("the build's outputs feed the profile", function(t)
	local vm = provium:vm("v", "built")
	local p = _provium_profiles.built
	local f = assert(io.open(p.kernel)); local k = f:read("a"); f:close()
	t:assert_eq(k, (assert(io.open(os.getenv("W_SRC") .. "/kernel.txt")):read("a")))
	t:assert(p.kernel:find(os.getenv("PROVIUM_BUILD_DIR") .. "/built-", 1, true) == 1, p.kernel)
end)
LUA

# go WHAT: run the suite; $ev = "kind path" fixture lines.
go() {
	rm -f "$T/ev"
	(cd "$W" && run "$P" --vmm local --no-preflight --save-events "$T/ev" tests/use.test.lua
	 printf '%s' "$rc" >"$T/rc"; printf '%s' "$out" >"$T/o"; printf '%s' "$err" >"$T/e")
	rc=$(cat "$T/rc"); out=$(cat "$T/o"); err=$(cat "$T/e")
	expect_rc 0 "suite run ($1)"
	ev=$($DECODE "$T/ev" | python3 -c '
import json, sys
for l in sys.stdin:
    f = json.loads(l)
    if f["kind"].startswith("fixture_"): print(f["kind"], f["payload"].get("path"))')
}
built() { grep -qx "fixture_build_done fixtures/base" <<<"$ev" || fail "$1: fixture not rebuilt: $ev"; ok "$1 -> rebuilt"; }
hit() { ! grep -qx "fixture_build_started fixtures/base" <<<"$ev" || fail "$1: fixture rebuilt: $ev"; ok "$1 -> cache hit"; }
builds() { [ "$(wc -l <"$T/count")" -eq "$1" ] || fail "$2: build ran $(wc -l <"$T/count") times, want $1"; ok "$2: $1 build run(s)"; }

go cold; built "cold cache"; builds 1 "cold"
go warm; hit "nothing changed"; builds 1 "nothing changed"
echo k2 >"$W/src/kernel.txt"
go input; built "a build input edited"; builds 2 "a build input edited"
go input-warm; hit "same inputs again"; builds 2 "same inputs again"
sed -i 's|cp src/kernel.txt|cp  src/kernel.txt|' "$W/provium.toml"
go command; built "the build command edited"; builds 3 "the build command edited"
echo r2 >"$W/img/root.img"
go root; built "root image content"; builds 3 "root image content"
echo d2 >"$W/img/data.img"
go disk; built "disk image content"; builds 3 "disk image content"
sed -i 's|id = "data"|id = "data2"|' "$W/provium.toml"
go disk-id; built "disk id"; builds 3 "disk id"
go settled; hit "settled"

# the same through `provium fixture stale`: a changed root image, disk
# image or build input makes the fixture stale; `fixture build` rebuilds it
stale_after() { # WHAT FILE NEWCONTENT
	cd "$W"
	run "$P" fixture stale --vmm local
	expect_in "$out" "0 stale fixture(s)" "$1: nothing stale before"
	echo "$3" >"$2"
	run "$P" fixture stale --vmm local
	expect_in "$out" "tests/fixtures/base.fixture.lua" "$1: fixture stale lists the fixture"
	run "$P" fixture build fixtures/base --vmm local
	expect_rc 0 "$1: fixture build"; expect_in "$out" "built: fixtures/base" "$1: rebuilt"
	ok "fixture stale: $1"
	cd - >/dev/null
}
stale_after "root image" "$W/img/root.img" r3
stale_after "disk image" "$W/img/data.img" d3
stale_after "build input" "$W/src/initrd.txt" i3

# a failed build fails the VM: its exit status and the end of its log
cat >"$W/tests/fail.test.lua" <<'LUA'
test("boots", function(t) provium:vm("x", "broken") end)
LUA
cat >>"$W/provium.toml" <<'TOML'

[profiles.broken]
build = "echo building-broken; exit 3"
cmdline = "console=ttyS0"
TOML
cd "$W"; run "$P" --vmm local --no-preflight tests/fail.test.lua
expect_rc 1 "failing build"
expect_in "$out$err" "profile \`broken\`: build command failed with exit status 3" "failing build message"
expect_in "$out$err" "building-broken" "failing build shows the log tail"
ok "a failing build fails the VM with its status and output"

# [profiles] from_dir
mkdir -p "$W/profs/alpha" "$W/profs/beta"
printf 'kernel = "vmlinuz"\ncmdline = "console=ttyS0"\n' >"$W/profs/alpha/profile.provium.toml"
printf 'cmdline = "b"\n' >"$W/profs/beta/profile.provium.toml"
cat >"$W/fd.toml" <<'TOML'
[profiles]
from_dir = "profs"
TOML
cat >"$W/tests/fd.test.lua" <<'LUA'
test("from_dir profiles", function(t)
	t:assert(_provium_profiles.alpha.kernel:match("/profs/alpha/vmlinuz$"))
	t:assert_eq(_provium_profiles.beta.cmdline, "b")
	provium:vm("a", "alpha")
end)
LUA
cd "$W"; run "$P" --vmm local --no-preflight --config fd.toml tests/fd.test.lua
expect_rc 0 "from_dir profiles load"
ok "from_dir profiles load"
printf 'cmdline = "b"\ncpus = "many"\n' >"$W/profs/beta/profile.provium.toml"
cd "$W"; run "$P" --vmm local --no-preflight --config fd.toml tests/fd.test.lua
expect_rc 2 "bad from_dir profile"
expect_in "$err" "parse \`$W/profs/beta/profile.provium.toml\`: 2:8 \`cpus\`" "error names the profile file and line:col"
ok "an error in a from_dir profile names its file and line:col"
exit 0
