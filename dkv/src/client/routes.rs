//! Token-aware routing: a client given several nodes learns the ring from
//! the first it reaches (`INFO cluster`: `replication_factor`,
//! `virtual_nodes` and each member's `member_<id>:<addr>`), builds the same
//! [`Ring`] the nodes build, and sends each single-key request to one of
//! the key's replicas, so that the coordinator's own copy is one of the N
//! and a write or a read costs one message pair fewer. The connection the
//! client already has is used when its node is a replica; otherwise one
//! connection per other replica is opened on first use and kept (at most
//! one per member). A replica that cannot be reached, or whose connection
//! breaks, is passed over for [`AVOID_FOR`]; when no replica answers the
//! request goes the ordinary way (any node coordinates any key), so
//! routing never makes a request fail that would otherwise succeed.
//!
//! A client given one node talks to that node only (it may be a test
//! aiming at one coordinator), and `ClientOptions::token_aware` turns
//! routing off.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::conn::CallError;
use super::{broken_not_resent, set_level, Client, ClientError, NodeStatus, Opened, Resend, Side};
use crate::node::Consistency;
use crate::resp::Reply;
use crate::ring::Ring;
use crate::version::NodeId;

/// How long a replica that could not be reached is passed over.
const AVOID_FOR: Duration = Duration::from_secs(1);
/// Bounds on a ring learned from a server: past them, no routing.
const MAX_MEMBERS: usize = 1024;
const MAX_VIRTUAL_NODES: usize = 4096;

/// Where each key's replicas are, as the cluster told it.
#[derive(Debug)]
pub(super) struct Routes {
    ring: Ring,
    replicas: usize,
    addrs: BTreeMap<NodeId, SocketAddr>,
}

impl Routes {
    /// The routes `status` describes, if it describes a cluster.
    pub fn from_status(status: &NodeStatus) -> Option<Routes> {
        let members = &status.members;
        if members.len() < 2
            || members.len() > MAX_MEMBERS
            || status.replication_factor == 0
            || status.virtual_nodes == 0
            || status.virtual_nodes > MAX_VIRTUAL_NODES
        {
            return None;
        }
        let ids: Vec<NodeId> = members.iter().map(|(id, _)| *id).collect();
        Some(Routes {
            ring: Ring::new(&ids, status.virtual_nodes),
            replicas: status.replication_factor,
            addrs: members.iter().copied().collect(),
        })
    }

    /// The addresses of `key`'s replicas, in preference order.
    pub fn replicas_of(&self, key: &[u8]) -> Vec<SocketAddr> {
        self.ring
            .walk(key)
            .take(self.replicas)
            .filter_map(|id| self.addrs.get(&id).copied())
            .collect()
    }
}

/// The key of a command this client routes: one whose only key is its
/// first argument.
pub(super) fn routing_key<'a>(args: &[&'a [u8]]) -> Option<&'a [u8]> {
    let (command, rest) = args.split_first()?;
    let single_key = match *command {
        b"GET" | b"SET" | b"PTTL" | b"PEXPIRE" | b"PERSIST" | b"INCRBY" => true,
        b"DEL" => rest.len() == 1,
        _ => false,
    };
    single_key.then(|| rest.first().copied()).flatten()
}

/// What a routed attempt came to.
pub(super) enum Routed {
    Done(Result<Reply, ClientError>),
    /// Not routed (no routes, the current node is a replica, or no replica
    /// answered): send it the ordinary way.
    NotRouted,
}

impl Client {
    /// Learns the ring from the connected node, when routing applies.
    pub(super) fn learn_routes(&mut self, deadline: Instant) {
        self.routes = None;
        if !self.options.token_aware || self.addrs.len() < 2 {
            return;
        }
        let Some(conn) = self.conn.as_mut() else {
            return;
        };
        match conn.call(&[b"INFO", b"cluster"], deadline) {
            Ok(Reply::Bulk(text)) => {
                let status = NodeStatus::parse(&String::from_utf8_lossy(&text));
                self.routes = Routes::from_status(&status);
            }
            Ok(_) | Err(CallError::Rejected(_) | CallError::Broken(_)) => {}
            // A late reply must not be read as the next request's.
            Err(CallError::Timeout(_) | CallError::Protocol(_)) => self.conn = None,
        }
    }

