#!/usr/bin/env bash
# An unreadable or invalid --config is exit 2 with the read/parse error
# for `repl` and `fixture list` too, and (run with the ASan build of
# `make asan`, PROVIUM_BIN=build/asan/provium) these paths free the
# half-loaded config: LeakSanitizer would change the exit status.
. "$(dirname "$0")/cli/lib.sh"
cd "$T" || exit 1
printf 'bad = [\n' >bad.toml

for sub in "repl default" "fixture list"; do
	# shellcheck disable=SC2086
	run "$P" $sub --config nope.toml
	expect_rc 2 "$sub with a missing config"
	expect_in "$err" "read \`nope.toml\`" "$sub: read error"
	# shellcheck disable=SC2086
	run "$P" $sub --config bad.toml
	expect_rc 2 "$sub with an invalid config"
	expect_in "$err" "parse \`bad.toml\`" "$sub: parse error"
	ok "$sub: config errors"
done
