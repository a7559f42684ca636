#!/usr/bin/env bash
# Live human output: results print as files finish (a failing file shows
# while an earlier-discovered slow file still runs); no escape sequences
# when piped; colour with --color=always, never under NO_COLOR/--color=never;
# on a terminal (a pty) a progress line redrawn in place (\r ESC[K) and
# colour, none under NO_COLOR; Ctrl-C prints the partial summary and the
# files that did not finish, exit 130 (by kill -INT and by ^C on a pty).
. "$(dirname "$0")/cli/lib.sh"
mkdir -p "$T/p/tests"
cd "$T/p"
export PROVIUM_NO_PSI=1
L="$P --vmm local --no-preflight"

# a_slow is first in discovery order and waits (up to 30 s) for `go`,
# which this script creates only once b_fails' FAIL line is on stdout
cat >tests/a_slow.test.lua <<LUA
test("waits", function(t)
	local t0 = os.time()
	while not io.open("$T/go") and os.time() - t0 < 30 do os.execute("sleep 0.05") end
	t:assert(io.open("$T/go"), "never released")
end)
LUA
cat >tests/b_fails.test.lua <<'LUA'
test("quick", function(t) t:fail("early failure") end)
LUA
$L --cpus 2 tests >"$T/o" 2>"$T/e" &
pid=$!
for i in $(seq 1 300); do
	grep -q "^FAIL tests/b_fails.test.lua" "$T/o" && break
	sleep 0.1
done
seen=$(cat "$T/o")
touch "$T/go"
wait $pid; rc=$?
out=$(cat "$T/o"); err=$(cat "$T/e")
expect_in "$seen" "FAIL tests/b_fails.test.lua" "the failing file shows while the slow one runs"
expect_not_in "$seen" "a_slow" "the slow file is not done yet"
expect_rc 1 "run with a failure"
[ "$(grep -E '^(PASS|FAIL) ' <<<"$out" | cut -d' ' -f1-2 | tr '\n' ' ')" = "FAIL tests/b_fails.test.lua PASS tests/a_slow.test.lua " ] ||
	fail "not in completion order: $out"
expect_in "$out" "2 file(s); 1 passed, 1 failed, 0 skipped; " "summary unchanged"
[[ "$out" != *$'\e'* ]] || fail "escape sequences in piped output: $(cat -v "$T/o")"
ok "piped: completion order, streamed, plain"

run $L --color=always tests/b_fails.test.lua
[[ "$out" == *$'\e[31mFAIL\e[0m tests/b_fails.test.lua'* ]] || fail "--color=always: $(cat -v "$T/.out")"
NO_COLOR=1 run $L --color=auto tests/b_fails.test.lua
[[ "$out" != *$'\e'* ]] || fail "NO_COLOR"
run $L --color=never tests/b_fails.test.lua
[[ "$out" != *$'\e'* ]] || fail "--color=never"
run $L --color=sometimes tests
expect_rc 2 "--color bad value"; expect_in "$err" "--color must be" "--color message"
ok "--color / NO_COLOR"

