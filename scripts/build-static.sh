#!/usr/bin/env bash
# `make userspace-static`: the CLI as a static x86_64 musl executable, the
# agent that `--deploy` uploads to a remote machine (it runs on any
# x86_64 Linux, whatever its libc). Built without debug info and
# stripped, in its own target directory:
#
#   userspace/target/x86_64-unknown-linux-musl/release/dirsync
#
# Fails unless the result is statically linked (no program interpreter,
# no shared library) and runs.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

TARGET=x86_64-unknown-linux-musl
BIN="userspace/target/$TARGET/release/dirsync"
rustup target list --installed 2>/dev/null | grep -qx "$TARGET" ||
	die "the rust target $TARGET is missing (run scripts/deps.sh)"
command -v musl-gcc >/dev/null || die "musl-gcc is missing (run scripts/deps.sh)"

# zstd-sys and blake3 compile C with cc, which finds musl-gcc for this
# target; bindgen (build.rs) runs on the host and parses the uapi header
# with clang for the target triple.
(cd userspace && CARGO_PROFILE_RELEASE_DEBUG=0 CARGO_PROFILE_RELEASE_STRIP=symbols \
	cargo build --release --locked --target "$TARGET")

[ -x "$BIN" ] || die "$BIN was not built"
if readelf -lW "$BIN" | grep -q 'INTERP'; then
	die "$BIN has a program interpreter: not static"
fi
if readelf -dW "$BIN" | grep -q '(NEEDED)'; then
	die "$BIN needs shared libraries: not static"
fi
version=$("$BIN" --version) || die "$BIN does not run"
echo "static agent: $BIN ($version, $(stat -c %s "$BIN") bytes, statically linked)"
