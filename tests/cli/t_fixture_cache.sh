#!/usr/bin/env bash
# The fixture cache end to end on --vmm local: every row of the seed's
# "what can invalidate the cache" table (rebuild vs hit, read from the
# decoded event stream), auto_dep=false, variable paths, depends_on_file,
# require inside a comment/string, one cold fixture shared by four
# parallel files (exactly one build), a SIGKILLed build, a corrupt entry,
# LRU eviction by atime, the `provium fixture` subcommands, and expanded
# RAM files as part of their entry (list size, orphans, eviction, clean).
. "$(dirname "$0")/cli/lib.sh"
command -v python3 >/dev/null || { echo "skip: no python3"; exit 77; }

W=$T/w
mkdir -p "$W/tests/fixtures" "$W/tests/helpers" "$W/host" "$W/kern"
cat >"$W/provium.toml" <<TOML
[provium]
roots = ["tests"]
cache_dir = "$W/cache"

[profiles.default]
kernel = "$W/kern/vmlinuz-a"
initrd = "$W/kern/initrd-a"
cmdline = "console=ttyS0"

[profiles.other]
kernel = "$W/kern/vmlinuz-b"
cmdline = "console=ttyS0"
TOML
echo k1 >"$W/kern/vmlinuz-a"; echo i1 >"$W/kern/initrd-a"; echo k2 >"$W/kern/vmlinuz-b"
echo bin1 >"$W/host/bin"; echo tpl1 >"$W/host/tpl"; echo corpus1 >"$W/host/corpus"; echo var1 >"$W/host/var"
echo 'return {value = "v1"}' >"$W/tests/helpers/h.lua"
echo 'return {v = "deep"}' >"$W/tests/helpers/deep.lua"
echo 'local d = require("helpers.deep"); return {value = "v1"}' >"$W/tests/helpers/h2.lua"
cat >"$W/tests/fixtures/base.fixture.lua" <<'LUA'
local h = require("helpers.h")
-- require("helpers.notfolded") in a comment must not fold
local s = "require('helpers.notfolded')"
local vm = provium:vm("base", "default"):boot()
vm:push_file("../../host/bin", "/bin.dat")
vm:push_file("../../host/corpus", "/corpus", {auto_dep = false})
local p = "../../host/var"
vm:push_file(p, "/var.dat")
provium:depends_on_file("../../host/tpl")
vm:write_file("/marker", h.value)
return vm:snapshot()
LUA
echo 'return {x = 1}' >"$W/tests/helpers/notfolded.lua"
cat >"$W/tests/fixtures/derived.fixture.lua" <<'LUA'
local vm = provium:vm_fixture("fixtures/base")
vm:write_file("/derived", "yes")
return vm:snapshot()
LUA
cat >"$W/tests/fixtures/other.fixture.lua" <<'LUA'
local h = require("helpers.h2")
local vm = provium:vm("other", "default"):boot()
return vm:snapshot()
LUA
cat >"$W/tests/use.test.lua" <<'LUA'
test("derived", function(t)
	local vm = provium:vm_fixture("fixtures/derived")
	t:assert_eq(vm:read_file("/derived"), "yes")
	t:assert_eq(vm:read_file("/marker"), "v1")
end)
test("other", function(t) provium:vm_fixture("fixtures/other") end)
LUA

