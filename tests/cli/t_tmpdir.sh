#!/usr/bin/env bash
# t_tmpdir.sh — `provium repl` and `provium fixture build` make their
# scratch directories under $TMPDIR (tempfile.c), not a hard-coded /tmp,
# and remove them when they are done; a $TMPDIR that does not exist is
# reported, not silently replaced.
. "$(dirname "$0")/cli/lib.sh"

W=$T/w
mkdir -p "$W/tests/fixtures" "$W/kern" "$T/tmpd"
echo k >"$W/kern/vmlinuz"
cat >"$W/provium.toml" <<TOML
[provium]
roots = ["tests"]
cache_dir = "$W/cache"

[profiles.zeta]
kernel = "$W/kern/vmlinuz"
cmdline = "console=ttyS0"
TOML
cat >"$W/tests/fixtures/where.fixture.lua" <<'LUA'
error("RUNDIR=" .. tostring(_provium_run_dir))
LUA
cd "$W" || fail "cd"

echo '_provium_run_dir' >"$T/in"
TMPDIR=$T/tmpd run timeout 60 "$P" repl zeta --vmm local --no-preflight <"$T/in"
expect_rc 0 "repl under TMPDIR"
expect_in "$out" "$T/tmpd/provium-repl-" "the repl's run dir is under \$TMPDIR"
[ -z "$(ls -A "$T/tmpd")" ] || fail "repl left in \$TMPDIR: $(ls -A "$T/tmpd")"
ok "repl scratch directory under \$TMPDIR, removed at exit"

TMPDIR=$T/tmpd run timeout 60 "$P" fixture build fixtures/where --vmm local
expect_rc 1 "fixture build of a failing fixture"
expect_in "$err" "RUNDIR=$T/tmpd/provium-fixture-" "the fixture build's run dir is under \$TMPDIR"
[ -z "$(ls -A "$T/tmpd")" ] || fail "fixture build left in \$TMPDIR: $(ls -A "$T/tmpd")"
ok "fixture build scratch directory under \$TMPDIR, removed at exit"

TMPDIR=$T/missing run timeout 60 "$P" repl zeta --vmm local --no-preflight <"$T/in"
expect_rc 2 "repl with a missing TMPDIR"
expect_in "$err" "cannot set up a scratch directory: No such file or directory" "missing TMPDIR reported"
ok "a missing \$TMPDIR is an error"
exit 0
