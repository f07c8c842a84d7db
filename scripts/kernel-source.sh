# shellcheck shell=bash
# Sourced by scripts/build-kernel.sh and scripts/gen-patches.sh: where the
# pristine Linux 6.12 source comes from and how the kernel is built.

DIRSYNC_ROOT=${DIRSYNC_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
# shellcheck source=scripts/lib.sh
. "$DIRSYNC_ROOT/scripts/lib.sh"
DIRSYNC_CACHE=${DIRSYNC_CACHE:-$HOME/.cache/dirsync}
KERNEL_PKG=linux-source-6.12
KERNEL_TARBALL=/usr/src/linux-source-6.12.tar.xz

# The kernel's Rust must be built with Debian's rustc-web (it ships the
# matching rust-src); rustup's toolchain may come first in PATH.
# shellcheck disable=SC2034 # used by the scripts that source this file
KBUILD_TOOLS=(
	LLVM=1
	RUSTC=/usr/bin/rustc HOSTRUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc
	BINDGEN="${BINDGEN:-$HOME/.cargo/bin/bindgen}"
)

kernel_pkg_version() {
	dpkg-query -W -f='${Version}' "$KERNEL_PKG" 2>/dev/null ||
		die "$KERNEL_PKG is not installed (run scripts/deps.sh)"
}

# Prints the directory of the pristine source tree, extracting the Debian
# tarball into the cache on first use (atomically: a partial extraction is
# never mistaken for a complete one).
pristine_tree() {
	local ver dir tmp
	ver=$(kernel_pkg_version)
	dir="$DIRSYNC_CACHE/src/$KERNEL_PKG-$ver"
	if [ ! -f "$dir/.complete" ]; then
		[ -r "$KERNEL_TARBALL" ] || die "$KERNEL_TARBALL missing (run scripts/deps.sh)"
		mkdir -p "$DIRSYNC_CACHE/src"
		tmp=$(mktemp -d "$DIRSYNC_CACHE/src/.extract.XXXXXX")
		echo "kernel: extracting $KERNEL_TARBALL" >&2
		tar -xf "$KERNEL_TARBALL" -C "$tmp" || die "cannot extract $KERNEL_TARBALL"
		rm -rf "$dir"
		mv "$tmp/$KERNEL_PKG" "$dir"
		rmdir "$tmp"
		touch "$dir/.complete"
	fi
	echo "$dir"
}
