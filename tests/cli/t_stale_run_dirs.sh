#!/usr/bin/env bash
# A SIGKILLed provium cannot remove its `provium-run-*` directory; the next
# run removes directories whose owner process is gone (rundir.c), keeps
# those of live runs, and never follows a symlink.
. "$(dirname "$0")/cli/lib.sh"
mkdir -p "$T/p/tests" "$T/run"
cd "$T/p"
cat >tests/slow.test.lua <<'LUA'
test("slow", function(t) os.execute("sleep 30") end)
LUA
cat >tests/quick.test.lua <<'LUA'
test("quick", function(t) end)
LUA

runs() { find "$T/run" -maxdepth 1 -name 'provium-run-*' | sort; }

# 1. a killed run leaves its directory (with an owner record) behind
TMPDIR=$T/run "$P" --vmm local --no-preflight tests/slow.test.lua >"$T/o1" 2>&1 &
pid=$!
for _ in $(seq 100); do [ -n "$(runs)" ] && break; sleep 0.1; done
dead=$(runs)
[ -n "$dead" ] || fail "no run directory appeared"
[ -f "$dead/owner" ] || fail "no owner record in $dead"
read -r opid _ <"$dead/owner"
[ "$opid" = "$pid" ] || fail "owner record names $opid, not provium ($pid)"
kill -KILL "$pid"; wait "$pid" 2>/dev/null
[ -d "$dead" ] || fail "the killed run's directory vanished by itself"
ok "a SIGKILLed run leaves $dead"

# 2. directories of a live owner, a fresh unowned one, an old unowned one,
#    a torn owner record, and a symlink to a directory outside
mkdir "$T/run/provium-run-live" "$T/run/provium-run-fresh" "$T/run/provium-run-old" \
	"$T/run/provium-run-torn" "$T/outside"
sleep 300 & live=$!
echo "$live $(cut -d' ' -f22 < /proc/$live/stat)" >"$T/run/provium-run-live/owner"
echo "garbage" >"$T/run/provium-run-torn/owner"
touch -d '2 hours ago' "$T/run/provium-run-old"
touch "$T/outside/keep"
ln -s "$T/outside" "$T/run/provium-run-link"
# a live pid whose start time does not match: the pid was reused
mkdir "$T/run/provium-run-reused"
echo "$live 1" >"$T/run/provium-run-reused/owner"

run env TMPDIR="$T/run" "$P" --vmm local --no-preflight tests/quick.test.lua
expect_rc 0 "the next run"
kill "$live" 2>/dev/null
[ ! -e "$dead" ] || fail "the dead run's directory was not removed"
[ ! -e "$T/run/provium-run-old" ] || fail "an unowned directory older than an hour was kept"
[ ! -e "$T/run/provium-run-reused" ] || fail "a directory of a reused pid was kept"
[ -d "$T/run/provium-run-live" ] || fail "a live run's directory was removed"
[ -d "$T/run/provium-run-fresh" ] || fail "a fresh unowned directory was removed"
[ -d "$T/run/provium-run-torn" ] || fail "a fresh directory with a torn owner record was removed"
[ -L "$T/run/provium-run-link" ] && [ -f "$T/outside/keep" ] || fail "the symlink was followed or removed"
left=$(runs | grep -v -e live -e fresh -e torn -e link)
[ -z "$left" ] || fail "the quick run left its own directory: $left"
ok "stale directories removed, live ones and symlinks kept"
