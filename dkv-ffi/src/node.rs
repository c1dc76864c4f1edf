//! Running nodes inside the calling process: the [`dkv_node_config`]
//! builder and the [`dkv_node`] handle (start, port, status, stop, free).
//!
//! A config is plain data turned into a core `ServerConfig` only by
//! `dkv_node_start`, so every setter is cheap and every cross-field check
//! (conf file vs node list, quorums) happens once, at start, with a
//! message. A node handle owns the running node behind a mutex: stopping
//! it from one thread while another asks its status is safe.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use dkv::client::{Client, ClientOptions};
use dkv::config::{cluster_conf::PEER_PORT_OFFSET, ClusterConf, NodeAddr};
use dkv::server::{self, Server, ServerConfig, ServerError};
use dkv::snapshot::SnapshotError;
use dkv::wal::FsyncMode;
use dkv::{NodeId, StoreError};

use crate::args;
use crate::buf::dkv_cluster_status;
use crate::error::{dkv_status, guard, guard_void, Error};
use crate::{DKV_FSYNC_ALWAYS, DKV_FSYNC_NEVER, DKV_FSYNC_PERIODIC};

/// A node's settings, built with the `dkv_node_config_*` functions and
/// read by `dkv_node_start`. Not thread-safe: use one config from one
/// thread at a time. Free it with `dkv_node_config_free` (a started node
/// does not need its config any more).
#[allow(non_camel_case_types)]
pub struct dkv_node_config {
    node_id: u32,
    port: Option<u16>,
    data_dir: Option<PathBuf>,
    conf_path: Option<PathBuf>,
    nodes: Vec<NodeAddr>,
    quorums: (u32, u32, u32),
    fsync: FsyncMode,
    fsync_window: Duration,
    timeouts: (u32, u32, u32),
    /// `None`: the secret this process made up (see
    /// `dkv_node_config_set_cluster_secret`).
    cluster_secret: Option<String>,
}

/// A node running in this process. Thread-safe: any function taking a
/// `dkv_node` may be called from any thread, concurrently. Free it with
/// `dkv_node_free` (which stops it first if it still runs).
#[allow(non_camel_case_types)]
pub struct dkv_node {
    handle: Mutex<Option<Server>>,
    addr: SocketAddr,
}

fn resolve(text: &str, what: &str) -> Result<SocketAddr, Error> {
    text.to_socket_addrs()
        .map_err(|e| Error::invalid(format!("{what} `{text}`: {e}")))?
        .next()
        .ok_or_else(|| Error::invalid(format!("{what} `{text}` resolves to no address")))
}

fn config_error(e: impl std::fmt::Display) -> Error {
    Error::new(dkv_status::Config, e.to_string())
}

impl dkv_node_config {
    /// The cluster this config describes.
    fn cluster(&self) -> Result<Option<ClusterConf>, Error> {
        let mut conf = match (&self.conf_path, self.nodes.is_empty()) {
            (Some(_), false) => {
                return Err(config_error(
                    "both a cluster conf file and dkv_node_config_add_node were given; use one",
                ))
            }
            (Some(path), true) => ClusterConf::load(path).map_err(config_error)?,
            (None, false) => {
                let n = self.nodes.len().min(3);
                ClusterConf {
                    replication_factor: n,
                    write_quorum: n / 2 + 1,
                    read_quorum: n / 2 + 1,
                    nodes: self.nodes.clone(),
                    ..ClusterConf::default()
                }
            }
            (None, true) => return Ok(None),
        };
        let (n, w, r) = self.quorums;
        for (value, field) in [
            (n, &mut conf.replication_factor),
            (w, &mut conf.write_quorum),
            (r, &mut conf.read_quorum),
        ] {
            if value > 0 {
                *field = value as usize;
            }
        }
        conf.validate().map_err(config_error)?;
        Ok(Some(conf))
    }

