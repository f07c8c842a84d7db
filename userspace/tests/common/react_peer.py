#!/usr/bin/env python3
"""A hostile peer that reacts: plays a dirsync server on stdin/stdout.

Usage: react_peer.py PLAN [host remote-command...] (what the transport
adds is ignored). PLAN is a file the test wrote:
  greeting: u32 length, then bytes sent at once (hello, ready, ...);
  then rules, each: u8 kind, u8 endless, u64 limit, u32 count, then count
  times (u8 patch, u32 length, frame bytes).
Each time a frame of a rule's kind arrives, its frames are sent (an
endless rule's only the first time); those with
patch 1 get the request number of the frame that arrived (its first four
payload bytes) as their first four payload bytes. An endless rule sends
its frames again and again until `limit` bytes went out. Then (and for
frames no rule is about) it goes on reading until the end of its input
or the client's goodbye.
"""
import os
import struct
import sys


# The client's goodbye: an honest server ends then.
BYE = 45


def main():
    plan = open(sys.argv[1], "rb").read()
    pos = 0

    def take(n):
        nonlocal pos
        b = plan[pos:pos + n]
        pos += n
        return b

    (glen,) = struct.unpack("<I", take(4))
    greeting = take(glen)
    rules = {}
    while pos < len(plan):
        kind, endless, limit, count = struct.unpack("<BBQI", take(14))
        frames = []
        for _ in range(count):
            patch, flen = struct.unpack("<BI", take(5))
            frames.append((patch, take(flen)))
        rules[kind] = (endless, limit, frames)
    out = sys.stdout.buffer
    inp = sys.stdin.buffer
    try:
        out.write(greeting)
        out.flush()
        while True:
            head = inp.read(4)
            if len(head) < 4:
                return
            (n,) = struct.unpack("<I", head)
            body = inp.read(n)
            if len(body) < n:
                return
            if os.environ.get("REACT_PEER_DEBUG"):
                sys.stderr.write("peer got kind %d: %s\n" % (body[0], body[1:9].hex()))
            if body[0] == BYE:
                return
            rule = rules.get(body[0])
            if rule is None:
                continue
            endless, limit, frames = rule
            if endless:
                del rules[body[0]]
            req = body[1:5]
            data = b"".join(
                f[:5] + req + f[9:] if patch else f for patch, f in frames
            )
            sent = 0
            while True:
                out.write(data)
                out.flush()
                sent += len(data)
                if not endless or sent >= limit:
                    break
    except (BrokenPipeError, ConnectionResetError):
        return


main()
