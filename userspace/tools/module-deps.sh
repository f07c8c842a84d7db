#!/usr/bin/env bash
# Lists which module of userspace/src uses which (every `crate::` and
# `super::` path in code, `use` groups expanded; comments and
# `#[cfg(test)]` modules left out) and fails when the graph has a cycle.
#
#   userspace/tools/module-deps.sh
#
# The binary's modules (main.rs and the modules it declares) are prefixed
# `bin::`; they reach the library only as `dirsync::`.
set -euo pipefail
cd "$(dirname "$0")/../src"
exec python3 - <<'PY'
import os, re, sys

# The binary: main.rs and the modules it declares itself.
BIN = {"main.rs"} | {
    n + ".rs" for n in re.findall(r"^mod\s+(\w+)\s*;", open("main.rs").read(), re.M)
}
files = sorted(os.path.join(d, f)[2:] for d, _, fs in os.walk(".") for f in fs if f.endswith(".rs"))
files = [f for f in files if f != "lib.rs"]

def module_of(f):
    m = f[:-3]
    if m.endswith("/mod"):
        m = m[:-4]
    m = m.replace("/", "::")
    return "bin::" + m if f in BIN else m

mods = {module_of(f) for f in files}
ROOT_REEXPORTS = {"Error": "error", "Result": "error", "ExitStatus": "error"}

def resolve(path, binary):
    """The longest prefix of `path` (a::b::c) that is a module."""
    parts = path.split("::")
    if not binary and parts[0] in ROOT_REEXPORTS:
        return ROOT_REEXPORTS[parts[0]]
    for n in range(len(parts), 0, -1):
        cand = "::".join(parts[:n])
        if binary:
            cand = "bin::" + cand
        if cand in mods:
            return cand
    return None

def expand(prefix, rest):
    """`a::{b, c::{d, e}}` -> a::b, a::c::d, a::c::e."""
    out, depth, cur = [], 0, ""
    rest = rest.strip()
    if not rest.startswith("{"):
        return [prefix + rest]
    body = rest[1:rest.rindex("}")]
    for ch in body + ",":
        if ch == "," and depth == 0:
            item = cur.strip()
            if item:
                if "::{" in item:
                    head, tail = item.split("::{", 1)
                    out += expand(prefix + head + "::", "{" + tail)
                else:
                    out.append(prefix + item.split(" as ")[0].strip())
            cur = ""
            continue
        depth += ch == "{"
        depth -= ch == "}"
        cur += ch
    return out

edges = set()
for f in files:
    m = module_of(f)
    binary = m.startswith("bin::")
    parent = m.rsplit("::", 1)[0] if m.count("::") > (1 if binary else 0) else None
    text = open(f).read().split("#[cfg(test)]")[0]
    code = "\n".join(l for l in text.splitlines() if not l.lstrip().startswith("//"))
    # `use` statements (groups expanded), then any other path in code.
    paths = []
    for u in re.finditer(r"\buse\s+((?:crate|super|self)::)([^;]*);", code, re.S):
        paths += expand(u.group(1), re.sub(r"\s+", " ", u.group(2)))
    paths += re.findall(r"\b(?:crate|super)::[A-Za-z_][\w]*(?:::[A-Za-z_]\w*)*", code)
    # Children declared here (`mod walk;`) and used as `walk::...`.
    for child in re.findall(r"^\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*;", code, re.M):
        if re.search(r"(?<![\w:])" + child + r"::", code):
            edges.add((m, ("bin::" + child) if m == "bin::main" else m + "::" + child))
    for p in paths:
        if p.startswith("crate::"):
            t = resolve(p[len("crate::"):], binary)
        elif p.startswith("super::"):
            base = (parent[len("bin::"):] if binary else parent) if parent else None
            rest = p[len("super::"):]
            t = resolve(base + "::" + rest if base else rest, binary) or parent
        else:  # self::child
            base = m[len("bin::"):] if binary else m
            t = resolve(base + "::" + p[len("self::"):], binary)
        if t and t != m:
            edges.add((m, t))

for a, b in sorted(edges):
    print(f"{a} -> {b}")

# Topological order (Kahn); what is left over is in a cycle.
deps = {m: {b for a, b in edges if a == m} for m in mods}
order, done = [], set()
while True:
    ready = sorted(m for m in mods if m not in done and deps[m] <= done)
    if not ready:
        break
    order += ready
    done |= set(ready)
print("\norder (each module uses only modules listed before it):")
print(" ".join(order))
left = sorted(mods - done)
if left:
    print("module-deps: import cycle among: " + " ".join(left), file=sys.stderr)
    sys.exit(1)
print(f"module-deps: {len(mods)} modules, {len(edges)} edges, no import cycle")
PY