    /// Sends `args` (a request for `key`) to one of the key's replicas
    /// when the connected node is not one.
    pub(super) fn call_routed(
        &mut self,
        key: &[u8],
        args: &[&[u8]],
        level: Option<(Side, Consistency)>,
        deadline: Instant,
        resend: Resend,
    ) -> Routed {
        let Some(routes) = self.routes.as_ref() else {
            return Routed::NotRouted;
        };
        let replicas = routes.replicas_of(key);
        if self
            .conn
            .as_ref()
            .is_some_and(|c| replicas.contains(&c.addr()))
        {
            return Routed::NotRouted;
        }
        let now = Instant::now();
        self.avoid.retain(|(_, until)| *until > now);
        for addr in replicas {
            if self.avoid.iter().any(|(a, _)| *a == addr) {
                continue;
            }
            let mut conn = match self.pool.iter().position(|c| c.addr() == addr) {
                Some(at) => self.pool.swap_remove(at),
                None => match self.open(addr, deadline) {
                    Ok(conn) => conn,
                    Err(Opened::Unreachable(_)) => {
                        self.avoid.push((addr, now + AVOID_FOR));
                        continue;
                    }
                    Err(Opened::Refused(e)) => return Routed::Done(Err(e)),
                },
            };
            let result = match level {
                Some((side, wanted)) => set_level(&mut conn, side, wanted, deadline)
                    .and_then(|()| conn.call(args, deadline)),
                None => conn.call(args, deadline),
            };
            match result {
                Ok(Reply::Error { code, message }) => {
                    self.pool.push(conn);
                    return Routed::Done(Err(ClientError::from_server(&code, &message)));
                }
                Ok(reply) => {
                    self.pool.push(conn);
                    return Routed::Done(Ok(reply));
                }
                Err(CallError::Broken(e)) => {
                    self.avoid.push((addr, now + AVOID_FOR));
                    if resend == Resend::Never {
                        return Routed::Done(Err(broken_not_resent(&e)));
                    }
                }
                // The connection goes: a late reply must not be read as
                // the next request's.
                Err(CallError::Timeout(e) | CallError::Protocol(e)) => return Routed::Done(Err(e)),
                Err(CallError::Rejected(e)) => {
                    self.pool.push(conn);
                    return Routed::Done(Err(e));
                }
            }
        }
        Routed::NotRouted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_single_key_commands_are_routed() {
        assert_eq!(routing_key(&[b"GET", b"k"]), Some(&b"k"[..]));
        assert_eq!(routing_key(&[b"SET", b"k", b"v"]), Some(&b"k"[..]));
        assert_eq!(routing_key(&[b"DEL", b"k"]), Some(&b"k"[..]));
        assert_eq!(routing_key(&[b"DEL", b"a", b"b"]), None);
        assert_eq!(routing_key(&[b"MGET", b"a", b"b"]), None);
        assert_eq!(routing_key(&[b"GET"]), None);
        assert_eq!(routing_key(&[]), None);
    }

    #[test]
    fn routes_name_the_replicas_the_nodes_compute() {
        let members: Vec<(NodeId, SocketAddr)> = (1..=5)
            .map(|i| {
                let addr = format!("127.0.0.1:{}", 7000 + i).parse().unwrap();
                (NodeId(i), addr)
            })
            .collect();
        let status = NodeStatus {
            replication_factor: 3,
            virtual_nodes: 16,
            members: members.clone(),
            ..NodeStatus::default()
        };
        let routes = Routes::from_status(&status).expect("a cluster");
        let ring = Ring::new(&(1..=5).map(NodeId).collect::<Vec<_>>(), 16);
        for key in [&b"a"[..], b"user:17", b"\xff\x00"] {
            let expected: Vec<SocketAddr> = ring
                .preference_list(key, 3)
                .into_iter()
                .map(|id| members[id.0 as usize - 1].1)
                .collect();
            assert_eq!(routes.replicas_of(key), expected);
        }
        let alone = NodeStatus {
            members: members[..1].to_vec(),
            ..status.clone()
        };
        assert!(Routes::from_status(&alone).is_none());
        let huge = NodeStatus {
            virtual_nodes: MAX_VIRTUAL_NODES + 1,
            ..status
        };
        assert!(Routes::from_status(&huge).is_none());
    }
}
