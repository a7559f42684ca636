#!/usr/bin/env bash
# Usage, help, version, mutual exclusions, config and path errors: exit codes and messages.
. "$(dirname "$0")/cli/lib.sh"
cd "$T"

run "$P" --help;            expect_rc 0 "--help"; expect_in "$out" "usage: provium" "--help text"
run "$P" help list;         expect_rc 0 "help list"; expect_in "$out" "provium list" "help list text"
run "$P" lsp-setup --help;  expect_rc 0 "lsp-setup --help"; expect_in "$out" "lsp-setup" "lsp-setup help"
run "$P" --version;         expect_rc 0 "--version"; expect_in "$out" "provium " "--version text"
ok "help and version"

run "$P" -v -q;                     expect_rc 2 "-v -q"; expect_in "$err" "mutually exclusive" "-v -q message"
run "$P" --json --events-stdout;    expect_rc 2 "--json --events-stdout"; expect_in "$err" "provium: " "prefix"
expect_in "$err" "mutually exclusive" "--json/--events-stdout message"
run "$P" --no-such-flag;            expect_rc 2 "unknown flag"; expect_in "$err" "--no-such-flag" "unknown flag named"
run "$P" --timeout soon;            expect_rc 2 "bad --timeout"
run "$P" --vmm kvm;                 expect_rc 2 "bad --vmm"
run "$P" --mem lots;                expect_rc 2 "bad --mem"
run "$P" --filter;                  expect_rc 2 "missing value"
ok "usage errors exit 2"

run "$P" --config "$T/nope.toml" --vmm local;   expect_rc 2 "missing explicit config"
expect_in "$err" "provium: " "config error prefix"; expect_in "$err" "nope.toml" "config error names the file"
printf '[provium\nroots = 1\n' >"$T/bad.toml"
run "$P" --config "$T/bad.toml" --vmm local;    expect_rc 2 "unparsable config"
expect_in "$err" "bad.toml" "parse error names the file"
ok "config errors exit 2"

mkdir -p "$T/empty"; cd "$T/empty"
run "$P" --vmm local --no-preflight;  expect_rc 0 "no provium.toml, no tests"
expect_in "$out" "provium: no *.test.lua files found" "empty notice"
run "$P" --vmm local does-not-exist;  expect_rc 2 "missing path"; expect_in "$err" "does-not-exist" "missing path named"
run "$P" --vmm local --since "$T/no-ref";  expect_rc 0 "missing --since reference does not narrow"
expect_in "$err" "no-ref" "--since reference named"
ok "paths and --since reference"

run "$P" fixture;       expect_rc 2 "fixture"; expect_in "$err" "missing subcommand" "fixture usage"
run "$P" repl x --vmm local </dev/null; expect_rc 2 "repl"; expect_in "$err" "unknown profile \`x\`" "repl message"
ok "fixture usage / repl usage errors"
