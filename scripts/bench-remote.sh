#!/usr/bin/env bash
# Benchmark of remote mirroring (`make bench`): `dirsync SRC host:DST`
# against `rsync -a --delete -e ssh`, both through a real sshd started
# here with its own keys, over three links (both tools always through the
# same one; the script says which it used):
#   loopback  sshd on 127.0.0.1
#   loopback-mux  the same sshd through one ssh connection opened before
#             the runs and shared by both tools (ControlMaster): each run
#             without the session setup (key exchange, authentication)
#   delay20   20 ms one way (40 ms round trip) at 100 Mbit/s: as root,
#             sshd inside a network namespace made here, reached through
#             a veth pair with `netem delay 20ms rate 100mbit` on both
#             ends (link `netem`); a kernel without netem gets the same
#             link from scripts/delay-link.py, a relay given to ssh as its
#             ProxyCommand (so the ssh handshake crosses it too) that
#             delays each direction by 20 ms and paces it to 100 Mbit/s,
#             over the plain veth (link `relay+veth`); not root: the relay
#             to the loopback sshd (link `relay`)
# Scenarios (medians of RUNS runs, ratios from the same run):
#   (a) first copy of FILES small files (0-8 KiB, random: incompressible)
#   (b) the same tree unchanged, resynced
#   (c) 1% of the files rewritten (new content, same size), resynced
#   (z) delay20 only: the first copy again with compression, `dirsync -z`
#       against `rsync -az`
#   (d) loopback only: a BIG_MIB MiB file with 1 MiB changed in the middle,
#       resynced: time and bytes on the wire, counted by a relay around
#       ssh (userspace/tests/common/count_rsh.py) for both tools; once with
#       the changed MiB on a block boundary, once 12,345 bytes off (median
#       time of RUNS runs, interleaved)
#   (e) loopback only: watch latency, `dirsync watch SRC host:DST` against
#       lsyncd (default.rsync, delay 0, rsync over the same ssh): N_WATCH
#       (lsyncd: N_WATCH_PEER) single-file changes, one at a time, from
#       the writer's close() to DST's file having the new content
#       (p50/p99; the probe of scripts/bench-watch.sh, watching DST with
#       inotify); and the same for `dirsync watch host:SRC DST` (the
#       server watches SRC, the client applies to DST: pull-watch)
# Each link's line also gives `ssh HOST true` (the session setup both
# tools pay on every run: key exchange, authentication, the remote login
# shell), the floor under any run's time.
# The trees live in tmpfs (/dev/shm), as in scripts/bench-sync.sh: the
# disk's writeback is no part of either tool's time. As root, the sshds of
# the benchmark run in a mount namespace of their own where the login
# user's ~/.bashrc is an empty file (LOGIN_SCRIPTS=hidden, the default):
# bash runs it for every command ssh starts, and what a machine puts
# there (this one's runs `pyenv init`, 0.17 s) is the same fixed cost for
# both tools and no part of either; LOGIN_SCRIPTS=kept keeps it.
# PARTS (default "trees delta watch") chooses what runs: trees = (a), (b),
# (c), (z); delta = (d); watch = (e).
# Not a test: it prints a table and exits 0 when the tools ran. Traffic
# goes only to loopback and to the namespace it creates (removed at exit).
#
#   scripts/bench-remote.sh                  # RUNS=3 FILES=20000 BIG_MIB=256
#                                            # N_WATCH=200 N_WATCH_PEER=50
#   RUNS=1 FILES=2000 scripts/bench-remote.sh
#   PARTS=trees scripts/bench-remote.sh
#   DIRSYNC=/path/to/dirsync scripts/bench-remote.sh   # another build
#                                            # (e.g. the one before a change)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

