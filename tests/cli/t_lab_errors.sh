#!/usr/bin/env bash
# Lab and local-VM failure paths seen from the CLI: shadow detection, a
# second claim, an undeclared profile (only `default` exists without a
# provium.toml), "not supported by the local backend", assert_ok and
# wrong-state messages, and the claim / vm_spawned / vm_shutdown events.
# Case files live in tests/cli/lab/*.case.lua (not *.test.lua, so no
# discovery run of the repository picks up these deliberate failures).
. "$(dirname "$0")/cli/lib.sh"
CASES=$ROOT/tests/cli/lab

# case NAME: run tests/cli/lab/NAME.case.lua alone; sets rc/out/err.
case_run() {
	rm -rf "$T/c" && mkdir -p "$T/c"
	cp "$CASES/$1.case.lua" "$T/c/$1.test.lua"
	(cd "$T/c" && run "$P" --vmm local --no-preflight "$1.test.lua" "${@:2}"
	 printf '%s\n' "$rc" >"$T/rc"; printf '%s' "$out" >"$T/o"; printf '%s' "$err" >"$T/e")
	rc=$(cat "$T/rc"); out=$(cat "$T/o"); err=$(cat "$T/e")
}

case_run shadow
expect_rc 1 "shadow"
expect_in "$out" 'shadow.test.lua:5: name already declared at parent scope (lab `provium`). Pick a different name, or use `provium:vm("shared")` to reuse it.' "shadow message with the user's line"
expect_in "$out" "1 passed, 1 failed" "reuse by lookup passes"
ok "shadow detection fails the test"

case_run claim_twice
expect_rc 1 "claim twice"
expect_in "$out" "claim_twice.test.lua:3: claim already taken" "second claim"
ok "second claim fails the file"

case_run unsupported
expect_rc 1 "unsupported"
expect_in "$out" 'vm `a`: clock:set is not supported by the local backend (it runs no guest kernel); use --vmm qemu' "unsupported op"
ok "unsupported op names the backend"

case_run assert_ok
expect_rc 1 "assert_ok"
expect_in "$out" "status exited, exit code 4" "assert_ok status"
expect_in "$out" "to-stdout" "assert_ok stdout"
expect_in "$out" "to-stderr" "assert_ok stderr"
expect_in "$out" 'vm `b`: cannot run: vm is Created (not booted: boot it first)' "wrong-state message"
ok "assert_ok and wrong-state messages"

case_run unknown_profile
expect_rc 1 "unknown profile"
expect_in "$out" 'unknown_profile.test.lua:4: vm `a`: unknown profile `peios` (declare [profiles.peios] in provium.toml)' "unknown profile names the profile at the user's line"
expect_in "$out" "1 passed, 1 failed" "built-in default profile needs no config"
ok "only the built-in default profile exists without a config"

rm -rf "$T/c" && mkdir -p "$T/c" && cp "$CASES/events.case.lua" "$T/c/events.test.lua"
(cd "$T/c" && "$P" --vmm local --no-preflight events.test.lua --events-stdout >"$T/ev.bin" 2>"$T/ev.err")
rc=$?
[ $rc -eq 0 ] || fail "events case exit $rc: $(cat "$T/ev.err")"
$DECODE "$T/ev.bin" >"$T/ev.jsonl" || fail "event stream does not decode"
python3 - "$T/ev.jsonl" <<'PY' || fail "event checks"
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
k = [e["kind"] for e in ev]
p = lambda kind: [e["payload"] for e in ev if e["kind"] == kind]
ca, cr = p("claim_acquired"), p("claim_released")
assert len(ca) == 1 and len(cr) == 1, k
assert ca[0] == {"path": "events.test.lua", "amount": {"memory_bytes": 1 << 30, "cpus": 2}}, ca
assert cr[0] == ca[0], cr
sp = p("vm_spawned")
assert [s["vm_name"] for s in sp] == ["filevm", "testvm"], sp
assert set(sp[1]) == {"file", "vm_name", "profile", "memory_bytes", "cid"}, sp
assert sp[1]["memory_bytes"] == 256 << 20 and sp[1]["cid"] >= 3 and sp[1]["cid"] != sp[0]["cid"] and sp[1]["profile"] == "default", sp
sd = p("vm_shutdown")
assert [s["vm_name"] for s in sd] == ["testvm", "filevm"], sd
assert set(sd[0]) == {"file", "vm_name", "duration_ns"}, sd
# the test-scope VM is shut down before the test's outcome; the file VM at file end
assert k.index("vm_shutdown") < k.index("test_passed"), k
assert k.index("claim_released") > k.index("test_passed"), k
PY
ok "claim and vm events"
