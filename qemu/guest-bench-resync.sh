#!/bin/sh
# The unchanged-resync benchmark, in the test VM (busybox sh; staged as
# /guest/bench/resync.sh by qemu/stage-userspace.sh, run by
# qemu/guest-init.sh after the microbenchmark): `dirsync SRC DST` on a tree
# of FILES files (200 directories of FILES/200) that DST already mirrors,
# with the statx backend (getdents64 + one statx per entry, on both trees)
# and the syscall backend (dirsync_readdir: one call per 64 KiB of
# records), RUNS runs of each, interleaved; prints the medians and the
# ratio on "bench resync" lines.  Each timed sample is REPEAT resyncs in a
# row (the guest clock, /proc/uptime, has 10 ms steps).  The fixed cost of
# one run (starting the process, choosing the backend, the thread pool:
# `dirsync` of an empty tree) is measured the same way and printed, with
# the ratio of what is left once it is taken away.  Not a test: the numbers are printed, not
# asserted (TCG: only the ratio means something).
#
# Then the exact-replica resync: 10% of the files get an xattr and 2% a
# second name (dirsync-bench --fidelity-tree), DST is made with `dirsync -a`,
# and the unchanged `dirsync -a` resync is timed against the plain one on
# the same trees, with each backend (DIRSYNC_RESYNC_A_RUNS runs of
# DIRSYNC_RESYNC_A_REPEAT, default 3 and 2): "bench resync -a" lines, the
# -a/plain ratio per backend (dirsync_readdir carries owner, group and link
# count, so -o, -g and -H no longer force statx).
#
# Environment: DIRSYNC_RESYNC_FILES (default 20000), DIRSYNC_RESYNC_RUNS
# (default 7), DIRSYNC_RESYNC_REPEAT (default 5), DIRSYNC_BIN (default
# /guest/bin/dirsync), DIRSYNC_BENCH_BIN (default /guest/bench/dirsync-bench).
files=${DIRSYNC_RESYNC_FILES:-20000}
runs=${DIRSYNC_RESYNC_RUNS:-7}
repeat=${DIRSYNC_RESYNC_REPEAT:-5}
dirsync=${DIRSYNC_BIN:-/guest/bin/dirsync}
bench_bin=${DIRSYNC_BENCH_BIN:-/guest/bench/dirsync-bench}
dirs=200
per=$((files / dirs))

work=$(mktemp -d /tmp/resync.XXXXXX) || exit 1
trap 'rm -rf "$work"' EXIT

# Seconds since boot, to the hundredth (busybox date has no %N).
now() {
	read -r up _ </proc/uptime
	echo "$up"
}

# Median of the arguments.
median() {
	printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END {
		if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

d=0
while [ "$d" -lt "$dirs" ]; do
	mkdir -p "$work/src/d$d"
	f=0
	while [ "$f" -lt "$per" ]; do
		echo "$d $f" >"$work/src/d$d/f$f"
		f=$((f + 1))
	done
	d=$((d + 1))
done
t0=$(now)
"$dirsync" --stat-backend statx "$work/src" "$work/dst" >/dev/null || {
	echo "bench resync: the first copy failed"
	exit 1
}
t1=$(now)
echo "bench resync: $((dirs * per)) files in $dirs directories, first copy $(echo "$t0 $t1" | awk '{ printf "%.2f", $2 - $1 }') s (statx)"

backends=statx
if err=$("$dirsync" -q --stat-backend syscall "$work/src" "$work/dst" 2>&1 >/dev/null); then
	backends="statx syscall"
else
	echo "bench resync: no syscall backend on this kernel: $err"
fi

mkdir "$work/empty-src" "$work/empty-dst"

# $repeat unchanged resyncs of $2 to $3 with backend $1 and the options
# of $4 (words); prints the seconds of one.
resync() {
	i=0
	t0=$(now)
	while [ "$i" -lt "$repeat" ]; do
		# shellcheck disable=SC2086 # $4: options, split into words
		out=$("$dirsync" --json $4 --stat-backend "$1" "$2" "$3") || {
			echo "bench resync: the $1 resync failed" >&2
			return 1
		}
		case "$out" in
		*'"action":"summary","copied":0,'*'"errors":0,'*) ;;
		*)
			echo "bench resync: the $1 resync was not a no-op: $out" >&2
			return 1
			;;
		esac
		i=$((i + 1))
	done
	t1=$(now)
	echo "$t0 $t1 $repeat" | awk '{ printf "%.3f", ($2 - $1) / $3 }'
}

