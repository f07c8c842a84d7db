#!/usr/bin/env bash
# Benchmark of two-way sync: `dirsync --two-way` against `unison -batch`
# (Debian's unison 2.52, with a private UNISON= directory) and
# `rclone bisync` (Debian's rclone; its first run needs --resync), on
# FILES small files in tmpfs. Each of RUNS rounds starts from fresh
# replicas and times, for every tool, in one sequence:
#   (1) first run: A holds the tree, B is empty
#   (2) unchanged run
#   (3) 1% of the files changed on each side (different files)
#   (4) conflict-heavy round: the same 2% of the files changed on both sides
# and the peak RSS of each run (GNU time's %M). `dirsync A B` (the
# one-way mirror) on the unchanged tree is timed too: the issue's bound is
# an unchanged two-way run <= 1.5x an unchanged one-way resync. Prints
# medians, ratios and bytes of peak RSS per file. Not a test: it exits 0
# when the tools ran.
#
#   scripts/bench-twoway.sh             # RUNS=3 FILES=20000
#   RUNS=1 FILES=2000 scripts/bench-twoway.sh
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

RUNS=${RUNS:-3}
FILES=${FILES:-20000}

if [ "${REBUILD:-1}" = 1 ] || [ ! -x userspace/target/release/dirsync ]; then
	(cd userspace && cargo build --release --locked -q)
fi
DIRSYNC=$PWD/userspace/target/release/dirsync
for t in unison rclone python3 bc /usr/bin/time; do
	command -v "$t" >/dev/null || { echo "bench-twoway: $t is missing (make deps)" >&2; exit 1; }
done

bench_workarea bench-twoway dirsync-bench-twoway
trap bench_workarea_remove EXIT
echo "bench-twoway: $("$DIRSYNC" --version), unison $(unison -version 2>/dev/null | awk '{print $3}'), $(rclone version 2>/dev/null | head -1)"

gen_small() { # root: FILES files of 0-4 KiB, 100 per directory
	python3 - "$1" "$FILES" <<'EOF'
import os, random, sys
root, n = sys.argv[1], int(sys.argv[2])
random.seed(18)
for i in range(n):
    d = os.path.join(root, "d%03d" % (i // 2000), "s%03d" % (i // 100))
    if i % 100 == 0:
        os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "f%05d" % i), "wb") as f:
        f.write(os.urandom(random.randint(0, 4096)))
EOF
}

change() { # root, every Nth file, offset, tag: appends to those files
	python3 - "$@" <<'EOF'
import os, sys
root, step, off, tag = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
files = sorted(os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs)
for p in files[off::step]:
    with open(p, "ab") as f:
        f.write(b"changed " + tag.encode() + b"\n")
EOF
}

# measure NAME CMD...: runs CMD, appends "seconds rss_kib" to RES[NAME].
declare -A RES
measure() {
	local name=$1 t0 t1 rss
	shift
	t0=$EPOCHREALTIME
	local rc=0
	/usr/bin/time -f %M -o "$WORK/rss" "$@" >"$WORK/out" 2>&1 || rc=$?
	# unison -batch exits 1 when it skipped conflicts (round 4): expected.
	if [ "$rc" -ne 0 ] && [ "$name $rc" != "4/unison 1" ]; then
		echo "bench-twoway: $name: exit $rc ($(tail -c 300 "$WORK/out"))" >&2
	fi
	t1=$EPOCHREALTIME
	rss=$(tail -1 "$WORK/rss")
	RES[$name]="${RES[$name]:-} $(echo "$t1 - $t0" | bc -l):$rss"
}

