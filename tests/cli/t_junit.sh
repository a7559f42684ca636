#!/usr/bin/env bash
# --junit PATH: the XML is well-formed (xmllint) and reads right in
# junitparser (what CI reporters' parsers accept): totals, suites, classnames,
# numeric times, failure text and t:log output, skip reasons, an <error>
# for a file whose top level raised, XML escaping; written also when files
# failed, and atomically (no temp file left behind).
. "$(dirname "$0")/cli/lib.sh"
# python3-junitparser installs for Debian's /usr/bin/python3, which need
# not be the python3 first on PATH (pyenv, venvs).
PYJ=
for py in python3 /usr/bin/python3; do
	"$py" -c 'import junitparser' 2>/dev/null && { PYJ=$py; break; }
done
if [ -z "$PYJ" ]; then
	# CI runs as root with tools/setup-deps.sh done: a missing module there
	# is a broken setup, not a reason to skip.
	[ "$(id -u)" -ne 0 ] && { echo "skip: python3-junitparser not installed"; exit 77; }
	fail "python3 module junitparser missing (tools/setup-deps.sh installs python3-junitparser)"
fi
command -v xmllint >/dev/null || {
	[ "$(id -u)" -ne 0 ] && { echo "skip: xmllint not installed"; exit 77; }
	fail "xmllint missing (tools/setup-deps.sh installs libxml2-utils)"
}
mk_project
cd "$T/p"
cat >>tests/smoke.test.lua <<'LUA'
test('esc <&"> it\'s', function(t) end)
LUA
cat >>tests/sub/bad.test.lua <<'LUA'
test("raw bytes", function(t) t:log("ctl \1 and \255 bytes"); t:fail("bad \2 byte") end)
LUA
cat >tests/err.test.lua <<'LUA'
test("never", function(t) end)
error("boom at the top level")
LUA

run "$P" --vmm local --no-preflight tests --junit "$T/out/report.xml"
expect_rc 2 "--junit into a missing directory"
expect_in "$err" "--junit: create" "--junit error names the step"
expect_in "$err" "$T/out/report.xml" "--junit error names the path"
ok "--junit: unwritable path is exit 2"

run "$P" --vmm local --no-preflight tests --junit "$T/report.xml"
expect_rc 1 "failing run with --junit"
[ -s "$T/report.xml" ] || fail "no report written"
ls "$T" | grep -q 'report.xml.tmp' && fail "temp file left behind"
xmllint --noout "$T/report.xml" || fail "xmllint rejects the report: $(cat "$T/report.xml")"
"$PYJ" - "$T/report.xml" <<'PY' || fail "junit report: $(cat "$T/report.xml")"
import sys
from junitparser import JUnitXml, TestSuite, Failure, Skipped, Error
xml = JUnitXml.fromfile(sys.argv[1])
suites = {s.name: s for s in xml}
assert set(suites) == {"tests/err.test.lua", "tests/smoke.test.lua", "tests/sub/bad.test.lua"}, list(suites)
# root totals: 4 smoke + 3 bad + 1 error case for err.test.lua
assert (xml.tests, xml.failures, xml.errors, xml.skipped) == (8, 2, 1, 1), \
    (xml.tests, xml.failures, xml.errors, xml.skipped)
assert isinstance(xml.time, float) and xml.time > 0, xml.time
for s in suites.values():
    assert isinstance(s.time, float) and s.time >= 0, s.time
    assert s.timestamp and "T" in s.timestamp, s.timestamp
    cases = list(s)
    assert s.tests == len(cases), (s.name, s.tests, len(cases))
    for c in cases:
        assert isinstance(c.time, float) and c.time >= 0, (c.name, c.time)