RUNS=${RUNS:-3}
FILES=${FILES:-20000}
BIG_MIB=${BIG_MIB:-256}
PARTS=" ${PARTS:-trees delta watch} "
LOGIN_SCRIPTS=${LOGIN_SCRIPTS:-hidden}
# wants PART: whether PART is in PARTS.
wants() { [[ $PARTS == *" $1 "* ]]; }
for t in rsync ssh ssh-keygen python3 bc; do
	command -v "$t" >/dev/null || die "bench-remote: $t is missing (make deps)"
done
[ -x /usr/sbin/sshd ] || die "bench-remote: /usr/sbin/sshd is missing (make deps)"
if [ -z "${DIRSYNC:-}" ]; then
	if [ "${REBUILD:-1}" = 1 ] || [ ! -x userspace/target/release/dirsync ]; then
		(cd userspace && cargo build --release --locked -q)
	fi
	DIRSYNC=$PWD/userspace/target/release/dirsync
fi
COUNT_RSH=$PWD/userspace/tests/common/count_rsh.py
DELAY_LINK=$PWD/scripts/delay-link.py

bench_workarea bench-remote dirsync-rbench
NS=dsbench$$
VH=dsbh$$
VN=dsbn$$
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	if ip netns list 2>/dev/null | grep -qw "$NS"; then ip netns del "$NS" || true; fi
	ip link del "$VH" 2>/dev/null || true
	bench_workarea_remove
}
trap cleanup EXIT

# Keys, an sshd configuration of our own, and SSHD: the command that
# starts an sshd of the benchmark (see LOGIN_SCRIPTS above).
if bench_sshd_setup "$LOGIN_SCRIPTS"; then
	echo "bench-remote: the benchmark's sshds see an empty $HOME/.bashrc (LOGIN_SCRIPTS=hidden)"
else
	echo "bench-remote: the benchmark's sshds run the login user's scripts (LOGIN_SCRIPTS=$LOGIN_SCRIPTS)"
fi

# wait_port HOST PORT [NETNS]: until something listens there (10 s).
wait_port() {
	local i
	for i in $(seq 200); do
		if [ -n "${3:-}" ]; then
			ip netns exec "$3" bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null && return 0
		else
			bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null && return 0
		fi
		sleep 0.05
		: "$i"
	done
	die "bench-remote: sshd did not start on $1:$2"
}

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"${SSHD[@]}" -D -e -f "$WORK/sshd_config" -o "ListenAddress=127.0.0.1" -p "$PORT" 2>/dev/null &
PIDS+=($!)
wait_port 127.0.0.1 "$PORT"
LINKS=("loopback 127.0.0.1 $PORT -")
# The same sshd through one ssh connection opened beforehand and shared by
# every run of both tools (OpenSSH ControlMaster, as users set it up with
# ControlPersist; it ends with sshd at exit): what is left of a run
# without the session setup.
LINKS+=("loopback-mux 127.0.0.1 $PORT mux")

# The delayed link: "NAME HOST PORT PROXY" (PROXY: relay the ssh
# connection through scripts/delay-link.py, or "-").
if [ "$(id -u)" -eq 0 ] && command -v tc >/dev/null; then
	ip netns add "$NS"
	ip link add "$VH" type veth peer name "$VN"
	ip link set "$VN" netns "$NS"
	ip addr add 10.231.77.1/24 dev "$VH"
	ip link set "$VH" up
	ip netns exec "$NS" ip addr add 10.231.77.2/24 dev "$VN"
	ip netns exec "$NS" ip link set "$VN" up
	ip netns exec "$NS" ip link set lo up
	if tc qdisc add dev "$VH" root netem delay 20ms rate 100mbit 2>/dev/null &&
		ip netns exec "$NS" tc qdisc add dev "$VN" root netem delay 20ms rate 100mbit; then
		LINKS+=("netem 10.231.77.2 22 -")
	else
		tc qdisc del dev "$VH" root 2>/dev/null || true
		LINKS+=("relay+veth 10.231.77.2 22 proxy")
	fi
	ip netns exec "$NS" "${SSHD[@]}" -D -e -f "$WORK/sshd_config" \
		-o "ListenAddress=10.231.77.2" -p 22 2>/dev/null &
	PIDS+=($!)
	wait_port 10.231.77.2 22 "$NS"