tool_cmd() { # tool dir first|next: sets CMD to one two-way sync of dir/a and dir/b
	local d=$2
	case $1 in
	dirsync) CMD=("$DIRSYNC" --two-way --state "$d/state.db" "$d/a" "$d/b") ;;
	unison) CMD=(env "UNISON=$d/unison-home" unison "$d/a" "$d/b" -batch -times -silent) ;;
	rclone)
		CMD=(rclone bisync "$d/a" "$d/b" --workdir "$d/rclone-wd" --config "$d/rclone.conf" -q)
		if [ "$3" = first ]; then CMD+=(--resync); fi
		;;
	esac
}

SEED=$WORK/seed
echo "bench-twoway: generating $FILES small files"
gen_small "$SEED"
step1=100 # 1%
for r in $(seq "$RUNS"); do
	echo "bench-twoway: round $r of $RUNS"
	for tool in dirsync unison rclone; do
		d=$WORK/$tool
		rm -rf "$d"
		mkdir -p "$d/b"
		cp -a "$SEED" "$d/a"
		: >"$d/rclone.conf"
		tool_cmd "$tool" "$d" first
		measure "1/$tool" "${CMD[@]}"
		tool_cmd "$tool" "$d" next
		measure "2/$tool" "${CMD[@]}"
		change "$d/a" "$step1" 0 "a$r"
		change "$d/b" "$step1" 50 "b$r"
		measure "3/$tool" "${CMD[@]}"
		change "$d/a" 50 7 "conflict-a$r"
		change "$d/b" 50 7 "conflict-b$r"
		measure "4/$tool" "${CMD[@]}"
		if [ "$tool" = dirsync ]; then
			diff -r "$d/a" "$d/b" >/dev/null || die "bench-twoway: dirsync left A and B different"
			n=$(find "$d/a" -name '*.sync-conflict-*' | wc -l)
			[ "$n" -eq $((FILES / 50)) ] || die "bench-twoway: $n conflict copies, expected $((FILES / 50))"
			"$DIRSYNC" "$d/a" "$WORK/mirror"
			measure "m/dirsync" "$DIRSYNC" "$d/a" "$WORK/mirror"
			rm -rf "$WORK/mirror"
		fi
		rm -rf "$d"
	done
done

# med NAME FIELD(1 = s, 2 = KiB): the median over the runs.
med() {
	# shellcheck disable=SC2086
	printf '%s\n' ${RES[$1]} | awk -F: -v f="$2" '{print $f}' | sort -g |
		awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'
}
ratio() { echo "scale=2; $1 / $2" | bc -l; }
perfile() { echo "scale=0; $1 * 1024 / $FILES" | bc -l; }

echo
echo "| scenario ($FILES files) | dirsync (s) | unison -batch (s) | rclone bisync (s) | dirsync/unison | dirsync/rclone | peak RSS per file: dirsync / unison / rclone (bytes) |"
echo "|---|---|---|---|---|---|---|"
for s in 1 2 3 4; do
	case $s in
	1) label="(1) first run (B empty)" ;;
	2) label="(2) unchanged" ;;
	3) label="(3) 1% changed on each side" ;;
	4) label="(4) 2% changed on both sides (conflicts)" ;;
	esac
	dt=$(med "$s/dirsync" 1) ut=$(med "$s/unison" 1) rt=$(med "$s/rclone" 1)
	printf '| %s | %.3f | %.3f | %.3f | %sx | %sx | %s / %s / %s |\n' "$label" "$dt" "$ut" "$rt" \
		"$(ratio "$dt" "$ut")" "$(ratio "$dt" "$rt")" \
		"$(perfile "$(med "$s/dirsync" 2)")" "$(perfile "$(med "$s/unison" 2)")" "$(perfile "$(med "$s/rclone" 2)")"
done
mt=$(med "m/dirsync" 1)
printf '\none-way mirror, unchanged resync: %.3f s; unchanged two-way / one-way: %sx (bound 1.5x)\n' \
	"$mt" "$(ratio "$(med "2/dirsync" 1)" "$mt")"
