#!/usr/bin/env bash
# `make lint-shell`: shellcheck on every shell script of the repository
# (tracked or new, not ignored): files named *.sh and files whose first
# line is a sh/bash shebang.  Sourced files are followed (-x) from the
# repository root, which is where `# shellcheck source=` paths start.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

command -v shellcheck >/dev/null || die "shellcheck is not installed (run scripts/deps.sh)"
scripts=()
while IFS= read -r f; do
	[ -f "$f" ] || continue
	case "$f" in
	*.sh) scripts+=("$f") ;;
	*) head -n1 "$f" | grep -qE '^#!.*(/|env )(ba|da)?sh\b' && scripts+=("$f") ;;
	esac
done < <(git ls-files -co --exclude-standard)
[ ${#scripts[@]} -gt 0 ] || die "no shell scripts found"
shellcheck -x "${scripts[@]}"
echo "shellcheck: ${#scripts[@]} scripts clean"
