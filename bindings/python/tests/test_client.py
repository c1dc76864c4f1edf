"""dkv.Client against one node: every method, every argument form, every
error class."""

import threading
import time

import pytest

import dkv
from conftest import FakeServer, free_port


def test_put_get_delete(client):
    assert client.put(b"k", b"v") is None
    assert client.get(b"k") == b"v"
    assert client.get(b"missing") is None
    assert client.delete(b"k") is True
    assert client.delete(b"k") is False
    assert client.get(b"k") is None


def test_binary_and_large_values(client):
    key = b"bin\x00\xff key"
    value = bytes(range(256)) * 4096  # 1 MiB
    client.put(key, value)
    assert client.get(key) == value
    client.put(b"empty", b"")
    assert client.get(b"empty") == b""


def test_key_and_value_types(client):
    client.put("text-key", b"1")
    assert client.get(b"text-key") == b"1"
    client.put("ключ", b"2")
    assert client.get("ключ".encode()) == b"2"
    client.put(bytearray(b"ba"), bytearray(b"3"))
    client.put(memoryview(b"mv"), memoryview(b"4"))
    assert client.get_many([b"ba", "mv"]) == [b"3", b"4"]
    with pytest.raises(TypeError, match="value"):
        client.put(b"k", "text values must be encoded")
    with pytest.raises(TypeError, match="key"):
        client.get(42)
    with pytest.raises(TypeError):
        client.put(b"k", None)
    with pytest.raises(UnicodeEncodeError):
        client.get("\udcff")


def test_empty_key_is_invalid(client):
    with pytest.raises(dkv.InvalidArgument, match="empty") as e:
        client.put(b"", b"v")
    assert isinstance(e.value, ValueError)
    assert e.value.code == 2 and e.value.status == "INVALID_ARGUMENT"
    with pytest.raises(dkv.InvalidArgument):
        client.get("")
    with pytest.raises(dkv.InvalidArgument):
        client.get_many([b"a", b""])


def test_get_many_put_many(client):
    client.put_many({b"a": b"1", "b": b"2"})
    client.put_many([(b"c", b"3"), ("d", b"4")])
    client.put_many(iter([(b"e", b"5")]))
    client.put_many({})
    assert client.get_many([b"a", b"b", b"nope", b"c", "d", b"e"]) == [b"1", b"2", None, b"3", b"4", b"5"]
    assert client.get_many([]) == []
    assert client.get_many(k for k in [b"a"]) == [b"1"]
    with pytest.raises(TypeError, match="single key"):
        client.get_many(b"abc")
    with pytest.raises(TypeError, match="pairs"):
        client.put_many([b"not-a-pair"])
    with pytest.raises(TypeError):
        client.put_many(5)


def test_consistency_levels(client):
    client.put(b"k", b"v", consistency=dkv.ONE)
    for level in [dkv.ONE, dkv.QUORUM, dkv.ALL, 1, "one", "QUORUM", "all", "1", None, -1, -2, -3]:
        assert client.get(b"k", consistency=level) == b"v"
    assert dkv.Consistency.ONE == dkv.ONE == -1
    assert (dkv.QUORUM, dkv.ALL) == (-2, -3)
    # N = 1: two replicas cannot be asked for; the server says so.
    with pytest.raises(dkv.InvalidArgument):
        client.get(b"k", consistency=2)
    for bad in [0, -4, 10**30, "none", "0"]:
        with pytest.raises(dkv.InvalidArgument):
            client.get(b"k", consistency=bad)
    for bad in [True, 1.0, b"one", [1]]:
        with pytest.raises(TypeError):
            client.get(b"k", consistency=bad)


def test_timeouts(client):
    client.put(b"k", b"v", timeout=2)
    assert client.get(b"k", timeout=0.5) == b"v"
    assert client.get(b"k", timeout=float("inf")) == b"v"
    for bad in [0, -1, float("nan")]:
        with pytest.raises(dkv.InvalidArgument):
            client.get(b"k", timeout=bad)
    with pytest.raises(TypeError):
        client.get(b"k", timeout="1s")
    with pytest.raises(dkv.InvalidArgument):
        dkv.Client(["127.0.0.1:1"], timeout=-1)


def test_status_and_ping(client, node):
    assert client.ping() is None
    status = client.status()
    assert isinstance(status, dkv.ClusterStatus)
    assert status.node_id == 1
    assert (status.replication_factor, status.write_quorum, status.read_quorum) == (1, 1, 1)
    assert status.peers == [] and status.hints_pending == 0
    assert status.peer(2) is None
    assert "ClusterStatus(node_id=1" in repr(status)


