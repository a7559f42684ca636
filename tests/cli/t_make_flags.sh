#!/usr/bin/env bash
# t_make_flags.sh — the Makefile keeps what the build needs when the user
# sets CFLAGS / CC on the command line (git-style ALL_CFLAGS):
#  1. `make -n CFLAGS=-O0` still passes the include paths, the warning list
#     and the version define, and the user's -O0;
#  2. with gcc and (when installed) clang, the files whose warnings were
#     fixed compile with -O0 -Werror into a private build tree.
. "$(dirname "$0")/cli/lib.sh"
cd "$ROOT"
command -v make >/dev/null || { echo "skip: make missing"; exit 77; }

obj=$T/b/obj/src/host/units.o
run make -n -B B="$T/b" CFLAGS=-O0 "$obj"
expect_rc 0 "make -n CFLAGS=-O0"
line=$(grep -F -- "-c src/host/units.c" <<<"$out")
[ -n "$line" ] || fail "no compile line for units.c in: $out"
for want in -Isrc/host -Wshadow -Wmissing-prototypes -DPROVIUM_VERSION -O0; do
	expect_in "$line" "$want" "compile line with CFLAGS=-O0"
done
expect_not_in "$line" "-O2" "CFLAGS=-O0 replaces the default -O2"
ok "command-line CFLAGS keeps includes and warnings"

files="src/host/cli.c src/host/lua/lfile.c src/host/fixture/build.c"
for cc in gcc clang; do
	command -v "$cc" >/dev/null || { echo "note: $cc not installed"; continue; }
	objs=
	for f in $files; do objs="$objs $T/$cc/obj/${f%.c}.o"; done
	run make -s B="$T/$cc" CC="$cc" CFLAGS="-O0 -Werror" $objs
	expect_rc 0 "$cc -O0 -Werror"
	ok "$cc builds $files warning-free"
done
exit 0
