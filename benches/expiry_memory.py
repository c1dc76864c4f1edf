#!/usr/bin/env python3
"""Memory given back by expiry, and what an expiry costs per key.

Starts one `dkv-node` (fsync never) from the binary given and writes KEYS
keys (16-byte keys, 64-byte values) pipelined: first without a TTL, and
notes `used_memory`; then FLUSHDB, the same keys with `EX 3600` (the cost
of an expiry), FLUSHDB, and the same keys with `PX 1000`. It then polls
`INFO` every 250 ms, without reading any key, until the node holds no key
(active expiry alone), or 30 s pass. Prints bytes per key with and
without an expiry, the time to reclaim, and the resident set at each step.

    python3 benches/expiry_memory.py target/release/dkv-node 1000000
"""

import socket
import subprocess
import sys
import tempfile
import time

from benchlib import encode, rss_mib

PORT = 7950
BATCH = 10_000


def connect():
    sock = socket.create_connection(("127.0.0.1", PORT))
    sock.settimeout(60)
    return sock


def info(sock):
    sock.sendall(encode(b"INFO"))
    data = b""
    while True:
        data += sock.recv(1 << 20)
        # A bulk reply: $<len>\r\n<text>\r\n
        if data.startswith(b"$"):
            head, _, rest = data.partition(b"\r\n")
            if len(rest) >= int(head[1:]) + 2:
                text = rest[: int(head[1:])].decode()
                return dict(
                    line.split(":", 1) for line in text.split("\r\n") if ":" in line and not line.startswith("#")
                )


def keys_of(fields):
    db0 = fields.get("db0", "keys=0")
    return int(db0.split(",")[0].split("=")[1])


def write(sock, count, extra):
    for start in range(0, count, BATCH):
        chunk = b"".join(
            encode(b"SET", b"key:%012d" % i, b"v" * 64, *extra) for i in range(start, min(count, start + BATCH))
        )
        sock.sendall(chunk)
        want = b"+OK\r\n" * (min(count, start + BATCH) - start)
        got = b""
        while len(got) < len(want):
            got += sock.recv(1 << 20)


def main():
    binary, count = sys.argv[1], int(sys.argv[2])
    with tempfile.TemporaryDirectory() as work:
        node = subprocess.Popen(
            [binary, "--port", str(PORT), "--data-dir", work, "--fsync", "never"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            for _ in range(100):
                try:
                    sock = connect()
                    break
                except OSError:
                    time.sleep(0.05)
            base = int(info(sock)["used_memory"])
            write(sock, count, ())
            plain = int(info(sock)["used_memory"])
            print(f"{count} keys without a TTL: {(plain - base) / count:.1f} bytes/key, rss {rss_mib(node)} MiB")
            sock.sendall(encode(b"FLUSHDB"))
            sock.recv(64)
            write(sock, count, (b"EX", b"3600"))
            hour = int(info(sock)["used_memory"])
            print(
                f"{count} keys with EX 3600: {(hour - base) / count:.1f} bytes/key "
                f"(+{(hour - plain) / count:.1f} for the expiry), rss {rss_mib(node)} MiB"
            )
            sock.sendall(encode(b"FLUSHDB"))
            sock.recv(64)
            began = time.monotonic()
            write(sock, count, (b"PX", b"1000"))
            written = time.monotonic() - began
            fields = info(sock)
            expiring = int(fields["used_memory"])
            print(
                f"{count} keys with PX 1000 written in {written:.1f} s "
                f"({keys_of(fields)} still held then), rss {rss_mib(node)} MiB"
            )
            del expiring
            start = time.monotonic()
            while time.monotonic() - start < 30:
                fields = info(sock)
                if keys_of(fields) == 0:
                    break
                time.sleep(0.25)
            left = keys_of(fields)
            elapsed = time.monotonic() - began
            print(
                f"{left} keys left {elapsed:.1f} s after the first write ({elapsed - written:.1f} s after the last), "
                f"used_memory {int(fields['used_memory']) - base} bytes over empty, rss {rss_mib(node)} MiB"
            )
        finally:
            node.kill()
            node.wait()


if __name__ == "__main__":
    main()
