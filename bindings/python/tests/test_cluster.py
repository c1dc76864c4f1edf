"""dkv.local_cluster: three nodes in this process; cleanup, one node of
three stopped and restarted, and concurrent use from 8 Python threads."""

import os
import threading
import time

import pytest
import redis

import dkv
from conftest import can_bind, free_port, thread_count, wait_until


def ports_of(cluster):
    out = []
    for n in cluster.nodes:
        out.append(n.port)
        out.append(int(n.peer_address.rsplit(":", 1)[1]))
    return out


def local(node, key):
    """The node's own copy of `key` (DKV.LOCAL), through redis-py."""
    r = redis.Redis(host="127.0.0.1", port=node.port, socket_timeout=10)
    try:
        return r.execute_command("DKV.LOCAL", key)
    finally:
        r.close()


def test_local_cluster_shape(cluster):
    assert len(cluster) == 3
    assert [n.node_id for n in cluster.nodes] == [1, 2, 3]
    assert cluster.addresses == [n.address for n in cluster.nodes]
    assert all(a.startswith("127.0.0.1:") for a in cluster.addresses)
    assert all(n.running for n in cluster.nodes)
    assert cluster.node(2) is cluster.nodes[1]
    with pytest.raises(KeyError):
        cluster.node(9)
    for n in cluster.nodes:
        assert os.path.isdir(os.path.join(cluster.directory, f"node-{n.node_id}", "wal"))
    with cluster.client() as c:
        status = c.status()
        assert (status.replication_factor, status.write_quorum, status.read_quorum) == (3, 2, 2)
        assert [p.node_id for p in status.peers] == [2, 3]
        assert all(p.up and p.connected for p in status.peers)
    assert "LocalCluster" in repr(cluster)


def test_cleanup_frees_ports_threads_and_directory(tmp_path):
    base = thread_count()
    with dkv.local_cluster(3) as cluster:
        ports = ports_of(cluster)
        directory = cluster.directory
        with cluster.client() as c:
            c.put(b"k", b"v")
        assert thread_count() > base
        assert not any(can_bind(p) for p in ports[::2])
    assert all(not n.running for n in cluster.nodes)
    # Every client and peer port can be bound again at once.
    assert all(can_bind(p) for p in ports)
    assert not os.path.exists(directory)
    wait_until(lambda: thread_count() <= base, what="the cluster's threads to exit")
    # A new node can take over a freed port.
    with dkv.Node(1, port=ports[0], data_dir=os.path.join(str(tmp_path), "again"), fsync="never") as n:
        with dkv.Client(n.address) as c:
            c.ping()


def test_cleanup_after_an_exception_in_the_block():
    with pytest.raises(RuntimeError):
        with dkv.local_cluster(3) as cluster:
            ports = ports_of(cluster)
            cluster.nodes[1].stop()  # some already stopped: fine too
            raise RuntimeError("boom")
    assert all(can_bind(p) for p in ports)


def test_options_and_kept_directory(tmp_path):
    with dkv.local_cluster(2, directory=str(tmp_path), replication_factor=2, write_quorum=1,
                           read_quorum=2, cluster_name="two") as cluster:
        with cluster.client() as c:
            s = c.status()
            assert (s.cluster_name, s.replication_factor, s.write_quorum, s.read_quorum) == ("two", 2, 1, 2)
    assert (tmp_path / "node-1").is_dir()  # a caller's directory is kept
    with pytest.raises(ValueError):
        with dkv.local_cluster(0):
            pass


def test_single_node_cluster():
    with dkv.local_cluster(1) as cluster:
        with cluster.client() as c:
            c.put(b"k", b"v", consistency=dkv.ALL)
            assert c.get(b"k", consistency=dkv.ALL) == b"v"


def test_consistency_levels_on_three_nodes(cluster):
    with cluster.client() as c:
        for level in [dkv.ONE, dkv.QUORUM, dkv.ALL, 1, 2, 3]:
            key = f"k{level}".encode()
            c.put(key, b"v", consistency=level)
            assert c.get(key, consistency=dkv.ALL) == b"v"
        with pytest.raises(dkv.InvalidArgument):
            c.get(b"k1", consistency=4)
        # A write at ALL is on every replica once it returns.
        c.put(b"everywhere", b"yes", consistency=dkv.ALL)
        assert [local(n, b"everywhere") for n in cluster.nodes] == [b"yes"] * 3


