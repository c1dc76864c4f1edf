//! Start-up: everything a node needs, opened and wired together, and the
//! handle that stops it. [`start`] runs a node in this process (Rust, and
//! through the C ABI and Python, C, C++ and Python programs); `dkv-node`
//! is [`start`] behind command-line flags.
//!
//! Wiring, bottom up: the [`Store`] (snapshot + WAL), the
//! [`crate::disk::StoreDisk`] over it and the hint log, the replication
//! core ([`crate::node::Node`]) over that disk, the command layer
//! ([`crate::command::Executor`]) owning the node, and the reactor
//! ([`crate::net`]) driving the executor on its own thread. A node alone
//! is a cluster of one and is wired the same way, without peer links.
//!
//! Several nodes can run in one process: each has its own store and
//! reactor thread, and [`Server::stop`] shuts one down cleanly.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use crate::clock::wall_millis;
use crate::command::{Executor, ServerStats, Settings};
use crate::config::ClusterConf;
use crate::disk::StoreDisk;
use crate::net::handshake::PeerIdentity;
use crate::net::reactor::{Control, PeerSetup, Reactor};
use crate::net::tls::TlsSetup;
pub use crate::net::tls::{TlsError, TlsFiles};
use crate::node::{Node, NodeSettings, Now};
use crate::resp::Limits;
use crate::store::{Store, StoreConfig, StoreError};
use crate::version::NodeId;

/// Everything a node needs to start.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// This node's id.
    pub node_id: NodeId,
    /// Address to listen on for clients (default 127.0.0.1).
    pub bind: IpAddr,
    /// Client port; 0 picks a free one (see [`Server::client_addr`]).
    pub port: u16,
    /// Password clients must `AUTH` with, if any; an empty one is none.
    pub requirepass: Option<String>,
    /// Allow a non-loopback bind address without a password, and a
    /// non-loopback peer address without a cluster secret.
    pub allow_unprotected: bool,
    /// Request size limits.
    pub limits: Limits,
    /// Unsent reply bytes past which a connection runs no more commands;
    /// past twice this it is closed.
    pub max_output_bytes: usize,
    /// Clients connected at most (Redis's `maxclients`); lowered at start
    /// to what the descriptor limit leaves after a reserve.
    pub max_clients: usize,
    /// Storage: directories, fsync mode, snapshots.
    pub store: StoreConfig,
    /// The cluster this node belongs to (one node: N = W = R = 1).
    pub cluster: ClusterConf,
    /// Where hints for other nodes are kept (default `<data dir>/hints`).
    pub hints_dir: PathBuf,
    /// Shared secret each peer proves it knows in the handshake (never
    /// sent). Empty: none, allowed only while the peer port is on
    /// loopback (or `allow_unprotected`).
    pub cluster_secret: String,
    /// TLS for the client port (and, on a node of a cluster, the peer
    /// links), if any.
    pub tls: Option<TlsFiles>,
    /// Replication timers and bounds (request timeout, heartbeats,
    /// failure timeout, hint limits). Its id, members and quorums are
    /// taken from `node_id` and `cluster`.
    pub replication: NodeSettings,
}

impl ServerConfig {
    /// A node alone with defaults: 127.0.0.1:`port`, data under
    /// `data_dir`.
    pub fn new(node_id: NodeId, port: u16, data_dir: impl AsRef<Path>) -> ServerConfig {
        let bind = IpAddr::V4(Ipv4Addr::LOCALHOST);
        ServerConfig {
            node_id,
            bind,
            port,
            requirepass: None,
            allow_unprotected: false,
            limits: Limits::default(),
            max_output_bytes: 64 << 20,
            max_clients: 10_000,
            store: StoreConfig::new(node_id, data_dir.as_ref()),
            cluster: ClusterConf::single(node_id, SocketAddr::new(bind, port)),
            hints_dir: data_dir.as_ref().join("hints"),
            cluster_secret: String::new(),
            tls: None,
            replication: NodeSettings::single(node_id),
        }
    }

