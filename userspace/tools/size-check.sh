#!/usr/bin/env bash
# Size limits of userspace/src: no file over 600 lines, no function of the
# engine (src/sync/) over 80 lines. Prints the largest of each, fails when
# a limit is passed.
#
#   userspace/tools/size-check.sh
set -euo pipefail
cd "$(dirname "$0")/../src"
exec python3 - <<'PY'
import os, re, sys

FILE_MAX, FN_MAX = 600, 80
files = sorted(os.path.join(d, f)[2:] for d, _, fs in os.walk(".") for f in fs if f.endswith(".rs"))

def functions(path):
    """(name, first line, length) of every fn, by brace matching."""
    lines = open(path).read().split("\n")
    out = []
    for i, l in enumerate(lines):
        m = re.match(r"\s*(?:pub(?:\([^)]*\))?\s+)?(?:const\s+)?(?:unsafe\s+)?fn\s+(\w+)", l)
        if not m:
            continue
        depth, started = 0, False
        for j in range(i, len(lines)):
            code = re.sub(r'"(\\.|[^"\\])*"|//.*', "", lines[j])
            if not started and ";" in code and "{" not in code:
                break  # a declaration without a body (trait method)
            depth += code.count("{") - code.count("}")
            started = started or "{" in code
            if started and depth == 0:
                out.append((m.group(1), i + 1, j - i + 1))
                break
    return out

bad = 0
sizes = sorted(((sum(1 for _ in open(f)), f) for f in files), reverse=True)
print(f"largest files (limit {FILE_MAX} lines):")
for n, f in sizes[:5]:
    print(f"  {n:5} {f}")
for n, f in sizes:
    if n > FILE_MAX:
        print(f"size-check: {f} has {n} lines", file=sys.stderr)
        bad += 1
fns = sorted(((n, f, name, line) for f in files for name, line, n in functions(f)), reverse=True)
engine = [x for x in fns if x[1].startswith("sync/")]
print(f"longest engine functions, src/sync/ (limit {FN_MAX} lines):")
for n, f, name, line in engine[:5]:
    print(f"  {n:5} {f}:{line} {name}")
print("longest functions elsewhere:")
for n, f, name, line in [x for x in fns if not x[1].startswith("sync/")][:5]:
    print(f"  {n:5} {f}:{line} {name}")
for n, f, name, line in engine:
    if n > FN_MAX:
        print(f"size-check: {f}:{line} {name} has {n} lines", file=sys.stderr)
        bad += 1
if bad:
    sys.exit(1)
print(f"size-check: {len(files)} files, {len(fns)} functions, within the limits")
PY
