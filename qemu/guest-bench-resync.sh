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
# Environment: DIRSYNC_RESYNC_FILES (default 20000), DIRSYNC_RESYNC_RUNS
# (default 7), DIRSYNC_RESYNC_REPEAT (default 5), DIRSYNC_BIN (default
# /guest/bin/dirsync).
files=${DIRSYNC_RESYNC_FILES:-20000}
runs=${DIRSYNC_RESYNC_RUNS:-7}
repeat=${DIRSYNC_RESYNC_REPEAT:-5}
dirsync=${DIRSYNC_BIN:-/guest/bin/dirsync}
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

# $repeat unchanged resyncs of $2 to $3 with backend $1; prints the seconds
# of one.
resync() {
	i=0
	t0=$(now)
	while [ "$i" -lt "$repeat" ]; do
		out=$("$dirsync" --json --stat-backend "$1" "$2" "$3") || {
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
