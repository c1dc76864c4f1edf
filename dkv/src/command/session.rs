//! [`Session`]: one client connection's state that commands read and
//! change: authentication, name, reply protocol, consistency levels.
//! The IO layer holds it for its connection and lends it to every command;
//! it never looks inside.

use std::net::SocketAddr;

use crate::command::transaction::Transaction;
use crate::node::Consistency;

/// One client connection's command state.
#[derive(Debug, Clone)]
pub struct Session {
    id: u64,
    peer: Option<SocketAddr>,
    pub(crate) authenticated: bool,
    pub(crate) name: Option<Vec<u8>>,
    /// 2 (RESP2, the default) or 3, as `HELLO` chose. Replies differ only
    /// in the null, maps and HELLO's own reply.
    pub(crate) protocol: u8,
    pub(crate) read_consistency: Consistency,
    pub(crate) write_consistency: Consistency,
    /// Open between `MULTI` and `EXEC`/`DISCARD`.
    pub(crate) transaction: Option<Transaction>,
}

impl Session {
    /// A new connection's session; it must `AUTH` first when
    /// `password_required`.
    pub(crate) fn new(id: u64, peer: Option<SocketAddr>, password_required: bool) -> Session {
        Session {
            id,
            peer,
            authenticated: !password_required,
            name: None,
            protocol: 2,
            read_consistency: Consistency::Quorum,
            write_consistency: Consistency::Quorum,
            transaction: None,
        }
    }

    /// The connection id, as `CLIENT ID` and `HELLO` report it.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The client's address.
    pub fn peer(&self) -> Option<SocketAddr> {
        self.peer
    }

    /// Whether the connection may run every command.
    pub fn is_authenticated(&self) -> bool {
        self.authenticated
    }

    pub(crate) fn resp3(&self) -> bool {
        self.protocol == 3
    }
}