printf 'targets: unchanged and 1%%-changed runs <= 0.3x unison: %s, %s\n' \
	"$(ratio "$(med 2/dirsync 1)" "$(med 2/unison 1)")" "$(ratio "$(med 3/dirsync 1)" "$(med 3/unison 1)")"

# watch --two-way: WATCH_N single-file changes one at a time, A -> B then
# B -> A, on a copy of the same tree (userspace/examples/watch_latency.rs:
# from the writer's close() to the other side having the new content).
# The issue's peer is `unison -repeat watch`, which needs unison-fsmonitor:
# Debian's unison 2.52 does not ship it, so the peer measured in the same
# run is lsyncd's one-way replica (default.direct, delay = 0), as in
# scripts/bench-watch.sh. Target: p99 < 20 ms both ways.
WATCH_N=${WATCH_N:-200}
PROBE=$PWD/userspace/target/release/examples/watch_latency
[ -x "$PROBE" ] || (cd userspace && cargo build --release --locked -q --example watch_latency)
wait_same() { # dir1 dir2
	for _ in $(seq 600); do
		diff -r "$1" "$2" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	die "bench-twoway: $1 and $2 did not converge"
}
field() { # line key
	tr ' ' '\n' <<<"$1" | awk -F= -v k="$2" '$1 == k { print $2 }'
}
wd=$WORK/watch
mkdir -p "$wd"
cp -a "$SEED" "$wd/a"
mkdir -p "$wd/a/lat" "$wd/b"
"$DIRSYNC" watch --two-way --state "$wd/state.db" "$wd/a" "$wd/b" >/dev/null 2>"$wd/err" &
wpid=$!
wait_same "$wd/a" "$wd/b"
WAB=$("$PROBE" latency "$wd/a" "$wd/b" "$WATCH_N")
WBA=$("$PROBE" latency "$wd/b" "$wd/a" "$WATCH_N")
kill -INT "$wpid"
wait "$wpid" || die "bench-twoway: watch --two-way exited $? ($(tail -c 300 "$wd/err"))"
ld=$WORK/lsyncd
mkdir -p "$ld/dst"
cp -a "$SEED" "$ld/src"
mkdir -p "$ld/src/lat"
cat >"$ld/lsyncd.conf" <<CONF
settings { nodaemon = true, logfile = "$ld/lsyncd.log", statusFile = "$ld/lsyncd.status", insist = true }
sync { default.direct, source = "$ld/src", target = "$ld/dst", delay = 0 }
CONF
lsyncd "$ld/lsyncd.conf" >"$ld/tool.log" 2>&1 &
lpid=$!
wait_same "$ld/src" "$ld/dst"
LSY=$("$PROBE" latency "$ld/src" "$ld/dst" "$WATCH_N")
kill "$lpid"
wait "$lpid" 2>/dev/null || true
echo
echo "| watch, $WATCH_N single-file changes ($FILES-file tree, load $(cut -d' ' -f1-3 /proc/loadavg)) | p50 (ms) | p99 (ms) | max (ms) | lost |"
echo "|---|---|---|---|---|"
for row in "dirsync watch --two-way, A -> B:$WAB" "dirsync watch --two-way, B -> A:$WBA" "lsyncd default.direct (one-way):$LSY"; do
	l=${row#*:}
	printf '| %s | %s | %s | %s | %s |\n' "${row%%:*}" \
		"$(echo "scale=2; $(field "$l" p50_us) / 1000" | bc -l)" \
		"$(echo "scale=2; $(field "$l" p99_us) / 1000" | bc -l)" \
		"$(echo "scale=2; $(field "$l" max_us) / 1000" | bc -l)" "$(field "$l" lost)"
done
printf 'watch p99 / lsyncd p99: A -> B %s, B -> A %s (target: p99 < 20 ms)\n' \
	"$(ratio "$(field "$WAB" p99_us)" "$(field "$LSY" p99_us)")" \
	"$(ratio "$(field "$WBA" p99_us)" "$(field "$LSY" p99_us)")"
