#!/usr/bin/env bash
# Runs the official toml-test corpus (TOML 1.0.0 file list) against
# build/toml-decode: every valid/*.toml must decode to JSON semantically equal
# to its valid/*.json; every invalid/*.toml must be rejected (non-zero exit).
# Comparison follows toml-test: integers and floats by value (nan == nan),
# offset date-times as instants, local date-times/dates/times by their parts.
# Last line: "toml-test: N passed, N failed, N skipped".
#
# Corpus location: $TOML_TEST_DIR, else shared/toml-test next to the repo.
# Decoder: $TOML_DECODER, else build/toml-decode.
set -u
cd "$(dirname "$0")/../.."
root=$(pwd)
corpus=${TOML_TEST_DIR:-}
if [ -z "$corpus" ]; then
	for d in "$root/../shared/toml-test" "$root/shared/toml-test" /work/shared/toml-test; do
		[ -f "$d/files-toml-1.0.0" ] && { corpus=$d; break; }
	done
fi
decoder=${TOML_DECODER:-$root/build/toml-decode}
if [ -z "$corpus" ] || [ ! -f "$corpus/files-toml-1.0.0" ]; then
	echo "toml-test corpus not found (set TOML_TEST_DIR)"
	echo "toml-test: 0 passed, 0 failed, 1 skipped"
	exit 0
fi
if [ ! -x "$decoder" ]; then
	echo "decoder $decoder not built"
	echo "toml-test: 0 passed, 1 failed, 0 skipped"
	exit 1
fi

exec python3 - "$corpus" "$decoder" <<'PY'
import json, math, re, subprocess, sys

corpus, decoder = sys.argv[1], sys.argv[2]
files = [l.strip() for l in open(f"{corpus}/files-toml-1.0.0") if l.strip()]
tests = [f for f in files if f.endswith(".toml")]

DT = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?"
                r"(?:([Zz])|([+-])(\d{2}):(\d{2}))?$")
TM = re.compile(r"^(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?$")

def frac_ns(f):
    return int((f or "0")[:9].ljust(9, "0"))

def days_from_civil(y, m, d):
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468

def norm_scalar(t, v):
    """A comparable form of a tagged leaf, or None when it does not parse."""
    if t == "integer":
        return int(v)
    if t == "float":
        f = float(v)
        return ("nan",) if math.isnan(f) else f
    if t in ("string", "bool"):
        return v
    if t in ("datetime", "datetime-local"):
        m = DT.match(v)
        if not m:
            return None
        y, mo, d, h, mi, s = (int(x) for x in m.group(1, 2, 3, 4, 5, 6))
        ns = frac_ns(m.group(7))
        secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s
        if t == "datetime":
            if not m.group(8) and not m.group(9):
                return None
            if m.group(9):
                off = (int(m.group(10)) * 60 + int(m.group(11))) * 60
                secs -= off if m.group(9) == "+" else -off
            return (secs, ns)
        if m.group(8) or m.group(9):
            return None
        return (secs, ns)
    if t == "date-local":
        return v if re.match(r"^\d{4}-\d{2}-\d{2}$", v) else None
    if t == "time-local":
        m = TM.match(v)
        if not m:
            return None
        return tuple(int(x) for x in m.group(1, 2, 3)) + (frac_ns(m.group(4)),)
    return None

def is_leaf(o):
    return isinstance(o, dict) and set(o) == {"type", "value"} and \
        isinstance(o.get("type"), str) and isinstance(o.get("value"), str)

def diff(want, got, path="$"):
    """None when equal, else a description of the first difference."""
    if is_leaf(want):
        if not is_leaf(got):
            return f"{path}: want {want['type']} value, got {json.dumps(got)[:80]}"
        if want["type"] != got["type"]:
            return f"{path}: want type {want['type']}, got {got['type']}"
        a, b = norm_scalar(want["type"], want["value"]), norm_scalar(got["type"], got["value"])
        if b is None or a != b:
            return f"{path}: want {want['value']!r}, got {got['value']!r}"
        return None
    if isinstance(want, dict):
        if not isinstance(got, dict) or is_leaf(got):
            return f"{path}: want table, got {json.dumps(got)[:80]}"
        if set(want) != set(got):
            return f"{path}: keys differ: want {sorted(want)}, got {sorted(got)}"
        for k in want:
            d = diff(want[k], got[k], f"{path}.{k}")
            if d:
                return d
        return None
    if isinstance(want, list):
        if not isinstance(got, list) or len(want) != len(got):
            return f"{path}: want array of {len(want)}, got {json.dumps(got)[:80]}"
        for i, (a, b) in enumerate(zip(want, got)):
            d = diff(a, b, f"{path}[{i}]")
            if d:
                return d
        return None
    return f"{path}: unexpected expected-value {want!r}"

passed = failed = skipped = 0
for rel in tests:
    path = f"{corpus}/{rel}"
    try:
        data = open(path, "rb").read()
    except OSError as e:
        print(f"SKIP {rel}: {e}")
        skipped += 1
        continue
    try:
        r = subprocess.run([decoder], input=data, capture_output=True, timeout=10)
    except subprocess.TimeoutExpired:
        print(f"FAIL {rel}: decoder timed out")
        failed += 1
        continue
    except OSError as e:
        print(f"FAIL {rel}: cannot run decoder: {e}")
        failed += 1
        continue
    if rel.startswith("invalid/"):
        if r.returncode > 0:
            passed += 1
        elif r.returncode < 0:
            print(f"FAIL {rel}: decoder died with signal {-r.returncode}")
            failed += 1
        else:
            print(f"FAIL {rel}: invalid document accepted")
            failed += 1
        continue
    if r.returncode != 0:
        print(f"FAIL {rel}: rejected: {r.stderr.decode(errors='replace').strip()}")
        failed += 1
        continue
    try:
        want = json.load(open(path[:-5] + ".json", encoding="utf-8"))
        got = json.loads(r.stdout.decode("utf-8"))
    except (ValueError, OSError) as e:
        print(f"FAIL {rel}: bad JSON: {e}")
        failed += 1
        continue
    d = diff(want, got)
    if d:
        print(f"FAIL {rel}: {d}")
        failed += 1
    else:
        passed += 1

print(f"toml-test: {passed} passed, {failed} failed, {skipped} skipped")
sys.exit(1 if failed else 0)
PY
