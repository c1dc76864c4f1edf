//! `dkv.Node`: a dkv node running inside this Python process.
//!
//! The configuration is built and checked when the object is created;
//! `start()` and `stop()` may then alternate any number of times, each
//! start reopening the same data directory on the same ports (a node
//! first started on port 0 keeps the port it was given). Both release
//! the GIL. The handle lock is only taken with the GIL released, except
//! by the cheap getters, which never wait on it for long: `start` and
//! `stop` hold it across their work, so a getter called meanwhile waits
//! for them.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use dkv::config::cluster_conf::PEER_PORT_OFFSET;
use dkv::config::{ClusterConf, NodeAddr};
use dkv::server::{self, Server, ServerConfig};
use dkv::wal::FsyncMode;
use dkv::NodeId;
use parking_lot::Mutex;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyFloat, PyInt, PyString, PyTuple};

use crate::args;
use crate::errors::{error, from_node, invalid, Kind};

/// A dkv node running in this process: a store, its WAL and snapshots
/// under ``data_dir``, served over RESP2 on ``127.0.0.1:port``.
///
/// ``Node(node_id=1, port=None, cluster=None, data_dir=None, *,
/// fsync="always", fsync_window=None, bind=None, password=None,
/// replication_factor=None, write_quorum=None, read_quorum=None,
/// cluster_name=None, virtual_nodes=None, allow_weak_quorums=False,
/// request_timeout=None, heartbeat_interval=None, failure_timeout=None,
/// cluster_secret=None)``
///
/// ``cluster`` is one of:
///
/// * ``None``: a single node (N = W = R = 1).
/// * a path (``str`` or ``os.PathLike``) to a ``cluster.conf`` file; the
///   quorum settings then come from the file.
/// * a list of members, each either ``"host:port"`` (ids 1, 2, ... in
///   list order, peer port = client port + 10000), ``(id, "host:port")``
///   (same peer port rule) or ``(id, "host:port", peer)`` where ``peer``
///   is a port number on the same host or a ``"host:port"`` string. N
///   defaults to ``min(3, len(cluster))`` and W and R to a majority of N,
///   unless given.
///
/// ``port`` defaults to this node's entry in ``cluster`` (and must match
/// it if both are given), or 0 for a single node, which picks a free port
/// on the first start and keeps it. ``data_dir`` defaults to
/// ``./dkv-data/node-<id>``. ``fsync`` is ``"always"`` (acknowledge after
/// fsync), ``"periodic"`` (every second), ``"never"``, or a number of
/// seconds between periodic syncs. ``fsync_window`` (seconds, at most 1;
/// with ``fsync="always"`` only) is the group commit window of
/// ``dkv-node --fsync-window-us``: a busy log waits that long after one
/// fsync began before starting the next, so each covers more writes.
/// Timeouts and intervals are in seconds.
///
/// ``cluster_secret`` is the secret every node of the cluster shares; each
/// proves it knows it when it connects to a peer, and the secret itself
/// never crosses the network. By default a node uses a random secret made
/// up once per process: the nodes one Python process starts find each
/// other; nodes of one cluster in different processes need the same
/// ``cluster_secret``.
///
/// The node does not start until ``start()`` is called or a ``with``
/// block is entered; leaving the block stops it. A node that is garbage
/// collected while running is stopped.
#[pyclass(module = "dkv._dkv", frozen)]
pub struct Node {
    config: Mutex<ServerConfig>,
    /// The cluster is this node alone, derived from its port: refreshed
    /// when a start on port 0 learns the real port.
    single: bool,
    data_dir: PathBuf,
    handle: Mutex<Option<Server>>,
}

/// The `cluster` argument.
enum ClusterArg {
    Single,
    File(PathBuf),
    Members(Vec<NodeAddr>),
}

fn resolve(py: Python<'_>, text: &str) -> PyResult<SocketAddr> {
    args::address(py, text)
}

