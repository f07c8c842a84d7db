#!/usr/bin/env bash
# `make bench`: the one-shot benchmark (scripts/bench-sync.sh), then the
# watch benchmark (scripts/bench-watch.sh) when there is one. Not a test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bench-sync.sh "$@"
if [ -x scripts/bench-watch.sh ]; then
	echo
	scripts/bench-watch.sh "$@"
fi
