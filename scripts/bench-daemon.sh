#!/usr/bin/env bash
# Benchmark of `dirsync daemon` against lsyncd running the same pairs, in
# the same run, on tmpfs. Not a test: it prints a table and exits 0 when
# the tools ran.
#
#   scripts/bench-daemon.sh                         # defaults below
#   N_PAIRS=20 MEM_DIRS=2000 N_LAT=100 scripts/bench-daemon.sh   # quicker
#
# Measures:
#   start-up  N_PAIRS pairs (each SRC: DIRS_PER_PAIR directories of
#             FILES_PER_DIR files, DST empty): dirsync from exec to READY=1
#             on its NOTIFY_SOCKET (a datagram socket this script binds)
#             and to every DST complete; lsyncd (one Lua file with
#             N_PAIRS `sync{default.rsync, delay = 0}` blocks) from exec
#             to every DST complete (its initial rsyncs done)
#   memory    the daemon's RSS (VmRSS) with one watched pair of MEM_DIRS
#             directories minus with one pair of one directory, per
#             directory; and the kernel's unreclaimable slab the same way
#   big tree  one pair of BIG_DIRS directories (one file at its root):
#             dirsync from exec to READY=1 and to the DST tree complete;
#             lsyncd (one sync{} block) from exec to the DST tree complete
#   latency   with the N_PAIRS pairs watched and a writer touching a file
#             in each of the others round-robin (every 20 ms), N_LAT
#             single-file changes in pair 1, one at a time: writer's
#             close() to the replica's new content (p50/p99/max, by
#             userspace/examples/watch_latency.rs); the same for lsyncd
set -euo pipefail
cd "$(dirname "$0")/.."

N_PAIRS=${N_PAIRS:-100}
DIRS_PER_PAIR=${DIRS_PER_PAIR:-10}
FILES_PER_DIR=${FILES_PER_DIR:-10}
MEM_DIRS=${MEM_DIRS:-10000}
N_LAT=${N_LAT:-300}
BIG_DIRS=${BIG_DIRS:-100000}

if [ "${REBUILD:-1}" = 1 ] || [ ! -x userspace/target/release/dirsync ]; then
	(cd userspace && cargo build --release --locked -q && cargo build --release --locked -q --example watch_latency)
fi
DIRSYNC=${DIRSYNC:-$PWD/userspace/target/release/dirsync}
PROBE=${PROBE:-$PWD/userspace/target/release/examples/watch_latency}
[ -x "$PROBE" ] || (cd userspace && cargo build --release --locked -q --example watch_latency)
for t in lsyncd rsync python3; do
	command -v "$t" >/dev/null || { echo "bench-daemon: $t is missing (make deps)" >&2; exit 1; }
done

base=/dev/shm
[ -d "$base" ] && [ -w "$base" ] || base=${TMPDIR:-/tmp}
W=$(mktemp -d "$base/dirsync-bench-daemon.XXXXXX")
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$W"
}
trap cleanup EXIT

now() { date +%s.%N; }
ms_since() { python3 -c "import sys; print(round((float(sys.argv[2]) - float(sys.argv[1])) * 1000))" "$1" "$2"; }

# N_PAIRS sources, each with DIRS_PER_PAIR x FILES_PER_DIR files and lat/.
make_sources() {
	local i d f
	for i in $(seq 1 "$N_PAIRS"); do
		mkdir -p "$W/src/p$i/lat"
		for d in $(seq 1 "$DIRS_PER_PAIR"); do
			mkdir -p "$W/src/p$i/d$d"
			for f in $(seq 1 "$FILES_PER_DIR"); do echo "p$i d$d f$f" >"$W/src/p$i/d$d/f$f"; done
		done
		echo 0 >"$W/src/p$i/tick"
	done
}
EXPECTED=$((N_PAIRS * (DIRS_PER_PAIR * FILES_PER_DIR + 1)))

# Files in every DST (complete when EXPECTED).
count_dst() { find "$W/dst" -type f 2>/dev/null | wc -l; }
wait_complete() { # timeout_s
	local end=$(($(date +%s) + $1))
	while [ "$(count_dst)" -lt "$EXPECTED" ]; do
		[ "$(date +%s)" -lt "$end" ] || { echo "bench-daemon: DSTs incomplete after $1 s" >&2; return 1; }
		sleep 0.02
	done
}

daemon_conf() { # file n_pairs src_root
	{
		echo "[daemon]"
		echo "control = \"$W/run/control.sock\""
		echo "state = \"$W/state\""
		echo "log = \"error\""
		for i in $(seq 1 "$2"); do
			printf '[[pair]]\nname = "p%s"\nsource = "%s/p%s"\ndestination = "%s/dst/p%s"\n' "$i" "$3" "$i" "$W" "$i"
		done
	} >"$1"
}

# A NOTIFY_SOCKET: writes the time READY=1 arrived to $1.ready.
notify_listener() { # socket
	python3 - "$1" <<'PY' &
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
while True:
    m = s.recv(65536).decode(errors="replace")
    if "READY=1" in m:
        open(sys.argv[1] + ".ready", "w").write("%.6f\n" % time.time())
        break
PY
	PIDS+=($!)
}