fn member(py: Python<'_>, index: usize, item: &Bound<'_, PyAny>) -> PyResult<NodeAddr> {
    let default_id = u32::try_from(index + 1).unwrap_or(u32::MAX);
    let with_default_peer = |id: u32, client: SocketAddr| NodeAddr {
        id: NodeId(id),
        client,
        peer: SocketAddr::new(client.ip(), client.port().wrapping_add(PEER_PORT_OFFSET)),
    };
    if let Ok(text) = item.cast::<PyString>() {
        return Ok(with_default_peer(default_id, resolve(py, &text.to_cow()?)?));
    }
    let shape_error = || {
        PyTypeError::new_err(
            "a cluster member is \"host:port\", (id, \"host:port\") or (id, \"host:port\", peer)",
        )
    };
    let tuple = item.cast::<PyTuple>().map_err(|_| shape_error())?;
    let id = |obj: Bound<'_, PyAny>| -> PyResult<u32> {
        let id: i64 = obj.extract().map_err(|_| shape_error())?;
        u32::try_from(id)
            .ok()
            .filter(|&id| id > 0)
            .ok_or_else(|| invalid(py, format!("node id {id} is out of range (1..2^32)")))
    };
    let client = |obj: Bound<'_, PyAny>| -> PyResult<SocketAddr> {
        let text: String = obj.extract().map_err(|_| shape_error())?;
        resolve(py, &text)
    };
    match tuple.len() {
        2 => Ok(with_default_peer(
            id(tuple.get_item(0)?)?,
            client(tuple.get_item(1)?)?,
        )),
        3 => {
            let id = id(tuple.get_item(0)?)?;
            let client = client(tuple.get_item(1)?)?;
            let peer_obj = tuple.get_item(2)?;
            let peer = if let Ok(text) = peer_obj.cast::<PyString>() {
                resolve(py, &text.to_cow()?)?
            } else if peer_obj.is_instance_of::<PyInt>() && !peer_obj.is_instance_of::<PyBool>() {
                let port: i64 = peer_obj.extract()?;
                let port = u16::try_from(port)
                    .map_err(|_| invalid(py, format!("peer port {port} is out of range")))?;
                SocketAddr::new(client.ip(), port)
            } else {
                return Err(shape_error());
            };
            Ok(NodeAddr {
                id: NodeId(id),
                client,
                peer,
            })
        }
        _ => Err(shape_error()),
    }
}

fn cluster_arg(py: Python<'_>, obj: Option<&Bound<'_, PyAny>>) -> PyResult<ClusterArg> {
    let Some(obj) = obj.filter(|o| !o.is_none()) else {
        return Ok(ClusterArg::Single);
    };
    let fspath = py.import("os")?.getattr("PathLike")?;
    if obj.is_instance_of::<PyString>() || obj.is_instance(&fspath)? {
        return Ok(ClusterArg::File(obj.extract()?));
    }
    let mut members = Vec::new();
    for (index, item) in obj.try_iter()?.enumerate() {
        members.push(member(py, index, &item?)?);
    }
    Ok(ClusterArg::Members(members))
}

fn fsync_mode(py: Python<'_>, obj: &Bound<'_, PyAny>) -> PyResult<FsyncMode> {
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(if b.is_true() {
            FsyncMode::Always
        } else {
            FsyncMode::Never
        });
    }
    if let Ok(text) = obj.cast::<PyString>() {
        return text
            .to_cow()?
            .parse::<FsyncMode>()
            .map_err(|e| invalid(py, e.to_string()));
    }
    if obj.is_instance_of::<PyFloat>() || obj.is_instance_of::<PyInt>() {
        return Ok(FsyncMode::Periodic(args::seconds(py, "fsync", obj)?));
    }
    Err(PyTypeError::new_err(
        "fsync must be \"always\", \"periodic\", \"never\", a bool or a number of seconds",
    ))
}

fn count(py: Python<'_>, name: &str, value: Option<usize>) -> PyResult<Option<usize>> {
    match value {
        Some(0) => Err(invalid(py, format!("{name} must be at least 1"))),
        other => Ok(other),
    }
}

fn opt_seconds(
    py: Python<'_>,
    name: &str,
    obj: Option<&Bound<'_, PyAny>>,
) -> PyResult<Option<Duration>> {
    match obj {
        Some(obj) if !obj.is_none() => args::seconds(py, name, obj).map(Some),
        _ => Ok(None),
    }
}

impl Node {
    fn describe(&self) -> (u32, u16, bool) {
        let config = self.config.lock();
        let running = self.handle.lock().is_some();
        (config.node_id.0, config.port, running)
    }
}

