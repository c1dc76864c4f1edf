//! `dkv-node`: one dkv node serving the Redis protocol.
//!
//! Parses flags and `cluster.conf`, starts the node, and waits for SIGTERM
//! or SIGINT, on which it stops accepting, finishes in-flight commands,
//! syncs the WAL and exits 0. A bad flag or conf line exits non-zero with a
//! message naming the problem.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use dkv::config::ClusterConf;
use dkv::resp::Limits;
use dkv::server::{self, ServerConfig, TlsFiles};
use dkv::wal::FsyncMode;
use dkv::NodeId;

/// A node of dkv, a Dynamo-style distributed in-memory key-value store that
/// speaks the Redis protocol (RESP2).
#[derive(Parser, Debug, Clone)]
#[command(name = "dkv-node", version, about, long_about = None)]
struct Args {
    /// This node's id; with --cluster-conf it picks the `node <id>` line.
    #[arg(long, default_value_t = 1)]
    node_id: u32,

    /// Client (RESP) port. Default: the conf's port for this node, else 7001.
    #[arg(long)]
    port: Option<u16>,

    /// Address to listen on. A non-loopback address needs --requirepass
    /// (or --protected-mode no).
    #[arg(long, default_value = "127.0.0.1")]
    bind: IpAddr,

    /// The cluster's shared settings and members (see cluster.conf.example).
    #[arg(long)]
    cluster_conf: Option<PathBuf>,

    /// Where WAL and snapshots live (default ./dkv-data/node-<id>).
    #[arg(long)]
    data_dir: Option<PathBuf>,

    /// WAL segments directory (default <data-dir>/wal).
    #[arg(long)]
    wal_dir: Option<PathBuf>,

    /// Snapshots directory (default <data-dir>/snapshots).
    #[arg(long)]
    snapshot_dir: Option<PathBuf>,

    /// When writes are acknowledged: `always` (after fdatasync, group
    /// committed), `periodic` (fsync every --fsync-interval-ms, acknowledge
    /// at once) or `never` (leave it to the OS).
    #[arg(long, default_value = "always")]
    fsync: String,

    /// Interval of `--fsync periodic`, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    fsync_interval_ms: u64,

    /// With `--fsync always`: while writes keep coming, wait this long
    /// after an fsync before the next, so each covers more writes (a group
    /// commit window, in microseconds; 0 syncs back to back). For nodes
    /// sharing one disk; a lone sequential writer never waits.
    #[arg(long, default_value_t = 0)]
    fsync_window_us: u64,

    /// Take a snapshot (and compact the WAL) every this many seconds; 0 turns
    /// timed snapshots off.
    #[arg(long, default_value_t = 600)]
    snapshot_interval: u64,

    /// Also snapshot when the WAL passes this many MiB; 0 turns it off.
    #[arg(long, default_value_t = 256)]
    snapshot_wal_mb: u64,

    /// Require clients to AUTH with this password.
    #[arg(long)]
    requirepass: Option<String>,

    /// `no` allows a non-loopback --bind without --requirepass, and a
    /// non-loopback peer address without --cluster-secret.
    #[arg(long, default_value = "yes", value_parser = ["yes", "no"])]
    protected_mode: String,

    /// Largest key or value, in bytes: the one bound the protocol, the WAL,
    /// snapshots and peer frames all follow (at most 256 MiB).
    #[arg(long, default_value_t = Limits::default().max_bulk_len)]
    max_bulk_len: usize,

    /// Most arguments in one command.
    #[arg(long, default_value_t = Limits::default().max_args)]
    max_args: usize,

    /// Largest single request, in bytes; never less than two bulks of
    /// --max-bulk-len and 1 MiB.
    #[arg(long, default_value_t = Limits::default().max_request_len)]
    max_request_bytes: usize,

    /// Unsent reply bytes past which a client runs no more commands until
    /// they drain; a client whose replies still grow past twice this is
    /// closed (as Redis closes one past its output buffer limit).
    #[arg(long, default_value_t = 64 << 20)]
    max_output_bytes: usize,

    /// Clients connected at most; the next gets `-ERR max number of clients
    /// reached`. Lowered at start if the descriptor limit cannot hold them.
    #[arg(long, default_value_t = 10_000)]
    maxclients: usize,

    /// Storage shards (a power of two).
    #[arg(long, default_value_t = 32)]
    shards: usize,

    /// Secret every node of the cluster shares; each proves it knows it in
    /// the peer handshake (HMAC challenge-response, never sent). Needed
    /// when peer addresses are not on loopback; --dev makes one up.
    #[arg(long, default_value = "")]
    cluster_secret: String,

    /// TLS certificate chain (PEM): with --tls-key, every client connects
    /// with TLS, and on a node of a cluster so do its peers.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,

    /// TLS private key (PEM) for --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,

    /// CA certificate (PEM) that signs the nodes' certificates (and the
    /// clients', with --tls-auth-clients yes). Needed on a node of a
    /// cluster with TLS.
    #[arg(long, requires = "tls_cert")]
    tls_ca: Option<PathBuf>,

