#!/usr/bin/env bash
# A subcommand is recognised as the first positional word even after
# global flags (`--config x.toml list`, `--vmm local fixture list`), the
# flags before it apply to it, and a directory literally named `list`
# is still runnable as `./list` or after another path.
. "$(dirname "$0")/cli/lib.sh"
W=$T/w
mkdir -p "$W/tests" "$W/list"
cat >"$W/x.toml" <<TOML
[provium]
roots = ["tests"]
cache_dir = "$W/cache"
TOML
echo 'test("a", function(t) end)' >"$W/tests/a.test.lua"
echo 'test("in the list dir", function(t) end)' >"$W/list/b.test.lua"
cd "$W" || exit 1

run "$P" --config x.toml list
expect_rc 0 "--config x.toml list"
expect_in "$out" "tests/a.test.lua" "lists the config's roots"
expect_not_in "$out" "list/b.test.lua" "the config's roots only"
expect_not_in "$out" "PASS" "nothing ran"
ok "list after --config"

run "$P" --vmm local list
expect_rc 0 "--vmm local list"
expect_in "$out" "tests/a.test.lua" "listed"
expect_not_in "$out" "PASS" "nothing ran"
ok "list after --vmm"

run "$P" --config x.toml --vmm local fixture list
expect_rc 0 "--config x.toml --vmm local fixture list"
expect_in "$out" "0 entries" "fixture list ran"
run "$P" --config nope.toml fixture list
expect_rc 2 "fixture list with a missing config"
expect_in "$err" 'nope.toml' "the flag before the subcommand applies to it"
run "$P" --config nope.toml repl default </dev/null
expect_rc 2 "repl with a missing config"
expect_in "$err" 'nope.toml' "repl: the flag before the subcommand applies to it"
ok "fixture and repl after flags"

run "$P" --vmm local --no-preflight ./list
expect_rc 0 "./list"
expect_in "$out" "PASS list/b.test.lua" "a directory named list runs as ./list"
expect_not_in "$out" "tests/a.test.lua" "only that directory"
run "$P" --vmm local --no-preflight tests list
expect_rc 0 "tests list"
expect_in "$out" "PASS list/b.test.lua" "after a path, list is a path"
expect_in "$out" "PASS tests/a.test.lua" "both paths ran"
ok "a directory named list"
