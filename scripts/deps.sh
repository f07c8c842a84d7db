#!/usr/bin/env bash
# Installs everything the build, the tests and the demo need. Idempotent:
# a second run on a provisioned machine only checks and returns.
set -euo pipefail

PKGS=(
	linux-source-6.12 rustc-web rust-web-src
	clang lld llvm libclang-dev
	musl-tools iproute2
	qemu-system-x86 busybox-static cpio
	flex bison bc libelf-dev libssl-dev
	make gcc libc6-dev xz-utils python3 git patch perl
	rsync lsyncd shellcheck
	acl attr btrfs-progs xfsprogs e2fsprogs strace
	# remote replicas: the tests start a real sshd on 127.0.0.1
	openssh-server openssh-client
	# the status page's test drives a real headless browser; the daemon's
	# tests check its unit files with systemd-analyze verify
	chromium fonts-dejavu-core systemd
	# the two-way benchmark's peers (scripts/bench-twoway.sh)
	unison rclone
)
BINDGEN_VERSION=0.69.5

need_root() {
	if [ "$(id -u)" -ne 0 ]; then
		echo "deps: installing $* needs root (run as root or install them by hand)" >&2
		exit 1
	fi
}

missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	need_root "${missing[*]}"
	echo "deps: apt-get install ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q
	apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# bindgen-cli for the kernel's Rust bindings (the version the kernel wants).
BINDGEN="$HOME/.cargo/bin/bindgen"
if ! { [ -x "$BINDGEN" ] && "$BINDGEN" --version 2>/dev/null | grep -q " $BINDGEN_VERSION\$"; }; then
	echo "deps: cargo install bindgen-cli@$BINDGEN_VERSION"
	cargo install --locked "bindgen-cli@$BINDGEN_VERSION"
fi
# clippy and rustfmt for `make lint-rust` (rustup's default profile has
# them; a minimal one does not).
for tool in clippy rustfmt; do
	if ! cargo "${tool/rustfmt/fmt}" --version >/dev/null 2>&1; then
		echo "deps: rustup component add $tool"
		rustup component add "$tool"
	fi
done
# The static agent (`make userspace-static`) is built for musl.
if ! rustup target list --installed 2>/dev/null | grep -qx x86_64-unknown-linux-musl; then
	echo "deps: rustup target add x86_64-unknown-linux-musl"
	rustup target add x86_64-unknown-linux-musl
fi
echo "deps: all present"