# on a terminal: python's pty runs provium with a slow passing file (it
# sleeps 1.5 s so the progress line is drawn several times)
rm -f tests/*.test.lua
cat >tests/slow.test.lua <<'LUA'
test("slow", function(t) os.execute("sleep 1.5") end)
LUA
cat >tests/fails.test.lua <<'LUA'
test("f", function(t) t:fail("x") end)
LUA
pty_run() { # NO_COLOR value ("" = unset) -> writes $T/pty.out
	python3 - "$T/pty.out" "$1" $L tests <<'PY'
import os, pty, sys
out, nc, argv = sys.argv[1], sys.argv[2], sys.argv[3:]
env = dict(os.environ, TERM="xterm")
env.pop("NO_COLOR", None)
if nc:
    env["NO_COLOR"] = nc
pid, fd = pty.fork()
if pid == 0:
    import fcntl, struct, termios
    fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    os.execvpe(argv[0], argv, env)
buf = b""
while True:
    try:
        d = os.read(fd, 65536)
    except OSError:
        break
    if not d:
        break
    buf += d
_, st = os.waitpid(pid, 0)
open(out, "wb").write(buf)
sys.exit(os.waitstatus_to_exitcode(st))
PY
}
pty_run ""; prc=$?
[ "$prc" -eq 1 ] || fail "pty run exit $prc: $(cat -v "$T/pty.out")"
python3 - "$T/pty.out" <<'PY' || fail "terminal output: $(cat -v "$T/pty.out")"
import re, sys
b = open(sys.argv[1], "rb").read().decode()
# the progress line: drawn with \r ... ESC[K, naming counts and the slow file
draws = re.findall(r"\r(\[\d+/2\] [^\r\n\x1b]*)\x1b\[K", b)
assert draws, "no progress line"
assert all(len(d) < 120 for d in draws), "wider than the terminal"
assert any("1 running" in d and "slowest tests/slow.test.lua " in d for d in draws), draws
assert "\r\x1b[K" in b, "never erased"
assert "\x1b[31mFAIL\x1b[0m tests/fails.test.lua" in b and "\x1b[32mPASS\x1b[0m tests/slow.test.lua" in b, "colour"
# what stays on screen: apply the \r / ESC[K edits line by line
screen = []
for line in b.replace("\r\n", "\n").split("\n"):
    cur = ""
    for part in re.split(r"(\r|\x1b\[K)", line):
        if part == "\r": pos = 0; cur_keep = cur; cur = ""
        elif part == "\x1b[K": pass
        else: cur += part
    screen.append(re.sub(r"\x1b\[\d+m", "", cur))
text = "\n".join(screen)
assert "running" not in text, text          # erased before results and at the end
assert re.search(r"\n2 file\(s\); 1 passed, 1 failed, 0 skipped; [\d.]+s\n?$", text), text
PY
ok "terminal: progress line redrawn in place and erased, colour"
pty_run 1; prc=$?
[ "$prc" -eq 1 ] || fail "pty NO_COLOR run exit $prc"
grep -q $'\e\[3[0-9]m' "$T/pty.out" && fail "NO_COLOR=1: colour on the terminal: $(cat -v "$T/pty.out")"
grep -q $'\e\[K' "$T/pty.out" || fail "NO_COLOR=1: the progress line is still drawn"
ok "terminal: NO_COLOR=1 has no colour"

# Ctrl-C: two finished files, a running one (claims the only CPU) and a
# queued one; SIGINT once the finished ones are on stdout
marker="provium-live-sleep-$$-$RANDOM"
mv tests/fails.test.lua tests/0_fails.test.lua
cat >tests/a_hang.test.lua <<LUA
provium:claim({cpus = 1})
test("hangs", function(t) io.open("$T/started", "w"):close(); os.execute("sleep 30; : $marker") end)
LUA
cat >tests/b_queued.test.lua <<'LUA'
provium:claim({cpus = 1})
test("q", function(t) end)
LUA
rm -f tests/slow.test.lua
cat >tests/0_done.test.lua <<'LUA'
test("d", function(t) end)
LUA
rm -f "$T/started"
$L --cpus 1 tests >"$T/o" 2>"$T/e" &
pid=$!
for i in $(seq 1 300); do [ -e "$T/started" ] && break; sleep 0.1; done
[ -e "$T/started" ] || fail "the hanging file never started: $(cat "$T/o" "$T/e")"
for i in $(seq 1 300); do [ "$(grep -c '^[PF][A][SI][SL] tests/0_' "$T/o")" -eq 2 ] && break; sleep 0.1; done
kill -INT $pid
wait $pid; rc=$?
out=$(cat "$T/o"); err=$(cat "$T/e")
expect_rc 130 "interrupted"
expect_in "$out" "PASS tests/0_done.test.lua" "finished file still shown"
expect_in "$out" "FAIL tests/0_fails.test.lua" "finished failing file still shown"
expect_in "$out" "interrupted by SIGINT: 2 file(s) did not finish" "interrupt header"
expect_in "$out" "    INTERRUPTED tests/a_hang.test.lua" "running file listed"
expect_in "$out" "    NOT RUN tests/b_queued.test.lua" "queued file listed"
expect_in "$out" "2 file(s); 1 passed, 1 failed, 0 skipped; " "partial summary"
[ "$(tail -n 1 <<<"$out" | cut -c1-8)" = "2 file(s" ] || fail "summary is not the last line: $out"
expect_in "$err" "interrupted: exit 130" "stderr notice"
sleep 0.2
pgrep -f "$marker" >/dev/null && fail "the interrupted file's child survived"
ok "Ctrl-C: partial summary, unfinished files, exit 130"

# a real Ctrl-C on the terminal: the tty sends SIGINT to provium's
# process group only (runners have their own); once the progress line
# shows the hanging file, ^C; the partial summary follows on a clean line
rm -f tests/b_queued.test.lua tests/0_*.test.lua "$T/started"
python3 - "$T/pty2.out" $L tests <<'PY' || fail "Ctrl-C on a terminal: $(cat -v "$T/pty2.out")"
import os, pty, re, sys, time
out, argv = sys.argv[1], sys.argv[2:]
env = dict(os.environ, TERM="xterm")
pid, fd = pty.fork()
if pid == 0:
    import fcntl, struct, termios
    fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    os.execvpe(argv[0], argv, env)
buf, sent, t0 = b"", False, time.time()
while True:
    try:
        d = os.read(fd, 65536)
    except OSError:
        break
    if not d:
        break
    buf += d
    if not sent and b"slowest tests/a_hang.test.lua" in buf:
        os.write(fd, b"\x03")
        sent = True
    assert time.time() - t0 < 30, "no progress line naming the hanging file"
_, st = os.waitpid(pid, 0)
open(out, "wb").write(buf)
rc = os.waitstatus_to_exitcode(st)
assert sent and rc == 130, (sent, rc)
b = buf.decode()
assert "interrupted by SIGINT: 1 file(s) did not finish" in b, b
assert re.search(r"\r\n    (\x1b\[31m)?INTERRUPTED(\x1b\[0m)? tests/a_hang.test.lua\r\n", b), b
assert "running" not in b.split("interrupted by SIGINT")[1], "progress line after the interrupt"
PY
pgrep -f "$marker" >/dev/null && { sleep 0.5; pgrep -f "$marker" >/dev/null; } && fail "a runner's child survived Ctrl-C"
ok "Ctrl-C on a terminal"
