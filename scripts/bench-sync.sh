#!/usr/bin/env bash
# Benchmark of the one-shot mirror: dirsync against `rsync -a --delete` and
# `cp -a`, on generated trees in tmpfs, several runs each, medians and
# ratios. Not a test: it prints a table and always exits 0 when the tools
# ran.
#
#   scripts/bench-sync.sh            # RUNS=5 FILES=20000 BIG_MIB=200 BIG_FILES=3
#   RUNS=3 scripts/bench-sync.sh     # quicker
#
# Scenarios:
#   (a) FILES small files (0-8 KiB, 100 per directory), first copy
#   (b) the same tree unchanged, resynced; `find SRC DST -printf '%s %T@\n'`
#       is timed as the floor of a metadata-only pass
#   (c) 1% of the files changed (content and mtime), resynced
#   (d) BIG_FILES files of BIG_MIB MiB, first copy (throughput)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

RUNS=${RUNS:-5}
FILES=${FILES:-20000}
BIG_MIB=${BIG_MIB:-200}
BIG_FILES=${BIG_FILES:-3}

if [ "${REBUILD:-1}" = 1 ] || [ ! -x userspace/target/release/dirsync ]; then
	(cd userspace && cargo build --release --locked -q)
fi
DIRSYNC=$PWD/userspace/target/release/dirsync
for t in rsync cp find python3; do
	command -v "$t" >/dev/null || { echo "bench: $t is missing (make deps)" >&2; exit 1; }
done

bench_workarea bench dirsync-bench
trap bench_workarea_remove EXIT
echo "bench: $("$DIRSYNC" --version), $(rsync --version | head -1), $(cp --version | head -1)"

# Seconds taken by "$@" (stdout/stderr discarded).
timeit() {
	local t0 t1
	t0=$EPOCHREALTIME
	"$@" >/dev/null 2>&1
	t1=$EPOCHREALTIME
	echo "$t1 - $t0" | bc -l
}

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

declare -A RESULT
record() { RESULT[$1]=$2; printf '  %-34s median %8.4f s   (runs: %s)\n' "$1" "$2" "$3"; }

gen_small() {
	python3 - "$1" "$FILES" <<'EOF'
import os, random, sys
root, n = sys.argv[1], int(sys.argv[2])
random.seed(42)
os.makedirs(root, exist_ok=True)
per = 100
for i in range(n):
    d = os.path.join(root, "d%03d" % (i // per // 20), "s%03d" % (i // per))
    if i % per == 0:
        os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "f%05d" % i), "wb") as f:
        f.write(os.urandom(random.randint(0, 8192)))
EOF
}

change_percent() { # root, percent, round: rewrites that share of the files
	python3 - "$1" "$2" "$3" <<'EOF'
import os, sys
root, pct, rnd = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
files = sorted(os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs)
step = max(1, int(100 / pct))
for i, p in enumerate(files[rnd % step::step]):
    with open(p, "ab") as f:
        f.write(b"changed %d\n" % rnd)
EOF
}

run_tool() { # name src dst -> command line
	case $1 in
	dirsync) echo "$DIRSYNC" "$2" "$3" ;;
	rsync) echo rsync -a --delete "$2/" "$3/" ;;
	cp) echo cp -a "$2/." "$3" ;;
	esac
}

SRC=$WORK/src
echo "bench: generating $FILES small files"
gen_small "$SRC"

echo "(a) first copy of $FILES small files"
for tool in dirsync rsync cp; do
	times=()
	for _ in $(seq "$RUNS"); do
		rm -rf "$WORK/dst"; mkdir "$WORK/dst"
		# shellcheck disable=SC2046
		times+=("$(timeit $(run_tool $tool "$SRC" "$WORK/dst"))")
	done
	record "a/$tool" "$(median "${times[@]}")" "${times[*]}"
done

echo "(b) unchanged resync"
rm -rf "$WORK/dst"; "$DIRSYNC" "$SRC" "$WORK/dst"
for tool in dirsync rsync; do
	times=()
	for _ in $(seq "$RUNS"); do
		# shellcheck disable=SC2046
		times+=("$(timeit $(run_tool $tool "$SRC" "$WORK/dst"))")
	done
	record "b/$tool" "$(median "${times[@]}")" "${times[*]}"