    fn build(&self) -> Result<ServerConfig, Error> {
        let id = NodeId(self.node_id);
        let cluster = self.cluster()?;
        let member_port = cluster
            .as_ref()
            .and_then(|c| c.node(id))
            .map(|m| m.client.port());
        if cluster.is_some() && member_port.is_none() {
            return Err(config_error(format!(
                "node {id} is not in the cluster (set it with dkv_node_config_set_node_id)"
            )));
        }
        let port = self.port.or(member_port).unwrap_or(0);
        let data_dir = self
            .data_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("./dkv-data/node-{id}")));
        let mut config = ServerConfig::new(id, port, &data_dir);
        if let Some(cluster) = cluster {
            config.cluster = cluster;
        }
        config.store.fsync = self.fsync;
        config.store.fsync_window = self.fsync_window;
        config.cluster_secret = self
            .cluster_secret
            .clone()
            .unwrap_or_else(dkv::random::process_secret);
        let (request, heartbeat, failure) = self.timeouts;
        let replication = &mut config.replication;
        for (ms, field) in [
            (request, &mut replication.request_timeout),
            (heartbeat, &mut replication.heartbeat_interval),
            (failure, &mut replication.failure_timeout),
        ] {
            if ms > 0 {
                *field = Duration::from_millis(u64::from(ms));
            }
        }
        Ok(config)
    }
}

/// Creates a config with the defaults: node id 1, a free port (or the
/// node's port in its cluster), data under `./dkv-data/node-<id>`, a
/// single-node cluster, fsync always.
/// On success `*config_out` owns a new config; on failure it is NULL.
#[no_mangle]
pub extern "C" fn dkv_node_config_new(config_out: *mut *mut dkv_node_config) -> dkv_status {
    guard("dkv_node_config_new", || {
        // SAFETY: a non-NULL out-pointer is writable per the contract.
        let out = unsafe { args::non_null_mut(config_out, "config_out")? };
        *out = Box::into_raw(Box::new(dkv_node_config {
            node_id: 1,
            port: None,
            data_dir: None,
            conf_path: None,
            nodes: Vec::new(),
            quorums: (0, 0, 0),
            fsync: FsyncMode::Always,
            fsync_window: Duration::ZERO,
            timeouts: (0, 0, 0),
            cluster_secret: None,
        }));
        Ok(dkv_status::Ok)
    })
}

/// Frees a config. NULL does nothing.
#[no_mangle]
pub extern "C" fn dkv_node_config_free(config: *mut dkv_node_config) {
    guard_void("dkv_node_config_free", || {
        if !config.is_null() {
            // SAFETY: a non-NULL config came from dkv_node_config_new and
            // is freed once.
            drop(unsafe { Box::from_raw(config) });
        }
    });
}

/// Runs `set` on the config behind `config`.
fn with_config(
    name: &str,
    config: *mut dkv_node_config,
    set: impl FnOnce(&mut dkv_node_config) -> Result<(), Error>,
) -> dkv_status {
    guard(name, || {
        // SAFETY: a non-NULL config is live and used by this thread only.
        let config = unsafe { args::non_null_mut(config, "config")? };
        set(config)?;
        Ok(dkv_status::Ok)
    })
}

/// Sets the node's id (1 or more; default 1).
#[no_mangle]
pub extern "C" fn dkv_node_config_set_node_id(
    config: *mut dkv_node_config,
    node_id: u32,
) -> dkv_status {
    with_config("dkv_node_config_set_node_id", config, |c| {
        if node_id == 0 {
            return Err(Error::invalid("node ids start at 1"));
        }
        c.node_id = node_id;
        Ok(())
    })
}

/// Sets the client port on 127.0.0.1. 0 picks a free port (read it back
/// with `dkv_node_port`). Default: the node's port in its cluster, else 0.
#[no_mangle]
pub extern "C" fn dkv_node_config_set_port(config: *mut dkv_node_config, port: u16) -> dkv_status {
    with_config("dkv_node_config_set_port", config, |c| {
        c.port = Some(port);
        Ok(())
    })
}

