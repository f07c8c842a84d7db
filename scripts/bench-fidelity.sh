#!/usr/bin/env bash
# Benchmark of an exact replica (-a): dirsync -a against `rsync -aHAXS`
# and `cp -a --reflink=auto`, and against dirsync without -a, on a
# generated tree in tmpfs, several runs each, medians and ratios. Not a
# test: it prints a table and always exits 0 when the tools ran.
#
#   scripts/bench-fidelity.sh        # RUNS=5 FILES=20000 SPARSE_MIB=1024
#
# The tree: FILES names (0-8 KiB, 100 per directory), 20% of them second
# names (hard links) of other files in another directory, 1% with a
# user.* attribute, and a sparse image of SPARSE_MIB MiB with three 64 KiB
# extents.
#   (e) first copy: dirsync -a, rsync -aHAXS, cp -a --reflink=auto; the
#       image's allocation in DST
#   (f) the same tree unchanged, resynced: dirsync -a, rsync -aHAXS
#       --delete, dirsync without -a
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

RUNS=${RUNS:-5}
FILES=${FILES:-20000}
SPARSE_MIB=${SPARSE_MIB:-1024}

if [ "${REBUILD:-1}" = 1 ] || [ ! -x userspace/target/release/dirsync ]; then
	(cd userspace && cargo build --release --locked -q)
fi
DIRSYNC=$PWD/userspace/target/release/dirsync
for t in rsync cp python3 setfattr bc; do
	command -v "$t" >/dev/null || { echo "bench: $t is missing (make deps)" >&2; exit 1; }
done
bench_workarea bench dirsync-bench-fid
trap bench_workarea_remove EXIT

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

SRC=$WORK/src
echo "bench: generating $FILES names (20% hard links, 1% with xattrs) and a $SPARSE_MIB MiB sparse image"
python3 - "$SRC" "$FILES" <<'PY'
import os, random, sys
root, n = sys.argv[1], int(sys.argv[2])
random.seed(42)
per = 100
made = []
for i in range(n):
    d = os.path.join(root, "d%03d" % (i // per // 20), "s%03d" % (i // per))
    if i % per == 0:
        os.makedirs(d, exist_ok=True)
    p = os.path.join(d, "f%05d" % i)
    if i % 5 == 4 and made:
        os.link(random.choice(made), p)
        continue
    with open(p, "wb") as f:
        f.write(os.urandom(random.randint(0, 8192)))
    if i % 100 == 1:
        os.setxattr(p, "user.bench", b"v%d" % i)
    made.append(p)
PY
img=$SRC/image.raw
truncate -s "${SPARSE_MIB}M" "$img"
for off in 0 $((SPARSE_MIB / 2)) $((SPARSE_MIB - 1)); do
	dd if=/dev/urandom of="$img" bs=64K count=1 seek=$((off * 16)) conv=notrunc status=none
done

run_tool() { # name src dst -> command line
	case $1 in
	dirsync-a) echo "$DIRSYNC" -a "$2" "$3" ;;
	dirsync) echo "$DIRSYNC" "$2" "$3" ;;
	rsync) echo rsync -aHAXS --delete "$2/" "$3/" ;;
	cp) echo cp -a --reflink=auto "$2/." "$3" ;;
	esac
}
kib() { du -k "$1" | cut -f1; }

echo "(e) first copy"
declare -A ALLOC
for tool in dirsync-a rsync cp; do
	times=()
	for _ in $(seq "$RUNS"); do
		rm -rf "$WORK/dst"; mkdir "$WORK/dst"
		# shellcheck disable=SC2046
		times+=("$(timeit $(run_tool $tool "$SRC" "$WORK/dst"))")
	done
	ALLOC[$tool]=$(kib "$WORK/dst/image.raw")
	record "e/$tool" "$(median "${times[@]}")" "${times[*]}"
done

echo "(f) unchanged resync"
rm -rf "$WORK/dst"; "$DIRSYNC" -a "$SRC" "$WORK/dst"
for tool in dirsync-a rsync dirsync; do
	times=()
	for _ in $(seq "$RUNS"); do
		# shellcheck disable=SC2046
		times+=("$(timeit $(run_tool $tool "$SRC" "$WORK/dst"))")
	done
	record "f/$tool" "$(median "${times[@]}")" "${times[*]}"
done

ratio() { echo "scale=2; $1 / $2" | bc -l; }
yes_no() { [ "$(echo "$1" | bc -l)" = 1 ] && echo yes || echo NO; }
src_alloc=$(kib "$img")
echo
echo "| scenario | dirsync -a (s) | rsync -aHAXS (s) | other (s) | ratio | target | met |"
echo "|---|---|---|---|---|---|---|"
e=${RESULT[e/dirsync-a]} er=${RESULT[e/rsync]} ec=${RESULT[e/cp]}
printf '| (e) first copy, %s names + %s MiB sparse image | %.3f | %.3f | cp -a --reflink=auto %.3f | rsync/dirsync %sx, cp/dirsync %sx | - | - |\n' \
	"$FILES" "$SPARSE_MIB" "$e" "$er" "$ec" "$(ratio "$er" "$e")" "$(ratio "$ec" "$e")"
printf '| (e) image allocation (SRC %s KiB) | %s KiB | %s KiB | cp %s KiB | - | dirsync <= SRC | %s |\n' \
	"$src_alloc" "${ALLOC[dirsync-a]}" "${ALLOC[rsync]}" "${ALLOC[cp]}" "$(yes_no "${ALLOC[dirsync-a]} <= $src_alloc")"
f=${RESULT[f/dirsync-a]} fr=${RESULT[f/rsync]} fp=${RESULT[f/dirsync]}
printf '| (f) unchanged resync vs rsync -aHAXS --delete | %.3f | %.3f | - | dirsync-a/rsync %sx | <= 0.5x | %s |\n' \
	"$f" "$fr" "$(ratio "$f" "$fr")" "$(yes_no "$f <= 0.5 * $fr")"
printf '| (f) unchanged resync vs dirsync without -a | %.3f | - | dirsync %.3f | -a/plain %sx | <= 1.3x | %s |\n' \
	"$f" "$fp" "$(ratio "$f" "$fp")" "$(yes_no "$f <= 1.3 * $fp")"
