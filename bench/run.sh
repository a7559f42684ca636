#!/usr/bin/env bash
# bench/run.sh — provium's numbers on this machine, side by side in one
# run (NOT part of `make check`; timings never gate a test). On a 256 MiB
# TCG guest of the default profile, with a private fixture cache:
#   cold boot to first op; cold fixture build vs cache-hit restore to
#   first op (ratio); snapshot of a restored VM and its restore; cached
#   entry size vs guest RAM; restore of a two-VM
#   lab fixture; vm:run("true") round trip (median/p90 over 200); write +
#   read of 1 KiB; write_file of 16 MiB; disk hotplug / slow fault /
#   unplug; four files on one cold fixture (wall time, build count).
# Usage: bench/run.sh   (needs `make` and `make guest`)
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
P=${PROVIUM_BIN:-$ROOT/build/provium}
[ -x "$P" ] || { echo "build provium first (make)"; exit 1; }
[ -f "$ROOT/build/guest/vmlinuz" ] || { echo "build the guest kit first (make guest)"; exit 1; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
W=$T/w
mkdir -p "$W/tests/fixtures" "$W/par/fixtures"
OUT=$T/results
cat >"$W/provium.toml" <<TOML
[provium]
roots = ["tests"]
cache_dir = "$W/cache"
TOML
cat >"$W/tests/fixtures/base.fixture.lua" <<'LUA'
local vm = provium:vm("base", "default", {memory = "256M"}):boot()
vm:write_file("/etc/bench", "1")
return vm:snapshot()
LUA
cat >"$W/tests/fixtures/pair.fixture.lua" <<'LUA'
local a = provium:vm("a", "default", {memory = "256M"}):boot()
local b = provium:vm("b", "default")
b:restore(a:snapshot())
return provium:snapshot()
LUA
cat >"$W/tests/bench.test.lua" <<LUA
local out = assert(io.open("$OUT", "a"))
local function rec(k, v) out:write(k, " ", string.format("%.6f", v), "\n"); out:flush() end
local now = _provium_now
local function pct(v, p) table.sort(v); return v[math.max(1, math.ceil(#v * p))] end

test("bench", function(t)
	local t0 = now()
	local vm = provium:vm("cold", "default", {memory = "256M"}):boot()
	vm:run("true")
	rec("cold_boot_first_op", now() - t0)
	local lat = {}
	for i = 1, 200 do
		local s = now(); vm:run("true"); lat[i] = now() - s
	end
	rec("run_true_median", pct(lat, 0.5)); rec("run_true_p90", pct(lat, 0.9))
	local kb = string.rep("x", 1024)
	lat = {}
	for i = 1, 100 do
		local s = now(); vm:write_file("/tmp/k", kb); vm:read_file("/tmp/k"); lat[i] = now() - s
	end
	rec("rw_1k_median", pct(lat, 0.5))
	local big = string.rep("0123456789abcdef", 1 << 20)
	local s = now(); vm:write_file("/tmp/big", big); rec("write_16m_s", now() - s)
	-- disks: hotplug until the guest shows it, 20 direct 4 KiB guest
	-- writes plain and under the "slow" fault, unplug
	local img = os.tmpname()
	local fh = assert(io.open(img, "wb")); fh:write(string.rep("\0", 1 << 20)); fh:close()
	s = now()
	local d = vm:attach_disk({id = "bench", image = img})
	rec("disk_attach", now() - s)
	local dd = ("dd if=/dev/zero of=%s bs=4096 count=20 oflag=direct 2>/dev/null"):format(d:guest_device())
	s = now(); vm:run(dd):assert_ok(); rec("disk_20_writes", now() - s)
	d:fault_inject("slow")
	s = now(); vm:run(dd):assert_ok(); rec("disk_20_writes_slow", now() - s)
	d:clear_faults()
	s = now(); d:detach(); rec("disk_detach", now() - s)
	os.remove(img)
	vm:close()

	s = now()
	local f = provium:lab("l1"):vm_fixture("fixtures/base")
	rec("fixture_cold_build_and_restore", now() - s)
	f:close()
end)
test("hit", function(t)
	local s = now()
	local f = provium:lab("l2"):vm_fixture("fixtures/base")
	f:run("true")
	rec("fixture_hit_restore_first_op", now() - s)
	-- a restored VM's RAM is a private mapping: its snapshots carry the
	-- RAM in the migration stream (docs/decisions.md)
	s = now()
	local snap = f:snapshot()
	rec("restored_vm_snapshot", now() - s)
	local g = provium:lab("l3"):vm("g", "default")
	s = now()
	g:restore(snap)
	g:run("true")
	rec("restored_vm_snapshot_restore_first_op", now() - s)
	snap:delete()
end)
test("lab", function(t)
	provium:lab_fixture("fixtures/pair")  -- build (cold)
end)
LUA
cat >"$W/tests/lab2.test.lua" <<LUA
local out = assert(io.open("$OUT", "a"))
test("lab hit", function(t)
	local s = _provium_now()
	local l = provium:lab_fixture("fixtures/pair")
	l.a:run("true"); l.b:run("true")
	out:write("lab_fixture_hit_restore_2vms ", string.format("%.6f", _provium_now() - s), "\n")
	out:close()
end)
LUA
cd "$W"
"$P" --vmm qemu --no-preflight tests/bench.test.lua >"$T/o1" 2>&1 || { cat "$T/o1"; exit 1; }
"$P" --vmm qemu --no-preflight tests/lab2.test.lua >"$T/o2" 2>&1 || { cat "$T/o2"; exit 1; }
entry=$(ls "$W"/cache/*.snap | head -n 1)
echo "entry_bytes $(stat -c %s "$entry")" >>"$OUT"
echo "entry_ram_file_blocks_bytes $(( $(stat -c %b "$(ls "$entry".ram-* | head -n 1)") * 512 ))" >>"$OUT"

# four files on one cold fixture (a fresh cache)
cat >"$W/par/fixtures/p.fixture.lua" <<'LUA'
local vm = provium:vm("p", "default", {memory = "256M"}):boot()
return vm:snapshot()
LUA
for i in 1 2 3 4; do
	echo 'test("p", function(t) provium:vm_fixture("fixtures/p"):run("true") end)' >"$W/par/f$i.test.lua"
done
cat >"$W/par.toml" <<TOML
[provium]
roots = ["par"]
cache_dir = "$W/cache2"
TOML
s=$(date +%s.%N)
"$P" --config "$W/par.toml" --vmm qemu --no-preflight --cpus 4 --save-events "$T/ev" par >"$T/o3" 2>&1 || { cat "$T/o3"; exit 1; }
e=$(date +%s.%N)
echo "four_files_wall $(echo "$e - $s" | bc)" >>"$OUT"
echo "four_files_builds $(python3 "$ROOT/tests/cli/cli/decode_events.py" "$T/ev" | grep -c '"fixture_build_started"')" >>"$OUT"

python3 - "$OUT" <<'PY'
import sys
r = {}
for line in open(sys.argv[1]):
    k, v = line.split()
    r[k] = float(v)
ms = lambda k: "%.1f ms" % (r[k] * 1000)
ram = 256 << 20
rows = [
    ("cold boot to first op (256 MiB, TCG)", ms("cold_boot_first_op")),
    ("cold fixture build + first restore", ms("fixture_cold_build_and_restore")),
    ("fixture cache hit: restore to first op", ms("fixture_hit_restore_first_op")),
    ("  ratio hit / cold boot", "1/%.0f" % (r["cold_boot_first_op"] / r["fixture_hit_restore_first_op"])),
    ("snapshot of a restored VM (RAM in the stream)", ms("restored_vm_snapshot")),
    ("  its restore to first op", ms("restored_vm_snapshot_restore_first_op")),
    ("cached entry size (.snap)", "%.1f MiB (%.0f%% of guest RAM)" % (r["entry_bytes"] / 2**20, 100 * r["entry_bytes"] / ram)),
    ("expanded RAM file (sparse, on disk)", "%.1f MiB" % (r["entry_ram_file_blocks_bytes"] / 2**20)),
    ("lab fixture hit: 2 VMs restored + 1 op each", ms("lab_fixture_hit_restore_2vms")),
    ("vm:run(\"true\") median / p90 (n=200)", "%s / %s" % (ms("run_true_median"), ms("run_true_p90"))),
    ("write_file + read_file 1 KiB (median)", ms("rw_1k_median")),
    ("write_file 16 MiB", "%s (%.1f MB/s)" % (ms("write_16m_s"), 16.777216 / r["write_16m_s"])),
    ("disk: attach until the guest shows it", ms("disk_attach")),
    ("disk: 20 direct 4 KiB guest writes, plain / slow", "%s / %s" % (ms("disk_20_writes"), ms("disk_20_writes_slow"))),
    ("disk: detach", ms("disk_detach")),
    ("4 files, 1 cold fixture: wall / builds", "%.2f s / %d" % (r["four_files_wall"], r["four_files_builds"])),
]
w = max(len(a) for a, _ in rows)
print("%-*s  %s" % (w, "measure", "value"))
print("-" * (w + 30))
for a, b in rows:
    print("%-*s  %s" % (w, a, b))
PY