/// Sets the directory of the node's WAL, snapshots and hints (created if
/// missing). `path` is a UTF-8 string, copied.
#[no_mangle]
pub extern "C" fn dkv_node_config_set_data_dir(
    config: *mut dkv_node_config,
    path: *const std::ffi::c_char,
) -> dkv_status {
    // SAFETY: a non-NULL path is NUL-terminated per the contract.
    let path = unsafe { args::string(path, "path") };
    with_config("dkv_node_config_set_data_dir", config, |c| {
        c.data_dir = Some(PathBuf::from(path?));
        Ok(())
    })
}

/// Sets the cluster secret: every node of the cluster must be given the
/// same one, and each proves it knows it when it connects to a peer (the
/// secret itself never crosses the network). Without this call a node
/// uses a random secret made up once per process, shared by every node
/// this process starts and by no other process: call it when the nodes of
/// one cluster run in different processes. `secret` is a UTF-8 string,
/// copied; it may not be empty.
#[no_mangle]
pub extern "C" fn dkv_node_config_set_cluster_secret(
    config: *mut dkv_node_config,
    secret: *const std::ffi::c_char,
) -> dkv_status {
    // SAFETY: a non-NULL secret is NUL-terminated per the contract.
    let secret = unsafe { args::string(secret, "secret") };
    with_config("dkv_node_config_set_cluster_secret", config, |c| {
        let secret = secret?;
        if secret.is_empty() {
            return Err(Error::invalid("the cluster secret may not be empty"));
        }
        c.cluster_secret = Some(secret.to_string());
        Ok(())
    })
}

/// Names a `cluster.conf` file (members and shared settings), read when
/// the node starts. Cannot be combined with `dkv_node_config_add_node`.
#[no_mangle]
pub extern "C" fn dkv_node_config_set_cluster_conf(
    config: *mut dkv_node_config,
    path: *const std::ffi::c_char,
) -> dkv_status {
    // SAFETY: a non-NULL path is NUL-terminated per the contract.
    let path = unsafe { args::string(path, "path") };
    with_config("dkv_node_config_set_cluster_conf", config, |c| {
        c.conf_path = Some(PathBuf::from(path?));
        Ok(())
    })
}

/// Adds a cluster member (this node included) instead of a conf file.
/// `client_addr` is "host:port" where clients reach it; `peer_addr` is
/// "host:port" for replication traffic, or NULL for the client port +
/// 10000. With a node list, N defaults to min(3, members) and W = R =
/// N/2 + 1 (see `dkv_node_config_set_replication`).
#[no_mangle]
pub extern "C" fn dkv_node_config_add_node(
    config: *mut dkv_node_config,
    node_id: u32,
    client_addr: *const std::ffi::c_char,
    peer_addr: *const std::ffi::c_char,
) -> dkv_status {
    // SAFETY: non-NULL strings are NUL-terminated per the contract.
    let client = unsafe { args::string(client_addr, "client_addr") };
    let peer = (!peer_addr.is_null()).then(|| unsafe { args::string(peer_addr, "peer_addr") });
    with_config("dkv_node_config_add_node", config, |c| {
        if node_id == 0 {
            return Err(Error::invalid("node ids start at 1"));
        }
        let client = resolve(client?, "client_addr")?;
        let peer = match peer {
            Some(text) => resolve(text?, "peer_addr")?,
            None => {
                let port = client.port().checked_add(PEER_PORT_OFFSET).ok_or_else(|| {
                    Error::invalid("client port + 10000 is past 65535: give peer_addr")
                })?;
                SocketAddr::new(client.ip(), port)
            }
        };
        c.nodes.push(NodeAddr {
            id: NodeId(node_id),
            client,
            peer,
        });
        Ok(())
    })
}

