//! What the command layer knows of its node that no command changes
//! ([`Settings`]), and the counters it shares with the IO layer and the
//! node's handle ([`ServerStats`]).

use std::net::IpAddr;
use std::sync::atomic::AtomicU64;

use crate::config::ClusterConf;
use crate::resp::Limits;
use crate::version::NodeId;
use crate::wal::FsyncMode;

/// Static settings the commands consult (`INFO`, `CONFIG GET`, `AUTH`).
#[derive(Debug, Clone)]
pub struct Settings {
    /// This node.
    pub node_id: NodeId,
    /// The client address it listens on.
    pub bind: IpAddr,
    /// The client port it listens on.
    pub port: u16,
    /// The password clients must `AUTH` with, if any.
    pub requirepass: Option<String>,
    /// Request limits for authenticated connections.
    pub limits: Limits,
    /// Unsent reply bytes past which a connection is not read from.
    pub max_output_bytes: usize,
    /// Clients connected at most (after fitting the descriptor limit).
    pub max_clients: usize,
    /// The data log's fsync mode.
    pub fsync: FsyncMode,
    /// The cluster (a node alone is a cluster of one).
    pub cluster: ClusterConf,
}

/// Counters shared by the IO layer (connections), the command layer
/// (commands) and the node's handle; updated with relaxed atomics.
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
    /// Clients closed because their unsent replies passed their bound.
    pub client_output_buffer_limit_disconnections: AtomicU64,
    /// Clients refused because `maxclients` were connected.
    pub rejected_connections: AtomicU64,
    /// Peer handshakes refused since start, either side.
    pub peer_handshakes_refused: AtomicU64,
    /// Messages sent to and received from peers, and `write` calls on
    /// peer links, since start.
    pub peer_messages_sent: AtomicU64,
    pub peer_messages_received: AtomicU64,
    pub peer_socket_writes: AtomicU64,
}
