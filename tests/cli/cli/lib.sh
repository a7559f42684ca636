# Shared helpers for tests/cli/t_*.sh (sourced). Each script gets a
# private temp dir $T (removed on exit) and the binary under test $P.
set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
P=${PROVIUM_BIN:-$ROOT/build/provium}
[ -x "$P" ] || { echo "skip: $P not built"; exit 77; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
export PROVIUM_RERUN_STATE=$T/rerun.json
DECODE="python3 $ROOT/tests/cli/cli/decode_events.py"

fail() { echo "FAIL: $*"; exit 1; }
ok() { echo "ok: $*"; }

# run CMD...: sets $rc, $out (stdout), $err (stderr)
run() {
	"$@" >"$T/.out" 2>"$T/.err"; rc=$?
	out=$(cat "$T/.out"); err=$(cat "$T/.err")
}
expect_rc() {
	[ "$rc" -eq "$1" ] || fail "$2: exit $rc, expected $1; stdout:
$out
stderr:
$err"
}
expect_in() { # haystack needle what
	grep -qF -- "$2" <<<"$1" || fail "$3: missing \`$2\` in:
$1"
}
expect_not_in() {
	! grep -qF -- "$2" <<<"$1" || fail "$3: unexpected \`$2\` in:
$1"
}

# A small project: passing, failing, skipping tests.
mk_project() {
	mkdir -p "$T/p/tests/sub"
	cat >"$T/p/tests/smoke.test.lua" <<'LUA'
test("one", function(t) t:assert_eq(1, 1) end)
test("two", function(t) t:assert_eq(2, 2) end)
test("later", {skip = "not yet"}, function(t) end)
LUA
	cat >"$T/p/tests/sub/bad.test.lua" <<'LUA'
test("fine", function(t) end)
test("broken", function(t) t:log("a log line"); t:fail("expected failure\nsecond line") end)
LUA
}

# expect_one_build EVENTS MIN_WAITING: four files ran on one cold fixture;
# the decoded EVENTS (one JSON frame per line) must show exactly one
# build, three cache hits and at least MIN_WAITING fixture_build_waiting
# events naming one of the files tests/f1..f4.test.lua as the holder.
# Sets nw to the number of waiting events.
expect_one_build() {
	local ev=$1 min=$2 nb nh
	nb=$(grep -c '"fixture_build_started"' <<<"$ev")
	nh=$(grep -c '"fixture_cache_hit"' <<<"$ev")
	nw=$(grep -c '"fixture_build_waiting"' <<<"$ev")
	[ "$nb" -eq 1 ] || fail "expected exactly one build, got $nb"
	[ "$nh" -eq 3 ] || fail "expected 3 cache hits, got $nh"
	[ "$nw" -ge "$min" ] || fail "expected at least $min fixture_build_waiting events, got $nw"
	grep '"fixture_build_waiting"' <<<"$ev" | grep -q '"held_by_file": "tests/f[1-4].test.lua"' ||
		fail "waiting event does not name the holder: $(grep waiting <<<"$ev")"
}

# damage_ram FILE data|hole: flip one bit of a byte in a non-zero page of
# an expanded RAM file (data), or write a byte into one of its holes
# (hole): what the RAM digest (vmm/qemu_ramsum.h) must catch.
damage_ram() {
	python3 - "$1" "$2" <<'PY'
import os, sys
path, where = sys.argv[1], sys.argv[2]
fd = os.open(path, os.O_RDWR)
data = os.lseek(fd, 0, os.SEEK_DATA)
hole = os.lseek(fd, data, os.SEEK_HOLE)
if where == "data":
    off = data + 4096 * 7
    while True:            # a byte of a non-zero page
        page = os.pread(fd, 4096, off - off % 4096)
        if page.strip(b"\0"):
            off = off - off % 4096 + next(i for i, b in enumerate(page) if b)
            break
        off += 4096
    b = os.pread(fd, 1, off)
    os.pwrite(fd, bytes([b[0] ^ 0x01]), off)
else:
    os.pwrite(fd, b"\x01", hole + 123)
os.close(fd)
PY
}
