#!/usr/bin/env bash
# The remote fixture store against a real nginx (WebDAV PUT) started
# here on 127.0.0.1: machine A (its own cache_dir) builds a vm and a lab
# fixture and uploads them; machine B (another cache_dir) restores both
# from the remote without building (no fixture_build_started, a
# fixture_remote_hit each) and `fixture list` says "from remote"; a
# corrupt remote object is ignored with a warning and built locally; a
# remote that refuses connections means a local build and exactly one
# warning for the run (two files, two fixtures); a read-only remote is
# never PUT to (nginx's access log).
. "$(dirname "$0")/cli/lib.sh"
command -v python3 >/dev/null || { echo "skip: no python3"; exit 77; }
. "$(dirname "$0")/cli/nginx.sh"
start_nginx
URL=http://127.0.0.1:$PORT/fx/

W=$T/w
mkdir -p "$W/tests/fixtures"
echo k >"$W/k"
cat >"$W/tests/fixtures/base.fixture.lua" <<'LUA'
local vm = provium:vm("base", "default"):boot()
vm:write_file("/marker", "from-base")
return vm:snapshot()
LUA
cat >"$W/tests/fixtures/cl.fixture.lua" <<'LUA'
local cluster = provium:lab("cl")
local a = cluster:vm("a", "default"):boot()
a:write_file("/who", "a")
cluster:vm("b", "default"):boot()
return cluster:snapshot()
LUA
cat >"$W/tests/one.test.lua" <<'LUA'
test("vm", function(t)
	local vm = provium:vm_fixture("fixtures/base")
	t:assert_eq(vm:read_file("/marker"), "from-base")
end)
test("lab", function(t)
	local c = provium:lab_fixture("fixtures/cl")
	t:assert_eq(c.a:read_file("/who"), "a")
	t:assert_eq(c.b:run("echo b"):assert_ok().stdout, "b\n")
end)
LUA
cat >"$W/tests/two.test.lua" <<'LUA'
test("vm again", function(t)
	t:assert_eq(provium:vm_fixture("fixtures/base"):read_file("/marker"), "from-base")
end)
LUA

