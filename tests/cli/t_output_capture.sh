#!/usr/bin/env bash
# Output capture: a file's stdout/stderr (print, io.write, io.stderr, child
# processes) and t:log lines show under failing files/tests only (all with
# -v; failing ones under -q), labelled; --no-capture streams them live with
# a `[path] ` prefix; --json keeps stdout for objects (output prefixed on
# stderr); output written just before a runner is killed is kept; a runner
# writing more than a pipe holds never stalls the run; the per-file cap
# keeps the newest bytes; --junit carries it in <system-out>.
. "$(dirname "$0")/cli/lib.sh"
mkdir -p "$T/p/tests"
cd "$T/p"
L="$P --vmm local --no-preflight"
cat >tests/good.test.lua <<'LUA'
print("good top-level print")
test("g", function(t) t:log("good log"); io.write("good io.write\n") end)
LUA
cat >tests/bad.test.lua <<'LUA'
print("bad top-level print")
test("passes", function(t) t:log("passing log") end)
test("fails", function(t)
	io.stderr:write("bad stderr line\n")
	os.execute("echo bad shell child")
	t:log("failing log")
	io.write("no newline at the end")
	t:fail("boom")
end)
LUA

run $L tests
expect_rc 1 "a failing file"
expect_not_in "$out" "good top-level print" "a passing file's output is hidden"
expect_not_in "$out" "good log" "a passing test's log is hidden"
expect_not_in "$out" "passing log" "a passing test's log in a failing file is hidden"
expect_not_in "$err" "print" "nothing leaks to stderr"
python3 - "$out" <<'PY' || fail "failing file's sections: $out"
import sys
out = sys.argv[1]
i = out.index("FAIL tests/bad.test.lua")
block = out[i:].split("\n\n")[0].splitlines()
exp = ["    FAIL fails", "        tests/bad.test.lua:8: boom", "        --- log ---", "        failing log",
       "    --- output ---"]
pos = [block.index(l) for l in exp]
assert pos == sorted(pos), (pos, block)
rest = block[pos[-1] + 1:]
for l in ("        bad top-level print", "        bad stderr line", "        bad shell child",
          "        no newline at the end"):
    assert l in rest, (l, rest)
PY
ok "default: output and log under the failing file/test only, labelled"

run $L tests -q
expect_not_in "$out" "good" "-q hides the passing file"
expect_in "$out" "    --- output ---" "-q still shows a failing file's output"
expect_in "$out" "        bad stderr line" "-q output line"
run $L tests -v
expect_in "$out" "        good log" "-v: passing test's log"
expect_in "$out" "        passing log" "-v: passing test's log in a failing file"
expect_in "$out" "        good top-level print" "-v: passing file's output"
expect_in "$out" "        good io.write" "-v: io.write"
ok "-q and -v"

run $L tests --no-capture
expect_rc 1 "--no-capture"
for l in "[tests/good.test.lua] good top-level print" "[tests/good.test.lua] good io.write" \
	"[tests/bad.test.lua] bad stderr line" "[tests/bad.test.lua] bad shell child" \
	"[tests/bad.test.lua] no newline at the end"; do
	expect_in "$out" "$l" "--no-capture line"
done
expect_not_in "$out" "--- output ---" "--no-capture: not repeated under the file"
expect_in "$out" "        failing log" "--no-capture: t:log still under the failing test"
ok "--no-capture prefixes lines"

run $L tests --json
python3 -c 'import json,sys
for l in sys.stdin: json.loads(l)' <<<"$out" || fail "--json stdout not JSON lines: $out"
expect_in "$err" "[tests/bad.test.lua] bad stderr line" "--json: output prefixed on stderr"
ok "--json"

run $L tests --junit "$T/j.xml"
python3 - "$T/j.xml" <<'PY' || fail "junit system-out: $(cat "$T/j.xml")"
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
s = {ts.get("name"): ts for ts in root.iter("testsuite")}
so = s["tests/bad.test.lua"].find("system-out")
assert so is not None and "bad stderr line" in so.text and "bad shell child" in so.text, so
assert "good io.write" in s["tests/good.test.lua"].find("system-out").text
PY
ok "--junit <system-out> per testsuite"

# killed runners: what they wrote before the kill is kept (timeout, os.exit)
cat >tests/hang.test.lua <<'LUA'
test("hangs", function(t) print("last words before the timeout"); os.execute("sleep 30") end)
LUA
cat >tests/exits.test.lua <<'LUA'
test("exits", function(t) io.write("said before os.exit\n"); os.exit(3) end)
LUA
run $L --timeout 1s tests/hang.test.lua tests/exits.test.lua
expect_rc 1 "timeout / crash"
expect_in "$out" "        last words before the timeout" "timed-out file's output"
expect_in "$out" "        said before os.exit" "crashed file's output"
ok "output of killed runners kept"

# more than a pipe holds, from two files at once: nothing stalls, the
# last line is there; beyond the cap the oldest bytes are dropped, said
rm tests/hang.test.lua tests/exits.test.lua
cat >tests/big.test.lua <<'LUA'
test("big", function(t)
	local line = string.rep("x", 99) .. "\n"
	for i = 1, 3000 do io.write(line) end  -- 300 KB
	io.write("end of big\n")
	t:fail("show it")
end)
LUA
cat >tests/huge.test.lua <<'LUA'
test("huge", function(t)
	local line = string.rep("y", 99) .. "\n"
	for i = 1, 15000 do io.write(line) end  -- 1.5 MB
	io.write("end of huge\n")
	t:fail("show it")
end)
LUA
run $L --timeout 60s tests/big.test.lua tests/huge.test.lua
expect_rc 1 "big outputs"
expect_in "$out" "        end of big" "big output's last line"
expect_in "$out" "        end of huge" "huge output's last line"
[ "$(grep -c '^        x\{99\}$' <<<"$out")" -eq 3000 ] || fail "big output not whole"
expect_in "$out" "earlier bytes dropped ...]" "huge output: the drop is said"
expect_not_in "$out" "[... 0 earlier" "no empty drop notice"
ok "large outputs: no stall, newest bytes kept"
