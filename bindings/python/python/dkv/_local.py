"""``local_cluster``: an in-process dkv cluster on free loopback ports."""

import contextlib
import os
import socket
import tempfile
import time
from typing import Any, Iterator, List, Optional

from dkv._dkv import Client, IoError, Node, Timeout

#: Timers that make failure detection quick in tests (seconds).
_FAST_TIMERS = {
    "heartbeat_interval": 0.1,
    "failure_timeout": 1.0,
    "request_timeout": 2.0,
}


def _free_ports(count: int) -> List[int]:
    """``count`` distinct loopback ports that were free a moment ago."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


class LocalCluster:
    """A cluster of :class:`dkv.Node` objects running in this process.

    Made by :func:`local_cluster`. ``nodes[i]`` has id ``i + 1`` and
    client address ``addresses[i]``; each node can be stopped and started
    again (on the same ports and data directory) to simulate a failure.
    """

    def __init__(self, nodes: List[Node], directory: str) -> None:
        #: The nodes, in id order (``nodes[0]`` is node 1).
        self.nodes: List[Node] = nodes
        #: Their client addresses, ``"127.0.0.1:port"``, in the same order.
        self.addresses: List[str] = [n.address for n in nodes]
        #: The directory holding every node's data (``node-<id>/``).
        self.directory: str = directory

    def node(self, node_id: int) -> Node:
        """The node with id ``node_id``."""
        for n in self.nodes:
            if n.node_id == node_id:
                return n
        raise KeyError(node_id)

    def client(self, **options: Any) -> Client:
        """A :class:`dkv.Client` over every node's address (``options`` go
        to its constructor)."""
        return Client(self.addresses, **options)

    def running(self) -> List[Node]:
        """The nodes running now."""
        return [n for n in self.nodes if n.running]

    def _poll(self, what: str, check: Any, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last: Any = None
        while True:
            running = self.running()
            try:
                ok = True
                for node in running:
                    with Client([node.address], timeout=2.0, connect_timeout=1.0) as c:
                        last = c.status(timeout=2.0)
                    if not check(node, last, running):
                        ok = False
                        break
                if ok:
                    return
            except (IoError, Timeout) as e:  # a node still starting
                last = e
            if time.monotonic() >= deadline:
                raise Timeout(f"local cluster: timed out after {timeout}s waiting for {what}; last: {last!r}")
            time.sleep(0.05)

    def wait_until_up(self, timeout: float = 20.0) -> None:
        """Waits until every running node sees every other running node up
        and connected. Raises :class:`dkv.Timeout` after ``timeout``
        seconds."""

        def all_up(node: Node, status: Any, running: List[Node]) -> bool:
            for other in running:
                if other.node_id == node.node_id:
                    continue
                peer = status.peer(other.node_id)
                if peer is None or not (peer.up and peer.connected):
                    return False
            return True

        self._poll("every running node to see the others up", all_up, timeout)

    def wait_for_hints(self, timeout: float = 20.0) -> None:
        """Waits until no running node holds hints (``hints_pending == 0``),
        i.e. hinted handoff has delivered everything. Raises
        :class:`dkv.Timeout` after ``timeout`` seconds."""
        self._poll("hints to drain", lambda _n, s, _r: s.hints_pending == 0, timeout)

    def stop(self) -> None:
        """Stops every node (those already stopped are left alone)."""
        errors = []
        for n in self.nodes:
            try:
                n.stop()
            except Exception as e:  # keep stopping the others
                errors.append(e)
        if errors:
            raise errors[0]

    def __len__(self) -> int:
        return len(self.nodes)

    def __repr__(self) -> str:
        return f"LocalCluster(addresses={self.addresses!r}, running={[n.node_id for n in self.running()]!r})"


@contextlib.contextmanager
def local_cluster(
    n: int = 3,
    *,
    directory: Optional[str] = None,
    fsync: Any = "never",
    wait: bool = True,
    start_timeout: float = 20.0,
    **options: Any,
) -> Iterator[LocalCluster]:
    """Starts ``n`` nodes of one cluster in this process and yields a
    :class:`LocalCluster`; stops them and deletes their data on exit.

    Every node listens on ``127.0.0.1``: a free client port and a free
    peer port each, and data under ``directory/node-<id>`` (``directory``
    defaults to a new temporary directory, deleted on exit; one given by
    the caller is kept). N defaults to ``min(3, n)`` and W and R to a
    majority. ``options`` are passed to every :class:`dkv.Node`
    (``replication_factor``, ``write_quorum``, ``read_quorum``,
    ``password``, ...); the failure detector's timers default to fast
    values for tests (heartbeat every 0.1 s, down after 1 s, requests
    time out after 2 s) and ``fsync`` to ``"never"``.

    With ``wait`` (the default) it returns once every node sees the
    others up. Ports are picked free just before the nodes bind them; if
    another process takes one in between, it retries with new ports (up
    to three times).
    """
    if n < 1:
        raise ValueError("a cluster needs at least one node")
    settings = {**_FAST_TIMERS, **options}
    temp = None
    if directory is None:
        temp = tempfile.TemporaryDirectory(prefix="dkv-local-")
        directory = temp.name
    nodes: List[Node] = []
    try:
        for attempt in range(3):
            ports = _free_ports(2 * n)
            members = [(i + 1, f"127.0.0.1:{ports[2 * i]}", ports[2 * i + 1]) for i in range(n)]
            nodes = [
                Node(
                    node_id,
                    cluster=members,
                    data_dir=os.path.join(directory, f"node-{node_id}"),
                    fsync=fsync,
                    **settings,
                )
                for node_id, _, _ in members
            ]
            try:
                for node in nodes:
                    node.start()
                break
            except IoError:
                for node in nodes:
                    node.stop()
                if attempt == 2:
                    raise
        cluster = LocalCluster(nodes, directory)
        if wait and n > 1:
            cluster.wait_until_up(start_timeout)
        yield cluster
    finally:
        try:
            LocalCluster(nodes, directory).stop()
        finally:
            if temp is not None:
                temp.cleanup()
