#!/usr/bin/env bash
# A failing test on a booted VM shows that VM's console tail under the
# failure message, and carries it in the test_failed event.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
P=$ROOT/build/provium
[ -x "$P" ] || { echo "skip: no build/provium"; exit 77; }
[ -f "$ROOT/build/guest/vmlinuz" ] || { echo "skip: no guest kit (make guest)"; exit 77; }
command -v qemu-system-x86_64 >/dev/null || { echo "skip: no qemu"; exit 77; }
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
cat >"$T/c.test.lua" <<'LUA'
local vm = provium:vm("v", "default"):boot()
test("fails", function(t)
    vm:run("echo marker-on-console > /dev/console")
    t:assert(false, "boom")
end)
LUA
cd "$T"
out=$("$P" c.test.lua 2>&1); rc=$?
[ $rc -eq 1 ] || { echo "FAIL: exit $rc, expected 1"; echo "$out"; exit 1; }
for want in "    FAIL fails" "        c.test.lua:4: boom" "        --- v console ---" "        marker-on-console"; do
	grep -qxF -- "$want" <<<"$out" || { echo "FAIL: missing line \`$want\` in:"; echo "$out"; exit 1; }
done
"$P" --events-stdout c.test.lua 2>/dev/null | python3 "$ROOT/tests/cli/cli/decode_events.py" >events.txt
grep -a '"kind": "test_failed"' events.txt | grep -q 'marker-on-console' ||
	{ echo "FAIL: test_failed.console_excerpt lacks the console text"; cat events.txt; exit 1; }
echo "ok: console excerpt in the failure output and the event"
