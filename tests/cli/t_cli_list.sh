#!/usr/bin/env bash
# `provium list`, `list --fixtures`, `lsp-setup`.
. "$(dirname "$0")/cli/lib.sh"
mk_project
mkdir -p "$T/p/tests/fixtures"
echo 'return nil' >"$T/p/tests/fixtures/base.fixture.lua"
echo 'return 1' >"$T/p/tests/helper.lua"
cd "$T/p"

run "$P" list tests
expect_rc 0 "list"
[ "$out" = "tests/smoke.test.lua
tests/sub/bad.test.lua" ] || fail "list output: $out"
run "$P" list --fixtures tests
expect_rc 0 "list --fixtures"
[ "$out" = "fixtures/base" ] || fail "list --fixtures output: $out"
ok "list"

run "$P" lsp-setup "$T/p"
expect_rc 0 "lsp-setup"
head -n 1 "$T/p/.provium-meta/types.lua" | grep -q -- '---@meta' || fail "types.lua has no ---@meta"
for g in "function test(" "function todo(" "function wait_until(" "json = " "TestContext" "Lab" "VM"; do
	grep -qF -- "$g" "$T/p/.provium-meta/types.lua" || fail "types.lua lacks $g"
done
python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$T/p/.luarc.json" || fail ".luarc.json is not JSON"
echo '{"mine": true}' >"$T/p/.luarc.json"
run "$P" lsp-setup "$T/p"
expect_rc 0 "lsp-setup over an existing .luarc.json (refuses with a notice)"
grep -q mine "$T/p/.luarc.json" || fail "existing .luarc.json was replaced without --force"
expect_in "$out" ".provium-meta" "snippet printed"
run "$P" lsp-setup "$T/p" --force
expect_rc 0 "lsp-setup --force"
grep -q mine "$T/p/.luarc.json" && fail "--force did not replace .luarc.json"
run "$P" lsp-setup "$T/missing"
expect_rc 2 "lsp-setup on a missing dir"
ok "lsp-setup"