    /// The replication settings: the timers and bounds of `replication`,
    /// with the id, members, quorums and drift limit of this config.
    fn node_settings(&self) -> NodeSettings {
        let conf = &self.cluster;
        NodeSettings {
            id: self.node_id,
            members: conf.nodes.iter().map(|n| n.id).collect(),
            replication_factor: conf.replication_factor,
            write_quorum: conf.write_quorum,
            read_quorum: conf.read_quorum,
            virtual_nodes: conf.virtual_nodes,
            max_clock_drift: self.store.max_clock_drift,
            // Never shorter than a late hint can be.
            tombstone_grace: self
                .store
                .tombstone_grace
                .max(self.replication.max_hint_age),
            ..self.replication.clone()
        }
    }
}

/// Why a node could not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
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

fn io_error(context: &str) -> impl FnOnce(std::io::Error) -> ServerError {
    let context = context.to_string();
    move |source| ServerError::Io { context, source }
}

/// Descriptors kept for everything but clients: the listeners, the poller,
/// WAL segments, snapshots, the hint log, logs and threads' files.
const RESERVED_FDS: u64 = 32;

/// `wanted` clients, or fewer if the process's descriptor limit cannot
/// hold them beside [`RESERVED_FDS`] and two per peer: as Redis does, the
/// soft limit is raised towards the hard one first, and what is lowered is
/// logged.
fn fit_max_clients(wanted: usize, members: usize) -> usize {
    let reserve = RESERVED_FDS + 2 * members as u64;
    let need = wanted as u64 + reserve;
    // SAFETY: getrlimit/setrlimit read and write a plain struct we own.
    let limit = unsafe {
        let mut limit: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return wanted;
        }
        if limit.rlim_cur < need {
            let raised = libc::rlimit {
                rlim_cur: need.min(limit.rlim_max),
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit.rlim_cur = raised.rlim_cur;
            }
        }
        limit.rlim_cur
    };
    let fit = limit.saturating_sub(reserve).max(1);
    if (wanted as u64) <= fit {
        return wanted;
    }
    log::warn!(
        "maxclients lowered from {wanted} to {fit}: the descriptor limit is {limit} and {reserve} \
         are kept for the node itself (raise it with ulimit -n)"
    );
    fit as usize
}

