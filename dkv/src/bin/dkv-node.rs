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
use dkv::server::{Node, NodeConfig};
use dkv::wal::FsyncMode;
use dkv::NodeId;

/// A node of dkv, a Dynamo-style distributed in-memory key-value store that
/// speaks the Redis protocol (RESP2).
#[derive(Parser, Debug)]
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

    /// Take a snapshot (and compact the WAL) every this many seconds; 0 turns
    /// timed snapshots off.
    #[arg(long, default_value_t = 600)]
    snapshot_interval: u64,

    /// Also snapshot when the WAL passes this many MiB; 0 turns it off.
    #[arg(long, default_value_t = 256)]
    snapshot_wal_mb: u64,

    /// Threads executing commands (default: one per core); 0 runs commands on
    /// the network thread.
    #[arg(long)]
    worker_threads: Option<usize>,

    /// Require clients to AUTH with this password.
    #[arg(long)]
    requirepass: Option<String>,

    /// `no` allows a non-loopback --bind without --requirepass.
    #[arg(long, default_value = "yes", value_parser = ["yes", "no"])]
    protected_mode: String,

    /// Largest bulk string (key or value) a client may send, in bytes.
    #[arg(long, default_value_t = Limits::default().max_bulk_len)]
    max_bulk_len: usize,

    /// Most arguments in one command.
    #[arg(long, default_value_t = Limits::default().max_args)]
    max_args: usize,

    /// Largest single request, in bytes.
    #[arg(long, default_value_t = Limits::default().max_request_len)]
    max_request_bytes: usize,

    /// Unsent reply bytes past which a client is not read from until they drain.
    #[arg(long, default_value_t = 64 << 20)]
    max_output_bytes: usize,

    /// Storage shards (a power of two).
    #[arg(long, default_value_t = 32)]
    shards: usize,
}

fn build_config(args: &Args) -> Result<NodeConfig, String> {
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
    let mut config = NodeConfig::new(node_id, port, &data_dir);
    config.bind = args.bind;
    config.requirepass = args.requirepass.clone();
    config.allow_unprotected = args.protected_mode == "no";
    if let Some(threads) = args.worker_threads {
        config.worker_threads = threads;
    }
    config.limits = Limits {
        max_bulk_len: args.max_bulk_len,
        max_args: args.max_args,
        max_request_len: args.max_request_bytes,
        ..Limits::default()
    };
    config.max_output_bytes = args.max_output_bytes;
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
    store.snapshot_interval =
        (args.snapshot_interval > 0).then(|| Duration::from_secs(args.snapshot_interval));
    store.snapshot_wal_bytes = (args.snapshot_wal_mb > 0).then_some(args.snapshot_wal_mb << 20);
    store.shards = args.shards;
    if let Some(conf) = conf {
        config.cluster = conf;
    }
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

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let args = Args::parse();
    let config = match build_config(&args) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("dkv-node: {e}");
            return ExitCode::from(2);
        }
    };
    let signals = block_stop_signals();
    let node = match Node::start(config) {
        Ok(node) => node,
        Err(e) => {
            eprintln!("dkv-node: {e}");
            return ExitCode::from(1);
        }
    };
    println!(
        "dkv-node {} ready on {} (try: redis-cli -p {})",
        args.node_id,
        node.client_addr(),
        node.client_addr().port()
    );
    let signal = wait_for_stop_signal(&signals);
    log::info!("signal {signal} received: shutting down");
    match node.stop() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dkv-node: shutdown: {e}");
            ExitCode::from(1)
        }
    }
}