/// Sets N (replicas per key), W and R (acknowledgements a QUORUM write or
/// read waits for). 0 keeps the value from the conf file or the default.
/// Checked when the node starts: 1 <= W, R <= N <= members, W + R > N.
#[no_mangle]
pub extern "C" fn dkv_node_config_set_replication(
    config: *mut dkv_node_config,
    n: u32,
    w: u32,
    r: u32,
) -> dkv_status {
    with_config("dkv_node_config_set_replication", config, |c| {
        c.quorums = (n, w, r);
        Ok(())
    })
}

/// Sets when writes reach the disk: `DKV_FSYNC_ALWAYS` (acknowledge after
/// fsync; the default), `DKV_FSYNC_PERIODIC` (fsync every `interval_ms`,
/// 1 or more), or `DKV_FSYNC_NEVER`. `interval_ms` is ignored otherwise.
#[no_mangle]
pub extern "C" fn dkv_node_config_set_fsync(
    config: *mut dkv_node_config,
    mode: u32,
    interval_ms: u32,
) -> dkv_status {
    with_config("dkv_node_config_set_fsync", config, |c| {
        c.fsync = match mode {
            DKV_FSYNC_ALWAYS => FsyncMode::Always,
            DKV_FSYNC_PERIODIC if interval_ms > 0 => {
                FsyncMode::Periodic(Duration::from_millis(u64::from(interval_ms)))
            }
            DKV_FSYNC_PERIODIC => {
                return Err(Error::invalid("DKV_FSYNC_PERIODIC needs interval_ms >= 1"))
            }
            DKV_FSYNC_NEVER => FsyncMode::Never,
            other => {
                return Err(Error::invalid(format!(
                    "fsync mode {other} is not DKV_FSYNC_*"
                )))
            }
        };
        Ok(())
    })
}

/// Sets the group commit window, in microseconds (0, the default, syncs
/// back to back): with `DKV_FSYNC_ALWAYS`, a busy data log waits this long
/// after one fsync began before it starts the next, so each covers more
/// writes, and a writer waiting alone is never held (as `dkv-node
/// --fsync-window-us`). At most 1000000; `dkv_node_start` refuses a
/// window with another fsync mode (CONFIG).
#[no_mangle]
pub extern "C" fn dkv_node_config_set_fsync_window(
    config: *mut dkv_node_config,
    window_us: u32,
) -> dkv_status {
    with_config("dkv_node_config_set_fsync_window", config, |c| {
        let window = Duration::from_micros(u64::from(window_us));
        if window > dkv::store::MAX_FSYNC_WINDOW {
            return Err(Error::invalid(format!(
                "fsync window {window_us} us is over 1000000 (one second)"
            )));
        }
        c.fsync_window = window;
        Ok(())
    })
}

/// Sets, in milliseconds, how long a request may wait for its quorum
/// (default 2000), the heartbeat period (250), and the silence after
/// which a peer is considered down (1500). 0 keeps a default.
#[no_mangle]
pub extern "C" fn dkv_node_config_set_timeouts(
    config: *mut dkv_node_config,
    request_ms: u32,
    heartbeat_ms: u32,
    failure_ms: u32,
) -> dkv_status {
    with_config("dkv_node_config_set_timeouts", config, |c| {
        c.timeouts = (request_ms, heartbeat_ms, failure_ms);
        Ok(())
    })
}

fn node_error(e: ServerError) -> Error {
    let status = match &e {
        ServerError::Config(_) => dkv_status::Config,
        ServerError::Store(StoreError::Snapshot(SnapshotError::Corrupt { .. })) => {
            dkv_status::Corruption
        }
        _ => dkv_status::Io,
    };
    Error::new(status, e.to_string())
}

