#!/usr/bin/env bash
# Interleaved A/B of two dirsync binaries (before/after a change) on the
# scenarios (a), (b), (c) of scripts/bench-sync.sh: 20,000 small files in
# /dev/shm; each round runs both binaries back to back (alternating which
# goes first), medians over ROUNDS. On a shared machine this is steadier
# than two separate `make bench` runs.
#
#   userspace/tools/bench-ab.sh BEFORE_BIN AFTER_BIN     # ROUNDS=9
set -euo pipefail
A=$1 B=$2 ROUNDS=${ROUNDS:-9}
W=$(mktemp -d /dev/shm/ab.XXXXXX); trap 'rm -rf "$W"' EXIT
python3 - "$W/src" <<'PY'
import os, random, sys
root = sys.argv[1]; random.seed(42)
for i in range(20000):
    d = os.path.join(root, "d%03d" % (i // 100 // 20), "s%03d" % (i // 100))
    if i % 100 == 0: os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "f%05d" % i), "wb") as f: f.write(os.urandom(random.randint(0, 8192)))
PY
t() { local t0=$EPOCHREALTIME; "$@" >/dev/null 2>&1; echo "$EPOCHREALTIME - $t0" | bc -l; }
declare -A R
for r in $(seq "$ROUNDS"); do
	if (( r % 2 )); then order="A B"; else order="B A"; fi
	for w in $order; do
		bin=$A; [ "$w" = B ] && bin=$B
		rm -rf "$W/dst"; mkdir "$W/dst"
		R[a$w]+="$(t "$bin" "$W/src" "$W/dst") "
		R[b$w]+="$(t "$bin" "$W/src" "$W/dst") "
		python3 - "$W/src" "$r$w" <<'PY'
import os, sys
fs = sorted(os.path.join(d, f) for d, _, n in os.walk(sys.argv[1]) for f in n)
for p in fs[::100]:
    with open(p, "ab") as f: f.write(sys.argv[2].encode())
PY
		R[c$w]+="$(t "$bin" "$W/src" "$W/dst") "
	done
done
med() { tr ' ' '\n' <<<"$1" | grep . | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
printf '| scenario | before (s) | after (s) | after/before |\n|---|---|---|---|\n'
for s in a b c; do
	x=$(med "${R[${s}A]}"); y=$(med "${R[${s}B]}")
	printf '| %s | %.4f | %.4f | %.3f |\n' "$s" "$x" "$y" "$(echo "$y / $x" | bc -l)"
done
