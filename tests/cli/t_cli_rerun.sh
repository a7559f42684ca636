#!/usr/bin/env bash
# --rerun-failed state file lifecycle and --since selection.
. "$(dirname "$0")/cli/lib.sh"
mk_project
cd "$T/p"

run "$P" --vmm local --no-preflight tests --rerun-failed
expect_rc 0 "no state"; expect_in "$err" "rerun" "notice without state"
[ ! -e "$PROVIUM_RERUN_STATE" ] || fail "state created by a no-op"
ok "--rerun-failed without state"

run "$P" --vmm local --no-preflight tests
expect_rc 1 "failing run"
[ -s "$PROVIUM_RERUN_STATE" ] || fail "no state written after a failing run"
grep -q "bad.test.lua" "$PROVIUM_RERUN_STATE" || fail "failing file not in state: $(cat "$PROVIUM_RERUN_STATE")"
grep -q "smoke.test.lua" "$PROVIUM_RERUN_STATE" && fail "passing file in state"
run "$P" --vmm local --no-preflight tests --rerun-failed
expect_rc 1 "rerun"; expect_in "$out" "1 file(s);" "rerun runs only the failed file"
expect_not_in "$out" "smoke.test.lua" "rerun skips passing file"
ok "state written and used"

cp "$PROVIUM_RERUN_STATE" "$T/state.before"
run "$P" --vmm local --no-preflight tests/smoke.test.lua
expect_rc 0 "clean run"
cmp -s "$PROVIUM_RERUN_STATE" "$T/state.before" || fail "a clean run changed the state file"
ok "clean run leaves state alone"

touch -d '2001-01-01' tests/smoke.test.lua tests/sub/bad.test.lua
touch -d '2002-01-01' "$T/ref"
touch -d '2003-01-01' tests/smoke.test.lua
run "$P" --vmm local --no-preflight tests --since "$T/ref"
expect_rc 0 "--since"; expect_in "$out" "PASS tests/smoke.test.lua" "--since newer file"
expect_in "$out" "1 file(s);" "--since skips the older file"
ok "--since"
