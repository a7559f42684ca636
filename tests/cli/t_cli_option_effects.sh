#!/usr/bin/env bash
# Conformance with the CLI / events references: the rerun state is a JSON
# array of canonical paths, lsp-setup's refusal is not a failure, a clamped
# --cpu-overcommit is announced and rounds, PROVIUM_TEST_FILTER carries the
# flags under their names, --coverage with --save-events names that file in
# PROVIUM_COVERAGE_TMP, and a chunk error completes the file as `crashed`.
. "$(dirname "$0")/cli/lib.sh"
mk_project
cd "$T/p"
L="$P --vmm local --no-preflight"

# -- rerun state: a JSON array of canonical paths ------------------------
run $L tests
expect_rc 1 "failing run"
python3 - "$PROVIUM_RERUN_STATE" "$(cd tests/sub && pwd -P)/bad.test.lua" <<'PY' || fail "rerun state shape: $(cat "$PROVIUM_RERUN_STATE")"
import json, sys
v = json.load(open(sys.argv[1]))
assert v == [sys.argv[2]], v
PY
ok "rerun state is an array of canonical paths"

# a hand-written state (relative, non-canonical entry) selects too
echo '["tests/./sub/../smoke.test.lua"]' >"$PROVIUM_RERUN_STATE"
run $L tests --rerun-failed
expect_rc 0 "hand-written state"
expect_in "$out" "PASS tests/smoke.test.lua" "state entry selects its file"
expect_in "$out" "1 file(s);" "only that file"
# an empty failed set is "no prior failure state": a notice, exit 0
echo '[]' >"$PROVIUM_RERUN_STATE"
run $L tests --rerun-failed
expect_rc 0 "empty state"
expect_in "$err" "nothing to re-run" "notice for an empty state"
expect_not_in "$out" "PASS" "nothing ran"
ok "rerun state read back"

# -- lsp-setup over an existing .luarc.json: notice, exit 0 --------------
echo '{"mine": true}' >"$T/p/.luarc.json"
run "$P" lsp-setup "$T/p"
expect_rc 0 "lsp-setup refusing to overwrite"
expect_in "$out" "already exists" "refusal explained"
expect_in "$out" "workspace.library" "snippet printed"
grep -q mine "$T/p/.luarc.json" || fail ".luarc.json replaced without --force"
rm -f "$T/p/.luarc.json"; rm -rf "$T/p/.provium-meta"
ok "lsp-setup keeps .luarc.json and exits 0"

# -- --cpu-overcommit: clamp announced; cpus x factor rounded -------------
rm -f "$T/ev" # --save-events appends
run $L tests/smoke.test.lua --cpus 2 --cpu-overcommit 100 --save-events "$T/ev"
expect_rc 0 "clamped overcommit run"
expect_in "$err" "--cpu-overcommit 100 clamped to 8" "clamp notice"
pool_cpus() {
	$DECODE "$T/ev" | python3 -c '
import json, sys
for l in sys.stdin:
    e = json.loads(l)
    if e["kind"] == "pool_state":
        p = e["payload"]; print(p["used"]["cpus"] + p["available"]["cpus"]); break'
}
[ "$(pool_cpus)" = 16 ] || fail "pool of 2 cpus x 8: $(pool_cpus)"
rm -f "$T/ev" # --save-events appends
run $L tests/smoke.test.lua --cpus 3 --cpu-overcommit 1.5 --save-events "$T/ev"
expect_not_in "$err" "clamped" "no notice in range"
[ "$(pool_cpus)" = 5 ] || fail "3 cpus x 1.5 should round to 5: $(pool_cpus)"
ok "--cpu-overcommit"

# -- PROVIUM_TEST_FILTER: one member per flag -----------------------------
cat >"$T/p/envf.test.lua" <<'LUA'
test("env", {tags = {"a"}, k = "v=w"}, function(t)
	local f = json.decode(os.getenv("PROVIUM_TEST_FILTER"))
	t:assert_eq(f.include_slow, true)
	t:assert_eq(f.tag[1], "a")
	t:assert_eq(f.no_tag[1], "b")
	t:assert_eq(f.tag_meta[1].key, "k")
	t:assert_eq(f.tag_meta[1].value, "v=w")
	t:assert_eq(f.no_tag_meta[1].key, "x")
end)
LUA
run $L envf.test.lua --include-slow --tag a --no-tag b --tag-meta k=v=w --no-tag-meta x=y -v
expect_rc 0 "PROVIUM_TEST_FILTER shape"
expect_in "$out" "1 passed" "env test ran"
ok "PROVIUM_TEST_FILTER"

# -- --coverage + --save-events: PROVIUM_COVERAGE_TMP names that file ----
mkdir -p "$T/bin"
cat >"$T/bin/provium-coverage" <<'SH'
#!/bin/sh
echo "tmp=${PROVIUM_COVERAGE_TMP-unset} user=${PROVIUM_COVERAGE_USER_FILE-unset}" >"$COV_LOG"
SH
chmod +x "$T/bin/provium-coverage"
COV_LOG=$T/cov.log run env COV_LOG="$T/cov.log" PATH="$T/bin:$PATH" $L tests/smoke.test.lua \
	--coverage --save-events "$T/mine.msgpack"
