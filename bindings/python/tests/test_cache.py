"""The cache-tier calls: time to live, expiry, counters, scans, flush, on
one in-process node and on a 3-node cluster."""

import time

import pytest

import dkv


@pytest.fixture(params=[1, 3])
def client(request):
    with dkv.local_cluster(request.param) as cluster:
        cluster.wait_until_up(timeout=30)
        with cluster.client() as c:
            yield c


def test_ttl_expire_persist(client):
    assert client.ttl(b"nope") is None
    client.put(b"session", b"data", ttl=100)
    assert 99 < client.ttl(b"session") <= 100
    assert client.expire(b"session", 200)
    assert 199 < client.ttl(b"session") <= 200
    assert client.persist(b"session")
    assert client.ttl(b"session") == -1.0
    assert not client.persist(b"session")
    assert not client.expire(b"nope", 10)
    client.put(b"brief", b"x", ttl=0.1)
    time.sleep(0.3)
    assert client.get(b"brief") is None
    with pytest.raises(dkv.InvalidArgument):
        client.put(b"k", b"v", ttl=0)
    with pytest.raises(TypeError):
        client.expire(b"k", "soon")


def test_incr(client):
    assert client.incr(b"hits") == 1
    assert client.incr(b"hits", 41) == 42
    assert client.incr(b"hits", -50) == -8
    client.put(b"text", b"abc")
    with pytest.raises(dkv.InvalidArgument, match="not an integer"):
        client.incr(b"text")


def test_scan_and_flush(client):
    for i in range(30):
        client.put(f"user:{i}".encode(), b"u")
    client.put(b"other", b"o")
    scan = client.scan(b"user:*", count=7)
    assert iter(scan) is scan
    keys = list(scan)
    assert sorted(keys) == sorted(f"user:{i}".encode() for i in range(30))
    assert len(keys) == len(set(keys))
    assert set(client.scan()) >= {b"other"}
    client.flush()
    assert list(client.scan()) == []
    assert client.get(b"other") is None
    client.put(b"after", b"kept")
    assert client.get(b"after") == b"kept"