/// Opens the store, binds the client (and peer) ports and starts the
/// reactor. Returns once the node accepts connections.
pub fn start(mut config: ServerConfig) -> Result<Server, ServerError> {
    // An empty password is no password, as in Redis.
    config.requirepass = config.requirepass.filter(|password| !password.is_empty());
    if let Some(problem) = config.store.fsync_window_problem() {
        return Err(ServerError::Config(problem));
    }
    let max_bulk = config.limits.max_bulk_len;
    if max_bulk > Limits::MAX_BULK_LEN_CEILING {
        return Err(ServerError::Config(format!(
            "--max-bulk-len {max_bulk} is over its ceiling of {} bytes (256 MiB)",
            Limits::MAX_BULK_LEN_CEILING
        )));
    }
    // Room for a request of two maximal bulks, whatever was asked.
    config.limits = Limits {
        max_args: config.limits.max_args,
        max_inline_len: config.limits.max_inline_len,
        ..Limits::for_bulk_len(max_bulk, config.limits.max_request_len)
    };
    if !config.bind.is_loopback() && config.requirepass.is_none() && !config.allow_unprotected {
        return Err(ServerError::Config(format!(
            "refusing to listen on {} without a password (protected mode): set --requirepass, \
             bind 127.0.0.1, or pass --protected-mode no",
            config.bind
        )));
    }
    let member = config.cluster.node(config.node_id).cloned();
    let clustered = config.cluster.nodes.len() > 1;
    if clustered && member.is_none() {
        return Err(ServerError::Config(format!(
            "node {} is not in the cluster conf",
            config.node_id
        )));
    }
    if let Some(me) = member.as_ref().filter(|_| clustered) {
        let open_peer_port = !me.peer.ip().is_loopback() && config.cluster_secret.is_empty();
        if open_peer_port && !config.allow_unprotected {
            return Err(ServerError::Config(format!(
                "refusing to open the peer port on {} without a cluster secret (protected mode \
                 for peers): set --cluster-secret on every node, put the peer addresses on \
                 127.0.0.1, or pass --protected-mode no",
                me.peer
            )));
        }
    }
    let std_listener = std::net::TcpListener::bind((config.bind, config.port)).map_err(
        io_error(&format!("cannot listen on {}:{}", config.bind, config.port)),
    )?;
    let addr = std_listener
        .local_addr()
        .map_err(io_error("listener address"))?;
    std_listener
        .set_nonblocking(true)
        .map_err(io_error("non-blocking listener"))?;

    // In a cluster, tombstones go only once every replica holds them (the
    // node's anti-entropy decides), never by age alone.
    let mut store_config = config.store.clone();
    if clustered && config.replication.aae_enabled {
        store_config.purge_tombstones_by_age = false;
    }
    let store = Arc::new(Store::open(store_config)?);
    let disk = StoreDisk::open(Arc::clone(&store), config.hints_dir.clone())?;
    let started = Instant::now();
    let now = Now {
        mono: 0,
        wall: wall_millis(),
    };
    let node = Node::new(config.node_settings(), disk, now);
    let settings = Settings {
        node_id: config.node_id,
        bind: config.bind,
        port: addr.port(),
        requirepass: config.requirepass.clone(),
        limits: config.limits,
        max_output_bytes: config.max_output_bytes,
        max_clients: fit_max_clients(config.max_clients, config.cluster.nodes.len()),
        fsync: config.store.fsync,
        cluster: config.cluster.clone(),
    };
    let stats = Arc::new(ServerStats::default());
    let executor = Executor::new(node, settings, Arc::clone(&stats), now);
    let peers = match (&member, clustered) {
        (Some(me), true) => Some(PeerSetup {
            identity: PeerIdentity {
                node_id: config.node_id,
                secret: config.cluster_secret.as_bytes().to_vec(),
                cluster_name: config.cluster.cluster_name.clone(),
                settings_digest: crate::peer::settings_digest(&config.cluster),
                max_frame: config
                    .limits
                    .max_bulk_len
                    .saturating_mul(2)
                    .saturating_add(1 << 20),
            },
            bind: me.peer,
            members: config
                .cluster
                .nodes
                .iter()
                .map(|n| (n.id, n.peer))
                .collect(),
        }),
        _ => None,
    };
    let listener = mio::net::TcpListener::from_std(std_listener);
    let tls = match &config.tls {
        None => None,
        Some(files) => {
            Some(TlsSetup::load(files, clustered).map_err(|e| ServerError::Config(e.to_string()))?)
        }
    };
    let (reactor, control) = Reactor::new(listener, executor, peers, tls, started)
        .map_err(io_error("starting the reactor"))?;
    let thread = std::thread::Builder::new()
        .name(format!("dkv-reactor-{}", config.node_id))
        .spawn(move || reactor.run())
        .map_err(io_error("spawning the reactor thread"))?;
    log::info!("node {} listening on {addr}", config.node_id);
    Ok(Server {
        node_id: config.node_id,
        addr,
        control,
        thread: Some(thread),
        store,
        stats,
    })
}

/// A running node. Dropping it stops the node too; [`Server::stop`]
/// reports errors.
pub struct Server {
    node_id: NodeId,
    addr: SocketAddr,
    control: Arc<Control>,
    thread: Option<JoinHandle<std::io::Result<()>>>,
    store: Arc<Store>,
    stats: Arc<ServerStats>,
}

impl Server {
    /// The address clients connect to.
    pub fn client_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The node's store (read it to inspect this node's own copies).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Counters.
    pub fn stats(&self) -> &ServerStats {
        &self.stats
    }

    /// Stops accepting, finishes in-flight commands, syncs the logs.
    pub fn stop(mut self) -> Result<(), ServerError> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<(), ServerError> {
        let Some(thread) = self.thread.take() else {
            return Ok(());
        };
        self.control.stopping.store(true, Ordering::Release);
        self.control.wakeup.wake();
        let result = match thread.join() {
            Ok(result) => result.map_err(io_error("reactor")),
            Err(_) => Err(ServerError::Config("reactor thread panicked".into())),
        };
        self.store.wal().sync().map_err(StoreError::from)?;
        log::info!("node {} stopped", self.node_id);
        result
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            log::error!("stopping node: {e}");
        }
    }
}