# conf CACHE_DIR REMOTE [extra lines]
conf() {
	cat >"$W/provium.toml" <<TOML
[provium]
roots = ["tests"]
cache_dir = "$1"
cache_remote = "$2"
${3:-}

[profiles.default]
kernel = "$W/k"
cmdline = "console=ttyS0"
TOML
}
# go WHAT FILES...: run, expect exit 0; $ev = "kind path" lines
go() {
	local what=$1; shift
	rm -f "$T/ev"
	(cd "$W" && run "$P" --vmm local --no-preflight --save-events "$T/ev" "$@"
	 printf '%s' "$rc" >"$T/rc"; printf '%s' "$out" >"$T/o"; printf '%s' "$err" >"$T/e")
	rc=$(cat "$T/rc"); out=$(cat "$T/o"); err=$(cat "$T/e")
	expect_rc 0 "$what"
	ev=$($DECODE "$T/ev" | python3 -c '
import json, sys
for l in sys.stdin:
    f = json.loads(l)
    if f["kind"].startswith("fixture_"):
        p = f["payload"]
        print(f["kind"], p.get("path"), "bytes=%s" % p["bytes"] if "bytes" in p else "")')
}
count() { grep -c "^$1 " <<<"$ev"; }

# Machine A: cold, builds both and uploads both.
conf "$T/cacheA" "$URL"
go "machine A" tests/one.test.lua
[ "$(count fixture_build_started)" -eq 2 ] || fail "A: expected 2 builds: $ev"
[ "$(count fixture_remote_miss)" -eq 2 ] || fail "A: expected 2 remote misses: $ev"
[ "$(count fixture_remote_put)" -eq 2 ] || fail "A: expected 2 uploads: $ev"
grep -q "^fixture_remote_put fixtures/base bytes=[1-9]" <<<"$ev" || fail "A: put bytes: $ev"
ls "$NX/store/fx/"*.snap >/dev/null 2>&1 || fail "A: no .snap on the server"
ls "$NX/store/fx/"*.lab.pack >/dev/null 2>&1 || fail "A: no .lab.pack on the server"
expect_not_in "$err" "warning" "A: no warnings"
ok "machine A built and uploaded a vm and a lab fixture"

# Machine B: restores both from the remote, builds nothing.
conf "$T/cacheB" "$URL"
go "machine B" tests/one.test.lua
[ "$(count fixture_build_started)" -eq 0 ] || fail "B: built: $ev"
grep -q "^fixture_remote_hit fixtures/base bytes=[1-9]" <<<"$ev" || fail "B: no vm remote hit: $ev"
grep -q "^fixture_remote_hit fixtures/cl bytes=[1-9]" <<<"$ev" || fail "B: no lab remote hit: $ev"
[ "$(count fixture_remote_put)" -eq 0 ] || fail "B: uploaded: $ev"
ok "machine B restored both from the remote without building"
go "machine B again" tests/one.test.lua
[ "$(count fixture_cache_hit)" -eq 2 ] || fail "B: second run not local hits: $ev"
[ "$(count fixture_remote_hit)" -eq 0 ] || fail "B: second run went remote: $ev"
cd "$W" && run "$P" fixture list --vmm local
expect_rc 0 "fixture list"
[ "$(grep -c '(from remote)$' <<<"$out")" -eq 2 ] || fail "list does not say from remote: $out"
conf "$T/cacheA" "$URL"
cd "$W" && run "$P" fixture list --vmm local
[ "$(grep -c '(built here)$' <<<"$out")" -eq 2 ] || fail "list on A does not say built here: $out"
ok "second run hits locally; fixture list shows where entries came from"

# A second checkout at another path, every file with another mtime (a
# fresh clone; the kernel rebuilt to the same bytes): same keys, remote hits.
cp -r "$W" "$T/w2"
find "$T/w2" -exec touch -d '2001-02-03 04:05:06' {} +
sed -i "s|$W/|$T/w2/|g; s|cache_dir = .*|cache_dir = \"$T/cacheW2\"|" "$T/w2/provium.toml"
rm -f "$T/ev"
(cd "$T/w2" && "$P" --vmm local --no-preflight --save-events "$T/ev" tests/one.test.lua) >/dev/null 2>&1 ||
	fail "second checkout run failed"
n=$($DECODE "$T/ev" | grep -c '"fixture_remote_hit"')
[ "$n" -eq 2 ] || fail "second checkout (other path, other mtimes): $n remote hits, expected 2"
ok "keys are portable across checkout paths and mtimes"

# `provium fixture build` on a fresh machine fetches either shape too.
conf "$T/cacheI" "$URL"
run "$P" fixture build fixtures/cl --vmm local
expect_rc 0 "fixture build (remote)"; expect_in "$out" "fetched from the remote store: fixtures/cl (lab fixture)" "lab fetched"
run "$P" fixture build tests/fixtures/base.fixture.lua --vmm local
expect_in "$out" "fetched from the remote store: fixtures/base (vm fixture)" "vm fetched"
run "$P" fixture build fixtures/base --vmm local
expect_in "$out" "already built: fixtures/base" "then local"
ok "fixture build fetches from the remote store instead of building"

# Corrupt remote object: warning, local build, test passes.
snap=$(ls "$NX/store/fx/"*.snap)
python3 - "$snap" <<'PY'
import sys
p = sys.argv[1]; b = bytearray(open(p, "rb").read()); b[len(b) // 2] ^= 0xff
open(p, "wb").write(bytes(b))
PY
pack=$(ls "$NX/store/fx/"*.lab.pack)
python3 - "$pack" <<'PY'
import sys
p = sys.argv[1]; b = bytearray(open(p, "rb").read()); b[len(b) // 2] ^= 0x01
open(p, "wb").write(bytes(b))
PY
conf "$T/cacheC" "$URL" "cache_remote_readonly = true"
go "corrupt remote" tests/one.test.lua
[ "$(count fixture_build_started)" -eq 2 ] || fail "corrupt: not built locally: $ev"
[ "$(count fixture_remote_hit)" -eq 0 ] || fail "corrupt: remote hit: $ev"
expect_in "$err" "corrupt object" "corrupt: warning"
[ "$(grep -c 'warning: remote fixture store' <<<"$err")" -eq 1 ] || fail "corrupt: not one warning: $err"
ls "$T/cacheC"/*.dl.* "$T/cacheC"/*.dx.* >/dev/null 2>&1 && fail "corrupt: download temps left: $(ls "$T/cacheC")"
ok "corrupt remote objects: one warning, built locally, no temps left"

# Read-only remote: no PUT reached nginx.
puts=$(grep -c '"PUT ' "$NX/logs/access.log")
[ "$puts" -eq 2 ] || fail "expected exactly A's 2 PUTs, got $puts: $(cat "$NX/logs/access.log")"
[ "$(count fixture_remote_put)" -eq 0 ] || fail "read-only: put event: $ev"
ok "read-only remote: no PUT"

# Remote down (connection refused): local builds, exactly one warning
# for a run of two files.
DEAD=$(free_port)
conf "$T/cacheD" "http://127.0.0.1:$DEAD/fx/"
go "remote down" tests/one.test.lua tests/two.test.lua
[ "$(count fixture_build_started)" -eq 2 ] || fail "down: not built: $ev"
[ "$(grep -c 'warning: remote fixture store' <<<"$err")" -eq 1 ] || fail "down: expected one warning: $err"
expect_in "$err" "127.0.0.1:$DEAD" "down: warning names the URL"
ok "remote down: built locally, one warning"

# PROVIUM_CACHE_REMOTE overrides the file's cache_remote.
conf "$T/cacheE" "$URL"
PROVIUM_CACHE_REMOTE="http://127.0.0.1:$DEAD/" go "env remote" tests/two.test.lua
expect_in "$err" "127.0.0.1:$DEAD" "PROVIUM_CACHE_REMOTE used"
ok "PROVIUM_CACHE_REMOTE overrides cache_remote"

# Config checks.
conf "$T/cacheF" "ftp://x/"
run "$P" --vmm local --no-preflight tests/two.test.lua
expect_rc 2 "ftp cache_remote"; expect_in "$err" "must be an http:// or https:// URL" "scheme checked"
conf "$T/cacheF" "$URL" 'cache_remote_readonly = "yes"'
run "$P" --vmm local --no-preflight tests/two.test.lua
expect_rc 2 "string readonly"; expect_in "$err" "cache_remote_readonly" "bool checked"
ok "config: cache_remote scheme and cache_remote_readonly type checked"

# Bearer token from the env var named by cache_remote_token_env: right
# token uploads; a wrong one is an HTTP 401 warning, and the test passes.
conf "$T/cacheG" "http://127.0.0.1:$PORT/auth/" 'cache_remote_token_env = "FX_TOKEN"'
FX_TOKEN=s3cret go "token" tests/two.test.lua
[ "$(count fixture_remote_put)" -eq 1 ] || fail "token: no upload: $ev $err"
ls "$NX/store/auth/"*.snap >/dev/null 2>&1 || fail "token: nothing stored"
grep -q "s3cret" "$W/provium.toml" && fail "the token is in the file"
conf "$T/cacheH" "http://127.0.0.1:$PORT/auth/" 'cache_remote_token_env = "FX_TOKEN"'
FX_TOKEN=wrong go "wrong token" tests/two.test.lua
[ "$(count fixture_build_started)" -eq 1 ] || fail "wrong token: not built: $ev"
expect_in "$err" "HTTP 401" "wrong token: the status in the warning"
ok "bearer token from cache_remote_token_env; HTTP status in the warning"
