#!/usr/bin/env bash
# Conformance of the pool and its events with the reference: on --vmm local
# a file reserves the documented per-file overhead (50 MiB, 0 CPUs) plus
# its declared claim; file_blocked / pool_state / claim events carry
# ResourceAmount as {memory_bytes, cpus}; a pool that fits one file at a
# time serialises the files (pool_full); a reservation larger than the
# whole pool fails the file (`exceeds`); PSI throttling blocks new files
# with reason psi_pressure only while another file is in flight, and
# PROVIUM_NO_PSI turns it off. The qemu backend keeps its larger
# reservation (256 MiB + 1 CPU, docs/decisions.md) plus 3 x 64 MiB for the
# runner's warm spare QEMUs, none of it with PROVIUM_SPARE=0 (pool.h).
. "$(dirname "$0")/cli/lib.sh"
W=$T/w
mkdir -p "$W/psi"
cd "$W"
: >provium.toml
export PROVIUM_PSI_DIR=$W/psi   # no pressure files: no pressure
L="$P --vmm local --no-preflight --config $W/provium.toml"
MIB=1048576

ev() { $DECODE "$1" | grep -v '"pool_state"'; }
# field KIND PATH-SUFFIX PYTHON-EXPR: evaluate EXPR on the payload of the
# first KIND event whose path ends with PATH-SUFFIX (empty: any)
field() {
	python3 - "$T/ev.json" "$1" "$2" "$3" <<'PY'
import json, sys
evs = [json.loads(l) for l in open(sys.argv[1])]
for e in evs:
    p = e["payload"]
    if e["kind"] == sys.argv[2] and str(p.get("path", "")).endswith(sys.argv[3]):
        A = lambda a: a if a is None else (a["memory_bytes"], a["cpus"])
        print(eval(sys.argv[4], {"A": A}, {"p": p}))
        break
else:
    print("<none>")
PY
}
save() { $DECODE "$1" >"$T/ev.json" || fail "decode $1"; }

# -- reservations on --vmm local ------------------------------------------
mkdir r
echo 'test("t", function(t) end)' >r/plain.test.lua
cat >r/claimed.test.lua <<'LUA'
provium:claim({memory = "1G", cpus = 2})
test("t", function(t) end)
LUA
run $L --save-events "$T/r.ev" r
expect_rc 0 "reservation run"
save "$T/r.ev"
[ "$(field file_dispatched plain.test.lua 'A(p["reservation"])')" = "($((50 * MIB)), 0)" ] ||
	fail "unclaimed reservation: $(field file_dispatched plain.test.lua 'p')"
[ "$(field file_dispatched claimed.test.lua 'A(p["reservation"])')" = "($((50 * MIB + 1024 * MIB)), 2)" ] ||
	fail "claimed reservation: $(field file_dispatched claimed.test.lua 'p')"
[ "$(field file_discovered claimed.test.lua 'A(p["declared_claim"])')" = "($((1024 * MIB)), 2)" ] ||
	fail "declared_claim: $(field file_discovered claimed.test.lua 'p')"
[ "$(field file_discovered plain.test.lua 'A(p["declared_claim"])')" = "None" ] || fail "no declared_claim"
[ "$(field claim_acquired claimed.test.lua 'A(p["amount"])')" = "($((1024 * MIB)), 2)" ] ||
	fail "claim_acquired: $(field claim_acquired claimed.test.lua 'p')"
[ "$(field claim_released claimed.test.lua 'A(p["amount"])')" = "($((1024 * MIB)), 2)" ] ||
	fail "claim_released: $(field claim_released claimed.test.lua 'p')"
ok "--vmm local reserves 50 MiB + 0 CPUs plus the claim"

# -- qemu keeps its own reservation (no VM is booted here) ----------------
run "$P" --vmm qemu --no-preflight --config "$W/provium.toml" --save-events "$T/q.ev" r/plain.test.lua
expect_rc 0 "qemu run without a VM"
save "$T/q.ev"
[ "$(field file_dispatched plain.test.lua 'A(p["reservation"])')" = "($((256 * MIB + 3 * 64 * MIB)), 1)" ] ||
	fail "qemu reservation: $(field file_dispatched plain.test.lua 'p')"
ok "--vmm qemu reserves 256 MiB + 1 CPU, plus 3 x 64 MiB of warm spares"
PROVIUM_SPARE=0 run "$P" --vmm qemu --no-preflight --config "$W/provium.toml" --save-events "$T/q0.ev" r/plain.test.lua
expect_rc 0 "qemu run without a VM, PROVIUM_SPARE=0"
save "$T/q0.ev"
[ "$(field file_dispatched plain.test.lua 'A(p["reservation"])')" = "($((256 * MIB)), 1)" ] ||
	fail "qemu reservation without spares: $(field file_dispatched plain.test.lua 'p')"
