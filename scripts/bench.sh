#!/usr/bin/env bash
# `make bench`: the one-shot benchmark (scripts/bench-sync.sh), the exact
# replica benchmark (scripts/bench-fidelity.sh), the watch benchmark
# (scripts/bench-watch.sh) when there is one, the daemon one
# (scripts/bench-daemon.sh), the remote one
# (scripts/bench-remote.sh), the two-way one (scripts/bench-twoway.sh:
# against unison and rclone bisync), then the syscall
# microbenchmark in the VM (qemu/run-bench.sh). Not a test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bench-sync.sh "$@"
echo
scripts/bench-fidelity.sh "$@"
if [ -x scripts/bench-watch.sh ]; then
	echo
	scripts/bench-watch.sh "$@"
fi
if [ -x scripts/bench-daemon.sh ]; then
	echo
	REBUILD=0 scripts/bench-daemon.sh
fi
if [ -x scripts/bench-remote.sh ]; then
	echo
	REBUILD=0 scripts/bench-remote.sh
fi
if [ -x scripts/bench-twoway.sh ]; then
	echo
	REBUILD=0 scripts/bench-twoway.sh
fi
echo
qemu/run-bench.sh