#[pymethods]
impl Node {
    #[new]
    #[pyo3(signature = (
        node_id = 1, port = None, cluster = None, data_dir = None, *,
        fsync = None, fsync_window = None, bind = None, password = None,
        replication_factor = None, write_quorum = None, read_quorum = None,
        cluster_name = None, virtual_nodes = None, allow_weak_quorums = false,
        request_timeout = None, heartbeat_interval = None, failure_timeout = None,
        cluster_secret = None
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        node_id: i64,
        port: Option<i64>,
        cluster: Option<&Bound<'_, PyAny>>,
        data_dir: Option<PathBuf>,
        fsync: Option<&Bound<'_, PyAny>>,
        fsync_window: Option<&Bound<'_, PyAny>>,
        bind: Option<String>,
        password: Option<String>,
        replication_factor: Option<usize>,
        write_quorum: Option<usize>,
        read_quorum: Option<usize>,
        cluster_name: Option<String>,
        virtual_nodes: Option<usize>,
        allow_weak_quorums: bool,
        request_timeout: Option<&Bound<'_, PyAny>>,
        heartbeat_interval: Option<&Bound<'_, PyAny>>,
        failure_timeout: Option<&Bound<'_, PyAny>>,
        cluster_secret: Option<String>,
    ) -> PyResult<Node> {
        let id = u32::try_from(node_id)
            .ok()
            .filter(|&id| id > 0)
            .ok_or_else(|| invalid(py, format!("node_id {node_id} is out of range (1..2^32)")))?;
        let id = NodeId(id);
        let port = match port {
            None => None,
            Some(p) => Some(
                u16::try_from(p).map_err(|_| invalid(py, format!("port {p} is out of range")))?,
            ),
        };
        let replication_factor = count(py, "replication_factor", replication_factor)?;
        let write_quorum = count(py, "write_quorum", write_quorum)?;
        let read_quorum = count(py, "read_quorum", read_quorum)?;
        let virtual_nodes = count(py, "virtual_nodes", virtual_nodes)?;

        let conf = match cluster_arg(py, cluster)? {
            ClusterArg::Single => None,
            ClusterArg::File(path) => {
                if replication_factor.is_some()
                    || write_quorum.is_some()
                    || read_quorum.is_some()
                    || cluster_name.is_some()
                    || virtual_nodes.is_some()
                    || allow_weak_quorums
                {
                    return Err(invalid(
                        py,
                        "with a cluster.conf file, the cluster settings (replication_factor, \
                         quorums, cluster_name, virtual_nodes) come from the file",
                    ));
                }
                let conf = py
                    .detach(|| ClusterConf::load(&path))
                    .map_err(|e| error(py, Kind::Config, format!("{}: {e}", path.display())))?;
                Some(conf)
            }
            ClusterArg::Members(nodes) => {
                if nodes.is_empty() {
                    return Err(invalid(py, "cluster is an empty list"));
                }
                let n = replication_factor.unwrap_or_else(|| nodes.len().min(3));
                let majority = n / 2 + 1;
                let mut conf = ClusterConf {
                    replication_factor: n,
                    write_quorum: write_quorum.unwrap_or(majority.min(n)),
                    read_quorum: read_quorum.unwrap_or(majority.min(n)),
                    allow_weak_quorums,
                    nodes,
                    ..ClusterConf::default()
                };
                if let Some(name) = cluster_name {
                    conf.cluster_name = name;
                }
                if let Some(v) = virtual_nodes {
                    conf.virtual_nodes = v;
                }
                conf.validate()
                    .map_err(|e| error(py, Kind::Config, e.to_string()))?;
                Some(conf)
            }
        };
        let member = match &conf {
            Some(conf) => Some(conf.node(id).cloned().ok_or_else(|| {
                let ids: Vec<String> = conf.nodes.iter().map(|n| n.id.to_string()).collect();
                error(
                    py,
                    Kind::Config,
                    format!(
                        "node id {id} is not listed in the cluster (ids: {})",
                        ids.join(", ")
                    ),
                )
            })?),
            None => None,
        };
        let port = match (&member, port) {
            (Some(m), Some(p)) if p != m.client.port() => {
                return Err(invalid(
                    py,
                    format!(
                        "port {p} differs from node {id}'s client port {} in the cluster",
                        m.client.port()
                    ),
                ))
            }
            (Some(m), _) => m.client.port(),
            (None, p) => p.unwrap_or(0),
        };
        let data_dir = data_dir.unwrap_or_else(|| PathBuf::from(format!("./dkv-data/node-{id}")));
        let mut config = ServerConfig::new(id, port, &data_dir);
        config.bind = match (&bind, &member) {
            (Some(text), _) => text
                .parse::<IpAddr>()
                .or_else(|_| {
                    (text.as_str(), 0)
                        .to_socket_addrs()
                        .ok()
                        .and_then(|mut a| a.next())
                        .map(|a| a.ip())
                        .ok_or(())
                })
                .map_err(|()| invalid(py, format!("bind address {text:?} is not an IP address")))?,
            (None, Some(m)) => m.client.ip(),
            (None, None) => IpAddr::V4(Ipv4Addr::LOCALHOST),
        };
        config.requirepass = password;
        if let Some(fsync) = fsync {
            config.store.fsync = fsync_mode(py, fsync)?;
        }
        if let Some(window) = fsync_window.filter(|w| !w.is_none()) {
            config.store.fsync_window = args::seconds(py, "fsync_window", window)?;
        }
        if let Some(problem) = config.store.fsync_window_problem() {
            return Err(invalid(py, problem));
        }
        if let Some(conf) = &conf {
            config.cluster = conf.clone();
        } else {
            config.cluster = ClusterConf::single(id, SocketAddr::new(config.bind, port));
        }
        config.cluster_secret = match cluster_secret {
            Some(secret) if secret.is_empty() => {
                return Err(invalid(py, "cluster_secret may not be empty"))
            }
            Some(secret) => secret,
            None => dkv::random::process_secret(),
        };
        let replication = &mut config.replication;
        if let Some(t) = opt_seconds(py, "request_timeout", request_timeout)? {
            replication.request_timeout = t;
        }
        if let Some(t) = opt_seconds(py, "heartbeat_interval", heartbeat_interval)? {
            replication.heartbeat_interval = t;
        }
        if let Some(t) = opt_seconds(py, "failure_timeout", failure_timeout)? {
            replication.failure_timeout = t;
        }
        Ok(Node {
            config: Mutex::new(config),
            single: conf.is_none(),
            data_dir,
            handle: Mutex::new(None),
        })
    }

    /// ``start() -> None``: opens the store (replaying its WAL), binds the
    /// ports and starts serving; returns once the node accepts
    /// connections (its peers need not be up yet). Raises ``IoError``
    /// (e.g. a port in use), ``ConfigError`` or ``CorruptionError``, and
    /// ``InvalidArgument`` if the node is already running.
    fn start(&self, py: Python<'_>) -> PyResult<()> {
        let result = py.detach(|| {
            let mut handle = self.handle.lock();
            if handle.is_some() {
                return Ok(Err("already running"));
            }
            let config = self.config.lock().clone();
            let started = server::start(config)?;
            let addr = started.client_addr();
            let mut config = self.config.lock();
            if config.port == 0 {
                config.port = addr.port();
                if self.single {
                    config.cluster = ClusterConf::single(config.node_id, addr);
                }
            }
            *handle = Some(started);
            Ok(Ok(()))
        });
        match result {
            Ok(Ok(())) => Ok(()),
            Ok(Err(why)) => Err(invalid(py, format!("node {}: {why}", self.node_id()))),
            Err(e) => Err(from_node(py, &e)),
        }
    }

    /// ``stop() -> None``: stops accepting, finishes in-flight commands,
    /// syncs the WAL and closes the store; its ports and threads are
    /// released when it returns. Does nothing if the node is not running.
    fn stop(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| match self.handle.lock().take() {
            Some(handle) => handle.stop(),
            None => Ok(()),
        })
        .map_err(|e| from_node(py, &e))
    }

    /// Whether the node is running.
    #[getter]
    fn running(&self, py: Python<'_>) -> bool {
        py.detach(|| self.handle.lock().is_some())
    }

    /// The node's id.
    #[getter]
    fn node_id(&self) -> u32 {
        self.config.lock().node_id.0
    }

    /// The client port (0 until a node configured with port 0 first
    /// starts).
    #[getter]
    fn port(&self) -> u16 {
        self.config.lock().port
    }

    /// ``"ip:port"`` clients connect to.
    #[getter]
    fn address(&self) -> String {
        let config = self.config.lock();
        SocketAddr::new(config.bind, config.port).to_string()
    }

    /// ``"ip:port"`` of the peer listener (``None`` for a single node,
    /// which has no peers).
    #[getter]
    fn peer_address(&self) -> Option<String> {
        if self.single {
            return None;
        }
        let config = self.config.lock();
        config
            .cluster
            .node(config.node_id)
            .map(|m| m.peer.to_string())
    }

    /// The data directory (WAL under ``wal/``, snapshots under
    /// ``snapshots/``, hints under ``hints/``).
    #[getter]
    fn data_dir(&self) -> PathBuf {
        self.data_dir.clone()
    }

    /// The client addresses of every cluster member, in id order of the
    /// cluster definition (just this node's for a single node).
    #[getter]
    fn cluster_addresses(&self) -> Vec<String> {
        let config = self.config.lock();
        config
            .cluster
            .nodes
            .iter()
            .map(|m| m.client.to_string())
            .collect()
    }

    /// Starts the node unless it is running, and returns it.
    fn __enter__(slf: Bound<'_, Self>) -> PyResult<Bound<'_, Self>> {
        let node = slf.get();
        if !node.running(slf.py()) {
            node.start(slf.py())?;
        }
        Ok(slf)
    }

    /// Stops the node.
    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, PyTuple>) -> PyResult<bool> {
        self.stop(py)?;
        Ok(false)
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        let (id, port, running) = py.detach(|| self.describe());
        format!(
            "dkv.Node(node_id={id}, port={port}, {})",
            if running { "running" } else { "stopped" }
        )
    }
}
