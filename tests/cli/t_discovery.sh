#!/usr/bin/env bash
# Conformance of discovery with the reference: only *.test.lua files run
# (helpers and *.fixture.lua never do, also when named on the command
# line), the walk is recursive, --filter is a substring of the path (a
# filtered-out failing file does not fail the run), files run and render
# in sorted order whatever order they are given in (--json renders in
# that order; human output in completion order), and a failing file
# does not taint the others.
. "$(dirname "$0")/cli/lib.sh"
W=$T/w
mkdir -p "$W"
cd "$W"
: >provium.toml
L="$P --vmm local --no-preflight --config $W/provium.toml"

mkdir only-helpers
echo "-- not a test" >only-helpers/helper.lua
echo "-- nor this" >only-helpers/config.lua
echo "return provium:vm('a', 'default'):snapshot()" >only-helpers/x.fixture.lua
run $L only-helpers
expect_rc 5 "no test files"
expect_in "$out" "no *.test.lua files found" "helpers and fixtures are not tests"
run $L only-helpers/x.fixture.lua only-helpers/helper.lua
expect_rc 5 "named non-test files"
expect_in "$out" "no *.test.lua files found" "named helpers and fixtures are not run"
ok "only *.test.lua files run"

mkdir -p tree/nested/sub
echo "test('nested', function(t) end)" >tree/nested/sub/deep.test.lua
echo "test('a', function(t) t:assert(true) end)" >tree/alpha.test.lua
echo "test('b', function(t) t:fail('nope') end)" >tree/beta.test.lua
echo "test('c', function(t) end)" >tree/gamma.test.lua
run $L tree
expect_rc 1 "whole tree"
expect_in "$out" "PASS tree/nested/sub/deep.test.lua (1 passed, 0 failed, 0 skipped)" "recursive walk"
# one status line per file, a failing file taints no other (human output
# is in completion order: compared sorted; the order is checked on --json)
lines=$(grep -E '^(PASS|FAIL) ' <<<"$out" | cut -d' ' -f1-2 | sort -k2)
[ "$lines" = "PASS tree/alpha.test.lua
FAIL tree/beta.test.lua
PASS tree/gamma.test.lua
PASS tree/nested/sub/deep.test.lua" ] || fail "order / statuses: $lines"
ok "recursive, sorted, failures isolated"

run $L --filter alpha tree
expect_rc 0 "--filter alpha (the failing beta is filtered out)"
expect_in "$out" "alpha.test.lua" "alpha ran"
expect_not_in "$out" "beta.test.lua" "beta filtered out"
expect_in "$out" "1 file(s);" "only alpha"
ok "--filter is a substring match"

run $L tree/gamma.test.lua tree/alpha.test.lua
expect_rc 0 "explicit files"
[ "$(grep -E '^PASS ' <<<"$out" | cut -d' ' -f2 | sort)" = "tree/alpha.test.lua
tree/gamma.test.lua" ] || fail "explicit files: $out"
run $L --json tree/gamma.test.lua tree/alpha.test.lua
[ "$(python3 -c 'import json,sys; print(" ".join(json.loads(l)["path"] for l in sys.stdin if l.strip()))' <<<"$out")" = \
	"tree/alpha.test.lua tree/gamma.test.lua" ] || fail "--json order: $out"
ok "explicit files run in sorted order"
