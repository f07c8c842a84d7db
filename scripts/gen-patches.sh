#!/usr/bin/env bash
# Generates the kernel patch series patches/NNNN-*.patch from kernel-module/.
#
#   scripts/gen-patches.sh           regenerate patches/
#   scripts/gen-patches.sh --check   fail (with a diff) if patches/ is not
#                                    exactly what kernel-module/ generates
#
# Each kernel-module/series/NNNN-slug.edits (applied by scripts/kernel-edits.py:
# new files copied from kernel-module/, small anchored insertions into
# existing kernel files) becomes one commit, with NNNN-slug.msg as its
# message, in a scratch git repository whose base commit holds the pristine
# 6.12 versions of the files the series edits.  `git format-patch` then
# writes the series, and the cover letter 0000-cover-letter.patch from
# kernel-module/series/0000-cover-letter.txt (its first paragraph is the
# subject, the rest the body; git adds the shortlog and the diffstat).
# Author, dates, base and options are fixed, so the output is
# byte-for-byte reproducible.  Both modes run checkpatch.pl --strict on
# every patch (not the cover letter, which has no diff) and fail on any
# error, warning or check.
set -euo pipefail

# shellcheck source=scripts/kernel-source.sh
. "$(dirname "$0")/kernel-source.sh"
cd "$DIRSYNC_ROOT"

check=0
case "${1:-}" in
--check) check=1 ;;
"") ;;
*) die "usage: $0 [--check]" ;;
esac

pristine=$(pristine_tree)
pkgver=$(kernel_pkg_version)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
repo="$work/linux"
mkdir -p "$repo"

mapfile -t SPECS < <(find kernel-module/series -name '*.edits' | LC_ALL=C sort)
[ ${#SPECS[@]} -gt 0 ] || die "no kernel-module/series/*.edits"

# A git that ignores the user's and the system's configuration.
export GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1
export GIT_AUTHOR_NAME="Dirsync Developers" GIT_AUTHOR_EMAIL="dirsync@example.org"
export GIT_COMMITTER_NAME="$GIT_AUTHOR_NAME" GIT_COMMITTER_EMAIL="$GIT_AUTHOR_EMAIL"
export GIT_AUTHOR_DATE="2025-01-01T00:00:00+0000" GIT_COMMITTER_DATE="2025-01-01T00:00:00+0000"
g() { git -C "$repo" -c core.abbrev=12 -c init.defaultBranch=master "$@"; }

g init -q
while read -r f; do
	[ -f "$pristine/$f" ] || die "$f (edited by the series) is not in $KERNEL_PKG $pkgver"
	mkdir -p "$repo/$(dirname "$f")"
	cp "$pristine/$f" "$repo/$f"
done < <(sed -n 's/^edit[[:space:]]\+//p' "${SPECS[@]}" | LC_ALL=C sort -u)
g add -A
g commit -q -m "$KERNEL_PKG $pkgver: the files the dirsync series edits"

for spec in "${SPECS[@]}"; do
	msg="${spec%.edits}.msg"
	[ -f "$msg" ] || die "$msg missing"
	python3 scripts/kernel-edits.py "$spec" kernel-module "$repo"
	g add -A
	g commit -q -F "$PWD/$msg"
done

cover=kernel-module/series/0000-cover-letter.txt
[ -f "$cover" ] || die "$cover missing"
g config branch.master.description "$(cat "$cover")"
out="$work/patches"
g format-patch -q --numbered --no-signature --zero-commit --no-binary \
	--cover-letter --cover-from-description=subject \
	-o "$out" HEAD~${#SPECS[@]}..HEAD

status=0
for p in "$out"/*.patch; do
	[ "$(basename "$p")" = 0000-cover-letter.patch ] && continue
	if ! report=$(cd "$pristine" && ./scripts/checkpatch.pl --strict --terse \
		--show-types "$p" 2>&1); then
		echo "checkpatch: $(basename "$p"):" >&2
		echo "$report" >&2
		status=1
	fi
done

if [ $check = 1 ]; then
	if ! diff -ruN patches "$out" >"$work/diff"; then
		cat "$work/diff"
		echo "error: patches/ differs from what kernel-module/ generates (run scripts/gen-patches.sh)" >&2
		status=1
	fi
	[ $status = 0 ] && echo "patches: ${#SPECS[@]} patches up to date and checkpatch clean"
	exit $status
fi

mkdir -p patches
rm -f patches/*.patch
cp "$out"/*.patch patches/
ls patches/*.patch
[ $status = 0 ] || die "checkpatch found problems (see above)"
