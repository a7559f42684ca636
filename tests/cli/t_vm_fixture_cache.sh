#!/usr/bin/env bash
# t_vm_fixture_cache.sh — the fixture cache on real guests (--vmm qemu),
# with a private cache_dir: four files on one cold fixture in parallel ->
# exactly one build, three waits then hits; a build SIGKILLed mid-way ->
# no partial entry, no stuck lock, the next run rebuilds; the expanded
# RAM file counted in `fixture list`; a truncated and
# a garbled entry -> warning naming the fixture, eviction, rebuild, pass.
# Exit 77 without qemu-system-x86_64 or the guest kit.
. "$(dirname "$0")/cli/lib.sh"
# the files must run concurrently: no PSI throttling (psi.h)
export PROVIUM_NO_PSI=1
command -v qemu-system-x86_64 >/dev/null || { echo "skip: qemu-system-x86_64 not installed"; exit 77; }
[ -f "$ROOT/build/guest/vmlinuz" ] || { echo "skip: no guest kit (make guest)"; exit 77; }
command -v python3 >/dev/null || { echo "skip: no python3"; exit 77; }
command -v flock >/dev/null && command -v setsid >/dev/null || { echo "skip: no flock/setsid"; exit 77; }

W=$T/w
mkdir -p "$W/tests/fixtures"
cat >"$W/provium.toml" <<TOML
[provium]
roots = ["tests"]
cache_dir = "$W/cache"
TOML
# The build waits for a go-file after booting, so peers really queue.
cat >"$W/tests/fixtures/slow.fixture.lua" <<LUA
local vm = provium:vm("slow", "default"):boot()
vm:write_file("/etc/built", "yes")
local f = io.open("$T/building", "w"); f:close()
for _ = 1, 1200 do
	local g = io.open("$T/go", "r")
	if g then g:close(); break end
	_provium_sleep(0.05)
end
return vm:snapshot()
LUA
for i in 1 2 3 4; do
	cat >"$W/tests/f$i.test.lua" <<'LUA'
test("uses slow", function(t)
	local vm = provium:vm_fixture("fixtures/slow")
	t:assert_eq(vm:read_file("/etc/built"), "yes")
end)
LUA
done
cd "$W"
kill_run() { # pgid
	kill -KILL -- -"$1" 2>/dev/null
	wait "$1" 2>/dev/null
}
trap 'rm -rf "$T"' EXIT

