#!/usr/bin/env bash
# `provium repl` driven through a pipe (stdin not a TTY): on --vmm local,
# results of expressions print, an error line is reported and the session
# goes on, multi-line chunks, `.exit`, EOF, --name, --fixture (profile
# optional) and usage errors; then, when QEMU and the guest kit exist, one
# real guest: `uname -s` prints Linux.
. "$(dirname "$0")/cli/lib.sh"

W=$T/w
mkdir -p "$W/tests/fixtures" "$W/kern"
echo k >"$W/kern/vmlinuz"
cat >"$W/provium.toml" <<TOML
[provium]
roots = ["tests"]
cache_dir = "$W/cache"

[profiles.zeta]
kernel = "$W/kern/vmlinuz"
cmdline = "console=ttyS0"

[profiles.alpha]
kernel = "$W/kern/vmlinuz"
cmdline = "console=ttyS0"
TOML
cat >"$W/tests/fixtures/seeded.fixture.lua" <<'LUA'
local vm = provium:vm("seeded", "zeta"):boot()
vm:write_file("/seed", "from the fixture")
return vm:snapshot()
LUA
echo "host file" >"$W/hostfile.txt"
cd "$W" || fail "cd"

repl() { # stdin-file args...
	local in=$1; shift
	timeout 60 "$P" repl "$@" <"$in" >"$T/.out" 2>"$T/.err"; rc=$?
	out=$(cat "$T/.out"); err=$(cat "$T/.err")
}

cat >"$T/in1" <<'LUA'
vm:write_file("/greeting", "hello from the repl")
vm:read_file("/greeting")
error("deliberate failure")
this is not lua
1 + 1
for i = 1, 3 do
  io.write(i, ";")
end
vm:name(), vm:profile(), vm:state()
provium:vm_names()[1]
json.encode({a = 1})
vm:push_file("hostfile.txt", "/pushed")
vm:read_file("/pushed")
.exit
vm:read_file("/greeting") .. " AFTER EXIT"
LUA
repl "$T/in1" alpha --vmm local
expect_rc 0 "repl session"
expect_in "$out" "hello from the repl" "read_file prints the written content"
expect_in "$err" "deliberate failure" "an error line is reported"
expect_in "$err" "syntax error" "a syntax error is reported"
expect_in "$out" "2" "an expression's value prints"
expect_in "$out" "1;2;3;" "a multi-line chunk runs once complete"
expect_in "$out" "$(printf 'repl\talpha\tbooted')" "several results, tab-separated"
expect_in "$out" '{"a":1}' "json is bound"
expect_in "$out" "host file" "push_file resolves against the working directory"
expect_not_in "$out" "AFTER EXIT" "nothing runs after .exit"
ok "local session: results, errors continue, multi-line, .exit"

printf 'vm:name()\nvm:profile()\n' >"$T/in2"
repl "$T/in2" alpha --vmm local --name box
expect_rc 0 "EOF ends the session"
expect_in "$out" "box" "--name names the VM"
ok "--name, EOF"

printf 'vm:read_file("/seed")\nvm:name()\n' >"$T/in3"
repl "$T/in3" --fixture fixtures/seeded --vmm local
expect_rc 0 "--fixture without a profile"
expect_in "$out" "from the fixture" "the fixture's state is restored"
expect_in "$out" "seeded" "the VM has the fixture's name"
ok "--fixture restores the fixture (profile optional)"

: >"$T/empty"
repl "$T/empty" --vmm local
expect_rc 2 "no profile, no fixture"
expect_in "$err" "missing PROFILE" "usage message"
repl "$T/empty" nosuch --vmm local
expect_rc 2 "unknown profile"
expect_in "$err" "unknown profile \`nosuch\`" "names the profile"
repl "$T/empty" alpha --vmm local --bogus
expect_rc 2 "unknown flag"
printf 'vm:state()\n' >"$T/in4"
repl "$T/in4" --fixture fixtures/nosuch --vmm local
expect_rc 1 "a fixture that does not exist"
expect_in "$err" "nosuch" "names the fixture"
ok "usage and startup errors"

# One real guest, when QEMU and the guest kit are there.
kit=$ROOT/build/guest
if command -v qemu-system-x86_64 >/dev/null && [ -f "$kit/vmlinuz" ] && [ -f "$kit/initrd.cpio.gz" ]; then
	cd "$T" || fail "cd"
	printf 'vm:run("uname -s").stdout\n.exit\n' >"$T/in5"
	timeout 300 "$P" repl default <"$T/in5" >"$T/.out" 2>"$T/.err"; rc=$?
	out=$(cat "$T/.out"); err=$(cat "$T/.err")
	expect_rc 0 "qemu repl session"
	expect_in "$out" "Linux" "uname -s in the guest"
	ok "real guest: uname -s prints Linux"
else
	echo "note: no QEMU or guest kit: the real-guest part was skipped"
fi
exit 0