# A writer that touches pairs 2..N round-robin every 20 ms.
background_writer() {
	(
		k=0
		while :; do
			for i in $(seq 2 "$N_PAIRS"); do
				k=$((k + 1))
				echo "$k" >"$W/src/p$i/tick"
				sleep 0.02
			done
		done
	) &
	PIDS+=($!)
}

stop_pid() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

echo "bench-daemon: $N_PAIRS pairs of $DIRS_PER_PAIR dirs x $FILES_PER_DIR files on $base; $(nproc) CPUs"
make_sources

# --- dirsync: start-up
rm -rf "$W/dst" "$W/run" "$W/state"
mkdir -p "$W/dst"
daemon_conf "$W/daemon.toml" "$N_PAIRS" "$W/src"
notify_listener "$W/notify.sock"
while [ ! -S "$W/notify.sock" ]; do sleep 0.01; done
t0=$(now)
NOTIFY_SOCKET="$W/notify.sock" "$DIRSYNC" daemon --config "$W/daemon.toml" 2>"$W/daemon.log" &
DPID=$!
PIDS+=("$DPID")
while [ ! -f "$W/notify.sock.ready" ]; do sleep 0.005; done
ready_ms=$(ms_since "$t0" "$(cat "$W/notify.sock.ready")")
wait_complete 600
t1=$(now)
d_complete_ms=$(ms_since "$t0" "$t1")

# --- dirsync: latency with every pair watched and active
background_writer
WPID=${PIDS[-1]}
d_lat=$("$PROBE" latency "$W/src/p1" "$W/dst/p1" "$N_LAT")
stop_pid "$WPID"
d_rss_kb=$(awk '/VmRSS/ {print $2}' "/proc/$DPID/status")
stop_pid "$DPID"

# --- lsyncd: the same pairs
rm -rf "$W/dst"
mkdir -p "$W/dst"
{
	echo "settings { nodaemon = true, logfile = \"$W/lsyncd.log\", statusFile = \"$W/lsyncd.status\", insist = true, maxProcesses = 8 }"
	for i in $(seq 1 "$N_PAIRS"); do
		echo "sync { default.rsync, source = \"$W/src/p$i\", target = \"$W/dst/p$i\", delay = 0 }"
	done
} >"$W/lsyncd.conf"
t0=$(now)
lsyncd "$W/lsyncd.conf" >"$W/lsyncd.out" 2>&1 &
LPID=$!
PIDS+=("$LPID")
wait_complete 600
l_complete_ms=$(ms_since "$t0" "$(now)")
background_writer
WPID=${PIDS[-1]}
l_lat=$("$PROBE" latency "$W/src/p1" "$W/dst/p1" "$N_LAT")
stop_pid "$WPID"
stop_pid "$LPID"

# --- memory per watched directory: one pair of MEM_DIRS dirs vs of 1 dir
rss_for() { # dirs -> "rss_kb slab_kb" once its pair is watching
	local n=$1 d
	rm -rf "$W/mem" "$W/run" "$W/state"
	mkdir -p "$W/mem/src" "$W/mem/dst"
	for d in $(seq 1 "$n"); do mkdir "$W/mem/src/d$d"; done
	{
		echo "[daemon]"
		echo "control = \"$W/run/control.sock\""
		echo "state = \"$W/state\""
		echo "log = \"error\""
		printf '[[pair]]\nname = "m"\nsource = "%s"\ndestination = "%s"\n' "$W/mem/src" "$W/mem/dst"
	} >"$W/mem.toml"
	local slab0 slab1 pid
	slab0=$(awk '/SUnreclaim/ {print $2}' /proc/meminfo)
	"$DIRSYNC" daemon --config "$W/mem.toml" 2>"$W/mem.log" &
	pid=$!
	PIDS+=("$pid")
	until "$DIRSYNC" status --json --control "$W/run/control.sock" 2>/dev/null | grep -q '"state":"watching"'; do sleep 0.05; done
	slab1=$(awk '/SUnreclaim/ {print $2}' /proc/meminfo)
	echo "$(awk '/VmRSS/ {print $2}' "/proc/$pid/status") $((slab1 - slab0))"
	stop_pid "$pid"
}
read -r rss1 slab_1 < <(rss_for 1)
read -r rssN slab_N < <(rss_for "$MEM_DIRS")
per_dir_b=$(((rssN - rss1) * 1024 / (MEM_DIRS - 1)))
slab_per_dir_b=$(((slab_N - slab_1) * 1024 / (MEM_DIRS - 1)))