# --- four files, one cold fixture ---
( "$P" --vmm qemu --no-preflight --cpus 4 --save-events "$T/ev" tests >"$T/o" 2>&1; echo $? >"$T/rc" ) &
for _ in $(seq 1 1200); do [ -e "$T/building" ] && break; sleep 0.05; done
[ -e "$T/building" ] || fail "the fixture build never started: $(cat "$T/o")"
lock=$(ls "$W"/cache/*.snap.lock 2>/dev/null | head -n 1)
for _ in $(seq 1 400); do
	n=$(grep -c ":$(stat -c %i "$lock" 2>/dev/null || echo none) " /proc/locks 2>/dev/null)
	[ "${n:-0}" -ge 4 ] && break; sleep 0.05
done
touch "$T/go"
for _ in $(seq 1 2400); do [ -e "$T/rc" ] && break; sleep 0.05; done
[ "$(cat "$T/rc" 2>/dev/null)" = 0 ] || fail "parallel run failed: $(cat "$T/o")"
ev=$($DECODE "$T/ev")
expect_one_build "$ev" 3
ok "4 files on one cold fixture (qemu): 1 build, 3 waiting (holder named), 3 hits"

# --- the expanded RAM file is part of the entry ---
snap=$(ls "$W"/cache/*.snap | head -n 1)
ram=$(ls "$snap".ram-* 2>/dev/null | grep -v '\.tmp\.' | head -n 1)
[ -n "$ram" ] || fail "no expanded RAM file next to $snap: $(ls "$W/cache")"
ls "$W"/cache/*.tmp.* 2>/dev/null && fail "expansion temps left behind"
want=$(( $(stat -c %s "$snap") + $(stat -c %b "$ram") * 512 ))
run "$P" fixture list
expect_rc 0 "fixture list"
got=$(sed -n 's/^ *\([0-9.]*\)MiB  vm .*/\1/p' <<<"$out" | head -n 1)
python3 -c "import sys; sys.exit(0 if abs($got - $want / 2**20) < 0.02 else 1)" ||
	fail "fixture list says ${got}MiB, entry + RAM blocks are $want bytes"
ok "fixture list counts the expanded RAM file's blocks (${got}MiB)"

# --- SIGKILL during a build ---
"$P" fixture clean >/dev/null
rm -f "$T/building" "$T/go"
setsid "$P" --vmm qemu --no-preflight tests/f1.test.lua >"$T/o" 2>&1 &
pid=$!
for _ in $(seq 1 1200); do [ -e "$T/building" ] && break; sleep 0.05; done
[ -e "$T/building" ] || fail "kill test: build never started: $(cat "$T/o")"
kill_run "$pid"
lock=$(ls "$W"/cache/*.snap.lock | head -n 1)
for _ in $(seq 1 200); do flock -n "$lock" true && break; sleep 0.05; done
ls "$W"/cache/*.snap 2>/dev/null && fail "a partial entry was left behind"
flock -n "$lock" true || fail "lock still held after the kill"
touch "$T/go"
run "$P" --vmm qemu --no-preflight --save-events "$T/ev2" tests/f1.test.lua
expect_rc 0 "run after kill"
$DECODE "$T/ev2" | grep -q '"fixture_build_done"' || fail "no rebuild after the kill"
ok "SIGKILL mid-build (qemu): no partial entry, no stuck lock, next run rebuilds"

# --- truncated / garbled entries ---
for how in truncate garble; do
	for s in "$W"/cache/*.snap; do
		sz=$(stat -c %s "$s")
		if [ $how = truncate ]; then
			truncate -s $((sz / 2)) "$s"
		else
			printf 'XXXXXXXXXXXXXXXX' | dd of="$s" bs=1 seek=$((sz / 2)) conv=notrunc status=none
		fi
	done
	# expanded RAM files of the old entry would be reused: remove them, so
	# the garbling is seen wherever it landed
	rm -f "$W"/cache/*.ram-*
	run "$P" --vmm qemu --no-preflight --save-events "$T/ev3" tests/f1.test.lua
	expect_rc 0 "$how: run with a damaged entry"
	expect_in "$err" 'warning: fixture `fixtures/slow`' "$how: warning names the fixture"
	$DECODE "$T/ev3" | grep -q '"fixture_build_done"' || fail "$how: no rebuild"
	ok "$how entry (qemu) -> warning, rebuild, tests pass"
done

# --- a damaged expanded RAM file: one flipped byte ---
# The RAM file is checked against the digest recorded at expansion before
# a guest maps it: a flipped byte in a page the guest uses, or a byte
# written into one of its holes, makes the restore expand it again from
# the (checksummed) snapshot, with a warning; the entry is not evicted.
run "$P" --vmm qemu --no-preflight tests/f1.test.lua
expect_rc 0 "run that expands the RAM file"
for where in data hole; do
	ram=$(ls "$W"/cache/*.snap.ram-* | grep -v -e '\.tmp\.' -e '\.sum$' | head -n 1)
	[ -f "$ram.sum" ] || fail "no digest next to $ram"
	damage_ram "$ram" "$where" || fail "could not damage $ram"
	run "$P" --vmm qemu --no-preflight --save-events "$T/ev4" tests/f1.test.lua
	expect_rc 0 "$where: run with a damaged RAM file"
	expect_in "$err" "failed its integrity check" "$where: warning"
	expect_in "$err" "expanding it again" "$where: warning says what happens"
	$DECODE "$T/ev4" | grep -q '"fixture_build_done"' && fail "$where: the entry was rebuilt"
	run "$P" --vmm qemu --no-preflight tests/f1.test.lua
	expect_rc 0 "$where: the run after"
	expect_not_in "$err" "integrity" "$where: the re-expanded file is good"
	ok "a flipped byte in the RAM file ($where) -> warning, expanded again, no rebuild"
done
