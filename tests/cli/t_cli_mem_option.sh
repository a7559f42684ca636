#!/usr/bin/env bash
# --mem as the reference implementation's conformance tests check it:
# integer bytes or a K/M/G/T suffix (either case) are accepted; junk and
# sizes that overflow 64 bits fail before any file runs, saying why.
. "$(dirname "$0")/cli/lib.sh"
mkdir -p "$T/p"
: >"$T/p/provium.toml"
echo "test('x', function(t) end)" >"$T/p/dummy.test.lua"
for m in 4G 512M 4g 536870912; do
	run "$P" --no-preflight --config "$T/p/provium.toml" --mem "$m" "$T/p"
	expect_rc 0 "--mem $m"
done
ok "valid sizes"
for m in not-a-size 16777216T; do
	run "$P" --no-preflight --config "$T/p/provium.toml" --mem "$m" "$T/p"
	expect_rc 2 "--mem $m"
	expect_in "$err" "--mem: invalid size \`$m\`" "--mem $m message"
	expect_not_in "$out" "dummy.test.lua" "--mem $m runs nothing"
done
ok "invalid sizes"
