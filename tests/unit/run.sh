#!/usr/bin/env bash
# Runs every cmocka unit-test binary under build/tests/ and sums the counts.
set -u
cd "$(dirname "$0")/../.."
p=0 f=0 s=0
n_bins=0
for t in build/tests/test_*; do
	[ -x "$t" ] || continue
	n_bins=$((n_bins + 1))
	out=$("$t" 2>&1); rc=$?
	echo "$out"
	n=$(grep -Eo '\[  PASSED  \] [0-9]+' <<<"$out" | grep -Eo '[0-9]+$' | tail -1)
	x=$(grep -Eo '\[  FAILED  \] [0-9]+' <<<"$out" | grep -Eo '[0-9]+$' | tail -1)
	k=$(grep -Eo '\[  SKIPPED \] [0-9]+' <<<"$out" | grep -Eo '[0-9]+$' | tail -1)
	p=$((p + ${n:-0})); f=$((f + ${x:-0})); s=$((s + ${k:-0}))
	if [ $rc -ne 0 ] && [ -z "${x:-}" ]; then f=$((f + 1)); echo "*** $t exited $rc"; fi
done
# No binaries at all means the unit tests were never built (run them
# through `make check` or `make unit`): that is a failure, not a pass.
if [ "$n_bins" -eq 0 ]; then f=$((f + 1)); echo "*** no unit-test binaries under build/tests (make unit)"; fi
echo "unit: $p passed, $f failed, $s skipped"
