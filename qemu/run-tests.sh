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
# host adds two checks of its own: the VM ran to the end (no timeout or
# panic) and the kernel log has no Oops/BUG/WARNING/panic/Call Trace.
# The last line is "N passed, N failed"; the exit status is 0 only if
# nothing failed.
set -euo pipefail
. "$(dirname "$0")/vm-lib.sh"
cd "$ROOT"

vm_kernel
vm_stage_userspace
rm -rf "$VM/root"
vm_build_programs
vm_pack_initramfs

boot_rc=0
vm_boot test "${DIRSYNC_VM_TIMEOUT:-1200}" >&2 || boot_rc=$?

results="$VM/results.log"
touch "$results"
tr -d '\r' <"$results" >"$results.clean"

awk -v boot_rc="$boot_rc" '
function flush_test() {
	if (cur == "") return
	printf "vm: %-28s %d passed, %d failed%s\n", cur, tp, tf, \
		(exited ? " (exit " rc ")" : " (did not finish)") > "/dev/stderr"
	if (!exited || (rc != 0 && tf == 0)) { failed++; print "FAIL " cur ": exit status " (exited ? rc : "missing") }
	cur = ""
}
/^=== RUN / { flush_test(); cur = $3; tp = tf = 0; exited = 0; next }
/^=== EXIT / { if ($3 == cur) { exited = 1; rc = $4 }; next }
/^=== BENCH/ { flush_test(); bench = 1; next }
/^=== DMESG/ { flush_test(); bench = 0; dmesg = 1; next }
/^=== END DMESG/ { dmesg = 0; seen_dmesg = 1; next }
/^=== GUEST DONE/ { done = 1; next }
dmesg {
	if ($0 ~ /Oops|BUG[: ]|WARNING:|Kernel panic|Call Trace|general protection|RIP:|UBSAN|KASAN|refcount_t:|possible circular|INFO: task|hung_task|soft lockup/) {
		kernel_bad++; print "kernel: " $0
	}
	next
}
bench { print; next }
cur != "" && /^PASS / { passed++; tp++; next }
cur != "" && /^FAIL / { failed++; tf++; print; next }
cur != "" && /^test result: (ok|FAILED)\. [0-9]+ passed; [0-9]+ failed;/ {
	line = $0
	sub(/^test result: (ok|FAILED)\. /, "", line)
	split(line, a, /[ ;]+/)
	passed += a[1]; failed += a[3]; tp += a[1]; tf += a[3]
	if (a[3] > 0) print cur ": " $0
	next
}
END {
	flush_test()
	if (done && seen_dmesg && boot_rc == 0) passed++
	else { failed++; print "FAIL vm_completed: the guest did not finish (qemu status " boot_rc ", timeout or panic?)" }
	if (seen_dmesg && kernel_bad == 0) passed++
	else { failed++; print "FAIL kernel_log_clean: " (seen_dmesg ? kernel_bad " suspicious kernel log lines" : "no kernel log received") }
	# A panic before the guest could send its log: look at the console too.
	printf "%d %d\n", passed, failed > "'"$VM/counts"'"
}' "$results.clean" | tee "$VM/summary.log"

# Panics and oopses show on the console even when the guest never reports.
if grep -aE "Kernel panic|Oops|BUG:|WARNING:|Call Trace" "$VM/console.log" >"$VM/console-bad.log"; then
	echo "console: kernel problems:" >&2
	cat "$VM/console-bad.log" >&2
fi

read -r passed failed <"$VM/counts"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
