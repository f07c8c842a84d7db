#!/usr/bin/env bash
# Benchmark of an exact replica over ssh: `dirsync -a SRC 127.0.0.1:DST`
# against `rsync -aHAXS --delete -e ssh`, both through the same sshd that
# this script starts on 127.0.0.1 with its own keys (a new ssh session
# per run, as scripts/bench-remote.sh's "loopback" link; as root the
# sshd sees an empty ~/.bashrc, as there: LOGIN_SCRIPTS=kept keeps it).
# Runs interleaved, medians, ratios in one run. Not a test: it prints a
# table and exits 0 when the tools ran.
#
#   scripts/bench-remote-fidelity.sh    # RUNS=3 FILES=20000 SPARSE_MIB=1024
#
# The tree (as scripts/bench-fidelity.sh's): FILES names (0-8 KiB, 100
# per directory), 20% of them second names (hard links) of other files,
# 1% with a user.* attribute, and a SPARSE_MIB MiB image with three 64 KiB
# extents.
#   (g) first copy, into an empty DST
#   (h) the same tree unchanged, resynced
#   (i) the image alone, first copy: bytes on the wire from SRC's side,
#       counted around ssh by userspace/tests/common/count_rsh.py
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

RUNS=${RUNS:-3}
FILES=${FILES:-20000}
SPARSE_MIB=${SPARSE_MIB:-1024}
LOGIN_SCRIPTS=${LOGIN_SCRIPTS:-hidden}
for t in rsync ssh ssh-keygen python3 bc setfattr; do
	command -v "$t" >/dev/null || die "bench-remote-fidelity: $t is missing (make deps)"
done
[ -x /usr/sbin/sshd ] || die "bench-remote-fidelity: /usr/sbin/sshd is missing (make deps)"
if [ "${REBUILD:-1}" = 1 ] || [ ! -x userspace/target/release/dirsync ]; then
	(cd userspace && cargo build --release --locked -q)
fi
DIRSYNC=$PWD/userspace/target/release/dirsync
COUNT_RSH=$PWD/userspace/tests/common/count_rsh.py

bench_workarea bench-remote-fidelity dirsync-rfbench
SSHD_PID=
cleanup() {
	if [ -n "$SSHD_PID" ]; then kill "$SSHD_PID" 2>/dev/null || true; fi
	wait 2>/dev/null || true
	bench_workarea_remove
}
trap cleanup EXIT

bench_sshd_setup "$LOGIN_SCRIPTS" || true
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"${SSHD[@]}" -D -e -f "$WORK/sshd_config" -o "ListenAddress=127.0.0.1" -p "$PORT" 2>/dev/null &
SSHD_PID=$!
for _ in $(seq 200); do
	bash -c "exec 3<>/dev/tcp/127.0.0.1/$PORT" 2>/dev/null && break
	sleep 0.05
done
RSH="ssh -p $PORT -i $WORK/client_key -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o LogLevel=ERROR"
$RSH 127.0.0.1 true || die "bench-remote-fidelity: sshd did not answer on 127.0.0.1:$PORT"

timeit() {
	local t0 t1
	t0=$EPOCHREALTIME
	"$@" >/dev/null 2>&1 || die "bench-remote-fidelity: failed: $*"
	t1=$EPOCHREALTIME
	echo "$t1 - $t0" | bc -l
}
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
ratio() { echo "scale=2; $1 / $2" | bc -l; }
yes_no() { [ "$(echo "$1" | bc -l)" = 1 ] && echo met || echo "not met"; }

SRC=$WORK/src
echo "bench-remote-fidelity: generating $FILES names (20% hard links, 1% with xattrs) and a $SPARSE_MIB MiB sparse image"
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
IMG_DIR=$WORK/img
mkdir "$IMG_DIR"
img=$IMG_DIR/image.raw
truncate -s "${SPARSE_MIB}M" "$img"
for off in 0 $((SPARSE_MIB / 2)) $((SPARSE_MIB - 1)); do
	dd if=/dev/urandom of="$img" bs=64K count=1 seek=$((off * 16)) conv=notrunc status=none
