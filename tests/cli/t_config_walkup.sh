#!/usr/bin/env bash
# Config discovery walks up from the cwd to the nearest provium.toml (as
# git finds .git); display paths stay relative to that file's directory
# wherever provium runs; roots and cache_dir resolve against it; --config
# still overrides.
. "$(dirname "$0")/cli/lib.sh"
W=$T/w
mkdir -p "$W/tests/sub" "$W/lib"
cat >"$W/provium.toml" <<'TOML'
[provium]
roots = ["tests", "lib"]
cache_dir = ".cache/fx"
TOML
# helper.lua is only reachable through the config's roots (not the file's dir)
echo 'return {answer = 42}' >"$W/lib/helper.lua"
echo 'test("uses helper", function(t) t:assert_eq(require("helper").answer, 42) end)' \
	>"$W/tests/smoke.test.lua"
echo 'test("deep", function(t) end)' >"$W/tests/sub/deep.test.lua"
L="$P --vmm local --no-preflight"

cd "$W/tests" || exit 1
run $L smoke.test.lua
expect_rc 0 "run from tests/ with ../provium.toml"
expect_in "$out" "PASS tests/smoke.test.lua (1 passed" "path relative to the project root"
ok "cd tests && provium smoke.test.lua finds ../provium.toml"

cd "$W/tests/sub" || exit 1
run $L
expect_rc 0 "no paths from tests/sub"
expect_in "$out" "PASS tests/smoke.test.lua" "config roots scanned from a subdirectory"
expect_in "$out" "PASS tests/sub/deep.test.lua" "config roots scanned from a subdirectory"
expect_in "$out" "2 file(s);" "both files"
run $L ../smoke.test.lua
expect_in "$out" "PASS tests/smoke.test.lua (1 passed" "../ path shown project-relative"
run "$P" list
expect_rc 0 "list from a subdirectory"
[ "$out" = $'tests/smoke.test.lua\ntests/sub/deep.test.lua' ] || fail "list from tests/sub: $out"
run $L --filter tests/sub
expect_in "$out" "1 file(s);" "--filter matches the project-relative path from anywhere"
ok "display paths relative to the project root from a subdirectory"

# cache_dir resolves against the config file's directory, not the cwd
run "$P" fixture clean
expect_rc 0 "fixture clean from a subdirectory"
expect_in "$out" "from $(cd "$W" && pwd -P)/.cache/fx" "cache_dir relative to provium.toml"
ok "cache_dir resolves against the config's directory"

# the nearest provium.toml wins; an invalid one is reported by its path
printf '[provium]\nbogus = 1\n' >"$W/tests/sub/provium.toml"
run $L
expect_rc 2 "nearest (invalid) config"
expect_in "$err" "invalid config in \`$(cd "$W/tests/sub" && pwd -P)/provium.toml\`" "nearest config used"
rm "$W/tests/sub/provium.toml"

# --config overrides discovery (its roots: only lib/, where no tests live)
printf '[provium]\nroots = ["lib"]\n' >"$T/other.toml"
mkdir -p "$T/lib"
run $L --config "$T/other.toml"
expect_rc 5 "--config with a root without tests"
expect_in "$out" "no *.test.lua files found" "--config's roots used, not ../../provium.toml's"
ok "the nearest provium.toml wins; --config overrides"

# no provium.toml anywhere up to / (a fresh dir under a private temp dir
# whose parents have none): the cwd is the project, as before
mkdir -p "$T/bare/x"
echo 'test("a", function(t) end)' >"$T/bare/x/a.test.lua"
cd "$T/bare/x" || exit 1
if [ ! -e "$T/provium.toml" ] && [ ! -e /tmp/provium.toml ] && [ ! -e /provium.toml ]; then
	run $L
	expect_rc 0 "no config"
	expect_in "$out" "PASS a.test.lua" "cwd-relative without a config"
	ok "without a provium.toml the cwd is the project"
fi
