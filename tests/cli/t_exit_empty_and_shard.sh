#!/usr/bin/env bash
# Honest exit codes for runs that run nothing (exit 5 unless
# --allow-empty), and --shard K/N: N jobs together run every selected file
# exactly once.
. "$(dirname "$0")/cli/lib.sh"
W=$T/w
mkdir -p "$W/tests/a" "$W/tests/b"
for i in 1 2 3 4 5 6 7; do
	echo "test(\"t$i\", {tags = {\"smoke\"}}, function(t) t:assert_eq($i, $i) end)" >"$W/tests/a/f$i.test.lua"
done
echo 'test("b", function(t) end)' >"$W/tests/b/g.test.lua"
printf 'todo("later")\ntest("x", function(t) end)\n' >"$W/tests/b/todo.test.lua"
cd "$W" || exit 1

# a --tag that matches nothing: every test left out -> 5, with the reason
run "$P" --vmm local --no-preflight tests/a tests/b/g.test.lua --tag smoek
expect_rc 5 "--tag typo"
expect_in "$err" "provium: no test ran (8 left out by the selection flags): exit 5" "says why"
run "$P" --vmm local --no-preflight --allow-empty tests --tag smoek
expect_rc 0 "--tag typo with --allow-empty"
# skipped by the test itself (todo) is a selected test: not "nothing ran"
run "$P" --vmm local --no-preflight tests/b/todo.test.lua
expect_rc 0 "a todo-only file"
# a path or --filter that selects no file -> 5
run "$P" --vmm local --no-preflight tests --filter nomatch
expect_rc 5 "--filter typo"
expect_in "$err" "nothing to run: exit 5" "says why"
ok "exit 5 when nothing ran"

# shards: disjoint, complete, balanced, stable
run "$P" list tests
expect_rc 0 "list all"
all=$(sort <<<"$out")
union=
for k in 1 2 3; do
	run "$P" list --shard "$k/3" tests
	expect_rc 0 "list shard $k/3"
	n=$(grep -c . <<<"$out")
	[ "$n" -eq 3 ] || fail "shard $k/3 has $n files (9 files / 3 shards): $out"
	union+="$out"$'\n'
done
got=$(grep . <<<"$union" | sort)
[ "$got" = "$all" ] || fail "the union of the shards is not the selection:
$got
---
$all"
[ "$(uniq -d <<<"$got")" = "" ] || fail "a file is in two shards: $(uniq -d <<<"$got")"
a1=$("$P" list --shard 2/3 tests); a2=$("$P" list --shard 2/3 tests)
[ "$a1" = "$a2" ] || fail "shard 2/3 differs between two runs"
ok "3 shards: disjoint, complete, 3 files each, stable"

run "$P" --vmm local --no-preflight --shard 1/2 tests
expect_rc 0 "running one shard"
expect_in "$out" "5 file(s);" "shard 1/2 runs 5 of 9 files"
# more shards than files: an empty shard is fine (exit 0, said)
run "$P" --vmm local --no-preflight --shard 12/12 tests/a
expect_rc 0 "empty shard"
expect_in "$err" "shard 12/12 is empty (7 file(s) selected in all)" "empty shard notice"
for bad in 0/3 4/3 x/3 3 2/; do
	run "$P" --vmm local --shard "$bad" tests
	expect_rc 2 "--shard $bad"
	expect_in "$err" "--shard: expected K/N with 1 <= K <= N" "--shard $bad message"
done
ok "--shard runs its part; empty shard; bad values"
