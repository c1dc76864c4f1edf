"""Mixed-language harness: a 3-node cluster started in this Python process
with dkv.local_cluster; a writer in another language writes 1,000 keys at
QUORUM; redis-py reads them through RESP from another node; the Python
client reads them at ALL. Then one node is stopped, more keys are written,
the node restarts, and every replica is checked through DKV.LOCAL once
hints drain.

Two writers run the same flow:

* ``cpp``: tests/mixed/writer.cpp, compiled with g++ against libdkv
  (``bindings/cpp/dkv.hpp`` over ``include/dkv.h``, linked with
  ``target/debug/libdkv.so``: ``cargo build -p dkv-ffi``). Skipped when the
  library, the headers or g++ are missing, unless DKV_REQUIRE_CPP=1 (as
  ``make test-python`` sets), which makes that a failure.
* ``redis-py``: redis-py through RESP, so the harness runs wherever the
  Python package does.
"""

import os
import shutil
import subprocess
import time

import pytest
import redis

import dkv

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
LIB_DIR = os.environ.get("DKV_LIB_DIR", os.path.join(ROOT, "target", "debug"))
WRITER_SRC = os.path.join(ROOT, "tests", "mixed", "writer.cpp")
FIRST_BATCH = 1000
SECOND_BATCH = 200


def value_of(i):
    return f"cpp-value-{i}".encode()


def key_of(i):
    return f"mixed:{i}".encode()


def redis_at(address):
    host, port = address.rsplit(":", 1)
    return redis.Redis(host=host, port=int(port), socket_timeout=20, single_connection_client=True)


def write_with_redis_py(address, first, count):
    r = redis_at(address)
    try:
        assert r.execute_command("CONSISTENCY", "READ", "QUORUM", "WRITE", "QUORUM") in (b"OK", "OK", True)
        pipe = r.pipeline(transaction=False)
        for i in range(first, first + count):
            pipe.set(key_of(i), value_of(i))
        assert all(pipe.execute())
    finally:
        r.close()


@pytest.fixture(scope="session")
def cpp_writer(tmp_path_factory):
    """The compiled writer, or a skip (a failure under DKV_REQUIRE_CPP=1)."""
    required = os.environ.get("DKV_REQUIRE_CPP") == "1"
    needed = {
        "libdkv.so": os.path.join(LIB_DIR, "libdkv.so"),
        "dkv.hpp": os.path.join(ROOT, "bindings", "cpp", "dkv.hpp"),
        "dkv.h": os.path.join(ROOT, "include", "dkv.h"),
    }
    missing = [name for name, path in needed.items() if not os.path.exists(path)]
    cxx = os.environ.get("CXX", "g++")
    if shutil.which(cxx) is None:
        missing.append(cxx)
    if missing:
        reason = f"C++ writer needs {', '.join(missing)} (cargo build -p dkv-ffi)"
        if required:
            pytest.fail(reason)
        pytest.skip(reason)
    out = str(tmp_path_factory.mktemp("mixed") / "writer")
    cmd = [
        cxx, "-std=c++17", "-Wall", "-Wextra", "-Werror", "-g",
        "-I", os.path.join(ROOT, "include"), "-I", os.path.join(ROOT, "bindings", "cpp"),
        WRITER_SRC, "-o", out,
        "-L", LIB_DIR, "-ldkv", f"-Wl,-rpath,{LIB_DIR}", "-pthread",
    ]
    built = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, f"{' '.join(cmd)}\n{built.stdout}\n{built.stderr}"
    return out


@pytest.fixture(params=["cpp", "redis-py"])
def writer(request):
    """write(address, first, count): writes keys first..first+count-1 at
    QUORUM through node `address`."""
    if request.param == "redis-py":
        return write_with_redis_py
    binary = request.getfixturevalue("cpp_writer")

    def write_with_cpp(address, first, count):
        done = subprocess.run(
            [binary, address, "mixed:", str(first), str(count)],
            capture_output=True, text=True, timeout=120,
        )
        assert done.returncode == 0, f"writer failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
        assert done.stdout.strip() == f"wrote {count}"

    return write_with_cpp


def info_cluster(address):
    r = redis_at(address)
    try:
        return r.info("cluster")
    finally:
        r.close()


def wait_for(what, check, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def local_values(address, keys):
    """Each key's copy on the node at `address` (DKV.LOCAL), pipelined."""
    r = redis_at(address)
    try:
        pipe = r.pipeline(transaction=False)
        for k in keys:
            pipe.execute_command("DKV.LOCAL", k)
        return pipe.execute()
    finally:
        r.close()


def test_mixed_language_cluster(writer):
    with dkv.local_cluster(3) as cluster:
        node1, node2, node3 = cluster.addresses

        # 1. The other language writes 1,000 keys at QUORUM through node 1.
        writer(node1, 0, FIRST_BATCH)

        # 2. redis-py reads them through RESP from node 2.
        r = redis_at(node2)
        try:
            pipe = r.pipeline(transaction=False)
            for i in range(FIRST_BATCH):
                pipe.get(key_of(i))
            assert pipe.execute() == [value_of(i) for i in range(FIRST_BATCH)]
        finally:
            r.close()

        # 3. The Python client reads them at ALL.
        with dkv.Client([node3, node1, node2]) as client:
            keys = [key_of(i) for i in range(FIRST_BATCH)]
            assert client.get_many(keys, consistency=dkv.ALL) == [value_of(i) for i in range(FIRST_BATCH)]

            # 4. Node 3 stops; once the others see it down, more keys are
            # written (hinted for node 3).
            cluster.nodes[2].stop()

            def node3_down():
                # redis-py parses "node_3:down,disconnected" into a list.
                return all(info_cluster(a).get("node_3", [""])[0] == "down" for a in (node1, node2))

            wait_for("node 3 to be marked down", node3_down)
            writer(node1, FIRST_BATCH, SECOND_BATCH)
            total = FIRST_BATCH + SECOND_BATCH
            assert client.get(key_of(total - 1), consistency=dkv.QUORUM) == value_of(total - 1)

            # 5. Node 3 restarts on its data; hints drain.
            cluster.nodes[2].start()
            cluster.wait_until_up(timeout=30)

            def hints_drained():
                return all(info_cluster(a).get("hints_pending") == 0 for a in cluster.addresses)

            wait_for("hints_pending:0 on every node", hints_drained)

            # 6. Every replica (N = 3: every node) holds every key.
            keys = [key_of(i) for i in range(total)]
            expected = [value_of(i) for i in range(total)]
            for address in cluster.addresses:
                got = local_values(address, keys)
                missing = [keys[i] for i, v in enumerate(got) if v != expected[i]]
                assert not missing, f"{address} lacks {len(missing)} keys, e.g. {missing[:5]}"
            assert client.get_many(keys, consistency=dkv.ALL) == expected
