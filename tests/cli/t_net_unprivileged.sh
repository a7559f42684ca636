#!/usr/bin/env bash
# Networking needs no privileges: the whole networking VM suite
# (tests/vm/net.test.lua, with its fixtures) passes when provium runs as
# `nobody` with every capability dropped. Run as root only (that is when
# the other suites could hide a privilege need); skipped otherwise, and
# when QEMU or the guest kit is missing.
. "$(dirname "$0")/cli/lib.sh"
[ "$(id -u)" -eq 0 ] || { echo "skip: not root (the VM suite already ran unprivileged)"; exit 77; }
command -v qemu-system-x86_64 >/dev/null || { echo "skip: no qemu-system-x86_64"; exit 77; }
command -v setpriv >/dev/null || { echo "skip: no setpriv"; exit 77; }
[ -f "$ROOT/build/guest/vmlinuz" ] || { echo "skip: no guest kit (make guest)"; exit 77; }
id nobody >/dev/null 2>&1 || { echo "skip: no user nobody"; exit 77; }

# A project of its own that nobody can write: the suite file and its
# fixtures copied, a cache and HOME in a world-writable scratch dir.
W=$T/w
mkdir -p "$W/tests/fixtures" "$W/home"
cp "$ROOT/tests/vm/net.test.lua" "$W/tests/"
cp "$ROOT"/tests/vm/fixtures/{pair,impaired,base}.fixture.lua "$W/tests/fixtures/"
cat >"$W/provium.toml" <<TOML
[provium]
roots = ["tests"]
cache_dir = "$W/home/cache"
TOML
chmod 755 "$T" "$W" "$W/tests" "$W/tests/fixtures"
chmod 644 "$W"/tests/*.lua "$W"/tests/fixtures/*.lua "$W/provium.toml"
chown nobody:nogroup "$W/home"
cd "$W" || exit 1
run setpriv --reuid=nobody --regid=nogroup --clear-groups --inh-caps=-all --bounding-set=-all \
	env HOME="$W/home" XDG_CACHE_HOME="$W/home/.cache" TMPDIR="$W/home" \
	timeout 900 "$P" --vmm qemu --no-preflight tests/net.test.lua
expect_rc 0 "the networking suite as nobody"
expect_in "$out" "0 failed" "every networking test passed unprivileged"
grep -q "uid=65534" < <(setpriv --reuid=nobody --regid=nogroup --clear-groups id) ||
	fail "setpriv did not switch to nobody"
ok "networking as nobody: $(tail -n 1 <<<"$out")"