else
	LINKS+=("relay 127.0.0.1 $PORT proxy")
fi
for link in "${LINKS[@]}"; do
	read -r name host _ proxy <<<"$link"
	case $name in
	loopback) echo "bench-remote: link loopback: sshd on 127.0.0.1" ;;
	netem) echo "bench-remote: link netem: sshd in a namespace, veth with netem delay 20ms rate 100mbit both ways" ;;
	relay+veth) echo "bench-remote: link relay+veth: this kernel has no netem qdisc;" \
		"scripts/delay-link.py (20 ms each way, 100 Mbit/s) as ssh's ProxyCommand, to sshd in a namespace over a veth" ;;
	relay) echo "bench-remote: link relay: not root (no namespace);" \
		"scripts/delay-link.py (20 ms each way, 100 Mbit/s) as ssh's ProxyCommand, to sshd on 127.0.0.1" ;;
	loopback-mux) echo "bench-remote: link loopback-mux: sshd on 127.0.0.1 through one ssh connection" \
		"opened before the runs and shared by both tools (ControlMaster)" ;;
	esac
done

rsh() { # port [proxy|mux]
	local p=""
	if [ "${2:--}" = proxy ]; then
		p=" -o \"ProxyCommand=python3 $DELAY_LINK 20 100 %h %p\""
	elif [ "${2:--}" = mux ]; then
		p=" -o ControlMaster=no -o ControlPath=$WORK/mux-%p"
	fi
	echo "ssh -p $1 -i $WORK/client_key -o StrictHostKeyChecking=no" \
		"-o UserKnownHostsFile=/dev/null -o BatchMode=yes -o LogLevel=ERROR$p"
}
timeit() {
	local t0 t1
	t0=$EPOCHREALTIME
	"$@" >/dev/null 2>&1 || die "bench-remote: failed: $*"
	t1=$EPOCHREALTIME
	echo "$t1 - $t0" | bc -l
}
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
ratio() { echo "scale=2; $1 / $2" | bc -l; }
declare -A R
ssh_true() { # rsh host: the rsh command line, its quotes as the tools read them
	eval "$1 $2 true"
}

