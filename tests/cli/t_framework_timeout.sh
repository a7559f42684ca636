#!/usr/bin/env bash
# Per-test timeouts stop busy Lua loops (even ones that pcall-swallow the
# timeout) and blocking sleeps; later tests still run. A Lua os.exit()
# in a test is not swallowed: the file is reported as crashed.
. "$(dirname "$0")/cli/lib.sh"
CASES=$ROOT/tests/cli/framework

case_run() {
	rm -rf "$T/c" && mkdir -p "$T/c"
	cp "$CASES/$1.case.lua" "$T/c/$1.test.lua"
	(cd "$T/c" && run "$P" --vmm local --no-preflight -v --timeout 60 "$1.test.lua" "${@:2}"
	 printf '%s\n' "$rc" >"$T/rc"; printf '%s' "$out" >"$T/o"; printf '%s' "$err" >"$T/e")
	rc=$(cat "$T/rc"); out=$(cat "$T/o"); err=$(cat "$T/e")
}

case_run timeout
expect_rc 1 "timeouts"
expect_in "$out" "FAIL timeout.test.lua (1 passed, 4 failed, 0 skipped)" "counts"
expect_in "$out" "    FAIL busy loop
        test timed out after 0.3s" "meta.timeout number stops a busy loop"
expect_in "$out" "    FAIL swallowing busy loop
        test timed out after 0.3s" "provium.timeout default; pcall cannot swallow it"
expect_in "$out" "    FAIL sleeps past the deadline
        test timed out after 0.2s" "duration string; sleep cut short"
expect_in "$out" "    FAIL swallows and returns
        test timed out after 0.2s" "a body that swallows and returns still fails"
expect_in "$out" "    PASS after the timeouts" "the file carries on"
expect_not_in "$out" "timed_out" "the file itself did not time out"
ok "per-test timeouts"

case_run os_exit
expect_rc 1 "os.exit"
expect_in "$out" "FAIL os_exit.test.lua" "file fails"
expect_in "$out" "status 3" "exit status reported"
expect_in "$out" "    PASS first" "earlier test reported"
expect_not_in "$out" "never reached" "no test after the exit"
ok "os.exit crashes the file"
