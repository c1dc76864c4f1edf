"""What applications do through the libraries people reach Redis with:
Django's cache API on its Redis backend, redis-py's Lock (with dkv's
script-free subclass), and a session store (SET EX, EXPIRE, SCAN MATCH).
Each flow runs against a node alone (a dkv-node process) and against a
3-node cluster (dkv.local_cluster, N=3 W=2 R=2), through node 1."""

import time

import pytest
import redis
from redis.exceptions import LockError, LockNotOwnedError

import dkv
from dkv.redis_lock import Lock
from conftest import NodeProcess


@pytest.fixture(params=["alone", "cluster"])
def address(request, tmp_path):
    if request.param == "alone":
        node = NodeProcess(tmp_path / "node", "--fsync", "never")
        yield ("127.0.0.1", node.port)
        node.kill()
    else:
        with dkv.local_cluster(3) as cluster:
            cluster.wait_until_up(timeout=30)
            host, port = cluster.addresses[0].rsplit(":", 1)
            yield (host, int(port))


def client(address):
    host, port = address
    return redis.Redis(host=host, port=port, socket_timeout=20)


def django_cache(address):
    from django.conf import settings

    if not settings.configured:
        settings.configure(CACHES={})
        import django

        django.setup()
    from django.core.cache.backends.redis import RedisCache

    host, port = address
    return RedisCache(f"redis://{host}:{port}", {"TIMEOUT": 300})


def test_django_cache_api(address):
    cache = django_cache(address)
    r = client(address)
    cache.set("greeting", {"text": "hello"}, timeout=30)
    assert cache.get("greeting") == {"text": "hello"}
    assert cache.get("missing", default="fallback") == "fallback"
    # add: SET NX.
    assert cache.add("greeting", "other") is False
    assert cache.add("fresh", "value", timeout=30) is True
    # incr/decr on integers (stored as plain digits).
    cache.set("hits", 1, timeout=None)
    assert cache.incr("hits") == 2
    assert cache.incr("hits", 10) == 12
    assert cache.decr("hits", 2) == 10
    with pytest.raises(ValueError):
        cache.incr("no-such-counter")
    # touch: EXPIRE (or PERSIST for timeout=None).
    assert cache.touch("greeting", 100) is True
    assert 95 <= r.ttl(cache.make_key("greeting")) <= 100
    assert cache.touch("greeting", None) is True
    assert r.ttl(cache.make_key("greeting")) == -1
    assert cache.touch("absent", 10) is False
    # set_many / get_many (a MULTI/EXEC pipeline) and delete_many.
    cache.set_many({"a": 1, "b": [2], "c": "three"}, timeout=30)
    assert cache.get_many(["a", "b", "c", "zz"]) == {"a": 1, "b": [2], "c": "three"}
    cache.delete_many(["a", "b"])
    assert cache.get_many(["a", "b", "c"]) == {"c": "three"}
    assert cache.delete("c") is True
    assert cache.delete("c") is False
    # Expiry.
    cache.set("brief", "x", timeout=1)
    assert cache.get("brief") == "x"
    time.sleep(1.3)
    assert cache.get("brief") is None
    # clear: FLUSHDB.
    cache.clear()
    assert cache.get("fresh") is None
    assert cache.get("hits") is None
    cache.set("after-clear", "kept")
    assert cache.get("after-clear") == "kept"


def test_redis_py_lock_acquire_extend_release(address):
    r = client(address)
    lock = r.lock("resource", timeout=2, lock_class=Lock)
    assert lock.acquire(blocking=False)
    assert lock.locked() and lock.owned()
    rival = r.lock("resource", timeout=2, lock_class=Lock)
    assert not rival.acquire(blocking=False)
    # extend adds to the expiry; replace_ttl sets it.
    assert lock.extend(3)
    assert 4_000 < r.pttl("resource") <= 5_000
    assert lock.extend(10, replace_ttl=True)
    assert 9_000 < r.pttl("resource") <= 10_000
    assert lock.reacquire()
    assert 1_000 < r.pttl("resource") <= 2_000
    lock.release()
    assert not lock.locked()
    with pytest.raises(LockNotOwnedError):
        rival.do_release(b"someone-else")
    with pytest.raises(LockError):
        lock.release()
    # The rival gets it once released, and a lock left alone expires.
    assert rival.acquire(blocking=False)
    time.sleep(2.3)
    assert not rival.locked()
    with pytest.raises(LockNotOwnedError):
        rival.extend(1)
    # As a context manager, blocking until a short-lived holder lets go.
    short = r.lock("resource", timeout=0.5, lock_class=Lock)
    assert short.acquire(blocking=False)
    with r.lock("resource", timeout=2, blocking_timeout=3, lock_class=Lock):
        assert r.get("resource") is not None
    assert not r.exists("resource")


def test_session_store_flow(address):
    r = client(address)
    for i in range(40):
        r.set(f"session:{i}", f"data-{i}", ex=1800)
    r.set("other:1", "x")
    # Touching a session pushes its expiry out.
    assert r.expire("session:7", 3600)
    assert 3590 <= r.ttl("session:7") <= 3600
    assert 1790 <= r.ttl("session:8") <= 1800
    # Every session is found by SCAN MATCH, at least once.
    found = set(r.scan_iter(match="session:*", count=7))
    assert found == {f"session:{i}".encode() for i in range(40)}
    assert set(r.scan_iter(match="other:*")) == {b"other:1"}
    # Logging out deletes; a short-lived one expires.
    assert r.delete("session:3") == 1
    r.set("session:short", "x", px=300)
    time.sleep(0.5)
    assert r.get("session:short") is None
    assert r.get("session:3") is None
    remaining = set(r.scan_iter(match="session:*"))
    assert len(remaining) == 39
