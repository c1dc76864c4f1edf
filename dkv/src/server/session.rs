//! Per-connection state that commands read and change: authentication,
//! client name, and (with the cluster) the chosen consistency levels.

use std::net::SocketAddr;

use crate::node::Consistency;

/// One client connection's state. Owned by the reactor; lent to a worker
/// for the duration of a batch.
#[derive(Debug, Clone)]
pub struct Session {
    /// Connection id, as `CLIENT ID` and `HELLO` report it.
    pub id: u64,
    /// The client's address.
    pub peer: Option<SocketAddr>,
    /// Whether the connection may run commands (always, when no password
    /// is configured).
    pub authenticated: bool,
    /// Set by `CLIENT SETNAME` / `HELLO ... SETNAME`.
    pub name: Option<Vec<u8>>,
    /// The reply protocol `HELLO` chose: 2 (RESP2, the default) or 3. dkv's
    /// replies differ between them only in the null and HELLO's own map.
    pub protocol: u8,
    /// Replicas a read waits for (`CONSISTENCY`; default the conf's R).
    pub read_consistency: Consistency,
    /// Replicas a write waits for (`CONSISTENCY`; default the conf's W).
    pub write_consistency: Consistency,
}

impl Session {
    /// A new connection's session.
    pub fn new(id: u64, peer: Option<SocketAddr>, password_required: bool) -> Session {
        Session {
            id,
            peer,
            authenticated: !password_required,
            name: None,
            protocol: 2,
            read_consistency: Consistency::Quorum,
            write_consistency: Consistency::Quorum,
        }
    }
}
