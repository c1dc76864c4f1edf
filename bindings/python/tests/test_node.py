"""dkv.Node: configuration, start/stop/restart, context manager, errors."""

import os
import pathlib
import socket

import pytest

import dkv
from conftest import can_bind, free_port, thread_count, wait_until


def test_single_node_picks_a_port_and_keeps_it_across_restarts(tmp_path):
    node = dkv.Node(7, data_dir=tmp_path / "n", fsync="never")
    assert node.port == 0 and not node.running
    assert node.peer_address is None
    node.start()
    try:
        port = node.port
        assert port != 0 and node.running
        assert node.address == f"127.0.0.1:{port}"
        assert node.node_id == 7
        with dkv.Client(node.address) as c:
            c.put(b"k", b"before restart")
            assert c.status().node_id == 7
        node.stop()
        assert not node.running
        assert can_bind(port)
        node.start()
        assert node.port == port
        with dkv.Client(node.address) as c:
            # fsync="never", but stop() syncs the WAL: the write survives.
            assert c.get(b"k") == b"before restart"
    finally:
        node.stop()


def test_context_manager_starts_and_stops(tmp_path):
    base = thread_count()
    with dkv.Node(1, data_dir=str(tmp_path / "n"), fsync="never") as node:
        assert node.running
        port = node.port
        assert thread_count() > base
        assert not can_bind(port)
    assert not node.running
    assert can_bind(port)
    wait_until(lambda: thread_count() <= base, what="node threads to exit")


def test_context_manager_stops_on_exception(tmp_path):
    with pytest.raises(RuntimeError):
        with dkv.Node(1, data_dir=tmp_path / "n", fsync="never") as node:
            port = node.port
            raise RuntimeError("boom")
    assert not node.running
    assert can_bind(port)


def test_start_twice_is_an_error_and_stop_is_idempotent(tmp_path):
    node = dkv.Node(1, data_dir=tmp_path / "n", fsync="never")
    node.stop()  # never started: nothing to do
    node.start()
    with pytest.raises(dkv.InvalidArgument, match="already running"):
        node.start()
    node.stop()
    node.stop()


def test_explicit_port(tmp_path):
    port = free_port()
    with dkv.Node(1, port=port, data_dir=tmp_path / "n", fsync="never") as node:
        assert node.port == port
        with dkv.Client([f"localhost:{port}"]) as c:
            c.ping()


