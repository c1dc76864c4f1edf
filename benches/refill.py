#!/usr/bin/env python3
"""Time for anti-entropy to refill a node that lost its data directory.

Starts three `dkv-node` processes (N=3, W=2, R=2, fsync never) from the
binary given, writes KEYS keys through node 1 (pipelined, at QUORUM),
kills node 3, deletes its data directory, restarts it, and polls its
`INFO keyspace` until it holds every key again (or two minutes pass).
Prints the time taken and the nodes' resident sets. Extra arguments go
to every node (`--aae-max-mb-per-sec 64`, say).

    python3 benches/refill.py target/release/dkv-node 100000 [dkv-node flags...]
"""

import shutil
import socket
import sys
import tempfile
import time

from benchlib import Cluster, encode, rss_mib

BASE = 7900


def connect(node):
    sock = socket.create_connection(("127.0.0.1", BASE + node))
    sock.settimeout(30)
    return sock


def keys_held(node):
    sock = connect(node)
    sock.sendall(encode(b"INFO", b"keyspace"))
    time.sleep(0.05)
    for line in sock.recv(1 << 16).decode().split("\r\n"):
        if line.startswith("db0:keys="):
            return int(line.split("=")[1].split(",")[0])
    return 0


def main():
    binary, count, extra = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    work = tempfile.mkdtemp(prefix="dkv-refill-")
    cluster = Cluster(binary, work, BASE, extra)
    try:
        time.sleep(2)
        writer = connect(1)
        for first in range(0, count, 10_000):
            batch = range(first, min(count, first + 10_000))
            writer.sendall(b"".join(encode(b"SET", b"key-%d" % i, b"value-%d" % i) for i in batch))
            replies = b""
            while replies.count(b"\r\n") < len(batch):
                replies += writer.recv(1 << 20)
        cluster.kill(3)
        shutil.rmtree(cluster.data_dir(3))
        started = time.time()
        cluster.restart(3)
        held = 0
        while held < count and time.time() - started < 120:
            time.sleep(0.5)
            try:
                held = keys_held(3)
            except OSError:
                continue
        print(f"refilled {held} of {count} keys in {time.time() - started:.1f} s")
        print("RSS MiB of nodes 1/2/3:", [rss_mib(cluster.nodes[i]) for i in (1, 2, 3)])
    finally:
        cluster.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
