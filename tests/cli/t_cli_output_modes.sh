#!/usr/bin/env bash
# Conformance of the run's CLI output with the reference implementation's
# own CLI tests: the empty-selection notice (plain and --json), the
# --rerun-failed notice without state, --coverage without provium-coverage,
# --cpu-overcommit clamp notices, --help / --version, a missing --since
# reference, -q (failing files with their failed tests and messages),
# --fail-fast (output stops after the first failed file), the summary's
# "N file(s) errored", --json (one object per file) and a timed-out file.
. "$(dirname "$0")/cli/lib.sh"
W=$T/w
mkdir -p "$W"
cd "$W"
: >provium.toml
L="$P --vmm local --no-preflight --config $W/provium.toml"

# -- nothing to run ------------------------------------------------------
mkdir empty
echo "-- only a helper" >empty/helper.lua
run $L empty
expect_rc 5 "empty selection"
[ "$out" = "provium: no *.test.lua files found" ] || fail "empty notice: [$out]"
run $L --json empty
expect_rc 5 "empty selection --json"
python3 - "$out" <<'PY' || fail "--json empty selection is not one no_files object: [$out]"
import json, sys
lines = [l for l in sys.argv[1].splitlines() if l.strip()]
assert len(lines) == 1, lines
v = json.loads(lines[0])
assert v == {"type": "no_files", "message": "no *.test.lua files found"}, v
PY
ok "empty selection: notice on stdout, one JSON object under --json"

# -- --rerun-failed with no state ----------------------------------------
run env PROVIUM_RERUN_STATE="$T/none.json" $L --rerun-failed empty
expect_rc 0 "--rerun-failed without state"
expect_in "$err" "no prior failure state at \`$T/none.json\` — nothing to re-run" "rerun notice"
expect_not_in "$out" "PASS" "nothing ran"
ok "--rerun-failed without state"

# -- --coverage without provium-coverage on PATH --------------------------
echo "test('x', function(t) end)" >dummy.test.lua
run env PATH=/no/such/dir "$P" --vmm local --no-preflight --config "$W/provium.toml" --coverage dummy.test.lua
[ "$rc" -ne 0 ] || fail "--coverage without the tool exited 0"
expect_in "$err" "provium-coverage" "names the tool"
expect_in "$err" "install" "says how to fix it"
ok "--coverage without provium-coverage"

# -- --cpu-overcommit: clamp notices only when clamped --------------------
run $L --cpu-overcommit 0.1 dummy.test.lua
expect_rc 0 "overcommit 0.1"
expect_in "$err" "provium: --cpu-overcommit 0.1 clamped to 0.5" "below range"
run $L --cpu-overcommit 100 dummy.test.lua
expect_in "$err" "provium: --cpu-overcommit 100 clamped to 8" "above range"
run $L --cpu-overcommit 1.5 dummy.test.lua
expect_not_in "$err" "clamped" "in range"
run $L dummy.test.lua
expect_not_in "$err" "clamped" "default"
ok "--cpu-overcommit clamp notices"

# -- --help and --version -------------------------------------------------
run "$P" --help
expect_rc 0 "--help"
for flag in --json --watch --coverage --filter; do expect_in "$out" "$flag" "--help mentions $flag"; done
run "$P" --version
expect_rc 0 "--version"
[ -n "$out" ] || fail "--version printed nothing"
ok "--help / --version"

# -- --since with a missing reference: the run is not narrowed ------------
run $L --since "$T/no-such-ref" dummy.test.lua
expect_rc 0 "--since missing reference"
expect_in "$out" "PASS dummy.test.lua" "file still ran"
expect_in "$err" "no-such-ref" "reference named in the notice"
ok "--since with a missing reference"

# -- -q: failing files, their failed tests and messages; nothing else -----
mkdir q
# each claims a whole CPU: under --cpus 1 they run one after the other
printf '%s\n' 'provium:claim({cpus = 1})' 'test("nope", function(t) t:fail("boom") end)' >q/01_fails.test.lua
printf '%s\n' 'provium:claim({cpus = 1})' 'test("ok", function(t) t:assert(true) end)' >q/02_passes.test.lua
run $L -q q
expect_rc 1 "-q run"
expect_in "$out" "FAIL q/01_fails.test.lua (0 passed, 1 failed, 0 skipped)" "-q status line"
expect_in "$out" "    FAIL nope" "-q failed test"
expect_in "$out" "        q/01_fails.test.lua:2: boom" "-q failure message"
expect_not_in "$out" "02_passes" "-q hides passing files"
expect_in "$out" "2 file(s); 1 passed, 1 failed, 0 skipped;" "-q summary"
ok "-q"

# -- --fail-fast: nothing after the first failed file is rendered ---------
# (human output is in completion order: one CPU makes 01 finish first)
run $L --cpus 1 --fail-fast q
expect_rc 1 "--fail-fast"
expect_in "$out" "01_fails" "first file rendered"
expect_in "$out" "boom" "its message"
expect_not_in "$out" "02_passes" "second file not rendered"
expect_in "$out" "1 file(s); 0 passed, 1 failed, 0 skipped;" "summary of what was rendered"
run $L --fail-fast --json q
expect_rc 1 "--fail-fast --json"
[ "$(grep -c . <<<"$out")" -eq 1 ] || fail "--fail-fast --json: one line expected: $out"
expect_in "$out" '"path":"q/01_fails.test.lua"' "--json first file"
ok "--fail-fast"

# -- --json: one object per file with the documented keys -----------------
run $L --json q
expect_rc 1 "--json"
python3 - "$out" <<'PY' || fail "--json lines: $out"
import json, sys
lines = [l for l in sys.argv[1].splitlines() if l.strip()]
assert len(lines) == 2, lines
for l in lines:
    v = json.loads(l)
    for k in ("path", "tests", "passed", "timeout", "chunk_error"):
        assert k in v, (k, v)
assert json.loads(lines[0])["passed"] is False and json.loads(lines[1])["passed"] is True
PY
ok "--json"

# -- a file that errored (chunk error, timeout) is counted in the summary -
mkdir e
echo 'error("top-level boom")' >e/chunk.test.lua
echo 'test("spin", function(t) while true do end end)' >e/spin.test.lua
echo 'test("fine", function(t) end)' >e/fine.test.lua
run $L --timeout 2s e
expect_rc 1 "errored files"
expect_in "$out" "FAIL e/chunk.test.lua" "chunk error file fails"
expect_in "$out" "top-level boom" "chunk error message"
expect_in "$out" "TIME e/spin.test.lua" "timed-out file"
expect_in "$out" "3 file(s); 1 passed, 1 failed, 0 skipped, 2 file(s) errored; " "errored count"
run $L e/fine.test.lua
expect_not_in "$out" "errored" "no errored part on a clean run"
run $L --json --timeout 2s e/spin.test.lua
expect_in "$out" '"timeout":"timed_out"' "--json timed_out"
expect_in "$out" '"passed":false' "--json timed-out file did not pass"
ok "errored files"