def test_port_in_use_is_an_io_error(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        node = dkv.Node(1, port=port, data_dir=tmp_path / "n")
        with pytest.raises(dkv.IoError) as e:
            node.start()
        assert isinstance(e.value, OSError)
        assert e.value.code == 5 and e.value.status == "IO"
        assert not node.running


def test_data_dir_property_and_default(tmp_path):
    node = dkv.Node(3, data_dir=tmp_path / "x")
    assert pathlib.Path(node.data_dir) == tmp_path / "x"
    assert pathlib.Path(dkv.Node(4).data_dir) == pathlib.Path("dkv-data/node-4")


def test_fsync_modes(tmp_path):
    for i, mode in enumerate(["always", "periodic", "never", "ALWAYS", True, False, 0.25, 1]):
        with dkv.Node(1, data_dir=tmp_path / f"n{i}", fsync=mode) as node:
            with dkv.Client(node.address) as c:
                c.put(b"k", b"v")
    with pytest.raises(dkv.InvalidArgument, match="fsync"):
        dkv.Node(1, data_dir=tmp_path / "bad", fsync="sometimes")
    with pytest.raises(dkv.InvalidArgument):
        dkv.Node(1, data_dir=tmp_path / "bad", fsync=-1.0)
    with pytest.raises(TypeError):
        dkv.Node(1, data_dir=tmp_path / "bad", fsync=[1])


def test_fsync_window(tmp_path):
    # Durable writes through a group commit window of 2 ms.
    with dkv.Node(1, data_dir=tmp_path / "w", fsync="always", fsync_window=0.002) as node:
        with dkv.Client(node.address) as c:
            for i in range(20):
                c.put(b"k%d" % i, b"v")
            assert c.get(b"k19") == b"v"
    with pytest.raises(dkv.InvalidArgument, match="fsync always only"):
        dkv.Node(1, data_dir=tmp_path / "bad", fsync="never", fsync_window=0.001)
    with pytest.raises(dkv.InvalidArgument, match="at most one second"):
        dkv.Node(1, data_dir=tmp_path / "bad", fsync_window=2)
    with pytest.raises(dkv.InvalidArgument):
        dkv.Node(1, data_dir=tmp_path / "bad", fsync_window=0)
    with pytest.raises(TypeError):
        dkv.Node(1, data_dir=tmp_path / "bad", fsync_window="1ms")


def test_cluster_as_a_list_of_members(tmp_path):
    p = [free_port() for _ in range(6)]
    forms = [
        [f"127.0.0.1:{p[0]}", f"127.0.0.1:{p[1]}"],
        [(1, f"127.0.0.1:{p[0]}"), (2, f"127.0.0.1:{p[1]}")],
        [(1, f"127.0.0.1:{p[0]}", p[2]), (2, f"127.0.0.1:{p[1]}", f"127.0.0.1:{p[3]}")],
    ]
    for members in forms:
        node = dkv.Node(2, cluster=members, data_dir=tmp_path / "n")
        assert node.port == p[1]
        assert node.cluster_addresses == [f"127.0.0.1:{p[0]}", f"127.0.0.1:{p[1]}"]
    # client port + 10000, wrapping past 65535 as cluster.conf does
    assert dkv.Node(2, cluster=forms[0]).peer_address == f"127.0.0.1:{(p[1] + 10000) % 65536}"
    assert dkv.Node(2, cluster=forms[2]).peer_address == f"127.0.0.1:{p[3]}"
    assert dkv.Node(1, cluster=forms[2]).peer_address == f"127.0.0.1:{p[2]}"


def test_cluster_conf_file(tmp_path):
    ports = [free_port() for _ in range(6)]
    conf = tmp_path / "cluster.conf"
    conf.write_text(
        "cluster_name = pyfile\nreplication_factor = 2\nwrite_quorum = 2\nread_quorum = 1\n"
        + "".join(f"node {i + 1} 127.0.0.1:{ports[i]} {ports[i + 3]}\n" for i in range(3))
    )
    nodes = [dkv.Node(i + 1, cluster=conf, data_dir=tmp_path / f"n{i}", fsync="never") for i in range(3)]
    try:
        for n in nodes:
            n.start()
        assert [n.port for n in nodes] == ports[:3]
        dkv.LocalCluster(nodes, str(tmp_path)).wait_until_up(timeout=20)
        with dkv.Client([n.address for n in nodes]) as c:
            c.put(b"k", b"v")
            status = c.status()
            assert status.cluster_name == "pyfile"
            assert (status.replication_factor, status.write_quorum, status.read_quorum) == (2, 2, 1)
            assert c.get(b"k") == b"v"
    finally:
        for n in nodes:
            n.stop()
    # str paths work too
    assert dkv.Node(1, cluster=str(conf)).port == ports[0]


def test_configuration_errors(tmp_path):
    conf = tmp_path / "bad.conf"
    conf.write_text("replication_factor = 3\nnode 1 127.0.0.1:7001\nbogus line\n")
    with pytest.raises(dkv.ConfigError, match="line 3") as e:
        dkv.Node(1, cluster=conf)
    assert e.value.code == 8
    with pytest.raises(dkv.ConfigError, match="cannot read"):
        dkv.Node(1, cluster=tmp_path / "missing.conf")
    members = ["127.0.0.1:17001", "127.0.0.1:17002", "127.0.0.1:17003"]
    with pytest.raises(dkv.ConfigError, match="not listed"):
        dkv.Node(4, cluster=members)
    with pytest.raises(dkv.ConfigError, match="must exceed"):
        dkv.Node(1, cluster=members, write_quorum=1, read_quorum=1)
    dkv.Node(1, cluster=members, write_quorum=1, read_quorum=1, allow_weak_quorums=True)
    with pytest.raises(dkv.ConfigError, match="more than"):
        dkv.Node(1, cluster=members, replication_factor=4)
    with pytest.raises(dkv.ConfigError, match="twice"):
        dkv.Node(1, cluster=[(1, "127.0.0.1:17001"), (1, "127.0.0.1:17002")])
    with pytest.raises(dkv.InvalidArgument, match="come from the file"):
        dkv.Node(1, cluster=conf, write_quorum=2)
    with pytest.raises(dkv.InvalidArgument, match="differs"):
        dkv.Node(1, port=1234, cluster=members)
    with pytest.raises(dkv.InvalidArgument, match="empty"):
        dkv.Node(1, cluster=[])
    with pytest.raises(dkv.InvalidArgument):
        dkv.Node(0)
    with pytest.raises(dkv.InvalidArgument):
        dkv.Node(-1)
    with pytest.raises(dkv.InvalidArgument):
        dkv.Node(1, port=70000)
    with pytest.raises(dkv.InvalidArgument):
        dkv.Node(1, replication_factor=0, cluster=members)
    with pytest.raises(dkv.InvalidArgument, match="host:port"):
        dkv.Node(1, cluster=["no-port-here"])
    with pytest.raises(dkv.InvalidArgument):
        dkv.Node(1, cluster=[(1, "127.0.0.1:17001", 99999)])
    with pytest.raises(TypeError):
        dkv.Node(1, cluster=[(1, 2, 3, 4)])
    with pytest.raises(TypeError):
        dkv.Node(1, cluster=[3.5])
    with pytest.raises(dkv.InvalidArgument):
        dkv.Node(1, bind="not an address at all")
    with pytest.raises(dkv.InvalidArgument):
        dkv.Node(1, heartbeat_interval=0)
    with pytest.raises(TypeError):
        dkv.Node(1, request_timeout="soon")


def test_protected_mode_refuses_a_public_bind_without_password(tmp_path):
    node = dkv.Node(1, bind="0.0.0.0", data_dir=tmp_path / "n")
    with pytest.raises(dkv.ConfigError, match="protected mode"):
        node.start()
    assert not node.running


def test_corrupt_snapshot_is_a_corruption_error(tmp_path):
    snapshots = tmp_path / "n" / "snapshots"
    snapshots.mkdir(parents=True)
    (snapshots / ("snapshot-%020d.dkv" % 5)).write_bytes(b"this is not a snapshot" * 10)
    node = dkv.Node(1, data_dir=tmp_path / "n")
    with pytest.raises(dkv.CorruptionError) as e:
        node.start()
    assert e.value.code == 6
    assert not node.running


def test_password(tmp_path):
    with dkv.Node(1, data_dir=tmp_path / "n", password="s3cret", fsync="never") as node:
        with dkv.Client(node.address) as anonymous:
            with pytest.raises(dkv.ServerError, match="NOAUTH") as e:
                anonymous.get(b"k")
            assert e.value.code == 10
        with dkv.Client(node.address, password="s3cret") as c:
            c.put(b"k", b"v")
            assert c.get(b"k") == b"v"


def test_repr(tmp_path):
    node = dkv.Node(2, port=free_port(), data_dir=tmp_path / "n")
    assert repr(node).startswith("dkv.Node(node_id=2, port=")
    assert "stopped" in repr(node)


def test_a_running_node_dropped_without_stop_releases_its_port(tmp_path):
    node = dkv.Node(1, data_dir=tmp_path / "n", fsync="never")
    node.start()
    port = node.port
    del node
    import gc

    gc.collect()
    wait_until(lambda: can_bind(port), what="the port to be released")


def test_data_dir_created(tmp_path):
    with dkv.Node(1, data_dir=tmp_path / "deep" / "er", fsync="never"):
        assert os.path.isdir(tmp_path / "deep" / "er" / "wal")
