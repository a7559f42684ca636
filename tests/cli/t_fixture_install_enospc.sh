#!/usr/bin/env bash
# A cache_dir on a full file system (a tiny tmpfs; the build lives on
# another file system, so install copies): the copy fails with "No space
# left on device" naming the path, no partial entry or temp is left, and
# the test still runs from the built snapshot (uncached, with a warning).
# Needs root (mount); skipped otherwise.
. "$(dirname "$0")/cli/lib.sh"
[ "$(id -u)" = 0 ] || { echo "skip: needs root to mount a tmpfs"; exit 77; }
W=$T/w
mkdir -p "$W/tests/fixtures" "$W/cache"
mount -t tmpfs -o size=128k provium-fullcache "$W/cache" 2>/dev/null ||
	{ echo "skip: cannot mount a tmpfs here"; exit 77; }
trap 'umount -l "$W/cache" 2>/dev/null; rm -rf "$T"' EXIT
echo k >"$W/k"
head -c 1M /dev/urandom >"$W/rand"
cat >"$W/provium.toml" <<TOML
[provium]
roots = ["tests"]
cache_dir = "$W/cache"

[profiles.default]
kernel = "$W/k"
cmdline = "console=ttyS0"
TOML
cat >"$W/tests/fixtures/big.fixture.lua" <<'LUA'
local vm = provium:vm("big", "default"):boot()
vm:push_file("../../rand", "/big")
vm:write_file("/f", "built")
return vm:snapshot()
LUA
cat >"$W/tests/use.test.lua" <<'LUA'
test("uses big", function(t)
	t:assert_eq(provium:vm_fixture("fixtures/big"):read_file("/f"), "built")
end)
LUA
cd "$W"
run "$P" --vmm local --no-preflight tests/use.test.lua
expect_rc 0 "the test runs from the uncached build"
expect_in "$err" "could not be cached" "warning"
expect_in "$err" "No space left on device" "the real errno"
expect_in "$err" "$W/cache/" "the path"
expect_not_in "$err" "Invalid cross-device link" "no stale errno"
ls "$W/cache"/*.snap "$W/cache"/*.tmp.* >/dev/null 2>&1 && fail "partial entry left: $(ls -la "$W/cache")"
ok "ENOSPC on install: clear error with the path, no partial entry, the test still ran"
