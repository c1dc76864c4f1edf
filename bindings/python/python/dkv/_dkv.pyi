"""Type stubs of the Rust extension ``dkv._dkv`` (see ``src/`` of the package)."""

import os
import pathlib
from types import TracebackType
from typing import Any, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple, Type, Union, final

__all__ = [
    "DkvError",
    "InvalidArgument",
    "Unavailable",
    "Timeout",
    "IoError",
    "CorruptionError",
    "ConfigError",
    "ProtocolError",
    "ServerError",
    "Node",
    "Client",
    "KeyScan",
    "ClusterStatus",
    "PeerStatus",
    "ONE",
    "QUORUM",
    "ALL",
    "__version__",
]

__version__: str

ONE: int
QUORUM: int
ALL: int

_Key = Union[bytes, bytearray, memoryview, str]
_Value = Union[bytes, bytearray, memoryview]
#: ``dkv.ONE``, ``dkv.QUORUM``, ``dkv.ALL``, a replica count from 1, or
#: ``"one"`` / ``"quorum"`` / ``"all"`` / a count as text.
_Level = Union[int, str, None]
_Member = Union[str, Tuple[int, str], Tuple[int, str, Union[int, str]]]

class DkvError(Exception):
    """The base class of every dkv error."""

    code: Optional[int]
    status: Optional[str]

class InvalidArgument(DkvError, ValueError):
    code: int
    status: str

class Unavailable(DkvError):
    code: int
    status: str

class Timeout(DkvError, TimeoutError):
    code: int
    status: str

class IoError(DkvError, OSError):
    code: int
    status: str

class CorruptionError(DkvError):
    code: int
    status: str

class ConfigError(DkvError):
    code: int
    status: str

class ProtocolError(DkvError):
    code: int
    status: str

class ServerError(DkvError):
    code: int
    status: str

@final
class PeerStatus:
    """One peer as the answering node sees it."""

    @property
    def node_id(self) -> int: ...
    @property
    def up(self) -> bool: ...
    @property
    def connected(self) -> bool: ...
    @property
    def hints_pending(self) -> int: ...

@final
class ClusterStatus:
    """A node's view of its cluster, from ``Client.status()``."""

    @property
    def node_id(self) -> int: ...
    @property
    def cluster_name(self) -> str: ...
    @property
    def replication_factor(self) -> int: ...
    @property
    def write_quorum(self) -> int: ...
    @property
    def read_quorum(self) -> int: ...
    @property
    def peers(self) -> List[PeerStatus]: ...
    @property
    def hints_pending(self) -> int: ...
    def peer(self, node_id: int) -> Optional[PeerStatus]: ...

@final
class Node:
    """A dkv node running in this process."""

    def __new__(
        cls,
        node_id: int = 1,
        port: Optional[int] = None,
        cluster: Union[str, "os.PathLike[str]", Sequence[_Member], None] = None,
        data_dir: Union[str, "os.PathLike[str]", None] = None,
        *,
        fsync: Union[str, bool, float, None] = None,
        fsync_window: Optional[float] = None,
        bind: Optional[str] = None,
        password: Optional[str] = None,
        replication_factor: Optional[int] = None,
        write_quorum: Optional[int] = None,
        read_quorum: Optional[int] = None,
        cluster_name: Optional[str] = None,
        virtual_nodes: Optional[int] = None,
        allow_weak_quorums: bool = False,
        request_timeout: Optional[float] = None,
        heartbeat_interval: Optional[float] = None,
        failure_timeout: Optional[float] = None,
        cluster_secret: Optional[str] = None,
    ) -> "Node": ...
    def start(self) -> None: ...
    def stop(self) -> None: ...
    @property
    def running(self) -> bool: ...
    @property
    def node_id(self) -> int: ...
    @property
    def port(self) -> int: ...
    @property
    def address(self) -> str: ...
    @property
    def peer_address(self) -> Optional[str]: ...
    @property
    def data_dir(self) -> "pathlib.Path": ...
    @property
    def cluster_addresses(self) -> List[str]: ...
    def __enter__(self) -> "Node": ...
    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> bool: ...

@final
class KeyScan(Iterator[bytes]):
    """The keys of a scan, each once, fetched a page at a time."""

    def __iter__(self) -> KeyScan: ...
    def __next__(self) -> bytes: ...

@final
class Client:
    """A client of a dkv cluster, safe to share between threads."""

    def __new__(
        cls,
        addresses: Union[str, Iterable[str]],
        *,
        timeout: float = 5.0,
        connect_timeout: float = 2.0,
        password: Optional[str] = None,
        max_connections: int = 16,
    ) -> "Client": ...
    def get(self, key: _Key, *, consistency: _Level = None, timeout: Optional[float] = None) -> Optional[bytes]: ...
    def put(
        self,
        key: _Key,
        value: _Value,
        *,
        ttl: Optional[float] = None,
        consistency: _Level = None,
        timeout: Optional[float] = None,
    ) -> None: ...
    def expire(self, key: _Key, ttl: float, *, consistency: _Level = None, timeout: Optional[float] = None) -> bool: ...
    def persist(self, key: _Key, *, consistency: _Level = None, timeout: Optional[float] = None) -> bool: ...
    def ttl(self, key: _Key, *, consistency: _Level = None, timeout: Optional[float] = None) -> Optional[float]: ...
    def incr(
        self, key: _Key, amount: int = 1, *, consistency: _Level = None, timeout: Optional[float] = None
    ) -> int: ...
    def scan(self, pattern: Optional[_Key] = None, *, count: int = 1000, timeout: Optional[float] = None) -> KeyScan: ...
    def flush(self, *, timeout: Optional[float] = None) -> None: ...
    def delete(self, key: _Key, *, consistency: _Level = None, timeout: Optional[float] = None) -> bool: ...
    def get_many(
        self, keys: Iterable[_Key], *, consistency: _Level = None, timeout: Optional[float] = None
    ) -> List[Optional[bytes]]: ...
    def put_many(
        self,
        items: Union[Mapping[Any, _Value], Iterable[Tuple[_Key, _Value]]],
        *,
        consistency: _Level = None,
        timeout: Optional[float] = None,
    ) -> None: ...
    def status(self, *, timeout: Optional[float] = None) -> ClusterStatus: ...
    def ping(self, *, timeout: Optional[float] = None) -> None: ...
    def close(self) -> None: ...
    @property
    def closed(self) -> bool: ...
    @property
    def addresses(self) -> List[str]: ...
    def __enter__(self) -> "Client": ...
    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> bool: ...
