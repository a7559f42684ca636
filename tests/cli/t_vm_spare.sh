#!/usr/bin/env bash
# t_vm_spare.sh — warm spare QEMUs on real guests (qemu_spare.h): a
# fixture restored by three tests; from the second on the restore takes
# the spare, primed (PROVIUM_TRACE_RESTORE shows it: no stream loaded, no
# Hello waited for, no RAM check of its own) and the guest works; a RAM
# file damaged after a spare was primed is still caught; while a
# test runs, the run has three QEMUs (the VM + two spares); none survives the
# file, nor a SIGKILL of provium; the spare is launched only after the
# restored guest's first op on a busy host, beside the restore on an idle one (fake PSI
# dirs); PROVIUM_SPARE=0 and host memory pressure
# (a fake PSI dir) mean no spare, and the restores still work.
# The run's temp dir is private (TMPDIR), so its QEMUs are exactly the
# processes whose command line names it. Exit 77 without QEMU or the kit.
. "$(dirname "$0")/cli/lib.sh"
command -v qemu-system-x86_64 >/dev/null || { echo "skip: qemu-system-x86_64 not installed"; exit 77; }
[ -f "$ROOT/build/guest/vmlinuz" ] || { echo "skip: no guest kit (make guest)"; exit 77; }
pid=
cleanup() {
	[ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
	for q in $(pgrep -f -- "[q]emu-system.*$T"); do kill -KILL "$q" 2>/dev/null; done
	rm -rf "$T"
}
trap cleanup EXIT
nq() { pgrep -f -- "[q]emu-system.*$T/run" | wc -l; }

W=$T/w
mkdir -p "$W/tests/fixtures" "$T/run"
cat >"$W/provium.toml" <<TOML
[provium]
roots = ["tests"]
cache_dir = "$W/cache"
TOML
cat >"$W/tests/fixtures/base.fixture.lua" <<'LUA'
local vm = provium:vm("base", "default"):boot()
vm:write_file("/etc/base", "from the fixture")
return vm:snapshot()
LUA
# Each test restores the fixture, checks the guest, changes it; the third
# announces itself and waits for a go-file (the process count is taken then).
cat >"$W/tests/uses.test.lua" <<LUA
for i = 1, 3 do
	test("restore " .. i, function(t)
		local vm = provium:vm_fixture("fixtures/base")
		t:assert_eq(vm:read_file("/etc/base"), "from the fixture")
		-- a change made by an earlier test is gone: each restore is the fixture
		t:assert_eq(vm:run("cat /etc/changed 2>/dev/null; echo n=" .. i):assert_ok().stdout,
			("n=%d\n"):format(i))
		vm:write_file("/etc/changed", "changed by " .. i)
		if i == 3 then
			local f = assert(io.open("$T/mark", "w")); f:write("up\n"); f:close()
			for _ = 1, 2400 do
				local g = io.open("$T/go", "r")
				if g then g:close(); break end
				_provium_sleep(0.05)
			end
		end
	end)
end
LUA
# Restore, pause (no op yet), one op, pause: the spare comes with the op.
cat >"$W/tests/lazy.test.lua" <<LUA
local function pause(n)
	local f = assert(io.open("$T/lazy" .. n, "w")); f:write("up\n"); f:close()
	for _ = 1, 2400 do
		local g = io.open("$T/lgo" .. n, "r")
		if g then g:close(); return end
		_provium_sleep(0.05)
	end
end
test("lazy", function(t)
	local vm = provium:vm_fixture("fixtures/base")
	pause(1)
	vm:run("true"):assert_ok()
	pause(2)
end)
LUA
cd "$W"

# start_run OUT [ENV...]: provium in the background, until the mark
start_run() {
	local o=$1; shift
	rm -f "$T/mark" "$T/go"
	env "$@" TMPDIR="$T/run" PROVIUM_TRACE_RESTORE=1 "$P" --vmm qemu --no-preflight --no-capture \
		tests/uses.test.lua >"$o" 2>&1 &
	pid=$!
	for _ in $(seq 2400); do
		[ -s "$T/mark" ] && return 0
		kill -0 "$pid" 2>/dev/null || { cat "$o"; fail "provium exited before the third test"; }
		sleep 0.1
	done
	fail "the third test did not start within 240 s: $(cat "$o")"
}
finish_run() {
	touch "$T/go"
	wait "$pid"; rc=$?
	pid=
}
no_qemu_left() { # what
	for _ in $(seq 100); do
		[ "$(nq)" -eq 0 ] && { ok "no QEMU of the run remains $1"; return 0; }
		sleep 0.1
	done
	pgrep -af -- "[q]emu-system.*$T/run"
	fail "QEMU outlived the file $1"
}

# --- spares on (the default) ---
start_run "$T/o1"
n=$(nq)
[ "$n" -eq 3 ] || { pgrep -af -- "[q]emu-system.*$T/run"; fail "expected the VM + two spare QEMUs, found $n"; }
ok "the VM and two spare QEMUs (QSPARE_DEPTH) while the third test runs"
finish_run
out=$(cat "$T/o1")
[ "$rc" -eq 0 ] || fail "spare run: exit $rc: $out"
expect_in "$out" "3 passed, 0 failed" "spare run"
taken=$(grep -c "warm spare QEMU taken" <<<"$out")
[ "$taken" -eq 2 ] || fail "expected restores 2 and 3 to take the spare, $taken did: $out"
ok "restores 2 and 3 took the warm spare; every guest worked"
# A taken spare was primed: that restore loads no stream and waits for no
# Hello (the spare's thread did both, before the restore asked).
taken_blocks=$(awk '/snapshot header read/ { blk = "" } { blk = blk $0 "\n" }
	/warm spare QEMU taken/ { t = 1 } /guest clock set/ && t { printf "%s", blk; t = 0 }' "$T/o1")
expect_in "$taken_blocks" "primed: stream loaded, past Hello, paused" "taken restores"
expect_not_in "$taken_blocks" "migration stream loaded" "taken restores"
expect_not_in "$taken_blocks" "agent Hello answered" "taken restores"
[ "$(grep -c "spare: primed in" "$T/o1")" -ge 2 ] || fail "expected two primings traced: $(cat "$T/o1")"
ok "a taken spare was primed: its restore loaded no stream and waited for no Hello"
no_qemu_left "after the file"

# --- a RAM file damaged after the spare was primed (and its digest
# checked by the spare) is still caught: the file changed since, so the
# restore checks it itself, warns and expands it again; the spare, which
# maps the old file, is not taken ---
cat >"$W/tests/damage.test.lua" <<LUA
for i = 1, 2 do
	test("restore " .. i, function(t)
		local vm = provium:vm_fixture("fixtures/base")
		t:assert_eq(vm:read_file("/etc/base"), "from the fixture")
		t:assert_eq(vm:run("cat /etc/changed 2>/dev/null; echo n=" .. i):assert_ok().stdout,
			("n=%d\n"):format(i))
		vm:write_file("/etc/changed", "changed by " .. i)
		if i == 1 then
			local f = assert(io.open("$T/dmark", "w")); f:write("up\n"); f:close()
			for _ = 1, 2400 do
				local g = io.open("$T/dgo", "r")
				if g then g:close(); break end
				_provium_sleep(0.05)
			end
		end
	end)
end
LUA
rm -f "$T/dmark" "$T/dgo"
TMPDIR="$T/run" PROVIUM_TRACE_RESTORE=1 "$P" --vmm qemu --no-preflight --no-capture \
	tests/damage.test.lua >"$T/o9" 2>&1 &
pid=$!
for _ in $(seq 2400); do
	grep -q "spare: primed in" "$T/o9" 2>/dev/null && [ -s "$T/dmark" ] && break
	kill -0 "$pid" 2>/dev/null || { cat "$T/o9"; fail "provium exited before the spare was primed"; }
	sleep 0.1
done
grep -q "spare: primed in" "$T/o9" || fail "no spare primed within 240 s: $(cat "$T/o9")"
ram=$(ls "$W"/cache/*.snap.ram-* | grep -v -e '\.tmp\.' -e '\.sum$' | head -n 1)
damage_ram "$ram" data || fail "could not damage $ram"
touch "$T/dgo"
wait "$pid"; rc=$?; pid=
out=$(cat "$T/o9")
[ "$rc" -eq 0 ] || fail "damaged RAM file after priming: exit $rc: $out"
expect_in "$out" "2 passed, 0 failed" "damaged RAM file after priming"
expect_in "$out" "failed its integrity check" "damaged RAM file after priming"
expect_not_in "$out" "warm spare QEMU taken" "damaged RAM file after priming"
ok "a RAM file damaged after the spare's priming: warning, expanded again, spare not taken"
no_qemu_left "after the damaged-RAM file"

# --- on a busy host (a fake PSI dir: cpu 60%) the spare waits for the
# restored guest's first op; on an idle one (cpu 0%) it starts at once ---
mkdir -p "$T/psibusy" "$T/psiidle"
echo "some avg10=60.00 avg60=60.00 avg300=60.00 total=1" >"$T/psibusy/cpu"
echo "some avg10=0.00 avg60=0.00 avg300=0.00 total=1" >"$T/psiidle/cpu"
wait_for() { # file
	for _ in $(seq 2400); do
		[ -s "$1" ] && return 0
		kill -0 "$pid" 2>/dev/null || { cat "$T/o5"; fail "provium exited early"; }
		sleep 0.1
	done
	fail "no $1 within 240 s"
}
lazy_run() { # psi-dir qemus-before-the-first-op what
	rm -f "$T"/lazy[12] "$T"/lgo[12]
	TMPDIR="$T/run" PROVIUM_PSI_DIR="$1" "$P" --vmm qemu --no-preflight tests/lazy.test.lua >"$T/o5" 2>&1 &
	pid=$!
	wait_for "$T/lazy1"
	n=$(nq)
	# a spawned spare may not have exec'd QEMU yet: give it up to 5 s
	for _ in $(seq 50); do
		[ "$n" -lt "$2" ] || break
		sleep 0.1; n=$(nq)
	done
	[ "$n" -eq "$2" ] || fail "$3, before the first op: expected $2 QEMU(s), found $n"
	touch "$T/lgo1"
	wait_for "$T/lazy2"
	n=$(nq)
	[ "$n" -eq 3 ] || fail "$3, after the first op: expected the VM + its two spares, found $n"
	touch "$T/lgo2"
	wait "$pid"; rc=$?; pid=
	[ "$rc" -eq 0 ] || fail "$3: exit $rc: $(cat "$T/o5")"
	no_qemu_left "after the lazy file ($3)"
}
lazy_run "$T/psibusy" 1 "busy host"
ok "busy host: the spare is launched after the restored guest's first op"
lazy_run "$T/psiidle" 2 "idle host"
ok "idle host: the spare is launched with the restore, before the first op"

# --- SIGKILL of provium with a spare up ---
start_run "$T/o2"
[ "$(nq)" -eq 3 ] || fail "expected three QEMUs before the SIGKILL"
kill -KILL "$pid"; wait "$pid" 2>/dev/null; pid=
no_qemu_left "after SIGKILL of provium"

# --- PROVIUM_SPARE=0 ---
start_run "$T/o3" PROVIUM_SPARE=0
n=$(nq)
[ "$n" -eq 1 ] || fail "PROVIUM_SPARE=0: expected only the VM's QEMU, found $n"
finish_run
out=$(cat "$T/o3")
[ "$rc" -eq 0 ] || fail "PROVIUM_SPARE=0: exit $rc: $out"
expect_in "$out" "3 passed, 0 failed" "PROVIUM_SPARE=0"
expect_not_in "$out" "warm spare QEMU" "PROVIUM_SPARE=0"
ok "PROVIUM_SPARE=0: no spare, three working restores"

# --- memory pressure: spares are not launched ---
mkdir -p "$T/psi"
echo "some avg10=90.00 avg60=90.00 avg300=90.00 total=1" >"$T/psi/memory"
start_run "$T/o4" PROVIUM_PSI_DIR="$T/psi"
n=$(nq)
[ "$n" -eq 1 ] || fail "memory pressure: expected only the VM's QEMU, found $n"
finish_run
out=$(cat "$T/o4")
[ "$rc" -eq 0 ] || fail "memory pressure: exit $rc: $out"
expect_in "$out" "3 passed, 0 failed" "memory pressure"
expect_not_in "$out" "warm spare QEMU" "memory pressure"
ok "memory pressure: no spare, three working restores"
no_qemu_left "at the end"
