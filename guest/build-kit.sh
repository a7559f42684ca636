#!/bin/bash
# build-kit.sh — build the default guest profile from Debian packages.
#
#   guest/build-kit.sh AGENT OUTDIR
#
# Produces in OUTDIR:
#   vmlinuz                 the kernel of the current linux-image-*-cloud-amd64
#   initrd.cpio.gz          busybox-static (/bin/busybox + applet symlinks,
#                           /dev/console, a minimal /etc, /etc/provium/rc
#                           starting syslogd and a console getty, root's
#                           password `toor`, a printenv script). NO /init on
#                           purpose: the agent (rdinit=/sbin/provium-agent)
#                           then stays PID 1 as the minimal init (reaper +
#                           ACPI power button).
#   agent-overlay.cpio.gz   /sbin/provium-agent + /lib/modules/provium/*.ko +
#                           /lib/modules/provium/order (load order, deps first)
#   manifest.txt            kernel package/version, busybox version, sha256
#                           of every artifact
# Boot with: -kernel vmlinuz -initrd <(cat initrd.cpio.gz agent-overlay.cpio.gz)
#            -append 'console=ttyS0 rdinit=/sbin/provium-agent'
#
# The kernel .deb is fetched with `apt-get download` into OUTDIR/cache and
# only extracted (dpkg-deb -x), never installed. Every step is skipped when
# its output is already there and an artifact is only replaced when its
# bytes change, so a rerun with nothing new does no work and leaves the
# timestamps alone. Archives are reproducible (sorted, owner 0:0, mtime 0,
# gzip -n). Environment: PROVIUM_KERNEL_DEB=path uses that .deb instead of
# asking apt.
set -euo pipefail

agent=${1:?usage: build-kit.sh AGENT OUTDIR}
out=${2:?usage: build-kit.sh AGENT OUTDIR}
here=$(cd "$(dirname "$0")" && pwd)
agent=$(cd "$(dirname "$agent")" && pwd)/$(basename "$agent")
mkdir -p "$out/cache"
out=$(cd "$out" && pwd)
cache=$out/cache

log() { printf '  KIT     %s\n' "$*"; }
die() { printf 'build-kit: %s\n' "$*" >&2; exit 1; }

# install SRC DST: replace DST by SRC only if the bytes differ.
install_if_changed() {
	if [ -f "$2" ] && cmp -s "$1" "$2"; then
		rm -f "$1"
	else
		mv -f "$1" "$2"
		log "wrote $(basename "$2")"
	fi
}

# ---- 1. the kernel package -------------------------------------------------
if [ -n "${PROVIUM_KERNEL_DEB:-}" ]; then
	deb=$PROVIUM_KERNEL_DEB
else
	pkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null |
	      awk '/Depends: linux-image-[0-9]/ { print $2; exit }') || true
	if [ -z "$pkg" ]; then
		# Offline: fall back to what the cache already holds.
		deb=$(ls -1 "$cache"/linux-image-*-cloud-amd64_*.deb 2>/dev/null | sort -V | tail -1)
		[ -n "$deb" ] || die "cannot resolve linux-image-cloud-amd64 (apt-get update?) and no cached .deb"
		log "apt unavailable, using cached $(basename "$deb")"
	else
		deb=$(ls -1 "$cache/${pkg}"_*.deb 2>/dev/null | sort -V | tail -1 || true)
		cand=$(apt-cache policy "$pkg" | awk '/Candidate:/ { print $2 }')
		if [ -z "$deb" ] || [ "$(dpkg-deb -f "$deb" Version)" != "$cand" ]; then
			log "apt-get download $pkg ($cand)"
			(cd "$cache" && apt-get download -q "$pkg" >/dev/null 2>"$cache/apt.log") ||
				{ cat "$cache/apt.log" >&2; die "apt-get download $pkg failed"; }
			deb=$(ls -1t "$cache/${pkg}"_*.deb | awk "NR == 1")
		fi
	fi
