#!/usr/bin/env bash
# make qemu-test: boots the patched kernel in QEMU and runs every guest test.
#
# Builds (or reuses) the kernel, runs qemu/stage-userspace.sh if present,
# builds the static C tests, packs an initramfs (busybox, our programs and
# everything under build/guest/ at the same paths), boots under TCG
# (QEMU_ACCEL=kvm to opt in to KVM) and collects the results.
#
# Counting, per executable in /guest/tests: each "PASS <name>" line is a
# pass, each "FAIL <name>: <reason>" a failure, a cargo line "test result:
# ok|FAILED. N passed; M failed; ..." N passes and M failures, and an
# executable exiting non-zero without reporting a failure one failure.  The
# host adds three checks of its own: the VM ran to the end (no timeout or
# panic), and neither the kernel log (dmesg) nor the console shows an
# Oops/BUG/WARNING/panic/Call Trace.
# The last line is "N passed, N failed"; the exit status is 0 only if
# nothing failed.
set -euo pipefail
. "$(dirname "$0")/vm-lib.sh"
cd "$ROOT"

# Whatever stops the run early (kernel build, staging, packing), the last
# line is still the closing line.
closed=0
trap '[ $closed = 1 ] || echo "0 passed, 1 failed"' EXIT

vm_prepare

boot_rc=0
vm_boot test "${DIRSYNC_VM_TIMEOUT:-1200}" >&2 || boot_rc=$?

results="$VM/results.log"
touch "$results"
tr -d '\r' <"$results" >"$results.clean"

awk -v boot_rc="$boot_rc" -v counts="$VM/counts" -f "$ROOT/qemu/parse-results.awk" \
	"$results.clean" | tee "$VM/summary.log"

read -r passed failed <"$VM/counts"
# Panics and oopses show on the console even when the guest never reports
# (kernel lines only: they carry a printk timestamp; test output does not).
if grep -aE "\[ *[0-9]+\.[0-9]+\] .*(Kernel panic|Oops|BUG:|WARNING:|Call Trace)" "$VM/console.log" >"$VM/console-bad.log"; then
	echo "FAIL console_clean: kernel problems on the console:"
	cat "$VM/console-bad.log"
	failed=$((failed + 1))
else
	passed=$((passed + 1))
fi
closed=1
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