run() { # tool rsh host src dst [extra option]
	case $1 in
	dirsync) "$DIRSYNC" -e "$2" --remote-path "$DIRSYNC" ${6:+"$6"} "$4" "$3:$5" ;;
	rsync) rsync -a --delete ${6:+"$6"} -e "$2" "$4/" "$3:$5/" ;;
	esac
}
# change1 SEED: rewrites 1% of the files of SRC (every 100th, from SEED
# mod 100) with new random content of the same size.
change1() {
	python3 - "$SRC" "$FILES" "$1" <<'PY'
import os, sys
root, n, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for i in range(seed % 100, n, 100):
    p = os.path.join(root, "d%03d" % (i // 100 // 20), "s%03d" % (i // 100), "f%05d" % i)
    size = os.path.getsize(p)
    with open(p + ".new", "wb") as f:
        f.write(os.urandom(size))
    os.rename(p + ".new", p)
PY
}

SRC=$WORK/src
DST=$WORK/dst
if wants trees; then
	echo "bench-remote: generating $FILES small files; $("$DIRSYNC" --version), $(rsync --version | head -1)"
	python3 - "$SRC" "$FILES" <<'PY'
import os, random, sys
root, n = sys.argv[1], int(sys.argv[2])
random.seed(42)
for i in range(n):
    d = os.path.join(root, "d%03d" % (i // 100 // 20), "s%03d" % (i // 100))
    if i % 100 == 0:
        os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "f%05d" % i), "wb") as f:
        f.write(os.urandom(random.randint(0, 8192)))
PY

	seed=0
	for link in "${LINKS[@]}"; do
		read -r name host port proxy <<<"$link"
		r=$(rsh "$port" "$proxy")
		if [ "$proxy" = mux ]; then
			# The shared connection, closed at the end of this link's runs.
			eval "$(rsh "$port") -o ControlMaster=yes -o ControlPath=$WORK/mux-%p -o ControlPersist=300 -N -f $host" ||
				die "bench-remote: cannot open the shared ssh connection"
		fi
		declare -A T=()
		for _ in $(seq "$RUNS"); do
			T[ssh]+=" $(timeit ssh_true "$r" "$host")"
			# Interleaved: one run of each tool, then the next.
			for tool in dirsync rsync; do
				rm -rf "$DST"
				T[a/$tool]+=" $(timeit run "$tool" "$r" "$host" "$SRC" "$DST")"
				T[b/$tool]+=" $(timeit run "$tool" "$r" "$host" "$SRC" "$DST")"
				seed=$((seed + 1))
				change1 "$seed"
				T[c/$tool]+=" $(timeit run "$tool" "$r" "$host" "$SRC" "$DST")"
				if [ "$name" != loopback ]; then
					rm -rf "$DST"
					T[z/$tool]+=" $(timeit run "$tool" "$r" "$host" "$SRC" "$DST" -z)"
				fi
			done
		done
		for k in "${!T[@]}"; do
			# shellcheck disable=SC2086 # the runs, one word each
			R[$name/$k]=$(median ${T[$k]})
		done
		printf '  %-10s ssh HOST true %.3f s (runs:%s)\n' "$name" "${R[$name/ssh]}" "${T[ssh]}"
		for tool in dirsync rsync; do
			printf '  %-10s %-7s first copy %7.3f s  unchanged %7.3f s  1%% changed %7.3f s  (runs:%s |%s |%s)\n' \
				"$name" "$tool" "${R[$name/a/$tool]}" "${R[$name/b/$tool]}" "${R[$name/c/$tool]}" \
				"${T[a/$tool]}" "${T[b/$tool]}" "${T[c/$tool]}"
			if [ -n "${T[z/$tool]:-}" ]; then
				printf '  %-10s %-7s first copy -z %7.3f s  (runs:%s)\n' "$name" "$tool" "${R[$name/z/$tool]}" "${T[z/$tool]}"
			fi
		done
		unset T
		if [ "$proxy" = mux ]; then
			eval "$r -O exit $host" 2>/dev/null || true
		fi
	done
	rm -rf "$SRC" "$DST"
fi

# The loopback link of (d) and (e).
r=$(rsh "$PORT" -)
if wants delta; then
	echo "bench-remote: the delta case, $BIG_MIB MiB with 1 MiB changed (loopback)"
	mkdir -p "$SRC"
	head -c "$((BIG_MIB << 20))" /dev/urandom >"$SRC/big"
	head -c 1048576 /dev/urandom >"$WORK/change"
	# Where the changed MiB goes: on a block boundary (the middle), or not.
	DELTA_CASES=("aligned $((BIG_MIB << 19))" "unaligned $(((BIG_MIB << 19) + 12345))")
	for c in "${DELTA_CASES[@]}"; do
		read -r at off <<<"$c"
		# RUNS runs of each tool, interleaved; the median time, the bytes of
		# the last run (the same each run).
		declare -A T=()
		for _ in $(seq "$RUNS"); do
			for tool in dirsync rsync; do
				rm -rf "$DST" "$WORK/count"
				mkdir -p "$WORK/count"
				cp "$SRC/big" "$WORK/big.orig"
				run "$tool" "$r" 127.0.0.1 "$SRC" "$DST" >/dev/null
				dd if="$WORK/change" of="$SRC/big" bs=4096 seek="$off" oflag=seek_bytes conv=notrunc status=none
				T[$tool]+=" $(timeit run "$tool" "$COUNT_RSH $WORK/count $r" 127.0.0.1 "$SRC" "$DST")"
				R[d/$at/$tool/bytes]=$(($(cat "$WORK/count/up") + $(cat "$WORK/count/down")))
				cmp -s "$SRC/big" "$DST/big" || die "bench-remote: $tool: the replica differs"
				mv "$WORK/big.orig" "$SRC/big"
			done
		done
		for tool in dirsync rsync; do
			# shellcheck disable=SC2086 # the runs, one word each
			R[d/$at/$tool/s]=$(median ${T[$tool]})
			printf '  delta    %-9s %-7s %8.3f s, %d bytes on the wire  (runs:%s)\n' "$at" "$tool" \
				"${R[d/$at/$tool/s]}" "${R[d/$at/$tool/bytes]}" "${T[$tool]}"
		done
	done
	rm -rf "$SRC" "$DST"
fi

# (e) Watch latency over ssh, with the probe of scripts/bench-watch.sh.
if wants watch; then
	N_WATCH=${N_WATCH:-200}
	N_WATCH_PEER=${N_WATCH_PEER:-50}
	PROBE=$PWD/userspace/target/release/examples/watch_latency
	[ -x "$PROBE" ] || (cd userspace && cargo build --release --locked -q --example watch_latency)
	echo "bench-remote: watch latency over ssh (loopback), $N_WATCH changes (lsyncd: $N_WATCH_PEER)"
	WTOOLS=(dirsync dirsync-pull)
	if command -v lsyncd >/dev/null; then
		WTOOLS+=(lsyncd)
	else
		echo "bench-remote: lsyncd is missing: watch latency of dirsync alone" >&2
	fi
	# field NAME LINE: the value of NAME=... in the probe's output.
	field() { sed -n "s/.*[[:space:]]$1=\([0-9]*\).*/\1/p" <<<"$2"; }
	for tool in "${WTOOLS[@]}"; do
		rm -rf "$SRC" "$DST"
		mkdir -p "$SRC/lat" "$DST"
		for i in $(seq 0 15); do echo start >"$SRC/lat/f$i"; done
		case $tool in
		dirsync)
			n=$N_WATCH
			"$DIRSYNC" watch -q -e "$r" --remote-path "$DIRSYNC" "$SRC" "127.0.0.1:$DST" \
				>"$WORK/watch.log" 2>&1 &
			;;
		dirsync-pull)
			n=$N_WATCH
			"$DIRSYNC" watch -q -e "$r" --remote-path "$DIRSYNC" "127.0.0.1:$SRC" "$DST" \
				>"$WORK/watch.log" 2>&1 &
			;;
		lsyncd)
			n=$N_WATCH_PEER
			cat >"$WORK/lsyncd.conf" <<CONF