def test_one_node_of_three_stopped(cluster):
    with cluster.client(timeout=5.0) as c:
        c.put_many({f"before{i}": b"old" for i in range(100)}, consistency=dkv.ALL)
        down = cluster.nodes[2]
        down.stop()

        # The survivors notice (writes made before they do reach only two
        # replicas and no hint: read repair heals those).
        def sees_down():
            with dkv.Client(cluster.addresses[0]) as first:
                s = first.status()
            return s.peer(3) is not None and not s.peer(3).up

        wait_until(sees_down, timeout=20, what="node 3 to be marked down")
        # Quorum reads and writes carry on with two of three replicas.
        assert c.get(b"before7", consistency=dkv.QUORUM) == b"old"
        assert c.get_many([f"before{i}" for i in range(100)]) == [b"old"] * 100
        for i in range(100):
            c.put(f"during{i}", b"new", consistency=dkv.QUORUM)
        assert c.get(b"during5", consistency=2) == b"new"
        assert c.delete(b"before0") is True
        # ALL (and 3) cannot be met while a replica is down.
        with pytest.raises(dkv.Unavailable):
            c.get(b"before1", consistency=dkv.ALL)
        with pytest.raises(dkv.Unavailable):
            c.put(b"x", b"y", consistency=3)

        # The survivors hold hints for the missing replica (INFO is
        # refreshed every few tens of milliseconds: poll).
        def hints_held():
            total = 0
            for a in cluster.addresses[:2]:
                with dkv.Client(a) as one:
                    total += one.status().hints_pending
            return total > 0

        wait_until(hints_held, timeout=10, what="hints for node 3")
        with pytest.raises(dkv.Unavailable):
            dkv.Client(down.address, connect_timeout=0.5)

        # Back on the same ports and data: hints drain, and every replica
        # has every write.
        down.start()
        cluster.wait_until_up(timeout=20)
        cluster.wait_for_hints(timeout=30)
        for i in range(0, 99, 9):
            assert local(down, f"during{i}".encode()) == b"new"
            assert local(down, f"before{i + 1}".encode()) == b"old"
        assert local(down, b"before0") is None
        assert c.get(b"during99", consistency=dkv.ALL) == b"new"


def test_client_fails_over_when_its_node_stops(cluster):
    with cluster.client() as c:
        c.put(b"k", b"v")
        cluster.nodes[0].stop()
        assert c.get(b"k") == b"v"  # reconnects to node 2
        c.put(b"k2", b"v2")


def run_threads(count, target):
    errors = []

    def wrapped(i):
        try:
            target(i)
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=wrapped, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    assert not errors, errors[:3]


def test_eight_threads_share_one_client(cluster):
    with cluster.client() as c:
        def work(i):
            for j in range(150):
                key = f"t{i}-{j}".encode()
                c.put(key, f"{i}:{j}".encode())
                assert c.get(key) == f"{i}:{j}".encode()
            c.put_many({f"m{i}-{j}": b"x" for j in range(50)})
            assert c.get_many([f"m{i}-{j}" for j in range(50)]) == [b"x"] * 50
            assert c.delete(f"t{i}-0") is True

        run_threads(8, work)
        assert c.get_many([f"t{i}-149" for i in range(8)]) == [f"{i}:149".encode() for i in range(8)]
        assert c.get(b"t3-0") is None


def test_eight_threads_with_their_own_clients_while_a_node_restarts(cluster):
    def work(i):
        with cluster.client(timeout=5.0) as c:
            for j in range(100):
                c.put(f"r{i}-{j}", b"v", consistency=dkv.QUORUM)
                assert c.get(f"r{i}-{j}", consistency=dkv.QUORUM) == b"v"

    stopper = threading.Thread(target=lambda: (cluster.nodes[1].stop(), cluster.nodes[1].start()))
    stopper.start()
    run_threads(8, work)
    stopper.join(timeout=60)
    cluster.wait_until_up(timeout=20)
    cluster.wait_for_hints(timeout=30)
    with cluster.client() as c:
        keys = [f"r{i}-{j}" for i in range(8) for j in range(100)]
        assert c.get_many(keys, consistency=dkv.ALL) == [b"v"] * len(keys)



def test_nodes_link_only_with_the_same_cluster_secret(tmp_path):
    with pytest.raises(ValueError):
        dkv.Node(1, cluster_secret="")
    # Nodes of one process share its made-up secret (the cluster fixture
    # links); a node given another secret is refused by its peer.
    ports = [free_port() for _ in range(4)]
    members = [(1, f"127.0.0.1:{ports[0]}", ports[1]), (2, f"127.0.0.1:{ports[2]}", ports[3])]
    common = dict(cluster=members, fsync="never", replication_factor=2, write_quorum=1,
                  read_quorum=2, heartbeat_interval=0.1, failure_timeout=1.0)
    with dkv.Node(1, data_dir=tmp_path / "a", cluster_secret="one secret", **common) as a, \
            dkv.Node(2, data_dir=tmp_path / "b", cluster_secret="another", **common):
        time.sleep(1.5)
        with dkv.Client(a.address) as c:
            assert not any(p.connected for p in c.status().peers)
    with dkv.Node(1, data_dir=tmp_path / "c", cluster_secret="shared", **common) as a, \
            dkv.Node(2, data_dir=tmp_path / "d", cluster_secret="shared", **common):
        with dkv.Client(a.address) as c:
            wait_until(lambda: all(p.connected for p in c.status().peers),
                       what="two nodes with one secret to link")
