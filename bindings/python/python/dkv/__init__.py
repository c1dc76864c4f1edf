"""dkv: a Dynamo-style distributed in-memory key-value store, from Python.

>>> import dkv
>>> with dkv.local_cluster(3) as cluster:
...     client = dkv.Client(cluster.addresses)
...     client.put(b"greeting", b"hello", consistency=dkv.QUORUM)
...     client.get(b"greeting", consistency=dkv.ALL)
b'hello'

The classes come from the Rust extension ``dkv._dkv`` (pyo3), which runs
the same core as ``dkv-node``:

* :class:`Node` runs a node inside this process (``start()``, ``stop()``,
  context manager), restartable on its data directory.
* :func:`local_cluster` starts an in-process cluster on free loopback
  ports in a temporary directory, for tests and examples.
* :class:`Client` talks RESP2 to any dkv cluster; it is safe to share
  between threads and releases the GIL while it waits.
* Every error is a :class:`DkvError`; its subclasses carry the numeric
  ``code`` of the C ABI's ``dkv_status``.
"""

import enum as _enum

from dkv._dkv import (
    ALL as _ALL,
    ONE as _ONE,
    QUORUM as _QUORUM,
    Client,
    ClusterStatus,
    ConfigError,
    CorruptionError,
    DkvError,
    InvalidArgument,
    IoError,
    KeyScan,
    Node,
    PeerStatus,
    ProtocolError,
    ServerError,
    Timeout,
    Unavailable,
    __version__,
)
from dkv._local import LocalCluster, local_cluster


class Consistency(_enum.IntEnum):
    """How many replicas a request waits for.

    The values are the C ABI's ``DKV_CONSISTENCY_*``; wherever a level is
    taken, a positive ``int`` (an exact replica count, 1..N) or the text
    ``"one"``, ``"quorum"``, ``"all"`` is accepted too.
    """

    #: One replica: the fastest, and the first to see stale data.
    ONE = _ONE
    #: The configured quorum: W replicas for writes, R for reads (default).
    QUORUM = _QUORUM
    #: All N replicas.
    ALL = _ALL


#: One replica.
ONE = Consistency.ONE
#: The configured quorum (W for writes, R for reads); the default.
QUORUM = Consistency.QUORUM
#: All N replicas.
ALL = Consistency.ALL

__all__ = [
    "ALL",
    "ONE",
    "QUORUM",
    "Client",
    "ClusterStatus",
    "ConfigError",
    "Consistency",
    "CorruptionError",
    "DkvError",
    "InvalidArgument",
    "IoError",
    "KeyScan",
    "LocalCluster",
    "Node",
    "PeerStatus",
    "ProtocolError",
    "ServerError",
    "Timeout",
    "Unavailable",
    "__version__",
    "local_cluster",
]
