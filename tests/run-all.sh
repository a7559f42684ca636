#!/usr/bin/env bash
# Runs every test suite of `make check` and prints one final line
# "N passed, N failed, N skipped" (the sum over suites).
#
# Each suite is a command whose output's last line matching
# "<n> passed, <n> failed, <n> skipped" gives its counts. A suite that
# prints no such line counts as one failure (it crashed or never ran), and
# so does one that exits non-zero while reporting no failed test.
set -u
cd "$(dirname "$0")/.."

suites=(
	"unit|bash tests/unit/run.sh"
	"toml-test|bash tests/toml/run.sh"
	"harness|build/provium --vmm local --no-preflight tests/harness"
	"cli|bash tests/cli/run.sh"
	"fuzz|bash tests/fuzz/run.sh"
)
[ -x tests/vm/run.sh ] && suites+=("vm|bash tests/vm/run.sh")

tp=0 tf=0 ts=0
logdir=build/test-logs
mkdir -p "$logdir"
for s in "${suites[@]}"; do
	name=${s%%|*} cmd=${s#*|}
	echo "=== $name: $cmd"
	$cmd 2>&1 | tee "$logdir/$name.log"
	rc=${PIPESTATUS[0]}
	line=$(grep -E '[0-9]+ passed, [0-9]+ failed, [0-9]+ skipped' "$logdir/$name.log" | tail -n 1)
	if [[ $line =~ ([0-9]+)\ passed,\ ([0-9]+)\ failed,\ ([0-9]+)\ skipped ]]; then
		tp=$((tp + BASH_REMATCH[1])); tf=$((tf + BASH_REMATCH[2])); ts=$((ts + BASH_REMATCH[3]))
		# A suite that exits non-zero with no failed test (a file whose chunk
		# errored, a crashed runner) still failed: count it once.
		if [ "$rc" -ne 0 ] && [ "${BASH_REMATCH[2]}" -eq 0 ]; then
			echo "*** suite $name exited $rc with no failed test: counted as 1 failure"
			tf=$((tf + 1))
		fi
	else
		echo "*** suite $name printed no summary line: counted as 1 failure"
		tf=$((tf + 1))
	fi
done
echo
echo "$tp passed, $tf failed, $ts skipped"
[ "$tf" -eq 0 ]