fi
kpkg=$(dpkg-deb -f "$deb" Package)
kver=$(dpkg-deb -f "$deb" Version)
tree=$cache/extract-$kpkg-$kver
if [ ! -f "$tree/.done" ]; then
	log "extract $(basename "$deb")"
	rm -rf "$tree"
	mkdir -p "$tree"
	dpkg-deb -x "$deb" "$tree"
	touch "$tree/.done"
fi
krel=$(ls -1 "$tree/lib/modules" | awk "NR == 1")
[ -n "$krel" ] || die "no /lib/modules in $deb"
[ -f "$tree/boot/vmlinuz-$krel" ] || die "no vmlinuz-$krel in $deb"

cp "$tree/boot/vmlinuz-$krel" "$out/vmlinuz.tmp"
install_if_changed "$out/vmlinuz.tmp" "$out/vmlinuz"

# ---- 2. modules, dependencies first ----------------------------------------
moddir=$tree/lib/modules/$krel/kernel
declare -A modpath=()
while IFS= read -r f; do
	b=$(basename "$f"); b=${b%%.ko*}; b=${b//-/_}
	modpath[$b]=$f
done < <(find "$moddir" -name '*.ko' -o -name '*.ko.xz' -o -name '*.ko.zst' -o -name '*.ko.gz')

stage=$cache/overlay-stage
rm -rf "$stage"
mkdir -p "$stage/sbin" "$stage/lib/modules/provium"
declare -A done_mod=()
order=()

# Decompressed copy of a module into the stage; prints its file name.
stage_module() {
	local name=$1 src=${modpath[$1]} dst
	dst=$stage/lib/modules/provium/$name.ko
	case $src in
	*.ko) cp "$src" "$dst" ;;
	*.ko.xz) xz -dc "$src" > "$dst" ;;
	*.ko.zst) zstd -qdc "$src" > "$dst" ;;
	*.ko.gz) gzip -dc "$src" > "$dst" ;;
	esac
}

