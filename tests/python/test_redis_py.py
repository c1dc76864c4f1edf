"""redis-py, unchanged, against a dkv-node."""

import redis

from conftest import NodeProcess


def client(node, **kw):
    return redis.Redis(host="127.0.0.1", port=node.port, socket_timeout=20, **kw)


def test_set_get_delete_binary_values(node):
    r = client(node)
    assert r.ping()
    value = bytes(range(256)) * 4
    assert r.set(b"bin\x00key", value)
    assert r.get(b"bin\x00key") == value
    assert r.exists(b"bin\x00key", b"nope") == 1
    assert r.delete(b"bin\x00key", b"nope") == 1
    assert r.get(b"bin\x00key") is None


def test_mset_mget(node):
    r = client(node)
    assert r.mset({"a": "1", "b": "2"})
    assert r.mget(["a", "missing", "b"]) == [b"1", None, b"2"]
    assert r.dbsize() == 2


def test_pipeline_of_ten_thousand_commands(node):
    r = client(node)
    pipe = r.pipeline(transaction=False)
    for i in range(10_000):
        pipe.set(f"k{i}", f"v{i}")
    assert all(pipe.execute())
    pipe = r.pipeline(transaction=False)
    for i in range(10_000):
        pipe.get(f"k{i}")
    assert pipe.execute() == [f"v{i}".encode() for i in range(10_000)]


def test_info_sections(node):
    info = client(node).info("all")
    assert info["redis_mode"] == "standalone"
    assert "connected_clients" in info
    assert "wal_bytes" in info


def test_auth_required_when_configured(tmp_path):
    n = NodeProcess(tmp_path / "auth", "--requirepass", "pw")
    try:
        try:
            client(n).get("k")
            raise AssertionError("unauthenticated GET succeeded")
        except redis.exceptions.AuthenticationError:
            pass
        try:
            client(n, password="wrong").ping()
            raise AssertionError("wrong password accepted")
        except redis.exceptions.AuthenticationError:
            pass
        r = client(n, password="pw")
        assert r.set("k", "v")
        assert r.get("k") == b"v"
    finally:
        n.kill()


def test_unknown_command_is_an_error_not_a_disconnect(node):
    r = client(node)
    try:
        r.execute_command("NOSUCHCOMMAND", "x")
        raise AssertionError("unknown command accepted")
    except redis.exceptions.ResponseError as e:
        assert "unknown command" in str(e)
    assert r.ping()


def test_restart_after_sigkill_keeps_data(tmp_path):
    n = NodeProcess(tmp_path / "restart")
    try:
        r = client(n)
        for i in range(500):
            r.set(f"key{i}", f"value{i}")
    finally:
        n.kill()
    n2 = NodeProcess(tmp_path / "restart")
    try:
        r = client(n2)
        assert [r.get(f"key{i}") for i in range(500)] == [f"value{i}".encode() for i in range(500)]
    finally:
        n2.kill()
