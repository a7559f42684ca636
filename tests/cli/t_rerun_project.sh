#!/usr/bin/env bash
# --rerun-failed state is per project (keyed by the project directory, so
# project B's rerun never uses project A's list), and a completed run
# updates it: failing files join, passing files leave, files the run did
# not select keep their place.
. "$(dirname "$0")/cli/lib.sh"
unset PROVIUM_RERUN_STATE
export HOME=$T/home
L="$P --vmm local --no-preflight"
for p in A B; do
	mkdir -p "$T/$p/tests"
	: >"$T/$p/provium.toml"
	echo 'test("ok", function(t) end)' >"$T/$p/tests/good.test.lua"
	echo 'test("bad", function(t) t:fail("broken") end)' >"$T/$p/tests/bad_$p.test.lua"
	echo 'test("bad2", function(t) t:fail("broken") end)' >"$T/$p/tests/other_$p.test.lua"
done
states() { ls "$HOME/.cache/provium/rerun/" 2>/dev/null; }

cd "$T/A" || exit 1
run $L
expect_rc 1 "A fails"
cd "$T/B" || exit 1
run $L tests/bad_B.test.lua
expect_rc 1 "B fails"
[ "$(states | grep -c .)" -eq 2 ] || fail "expected one state file per project: $(states)"
run $L --rerun-failed
expect_rc 1 "B rerun"
expect_in "$out" "FAIL tests/bad_B.test.lua" "B reruns its own failure"
expect_in "$out" "1 file(s);" "only B's failed file"
cd "$T/A/tests" || exit 1
run $L --rerun-failed
expect_rc 1 "A rerun from a subdirectory"
expect_in "$out" "FAIL tests/bad_A.test.lua" "A reruns its own failures"
expect_in "$out" "FAIL tests/other_A.test.lua" "A reruns its own failures"
expect_not_in "$out" "bad_B" "not project B's"
expect_in "$out" "2 file(s);" "A's two failed files"
ok "two projects keep independent rerun lists"

# fix one of A's files: a --rerun-failed run drops it, the other stays
cd "$T/A" || exit 1
echo 'test("bad", function(t) end)' >tests/bad_A.test.lua
run $L --rerun-failed
expect_rc 1 "A rerun after a fix"
expect_in "$out" "PASS tests/bad_A.test.lua" "fixed file passes"
sa=$HOME/.cache/provium/rerun/$(states | grep '^A-')
grep -q other_A "$sa" || fail "still-failing file left the list: $(cat "$sa")"
grep -q bad_A "$sa" && fail "passing file still in the list: $(cat "$sa")"
run $L --rerun-failed
expect_in "$out" "1 file(s);" "only the still-failing file reruns"
ok "a file that passes leaves the list"

# a run that does not select a listed file keeps it; a run that passes it drops it
run $L --filter good
expect_rc 0 "unrelated run"
grep -q other_A "$sa" || fail "a file the run did not select left the list"
echo 'test("bad2", function(t) end)' >tests/other_A.test.lua
run $L
expect_rc 0 "A all green"
python3 -c 'import json,sys; v=json.load(open(sys.argv[1])); assert v == [], v' "$sa" ||
	fail "list not empty after a green run: $(cat "$sa")"
run $L --rerun-failed
expect_rc 0 "nothing to rerun"
expect_in "$err" "nothing to re-run" "notice"
sb=$HOME/.cache/provium/rerun/$(states | grep '^B-')
grep -q bad_B "$sb" || fail "project A's runs changed project B's list: $(cat "$sb")"
ok "unselected files keep their place; B untouched by A's runs"

# a project that never failed creates no state; PROVIUM_RERUN_STATE overrides
mkdir -p "$T/C/tests"; : >"$T/C/provium.toml"
cp "$T/A/tests/good.test.lua" "$T/C/tests/"
cd "$T/C" || exit 1
run $L
expect_rc 0 "C green"
[ -z "$(states | grep '^C-')" ] || fail "a green project created a state file"
run env PROVIUM_RERUN_STATE="$T/explicit.json" $L "$T/B/tests/bad_B.test.lua"
expect_rc 1 "explicit state run"
grep -q bad_B "$T/explicit.json" || fail "PROVIUM_RERUN_STATE not used"
ok "no state for a green project; PROVIUM_RERUN_STATE overrides"
