#!/usr/bin/env python3
"""Applies one kernel-module/series/*.edits file to a kernel source tree.

    kernel-edits.py SPEC.edits KERNEL_MODULE_DIR TREE

An .edits file is a list of directives, one per line:

    # comment (also blank lines, outside an insertion)
    new PATH [-TAG...]  copy KERNEL_MODULE_DIR/PATH to TREE/PATH (a new file),
                        without the regions named by the -TAG arguments
    update PATH [-TAG...]
                        the same for a file an earlier patch of the series
                        added: TREE/PATH must exist and is overwritten
    edit PATH           following anchors and insertions apply to TREE/PATH
    after REGEX         the next insertion goes after the one line matching
    before REGEX        ... or before it (Python regex, searched per line)
    delete REGEX        remove the one line matching (e.g. to replace it:
                        "before" the line, the new text, then "delete")
    +TEXT               a line to insert, verbatim (tabs kept); "+" alone
                        inserts an empty line

Each anchor must match exactly one line of the file as it is at that point,
so an edit that no longer fits the source fails loudly instead of landing
in the wrong place.

Regions let one file of KERNEL_MODULE_DIR grow over several patches while
staying the single source: the lines between a line containing
"dirsync-series: begin TAG" and the next line containing
"dirsync-series: end TAG" (in whatever comment syntax the file uses) belong
to the patch that copies the file without "-TAG" (typically an "update" in
a later patch).  The two marker lines themselves are never copied.  A -TAG
without its region, nested or unbalanced markers fail the generation.
"""

import os
import re
import sys


def fail(spec, lineno, msg):
    sys.exit(f"{spec}:{lineno}: {msg}")


MARKER = re.compile(r"dirsync-series: (begin|end) ([A-Za-z0-9_-]+)")


def filtered(spec, lineno, src, drop):
    """The lines of src without its marker lines and the regions in drop."""
    with open(src, encoding="utf-8") as f:
        lines = f.read().split("\n")
    out, region, seen = [], None, set()
    for n, line in enumerate(lines, 1):
        m = MARKER.search(line)
        if not m:
            if region is None or region not in drop:
                out.append(line)
            continue
        what, tag = m.groups()
        if what == "begin":
            if region is not None:
                fail(spec, lineno, f"{src}:{n}: region {tag} inside region {region}")
            region = tag
            seen.add(tag)
        elif region != tag:
            fail(spec, lineno, f"{src}:{n}: end of region {tag}, which is not open")
        else:
            region = None
    if region is not None:
        fail(spec, lineno, f"{src}: region {region} is not closed")
    for tag in drop - seen:
        fail(spec, lineno, f"{src} has no region {tag}")
    return "\n".join(out)


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    spec, srcdir, tree = sys.argv[1:]
    with open(spec, encoding="utf-8") as f:
        lines = f.read().split("\n")
    if lines and lines[-1] == "":
        lines.pop()

    cur = None  # [path, list of lines]
    anchor = None  # (lineno, "after"|"before", regex)
    pending = []

    def flush(lineno):
        nonlocal anchor, pending
        if not pending:
            return
        if cur is None or anchor is None:
            fail(spec, lineno, "insertion without 'edit' and 'after'/'before'")
        alineno, how, rx = anchor
        hits = [i for i, l in enumerate(cur[1]) if re.search(rx, l)]
        if len(hits) != 1:
            fail(spec, alineno,
                 f"anchor /{rx}/ matches {len(hits)} lines of {cur[0]}, need exactly 1")
        at = hits[0] + (1 if how == "after" else 0)
        cur[1][at:at] = pending
        pending = []
        anchor = None

    def save():
        if cur is not None:
            with open(os.path.join(tree, cur[0]), "w", encoding="utf-8") as f:
                f.write("".join(l + "\n" for l in cur[1]))

    for n, line in enumerate(lines, 1):
        if line.startswith("+"):
            pending.append(line[1:])
            continue
        flush(n)
        if not line.strip() or line.startswith("#"):
            continue
        word, _, arg = line.partition(" ")
        arg = arg.strip()
        if word in ("new", "update"):
            path, *tags = arg.split()
            if any(not t.startswith("-") or len(t) < 2 for t in tags):
                fail(spec, n, f"'{word} PATH' takes -TAG arguments only")
            dst = os.path.join(tree, path)
            if word == "new" and os.path.exists(dst):
                fail(spec, n, f"{path} already exists in the tree")
            if word == "update" and not os.path.isfile(dst):
                fail(spec, n, f"{path} is not in the tree (use 'new')")
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            text = filtered(spec, n, os.path.join(srcdir, path),
                            {t[1:] for t in tags})
            with open(dst, "w", encoding="utf-8") as f:
                f.write(text)
        elif word == "edit":
            save()
            path = os.path.join(tree, arg)
            if not os.path.isfile(path):
                fail(spec, n, f"{arg} does not exist in the tree")
            with open(path, encoding="utf-8") as f:
                text = f.read()
            if not text.endswith("\n"):
                fail(spec, n, f"{arg} does not end with a newline")
            cur = [arg, text[:-1].split("\n")]
        elif word == "delete":
            if cur is None:
                fail(spec, n, "'delete' before any 'edit'")
            hits = [i for i, l in enumerate(cur[1]) if re.search(arg, l)]
            if len(hits) != 1:
                fail(spec, n,
                     f"delete /{arg}/ matches {len(hits)} lines of {cur[0]}, need exactly 1")
            del cur[1][hits[0]]
        elif word in ("after", "before"):
            if cur is None:
                fail(spec, n, f"'{word}' before any 'edit'")
            anchor = (n, word, arg)
        else:
            fail(spec, n, f"unknown directive {word!r}")
    flush(len(lines))
    save()


if __name__ == "__main__":
    main()
