#!/usr/bin/env bash
# Test selection by name: -k/--test SUBSTR (repeatable, OR), path::NAME on
# the command line (exact name), and `provium list --tests` (text and
# --json) from the static scanner, computed names listed as such.
. "$(dirname "$0")/cli/lib.sh"
W=$T/w
mkdir -p "$W/tests/sub"
: >"$W/provium.toml"
cat >"$W/tests/boot.test.lua" <<'LUA'
test("boots fast", {tags = {"smoke", "net"}}, function(t) end)
test("boots slow", {tags = "slowish"}, function(t) end)
test("pings", function(t) t:fail("no route") end)
test("later", {skip = "not yet"}, function(t) end)
for _, n in ipairs({"a", "b"}) do
	test("gen " .. n, {tags = {"gen"}}, function(t) end)
end
LUA
echo 'test("other", function(t) end)' >"$W/tests/sub/other.test.lua"
cd "$W" || exit 1
L="$P --vmm local --no-preflight"

# -- -k / --test ------------------------------------------------------------
run $L -v -k boots tests
expect_rc 0 "-k boots"
expect_in "$out" "    PASS boots fast" "-k runs matching tests"
expect_in "$out" "    PASS boots slow" "-k is a substring match"
expect_in "$out" "    SKIP pings (filtered: name did not match -k/--test)" "others filtered"
expect_in "$out" "    SKIP later (filtered: name did not match -k/--test)" "name selection before meta.skip"
expect_in "$out" "    SKIP other (filtered: name did not match -k/--test)" "applies to every file"
expect_in "$out" "2 passed, 0 failed, 5 skipped" "totals"
run $L -v --test pings -k 'gen a' tests/boot.test.lua
expect_rc 1 "--test pings -k 'gen a'"
expect_in "$out" "    FAIL pings" "--test selects"
expect_in "$out" "    PASS gen a" "repeated -k is OR"
expect_in "$out" "1 passed, 1 failed, 4 skipped" "OR of two"
run $L --json --test=fast tests/boot.test.lua
expect_rc 0 "--test=fast"
python3 - "$out" <<'PY' || fail "--json statuses under -k: $out"
import json, sys
f = json.loads(sys.argv[1].splitlines()[0])
st = {t["name"]: (t["status"], t["message"]) for t in f["tests"]}
assert st["boots fast"][0] == "passed", st
assert st["pings"] == ("skipped", "filtered: name did not match -k/--test"), st
PY
ok "-k / --test select by name substring, OR'd"

run $L -k zzz tests
expect_rc 5 "-k matching nothing"
[ "$(grep -c . <<<"$err")" -eq 1 ] || fail "expected a one-line reason, got: $err"
expect_in "$err" "provium: no test ran (7 left out by the selection flags): exit 5" "reason"
expect_in "$err" "-k/--test" "reason names -k"
run $L -k zzz --allow-empty tests
expect_rc 0 "-k zzz --allow-empty"
run $L -k ''
expect_rc 2 "-k ''"
expect_in "$err" "-k/--test: expected a part of a test name" "empty -k"
ok "-k matching nothing exits 5 with a one-line reason"

# -- path::NAME ---------------------------------------------------------------
run $L -v 'tests/boot.test.lua::boots fast'
expect_rc 0 "path::NAME"
expect_in "$out" "PASS tests/boot.test.lua (1 passed, 0 failed, 5 skipped)" "only that test ran"
expect_in "$out" "    SKIP boots slow (filtered: not named by path::NAME)" "others filtered"
run $L 'tests/boot.test.lua::boots fast' tests/boot.test.lua::pings tests/sub/other.test.lua::other
expect_rc 1 "two names in one file plus another file"
expect_in "$out" "FAIL tests/boot.test.lua (1 passed, 1 failed, 4 skipped)" "both names of the file"
expect_in "$out" "PASS tests/sub/other.test.lua (1 passed, 0 failed, 0 skipped)" "the other file"
run $L tests 'tests/boot.test.lua::boots fast'
expect_in "$out" "tests/boot.test.lua (4 passed, 1 failed, 1 skipped)" "a plain path covering the file runs all of it"
cd tests/sub || exit 1
run $L -v '../boot.test.lua::gen b'
expect_rc 0 "path::NAME from a subdirectory"
expect_in "$out" "PASS tests/boot.test.lua (1 passed, 0 failed, 5 skipped)" "computed name matched at run time"
cd "$W" || exit 1
ok "path::NAME runs only the named tests"

