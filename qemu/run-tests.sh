#!/usr/bin/env bash
# make qemu-test: boots the patched kernel in QEMU and runs the guest tests,
# on two kernels one after the other:
#
#   default  tinyconfig + qemu/kernel.config (SMP, PREEMPT, no debug option
#            that costs at run time): every guest test, then the
#            microbenchmark and the unchanged-resync benchmark with each
#            backend (qemu/guest-bench-resync.sh; printed, not asserted)
#   kasan    the debug kernel: the same plus qemu/kernel-kasan.config
#            (lockdep, atomic sleep and hung-task checks, KASAN, UBSAN): the
#            guest tests whose name matches DIRSYNC_KASAN_TESTS (default
#            "*", every test; "1*" is the kselftests alone), the userspace
#            suites with the backends of DIRSYNC_KASAN_BACKENDS only (default
#            "syscall": the statx backend runs no code of the series, and
#            the default kernel already runs it), no microbenchmark
#
# DIRSYNC_KERNELS="default kasan" chooses the kernels (e.g. only "default"
# while iterating).  On each, every userspace suite runs once per metadata
# backend of DIRSYNC_BACKENDS (default "syscall,statx": dirsync_readdir +
# dirsync_stat, then getdents64 + statx; reported "<suite>[<backend>]"),
# the kernel's own tests once.  Each kernel is built or taken from the cache
# (scripts/build-kernel.sh --variant), both boot the same initramfs
# (busybox, our programs, everything under build/guest/ after
# qemu/stage-userspace.sh) with -smp ${QEMU_SMP:-2} under multi-threaded TCG
# (QEMU_ACCEL=kvm to opt in to KVM).
#
# Counting, per executable in /guest/tests (qemu/parse-results.awk): each
# "PASS <name>" line and each TAP "ok N <name>" line is a pass, each
# "FAIL <name>: <reason>", "not ok N ..." or "ok N ... # SKIP" a failure,
# a cargo line "test result: ok|FAILED. N passed; M failed; ..." N passes
# and M failures, and an executable exiting non-zero without reporting a
# failure one failure.  Per kernel the host adds: the VM ran to the end (no
# timeout or panic), the kernel log (dmesg) is clean and the console is
# clean (KERNEL_PROBLEM_RE of scripts/lib.sh: oops, BUG, WARNING, KASAN,
# UBSAN, lockdep, hung tasks, ...).  Results are prefixed "<kernel>:".
# The last line is "N passed, N failed" over both kernels; the exit status
# is 0 only if nothing failed.
set -euo pipefail
# shellcheck source=qemu/vm-lib.sh
. "$(dirname "$0")/vm-lib.sh"
cd "$ROOT"

# Whatever stops the run early (kernel build, staging, packing), the last
# line is still the closing line.
closed=0
trap '[ $closed = 1 ] || echo "0 passed, 1 failed"' EXIT

read -r -a kernels <<<"${DIRSYNC_KERNELS:-default kasan}"
vm_prepare

passed=0
failed=0
for kernel in "${kernels[@]}"; do
	case "$kernel" in
	default) args=(dirsync.tests='*' dirsync.bench=1) ;;
	kasan) args=(dirsync.tests="${DIRSYNC_KASAN_TESTS:-*}" dirsync.bench=0) ;;
	*) die "unknown kernel '$kernel' in DIRSYNC_KERNELS (known: default kasan)" ;;
	esac
	t0=$(date +%s)
	vm_kernel "$kernel"
	t1=$(date +%s)
	logs="$VM/$kernel"
	boot_rc=0
	if [ "$kernel" = kasan ]; then
		args+=(dirsync.backends="${DIRSYNC_KASAN_BACKENDS:-syscall}")
	else
		args+=(dirsync.backends="${DIRSYNC_BACKENDS:-syscall,statx}")
	fi
	vm_boot "$logs" "${DIRSYNC_VM_TIMEOUT:-1800}" dirsync.mode=test "${args[@]}" >&2 ||
		boot_rc=$?
	t2=$(date +%s)
	echo "vm: $kernel kernel: build/cache $((t1 - t0)) s, VM run $((t2 - t1)) s" >&2

	touch "$logs/results.log"
	tr -d '\r' <"$logs/results.log" >"$logs/results.clean"
	awk -v boot_rc="$boot_rc" -v counts="$logs/counts" -v label="$kernel" \
		-v problem="$KERNEL_PROBLEM_RE" -f "$ROOT/qemu/parse-results.awk" \
		"$logs/results.clean" | tee "$logs/summary.log"
	read -r p f <"$logs/counts"
	# Panics and oopses show on the console even when the guest never
	# reports.
	if vm_console_problems "$logs/console.log" >"$logs/console-bad.log"; then
		echo "FAIL $kernel:console_clean: kernel problems on the console:"
		cat "$logs/console-bad.log"
		f=$((f + 1))
	else
		p=$((p + 1))
	fi
	echo "vm: $kernel kernel: $p passed, $f failed" >&2
	passed=$((passed + p))
	failed=$((failed + f))
done
closed=1
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
