"""Fixtures for the dkv package's tests: in-process nodes and clusters on
free 127.0.0.1 ports, and fake servers that misbehave on purpose."""

import os
import socket
import threading
import time

import pytest

import dkv


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def can_bind(port: int) -> bool:
    """Whether a server could listen on 127.0.0.1:port right now: nothing
    listens there. SO_REUSEADDR, as every server sets (dkv's listeners
    included), lets the bind ignore connections of the old listener that
    linger in TIME_WAIT."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            s.listen(1)
            return True
        except OSError:
            return False


def thread_count() -> int:
    """OS threads of this process (Rust threads included)."""
    return len(os.listdir("/proc/self/task"))


def wait_until(check, timeout=10.0, what="condition"):
    """Polls `check` every 20 ms until it is true; fails after `timeout`."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


@pytest.fixture
def node(tmp_path):
    """One running node (N = W = R = 1) on a free port."""
    with dkv.Node(1, data_dir=tmp_path / "node", fsync="never") as n:
        yield n


@pytest.fixture
def client(node):
    with dkv.Client([node.address], timeout=5.0) as c:
        yield c


@pytest.fixture
def cluster():
    """Three running nodes, N=3 W=2 R=2."""
    with dkv.local_cluster(3) as c:
        yield c


class FakeServer:
    """A TCP server on 127.0.0.1 that accepts and then either stays silent
    or answers every read with `reply`; for errors a real node never
    gives."""

    def __init__(self, reply=None):
        self.reply = reply
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.1)
        self.address = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.stopping = False
        self.conns = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        deadline = time.monotonic() + 60  # bounded, whatever the test does
        while not self.stopping and time.monotonic() < deadline:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.conns.append(conn)
            if self.reply is not None:
                threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn):
        conn.settimeout(0.2)
        deadline = time.monotonic() + 30
        while not self.stopping and time.monotonic() < deadline:
            try:
                data = conn.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            if not data:
                return
            try:
                conn.sendall(self.reply)
            except OSError:
                return

    def close(self):
        self.stopping = True
        self.thread.join(timeout=5)
        for c in self.conns:
            c.close()
        self.sock.close()


@pytest.fixture
def silent_server():
    s = FakeServer()
    yield s
    s.close()
