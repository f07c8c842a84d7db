#!/usr/bin/env bash
# The syscall microbenchmark of `make bench` (part of scripts/bench.sh):
# boots the default test kernel with dirsync.mode=bench and prints the
# table of kernel-module/tests/dirsync_bench.c (ns/call of dirsync_stat,
# statx and fstatat, existing and missing names, 1 and 2 threads), then
# the unchanged resync of a 20,000-file tree with each metadata backend
# (qemu/guest-bench-resync.sh, "bench resync" lines with the ratio).  The
# kernel has no debug option, but runs under TCG: only the ratios mean
# something.  Then the directory scan of the microbenchmark on this
# machine's own kernel, natively (`dirsync-bench --host`).
set -euo pipefail
# shellcheck source=qemu/vm-lib.sh
. "$(dirname "$0")/vm-lib.sh"
cd "$ROOT"

vm_prepare
vm_kernel default
rc=0
vm_boot "$VM/bench" "${DIRSYNC_VM_TIMEOUT:-900}" dirsync.mode=bench >"$VM/bench.out" 2>&1 || rc=$?
tr -d '\r' <"$VM/bench/results.log" >"$VM/bench/results.clean" 2>/dev/null || true
grep -qx "=== GUEST DONE" "$VM/bench/results.clean" ||
	die "the bench VM did not finish (status $rc; console: $VM/bench/console.log)"
if vm_console_problems "$VM/bench/console.log"; then
	die "kernel problems during the benchmark (see above)"
fi
echo "syscall microbenchmark ($KERNEL_VERSION, QEMU TCG, ${QEMU_SMP:-2} CPUs):"
grep '^bench' "$VM/bench/results.clean" || die "the benchmark printed nothing"
# The same scan without dirsync_readdir on this machine's own kernel
# ($(uname -r), in tmpfs): the getdents64 rows and the reference rows
# (names alone, a null system call) on hardware, next to the VM's.
echo "the directory scan on this machine's kernel ($(uname -r), no emulation):"
"$VM/root/guest/bench/dirsync-bench" --host || die "the host reference run failed"
