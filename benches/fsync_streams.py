#!/usr/bin/env python3
"""How this machine's disk takes fsyncs from one log and from several at once.

Each stream is a process appending a record (1,500 bytes, about one
group-committed round of a busy node) to its own file and fdatasyncing it,
in a loop, for SECONDS. Printed per setting: fsyncs per second per stream,
p50 and p99 latency, and how often one took longer than 5 ms (a stall)
with the share of time spent in those.

    python3 benches/fsync_streams.py            # 1 stream, 3, 3 with a 1 ms gap
    FSYNC_SECONDS=10 DIR=/data python3 benches/fsync_streams.py

Three nodes of a benchmark cluster on one machine are three such streams.
If three back-to-back streams stall far more than one, the disk and not the
nodes bounds the cluster's -P 1 SETs and their p99; the 1 ms gap is what
`dkv-node --fsync-window-us 1000` does to each log under load.
"""

import multiprocessing
import os
import tempfile
import time

SECONDS = float(os.environ.get("FSYNC_SECONDS", "5"))
DIR = os.environ.get("DIR", tempfile.gettempdir())
RECORD = b"x" * 1500
STALL = 0.005
MAX_SYNCS = 1_000_000


def stream(args):
    index, gap = args
    path = os.path.join(DIR, f"dkv-fsync-stream-{os.getpid()}-{index}")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND)
    latencies = []
    try:
        end = time.monotonic() + SECONDS
        while time.monotonic() < end and len(latencies) < MAX_SYNCS:
            started = time.perf_counter()
            os.write(fd, RECORD)
            os.fdatasync(fd)
            took = time.perf_counter() - started
            latencies.append(took)
            if gap > 0:
                time.sleep(gap)
    finally:
        os.close(fd)
        os.unlink(path)
    return latencies


def report(label, results):
    for latencies in results:
        latencies.sort()
        n = len(latencies)
        stalls = [t for t in latencies if t > STALL]
        print(
            f"{label:<28} {n / SECONDS:8.0f} {latencies[n // 2] * 1e3:8.3f} "
            f"{latencies[int(n * 0.99)] * 1e3:8.3f} {len(stalls) / SECONDS:9.1f} "
            f"{sum(stalls) / SECONDS * 100:9.1f}%"
        )


def main():
    print(f"{SECONDS:.0f} s per setting, files in {DIR}, {len(RECORD)}-byte appends")
    print(f"{'setting':<28} {'fsync/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'stalls/s':>9} {'stalled':>10}")
    for label, count, gap in (
        ("1 stream, back to back", 1, 0.0),
        ("3 streams, back to back", 3, 0.0),
        ("3 streams, 1 ms between", 3, 0.001),
    ):
        with multiprocessing.Pool(count) as pool:
            report(label, pool.map(stream, [(i, gap) for i in range(count)]))


if __name__ == "__main__":
    main()
