#!/usr/bin/env bash
# `provium repl` on a terminal (a pty driven by cli/pty_repl.py): Ctrl-C
# during `vm:run("sleep 100")` interrupts the op with a message, the
# prompt returns and the VM answers the next command; Ctrl-C drops a
# half-typed line; the history file ($XDG_STATE_HOME/provium/repl_history,
# 0600) lets a second session recall a line with the up arrow; SIGTERM
# shuts the VM down and exits 143; a piped (non-TTY) session writes no
# history. On --vmm local always, then on a real guest when QEMU and the
# guest kit exist (there Ctrl-C must not reach QEMU, and SIGTERM must
# leave no QEMU behind).
. "$(dirname "$0")/cli/lib.sh"
command -v python3 >/dev/null || { echo "skip: no python3"; exit 77; }
DRIVE="timeout 600 python3 $ROOT/tests/cli/cli/pty_repl.py"

W=$T/w
mkdir -p "$W/kern"
echo k >"$W/kern/vmlinuz"
cat >"$W/provium.toml" <<TOML
[profiles.alpha]
kernel = "$W/kern/vmlinuz"
cmdline = "console=ttyS0"
TOML
cd "$W" || fail "cd"
export XDG_STATE_HOME=$T/state
hist=$XDG_STATE_HOME/provium/repl_history

# A piped session: plain line reading, no history written.
run bash -c "printf '1 + 1\n' | timeout 60 '$P' repl alpha --vmm local"
expect_rc 0 "piped session"
expect_in "$out" "2" "piped session evaluates"
[ ! -e "$hist" ] || fail "a piped session wrote $hist"
ok "not a TTY: plain reading, no history"

run $DRIVE interrupt "$P" repl alpha --vmm local
expect_rc 0 "local: Ctrl-C session
$err"
expect_in "$out" "run \`sleep 100\`: interrupted" "local: the op says it was interrupted"
ok "local: Ctrl-C interrupts vm:run, the VM answers the next command, Ctrl-C drops a typed line"

[ -f "$hist" ] || fail "no history file at $hist"
[ "$(stat -c %a "$hist")" = 600 ] || fail "history file mode $(stat -c %a "$hist"), expected 600"
expect_in "$(cat "$hist")" '"after" .. "clear"' "the history file holds the entered line"
expect_not_in "$(cat "$hist")" "half-typed" "a line dropped by Ctrl-C is not in the history"
run $DRIVE history "$P" repl alpha --vmm local
expect_rc 0 "local: history session
$err"
expect_in "$out" "afterclear" "the recalled line ran"
ok "history: the file is written 0600 and an up arrow in a new session recalls from it"

run $DRIVE sigterm "$P" repl alpha --vmm local
expect_rc 0 "local: SIGTERM
$err"
ok "local: SIGTERM shuts down and exits 143"

kit=$ROOT/build/guest
if command -v qemu-system-x86_64 >/dev/null && [ -f "$kit/vmlinuz" ] && [ -f "$kit/initrd.cpio.gz" ]; then
	cd "$T" || fail "cd"
	run $DRIVE interrupt "$P" repl default
	expect_rc 0 "qemu: Ctrl-C session
$err"
	expect_in "$out" "interrupted (the op may still be running in the guest)" \
		"qemu: the op says it was interrupted"
	ok "real guest: Ctrl-C interrupts vm:run (QEMU does not get SIGINT), the VM answers after"

	run $DRIVE sigterm "$P" repl default
	expect_rc 0 "qemu: SIGTERM
$err"
	kids=$(sed -n 's/^children: //p' <<<"$out")
	[ -n "$kids" ] || fail "no child process (QEMU) was seen"
	for k in $kids; do
		if [ -e "/proc/$k/stat" ] && ! awk '{ exit $3 != "Z" }' "/proc/$k/stat"; then
			fail "child $k ($(cat "/proc/$k/comm" 2>/dev/null)) outlived the REPL's SIGTERM"
		fi
	done
	ok "real guest: SIGTERM leaves no QEMU behind"
else
	echo "note: no QEMU or guest kit: the real-guest part was skipped"
fi
exit 0