times_statx=
times_syscall=
floor_statx=
floor_syscall=
r=0
while [ "$r" -lt "$runs" ]; do
	for b in $backends; do
		t=$(resync "$b" "$work/src" "$work/dst") || exit 1
		f=$(resync "$b" "$work/empty-src" "$work/empty-dst") || exit 1
		eval "times_$b=\"\$times_$b $t\"; floor_$b=\"\$floor_$b $f\""
	done
	r=$((r + 1))
done

# shellcheck disable=SC2086 # a list of numbers
median_statx=$(median $times_statx)
# shellcheck disable=SC2086 # a list of numbers
fixed_statx=$(median $floor_statx)
echo "bench resync: unchanged resync, statx backend: median $median_statx s (runs:$times_statx), of which fixed $fixed_statx s (empty tree)"
if [ "$backends" != statx ]; then
	# shellcheck disable=SC2086 # a list of numbers
	median_syscall=$(median $times_syscall)
	# shellcheck disable=SC2086 # a list of numbers
	fixed_syscall=$(median $floor_syscall)
	echo "bench resync: unchanged resync, syscall backend: median $median_syscall s (runs:$times_syscall), of which fixed $fixed_syscall s (empty tree)"
	echo "$median_statx $median_syscall $fixed_statx $fixed_syscall" | awk '{
		r = ($2 > 0) ? $1 / $2 : 0
		w = ($2 - $4 > 0) ? ($1 - $3) / ($2 - $4) : 0
		printf "bench resync: statx/syscall %.2fx (target >= 2x: %s); without the fixed cost %.2fx\n", r, (r >= 2 ? "met" : "NOT met"), w }'
fi

# The exact replica (-a): xattrs on 10% of the files, 2% hard links.  Only
# in `make bench` (dirsync.mode=bench): after the suites of `make
# qemu-test` it pushed the default kernel's VM past its 1800 s timeout on
# a loaded machine.
case " $(cat /proc/cmdline) " in
*" dirsync.mode=bench "*) ;;
*) exit 0 ;;
esac
"$bench_bin" --fidelity-tree "$work/src" || exit 1
"$dirsync" -a --stat-backend statx "$work/src" "$work/dst-a" >/dev/null || {
	echo "bench resync -a: the first copy failed"
	exit 1
}
runs=${DIRSYNC_RESYNC_A_RUNS:-3}
repeat=${DIRSYNC_RESYNC_A_REPEAT:-2}
r=0
while [ "$r" -lt "$runs" ]; do
	for b in $backends; do
		t=$(resync "$b" "$work/src" "$work/dst-a") || exit 1
		a=$(resync "$b" "$work/src" "$work/dst-a" -a) || exit 1
		eval "plain_$b=\"\$plain_$b $t\"; archive_$b=\"\$archive_$b $a\""
	done
	r=$((r + 1))
done
for b in $backends; do
	eval "p=\$plain_$b; a=\$archive_$b"
	# shellcheck disable=SC2154,SC2086 # set by eval above; lists of numbers
	mp=$(median $p)
	# shellcheck disable=SC2154,SC2086 # set by eval above; lists of numbers
	ma=$(median $a)
	eval "median_a_$b=$ma"
	echo "$b $mp $ma" | awk '{ printf "bench resync -a: %s backend: plain %s s, -a %s s: -a/plain %.2fx\n", $1, $2, $3, ($2 > 0) ? $3 / $2 : 0 }'
done
if [ "$backends" != statx ]; then
	# shellcheck disable=SC2154 # set by eval above
	# Before DIRSYNC_INFO_UID/_GID/_NLINK, -a always took statx: its cost
	# against the plain resync was that of -a with statx over plain with
	# the syscall backend.
	# shellcheck disable=SC2086 # a list of numbers
	echo "$median_a_statx $median_a_syscall $(median $plain_syscall)" | awk '{
		printf "bench resync -a: statx/syscall %.2fx for -a; -a/plain (syscall) %.2fx, was %.2fx when -a forced statx\n",
			($2 > 0) ? $1 / $2 : 0, ($3 > 0) ? $2 / $3 : 0, ($3 > 0) ? $1 / $3 : 0 }'
fi