done
times=()
for _ in $(seq "$RUNS"); do
	times+=("$(timeit find "$SRC" "$WORK/dst" -printf '%s %T@\n')")
done
record "b/find floor" "$(median "${times[@]}")" "${times[*]}"

echo "(c) 1% of the files changed"
for tool in dirsync rsync; do
	times=()
	rm -rf "$WORK/dst"; "$DIRSYNC" "$SRC" "$WORK/dst"
	for r in $(seq "$RUNS"); do
		change_percent "$SRC" 1 "$r"
		# shellcheck disable=SC2046
		times+=("$(timeit $(run_tool $tool "$SRC" "$WORK/dst"))")
	done
	record "c/$tool" "$(median "${times[@]}")" "${times[*]}"
done
rm -rf "$SRC" "$WORK/dst"

echo "(d) $BIG_FILES files of $BIG_MIB MiB, first copy"
mkdir -p "$WORK/big"
for i in $(seq "$BIG_FILES"); do
	head -c "$((BIG_MIB * 1024 * 1024))" /dev/urandom >"$WORK/big/f$i"
done
for tool in dirsync cp rsync; do
	times=()
	for _ in $(seq "$RUNS"); do
		rm -rf "$WORK/dst"; mkdir "$WORK/dst"
		# shellcheck disable=SC2046
		times+=("$(timeit $(run_tool $tool "$WORK/big" "$WORK/dst"))")
	done
	record "d/$tool" "$(median "${times[@]}")" "${times[*]}"
done

ratio() { echo "scale=2; $1 / $2" | bc -l; }
mib=$((BIG_MIB * BIG_FILES))
thr() { echo "scale=0; $mib / $1" | bc -l; }

echo
echo "| scenario | dirsync (s) | rsync -a --delete (s) | cp -a (s) | ratio | target | met |"
echo "|---|---|---|---|---|---|---|"
a=${RESULT[a/dirsync]} ar=${RESULT[a/rsync]} ac=${RESULT[a/cp]}
met=$(echo "$a < $ac" | bc -l)
printf '| (a) %s small files, first copy | %.3f | %.3f | %.3f | cp/dirsync %sx, rsync/dirsync %sx | faster than cp -a | %s |\n' \
	"$FILES" "$a" "$ar" "$ac" "$(ratio "$ac" "$a")" "$(ratio "$ar" "$a")" "$([ "$met" = 1 ] && echo yes || echo NO)"
b=${RESULT[b/dirsync]} br=${RESULT[b/rsync]} bf=${RESULT[b/find floor]}
met=$(echo "$b <= 1.2 * $bf" | bc -l)
printf '| (b) unchanged resync (find floor %.3f s) | %.3f | %.3f | - | dirsync/find %sx, rsync/dirsync %sx | <= 1.2x find | %s |\n' \
	"$bf" "$b" "$br" "$(ratio "$b" "$bf")" "$(ratio "$br" "$b")" "$([ "$met" = 1 ] && echo yes || echo NO)"
c=${RESULT[c/dirsync]} cr=${RESULT[c/rsync]}
met=$(echo "$cr >= 2 * $c" | bc -l)
printf '| (c) 1%% changed, resync | %.3f | %.3f | - | rsync/dirsync %sx | >= 2x faster than rsync | %s |\n' \
	"$c" "$cr" "$(ratio "$cr" "$c")" "$([ "$met" = 1 ] && echo yes || echo NO)"
d=${RESULT[d/dirsync]} dr=${RESULT[d/rsync]} dc=${RESULT[d/cp]}
met=$(echo "$d <= $dc / 0.9" | bc -l)
printf '| (d) %s x %s MiB, first copy | %.3f (%s MiB/s) | %.3f (%s MiB/s) | %.3f (%s MiB/s) | dirsync/cp throughput %sx | >= 0.9x cp | %s |\n' \
	"$BIG_FILES" "$BIG_MIB" "$d" "$(thr "$d")" "$dr" "$(thr "$dr")" "$dc" "$(thr "$dc")" "$(ratio "$dc" "$d")" "$([ "$met" = 1 ] && echo yes || echo NO)"