settings { nodaemon = true, logfile = "$WORK/lsyncd.log", statusFile = "$WORK/lsyncd.status", insist = true }
sync { default.rsync, source = "$SRC", target = "127.0.0.1:$DST", delay = 0, rsync = { rsh = "$r" } }
CONF
			lsyncd "$WORK/lsyncd.conf" >"$WORK/watch.log" 2>&1 &
			;;
		esac
		wpid=$!
		PIDS+=("$wpid")
		for _ in $(seq 300); do
			diff -rq "$SRC" "$DST" >/dev/null 2>&1 && break
			sleep 0.1
		done
		diff -rq "$SRC" "$DST" >/dev/null || die "bench-remote: $tool watch: DST never caught up"
		sleep 0.5
		out=$("$PROBE" latency "$SRC" "$DST" "$n")
		kill -TERM "$wpid" 2>/dev/null || true
		wait "$wpid" 2>/dev/null || true
		R[e/$tool/p50]=$(field p50_us "$out")
		R[e/$tool/p99]=$(field p99_us "$out")
		R[e/$tool/lost]=$(field lost "$out")
		echo "  watch    $tool: $out"
	done
	rm -rf "$SRC" "$DST"
fi
echo
echo "| link | scenario | dirsync | rsync -a --delete -e ssh | dirsync/rsync | target | met |"
echo "|---|---|---|---|---|---|---|"
if wants trees; then
	for link in "${LINKS[@]}"; do
		read -r name _ _ _ <<<"$link"
		printf '| %s | ssh HOST true (session setup, paid by every run) | %.3f s | %.3f s | - | - | - |\n' \
			"$name" "${R[$name/ssh]}" "${R[$name/ssh]}"
		for s in a b c z; do
			[ -n "${R[$name/$s/dirsync]:-}" ] || continue
			d=${R[$name/$s/dirsync]} x=${R[$name/$s/rsync]}
			case $s in
			a) label="first copy, $FILES files" ;;
			b) label="unchanged resync" ;;
			c) label="1% changed, resync" ;;
			z) label="first copy, dirsync -z vs rsync -az" ;;
			esac
			if [ "$s" = a ] || [ "$s" = b ]; then
				target="<= 0.5x" met=$([ "$(echo "$d <= 0.5 * $x" | bc -l)" = 1 ] && echo yes || echo NO)
			else
				target=- met=-
			fi
			printf '| %s | %s | %.3f s | %.3f s | %sx | %s | %s |\n' "$name" "$label" "$d" "$x" \
				"$(ratio "$d" "$x")" "$target" "$met"
		done
	done