# go: run the suite; sets $ev to "kind path" lines.
go() {
	rm -f "$T/ev" # --save-events appends
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
# built NAMES...: exactly these fixtures were built; every other one hit.
expect_built() {
	local what=$1; shift
	for f in base derived other; do
		if [[ " $* " == *" $f "* ]]; then
			grep -qx "fixture_build_done fixtures/$f" <<<"$ev" || fail "$what: fixtures/$f not rebuilt:
$ev"
		else
			! grep -qx "fixture_build_started fixtures/$f" <<<"$ev" || fail "$what: fixtures/$f rebuilt:
$ev"
		fi
	done
	ok "$what -> rebuilt: ${*:-none}"
}
touch_later() { # bump mtime deterministically (no sleeps)
	touch -d "@$(( $(date +%s) + ${2:-100} ))" "$1"
}

go cold; expect_built "cold cache" base derived other
go warm; expect_built "warm cache" 
grep -qx "fixture_cache_hit fixtures/derived" <<<"$ev" || fail "no cache hit event: $ev"

echo '-- edit' >>"$W/tests/fixtures/other.fixture.lua"
go edit-fixture; expect_built "edit other.fixture.lua" other
echo '-- edit' >>"$W/tests/fixtures/base.fixture.lua"
go edit-base; expect_built "edit a referenced fixture" base derived
echo '-- edit' >>"$W/tests/helpers/deep.lua"
go edit-helper; expect_built "edit a transitively required helper" other
echo '-- edit' >>"$W/tests/helpers/notfolded.lua"
go comment-require; expect_built "edit a helper only named in a comment/string"
echo k1b >"$W/kern/vmlinuz-a"
go kernel; expect_built "new kernel image" base derived other
echo k2b >"$W/kern/vmlinuz-b"
go other-kernel; expect_built "new kernel of an unused profile" base derived other
echo i1b >"$W/kern/initrd-a"
go initrd; expect_built "new initrd" base derived other
sed -i "s|initrd-a|initrd-c|" "$W/provium.toml"; cp "$W/kern/initrd-a" "$W/kern/initrd-c"
go initrd-path; expect_built "profile initrd path changed" base derived other
printf '\n[profiles.added]\nkernel = "%s/kern/vmlinuz-a"\ncmdline = "x"\n' "$W" >>"$W/provium.toml"
go add-profile; expect_built "a profile added" base derived other
echo bin2 >"$W/host/bin"; touch_later "$W/host/bin"
go push-file; expect_built "push_file source edited" base derived
echo tpl2 >"$W/host/tpl"; touch_later "$W/host/tpl" 200
go depends; expect_built "depends_on_file edited" base derived
echo corpus2 >"$W/host/corpus"; touch_later "$W/host/corpus" 300
go auto-dep; expect_built "auto_dep=false file edited"
echo var2 >"$W/host/var"; touch_later "$W/host/var" 400
go var-path; expect_built "variable push_file path edited"

# CLI: list / build / stale / rebuild / clean.
cd "$W"
run "$P" fixture build fixtures/base --vmm local
expect_rc 0 "fixture build (cached)"; expect_in "$out" "already built: fixtures/base" "already built"
# the docs' spellings: a path to the file (relative, absolute, suffix optional)
run "$P" fixture build tests/fixtures/base.fixture.lua --vmm local
expect_rc 0 "fixture build PATH"; expect_in "$out" "already built: fixtures/base" "path form"
run "$P" fixture build "$W/tests/fixtures/base.fixture.lua" --vmm local
expect_rc 0 "fixture build ABSPATH"; expect_in "$out" "already built: fixtures/base" "absolute path form"
run "$P" fixture build fixtures/base.fixture.lua --vmm local
expect_rc 0 "fixture build NAME.fixture.lua"; expect_in "$out" "already built: fixtures/base" "suffixed name"
run "$P" fixture build ./tests/fixtures/base --vmm local
expect_rc 0 "fixture build PATH-without-suffix"; expect_in "$out" "already built: fixtures/base" "path without suffix"
run "$P" fixture stale --vmm local
expect_rc 0 "stale"; expect_in "$out" "0 stale fixture(s)" "nothing stale"
echo '-- edit' >>"$W/tests/fixtures/other.fixture.lua"
run "$P" fixture stale --vmm local
expect_in "$out" "tests/fixtures/other.fixture.lua" "stale lists the edited fixture"
expect_in "$out" "1 stale fixture(s)" "stale count"
run "$P" fixture build fixtures/other --vmm local
expect_rc 0 "fixture build"; expect_in "$out" "built: fixtures/other" "built"
run "$P" fixture rebuild fixtures/other --vmm local
expect_rc 0 "fixture rebuild"; expect_in "$out" "rebuilt: fixtures/other" "rebuilt"
run "$P" fixture list
expect_rc 0 "fixture list"; expect_in "$out" "  vm   " "list kind column"
expect_in "$out" "other.fixture.lua" "list names the fixture an entry serves"
expect_in "$out" "entries, " "list total"
run "$P" fixture build fixtures/nope --vmm local
expect_rc 2 "build missing (a usage error, as in the reference)"; expect_in "$err" 'fixture `fixtures/nope` not found in any test root' "missing fixture"
run "$P" fixture frob
expect_rc 2 "bad subcommand"
run "$P" fixture clean
expect_rc 0 "clean"
[ -z "$(ls -A "$W/cache")" ] || fail "clean left files: $(ls "$W/cache")"
ok "fixture list/build/rebuild/stale/clean"

# Corrupt entry: truncate, then garble; warning naming the fixture, rebuild, pass.
go rebuild-after-clean
for how in truncate garble; do
	f=$(grep -l . "$W"/cache/*.snap | head -n 1)
	for s in "$W"/cache/*.snap; do
		if [ $how = truncate ]; then truncate -s 40 "$s"; else printf 'XXXXXXXX' | dd of="$s" bs=1 seek=30 conv=notrunc status=none; fi
	done
	go "$how"
	expect_in "$err" "warning: fixture \`fixtures/" "$how: warning names the fixture"
	grep -q "fixture_build_done" <<<"$ev" || fail "$how: no rebuild: $ev"
	ok "$how entry -> warning, rebuild, tests pass"
done

# Expanded RAM files ("<key>.snap.ram-<id>", which the qemu backend makes
# next to an entry; faked here) are part of their entry: `fixture list`
# counts their allocated blocks (not their sparse size), a corrupt entry
# is evicted with them, an orphan is removed at startup, clean takes all.
mib_total() { sed -n 's/.* entr[a-z]*, \([0-9.]*\)MiB$/\1/p' <<<"$1"; }
go ram-setup
# The entry of fixtures/other: restored by every run (fixtures/base is
# only built through fixtures/derived, never restored on a hit).
run "$P" fixture list; before=$(mib_total "$out")
key=$(awk '/other\.fixture\.lua/ {print $3}' <<<"$out")
s="$W/cache/$key.snap"
[ -n "$key" ] && [ -f "$s" ] || fail "no cache entry listed for fixtures/other: $out"
truncate -s 256M "$s.ram-feed"
dd if=/dev/urandom of="$s.ram-feed" bs=1M count=2 conv=notrunc status=none
run "$P" fixture list; after=$(mib_total "$out")
python3 -c "import sys; d = $after - $before; sys.exit(0 if 1.9 < d < 3 else 1)" ||
	fail "fixture list: total went $before -> $after MiB with a 2 MiB (256 MiB sparse) RAM file"
ok "fixture list counts a RAM file's blocks ($before -> $after MiB)"
orphan="$W/cache/$(printf 'f%.0s' $(seq 64)).snap.ram-0"
dtemp="$s.ram-feed.tmp.999999999"
truncate -s 1M "$orphan" "$dtemp"
go ram-orphan
[ -e "$orphan" ] && fail "an orphaned RAM file survived startup eviction"
[ -e "$dtemp" ] && fail "a dead expander's RAM temp survived startup eviction"
[ -e "$s.ram-feed" ] || fail "startup eviction removed a live entry's RAM file"
ok "startup eviction: orphaned RAM file and dead temp removed, the entry's kept"
truncate -s 40 "$s"
go ram-corrupt
expect_in "$err" "warning: fixture \`fixtures/" "corrupt entry with a RAM file: warning"
[ -e "$s.ram-feed" ] && fail "a corrupt entry was evicted without its RAM file"
ok "corrupt entry evicted together with its RAM file"
s=$(ls "$W"/cache/*.snap | head -n 1)
truncate -s 1M "$s.ram-feed"
run "$P" fixture clean
expect_rc 0 "clean with RAM files"
[ -z "$(ls -A "$W/cache")" ] || fail "clean left files: $(ls "$W/cache")"
ok "fixture clean removes RAM files"
