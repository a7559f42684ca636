#!/usr/bin/env bash
# Fixture cache under concurrency and failure, on --vmm local: four files
# on one cold fixture with --cpus 4 build it exactly once (the others wait,
# naming the holder, then hit); a build SIGKILLed mid-way leaves no entry
# and no stuck lock, and the next run rebuilds; startup LRU eviction
# removes the oldest-atime entries first and skips entries whose lock is
# held.
. "$(dirname "$0")/cli/lib.sh"
# the files must run concurrently: no PSI throttling (psi.h)
export PROVIUM_NO_PSI=1
command -v python3 >/dev/null || { echo "skip: no python3"; exit 77; }
command -v flock >/dev/null && command -v setsid >/dev/null || { echo "skip: no flock/setsid"; exit 77; }

W=$T/w
mkdir -p "$W/tests/fixtures"
cat >"$W/provium.toml" <<TOML
[provium]
roots = ["tests"]
cache_dir = "$W/cache"
cache_max_size = "5K"
TOML
# A fixture whose build waits for a go-file (so peers really queue).
cat >"$W/tests/fixtures/slow.fixture.lua" <<LUA
local vm = provium:vm("slow", "default"):boot()
local f = io.open("$T/building", "w"); f:close()
for _ = 1, 600 do
	local g = io.open("$T/go", "r")
	if g then g:close(); break end
	_provium_sleep(0.05)
end
return vm:snapshot()
LUA
for i in 1 2 3 4; do
	cat >"$W/tests/f$i.test.lua" <<'LUA'
test("uses slow", function(t) provium:vm_fixture("fixtures/slow") end)
LUA
done
cd "$W"

# --- four files, one cold fixture ---
( "$P" --vmm local --no-preflight --cpus 4 --save-events "$T/ev" tests >"$T/o" 2>&1; echo $? >"$T/rc" ) &
for _ in $(seq 1 200); do [ -e "$T/building" ] && break; sleep 0.05; done
[ -e "$T/building" ] || fail "the fixture build never started"
# Give the peers a chance to queue on the lock (bounded poll on the event file is
# not possible before the run ends, so wait for 3 blocked flock holders instead).
lock=$(ls "$W"/cache/*.snap.lock 2>/dev/null | head -n 1)
for _ in $(seq 1 200); do
	n=$(grep -c "$(stat -c %i "$lock" 2>/dev/null || echo none)" /proc/locks 2>/dev/null || echo 0)
	[ "$n" -ge 4 ] && break; sleep 0.05
done
touch "$T/go"
for _ in $(seq 1 600); do [ -e "$T/rc" ] && break; sleep 0.05; done
[ "$(cat "$T/rc" 2>/dev/null)" = 0 ] || fail "parallel run failed: $(cat "$T/o")"
ev=$($DECODE "$T/ev")
expect_one_build "$ev" 1
ok "4 files on one cold fixture: 1 build, $nw waiting (holder named), 3 hits"

# --- SIGKILL during a build ---
"$P" fixture clean >/dev/null
rm -f "$T/building" "$T/go"
setsid "$P" --vmm local --no-preflight tests/f1.test.lua >"$T/o" 2>&1 &
pid=$!
for _ in $(seq 1 200); do [ -e "$T/building" ] && break; sleep 0.05; done
[ -e "$T/building" ] || fail "kill test: build never started"
kill -KILL -- -"$pid"
wait "$pid" 2>/dev/null
for _ in $(seq 1 200); do
	kill -0 "$pid" 2>/dev/null || break; sleep 0.05
done
# The runner dies with its dispatcher (PDEATHSIG); wait until no lock is held.
for _ in $(seq 1 200); do flock -n "$(ls "$W"/cache/*.snap.lock | head -n 1)" true && break; sleep 0.05; done
ls "$W"/cache/*.snap 2>/dev/null && fail "a partial entry was left behind"
flock -n "$(ls "$W"/cache/*.snap.lock | head -n 1)" true || fail "lock still held after the kill"
touch "$T/go"
run "$P" --vmm local --no-preflight --save-events "$T/ev2" tests/f1.test.lua
expect_rc 0 "run after kill"
$DECODE "$T/ev2" | grep -q '"fixture_build_done"' || fail "no rebuild after the kill"
ok "SIGKILL mid-build: no partial entry, no stuck lock, next run rebuilds"

# --- LRU eviction by atime ---
"$P" fixture clean >/dev/null
for n in a b c d; do
	cat >"$W/tests/fixtures/$n.fixture.lua" <<LUA
local vm = provium:vm("$n", "default"):boot()
local t = {}
for i = 1, 1500 do t[i] = string.char(math.random(0, 255)) end
vm:write_file("/blob", table.concat(t))
return vm:snapshot()
LUA
	run "$P" fixture build "fixtures/$n" --vmm local
	expect_rc 0 "build $n"
done
# Order atimes: a oldest ... d newest. Find every entry first (reading a
# file may bump its atime under relatime), then set the atimes.
for n in a b c d; do
	f=$(grep -l "\"vm_name\":\"$n\"" "$W"/cache/*.snap)
	eval "snap_$n=\$f"
done
i=0
for n in a b c d; do
	eval "f=\$snap_$n"
	touch -a -d "@$(( 1000000000 + i * 1000 ))" "$f"; i=$((i + 1))
done
# Hold a's lock: eviction must skip it and take b (then c) instead.
flock "${snap_a}.lock" sleep 30 & holder=$!
for _ in $(seq 1 100); do flock -n "${snap_a}.lock" true || break; sleep 0.05; done
run "$P" --vmm local --no-preflight tests/f1.test.lua
kill "$holder" 2>/dev/null; wait "$holder" 2>/dev/null
[ -e "$snap_a" ] || fail "eviction removed an entry whose lock was held"
[ -e "$snap_b" ] && fail "oldest unlocked entry (b) was not evicted"
[ -e "$snap_c" ] && fail "entry c should have been evicted too"
[ -e "$snap_d" ] || fail "newest entry (d) was evicted"
ok "startup eviction: oldest atime first, locked entry skipped"