    /// `yes`: clients must present a certificate --tls-ca signed.
    #[arg(long, default_value = "no", value_parser = ["yes", "no"])]
    tls_auth_clients: String,

    /// A quorum request that has not heard from enough replicas by then
    /// fails with -UNAVAILABLE, in milliseconds.
    #[arg(long, default_value_t = 2000)]
    request_timeout_ms: u64,

    /// A read asks only the replicas it must hear; one still unanswered
    /// after this many milliseconds asks the other reachable replicas too.
    #[arg(long, default_value_t = 20)]
    read_hedge_ms: u64,

    /// Heartbeat period between nodes, in milliseconds.
    #[arg(long, default_value_t = 250)]
    heartbeat_interval_ms: u64,

    /// A peer silent this long is marked down, in milliseconds.
    #[arg(long, default_value_t = 1500)]
    failure_timeout_ms: u64,

    /// Hints kept per down node at most (the oldest are dropped first).
    #[arg(long, default_value_t = 1_000_000)]
    max_hints_per_node: usize,

    /// MiB of hints kept per down node at most (the oldest are dropped first).
    #[arg(long, default_value_t = 256)]
    max_hint_mb_per_node: usize,

    /// Hints older than this many seconds are dropped (read repair still
    /// heals what they carried).
    #[arg(long, default_value_t = 3 * 3600)]
    max_hint_age_secs: u64,

    /// `no` turns active anti-entropy off (replicas then converge only by
    /// hints and read repair).
    #[arg(long, default_value = "yes", value_parser = ["yes", "no"])]
    aae: String,

    /// Anti-entropy waits this long after an exchange that found its pair
    /// in sync (one that repaired something is followed at once), in ms.
    #[arg(long, default_value_t = 200)]
    aae_interval_ms: u64,

    /// MiB of entries anti-entropy may push per second, at most.
    #[arg(long, default_value_t = 32)]
    aae_max_mb_per_sec: usize,

    /// Start a 3-node cluster (N=3, W=2, R=2) in this process on
    /// 127.0.0.1:7001-7003 with data under ./dkv-data, for trying dkv out.
    #[arg(long)]
    dev: bool,
}

fn build_config(args: &Args) -> Result<ServerConfig, String> {
    let node_id = NodeId(args.node_id);
    let conf = match &args.cluster_conf {
        Some(path) => {
            Some(ClusterConf::load(path).map_err(|e| format!("{}: {e}", path.display()))?)
        }
        None => None,
    };
    let member = match &conf {
        Some(conf) => Some(conf.node(node_id).ok_or_else(|| {
            format!(
                "node id {node_id} is not listed in the cluster conf (ids: {})",
                conf.nodes
                    .iter()
                    .map(|n| n.id.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })?),
        None => None,
    };
    let port = args
        .port
        .or(member.map(|m| m.client.port()))
        .unwrap_or(7001);
    let data_dir = args
        .data_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("./dkv-data/node-{node_id}")));
    let mut config = ServerConfig::new(node_id, port, &data_dir);
    config.bind = args.bind;
    config.requirepass = args.requirepass.clone();
    config.allow_unprotected = args.protected_mode == "no";
    config.limits = Limits {
        max_args: args.max_args,
        ..Limits::for_bulk_len(args.max_bulk_len, args.max_request_bytes)
    };
    config.max_output_bytes = args.max_output_bytes;
    config.max_clients = args.maxclients.max(1);
    let store = &mut config.store;
    if let Some(dir) = &args.wal_dir {
        store.wal_dir = dir.clone();
    }
    if let Some(dir) = &args.snapshot_dir {
        store.snapshot_dir = dir.clone();
    }
    store.fsync = match args.fsync.as_str() {
        "always" => FsyncMode::Always,
        "periodic" if args.fsync_interval_ms > 0 => {
            FsyncMode::Periodic(Duration::from_millis(args.fsync_interval_ms))
        }
        "periodic" => return Err("--fsync-interval-ms must be at least 1".into()),
        "never" => FsyncMode::Never,
        other => {
            return Err(format!(
                "--fsync must be always, periodic or never, not `{other}`"
            ))
        }
    };
    store.fsync_window = Duration::from_micros(args.fsync_window_us);
    if let Some(problem) = store.fsync_window_problem() {
        return Err(format!("--fsync-window-us: {problem}"));
    }
    store.snapshot_interval =
        (args.snapshot_interval > 0).then(|| Duration::from_secs(args.snapshot_interval));
    store.snapshot_wal_bytes = (args.snapshot_wal_mb > 0).then_some(args.snapshot_wal_mb << 20);
    store.shards = args.shards;
    if let Some(conf) = conf {
        config.cluster = conf;
    }
    config.cluster_secret = args.cluster_secret.clone();
    config.tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
            ca: args.tls_ca.clone(),
            auth_clients: args.tls_auth_clients == "yes",
        }),
        _ => None,
    };
    let replication = &mut config.replication;
    replication.request_timeout = Duration::from_millis(args.request_timeout_ms.max(1));
    replication.read_hedge_after = Duration::from_millis(args.read_hedge_ms.max(1));
    replication.heartbeat_interval = Duration::from_millis(args.heartbeat_interval_ms.max(1));
    replication.failure_timeout = Duration::from_millis(args.failure_timeout_ms.max(1));
    replication.max_hints_per_target = args.max_hints_per_node.max(1);
    replication.max_hint_bytes_per_target =
        args.max_hint_mb_per_node.max(1).saturating_mul(1 << 20);
    replication.max_hint_age = Duration::from_secs(args.max_hint_age_secs);
    replication.aae_enabled = args.aae == "yes";
    replication.aae_max_bytes_per_sec = args.aae_max_mb_per_sec.max(1).saturating_mul(1 << 20);
    replication.aae_interval = Duration::from_millis(args.aae_interval_ms.max(1));
    Ok(config)
}