done
cp --sparse=always "$img" "$SRC/image.raw"

run() { # tool rsh src dst
	case $1 in
	dirsync) "$DIRSYNC" -a -e "$2" --remote-path "$DIRSYNC" "$3" "127.0.0.1:$4" ;;
	rsync) rsync -aHAXS --delete -e "$2" "$3/" "127.0.0.1:$4/" ;;
	esac
}
declare -A T
for tool in dirsync rsync; do T[g/$tool]=""; T[h/$tool]=""; done
# The session setup both tools pay first on every run.
T[ssh-true]=""
# shellcheck disable=SC2086 # RSH is a command line
for _ in $(seq "$RUNS"); do T[ssh-true]+=" $(timeit $RSH 127.0.0.1 true)"; done
echo "(g) first copy and (h) unchanged resync, $RUNS interleaved runs"
for _ in $(seq "$RUNS"); do
	for tool in dirsync rsync; do
		rm -rf "$WORK/dst-$tool"
		T[g/$tool]+=" $(timeit run "$tool" "$RSH" "$SRC" "$WORK/dst-$tool")"
	done
	for tool in dirsync rsync; do
		T[h/$tool]+=" $(timeit run "$tool" "$RSH" "$SRC" "$WORK/dst-$tool")"
	done
done
declare -A M
for k in "${!T[@]}"; do
	# shellcheck disable=SC2086 # the runs, one word each
	M[$k]=$(median ${T[$k]})
	printf '  %-10s median %8.4f s   (runs:%s)\n' "$k" "${M[$k]}" "${T[$k]}"
done

echo "(i) the image alone, bytes on the wire"
declare -A B
for tool in dirsync rsync; do
	mkdir -p "$WORK/count-$tool"
	rm -rf "$WORK/img-$tool"
	run "$tool" "$COUNT_RSH $WORK/count-$tool $RSH" "$IMG_DIR" "$WORK/img-$tool" >/dev/null 2>&1 ||
		die "bench-remote-fidelity: $tool of the image failed"
	B[$tool]=$(cat "$WORK/count-$tool/up")
	B[alloc-$tool]=$(du -k "$WORK/img-$tool/image.raw" | cut -f1)
done
data=$((3 * 64 * 1024))

echo
echo "| scenario | dirsync -a | rsync -aHAXS --delete -e ssh | ratio | target |"
echo "|---|---|---|---|---|"
g=${M[g/dirsync]} gr=${M[g/rsync]} h=${M[h/dirsync]} hr=${M[h/rsync]}
printf '| ssh true (the session setup of every run of both) | %.3f s | %.3f s | - | - |\n' "${M[ssh-true]}" "${M[ssh-true]}"
printf '| first copy, %s names + %s MiB image | %.3f s | %.3f s | %sx | <= 0.7x: %s |\n' \
	"$FILES" "$SPARSE_MIB" "$g" "$gr" "$(ratio "$g" "$gr")" "$(yes_no "$g <= 0.7 * $gr")"
printf '| unchanged resync | %.3f s | %.3f s | %sx | <= 0.5x: %s |\n' \
	"$h" "$hr" "$(ratio "$h" "$hr")" "$(yes_no "$h <= 0.5 * $hr")"
printf '| image (data %s B): bytes on the wire from SRC | %s B | %s B | %sx | <= rsync: %s |\n' \
	"$data" "${B[dirsync]}" "${B[rsync]}" "$(echo "scale=6; ${B[dirsync]} / ${B[rsync]}" | bc -l)" \
	"$(yes_no "${B[dirsync]} <= ${B[rsync]}")"
printf '| image allocated in DST | %s KiB | %s KiB | - | - |\n' "${B[alloc-dirsync]}" "${B[alloc-rsync]}"
