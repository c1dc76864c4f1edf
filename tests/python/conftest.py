"""Fixtures: dkv-node processes on free loopback ports."""

import os
import signal
import socket
import subprocess
import time

import pytest

NODE_BIN = os.environ.get("DKV_NODE_BIN", os.path.join(os.path.dirname(__file__), "..", "..", "target", "debug", "dkv-node"))


_NEXT_PORT = [0]


def free_port() -> int:
    """A free port below the kernel's ephemeral range (so no outgoing
    connection takes it before a node binds it), from a per-process
    sequence (so two fixtures never pick the same one)."""
    base = os.getpid() * 7919
    for _ in range(12_000):
        _NEXT_PORT[0] += 1
        port = 20_000 + (base + _NEXT_PORT[0] * 13) % 12_000
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port between 20000 and 32000")


# Every process started, so that none outlives the test session.
_STARTED = []


def pytest_sessionfinish(session, exitstatus):
    for proc in _STARTED:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=20)


class NodeProcess:
    """A dkv-node child process; waits until it accepts connections."""

    def __init__(self, data_dir, *extra):
        self.port = free_port()
        self.proc = subprocess.Popen(
            [NODE_BIN, "--port", str(self.port), "--data-dir", str(data_dir), *extra],
            stdout=subprocess.DEVNULL,
            env={**os.environ, "RUST_LOG": "warn"},
        )
        _STARTED.append(self.proc)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("dkv-node did not start")
                time.sleep(0.02)

    def kill(self, sig=signal.SIGKILL):
        self.proc.send_signal(sig)
        self.proc.wait(timeout=20)


@pytest.fixture
def node(tmp_path):
    n = NodeProcess(tmp_path / "node")
    yield n
    if n.proc.poll() is None:
        n.kill()
