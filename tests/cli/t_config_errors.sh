#!/usr/bin/env bash
# t_config_errors — a broken provium.toml stops the run with exit code 2 and
# one `provium: ` line naming the file (and, for syntax errors, line:col):
#   read `<path>`: <strerror>             (--config names a missing file)
#   parse `<path>`: <line>:<col> <what>   (malformed TOML)
#   parse `<path>`: <line>:<col> <what>   (a value of the wrong type too)
#   invalid config in `<path>`: <message> (unknown key, empty cmdline, ...)
# A valid config with the same layout runs (control case). Skips (77) until
# build/provium exists.
set -u
cd "$(dirname "$0")/../.."
bin=$(pwd)/build/provium
[ -x "$bin" ] || { echo "SKIP: build/provium not built"; exit 77; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/tests"
fails=0

# check NAME CONFIG-TEXT WANT-RC STDERR-FRAGMENT...
check() {
	local name=$1 text=$2 want=$3 rc frag
	shift 3
	local cfg="$tmp/$name.toml"
	[ "$text" = "-" ] || printf '%s' "$text" >"$cfg"
	"$bin" --vmm local --allow-empty --config "$cfg" "$tmp/tests" >"$tmp/out" 2>"$tmp/err" </dev/null
	rc=$?
	if [ "$rc" -ne "$want" ]; then
		echo "FAIL $name: exit $rc, want $want; stderr: $(head -c 400 "$tmp/err")"
		fails=$((fails + 1))
		return
	fi
	for frag in "$@"; do
		frag=${frag//@CFG@/$cfg}
		if ! grep -qF -- "$frag" "$tmp/err"; then
			echo "FAIL $name: stderr lacks [$frag]: $(head -c 400 "$tmp/err")"
			fails=$((fails + 1))
			return
		fi
	done
	echo "ok   $name (exit $rc)"
}

check missing - 2 \
	'provium: read `@CFG@`: No such file or directory'
check malformed $'[provium]\nroots = ["tests"\n' 2 \
	'provium: parse `@CFG@`: 2:9 unterminated array'
check bad-key $'[profiles.x]\ncmdline = "a"\nkey with space = 1\n' 2 \
	'provium: parse `@CFG@`: 3:5 '
check redefined $'[profiles.x]\ncmdline = "a"\n[profiles.x]\n' 2 \
	'provium: parse `@CFG@`: 3:1 '
check unknown-key $'[profiles.x]\ncmdline = "a"\nfoo = 1\n' 2 \
	'provium: invalid config in `@CFG@`: unknown key `foo` in [profiles.x] at 3:1'
check unknown-provium-key $'[provium]\ncache = "/x"\n' 2 \
	'invalid config in `@CFG@`: unknown key `cache` in [provium] at 2:1'
check empty-cmdline $'[profiles.x]\ncmdline = "  "\n' 2 \
	'provium: invalid config in `@CFG@`: profile `x` has empty cmdline'
check guest-os $'[profiles.x]\ncmdline = "a"\nguest_os = "linux"\n' 2 \
	'profile `x` has guest_os = `linux`, only `peios` is supported in v1'
check wrong-type $'[profiles.x]\ncmdline = "a"\ncpus = "2"\n' 2 \
	'provium: parse `@CFG@`: 3:8 `cpus` in [profiles.x] must be a positive integer, got string'
check wrong-type-roots $'[provium]\nroots = "tests"\n' 2 \
	'provium: parse `@CFG@`: 2:9 `roots` in [provium] must be an array of strings, got string'
# Bounded reads: an endless cmdline_file or config file is an error, not a hang.
check endless-cmdline-file $'[profiles.x]\ncmdline_file = "/dev/zero"\n' 2 \
	'profile `x`: cmdline_file `/dev/zero` is larger than 64 KiB'
ln -s /dev/zero "$tmp/endless-config.toml"
mkfifo "$tmp/cmdline.fifo"
check fifo-cmdline-file $'[profiles.x]\ncmdline_file = "cmdline.fifo"\n' 2 \
	'cmdline_file `'"$tmp"'/cmdline.fifo` is a FIFO or socket, not a file'
check endless-config - 2 \
	'provium: read `@CFG@`: larger than 16 MiB; not a provium.toml'
# sizes without a unit are bytes: `memory = 512` (MiB meant) is named here
# with the key and line:col instead of failing inside QEMU
check memory-bare-int $'[profiles.x]\ncmdline = "a"\nmemory = 512\n' 2 \
	'provium: invalid config in `@CFG@`: `memory` in [profiles.x]: 512 is 512 bytes (a size without a unit is bytes), less than the 16M a guest needs; write "512M" for 512 MiB at 3:10'
check memory-bytes $'[profiles.x]\ncmdline = "a"\nmemory = 536870912\n' 0
check valid $'[provium]\ncache_max_size = "1G"\n[profiles.x]\ncmdline = "console=ttyS0"\n' 0

if [ "$fails" -ne 0 ]; then
	echo "t_config_errors: $fails check(s) failed"
	exit 1
fi
echo "t_config_errors: all checks passed"
exit 0