/// Starts a node from `config` (which is only read, and may be freed or
/// reused afterwards). Returns once the node accepts connections; peers
/// need not be up yet. On success `*node_out` owns the node; on failure
/// it is NULL and the status says why (CONFIG, IO, CORRUPTION).
#[no_mangle]
pub extern "C" fn dkv_node_start(
    config: *const dkv_node_config,
    node_out: *mut *mut dkv_node,
) -> dkv_status {
    guard("dkv_node_start", || {
        // SAFETY: a non-NULL out-pointer is writable per the contract.
        let out = unsafe { args::non_null_mut(node_out, "node_out")? };
        *out = std::ptr::null_mut();
        // SAFETY: a non-NULL config is live.
        let config = unsafe { args::non_null(config, "config")? }.build()?;
        let handle = server::start(config).map_err(node_error)?;
        let addr = handle.client_addr();
        *out = Box::into_raw(Box::new(dkv_node {
            handle: Mutex::new(Some(handle)),
            addr,
        }));
        Ok(dkv_status::Ok)
    })
}

/// Writes the node's client port (useful after port 0) to `*port_out`.
/// Still answers after `dkv_node_stop`.
#[no_mangle]
pub extern "C" fn dkv_node_port(node: *const dkv_node, port_out: *mut u16) -> dkv_status {
    guard("dkv_node_port", || {
        // SAFETY: non-NULL pointers are live per the contract.
        let node = unsafe { args::non_null(node, "node")? };
        let out = unsafe { args::non_null_mut(port_out, "port_out")? };
        *out = node.addr.port();
        Ok(dkv_status::Ok)
    })
}

/// Fills `*status_out` with the node's view of its cluster: peers up or
/// down, hints pending for each. Free it with `dkv_cluster_status_free`.
/// The view is refreshed every 50 ms. UNAVAILABLE once the node stopped.
/// `timeout_ms` 0 means 5000.
#[no_mangle]
pub extern "C" fn dkv_node_status(
    node: *const dkv_node,
    timeout_ms: u32,
    status_out: *mut dkv_cluster_status,
) -> dkv_status {
    guard("dkv_node_status", || {
        // SAFETY: non-NULL pointers are live per the contract.
        let out = unsafe { args::non_null_mut(status_out, "status_out")? };
        *out = dkv_cluster_status::EMPTY;
        let node = unsafe { args::non_null(node, "node")? };
        let running = node.handle.lock().map(|h| h.is_some()).unwrap_or(false);
        if !running {
            return Err(Error::new(dkv_status::Unavailable, "the node is stopped"));
        }
        let timeout = args::timeout(timeout_ms).unwrap_or(Duration::from_secs(5));
        let options = ClientOptions {
            connect_timeout: timeout,
            timeout,
            ..ClientOptions::default()
        };
        let mut client = Client::connect(&[node.addr], options)?;
        let status = client.status(None)?;
        *out = dkv_cluster_status::from_status(&status);
        Ok(dkv_status::Ok)
    })
}

/// Stops the node: stops accepting, finishes in-flight commands, syncs
/// and closes its store. The handle stays valid (for `dkv_node_port`) and
/// must still be freed. Stopping a stopped node returns OK.
#[no_mangle]
pub extern "C" fn dkv_node_stop(node: *mut dkv_node) -> dkv_status {
    guard("dkv_node_stop", || {
        // SAFETY: a non-NULL node is live per the contract.
        let node = unsafe { args::non_null(node, "node")? };
        // A panic while the lock was held cannot leave the Option torn:
        // take whatever it holds.
        let handle = match node.handle.lock() {
            Ok(mut guard) => guard.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        if let Some(handle) = handle {
            handle.stop().map_err(node_error)?;
        }
        Ok(dkv_status::Ok)
    })
}

/// Stops the node if it still runs, then frees the handle. NULL does
/// nothing. No other thread may use the handle during or after this call.
#[no_mangle]
pub extern "C" fn dkv_node_free(node: *mut dkv_node) {
    guard_void("dkv_node_free", || {
        if !node.is_null() {
            // SAFETY: a non-NULL node came from dkv_node_start and is
            // freed once; dropping it stops the node (Server's Drop).
            drop(unsafe { Box::from_raw(node) });
        }
    });
}