add_module() {
	local name=${1//-/_} deps d
	[ -n "${done_mod[$name]:-}" ] && return 0
	if [ -z "${modpath[$name]:-}" ]; then
		# Built into this kernel? Then there is nothing to load.
		if grep -q "/${name//_/[-_]}.ko\$" "$tree/lib/modules/$krel/modules.builtin" 2>/dev/null; then
			done_mod[$name]=builtin
			return 0
		fi
		die "module $name not found in $kpkg"
	fi
	done_mod[$name]=pending
	stage_module "$name"
	deps=$(tr '\0' '\n' < "$stage/lib/modules/provium/$name.ko" | awk 'sub(/^depends=/, "") && !n++')
	for d in ${deps//,/ }; do
		add_module "$d"
	done
	done_mod[$name]=1
	order+=("$name.ko")
}

while read -r m; do
	m=${m%%#*}; m=${m//[[:space:]]/}
	[ -n "$m" ] && add_module "$m"
done < "$here/modules.list"

printf '%s\n' "# provium module load order for $krel (deps first)" "${order[@]}" \
	> "$stage/lib/modules/provium/order"
cp "$agent" "$stage/sbin/provium-agent"
chmod 0755 "$stage/sbin/provium-agent"

# pack DIR OUT: reproducible newc cpio, gzip -n.
pack() {
	find "$1" -exec touch -h -d @0 {} +
	(cd "$1" && find . -mindepth 1 | LC_ALL=C sort |
	 cpio -o -H newc -R 0:0 --reproducible --quiet) | gzip -9n > "$2.tmp"
	install_if_changed "$2.tmp" "$2"
}
pack "$stage" "$out/agent-overlay.cpio.gz"

# ---- 3. busybox initrd -------------------------------------------------------
bb=/bin/busybox
[ -x "$bb" ] || die "$bb missing: apt-get install busybox-static"
# No early-exiting readers in pipelines here (head, grep -q): under
# pipefail the writer's SIGPIPE would fail the build (exit 141).
bbelf=$(readelf -l "$bb" 2>/dev/null || true)
case "$bbelf" in *"Requesting program interpreter"*) die "$bb is not static (install busybox-static)" ;; esac
bbver=$("$bb" 2>&1 || true)
bbver=$(awk 'NR == 1 { print $2 }' <<<"$bbver")
istage=$cache/initrd-stage
rm -rf "$istage"
mkdir -p "$istage"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,tmp,run,root,etc,lib/modules,var/log}
cp "$bb" "$istage/bin/busybox"
while IFS= read -r a; do
	[ "$a" = bin/busybox ] && continue
	mkdir -p "$istage/$(dirname "$a")"
	ln -sf /bin/busybox "$istage/$a"
done < <("$bb" --list-full)
mknod -m 600 "$istage/dev/console" c 5 1
mknod -m 666 "$istage/dev/null" c 1 3
chmod 1777 "$istage/tmp"
chmod 0700 "$istage/root"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$istage/etc/passwd"
printf 'root:x:0:\ntty:x:5:\nnogroup:x:65534:\n' > "$istage/etc/group"
printf 'provium\n' > "$istage/etc/hostname"
printf '127.0.0.1 localhost\n::1 localhost\n' > "$istage/etc/hosts"
# /etc/provium/rc: the agent runs it before its op server (no /init here).
# The hostname comes from /etc/hostname (a boot opt `files` entry can
# replace it); syslogd writes /var/log/messages, created up front so a
# tail_file on it works before the first message; a getty on the console
# serves the reference's "drive a getty login" example (root / toor).
mkdir -p "$istage/etc/provium"
cat > "$istage/etc/provium/rc" <<'RC'
#!/bin/sh
hostname -F /etc/hostname 2>/dev/null
: >> /var/log/messages
syslogd -O /var/log/messages
# wait (up to 1 s) for syslogd's own "syslogd started" line, so the first
# line a test's tail_file sees after boot is the test's, not the banner
i=0
while [ ! -s /var/log/messages ] && [ $i -lt 50 ]; do sleep 0.02; i=$((i + 1)); done
# a login prompt on the console (root's password: toor), respawned
(while :; do getty -L 0 ttyS0 vt100; sleep 1; done) </dev/null >/dev/null 2>&1 &
RC
chmod 755 "$istage/etc/provium/rc"
printf 'root:%s:19000:0:99999:7:::\n' "$("$bb" mkpasswd -m sha512 toor provium-kit)" > "$istage/etc/shadow"
chmod 600 "$istage/etc/shadow"
# printenv: busybox has no such applet; same output and exit status.
cat > "$istage/usr/bin/printenv" <<'PE'
#!/bin/sh
[ $# -eq 0 ] && exec env
exec awk 'BEGIN { rc = 0
	for (i = 1; i < ARGC; i++)
		if (ARGV[i] in ENVIRON) print ENVIRON[ARGV[i]]; else rc = 1
	exit rc }' "$@"
PE
chmod 755 "$istage/usr/bin/printenv"
pack "$istage" "$out/initrd.cpio.gz"

# ---- 4. manifest ------------------------------------------------------------
{
	echo "kernel_package: $kpkg"
	echo "kernel_version: $kver"
	echo "kernel_release: $krel"
	echo "busybox: busybox-static $bbver"
	echo "modules: ${order[*]}"
	for f in vmlinuz initrd.cpio.gz agent-overlay.cpio.gz; do
		echo "sha256 $f: $(sha256sum "$out/$f" | cut -d' ' -f1)"
	done
	echo "sha256 provium-agent: $(sha256sum "$agent" | cut -d' ' -f1)"
} > "$out/manifest.txt.tmp"
install_if_changed "$out/manifest.txt.tmp" "$out/manifest.txt"
