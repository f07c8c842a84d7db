#!/usr/bin/env bash
# Builds the patched Linux 6.12 bzImage the VM tests and the demo boot.
#
#   scripts/build-kernel.sh [--force] [--variant NAME]
#
# Variants: the default one (tinyconfig + qemu/kernel.config: SMP, PREEMPT,
# no debug option that costs at run time) and "kasan", the debug kernel
# (the same plus qemu/kernel-kasan.config: lockdep, KASAN, UBSAN, ...).  Each variant has its own cache key and its own build output
# directory, so both stay incrementally cached side by side.
#
# Source: Debian's linux-source-6.12 tarball, extracted once into
# ${DIRSYNC_CACHE:-~/.cache/dirsync}/src.  The series in patches/ is applied
# to a copy of it, the config is `tinyconfig` + qemu/kernel.config, and the
# kernel is built with LLVM=1 and Debian's rustc (see scripts/kernel-source.sh).
#
# The bzImage is cached under $DIRSYNC_CACHE/bzImage/<key>, where <key> is the
# sha256 of the variant, the source package version, the patches (but those
# touching only tools/, Documentation/, MAINTAINERS), the config fragments,
# these scripts and the toolchain versions; a hit returns at once.  The build
# tree ($DIRSYNC_CACHE/tree + out) is kept for incremental rebuilds but never
# trusted: it is re-synced from the pristine source and re-patched each time.
# The source tree is shared by the variants, the output directory is
# $DIRSYNC_CACHE/out (default variant) or $DIRSYNC_CACHE/out-<variant>.
#
# Output: the bzImage path is the last line on stdout; it is also written to
# build/kernel/<variant>/bzImage-path, and the version line to
# build/kernel/<variant>/version.
set -euo pipefail

# shellcheck source=scripts/kernel-source.sh
. "$(dirname "$0")/kernel-source.sh"
cd "$DIRSYNC_ROOT"

force=0
variant=default
while [ $# -gt 0 ]; do
	case "$1" in
	--force) force=1 ;;
	--variant)
		[ $# -ge 2 ] || die "--variant needs a name"
		variant=$2
		shift
		;;
	*) die "usage: $0 [--force] [--variant default|kasan]" ;;
	esac
	shift
done

# The cover letter (0000-cover-letter.patch) has no diff: not applied.
mapfile -t PATCHES < <(find patches -maxdepth 1 -name '*.patch' ! -name '0000-*' | LC_ALL=C sort)
[ ${#PATCHES[@]} -gt 0 ] || die "no patches in patches/ (run scripts/gen-patches.sh)"
FRAGMENTS=(qemu/kernel.config)
case "$variant" in
default) outname=out ;;
kasan)
	FRAGMENTS+=(qemu/kernel-kasan.config)
	outname="out-kasan"
	;;
*) die "unknown kernel variant '$variant' (known: default, kasan)" ;;
esac

# The patches that can change the kernel image: a patch touching only
# tools/, Documentation/ and MAINTAINERS (the selftest) is applied but not
# part of the cache key.
KEY_PATCHES=()
for p in "${PATCHES[@]}"; do
	grep '^+++ b/' "$p" | grep -qvE '^\+\+\+ b/(tools/|Documentation/|MAINTAINERS$)' &&
		KEY_PATCHES+=("$p")
done

pkgver=$(kernel_pkg_version)
toolchain=$(
	/usr/bin/rustc --version
	clang --version | head -n1
	"${BINDGEN:-$HOME/.cargo/bin/bindgen}" --version 2>/dev/null || echo "bindgen missing"
)
key=$(
	{
		echo "variant $variant"
		echo "$KERNEL_PKG $pkgver"
		echo "$toolchain"
		for f in "${KEY_PATCHES[@]}" "${FRAGMENTS[@]}" scripts/build-kernel.sh scripts/kernel-source.sh; do
			echo "== $f"
			cat "$f"
		done
	} | sha256sum | cut -c1-16
)

meta=build/kernel/$variant
mkdir -p "$DIRSYNC_CACHE" "$meta"

result="$DIRSYNC_CACHE/bzImage/$key"
publish() {
	echo "$result/bzImage" >"$meta/bzImage-path"
	cp "$result/version" "$meta/version"
	echo "kernel ($variant): $(cat "$result/version")" >&2
	echo "$result/bzImage"
}
cache_hit() {
	[ $force = 0 ] && [ -f "$result/bzImage" ] && [ -f "$result/version" ] || return 1
	echo "kernel ($variant): cache hit ($key)" >&2
	publish
}

# A published result is complete (it is renamed into place): no lock needed
# to use it.  Building takes the lock: one build at a time per cache
# (several engineers/CI jobs may share it); the winner may have built ours.
cache_hit && exit 0
take_lock 9 "$DIRSYNC_CACHE/build.lock" "kernel: waiting for another build using $DIRSYNC_CACHE"
cache_hit && exit 0

start=$(date +%s)
pristine=$(pristine_tree)
tree="$DIRSYNC_CACHE/tree"
out="$DIRSYNC_CACHE/$outname"
mkdir -p "$tree" "$out"

# Re-sync the source copy: files a previous series touched get their
# pristine content and mtime back, everything else is left alone, so an
# incremental rebuild recompiles only what the current series changes.
echo "kernel: syncing source tree $tree" >&2
rsync -a --delete --exclude=/.complete "$pristine/" "$tree/"

