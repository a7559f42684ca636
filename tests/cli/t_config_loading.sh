#!/usr/bin/env bash
# Conformance of provium.toml loading with the reference: an empty file is
# valid, profiles are looked up by name (several per file, kernel/initrd
# checked only at boot: --vmm local never reads them), [provium] roots
# drive a run without paths, and the three error shapes exit 2:
#   read `<path>`: ...              missing file
#   parse `<path>`: ...             malformed TOML, or a value of the wrong type
#   invalid config in `<path>`: ... empty cmdline, guest_os other than peios
# (Unknown keys stay errors here: docs/decisions.md.)
. "$(dirname "$0")/cli/lib.sh"
W=$T/w
mkdir -p "$W/tests"
cd "$W"

cat >tests/greet.test.lua <<'LUA'
test("greeting", function(t)
	local r = provium:vm("dc1", "peios"):boot():run("printf hi")
	t:assert_eq(r.stdout, "hi")
end)
test("two profiles", function(t)
	provium:vm("a", "alpha"):boot()
	provium:vm("b", "beta"):boot()
end)
LUA
cat >provium.toml <<'TOML'
[provium]
roots = ["tests"]

[profiles.peios]
kernel  = "/unused-by-local"
initrd  = "/unused-by-local"
cmdline = "console=hvc0"

[profiles.alpha]
kernel  = "/a/k"
initrd  = "/a/i"
cmdline = "x"

[profiles.beta]
kernel  = "/b/k"
initrd  = "/b/i"
cmdline = "y"
TOML
run "$P" --vmm local --no-preflight --config provium.toml
expect_rc 0 "roots, profiles"
expect_in "$out" "PASS tests/greet.test.lua (2 passed, 0 failed, 0 skipped)" "ran from roots"
ok "profiles by name; roots drive a run without paths"

: >empty.toml
run "$P" --vmm local --no-preflight --config empty.toml tests/greet.test.lua
expect_rc 1 "empty config: the profiles are unknown"
expect_in "$out" "unknown profile \`peios\`" "empty config parses; profile lookup fails in the test"
ok "an empty provium.toml is valid"

check() { # NAME WANT-RC CONFIG-TEXT FRAGMENT...
	local name=$1 want=$2 text=$3
	shift 3
	printf '%s' "$text" >"$T/$name.toml"
	run "$P" --vmm local --no-preflight --config "$T/$name.toml" tests
	expect_rc "$want" "$name"
	for f in "$@"; do expect_in "$err" "${f//@CFG@/$T/$name.toml}" "$name"; done
}
run "$P" --vmm local --no-preflight --config "$T/nope.toml" tests
expect_rc 2 "missing config"
expect_in "$err" "provium: read \`$T/nope.toml\`: No such file or directory" "read error"
check parse 2 'this is not toml = !!! [' 'provium: parse `@CFG@`: '
check type 2 $'[profiles.x]\ncmdline = 5\n' 'provium: parse `@CFG@`: 2:11 `cmdline` in [profiles.x] must be a string, got integer'
check empty-cmdline 2 $'[profiles.peios]\nkernel = "/k"\ninitrd = "/i"\ncmdline = ""\n' \
	'provium: invalid config in `@CFG@`: profile `peios` has empty cmdline'
check guest-os 2 $'[profiles.x]\ncmdline = "x"\nguest_os = "linux"\n' \
	'invalid config in `@CFG@`: profile `x` has guest_os = `linux`, only `peios` is supported in v1'
check guest-os-peios 1 $'[profiles.x]\ncmdline = "x"\nguest_os = "peios"\n'
ok "config error shapes"
