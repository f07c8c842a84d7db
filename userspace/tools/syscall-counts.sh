#!/usr/bin/env bash
# System calls per scenario of one or two dirsync binaries (strace -c -f):
# a first copy, an unchanged resync and a 1%-changed resync of a fixed
# 2,000-file tree (20 directories) in /dev/shm, with the backend
# $STAT_BACKEND (default statx; syscall needs a kernel with the series).
# With two binaries, a before/after table of the file-system calls; the
# last line of each table is the calls per entry (2,020 entries per tree).
#
#   userspace/tools/syscall-counts.sh BIN [BIN2 [ARG...]]
#
# ARGs are extra options of the second binary's runs (e.g. BIN BIN -a: the
# cost of -a).
#   STAT_BACKEND=syscall userspace/tools/syscall-counts.sh BIN
set -euo pipefail
command -v strace >/dev/null || { echo "syscall-counts: strace is missing" >&2; exit 1; }
backend=${STAT_BACKEND:-statx}

count() { # bin outdir [arg...]
	local bin=$1 out=$2 w
	shift 2
	w=$(mktemp -d /dev/shm/syscall-counts.XXXXXX)
	python3 - "$w/src" <<'PY'
import os, random, sys
root = sys.argv[1]; random.seed(7)
for i in range(2000):
    d = os.path.join(root, "d%02d" % (i // 100))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "f%04d" % i), "wb") as f:
        f.write(os.urandom(random.randint(0, 4096)))
PY
	strace -c -f -o "$out/a" "$bin" --stat-backend "$backend" "$@" "$w/src" "$w/dst" >/dev/null
	strace -c -f -o "$out/b" "$bin" --stat-backend "$backend" "$@" "$w/src" "$w/dst" >/dev/null
	python3 - "$w/src" <<'PY'
import os, sys
fs = sorted(os.path.join(d, f) for d, _, n in os.walk(sys.argv[1]) for f in n)
for p in fs[::100]:
    with open(p, "ab") as f: f.write(b"x")
PY
	strace -c -f -o "$out/c" "$bin" --stat-backend "$backend" "$@" "$w/src" "$w/dst" >/dev/null
	rm -rf "$w"
}

T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
mkdir "$T/1" "$T/2"
count "$1" "$T/1"
if [ $# -ge 2 ]; then count "$2" "$T/2" "${@:3}"; else cp "$T"/1/* "$T/2/"; fi
python3 - "$T/1" "$T/2" <<'PY'
import os, sys
def parse(p):
    out = {}
    for line in open(p):
        f = line.split()
        if len(f) >= 5 and f[0][0].isdigit() and f[3].isdigit():
            out[f[-1]] = int(f[3])
    return out
# Process start-up and threads, not the file system.
skip = {"futex", "mmap", "munmap", "mprotect", "brk", "madvise", "sigaltstack",
        "rt_sigaction", "rt_sigprocmask", "set_robust_list", "rseq", "gettid",
        "sched_getaffinity", "getrandom", "arch_prctl", "set_tid_address",
        "execve", "total", "prctl", "clone3"}
names = {"a": "first copy", "b": "unchanged resync", "c": "1% changed resync"}
for s in "abc":
    a, b = parse(os.path.join(sys.argv[1], s)), parse(os.path.join(sys.argv[2], s))
    print(f"({s}) {names[s]}\n| syscall | before | after |\n|---|---|---|")
    for k in sorted(set(a) | set(b), key=lambda k: -max(a.get(k, 0), b.get(k, 0))):
        if k not in skip:
            print(f"| {k} | {a.get(k, 0)} | {b.get(k, 0)} |")
    ta = sum(v for k, v in a.items() if k not in skip)
    tb = sum(v for k, v in b.items() if k not in skip)
    print(f"| file-system calls | {ta} | {tb} |")
    print(f"| per entry (2,020) | {ta / 2020:.2f} | {tb / 2020:.2f} |\n")
PY
