#!/usr/bin/env bash
# Benchmark of the real-time replica: `dirsync watch` against lsyncd
# (`default.rsync` and `default.direct`, both with `delay = 0`), in the
# same run, on tmpfs. Not a test: it prints a table and exits 0 when the
# tools ran.
#
#   scripts/bench-watch.sh                      # defaults below
#   N_LAT=100 N_CHURN=2000 IDLE_SECS=20 scripts/bench-watch.sh   # quicker
#
# Measures, per tool:
#   latency  N_LAT single-file changes, one at a time: from the writer's
#            close() to DST's file having the new content (p50/p90/p99/max;
#            userspace/examples/watch_latency.rs, which watches DST with
#            inotify so it does not poll)
#   churn    N_CHURN new 1 KiB files written as fast as possible into 20
#            directories: files/s until all of them are in DST
#   idle     CPU used (utime+stime from /proc/PID/stat, children included
#            for lsyncd's rsync/cp) over IDLE_SECS with nothing changing,
#            while watching a tree of MEM_DIRS directories
# and for dirsync alone the memory per watched directory: RSS and kernel
# unreclaimable slab before/after watching MEM_DIRS directories.
set -euo pipefail
cd "$(dirname "$0")/.."

N_LAT=${N_LAT:-300}
N_CHURN=${N_CHURN:-2000}
IDLE_SECS=${IDLE_SECS:-60}
MEM_DIRS=${MEM_DIRS:-10000}

if [ "${REBUILD:-1}" = 1 ] || [ ! -x userspace/target/release/dirsync ]; then
	(cd userspace && cargo build --release --locked -q && cargo build --release --locked -q --example watch_latency)
fi
DIRSYNC=${DIRSYNC:-$PWD/userspace/target/release/dirsync}
PROBE=${PROBE:-$PWD/userspace/target/release/examples/watch_latency}
[ -x "$PROBE" ] || (cd userspace && cargo build --release --locked -q --example watch_latency)
for t in lsyncd rsync cp; do
	command -v "$t" >/dev/null || { echo "bench-watch: $t is missing (make deps)" >&2; exit 1; }
done

base=/dev/shm
[ -d "$base" ] && [ -w "$base" ] || base=${TMPDIR:-/tmp}
W=$(mktemp -d "$base/dirsync-bench-watch.XXXXXX")
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$W"
}
trap cleanup EXIT

# A SRC with the probe's directories and some bulk (2000 files).
prepare() { # dir
	local s=$1/src d f
	rm -rf "$1"
	mkdir -p "$s/lat" "$1/dst"
	for d in $(seq -w 0 19); do mkdir -p "$s/churn/d$d"; done
	for d in $(seq 1 40); do
		mkdir -p "$s/bulk/b$d"
		for f in $(seq 1 50); do echo "bulk $d $f" >"$s/bulk/b$d/f$f"; done
	done
}

lsyncd_conf() { # mode dir
	cat >"$2/lsyncd.conf" <<EOF
settings { nodaemon = true, logfile = "$2/lsyncd.log", statusFile = "$2/lsyncd.status", insist = true }
sync { default.$1, source = "$2/src", target = "$2/dst", delay = 0 }
EOF
}

START_PID=
start_tool() { # tool dir
	case $1 in
	dirsync) "$DIRSYNC" watch -q "$2/src" "$2/dst" >"$2/tool.log" 2>&1 & ;;
	lsyncd-rsync) lsyncd_conf rsync "$2"; lsyncd "$2/lsyncd.conf" >"$2/tool.log" 2>&1 & ;;
	lsyncd-direct) lsyncd_conf direct "$2"; lsyncd "$2/lsyncd.conf" >"$2/tool.log" 2>&1 & ;;
	esac
	START_PID=$!
	PIDS+=("$START_PID")
}

