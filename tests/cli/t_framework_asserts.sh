#!/usr/bin/env bash
# Failing-assertion message shapes, chunk errors (runtime and syntax) and
# duplicate test names, seen from the CLI's human output. Case files live
# in tests/cli/framework/*.case.lua (not *.test.lua: no discovery run of
# the repository picks up these deliberate failures).
. "$(dirname "$0")/cli/lib.sh"
CASES=$ROOT/tests/cli/framework

# case_run NAME [ARGS...]: run framework/NAME.case.lua alone as NAME.test.lua
# with -v; sets rc/out/err.
# expect_block TEXT WHAT: TEXT (possibly several lines) occurs verbatim in
# $out. Unlike expect_in (grep -F, where a newline splits the needle into
# alternatives), the whole block must match in one piece.
expect_block() {
	[[ "$out" == *"$1"* ]] || fail "$2: missing block
$1
in:
$out"
}

case_run() {
	rm -rf "$T/c" && mkdir -p "$T/c"
	cp "$CASES/$1.case.lua" "$T/c/$1.test.lua"
	(cd "$T/c" && run "$P" --vmm local --no-preflight -v "$1.test.lua" "${@:2}"
	 printf '%s\n' "$rc" >"$T/rc"; printf '%s' "$out" >"$T/o"; printf '%s' "$err" >"$T/e")
	rc=$(cat "$T/rc"); out=$(cat "$T/o"); err=$(cat "$T/e")
}

case_run asserts
expect_rc 1 "failing assertions"
expect_in "$out" "FAIL asserts.test.lua (1 passed, 14 failed, 0 skipped)" "file line"
# Assertion failures are the documented shapes behind the position of the
# line that called the assertion (like error(msg, 2)), strings quoted and
# escaped, tables compared by value with the differing key paths below.
# Each block is matched whole, so the message line is exact. A failure
# swallowed by pcall is reported by its bare message.
expect_block "    FAIL eq
        asserts.test.lua:2: numbers: 1 ~= 2
" "assert_eq: <msg>: <a> ~= <b>"
expect_block '    FAIL neq
        asserts.test.lua:3: "a" == "a"
' "assert_neq without msg: just <a> == <b>, strings quoted"
expect_block '    FAIL contains
        asserts.test.lua:4: search: "needle" not found in: "haystack"
' "assert_contains"
expect_block "    FAIL contains type
        asserts.test.lua:5: assert_contains: haystack (argument 1) must be a string, got nil (slice 2 limit: both arguments must be strings; use tostring)
" "assert_contains type check"
expect_block "    FAIL plain
        asserts.test.lua:6: assertion failed
" "assert default message"
expect_block "    FAIL raises
        asserts.test.lua:7: boom expected: expected to raise
" "assert_raises"
expect_block "    FAIL explicit
        asserts.test.lua:8: explicit failure (t:fail)
" "t:fail default"
expect_block "    FAIL sticky
        swallowed
" "sticky failure through pcall"
expect_block "    FAIL multi-line
        asserts.test.lua:12: first line
        second line
" "multi-line message"
# Errors raised by user code keep Lua's file:line.
expect_block "    FAIL user error
        asserts.test.lua:9: user boom
" "user error keeps file:line"
expect_block "    FAIL runtime error
        asserts.test.lua:10: attempt to index a nil value (local 'x')
" "runtime error keeps file:line"
expect_block '    FAIL table eq
        asserts.test.lua:14: cfg: {hosts = {"a", "b"}, port = 80} ~= {hosts = {"a", "c"}, port = 8080}
          hosts[2]: "b" ~= "c"
          port: 80 ~= 8080
' "assert_eq on tables: by value, the differing paths"
expect_block '    FAIL lines eq
        asserts.test.lua:15: "ok\nready\n" ~= "ok\nrady\n"
          first difference at line 2, column 2:
            left:  "ready\n"
            right: "rady\n"
' "assert_eq on multi-line strings: quoted, first differing line"
expect_block '    FAIL run assert_ok
        asserts.test.lua:17: command `echo to-out; exit 3` failed: status exited, exit code 3
        stdout:
        to-out
' "vm:run():assert_ok() with file:line"
expect_not_in "$out" "table: 0x" "no table identities"
expect_in "$out" "    PASS passes" "tests after failures still run"
expect_not_in "$out" "framework" "no framework-internal positions"
ok "assertion messages"

case_run chunk_error
expect_rc 1 "chunk error"
expect_in "$out" "FAIL chunk_error.test.lua (0 passed, 0 failed, 0 skipped)" "file fails, no test runs"
expect_in "$out" "chunk_error.test.lua:3: attempt to index a nil value (local 'cfg')" "chunk error with file:line"
expect_not_in "$out" "never runs" "no test of a failed chunk runs"
ok "chunk error"

case_run syntax_error
expect_rc 1 "syntax error"
expect_in "$out" "syntax_error.test.lua:2: unexpected symbol near '='" "syntax error with file:line"
ok "syntax error"

case_run duplicate
expect_rc 1 "duplicate name"
expect_in "$out" "duplicate.test.lua:2: test: duplicate name \`foo\` in this file" "duplicate name at registration"
ok "duplicate test name"
