//! The node server: a [`Store`] served over RESP2 by the reactor in
//! [`crate::net`], startable from Rust (and, through it, from C and Python)
//! as [`Node::start`], and from the command line as `dkv-node`.
//!
//! Several nodes can run in one process: each has its own store, reactor
//! thread and worker pool, and [`NodeHandle::stop`] shuts one down cleanly.

pub mod commands;
mod info;
pub mod session;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use crate::config::ClusterConf;
use crate::net::reactor::{Control, Reactor};
use crate::resp::Limits;
use crate::store::{Store, StoreConfig, StoreError};
use crate::version::NodeId;
use commands::Executor;
use session::Session;

/// Everything a node needs to start.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// This node's id.
    pub node_id: NodeId,
    /// Address to listen on for clients (default 127.0.0.1).
    pub bind: IpAddr,
    /// Client port; 0 picks a free one (see [`NodeHandle::client_addr`]).
    pub port: u16,
    /// Password clients must `AUTH` with, if any.
    pub requirepass: Option<String>,
    /// Allow a non-loopback bind address without a password.
    pub allow_unprotected: bool,
    /// Threads executing commands; 0 runs them on the reactor thread.
    pub worker_threads: usize,
    /// Request size limits.
    pub limits: Limits,
    /// Unsent reply bytes past which a connection is not read from.
    pub max_output_bytes: usize,
    /// Storage: directories, fsync mode, snapshots.
    pub store: StoreConfig,
    /// The cluster this node belongs to (one node: N = W = R = 1).
    pub cluster: ClusterConf,
    /// Where hints for other nodes are kept (default `<data dir>/hints`).
    pub hints_dir: std::path::PathBuf,
    /// Shared secret peers must present in the handshake (empty: none).
    pub cluster_secret: String,
    /// Replication timers and bounds (request timeout, heartbeats,
    /// failure timeout, hint limits). Its id, members and quorums are
    /// taken from `node_id` and `cluster`.
    pub replication: crate::node::NodeSettings,
}

impl NodeConfig {
    /// A single node with defaults: 127.0.0.1:`port`, data under
    /// `data_dir`, one worker per core.
    pub fn new(node_id: NodeId, port: u16, data_dir: impl AsRef<std::path::Path>) -> NodeConfig {
        let bind = IpAddr::V4(Ipv4Addr::LOCALHOST);
        NodeConfig {
            node_id,
            bind,
            port,
            requirepass: None,
            allow_unprotected: false,
            worker_threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
            limits: Limits::default(),
            max_output_bytes: 64 << 20,
            store: StoreConfig::new(node_id, data_dir.as_ref()),
            cluster: ClusterConf::single(node_id, SocketAddr::new(bind, port)),
            hints_dir: data_dir.as_ref().join("hints"),
            cluster_secret: String::new(),
            replication: crate::node::NodeSettings::new(node_id, vec![node_id], 1, 1, 1),
        }
    }
}

/// Why a node could not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// The store failed to open or close.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Binding or running the listener failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The configuration is refused.
    #[error("{0}")]
    Config(String),
}

/// Counters shared by the reactor and the executor.
#[derive(Debug, Default)]
pub struct ServerStats {
    /// Commands executed.
    pub commands: AtomicU64,
    /// Connections accepted since start.
    pub connections_received: AtomicU64,
    /// Connections open now.
    pub connected_clients: AtomicU64,
    /// The most reply bytes any connection has had queued and unsent.
    pub max_output_buffer: AtomicU64,
}

/// The cluster's state as the reactor last saw it, for INFO.
#[derive(Debug, Clone, Default)]
pub struct ClusterStatus {
    /// Each peer: whether the failure detector thinks it is up, and
    /// whether this node's link to it is connected.
    pub peers: Vec<(NodeId, bool, bool)>,
    /// Hints waiting, per target.
    pub hints_pending: Vec<(NodeId, usize)>,
    /// The node's counters.
    pub stats: crate::node::NodeStats,
    /// Tokens on the ring.
    pub ring_tokens: usize,
}

/// Static settings the executor consults.
#[derive(Debug, Clone)]
pub(crate) struct ServerConfig {
    pub node_id: NodeId,
    pub bind: IpAddr,
    pub port: u16,
    pub requirepass: Option<String>,
    pub worker_threads: usize,
    pub limits: Limits,
    pub max_output_bytes: usize,
    pub started: Instant,
    pub cluster: ClusterConf,
}

impl Executor {
    /// The request limits for a connection: small until it authenticates
    /// when a password is set (as Redis does for unauthenticated clients).
    pub(crate) fn limits_for(&self, session: Option<&Session>) -> Limits {
        match session {
            Some(s) if !s.authenticated => Limits::unauthenticated(),
            _ => self.config.limits,
        }
    }
}

