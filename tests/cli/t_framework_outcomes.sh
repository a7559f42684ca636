#!/usr/bin/env bash
# Outcomes of tests as the reference implementation's conformance tests
# check them, read from --json: failure messages (with the position of the
# failing assertion's caller), skip reasons, logs, declaration order,
# meta-driven skips, todo(), chunk errors, a bad profile inside a test, and
# one vm_shutdown per spawned VM.
. "$(dirname "$0")/cli/lib.sh"
mkdir -p "$T/p"
cd "$T/p"

cat >o.test.lua <<'LUA'
test("t:assert false", function(t) t:assert(false, "intentional failure") end)
test("assert_eq diff", function(t) t:assert_eq("apple", "orange") end)
test("assert_neq match", function(t) t:assert_neq(7, 7) end)
test("eq fails", function(t) t:assert_eq(1, 2, "intentional") end)
test("skipped", function(t)
	t:skip("kernel doesn't support this yet")
	error("should never reach here")
end)
test("with log", function(t) t:log("step 1"); t:log("step 2"); t:assert(true) end)
test("alpha", function(t) t:assert(true) end)
test("beta", function(t) t:fail("nope") end)
test("gamma", function(t) t:skip("later") end)
test("sticky", function(t) pcall(function() t:assert_eq(1, 2) end) end)
test("bad profile", function(t) provium:vm("dc1", "no-such-profile") end)
test("slow body", {slow = true}, function(t) t:assert(false, "this should not run") end)
test("explicit skip", {skip = "broken on macOS"}, function(t) t:assert(false) end)
test("unknown meta", {custom_key = "value", other = 42}, function(t) t:assert(true) end)
test("tagged", {tags = {"unit", "fast"}}, function(t) t:assert(true) end)
LUA
"$P" --vmm local --no-preflight o.test.lua --json >o.json 2>o.err
rc=$?
[ "$rc" -eq 1 ] || fail "exit $rc: $(cat o.err)"
python3 - o.json <<'PY' || fail "outcomes: $(cat o.json)"
import json, sys
f = json.loads(open(sys.argv[1]).read().splitlines()[0])
assert f["chunk_error"] is None, f
got = [(t["name"], t["status"], t["message"], t["log"]) for t in f["tests"]]
want = [
    ("t:assert false", "failed", "o.test.lua:1: intentional failure", []),
    ("assert_eq diff", "failed", 'o.test.lua:2: "apple" ~= "orange"', []),
    ("assert_neq match", "failed", "o.test.lua:3: 7 == 7", []),
    ("eq fails", "failed", "o.test.lua:4: intentional: 1 ~= 2", []),
    ("skipped", "skipped", "kernel doesn't support this yet", []),
    ("with log", "passed", None, ["step 1", "step 2"]),
    ("alpha", "passed", None, []),
    ("beta", "failed", "o.test.lua:11: nope", []),
    ("gamma", "skipped", "later", []),
    ("sticky", "failed", "1 ~= 2", []),
]
assert got[:len(want)] == want, got
name, status, msg, _ = got[len(want)]
assert (name, status) == ("bad profile", "failed") and "no-such-profile" in msg, got
rest = {(n, s) for n, s, _, _ in got[len(want) + 1:]}
assert rest == {("slow body", "skipped"), ("explicit skip", "skipped"),
                ("unknown meta", "passed"), ("tagged", "passed")}, rest
PY
ok "outcome statuses, messages, logs and order"

cat >todo.test.lua <<'LUA'
todo("not yet")
test("would be a test", function(t) error("must not run") end)
LUA
run "$P" --vmm local --no-preflight todo.test.lua --json
expect_rc 0 "todo()"
expect_in "$out" '{"name":"would be a test","status":"skipped","message":"not yet"' "todo() skips the test"
ok "todo"

printf 'this is not valid lua at all (\n' >chunk.test.lua
run "$P" --vmm local --no-preflight chunk.test.lua --json
expect_rc 1 "chunk error"
python3 -c '
import json, sys
f = json.loads(sys.argv[1])
assert f["chunk_error"] and f["tests"] == [] and f["passed"] is False, f
' "$out" || fail "chunk error: $out"
ok "chunk error"

cat >c.test.lua <<'LUA'
local shared = provium:vm("shared", "default"):boot()
local never_booted = provium:vm("never", "default")
test("implicit close", function(t) provium:vm("temporary", "default"):boot() end)
test("explicit close", function(t)
	local vm = provium:vm("explicit", "default"):boot()
	vm:shutdown()
	vm:close()
end)
LUA
"$P" --vmm local --no-preflight c.test.lua --events-stdout >c.bin 2>c.err || fail "cleanup file: $(cat c.err)"
$DECODE c.bin >c.jsonl || fail "event stream does not decode"
python3 - c.jsonl <<'PY' || fail "vm events: $(cat c.jsonl)"
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
sp = sorted((e["payload"]["file"], e["payload"]["vm_name"]) for e in ev if e["kind"] == "vm_spawned")
sd = sorted((e["payload"]["file"], e["payload"]["vm_name"]) for e in ev if e["kind"] == "vm_shutdown")
assert len(sp) == 3 and sp == sd, (sp, sd)
PY
ok "one vm_shutdown per booted VM"
