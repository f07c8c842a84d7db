#!/bin/sh
# /init of the test VM (busybox sh).  Mounts the usual file systems, then
# runs the executables in /guest/tests (sorted) and the microbenchmark
# (mode test), the demo (qemu/guest-demo-syscall.sh, mode demo) or only the
# microbenchmark (mode bench).
#
# Kernel parameters: dirsync.mode=test|demo|bench, dirsync.tests=GLOB (which
# /guest/tests/GLOB to run, default *), dirsync.bench=1|0 (run the
# microbenchmark after the tests, default 1), dirsync.test_timeout=SECONDS
# (per test executable, default 600).
#
# The host reads the second serial port (/dev/ttyS1) for results: markers
# "=== RUN <name>" / "=== EXIT <name> <status>", the tests' own output,
# the kernel log ("=== DMESG" ... "=== END DMESG") and "=== GUEST DONE".
# Everything also goes to the console (ttyS0) for people watching.

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs -o size=512m,mode=1777 tmpfs /tmp

export PATH=/guest/bin:/bin:/sbin TMPDIR=/tmp HOME=/root
export DIRSYNC_STAT_BACKEND=syscall

results=/dev/ttyS1
[ -c "$results" ] || results=/dev/null
# Sends stdin to the console and the results port.
report() { tee -a "$results"; }

mode="test"
tests='*'
bench=1
test_timeout=600
read -r cmdline </proc/cmdline
for arg in $cmdline; do
	case "$arg" in
	dirsync.mode=*) mode=${arg#*=} ;;
	dirsync.tests=*) tests=${arg#*=} ;;
	dirsync.bench=*) bench=${arg#*=} ;;
	dirsync.test_timeout=*) test_timeout=${arg#*=} ;;
	esac
done

echo "guest: Linux $(uname -r), $(nproc) CPUs, mode $mode, tests $tests" | report

if [ "$mode" = demo ]; then
	/guest/guest-demo-syscall.sh 2>&1
elif [ "$mode" = bench ]; then
	echo "=== BENCH" | report
	/guest/bench/dirsync-bench 2>&1 | report
else
	# shellcheck disable=SC2086 # $tests is a glob
	for t in /guest/tests/$tests; do
		if [ ! -f "$t" ] || [ ! -x "$t" ]; then
			continue
		fi
		name=${t##*/}
		echo "=== RUN $name" | report
		cd /tmp || continue
		{ timeout "$test_timeout" "$t" 2>&1; echo "=== EXIT $name $?"; } | report
		cd /
	done
	if [ "$bench" = 1 ] && [ -x /guest/bench/dirsync-bench ]; then
		echo "=== BENCH" | report
		/guest/bench/dirsync-bench 2>&1 | report
	fi
fi

{ echo "=== DMESG"; dmesg; echo "=== END DMESG"; } >"$results"
echo "=== GUEST DONE" | report
sync
reboot -f