for p in "${PATCHES[@]}"; do
	if ! patch -d "$tree" -p1 --dry-run --batch --forward --silent <"$p" >/dev/null 2>&1; then
		echo "error: patch $p does not apply to $KERNEL_PKG $pkgver:" >&2
		patch -d "$tree" -p1 --dry-run --batch --forward <"$p" >&2 || true
		exit 1
	fi
	patch -d "$tree" -p1 --batch --forward --silent --no-backup-if-mismatch <"$p" ||
		die "applying $p failed"
	echo "kernel: applied $p" >&2
done

# Keep rebuilds incremental: a file the series patches gets a new mtime
# from `patch` on every run; give it back its previous mtime when its
# content is what the previous build compiled.  Files the previous series
# patched and this one does not were reset to pristine content above:
# mark them as changed.
manifest="$DIRSYNC_CACHE/tree.manifest"
touch "$manifest"
mapfile -t touched < <(sed -n 's|^+++ b/||p' "${PATCHES[@]}" | LC_ALL=C sort -u)
new_manifest=$(mktemp)
for f in "${touched[@]}"; do
	sum=$(sha256sum "$tree/$f" | cut -d' ' -f1)
	old=$(awk -v f="$f" '$3 == f { print $1, $2 }' "$manifest")
	if [ -n "$old" ] && [ "${old%% *}" = "$sum" ]; then
		touch -d "@${old#* }" "$tree/$f"
	fi
	echo "$sum $(stat -c %Y "$tree/$f") $f" >>"$new_manifest"
done
while read -r _ _ f; do
	grep -qxF "$f" <(printf '%s\n' "${touched[@]}") || [ ! -e "$tree/$f" ] || touch "$tree/$f"
done <"$manifest"
mv "$new_manifest" "$manifest"

kmake() {
	make -C "$tree" O="$out" "${KBUILD_TOOLS[@]}" "$@"
}

if ! kmake -s rustavailable >"$out/rustavailable.log" 2>&1; then
	cat "$out/rustavailable.log" >&2
	die "Rust is not available for this kernel build (make rustavailable failed); run scripts/deps.sh"
fi

echo "kernel ($variant): configuring (tinyconfig + ${FRAGMENTS[*]})" >&2
kmake -s tinyconfig >/dev/null
"$tree/scripts/kconfig/merge_config.sh" -m -O "$out" "$out/.config" "${FRAGMENTS[@]}" >/dev/null
kmake -s olddefconfig >/dev/null
# A symbol set to "n" or "is not set" must be off; any other value exactly
# as requested (the last fragment that mentions a symbol wins).
bad=0
while IFS= read -r line; do
	case "$line" in
	CONFIG_*=*) sym=${line%%=*} val=${line#*=} ;;
	"# CONFIG_"*" is not set") sym=${line#\# } sym=${sym%% *} val=n ;;
	*) continue ;;
	esac
	if [ "$val" = n ]; then
		grep -qx "$sym=.*" "$out/.config" && { echo "config: $sym should be unset" >&2; bad=1; }
	elif ! grep -qxF "$sym=$val" "$out/.config"; then
		echo "config: $sym=$val requested, got: $(grep -E "^(# )?${sym}[= ]" "$out/.config" || echo unset)" >&2
		bad=1
	fi
done < <(cat "${FRAGMENTS[@]}" | awk '{ s = $0; sub(/^# /, "", s); sub(/[= ].*/, "", s); last[s] = $0; order[NR] = s } END { for (i = 1; i <= NR; i++) if (!(order[i] in done)) { done[order[i]] = 1; print last[order[i]] } }')
[ $bad = 0 ] || die "the kernel config lacks options from ${FRAGMENTS[*]} (unmet dependencies?)"

jobs=${DIRSYNC_JOBS:-$(nproc)}
echo "kernel ($variant): building bzImage with -j$jobs (log: $out/build.log)" >&2
if ! kmake -j"$jobs" bzImage >"$out/build.log" 2>&1; then
	tail -n 60 "$out/build.log" >&2
	die "kernel build failed (full log: $out/build.log)"
fi
# Compiler warnings in the files the series adds are errors for us.
if grep -E "^(.*/)?(fs/dirsync[^:]*|rust/bindings/[^:]*):[0-9]+.*warning" "$out/build.log" >&2 ||
	grep -A3 -E "^warning:" "$out/build.log" | grep -E -- "--> .*dirsync" >&2; then
	die "the dirsync sources compile with warnings (see $out/build.log)"
fi

release=$(kmake -s kernelrelease)
version="Linux $release ($KERNEL_PKG $pkgver) + dirsync series (${#PATCHES[@]} patches), $variant config"
tmp=$(mktemp -d "$DIRSYNC_CACHE/.bzImage.XXXXXX")
cp "$out/arch/x86/boot/bzImage" "$tmp/bzImage"
cp "$out/.config" "$tmp/config"
echo "$version" >"$tmp/version"
mkdir -p "$DIRSYNC_CACHE/bzImage"
rm -rf "$result"
mv "$tmp" "$result"
echo "kernel ($variant): built in $(($(date +%s) - start)) s" >&2
publish
