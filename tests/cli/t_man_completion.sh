#!/usr/bin/env bash
# The man page (docs/provium.1) and the bash and zsh completions
# (completions/provium.bash, completions/_provium) against the --help
# table: every flag of `provium --help` and of `provium help SUBCOMMAND`,
# and every subcommand, must appear in all three (a flag added later
# fails here until documented); the bash completion offers each flag for
# its prefix; the page renders without groff/man warnings; both scripts
# parse (zsh only when installed) and zsh offers a flag in a real
# completion (zpty); `make install` puts all three in place.
. "$(dirname "$0")/cli/lib.sh"

MAN=$ROOT/docs/provium.1
BASHC=$ROOT/completions/provium.bash
ZSHC=$ROOT/completions/_provium
for f in "$MAN" "$BASHC" "$ZSHC"; do [ -f "$f" ] || fail "missing $f"; done

# the flags (-x, --long-name) in help text on stdin, one per line
flags_of() {
	grep -oE '(^|[][ ,|(])--?[A-Za-z][A-Za-z0-9-]*' | sed -E 's/^[][ ,|(]//' | sort -u
}
# has FILE WORD: WORD as a whole token (man page: \- read as -)
has() {
	sed 's/\\-/-/g' "$1" | grep -qE -- "(^|[^A-Za-z0-9-])$2([^A-Za-z0-9-]|$)"
}
# missing_in WHAT WORDS...: prints "WORD not in FILE" for each gap
missing_in() {
	local w f
	for w in "$@"; do
		for f in "$MAN" "$BASHC" "$ZSHC"; do
			has "$f" "$w" || echo "$w not in ${f#"$ROOT"/}"
		done
	done
}
# bash_offers WORD-BEFORE... CUR: does _provium offer CUR for itself?
bash_offers() {
	bash -c 'source "$1"; shift; COMP_WORDS=(provium "$@"); COMP_CWORD=$#; _provium
		for r in "${COMPREPLY[@]}"; do [ "$r" = "${!#}" ] && exit 0; done; exit 1' \
		_ "$BASHC" "$@"
}

# The checker itself must catch a flag nobody documented.
[ -n "$(missing_in --no-such-flag-xyz)" ] || fail "the check does not catch an undocumented flag"

run "$P" --help
expect_rc 0 "provium --help"
main_help=$out
mapfile -t main_flags < <(flags_of <<<"$main_help")
[ "${#main_flags[@]}" -ge 30 ] || fail "only ${#main_flags[@]} flags found in --help: ${main_flags[*]}"
for f in --junit --vmm -v --verbose -h; do
	printf '%s\n' "${main_flags[@]}" | grep -qx -- "$f" || fail "extraction missed $f"
done
mapfile -t subs < <(sed -nE 's/^(usage:)? +provium ([a-z][a-z-]*).*/\2/p' <<<"$main_help" | sort -u)
[ "${#subs[@]}" -ge 4 ] || fail "subcommands not found in --help: ${subs[*]}"

gaps=$(missing_in "${main_flags[@]}" "${subs[@]}")
for s in "${subs[@]}"; do
	[ "$s" = help ] && continue
	run "$P" help "$s"
	expect_rc 0 "provium help $s"
	mapfile -t sflags < <(flags_of <<<"$out")
	gaps+=$'\n'$(missing_in "${sflags[@]}")
	for f in "${sflags[@]}"; do
		# flags shared with the run table may come before the subcommand
		bash_offers "$s" "$f" || printf '%s\n' "${main_flags[@]}" | grep -qx -- "$f" ||
			gaps+=$'\n'"bash completion of \`provium $s $f\` does not offer it"
	done
done
# the run table's flags (the usage lines also name subcommand flags)
mapfile -t table_flags < <(grep -E '^ +-' <<<"$main_help" | flags_of)
for f in "${table_flags[@]}"; do
	bash_offers "$f" || gaps+=$'\n'"bash completion of \`provium $f\` does not offer it"
done
for s in "${subs[@]}"; do
	bash_offers "$s" || gaps+=$'\n'"bash completion of \`provium $s\` does not offer it"