expect_rc 0 "coverage with --save-events"
expect_in "$(cat "$T/cov.log")" "tmp=$T/mine.msgpack" "PROVIUM_COVERAGE_TMP is the --save-events file"
expect_in "$(cat "$T/cov.log")" "user=$T/mine.msgpack" "PROVIUM_COVERAGE_USER_FILE set"
[ -s "$T/mine.msgpack" ] || fail "--save-events file removed"
ok "--coverage reuses --save-events"

# -- a chunk error completes the file as `crashed` -------------------------
cat >"$T/p/chunk.test.lua" <<'LUA'
test("never", function(t) end)
error("boom at the top")
LUA
rm -f "$T/ev" # --save-events appends
run $L chunk.test.lua --save-events "$T/ev"
expect_rc 1 "chunk error"
expect_in "$out" "FAIL chunk.test.lua (0 passed, 0 failed, 0 skipped)" "status line"
$DECODE "$T/ev" | grep '"file_completed"' | grep -q '"status": "crashed"' ||
	fail "chunk error file_completed: $($DECODE "$T/ev" | grep file_completed)"
run $L chunk.test.lua --json
expect_in "$out" '"passed":false' "json passed false"
expect_in "$out" 'boom at the top' "json chunk_error"
ok "chunk error -> crashed"

# -- --json: stdout holds only the JSON lines, even when a test prints ----
cat >"$T/p/noisy.test.lua" <<'LUA'
print("top-level noise")
test("a", function(t) print("test noise"); io.write("raw noise\n") end)
LUA
run $L noisy.test.lua --json
expect_rc 0 "noisy --json run"
python3 -c 'import json,sys
for l in sys.stdin: json.loads(l)' <<<"$out" || fail "stdout is not JSON lines: $out"
expect_in "$err" "test noise" "a test's print goes to stderr"
ok "--json keeps stdout parseable"

# -- a claim larger than the whole pool: the file fails as `crashed` -------
cat >"$T/p/huge.test.lua" <<'LUA'
provium:claim({memory = "64G", cpus = 1})
test("never", function(t) end)
LUA
rm -f "$T/ev" # --save-events appends
run $L huge.test.lua --mem 1G --save-events "$T/ev"
expect_rc 1 "claim over the pool"
expect_in "$out" "whole pool" "pool message"
$DECODE "$T/ev" | grep '"file_completed"' | grep -q '"status": "crashed"' ||
	fail "over-pool file_completed: $($DECODE "$T/ev" | grep file_completed)"
ok "claim over the pool -> crashed"

# -- a config root that does not exist is skipped (worked-example config) --
mkdir -p "$T/r/tests"
printf 'test("x", function(t) end)\n' >"$T/r/tests/x.test.lua"
printf '[provium]\nroots = ["tests", "internal-tests"]\n' >"$T/r/provium.toml"
(cd "$T/r" && run $L && expect_rc 0 "missing config root" && expect_in "$out" "PASS tests/x.test.lua" "existing root scanned" &&
	run "$P" list && expect_rc 0 "list with a missing root" && expect_in "$out" "tests/x.test.lua" "list" &&
	run $L internal-tests && expect_rc 2 "a missing CLI path is still an error") || exit 1
ok "missing config root skipped"

# -- --json is in discovery order, human output in completion order --------
mkdir -p "$T/o"
cat >"$T/o/a.test.lua" <<LUA
test("waits for b", function(t)
	local t0 = os.time()
	while not io.open("$T/o/b.done") and os.time() - t0 < 20 do end
	t:assert(io.open("$T/o/b.done"), "b never finished")
	-- b's runner still has to report and exit after writing b.done: give
	-- it 2 s more so b really completes first
	local t1 = os.time()
	while os.time() - t1 < 2 do end
end)
LUA
cat >"$T/o/b.test.lua" <<LUA
test("b", function(t) io.open("$T/o/b.done", "w"):close() end)
LUA
rm -f "$T/ev" # --save-events appends
(cd "$T/o" && export PROVIUM_NO_PSI=1 && run $L --cpus 2 --mem 4G . --json --save-events "$T/ev" && expect_rc 0 "ordered run" &&
	[ "$(python3 -c 'import json,sys; print(" ".join(json.loads(l)["path"] for l in sys.stdin))' <<<"$out")" = "a.test.lua b.test.lua" ] ||
	fail "json lines not in discovery order: $out"
[ "$($DECODE "$T/ev" | grep -o '"file_completed", "payload": {[^}]*"path": "[ab].test.lua"' | grep -o '[ab].test.lua' | tr '\n' ' ')" = "b.test.lua a.test.lua " ] ||
	fail "b should have completed first: $($DECODE "$T/ev" | grep file_completed)"
rm -f b.done; run $L --cpus 2 --mem 4G .; expect_rc 0 "ordered human run"
[ "$(grep -E '^(PASS|FAIL)' <<<"$out" | cut -d' ' -f2 | tr '\n' ' ')" = "b.test.lua a.test.lua " ] ||
	fail "human output not in completion order: $out") || exit 1
ok "--json in discovery order, human output in completion order"