run $L tests/boot.test.lua::boots
expect_rc 1 "path::NAME is exact: a part of a name is an error of that file"
expect_in "$out" 'ERROR no test named "boots" in tests/boot.test.lua (path::NAME takes an exact name; defined: "boots fast", "boots slow", "pings", "later", "gen a", "gen b")' "lists the names"
expect_not_in "$out" "PASS boots" "nothing ran"
run $L tests::x
expect_rc 2 "dir::NAME"
expect_in "$err" "path::NAME needs a test file, \`tests\` is not one" "dir::NAME message"
run $L tests/boot.test.lua::
expect_rc 2 "empty NAME"
expect_in "$err" "expected a test name after \`::\`" "empty NAME message"
run $L tests/nope.test.lua::x
expect_rc 2 "missing file"
expect_in "$err" "\`tests/nope.test.lua\`: No such file or directory" "missing file message"
ok "path::NAME errors"

# -- list --tests ---------------------------------------------------------------
run "$P" list --tests
expect_rc 0 "list --tests"
[ "$out" = "tests/boot.test.lua
    boots fast  [smoke, net]
    boots slow  [slowish]
    pings
    later
    (name computed at run time, line 6)  [gen]
tests/sub/other.test.lua
    other" ] || fail "list --tests:
$out"
run "$P" list --tests -k boots tests/boot.test.lua
[ "$out" = "tests/boot.test.lua
    boots fast  [smoke, net]
    boots slow  [slowish]
    (name computed at run time, line 6)  [gen]" ] || fail "list --tests -k:
$out"
run "$P" list --tests tests/boot.test.lua::pings
[ "$out" = "tests/boot.test.lua
    pings
    (name computed at run time, line 6)  [gen]" ] || fail "list --tests path::NAME:
$out"
run "$P" list --tests --json
expect_rc 0 "list --tests --json"
printf '%s\n' "$out" | python3 -m json.tool >/dev/null || fail "list --tests --json is not JSON: $out"
python3 - "$out" <<'PY' || fail "list --tests --json content: $out"
import json, sys
d = json.loads(sys.argv[1])
assert [f["path"] for f in d["files"]] == ["tests/boot.test.lua", "tests/sub/other.test.lua"], d
t = d["files"][0]["tests"]
assert t[0] == {"name": "boots fast", "line": 1, "dynamic": False, "tags": ["smoke", "net"],
                "tags_dynamic": False}, t[0]
assert t[4]["name"] is None and t[4]["dynamic"] is True and t[4]["line"] == 6, t[4]
assert d["files"][0]["scan_error"] is None
assert d["files"][1]["tests"][0]["name"] == "other"
PY
if command -v jq >/dev/null; then
	jq -e '.files[0].tests[1].tags == ["slowish"]' <<<"$out" >/dev/null || fail "jq: $out"
fi
run "$P" list --json
python3 -c 'import json,sys; d=json.loads(sys.argv[1]); assert d == {"files": [{"path": "tests/boot.test.lua"}, {"path": "tests/sub/other.test.lua"}]}, d' "$out" ||
	fail "list --json: $out"
run env PROVIUM_RERUN_STATE="$T/none.json" "$P" list --json --rerun-failed
expect_rc 0 "list --json with nothing to rerun"
python3 -c 'import json,sys; assert json.loads(sys.argv[1]) == {"files": []}' "$out" ||
	fail "list --json with nothing to rerun is not an empty document: $out"
run "$P" list --tests --fixtures
expect_rc 2 "list --tests --fixtures"
ok "list --tests (text, -k, path::NAME, --json)"

# -- a run narrowed by name does not drop a file from the rerun list ----------
run $L tests
expect_rc 1 "full run (pings fails)"
grep -q boot.test.lua "$PROVIUM_RERUN_STATE" || fail "failing file not in the rerun list"
run $L -k boots tests --rerun-failed
expect_rc 0 "-k boots under --rerun-failed"
grep -q boot.test.lua "$PROVIUM_RERUN_STATE" || fail "a -k run that left the failing test out dropped the file"
run $L tests/boot.test.lua::later
grep -q boot.test.lua "$PROVIUM_RERUN_STATE" || fail "a path::NAME run dropped the file"
ok "runs narrowed by name keep files in the rerun list"