sm = suites["tests/smoke.test.lua"]
assert (sm.tests, sm.failures, sm.errors, sm.skipped) == (4, 0, 0, 1)
cases = {c.name: c for c in sm}
assert set(cases) == {"one", "two", "later", "esc <&\"> it's"}, list(cases)
assert all(c.classname == "tests.smoke" for c in sm), [c.classname for c in sm]
assert cases["one"].is_passed and not cases["one"].result
sk = cases["later"].result
assert len(sk) == 1 and isinstance(sk[0], Skipped) and "not yet" in sk[0].message, sk

bad = suites["tests/sub/bad.test.lua"]
assert (bad.tests, bad.failures, bad.errors, bad.skipped) == (3, 2, 0, 0)
cases = {c.name: c for c in bad}
assert all(c.classname == "tests.sub.bad" for c in bad)
fl = cases["broken"].result
assert len(fl) == 1 and isinstance(fl[0], Failure), fl
assert fl[0].type == "AssertionError", fl[0].type
assert fl[0].message.endswith("expected failure"), fl[0].message   # first line only
assert "expected failure\nsecond line" in fl[0].text, fl[0].text
assert cases["broken"].system_out.strip() == "a log line", cases["broken"].system_out
rb = cases["raw bytes"]
assert "\ufffd" in rb.system_out and "and \ufffd bytes" in rb.system_out, repr(rb.system_out)
assert "bad \ufffd byte" in rb.result[0].message, repr(rb.result[0].message)
assert cases["fine"].is_passed

er = suites["tests/err.test.lua"]
assert (er.tests, er.failures, er.errors) == (1, 0, 1), (er.tests, er.failures, er.errors)
(c,) = list(er)
assert c.classname == "tests.err"
assert len(c.result) == 1 and isinstance(c.result[0], Error), c.result
assert "boom at the top level" in c.result[0].message, c.result[0].message
PY
grep -qF 'name="esc &lt;&amp;&quot;&gt; it&apos;s"' "$T/report.xml" || fail "name not escaped: $(grep esc "$T/report.xml")"
ok "--junit report content"

# a passing run rewrites the report (atomically: same path, new content)
run "$P" --vmm local --no-preflight tests/smoke.test.lua --junit "$T/report.xml"
expect_rc 0 "passing run with --junit"
xmllint --noout "$T/report.xml" || fail "second report malformed"
"$PYJ" - "$T/report.xml" <<'PY' || fail "second report: $(cat "$T/report.xml")"
import sys
from junitparser import JUnitXml
xml = JUnitXml.fromfile(sys.argv[1])
assert [s.name for s in xml] == ["tests/smoke.test.lua"]
assert (xml.tests, xml.failures, xml.errors, xml.skipped) == (4, 0, 0, 1)
PY
ok "--junit on a passing run"

# a runner that dies mid-test: the test in flight fails, the file errors
mkdir -p c
cat >c/crash.test.lua <<'LUA'
test("first", function(t) end)
test("exits", function(t) os.exit(3) end)
LUA
run "$P" --vmm local --no-preflight c --junit "$T/crash.xml"
expect_rc 1 "crashing runner with --junit"
xmllint --noout "$T/crash.xml" || fail "crash report malformed"
"$PYJ" - "$T/crash.xml" <<'PY' || fail "crash report: $(cat "$T/crash.xml")"
import sys
from junitparser import JUnitXml, Failure, Error
(s,) = list(JUnitXml.fromfile(sys.argv[1]))
cases = {c.name: c for c in s}
assert set(cases) == {"first", "exits", "(file)"}, list(cases)
assert isinstance(cases["exits"].result[0], Failure)
e = cases["(file)"].result[0]
assert isinstance(e, Error) and e.type == "crashed" and "status 3" in e.message, (e.type, e.message)
assert (s.tests, s.failures, s.errors) == (3, 1, 1)
PY
ok "--junit: crashed runner is an error"

run "$P" --junit
expect_rc 2 "--junit without a path"
run "$P" --help
expect_in "$out" "--junit PATH" "usage lists --junit"
ok "--junit usage"
