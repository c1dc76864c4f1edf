#!/usr/bin/env python3
"""Memory of a 3-node cluster under a client that never reads.

Starts three `dkv-node` processes (N=3, W=2, R=2, fsync never) from the
binary given, writes one 1 MiB value, then has one client pipeline 1,000
quorum GETs of it without reading a byte. Prints each node's resident set
(VmRSS from /proc, MiB) before, at its peak over the next 6 s, and 2 s
after the client closes, and how many clients the node closed for their
output.

    python3 benches/never_reading_client.py target/release/dkv-node [base port]
"""

import shutil
import socket
import sys
import tempfile
import time

from benchlib import Cluster, encode, rss_mib


def command(sock, *args):
    sock.sendall(encode(*args))
    return sock.recv(1 << 16)


def main():
    binary = sys.argv[1]
    base = int(sys.argv[2]) if len(sys.argv) > 2 else 7300
    work = tempfile.mkdtemp(prefix="dkv-never-reading-")
    cluster = Cluster(binary, work, base)
    nodes = [cluster.nodes[i] for i in (1, 2, 3)]
    try:
        time.sleep(2)
        writer = socket.create_connection(("127.0.0.1", base + 1))
        for _ in range(50):
            if command(writer, b"SET", b"big", b"v" * (1 << 20)).startswith(b"+OK"):
                break
            time.sleep(0.2)
        before = [rss_mib(p) for p in nodes]
        hog = socket.create_connection(("127.0.0.1", base + 1))
        hog.sendall(b"*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n" * 1000)
        peak = [0, 0, 0]
        for _ in range(30):
            time.sleep(0.2)
            peak = [max(p, rss_mib(n)) for p, n in zip(peak, nodes)]
        hog.close()
        time.sleep(2)
        after = [rss_mib(p) for p in nodes]
        probe = socket.create_connection(("127.0.0.1", base + 1))
        probe.settimeout(5)
        stats = command(probe, b"INFO", b"stats").decode(errors="replace")
        closed = [line for line in stats.split("\r\n") if "disconnections" in line]
        print(f"RSS MiB of nodes 1/2/3: before {before}, peak {peak}, after the client left {after}")
        print(closed[0] if closed else "client_output_buffer_limit_disconnections: not reported")
    finally:
        cluster.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