/// Blocks SIGINT and SIGTERM in this thread (and so in every thread it
/// starts afterwards) so that only [`wait_for_stop_signal`] receives them.
fn block_stop_signals() -> libc::sigset_t {
    // SAFETY: sigset_t is plain data; sigemptyset/sigaddset initialise it and
    // pthread_sigmask only reads it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

fn wait_for_stop_signal(set: &libc::sigset_t) -> i32 {
    let mut signal: libc::c_int = 0;
    // SAFETY: `set` was initialised by block_stop_signals; sigwait writes
    // the received signal number into `signal`.
    let rc = unsafe { libc::sigwait(set, &mut signal) };
    if rc != 0 {
        log::error!("sigwait failed: {rc}");
    }
    signal
}

/// `--dev`: three nodes of one cluster in this process.
fn dev_configs(args: &Args) -> Result<Vec<ServerConfig>, String> {
    let conf = ClusterConf::parse(
        "cluster_name = dkv-dev\nreplication_factor = 3\nwrite_quorum = 2\nread_quorum = 2\n\
         node 1 127.0.0.1:7001\nnode 2 127.0.0.1:7002\nnode 3 127.0.0.1:7003\n",
    )
    .map_err(|e| e.to_string())?;
    let base = args
        .data_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("./dkv-data"));
    // The three nodes share a secret made up for this run, unless given.
    let secret = match args.cluster_secret.as_str() {
        "" => dkv::random::secret_hex(),
        given => given.to_string(),
    };
    let mut configs = Vec::new();
    for member in &conf.nodes {
        let node_args = Args {
            node_id: member.id.0,
            port: Some(member.client.port()),
            data_dir: Some(base.join(format!("node-{}", member.id))),
            cluster_conf: None,
            wal_dir: None,
            snapshot_dir: None,
            dev: false,
            cluster_secret: secret.clone(),
            ..args.clone()
        };
        let mut config = build_config(&node_args)?;
        config.cluster = conf.clone();
        configs.push(config);
    }
    Ok(configs)
}

/// The node allocates a few small buffers per request (messages, tallies,
/// replies) and frees them on another turn; mimalloc's per-thread free
/// lists serve that at about two thirds of glibc's cost (Redis links
/// jemalloc for the same reason). Measured in benches/README.md.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: dkv::allocator::NodeAllocator = dkv::allocator::NodeAllocator;

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let args = Args::parse();
    let configs = if args.dev {
        dev_configs(&args)
    } else {
        build_config(&args).map(|c| vec![c])
    };
    let configs = match configs {
        Ok(configs) => configs,
        Err(e) => {
            eprintln!("dkv-node: {e}");
            return ExitCode::from(2);
        }
    };
    let signals = block_stop_signals();
    let mut nodes = Vec::new();
    for config in configs {
        let id = config.node_id;
        match server::start(config) {
            Ok(node) => {
                println!(
                    "dkv-node {id} ready on {} (try: redis-cli -p {})",
                    node.client_addr(),
                    node.client_addr().port()
                );
                nodes.push(node);
            }
            Err(e) => {
                eprintln!("dkv-node {id}: {e}");
                return ExitCode::from(1);
            }
        }
    }
    if args.dev {
        println!(
            "dkv dev cluster: 3 nodes, N=3 W=2 R=2, data under {}. Connect to any node: \
             redis-cli -p 7001 | 7002 | 7003. Ctrl-C stops all three.",
            args.data_dir
                .clone()
                .unwrap_or_else(|| PathBuf::from("./dkv-data"))
                .display()
        );
    }
    let signal = wait_for_stop_signal(&signals);
    log::info!("signal {signal} received: shutting down");
    let mut status = ExitCode::SUCCESS;
    for node in nodes {
        if let Err(e) = node.stop() {
            eprintln!("dkv-node: shutdown: {e}");
            status = ExitCode::from(1);
        }
    }
    status
}