ok "--vmm qemu with PROVIUM_SPARE=0 reserves 256 MiB + 1 CPU"

# -- a pool that fits one file at a time serialises them ------------------
mkdir s
for i in 0 1 2; do echo 'test("t", function(t) t:assert(true) end)' >s/$i.test.lua; done
run $L --mem 60M --save-events "$T/s.ev" s
expect_rc 0 "serialised run"
expect_in "$out" "3 file(s); 3 passed, 0 failed, 0 skipped;" "all three ran"
save "$T/s.ev"
python3 - "$T/ev.json" <<'PY' || fail "serialised events: $(cat "$T/ev.json")"
import json, sys
evs = [json.loads(l) for l in open(sys.argv[1])]
inflight = peak = 0
for e in evs:
    if e["kind"] == "file_dispatched": inflight += 1; peak = max(peak, inflight)
    if e["kind"] == "file_completed": inflight -= 1
assert peak == 1, peak
blocked = [e["payload"] for e in evs if e["kind"] == "file_blocked"]
assert blocked and all(b["reason"] == "pool_full" for b in blocked), blocked
assert all(b["waiting_for"] == {"memory_bytes": 50 << 20, "cpus": 0} for b in blocked), blocked
states = [e["payload"] for e in evs if e["kind"] == "pool_state"]
assert states, "no pool_state"
first = states[0]
assert set(first) == {"used", "available"}, first
assert first["used"]["memory_bytes"] + first["available"]["memory_bytes"] == 60 << 20, first
assert first["used"]["memory_bytes"] == 50 << 20, first
PY
ok "a one-file pool serialises (pool_full, pool_state)"

# -- a reservation larger than the whole pool -----------------------------
mkdir x
printf 'provium:claim({memory = "4G"})\ntest("t", function(t) end)\n' >x/big.test.lua
run $L --mem 1G --save-events "$T/x.ev" x
expect_rc 1 "oversized claim"
expect_in "$out" "exceeds pool total" "exceeds message"
save "$T/x.ev"
[ "$(field file_completed big.test.lua 'p["status"]')" = "crashed" ] || fail "oversized file status"
run $L --mem 1G --json x
expect_in "$out" "exceeds" "--json chunk_error"
ok "a reservation larger than the pool fails the file"

# -- PSI throttling --------------------------------------------------------
mkdir p
for f in a b; do echo 'test("t", function(t) end)' >p/$f.test.lua; done
echo "some avg10=99.00 avg60=90.00 avg300=80.00 total=1" >psi/cpu
run $L --save-events "$T/p.ev" p
expect_rc 0 "pressured run"
save "$T/p.ev"
[ "$(field file_blocked b.test.lua 'p["reason"]')" = "psi_pressure" ] || fail "psi block: $(cat "$T/ev.json")"
[ "$(field file_blocked a.test.lua 'p["reason"]')" = "<none>" ] || fail "first file blocked with nothing in flight"
python3 - "$T/ev.json" <<'PY' || fail "psi order: $(cat "$T/ev.json")"
import json, sys
evs = [(json.loads(l)["kind"], json.loads(l)["payload"].get("path")) for l in open(sys.argv[1])]
i = evs.index(("file_blocked", "p/b.test.lua"))
j = evs.index(("file_completed", "p/a.test.lua"))
k = evs.index(("file_dispatched", "p/b.test.lua"))
assert i < j < k, evs
PY
ok "PSI pressure holds new files while one is in flight (psi_pressure)"

run $L --save-events "$T/p1.ev" p/a.test.lua
expect_rc 0 "pressured single file"
save "$T/p1.ev"
[ "$(field file_blocked '' 'p')" = "<none>" ] || fail "an idle run was held back"
ok "PSI never holds back an idle run"

rm psi/cpu
echo "some avg10=99.00 avg60=90.00 avg300=80.00 total=1" >psi/memory
run $L --save-events "$T/pm.ev" p
save "$T/pm.ev"
[ "$(field file_blocked b.test.lua 'p["reason"]')" = "psi_pressure" ] || fail "memory pressure"
for body in "some avg10=10.00 avg60=1 avg300=1 total=1" "garbled pressure file"; do
	echo "$body" >psi/memory
	run $L --save-events "$T/pl.ev" p
	save "$T/pl.ev"
	[ "$(field file_blocked '' 'p')" = "<none>" ] || fail "blocked under [$body]"
done
echo "some avg10=99.00 avg60=90.00 avg300=80.00 total=1" >psi/cpu
run env PROVIUM_NO_PSI=1 $L --save-events "$T/pn.ev" p
save "$T/pn.ev"
[ "$(field file_blocked '' 'p')" = "<none>" ] || fail "PROVIUM_NO_PSI=1 still throttles"
ok "PSI: memory counts, low or garbled pressure does not, PROVIUM_NO_PSI"
