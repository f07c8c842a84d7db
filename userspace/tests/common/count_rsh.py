#!/usr/bin/env python3
"""A counting --rsh for the remote tests: `count_rsh.py DIR RSH... HOST CMD`
runs `RSH... HOST CMD` (e.g. ssh) and relays its stdin and stdout, counting
the bytes of each direction. It writes DIR/pid (the transport's pid, for
tests that kill it) at the start and DIR/up and DIR/down (byte counts,
added to what is there: several runs accumulate) at the end; it exits
with the transport's status."""
import os
import subprocess
import sys
import threading

out_dir = sys.argv[1]
child = subprocess.Popen(sys.argv[2:], stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
with open(os.path.join(out_dir, "pid"), "w") as f:
    f.write(str(child.pid))
counts = {"up": 0, "down": 0}


def relay(src, dst, key):
    while True:
        try:
            b = os.read(src, 1 << 16)
        except OSError:
            b = b""
        if not b:
            break
        counts[key] += len(b)
        try:
            os.write(dst, b) if isinstance(dst, int) else dst.write(b)
        except OSError:
            break
    if not isinstance(dst, int):
        try:
            dst.close()
        except OSError:
            pass


up = threading.Thread(target=relay, args=(0, child.stdin, "up"), daemon=True)
up.start()
relay(child.stdout.fileno(), 1, "down")
status = child.wait()
# What stdin still brings after the transport ended cannot reach it.
up.join(timeout=0.1)
for key, n in counts.items():
    path = os.path.join(out_dir, key)
    before = int(open(path).read() or 0) if os.path.exists(path) else 0
    with open(path, "w") as f:
        f.write(str(before + n))
sys.exit(status if status >= 0 else 128 - status)
