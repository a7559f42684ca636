#!/usr/bin/env bash
# Conformance of the runner's CLI surface with the reference: -q shows only
# failing files (status line, failed tests, messages), --filter `a|b` alternation (the CLI
# guide's sharding recipe), a timed-out / crashed file still closes the
# test in flight (test_failed) and its claim (claim_released), and the
# lsp-setup stubs name the documented t methods.
. "$(dirname "$0")/cli/lib.sh"
mk_project
cd "$T/p"

# -q: failing files only (status line, failed tests with their messages,
# as the reference prints them, and their t:log lines) and the summary
run "$P" --vmm local --no-preflight tests -q
expect_rc 1 "-q exit"
[ "$out" = "FAIL tests/sub/bad.test.lua (1 passed, 1 failed, 0 skipped)
    FAIL broken
        tests/sub/bad.test.lua:2: expected failure
        second line
        --- log ---
        a log line

$(tail -n 1 <<<"$out")" ] || fail "-q output is not failing file + summary:
$out"
expect_in "$out" "2 file(s); 3 passed, 1 failed, 1 skipped;" "-q summary"
ok "-q shows only failing files and the summary"

# --filter with | alternatives; empty alternatives ignored
run "$P" list tests --filter 'smoke.test|nothing-here|'
expect_rc 0 "list --filter a|b"
[ "$out" = "tests/smoke.test.lua" ] || fail "list --filter a|b: $out"
run "$P" --vmm local --no-preflight tests --filter "$(printf 'tests/smoke.test.lua\ntests/sub/bad.test.lua\n' | tr '\n' '|')"
expect_rc 1 "sharding recipe"
expect_in "$out" "2 file(s);" "both shard files ran"
run "$P" --vmm local --no-preflight tests --filter 'nomatch'
expect_rc 5 "filter matching nothing"
expect_in "$out" "provium: no *.test.lua files found" "nothing ran"
ok "--filter alternation"

# a file timing out mid-test and a runner dying mid-test
mkdir -p "$T/q"
cat >"$T/q/spin.test.lua" <<'LUA'
test("quick", function(t) end)
test("spin", {area = "x"}, function(t) while true do end end)
test("never", function(t) end)
LUA
cat >"$T/q/die.test.lua" <<'LUA'
provium:claim({memory = "1M"})
test("dies", function(t) os.exit(5) end)
LUA
run "$P" --vmm local --no-preflight "$T/q" --timeout 1 --save-events "$T/ev.bin"
expect_rc 1 "timeout + crash"
expect_in "$out" "TIME $T/q/spin.test.lua (1 passed, 1 failed, 0 skipped)" "timed-out file counts the test in flight"
expect_in "$out" "    FAIL spin" "test in flight reported failed"
expect_in "$out" "FAIL $T/q/die.test.lua (0 passed, 1 failed, 0 skipped)" "crashed file counts the test in flight"
ev=$($DECODE "$T/ev.bin") || fail "event stream does not decode"
python3 - "$T/q" <<PY || fail "event pairing: $ev"
import json, sys
ev = [json.loads(l) for l in '''$ev'''.splitlines()]
started = {(e["payload"]["path"], e["payload"]["name"]) for e in ev if e["kind"] == "test_started"}
ended = [(e["payload"]["path"], e["payload"]["name"]) for e in ev
         if e["kind"] in ("test_passed", "test_failed", "test_skipped")]
assert sorted(started) == sorted(ended), (started, ended)
spin = [e for e in ev if e["kind"] == "test_failed" and e["payload"]["name"] == "spin"][0]["payload"]
assert spin["reason"].startswith("file timed out after"), spin
assert spin["meta"] == {"area": "x"} and spin["console_excerpt"] == "" and "duration_ns" in spin, spin
acq = [e for e in ev if e["kind"] == "claim_acquired"]
rel = [e for e in ev if e["kind"] == "claim_released"]
assert len(acq) == 1 and len(rel) == 1 and rel[0]["payload"] == acq[0]["payload"], (acq, rel)
order = [e["kind"] for e in ev if e["payload"].get("path", "").endswith("die.test.lua")]
assert order.index("claim_released") < order.index("file_completed"), order
PY
ok "timed-out / crashed files close their test and claim events"

# lsp-setup stubs carry the documented t methods and signatures
run "$P" lsp-setup "$T/p"
expect_rc 0 "lsp-setup"
ty=$(cat "$T/p/.provium-meta/types.lua")
for m in assert assert_eq assert_neq assert_contains assert_raises fail skip log; do
	expect_in "$ty" "function TestContext:$m(" "stub for t:$m"
done
for m in vm bridge lab include remove members vm_names bridge_names sub_lab_names claim barrier boot shutdown pause resume snapshot restore pack unpack name; do
	expect_in "$ty" "function Lab:$m(" "stub for lab:$m"
done
expect_in "$ty" "function todo(reason)" "todo signature"
expect_in "$ty" "function wait_until(predicate, opts)" "wait_until signature"
expect_not_in "$ty" "assert_ne(" "no undocumented assert_ne"
if command -v luac5.4 >/dev/null; then
	luac5.4 -p "$T/p/.provium-meta/types.lua" || fail "types.lua does not parse"
fi
ok "lsp-setup stubs"

# `provium list` takes the run's command line: run flags accepted, the
# file selection (--filter, --since, --rerun-failed) applied
run "$P" list --vmm local --no-preflight -q tests
expect_rc 0 "list with run flags"
[ "$out" = "tests/smoke.test.lua
tests/sub/bad.test.lua" ] || fail "list with run flags: $out"
touch -d '2001-01-01' "$T/ref" tests/smoke.test.lua
run "$P" list --since "$T/ref" tests
[ "$out" = "tests/sub/bad.test.lua" ] || fail "list --since: $out"
# bad.test.lua failed above and has not run since (the $T/q run did not
# select it): it is still in the rerun list
run "$P" list --rerun-failed tests
expect_rc 0 "list --rerun-failed"
[ "$out" = "tests/sub/bad.test.lua" ] || fail "list --rerun-failed: $out"
run env PROVIUM_RERUN_STATE="$T/none.json" "$P" list --rerun-failed tests
expect_rc 0 "list --rerun-failed without state"
[ -z "$out" ] || fail "list --rerun-failed without state listed: $out"
run "$P" list --bogus
expect_rc 2 "list --bogus"
ok "list applies the run's selection"
