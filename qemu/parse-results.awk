# Parses the results port of one test VM boot (see qemu/guest-init.sh and
# the protocol in qemu/run-tests.sh).  Variables: boot_rc (QEMU's exit
# status), counts (file receiving "PASSED FAILED"), label (the kernel,
# prefixed to the host's own checks), problem (KERNEL_PROBLEM_RE of
# scripts/lib.sh).  Prints failures, the bench lines and the kernel log
# lines matching the problem pattern; per-test summaries go to stderr.
function flush_test() {
	if (cur == "") return
	printf "vm: %s: %-26s %d passed, %d failed%s\n", label, cur, tp, tf, \
		(exited ? " (exit " rc ")" : " (did not finish)") > "/dev/stderr"
	if (!exited || (rc != 0 && tf == 0)) { failed++; print "FAIL " label ":" cur ": exit status " (exited ? rc : "missing") }
	cur = ""
}
/^=== RUN / { flush_test(); cur = $3; tp = tf = 0; exited = 0; next }
/^=== EXIT / { if ($3 == cur) { exited = 1; rc = $4 }; next }
/^=== BENCH/ { flush_test(); bench = 1; next }
/^=== DMESG/ { flush_test(); bench = 0; dmesg = 1; next }
/^=== END DMESG/ { dmesg = 0; seen_dmesg = 1; next }
/^=== GUEST DONE/ { done = 1; next }
dmesg {
	if ($0 ~ problem) { kernel_bad++; print label ": kernel: " $0 }
	next
}
bench { print; next }
cur != "" && /^PASS / { passed++; tp++; next }
cur != "" && /^FAIL / { failed++; tf++; print label ": " $0; next }
# kselftest (TAP 13): "ok N name", "not ok N name"; a skipped test is not
# a pass ("ok N name # SKIP reason"): the tests have nothing to skip.
cur != "" && /^not ok [0-9]+ / { failed++; tf++; print label ": " cur ": " $0; next }
cur != "" && /^ok [0-9]+ / {
	if ($0 ~ /# (SKIP|skip)/) { failed++; tf++; print label ": " cur ": " $0 " (skipped counts as failed)" }
	else { passed++; tp++ }
	next
}
cur != "" && /^test result: (ok|FAILED)\. [0-9]+ passed; [0-9]+ failed;/ {
	line = $0
	sub(/^test result: (ok|FAILED)\. /, "", line)
	split(line, a, /[ ;]+/)
	passed += a[1]; failed += a[3]; tp += a[1]; tf += a[3]
	if (a[3] > 0) print label ": " cur ": " $0
	next
}
END {
	flush_test()
	if (done && seen_dmesg && boot_rc == 0) passed++
	else { failed++; print "FAIL " label ":vm_completed: the guest did not finish (qemu status " boot_rc ", timeout or panic?)" }
	if (seen_dmesg && kernel_bad == 0) passed++
	else { failed++; print "FAIL " label ":kernel_log_clean: " (seen_dmesg ? kernel_bad " kernel problem lines in dmesg" : "no kernel log received") }
	printf "%d %d\n", passed, failed > counts
}
