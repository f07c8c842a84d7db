#!/usr/bin/env python3
"""A slow link in user space, for a kernel without the netem qdisc:
`delay-link.py DELAY_MS MBIT HOST PORT` connects to HOST:PORT and relays
stdin to the connection and the connection to stdout, each direction
like a link of MBIT Mbit/s with DELAY_MS ms of one-way delay: a chunk
that arrives leaves the (serialised, paced) link at
max(arrival, link free) + its size / rate and is delivered DELAY_MS
later. Meant as ssh's ProxyCommand (`-o ProxyCommand=...%h %p`), so
that everything ssh sends, the handshake included, crosses it, as it
would cross `netem delay DELAY_MS rate MBIT`. Memory stays bounded by
ssh's own flow control (a channel window of a few MiB)."""
import collections
import os
import socket
import sys
import threading
import time

delay = float(sys.argv[1]) / 1000.0
rate = float(sys.argv[2]) * 1e6 / 8.0  # bytes per second
sock = socket.create_connection((sys.argv[3], int(sys.argv[4])))
sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def direction(read, write, close):
    """Reads chunks, a second thread writes each at its delivery time."""
    queue = collections.deque()
    cv = threading.Condition()
    state = {"free": 0.0, "eof": False}

    def writer():
        while True:
            with cv:
                while not queue and not state["eof"]:
                    cv.wait()
                if not queue:
                    break
                due, chunk = queue.popleft()
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            try:
                write(chunk)
            except OSError:
                break
        close()

    t = threading.Thread(target=writer, daemon=True)
    t.start()
    while True:
        try:
            chunk = read()
        except OSError:
            chunk = b""
        now = time.monotonic()
        with cv:
            if not chunk:
                state["eof"] = True
                cv.notify()
                break
            state["free"] = max(now, state["free"]) + len(chunk) / rate
            queue.append((state["free"] + delay, chunk))
            cv.notify()
    t.join()


def write_all(fd, b):
    while b:
        b = b[os.write(fd, b):]


def shut_sock():
    try:
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass


up = threading.Thread(
    target=direction,
    args=(lambda: os.read(0, 1 << 16), sock.sendall, shut_sock),
    daemon=True,
)
up.start()
direction(lambda: sock.recv(1 << 16), lambda b: write_all(1, b), lambda: os.close(1))
