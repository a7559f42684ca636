#!/usr/bin/env bash
# Installs, with apt-get, every Debian package provium needs to build, test
# and run guests, when any is missing. Safe to run again: it does nothing
# when everything is present.
set -eu
pkgs=(build-essential pkg-config liblua5.4-dev libzstd-dev libssl-dev
      libmsgpack-dev libjansson-dev libcmocka-dev qemu-system-x86
      busybox-static cpio zstd xz-utils kmod python3 lua5.4
      libslirp-dev libxxhash-dev python3-junitparser libxml2-utils libedit-dev
      groff-base zsh libcurl4-openssl-dev clang)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "setup-deps: installing ${missing[*]}"
SUDO=; [ "$(id -u)" -ne 0 ] && SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