fi
if wants delta; then
	for c in "${DELTA_CASES[@]}"; do
		read -r at _ <<<"$c"
		d=${R[d/$at/dirsync/bytes]} x=${R[d/$at/rsync/bytes]}
		printf '| loopback | %s MiB, 1 MiB changed (%s) | %.3f s, %d B | %.3f s, %d B | bytes %sx, time %sx | bytes <= rsync | %s |\n' \
			"$BIG_MIB" "$at" "${R[d/$at/dirsync/s]}" "$d" "${R[d/$at/rsync/s]}" "$x" "$(ratio "$d" "$x")" \
			"$(ratio "${R[d/$at/dirsync/s]}" "${R[d/$at/rsync/s]}")" "$([ "$d" -le "$x" ] && echo yes || echo NO)"
	done
fi
ms() { echo "scale=1; $1 / 1000" | bc -l; }
if wants watch; then
	d99=${R[e/dirsync/p99]}
	peer="(no lsyncd)" pr="-"
	if [ -n "${R[e/lsyncd/p99]:-}" ]; then
		peer="lsyncd: p50 $(ms "${R[e/lsyncd/p50]}") ms, p99 $(ms "${R[e/lsyncd/p99]}") ms, lost ${R[e/lsyncd/lost]}"
		pr="p99 $(echo "scale=4; $d99 / ${R[e/lsyncd/p99]}" | bc -l)x"
	fi
	printf '| loopback | watch latency, 1 file changed | p50 %s ms, p99 %s ms, lost %s | %s | %s | p99 < 30 ms | %s |\n' \
		"$(ms "${R[e/dirsync/p50]}")" "$(ms "$d99")" "${R[e/dirsync/lost]}" "$peer" "$pr" \
		"$([ "$d99" -lt 30000 ] && [ "${R[e/dirsync/lost]}" = 0 ] && echo yes || echo NO)"
	p99=${R[e/dirsync-pull/p99]}
	pr="p99 $(echo "scale=4; $p99 / $d99" | bc -l)x push"
	if [ -n "${R[e/lsyncd/p99]:-}" ]; then
		pr="$pr, $(echo "scale=4; $p99 / ${R[e/lsyncd/p99]}" | bc -l)x lsyncd"
	fi
	printf '| loopback | pull-watch latency (host:SRC DST), 1 file changed | p50 %s ms, p99 %s ms, lost %s | %s | %s | p99 < 30 ms | %s |\n' \
		"$(ms "${R[e/dirsync-pull/p50]}")" "$(ms "$p99")" "${R[e/dirsync-pull/lost]}" "$peer" "$pr" \
		"$([ "$p99" -lt 30000 ] && [ "${R[e/dirsync-pull/lost]}" = 0 ] && echo yes || echo NO)"
fi
