#!/usr/bin/env bash
# Smoke run of every libFuzzer harness (tests/fuzz/fuzz_*.c, built by
# `make fuzz`) over its checked-in seed corpus tests/fuzz/corpus/<target>/:
# the seeds, then a few seconds of mutation from a fixed seed. A target
# passes when libFuzzer finds no crash, leak or timeout. Prints
# "fuzz: N passed, N failed, N skipped"; without clang/libFuzzer every
# target is skipped.
#
# fuzz_snap also has to sweep the scratch directories a crashed run left
# behind (provium-fuzz-snap-<dead pid>-*) and keep a live run's: two such
# directories are planted before it runs and checked after.
#
# FUZZ_SECONDS (default 3) is the mutation time per target. Findings and
# logs go to build/fuzz/smoke/; the corpus directories are only read.
set -u
cd "$(dirname "$0")/../.."
secs=${FUZZ_SECONDS:-3}
targets=()
for f in tests/fuzz/fuzz_*.c; do t=${f##*/fuzz_}; targets+=("${t%.c}"); done
p=0 f=0 s=0
skip() {
	echo "$1: every fuzz target skipped (tools/setup-deps.sh installs clang)"
	echo "fuzz: 0 passed, 0 failed, ${#targets[@]} skipped"
	exit 0
}
command -v clang >/dev/null || skip "clang missing"
probe=$(mktemp -d)
printf 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return 0; }\n' >"$probe/p.c"
clang -fsanitize=fuzzer,address,undefined -o "$probe/p" "$probe/p.c" >/dev/null 2>&1
rc=$?
rm -rf "$probe"
[ $rc -eq 0 ] || skip "libFuzzer missing (clang -fsanitize=fuzzer does not link)"
if ! make -s fuzz >"build/fuzz-build.log" 2>&1; then
	tail -n 30 build/fuzz-build.log
	echo "*** make fuzz failed"
	echo "fuzz: 0 passed, ${#targets[@]} failed, 0 skipped"
	exit 1
fi
out=build/fuzz/smoke
rm -rf "$out"
mkdir -p "$out"
for t in "${targets[@]}"; do
	bin=build/fuzz/fuzz_$t
	mkdir -p "$out/$t/new"
	# New inputs go to a scratch corpus (first directory); the checked-in
	# one is only read. QMP inputs must fit a socket buffer; the agent
	# client's must hold the StreamEnd flood seed (216 KiB).
	case $t in agent_client) max=262144 ;; *) max=65536 ;; esac
	stale= live=
	if [ "$t" = snap ]; then
		shm=/dev/shm; [ -w "$shm" ] || shm=/tmp
		sh -c 'exit 0' & dead=$!; wait "$dead"
		stale=$(mktemp -d "$shm/provium-fuzz-snap-$dead-XXXXXX")
		live=$(mktemp -d "$shm/provium-fuzz-snap-$$-XXXXXX")
		mkdir "$stale/x" && chmod 000 "$stale/x"
	fi
	if nice -n 5 "$bin" -seed=1 -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
		-max_len=$max -artifact_prefix="$out/$t/" -print_final_stats=1 \
		"$out/$t/new" "tests/fuzz/corpus/$t" >"$out/$t/log" 2>&1 &&
		{ [ -z "$stale" ] || ! [ -e "$stale" ] ||
			{ echo "ERROR: stale scratch dir $stale (dead pid) not swept" >>"$out/$t/log"; false; }; } &&
		{ [ -z "$live" ] || [ -d "$live" ] ||
			{ echo "ERROR: a live run's scratch dir $live was removed" >>"$out/$t/log"; false; }; }; then
		stats=$(grep -E '^stat::number_of_executed_units' "$out/$t/log" | awk '{print $2}')
		echo "ok   $t (${stats:-?} executions)"
		p=$((p + 1))
	else
		echo "FAIL $t: $(grep -m1 -E 'ERROR: |SUMMARY: ' "$out/$t/log")"
		tail -n 40 "$out/$t/log" | sed 's/^/     /'
		ls "$out/$t/" | grep -E '^(crash|leak|timeout|oom)-' | sed "s|^|     artifact: $out/$t/|"
		f=$((f + 1))
	fi
	[ -n "$stale" ] && { chmod -R u+rwx "$stale" 2>/dev/null; rm -rf "$stale"; }
	[ -n "$live" ] && rm -rf "$live"
done
echo "fuzz: $p passed, $f failed, $s skipped"
[ "$f" -eq 0 ]
