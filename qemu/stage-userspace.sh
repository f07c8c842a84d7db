#!/usr/bin/env bash
# Stages the userspace side for the test VM into build/guest/ (gitignored):
#   build/guest/bin/dirsync          the CLI, statically linked
#   build/guest/tests/NN-<name>      every cargo test executable of
#                                    userspace/ (library unit tests and
#                                    integration tests), statically linked,
#                                    but the host-only ones (HOST_ONLY below:
#                                    they need what the VM lacks, e.g. btrfs,
#                                    loop devices and mkfs.btrfs, and the
#                                    remote tests: sshd, ssh, a network)
#   build/guest/bench/resync.sh      qemu/guest-bench-resync.sh
# qemu/run-tests.sh packs build/guest/ into the initramfs; the guest (busybox,
# root, tmpfs /tmp) runs each /guest/tests/* with DIRSYNC_BIN pointing at
# /guest/bin/dirsync (the tests also find `dirsync` on PATH) and
# DIRSYNC_STAT_BACKEND set to each backend in turn (dirsync.backends).
#
# The explicit --target keeps build scripts and proc-macros dynamic while
# the target artefacts get +crt-static; it also keeps these builds apart
# from the host's target/release.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=x86_64-unknown-linux-gnu
OUT=$ROOT/build/guest
export RUSTFLAGS='-C target-feature=+crt-static'

cd "$ROOT/userspace"
cargo build --release --locked --target "$TARGET" --bin dirsync
json=$(mktemp)
trap 'rm -f "$json"' EXIT
cargo test --release --locked --target "$TARGET" --no-run --message-format=json >"$json"

rm -rf "$OUT/bin/dirsync" "$OUT/tests" "$OUT/bench/resync.sh"
mkdir -p "$OUT/bin" "$OUT/tests" "$OUT/bench"
install -m 0755 "target/$TARGET/release/dirsync" "$OUT/bin/dirsync"
install -m 0755 "$ROOT/qemu/guest-bench-resync.sh" "$OUT/bench/resync.sh"

# Test executables: "lib" unit tests first, then the integration tests by
# name; the binary's own (empty) unit-test harness is left out.
python3 - "$json" "$OUT/tests" <<'PY'
import json, os, shutil, sys
src, out = sys.argv[1], sys.argv[2]
# Host-only tests (see the header).
# The agent's fuzz and open-type tests and the chmod-fallback race use
# the statx backend and plain VFS calls, none of the series: the host
# runs them.
HOST_ONLY = {"fidelity_btrfs", "agent_fuzz", "agent_open_types", "sys_races"}
# The daemon's HTTP side: TCP on 127.0.0.1 (the guest brings no loopback
# up) and a real chromium (not in the guest).
HOST_ONLY |= {"daemon_http", "daemon_http_guard", "daemon_http_browser"}
# The daemon's other suites (a remote pair over sshd, the systemd units)
# run the engine the other suites already test in the guest: host only.
# Two-way: the scenario and guard suites run in the guest (the scan goes
# through the metadata backend, the guards mount a tmpfs); the random
# property and kill -9 rounds repeat that on the host only.
HOST_ONLY |= {"daemon_run", "daemon_reload", "daemon_recover", "daemon_twoway", "daemon_stop"}
HOST_ONLY |= {"twoway_property", "twoway_kill"}
# watch host:SRC DST: sshd, ssh and the hostile peer (host only as every
# remote suite; named here too).
HOST_ONLY |= {"remote_pull_watch"}
# Two-way with a remote side: sshd and ssh on loopback (not in the guest).
HOST_ONLY |= {"twoway_remote", "twoway_remote_a"}
# watch --two-way: inotify on top of the engine the guest runs in the
# scenario suites; its overflow test changes a global inotify sysctl.
HOST_ONLY |= {"twoway_watch"}
# Two-way -o -g -X: attributes are read with statat/getxattr, whatever the
# metadata backend (nothing the patched kernel changes).
HOST_ONLY |= {"twoway_attrs"}
found = []
for line in open(src):
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") != "compiler-artifact" or not m.get("profile", {}).get("test"):
        continue
    exe = m.get("executable")
    kinds = m["target"]["kind"]
    if not exe or "bin" in kinds:
        continue
    name = "unit" if "lib" in kinds else m["target"]["name"]
    # The remote tests need sshd, ssh and a network: host only too (the
    # protocol fuzz test needs none of them).
    if name in HOST_ONLY or (name.startswith("remote_") and name != "remote_fuzz"):
        continue
    found.append((0 if name == "unit" else 1, name, exe))
found.sort()
for i, (_, name, exe) in enumerate(found):
    dst = os.path.join(out, "%02d-%s" % (20 + i, name.replace("_", "-")))
    shutil.copy2(exe, dst)
    os.chmod(dst, 0o755)
    print("stage: %s" % os.path.relpath(dst, os.path.dirname(os.path.dirname(out))))
if not found:
    sys.exit("stage: no test executables found")
PY

# Debug information stays on the host: unstripped, the executables come to
# about 400 MiB, more than the guest can unpack its initramfs into.
# Everything must run without a dynamic loader in the guest.
for f in "$OUT/bin/dirsync" "$OUT"/tests/*; do
	strip --strip-debug "$f"
	if readelf -l "$f" | grep -q 'Requesting program interpreter'; then
		echo "stage: $f is dynamically linked" >&2
		exit 1
	fi
done
echo "stage: $(find "$OUT/tests" -mindepth 1 -maxdepth 1 | wc -l) test executables and bin/dirsync in $OUT"
