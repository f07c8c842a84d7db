#!/bin/sh
# /init of the test VM (busybox sh).  Mounts the usual file systems, then
# runs the executables in /guest/tests (sorted) and the microbenchmark
# (mode test), the demo (qemu/guest-demo-syscall.sh, mode demo) or only the
# microbenchmark (mode bench).
#
# Kernel parameters: dirsync.mode=test|demo|bench, dirsync.tests=GLOB (which
# /guest/tests/GLOB to run, default *), dirsync.bench=1|0 (run the
# microbenchmark after the tests, default 1), dirsync.test_timeout=SECONDS
# (per test executable, default 600), dirsync.backends=LIST (the metadata
# backends, comma-separated, each userspace suite runs with, default
# syscall,statx: DIRSYNC_STAT_BACKEND is set for each run, reported as
# "<name>[<backend>]"; the kernel's own tests, /guest/tests/1*, run once).
# The benchmarks (dirsync.bench=1 or mode bench) are the microbenchmark and
# /guest/bench/resync.sh (qemu/guest-bench-resync.sh: the unchanged resync
# with each backend).
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
backends=syscall,statx
read -r cmdline </proc/cmdline
for arg in $cmdline; do
	case "$arg" in
	dirsync.mode=*) mode=${arg#*=} ;;
	dirsync.tests=*) tests=${arg#*=} ;;
	dirsync.bench=*) bench=${arg#*=} ;;
	dirsync.test_timeout=*) test_timeout=${arg#*=} ;;
	dirsync.backends=*) backends=${arg#*=} ;;
	esac
done

echo "guest: Linux $(uname -r), $(nproc) CPUs, mode $mode, tests $tests" | report

# run_test PATH NAME: one test executable, between the markers.
run_test() {
	echo "=== RUN $2" | report
	cd /tmp || return
	{ timeout "$test_timeout" "$1" 2>&1; echo "=== EXIT $2 $?"; } | report
	cd /
}

# The benchmarks that are there.
run_bench() {
	echo "=== BENCH" | report
	if [ -x /guest/bench/dirsync-bench ]; then
		/guest/bench/dirsync-bench 2>&1 | report
	fi
	if [ -x /guest/bench/resync.sh ]; then
		/guest/bench/resync.sh 2>&1 | report
	fi
}

if [ "$mode" = demo ]; then
	/guest/guest-demo-syscall.sh 2>&1
elif [ "$mode" = bench ]; then
	run_bench
else
	# shellcheck disable=SC2086 # $tests is a glob
	for t in /guest/tests/$tests; do
		if [ ! -f "$t" ] || [ ! -x "$t" ]; then
			continue
		fi
		name=${t##*/}
		case "$name" in
		1*) run_test "$t" "$name" ;;
		*)
			for b in $(echo "$backends" | tr , ' '); do
				export DIRSYNC_STAT_BACKEND="$b"
				run_test "$t" "${name}[$b]"
			done
			export DIRSYNC_STAT_BACKEND=syscall
			;;
		esac
	done
	if [ "$bench" = 1 ]; then
		run_bench
	fi
fi

{ echo "=== DMESG"; dmesg; echo "=== END DMESG"; } >"$results"
echo "=== GUEST DONE" | report
sync
reboot -f
