#!/usr/bin/env bash
# Runs every tests/cli/t_*.sh: exit 0 = pass, 77 = skip, anything else =
# fail (its output is printed). Ends with "cli: N passed, N failed, N skipped".
# PROVIUM_BIN overrides the binary under test (default build/provium).
set -u
here=$(cd "$(dirname "$0")" && pwd)
p=0 f=0 s=0
for t in "$here"/t_*.sh; do
	[ -e "$t" ] || continue
	name=$(basename "$t")
	out=$(bash "$t" 2>&1); rc=$?
	case $rc in
	0) p=$((p + 1)); echo "PASS $name" ;;
	77) s=$((s + 1)); echo "SKIP $name: $(tail -n 1 <<<"$out")" ;;
	*) f=$((f + 1)); echo "FAIL $name (exit $rc)"; sed 's/^/    /' <<<"$out" ;;
	esac
done
echo "cli: $p passed, $f failed, $s skipped"
[ "$f" -eq 0 ]