done
gaps=$(sed '/^$/d' <<<"$gaps")
[ -z "$gaps" ] || fail "flags or subcommands of --help not documented/completed:
$gaps"
ok "every --help flag and subcommand (${#main_flags[@]} + ${#subs[@]}) is in the man page and both completions"

bash -n "$BASHC" || fail "bash -n $BASHC"
bash -c 'source "$1"; COMP_WORDS=(provium --ju); COMP_CWORD=1; _provium; [ "${COMPREPLY[*]}" = --junit ]' _ "$BASHC" ||
	fail "bash: \`provium --ju\` does not complete to --junit"
bash -c 'source "$1"; COMP_WORDS=(provium --vmm ""); COMP_CWORD=2; _provium; [ "${COMPREPLY[*]}" = "qemu local" ]' _ "$BASHC" ||
	fail "bash: --vmm values"
mkdir -p "$T/proj" && printf '[profiles.alpha]\nkernel = "k"\n' >"$T/proj/provium.toml"
(cd "$T/proj" && bash -c 'source "$1"; COMP_WORDS=(provium repl ""); COMP_CWORD=2; _provium; [ "${COMPREPLY[*]}" = "default alpha" ]' _ "$BASHC") ||
	fail "bash: repl completes the profiles of provium.toml"
ok "bash completion: parses, --ju -> --junit, --vmm values, repl profiles"

command -v groff >/dev/null || fail "no groff (groff-base, tools/setup-deps.sh)"
w=$(groff -man -Tutf8 -ww -z "$MAN" 2>&1)
[ -z "$w" ] || fail "groff -ww warns:
$w"
rendered=$(groff -man -Tutf8 "$MAN" 2>/dev/null | sed 's/.\x08//g')
expect_in "$rendered" "--junit PATH" "the rendered page shows --junit"
expect_in "$rendered" "repl_history" "the rendered page names the history file"
if command -v man >/dev/null; then
	w=$(MANWIDTH=80 man --warnings -l "$MAN" 2>&1 >/dev/null)
	[ -z "$w" ] || fail "man -l warns:
$w"
fi
if command -v mandoc >/dev/null; then
	w=$(mandoc -Tlint -W warning "$MAN" 2>&1)
	[ -z "$w" ] || fail "mandoc -Tlint:
$w"
fi
ok "the man page renders without warnings"

if command -v zsh >/dev/null; then
	zsh -n "$ZSHC" || fail "zsh -n $ZSHC"
	# A real completion: an interactive zsh on a pty, compinit with our
	# directory first in fpath, `provium --ju<Tab>`.
	got=$(ZC=$ROOT/completions ZD=$T/zcompdump timeout 60 zsh -f -c '
		zmodload zsh/zpty || exit 3
		zpty z zsh -f -i
		zpty -w z "PS1=\"%% \"; fpath=($ZC \$fpath); autoload -Uz compinit; compinit -u -d $ZD; print RE\"\"ADY"
		out=
		for i in {1..200}; do
			zpty -r -t z chunk && out+=$chunk
			[[ $out == *READY* ]] && break
			sleep 0.1
		done
		zpty -n -w z "provium --ju"$'"'"'\t'"'"'
		out=
		for i in {1..200}; do
			zpty -r -t z chunk && out+=$chunk
			[[ $out == *--junit* ]] && break
			sleep 0.1
		done
		print -r -- "$out"
		zpty -d z' 2>&1 | tr -d '\033')
	expect_in "$got" "provium --junit" "zsh completes --ju to --junit (got: $got)"
	ok "zsh completion: parses and completes --ju to --junit"
else
	echo "note: no zsh: the zsh completion was only checked for its flags"
fi

# make install puts the page and both scripts in place.
run make -C "$ROOT" -s install-docs DESTDIR="$T/dest" PREFIX=/usr
expect_rc 0 "make install-docs"
for f in share/man/man1/provium.1 share/bash-completion/completions/provium share/zsh/vendor-completions/_provium; do
	[ -f "$T/dest/usr/$f" ] || fail "make install did not install $f"
done
ok "make install: man1/provium.1, bash and zsh completions"
exit 0