/// Builds the replication core of a node of a multi-node cluster.
fn cluster_setup(
    config: &NodeConfig,
    store: &Arc<Store>,
    status: Arc<parking_lot::Mutex<ClusterStatus>>,
) -> Result<crate::net::reactor::ClusterSetup, NodeError> {
    let conf = &config.cluster;
    let hints = crate::disk::HintLog::open(config.hints_dir.clone(), config.store.fsync)
        .map_err(StoreError::from)?;
    let mut settings = config.replication.clone();
    settings.id = config.node_id;
    settings.members = conf.nodes.iter().map(|n| n.id).collect();
    settings.replication_factor = conf.replication_factor;
    settings.write_quorum = conf.write_quorum;
    settings.read_quorum = conf.read_quorum;
    settings.virtual_nodes = conf.virtual_nodes;
    settings.max_clock_drift = config.store.max_clock_drift;
    let now = crate::node::Now {
        mono: 0,
        wall: crate::clock::wall_millis(),
    };
    let storage = crate::disk::StoreDisk::new(Arc::clone(store), hints);
    let mut node = crate::node::Node::new(settings, storage, now);
    node.advance_clock(store.engine().max_timestamp());
    let me = conf.node(config.node_id).ok_or_else(|| {
        NodeError::Config(format!(
            "node {} is not in the cluster conf",
            config.node_id
        ))
    })?;
    Ok(crate::net::reactor::ClusterSetup {
        node,
        identity: crate::net::peers::PeerIdentity {
            hello: crate::peer::Hello::for_conf(
                conf,
                config.node_id,
                config.cluster_secret.as_bytes(),
            ),
            max_frame: config
                .limits
                .max_bulk_len
                .saturating_mul(2)
                .saturating_add(1 << 20),
        },
        peer_bind: me.peer,
        members: conf.nodes.iter().map(|n| (n.id, n.peer)).collect(),
        status,
    })
}

/// Starts nodes.
pub struct Node;

impl Node {
    /// Opens the store, binds the client port and starts the reactor and
    /// workers. Returns once the node accepts connections.
    pub fn start(config: NodeConfig) -> Result<NodeHandle, NodeError> {
        if !config.bind.is_loopback() && config.requirepass.is_none() && !config.allow_unprotected {
            return Err(NodeError::Config(format!(
                "refusing to listen on {} without a password (protected mode): set --requirepass, \
                 bind 127.0.0.1, or pass --protected-mode no",
                config.bind
            )));
        }
        let std_listener =
            std::net::TcpListener::bind((config.bind, config.port)).map_err(|source| {
                NodeError::Io {
                    context: format!("cannot listen on {}:{}", config.bind, config.port),
                    source,
                }
            })?;
        let addr = std_listener.local_addr().map_err(|source| NodeError::Io {
            context: "listener address".into(),
            source,
        })?;
        std_listener
            .set_nonblocking(true)
            .map_err(|source| NodeError::Io {
                context: "non-blocking listener".into(),
                source,
            })?;
        let clustered = config.cluster.nodes.len() > 1;
        if clustered && config.cluster.node(config.node_id).is_none() {
            return Err(NodeError::Config(format!(
                "node {} is not in the cluster conf",
                config.node_id
            )));
        }
        let store = Arc::new(Store::open(config.store.clone())?);
        let executor = Arc::new(Executor {
            store: Arc::clone(&store),
            config: ServerConfig {
                node_id: config.node_id,
                bind: config.bind,
                port: addr.port(),
                requirepass: config.requirepass.clone(),
                worker_threads: config.worker_threads,
                limits: config.limits,
                max_output_bytes: config.max_output_bytes,
                started: Instant::now(),
                cluster: config.cluster.clone(),
            },
            stats: Arc::new(ServerStats::default()),
            cluster_status: clustered
                .then(|| Arc::new(parking_lot::Mutex::new(ClusterStatus::default()))),
        });
        let cluster_setup = match &executor.cluster_status {
            Some(status) => Some(cluster_setup(&config, &store, Arc::clone(status))?),
            None => None,
        };
        let listener = mio::net::TcpListener::from_std(std_listener);
        let io_err = |context: &str| {
            let context = context.to_string();
            move |source| NodeError::Io { context, source }
        };
        let (reactor, control) = Reactor::new(listener, Arc::clone(&executor), cluster_setup)
            .map_err(io_err("starting the reactor"))?;
        let thread = std::thread::Builder::new()
            .name(format!("dkv-reactor-{}", config.node_id))
            .spawn(move || reactor.run())
            .map_err(io_err("spawning the reactor thread"))?;
        log::info!("node {} listening on {addr}", config.node_id);
        Ok(NodeHandle {
            addr,
            control,
            thread: Some(thread),
            executor,
        })
    }
}

/// A running node. Dropping it stops the node too; [`NodeHandle::stop`]
/// reports errors.
pub struct NodeHandle {
    addr: SocketAddr,
    control: Arc<Control>,
    thread: Option<JoinHandle<std::io::Result<()>>>,
    executor: Arc<Executor>,
}

impl NodeHandle {
    /// The address clients connect to.
    pub fn client_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The node's store.
    pub fn store(&self) -> &Store {
        self.executor.store()
    }

    /// Counters.
    pub fn stats(&self) -> &ServerStats {
        &self.executor.stats
    }

    /// Stops accepting, finishes in-flight commands, syncs the WAL, closes
    /// the store.
    pub fn stop(mut self) -> Result<(), NodeError> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<(), NodeError> {
        let Some(thread) = self.thread.take() else {
            return Ok(());
        };
        self.control.stopping.store(true, Ordering::Release);
        self.control.wakeup.wake();
        let result = match thread.join() {
            Ok(result) => result.map_err(|source| NodeError::Io {
                context: "reactor".into(),
                source,
            }),
            Err(_) => Err(NodeError::Config("reactor thread panicked".into())),
        };
        self.executor
            .store()
            .wal()
            .sync()
            .map_err(StoreError::from)?;
        log::info!("node {} stopped", self.executor.config.node_id);
        result
    }
}

impl Drop for NodeHandle {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            log::error!("stopping node: {e}");
        }
    }
}