def test_client_construction(node):
    with dkv.Client(node.address) as c:  # one string
        c.ping()
    with dkv.Client((a for a in [node.address])) as c:
        assert c.addresses == [node.address]
        assert "dkv.Client" in repr(c)
    with pytest.raises(dkv.InvalidArgument, match="no node"):
        dkv.Client([])
    with pytest.raises(dkv.InvalidArgument):
        dkv.Client(["nonsense"])
    with pytest.raises(TypeError):
        dkv.Client([7001])
    with pytest.raises(dkv.InvalidArgument):
        dkv.Client([node.address], max_connections=0)


def test_unreachable_cluster_is_unavailable():
    with pytest.raises(dkv.Unavailable) as e:
        dkv.Client([f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"], connect_timeout=0.5)
    assert e.value.code == 3 and e.value.status == "UNAVAILABLE"
    assert isinstance(e.value, dkv.DkvError)


def test_node_gone_is_unavailable(tmp_path):
    node = dkv.Node(1, data_dir=tmp_path / "n", fsync="never")
    node.start()
    c = dkv.Client(node.address, connect_timeout=0.5)
    c.put(b"k", b"v")
    node.stop()
    with pytest.raises(dkv.Unavailable):
        c.get(b"k")
    node.start()  # same port: the client reconnects
    assert c.get(b"k") == b"v"
    node.stop()


def test_failover_to_the_next_node(node):
    dead = f"127.0.0.1:{free_port()}"
    with dkv.Client([dead, node.address], connect_timeout=0.5) as c:
        c.put(b"k", b"v")
        assert c.get(b"k") == b"v"


def test_silent_server_times_out(silent_server):
    with dkv.Client(silent_server.address) as c:
        start = time.monotonic()
        with pytest.raises(dkv.Timeout) as e:
            c.get(b"k", timeout=0.3)
        assert 0.25 < time.monotonic() - start < 3
        assert isinstance(e.value, TimeoutError)
        assert e.value.code == 4 and e.value.status == "TIMEOUT"


def test_garbage_reply_is_a_protocol_error():
    server = FakeServer(reply=b"+OK\r\n")  # a simple string where GET wants a bulk
    try:
        with dkv.Client(server.address) as c:
            with pytest.raises(dkv.ProtocolError) as e:
                c.get(b"k", consistency=dkv.ONE, timeout=2)
            assert e.value.code == 9
    finally:
        server.close()
    server = FakeServer(reply=b"?what\r\n")  # not RESP at all
    try:
        with dkv.Client(server.address) as c:
            with pytest.raises(dkv.ProtocolError):
                c.ping(timeout=2)
    finally:
        server.close()


def test_closed_client(node):
    c = dkv.Client(node.address)
    with c:
        c.ping()
    assert c.closed
    with pytest.raises(dkv.InvalidArgument, match="closed"):
        c.get(b"k")
    c.close()  # idempotent


def test_exception_hierarchy():
    classes = {
        dkv.InvalidArgument: (2, ValueError),
        dkv.Unavailable: (3, None),
        dkv.Timeout: (4, TimeoutError),
        dkv.IoError: (5, OSError),
        dkv.CorruptionError: (6, None),
        dkv.ConfigError: (8, None),
        dkv.ProtocolError: (9, None),
        dkv.ServerError: (10, None),
    }
    for cls, (code, builtin) in classes.items():
        assert issubclass(cls, dkv.DkvError)
        assert cls.code == code
        assert cls.__module__ == "dkv"
        assert cls.__doc__
        if builtin is not None:
            assert issubclass(cls, builtin)
    assert issubclass(dkv.DkvError, Exception)
    assert dkv.DkvError.code is None
    e = dkv.Unavailable("message")
    assert str(e) == "message" and e.code == 3


def test_blocking_calls_release_the_gil(silent_server):
    """While one thread waits 1 s on a silent server, another keeps running
    Python code: the wait happens without the GIL."""
    ticks = []
    done = threading.Event()

    def tick():
        while not done.is_set():
            ticks.append(time.monotonic())
            time.sleep(0.005)

    t = threading.Thread(target=tick)
    t.start()
    try:
        with dkv.Client(silent_server.address) as c:
            with pytest.raises(dkv.Timeout):
                c.get(b"k", timeout=1.0)
    finally:
        done.set()
        t.join(timeout=5)
    gaps = [b - a for a, b in zip(ticks, ticks[1:])]
    assert len(ticks) > 50
    assert max(gaps) < 0.5, f"the ticker stalled for {max(gaps):.2f}s"


def test_docstrings():
    for obj in [dkv, dkv.Node, dkv.Client, dkv.local_cluster, dkv.LocalCluster, dkv.ClusterStatus,
                dkv.PeerStatus, dkv.Consistency, dkv.DkvError]:
        assert obj.__doc__, obj
    for name in ["get", "put", "delete", "get_many", "put_many", "status", "ping", "close"]:
        assert getattr(dkv.Client, name).__doc__, name
    for name in ["start", "stop"]:
        assert getattr(dkv.Node, name).__doc__, name
