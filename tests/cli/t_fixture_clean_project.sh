#!/usr/bin/env bash
# Two projects share one cache_dir: `provium fixture clean` removes only
# the current project's entries (including superseded builds of its
# fixtures) and says so; `stale --all` lists the other project's entry;
# `clean --all` wipes everything.
. "$(dirname "$0")/cli/lib.sh"
for p in one two; do
	mkdir -p "$T/$p/tests/fixtures"
	cat >"$T/$p/provium.toml" <<TOML
[provium]
roots = ["tests"]
cache_dir = "$T/cache"

[profiles.default]
kernel = "$T/k"
cmdline = "console=ttyS0"
TOML
	cat >"$T/$p/tests/fixtures/base.fixture.lua" <<LUA
local vm = provium:vm("base", "default"):boot()
vm:write_file("/p", "$p")
return vm:snapshot()
LUA
done
echo k >"$T/k"
build() { (cd "$T/$1" && "$P" fixture build fixtures/base --vmm local) >/dev/null 2>&1 || fail "build in $1"; }
nsnap() { ls "$T/cache"/*.snap 2>/dev/null | wc -l; }
build one; build two
echo '-- v2' >>"$T/one/tests/fixtures/base.fixture.lua"
build one                       # project one now has a superseded entry too
[ "$(nsnap)" -eq 3 ] || fail "expected 3 entries, got $(nsnap)"
cd "$T/one"
run "$P" fixture stale --all --vmm local
expect_rc 0 "stale --all"
expect_in "$out" "0 stale fixture(s) in this project ($T/one)" "stale says which project"
expect_in "$out" "$T/two" "stale --all names the other project's entry"
run "$P" fixture clean --vmm local
expect_rc 0 "clean"
expect_in "$out" "cleaned 2 fixture entries of this project ($T/one)" "clean says what it did"
expect_in "$out" "--all removes everything" "clean points at --all"
[ "$(nsnap)" -eq 1 ] || fail "clean removed other projects' entries (or kept ours): $(ls "$T/cache")"
(cd "$T/two" && "$P" fixture build fixtures/base --vmm local) | grep -q "already built" ||
	fail "project two's entry is gone"
ok "clean: this project's entries only (current and superseded)"
run "$P" fixture clean --all --vmm local
expect_rc 0 "clean --all"
expect_in "$out" "every project's fixtures" "clean --all says so"
[ -z "$(ls -A "$T/cache")" ] || fail "clean --all left files: $(ls "$T/cache")"
run "$P" fixture list --all
expect_rc 2 "--all on list is a usage error"
ok "clean --all wipes every project's entries"
