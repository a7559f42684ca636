#!/usr/bin/env bash
# t_vm_reconnect.sh — 100 host reconnects in a row to one guest, each
# followed by a working op, through the qemu backend itself (the C driver
# tests/cli/vm/qemu-drive.c, built here against build/libprovium.a), then
# destroy must leave no QEMU. Exit 77 without QEMU or the guest kit.
set -u
cd "$(dirname "$0")/../.."
command -v qemu-system-x86_64 >/dev/null || { echo "skip: qemu-system-x86_64 not installed"; exit 77; }
kit=${PROVIUM_KIT_DIR:-build/guest}
[ -f "$kit/vmlinuz" ] || { echo "skip: no guest kit (make guest)"; exit 77; }
lib=${PROVIUM_LIB:-build/libprovium.a}

tmp=$(mktemp -d /tmp/t_vm_reconnect.XXXXXX)
cleanup() {
	for q in $(pgrep -f -- "[q]emu-system.*$tmp"); do kill -KILL "$q" 2>/dev/null; done
	rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }

[ -f "$lib" ] || make -s "$lib" >"$tmp/make.log" 2>&1 || { cat "$tmp/make.log"; fail "cannot build $lib"; }
cc -std=c11 -D_GNU_SOURCE -Isrc -Isrc/host $(pkg-config --cflags msgpack jansson 2>/dev/null) \
	-o "$tmp/qemu-drive" tests/cli/vm/qemu-drive.c "$lib" \
	$(pkg-config --libs lua5.4 msgpack jansson libzstd libcrypto libedit libcurl 2>/dev/null || echo -llua5.4 -lmsgpackc -ljansson -lzstd -lcrypto -ledit -lcurl) -lslirp -lxxhash -lpthread -lm \
	2>"$tmp/cc.log" || { cat "$tmp/cc.log"; fail "cannot build qemu-drive"; }
mkdir "$tmp/run"
timeout 300 "$tmp/qemu-drive" "$kit" "$tmp/run" 100
rc=$?
[ $rc -eq 0 ] || fail "qemu-drive exited $rc"
pgrep -f -- "[q]emu-system.*$tmp" >/dev/null && fail "a QEMU of this test is still running"
exit 0
