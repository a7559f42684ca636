#!/usr/bin/env bash
# vm_spawned for a restored VM reports the snapshot header's memory and
# profile (not 0 / the creation profile).
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
P=$ROOT/build/provium
[ -x "$P" ] || { echo "skip: no build/provium"; exit 77; }
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
cat >"$T/r.test.lua" <<'LUA'
test("restore", function(t)
    local a = provium:vm("a", "default", {memory = "300M"}):boot()
    local b = provium:vm("b", "default")
    b:restore(a:snapshot())
end)
LUA
cd "$T"
"$P" --vmm local --events-stdout r.test.lua 2>/dev/null |
	python3 "$ROOT/tests/cli/cli/decode_events.py" >ev.txt || { echo "FAIL: run"; exit 1; }
python3 - ev.txt <<'PY' || exit 1
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
sp = {e["payload"]["vm_name"]: e["payload"] for e in ev if e["kind"] == "vm_spawned"}
b = sp.get("b")
if not b or b["memory_bytes"] != 300 << 20 or b["profile"] != "default":
    print("FAIL: vm_spawned for the restored VM:", b); sys.exit(1)
print("ok: restored vm_spawned carries memory_bytes", b["memory_bytes"])
PY
