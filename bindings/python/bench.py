"""Python client throughput: dkv.Client against a local 3-node cluster,
beside redis-py against the same cluster (RESP) and against redis-server.

    pip install ./bindings/python redis      # a release build: no --profile dev
    python bindings/python/bench.py [--seconds 2] [--threads 8] [--value-size 100]

The cluster runs in this process (dkv.local_cluster: N=3 W=2 R=2, fsync
"never"); every put and get is at QUORUM, so
each one is a round trip to the coordinator plus its replication to two
peers. redis-server (if installed) is started on a free loopback port
with persistence off, and stopped at the end. Each cell runs for
`--seconds`, one request at a time per thread (no pipelining); with
several threads, dkv.Client and redis.Redis are each shared by all
threads (both keep a pool of connections) and the threads' requests are
spread over the three nodes.
"""

import argparse
import os
import shutil
import socket
import subprocess
import sys
import threading
import time

import dkv

try:
    import redis
except ImportError:  # the dkv rows still run
    redis = None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_cell(make_op, threads, seconds):
    """Runs make_op(thread_index)() in `threads` threads for `seconds`;
    returns operations per second."""
    counts = [0] * threads
    errors = []
    start_gate = threading.Barrier(threads + 1)
    stop = threading.Event()

    def worker(i):
        op = make_op(i)
        start_gate.wait()
        n = 0
        try:
            while not stop.is_set():
                for _ in range(50):
                    op(n)
                    n += 1
        except Exception as e:  # reported after the cell
            errors.append(e)
        counts[i] = n

    ts = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in ts:
        t.start()
    start_gate.wait()
    began = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    for t in ts:
        t.join(timeout=60)
    elapsed = time.perf_counter() - began
    if errors:
        raise errors[0]
    return sum(counts) / elapsed


def start_redis_server():
    binary = shutil.which("redis-server")
    if binary is None:
        return None, None
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    proc.wait(timeout=10)
    return None, None


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=2.0, help="duration of each cell")
    parser.add_argument("--threads", type=int, default=8, help="threads of the multi-threaded cells")
    parser.add_argument("--value-size", type=int, default=100)
    parser.add_argument("--keys", type=int, default=10_000, help="key space")
    args = parser.parse_args()
    value = b"v" * args.value_size
    nkeys = args.keys
    keys = [f"bench:{i}".encode() for i in range(nkeys)]

    rows = []  # (target, threads, put, get)
    redis_proc, redis_port = start_redis_server()
    try:
        with dkv.local_cluster(3) as cluster:
            ports = [n.port for n in cluster.nodes]
            client = dkv.Client(cluster.addresses, timeout=10.0, max_connections=args.threads)
            client.put_many([(k, value) for k in keys], timeout=60.0)

            def dkv_put(_i):
                return lambda n: client.put(keys[n % nkeys], value)

            def dkv_get(_i):
                return lambda n: client.get(keys[n % nkeys])

            for threads in (1, args.threads):
                put = run_cell(dkv_put, threads, args.seconds)
                get = run_cell(dkv_get, threads, args.seconds)
                rows.append(("dkv.Client -> dkv cluster", threads, put, get))
            client.close()

            if redis is not None:
                # One redis.Redis per node; thread i talks to node i % 3.
                per_node = [redis.Redis(host="127.0.0.1", port=p, socket_timeout=10) for p in ports]

                def rp_put(i):
                    r = per_node[i % 3]
                    return lambda n: r.set(keys[n % nkeys], value)

                def rp_get(i):
                    r = per_node[i % 3]
                    return lambda n: r.get(keys[n % nkeys])

                for threads in (1, args.threads):
                    put = run_cell(rp_put, threads, args.seconds)
                    get = run_cell(rp_get, threads, args.seconds)
                    rows.append(("redis-py   -> dkv cluster", threads, put, get))
                for r in per_node:
                    r.close()

        if redis is not None and redis_port is not None:
            r = redis.Redis(host="127.0.0.1", port=redis_port, socket_timeout=10)
            r.mset({k: value for k in keys})

            def rs_put(_i):
                return lambda n: r.set(keys[n % nkeys], value)

            def rs_get(_i):
                return lambda n: r.get(keys[n % nkeys])

            for threads in (1, args.threads):
                put = run_cell(rs_put, threads, args.seconds)
                get = run_cell(rs_get, threads, args.seconds)
                rows.append(("redis-py   -> redis-server", threads, put, get))
            r.close()
    finally:
        if redis_proc is not None:
            redis_proc.terminate()
            redis_proc.wait(timeout=10)

    print(f"\nPython {sys.version.split()[0]}, dkv {dkv.__version__}, {os.cpu_count()} CPUs, "
          f"{args.value_size}-byte values, {args.seconds:g} s per cell, QUORUM (N=3 W=2 R=2) on dkv")
    if redis is None:
        print("(redis-py not installed: its rows are missing)")
    elif redis_port is None:
        print("(redis-server not installed: its rows are missing)")
    base = {t: (p, g) for name, t, p, g in rows if name.endswith("redis-server")}
    print(f"\n| {'client -> server':<27} | threads | {'put ops/s':>10} | {'get ops/s':>10} | vs redis-server (put / get) |")
    print(f"|{'-' * 29}|---------|{'-' * 12}|{'-' * 12}|{'-' * 28}|")
    for name, threads, put, get in rows:
        ratio = ""
        if threads in base:
            bp, bg = base[threads]
            ratio = f"{put / bp:.2f} / {get / bg:.2f}"
        print(f"| {name:<27} | {threads:>7} | {put:>10,.0f} | {get:>10,.0f} | {ratio:<26} |")


if __name__ == "__main__":
    main()