stop_tool() { # pid
	kill -TERM "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}

wait_equal() { # dir
	local _
	for _ in $(seq 1 600); do
		if diff -rq "$1/src" "$1/dst" >/dev/null 2>&1; then return 0; fi
		sleep 0.1
	done
	echo "bench-watch: $1/dst never caught up with src" >&2
	return 1
}

ticks() { # pid: utime+stime+cutime+cstime of the process
	awk '{print $14+$15+$16+$17}' "/proc/$1/stat"
}

TOOLS=(dirsync lsyncd-rsync lsyncd-direct)
declare -A LAT CHURN IDLE

for t in "${TOOLS[@]}"; do
	d=$W/$t
	prepare "$d"
	start_tool "$t" "$d"
	pid=$START_PID
	wait_equal "$d"
	sleep 0.5
	LAT[$t]=$("$PROBE" latency "$d/src" "$d/dst" "$N_LAT")
	CHURN[$t]=$("$PROBE" churn "$d/src" "$d/dst" "$N_CHURN")
	echo "bench-watch: $t: ${LAT[$t]}; ${CHURN[$t]}" >&2
	stop_tool "$pid"
	rm -rf "$d"
done

# Idle: the three tools at once, each on its own tree of MEM_DIRS
# directories, nothing changing.
mkdirs() { # root n
	python3 - "$1" "$2" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    os.makedirs(os.path.join(root, "t%03d" % (i // 100), "d%05d" % i), exist_ok=True)
PY
}
declare -A IPID
for t in "${TOOLS[@]}"; do
	d=$W/idle-$t
	mkdir -p "$d/src" "$d/dst"
	mkdirs "$d/src" "$MEM_DIRS"
	# DST already equal: the slab delta below is then the watches' alone
	# (tmpfs inodes of new DST directories would count too).
	cp -a "$d/src/." "$d/dst/"
done
slab_before=$(awk '/^SUnreclaim:/ {print $2}' /proc/meminfo)
start_tool dirsync "$W/idle-dirsync"
IPID[dirsync]=$START_PID
wait_equal "$W/idle-dirsync"
sleep 1
slab_after=$(awk '/^SUnreclaim:/ {print $2}' /proc/meminfo)
rss_big=$(awk '/^VmRSS:/ {print $2}' "/proc/${IPID[dirsync]}/status")
watches=$(cat /proc/"${IPID[dirsync]}"/fdinfo/* 2>/dev/null | grep -c '^inotify wd:' || true)
# The same binary watching a single directory, for the RSS baseline.
mkdir -p "$W/one/src" "$W/one/dst"
start_tool dirsync "$W/one"
one_pid=$START_PID
wait_equal "$W/one"
sleep 0.5
rss_one=$(awk '/^VmRSS:/ {print $2}' "/proc/$one_pid/status")
stop_tool "$one_pid"
for t in lsyncd-rsync lsyncd-direct; do
	start_tool "$t" "$W/idle-$t"
	IPID[$t]=$START_PID
	wait_equal "$W/idle-$t"
done
sleep 2
declare -A T0
for t in "${TOOLS[@]}"; do T0[$t]=$(ticks "${IPID[$t]}"); done
echo "bench-watch: idle for ${IDLE_SECS}s..." >&2
sleep "$IDLE_SECS"
hz=$(getconf CLK_TCK)
for t in "${TOOLS[@]}"; do
	t1=$(ticks "${IPID[$t]}")
	IDLE[$t]=$(awk -v a="${T0[$t]}" -v b="$t1" -v hz="$hz" -v s="$IDLE_SECS" \
		'BEGIN {printf "%.3f%% (%d ticks)", (b - a) / hz / s * 100, b - a}')
	stop_tool "${IPID[$t]}"
done

field() { # line key
	echo "$1" | tr ' ' '\n' | awk -F= -v k="$2" '$1 == k {print $2}'
}

echo
echo "== dirsync watch vs lsyncd (delay = 0), tmpfs, $(nproc) CPUs =="
printf '%-14s %9s %9s %9s %9s %5s %12s %6s %18s\n' tool p50_ms p90_ms p99_ms max_ms '>5s' churn_f/s '>300s' idle_cpu
for t in "${TOOLS[@]}"; do
	l=${LAT[$t]}
	c=${CHURN[$t]}
	printf '%-14s %9.2f %9.2f %9.2f %9.2f %5s %12s %6s %18s\n' "$t" \
		"$(awk -v v="$(field "$l" p50_us)" 'BEGIN{print v/1000}')" \
		"$(awk -v v="$(field "$l" p90_us)" 'BEGIN{print v/1000}')" \
		"$(awk -v v="$(field "$l" p99_us)" 'BEGIN{print v/1000}')" \
		"$(awk -v v="$(field "$l" max_us)" 'BEGIN{print v/1000}')" \
		"$(field "$l" lost)" "$(field "$c" files_per_s)" "$(field "$c" lost)" "${IDLE[$t]}"
done
echo "latency: $N_LAT single-file changes (close -> DST equal; '>5s': changes not replicated within 5 s)"
echo "churn: $N_CHURN new files, files/s until all are in DST; idle: CPU over ${IDLE_SECS}s watching $MEM_DIRS directories"
echo
echo "== dirsync watch: memory per watched directory ($MEM_DIRS directories, $watches inotify watches) =="
awk -v big="$rss_big" -v one="$rss_one" -v n="$MEM_DIRS" -v sb="$slab_before" -v sa="$slab_after" 'BEGIN {
	printf "user space (RSS %d KiB vs %d KiB for one directory): %.0f bytes/dir\n", big, one, (big - one) * 1024 / n
	printf "kernel unreclaimable slab delta (inotify marks + connectors, noisy): %.0f bytes/dir\n", (sa - sb) * 1024 / n
}'
