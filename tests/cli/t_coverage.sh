#!/usr/bin/env bash
# --coverage: events buffered to a temp file (or the --save-events file),
# `provium-coverage --from FILE` run from PATH afterwards, its failure folded
# into the exit status, the temp file and marker removed, exit 2 naming the
# tool when it is not on PATH.
. "$(dirname "$0")/cli/lib.sh"
mk_project
mkdir -p "$T/bin" "$T/tmp"
cat >"$T/bin/provium-coverage" <<'SH'
#!/bin/sh
# fake provium-coverage: record how it was called and what it saw
{
	echo "args: $*"
	echo "tmp: ${PROVIUM_COVERAGE_TMP-unset}"
	echo "marker: ${PROVIUM_COVERAGE_MARKER-unset}"
	echo "user: ${PROVIUM_COVERAGE_USER_FILE-unset}"
	[ -s "$2" ] && echo "events: present"
	[ -n "${PROVIUM_COVERAGE_MARKER-}" ] && [ -f "$PROVIUM_COVERAGE_MARKER" ] && echo "marker: present"
} >>"$COV_LOG"
exit "${COV_RC:-0}"
SH
chmod +x "$T/bin/provium-coverage"
export COV_LOG=$T/cov.log TMPDIR=$T/tmp
cd "$T/p"

# passing run, tool exits 0 -> exit 0, temp file gone afterwards
: >"$COV_LOG"
run env PATH="$T/bin:$PATH" "$P" --vmm local --no-preflight tests/smoke.test.lua --coverage
expect_rc 0 "--coverage on a passing run"
expect_in "$(cat "$COV_LOG")" "args: --from $T/tmp/provium-coverage-" "tool called with --from the temp file"
expect_in "$(cat "$COV_LOG")" "events: present" "temp file holds the events when the tool runs"
expect_in "$(cat "$COV_LOG")" "marker: present" "marker exists while the tool runs"
expect_in "$(cat "$COV_LOG")" "tmp: $T/tmp/provium-coverage-" "PROVIUM_COVERAGE_TMP names the temp file"
expect_in "$(cat "$COV_LOG")" "user: unset" "no user file"
[ -z "$(ls -A "$T/tmp" | grep provium-coverage)" ] || fail "temp files left behind: $(ls -A "$T/tmp")"
ok "temp-file coverage run"

# the tool fails -> exit 1 even though every test passed
COV_RC=3 run env PATH="$T/bin:$PATH" "$P" --vmm local --no-preflight tests/smoke.test.lua --coverage
expect_rc 1 "coverage failure folds into the exit code"
expect_in "$err" "provium-coverage" "coverage failure named"
[ -z "$(ls -A "$T/tmp" | grep provium-coverage)" ] || fail "temp files left after a failed hook"
ok "coverage failure -> exit 1"

# explicit --save-events: that file is used and kept
: >"$COV_LOG"
run env PATH="$T/bin:$PATH" "$P" --vmm local --no-preflight tests --coverage --save-events "$T/ev.msgpack"
expect_rc 1 "failing run with --coverage"
expect_in "$(cat "$COV_LOG")" "args: --from $T/ev.msgpack" "tool reads the --save-events file"
expect_in "$(cat "$COV_LOG")" "user: $T/ev.msgpack" "PROVIUM_COVERAGE_USER_FILE set"
[ -s "$T/ev.msgpack" ] || fail "--save-events file deleted by the coverage hook"
$DECODE "$T/ev.msgpack" | grep -q '"kind": "file_completed"' || fail "saved events incomplete"
ok "--coverage reuses and keeps --save-events"

# --json: the tool's stdout must not pollute the JSON lines
cat >"$T/bin/provium-coverage" <<'SH'
#!/bin/sh
echo "coverage report"
SH
run env PATH="$T/bin:$PATH" "$P" --vmm local --no-preflight tests/smoke.test.lua --coverage --json
expect_rc 0 "--coverage --json"
expect_not_in "$out" "coverage report" "coverage output kept off the JSON stream"
expect_in "$err" "coverage report" "coverage output on stderr under --json"
ok "--coverage --json"

# not on PATH -> exit 2 naming it, nothing run
run env PATH="/usr/bin:/bin" "$P" --vmm local --no-preflight tests/smoke.test.lua --coverage
expect_rc 2 "missing provium-coverage"
expect_in "$err" "provium-coverage" "message names the tool"
expect_not_in "$out" "PASS" "no run without the tool"
ok "missing provium-coverage -> exit 2"
