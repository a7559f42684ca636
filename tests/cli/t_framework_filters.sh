#!/usr/bin/env bash
# Per-test selection: meta.skip, meta.slow / --include-slow, --tag (OR),
# --no-tag (wins), --tag-meta (OR within a key, AND across keys),
# --no-tag-meta, and file-scope todo().
. "$(dirname "$0")/cli/lib.sh"
CASES=$ROOT/tests/cli/framework

case_run() {
	rm -rf "$T/c" && mkdir -p "$T/c"
	cp "$CASES/$1.case.lua" "$T/c/$1.test.lua"
	(cd "$T/c" && run "$P" --vmm local --no-preflight -v "$1.test.lua" "${@:2}"
	 printf '%s\n' "$rc" >"$T/rc"; printf '%s' "$out" >"$T/o"; printf '%s' "$err" >"$T/e")
	rc=$(cat "$T/rc"); out=$(cat "$T/o"); err=$(cat "$T/e")
}
# ran NAMES...: exactly these tests passed (the rest were skipped).
ran() {
	local got want
	got=$(grep -E '^    PASS ' <<<"$out" | sed 's/^    PASS //; s/ ([0-9]* ms)$//' | sort | paste -sd,)
	want=$(printf '%s\n' "$@" | sort | paste -sd,)
	[ "$got" = "$want" ] || fail "$what: ran [$got], expected [$want]:
$out"
}

what="defaults"; case_run filters
expect_rc 0 "$what"
ran untagged smoke "smoke string" "smoke flaky" fast "peinit boot" "peinit net" loregd "flaky meta"
expect_in "$out" "    SKIP slow smoke (filtered: slow tests skipped (pass --include-slow))" "slow reason"
expect_in "$out" "    SKIP skipped anyway (skipped (meta.skip))" "meta.skip reason"
ok "$what"

what="--include-slow"; case_run filters --include-slow
ran untagged smoke "smoke string" "smoke flaky" fast "slow smoke" "peinit boot" "peinit net" loregd "flaky meta"
ok "$what"

what="--tag smoke"; case_run filters --tag smoke
ran smoke "smoke string" "smoke flaky"
expect_in "$out" "    SKIP untagged (filtered: did not match --tag)" "--tag reason"
ok "$what (single-string tags match)"

what="--tag OR, --no-tag wins"; case_run filters --tag smoke --tag fast --no-tag flaky
ran smoke "smoke string" fast
expect_in "$out" "SKIP smoke flaky (filtered: tag \`flaky\` excluded by --no-tag)" "--no-tag reason"
ok "$what"

what="--include-slow --tag smoke, meta.skip first"; case_run filters --include-slow --tag smoke
ran smoke "smoke string" "smoke flaky" "slow smoke"
expect_in "$out" "    SKIP skipped anyway (skipped (meta.skip))" "meta.skip precedes --tag"
ok "$what"

what="--tag-meta OR within a key"; case_run filters --tag-meta subsystems=peinit --tag-meta subsystems=loregd
ran "peinit boot" "peinit net" loregd "flaky meta"
expect_in "$out" "filtered: did not match --tag-meta subsystems=peinit,loregd" "--tag-meta reason"
ok "$what"

what="--tag-meta AND across keys"; case_run filters --tag-meta subsystems=peinit --tag-meta area=boot
ran "peinit boot"
ok "$what"

what="--no-tag-meta wins"; case_run filters --tag-meta subsystems=peinit --no-tag-meta flaky=true
ran "peinit boot" "peinit net"
expect_in "$out" "SKIP flaky meta (filtered: meta matched --no-tag-meta flaky=true)" "--no-tag-meta reason"
ok "$what"

what="todo"; case_run todo
expect_rc 0 "$what"
expect_in "$out" "PASS todo.test.lua (0 passed, 0 failed, 2 skipped)" "todo skips every test"
expect_in "$out" "    SKIP a (waiting on the spec)" "todo reason"
expect_in "$out" "    SKIP b (waiting on the spec)" "todo reason"
case_run todo_default
expect_in "$out" "    SKIP a (todo)" "todo default reason"
ok "$what"