# --- one pair of BIG_DIRS directories: start-up, dirsync vs lsyncd
rm -rf "$W/mem" "$W/run" "$W/state" "$W/big"
mkdir -p "$W/big/src" "$W/big/dst"
(cd "$W/big/src" && seq 1 "$BIG_DIRS" | sed 's/^/d/' | xargs mkdir && echo root >f)
dirs_in() { find "$1" -type d | wc -l; }
wait_tree() { # dst timeout_s
	local end=$(($(date +%s) + $2))
	until [ -f "$1/f" ] && [ "$(dirs_in "$1")" -gt "$BIG_DIRS" ]; do
		[ "$(date +%s)" -lt "$end" ] || { echo "bench-daemon: big DST incomplete after $2 s" >&2; return 1; }
		sleep 0.2
	done
}
{
	echo "[daemon]"
	echo "control = \"$W/run/control.sock\""
	echo "state = \"$W/state\""
	echo "log = \"error\""
	printf '[[pair]]\nname = "big"\nsource = "%s"\ndestination = "%s"\n' "$W/big/src" "$W/big/dst"
} >"$W/big.toml"
rm -f "$W/notify.sock" "$W/notify.sock.ready"
notify_listener "$W/notify.sock"
while [ ! -S "$W/notify.sock" ]; do sleep 0.01; done
t0=$(now)
NOTIFY_SOCKET="$W/notify.sock" "$DIRSYNC" daemon --config "$W/big.toml" 2>"$W/big.log" &
BPID=$!
PIDS+=("$BPID")
while [ ! -f "$W/notify.sock.ready" ]; do sleep 0.005; done
big_ready_ms=$(ms_since "$t0" "$(cat "$W/notify.sock.ready")")
wait_tree "$W/big/dst" 1200
big_d_ms=$(ms_since "$t0" "$(now)")
stop_pid "$BPID"
rm -rf "$W/big/dst" && mkdir "$W/big/dst"
echo "settings { nodaemon = true, logfile = \"$W/lsyncd-big.log\", insist = true }
sync { default.rsync, source = \"$W/big/src\", target = \"$W/big/dst\", delay = 0 }" >"$W/lsyncd-big.conf"
t0=$(now)
lsyncd "$W/lsyncd-big.conf" >"$W/lsyncd-big.out" 2>&1 &
LPID=$!
PIDS+=("$LPID")
wait_tree "$W/big/dst" 1200
big_l_ms=$(ms_since "$t0" "$(now)")
stop_pid "$LPID"
rm -rf "$W/big"

field() { echo "$1" | tr ' ' '\n' | awk -F= -v k="$2" '$1 == k {print $2}'; }
us_ms() { python3 -c "import sys; print('%.2f' % (int(sys.argv[1]) / 1000))" "${1:-0}"; }

echo
printf '%-44s %14s %14s %8s\n' "measure" "dirsync" "lsyncd" "ratio"
printf '%-44s %14s %14s %8s\n' "start-up to READY=1 (ms)" "$ready_ms" "-" "-"
printf '%-44s %14s %14s %8s\n' "start-up to every DST complete (ms)" "$d_complete_ms" "$l_complete_ms" \
	"$(python3 -c "print('%.1fx' % ($l_complete_ms / max($d_complete_ms, 1)))")"
printf '%-44s %14s %14s %8s\n' "READY=1 vs lsyncd's initial rsyncs done" "$ready_ms" "$l_complete_ms" \
	"$(python3 -c "print('%.1fx' % ($l_complete_ms / max($ready_ms, 1)))")"
printf '%-44s %14s %14s %8s\n' "1 pair of $BIG_DIRS dirs: READY=1 (ms)" "$big_ready_ms" "$big_l_ms" \
	"$(python3 -c "print('%.1fx' % ($big_l_ms / max($big_ready_ms, 1)))")"
printf '%-44s %14s %14s %8s\n' "1 pair of $BIG_DIRS dirs: DST complete (ms)" "$big_d_ms" "$big_l_ms" \
	"$(python3 -c "print('%.1fx' % ($big_l_ms / max($big_d_ms, 1)))")"
printf '%-44s %14s %14s %8s\n' "event to replica p50 (ms), $N_PAIRS active" "$(us_ms "$(field "$d_lat" p50_us)")" "$(us_ms "$(field "$l_lat" p50_us)")" "-"
printf '%-44s %14s %14s %8s\n' "event to replica p99 (ms), $N_PAIRS active" "$(us_ms "$(field "$d_lat" p99_us)")" "$(us_ms "$(field "$l_lat" p99_us)")" \
	"$(python3 -c "import sys; a, b = int(sys.argv[1] or 1), int(sys.argv[2] or 0); print('%.1fx' % (b / max(a, 1)))" "$(field "$d_lat" p99_us)" "$(field "$l_lat" p99_us)")"
printf '%-44s %14s %14s %8s\n' "lost changes (of $N_LAT)" "$(field "$d_lat" lost)" "$(field "$l_lat" lost)" "-"
printf '%-44s %14s %14s %8s\n' "daemon RSS, $N_PAIRS pairs (KiB)" "$d_rss_kb" "-" "-"
printf '%-44s %14s %14s %8s\n' "daemon RSS per watched directory (bytes)" "$per_dir_b" "-" "-"
printf '%-44s %14s %14s %8s\n' "kernel slab per watched directory (bytes)" "$slab_per_dir_b" "-" "-"
