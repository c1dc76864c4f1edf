//! The cluster side of the reactor: the sans-IO [`Node`] it drives, the
//! peer links it feeds, and the client commands it turns into quorum
//! requests.
//!
//! Data commands (`GET`, `SET`, `DEL`, `EXISTS`, `MGET`, `MSET`) become one
//! node request per key; their reply is a placeholder in the connection's
//! output, filled when every key's request completes, so replies still go
//! out in command order. Everything here runs on the reactor thread: the
//! node is single-threaded by design, and its work per request is small.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::Registry;
use parking_lot::Mutex;

use crate::clock::wall_millis;
use crate::disk::StoreDisk;
use crate::net::peers::Peers;
use crate::net::slab::Key;
use crate::node::{ClientError, ClientId, ClientOp, ClientReply, Consistency, Node, Now, Output};
use crate::peer::Envelope;
use crate::resp::reply;
use crate::server::session::Session;
use crate::server::ClusterStatus;

/// What a data command asked for, and so how its replies combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CallKind {
    Get,
    Set,
    Del,
    Exists,
    Mget,
    Mset,
}

/// One client command in progress across one or more node requests.
struct Call {
    conn: Key,
    kind: CallKind,
    resp3: bool,
    results: Vec<Option<Result<ClientReply, ClientError>>>,
    remaining: usize,
}

/// A finished command: the connection and the reply bytes for its slot.
pub(crate) struct Finished {
    pub conn: Key,
    pub call: u64,
    pub bytes: Vec<u8>,
}

pub(crate) struct ClusterRuntime {
    pub node: Node<StoreDisk>,
    pub peers: Peers,
    started: Instant,
    calls: HashMap<u64, Call>,
    clients: HashMap<u64, (u64, usize)>,
    next_call: u64,
    next_client: u64,
    status: Arc<Mutex<ClusterStatus>>,
    status_published: Instant,
}

/// How often the state INFO shows is refreshed.
const STATUS_EVERY: Duration = Duration::from_millis(50);

/// Whether `name` (lower case) is a command the cluster coordinates.
pub(crate) fn is_data_command(name: &[u8]) -> bool {
    matches!(
        name,
        b"get" | b"set" | b"del" | b"exists" | b"mget" | b"mset"
    )
}

impl ClusterRuntime {
    pub fn new(
        node: Node<StoreDisk>,
        peers: Peers,
        started: Instant,
        status: Arc<Mutex<ClusterStatus>>,
    ) -> ClusterRuntime {
        ClusterRuntime {
            node,
            peers,
            started,
            calls: HashMap::new(),
            clients: HashMap::new(),
            next_call: 1,
            next_client: 1,
            status,
            status_published: started,
        }
    }

    pub fn now(&self) -> Now {
        Now {
            mono: self.started.elapsed().as_millis() as u64,
            wall: wall_millis(),
        }
    }

    /// When the reactor must next call [`ClusterRuntime::tick`].
    pub fn next_deadline(&self) -> Option<Instant> {
        let node = self
            .node
            .poll_timeout()
            .map(|ms| self.started + Duration::from_millis(ms));
        match (node, self.peers.next_timer()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Starts a data command; `Ok(call)` names the reply slot to hold, `Err`
    /// is an immediate error reply (bad arguments).
    pub fn start(
        &mut self,
        conn: Key,
        session: &Session,
        name: &[u8],
        args: &[&[u8]],
    ) -> Result<u64, Vec<u8>> {
        let wrong_args = |name: &[u8]| {
            let mut out = Vec::new();
            reply::error(
                &mut out,
                "ERR",
                format!(
                    "wrong number of arguments for '{}' command",
                    String::from_utf8_lossy(name)
                ),
            );
            out
        };
        let (kind, ops, consistency): (CallKind, Vec<ClientOp>, Consistency) = match name {
            b"get" if args.len() == 1 => (
                CallKind::Get,
                vec![ClientOp::Get {
                    key: args[0].to_vec(),
                }],
                session.read_consistency,
            ),
            b"set" if args.len() == 2 => (
                CallKind::Set,
                vec![ClientOp::Put {
                    key: args[0].to_vec(),
                    value: args[1].to_vec(),
                }],
                session.write_consistency,
            ),
            b"set" if args.len() > 2 => {
                let mut out = Vec::new();
                reply::error_line(
                    &mut out,
                    &crate::server::commands::set_option_error(args[2]),
                );
                return Err(out);
            }
            b"del" if !args.is_empty() => (
                CallKind::Del,
                args.iter()
                    .map(|k| ClientOp::Delete { key: k.to_vec() })
                    .collect(),
                session.write_consistency,
            ),
            b"exists" if !args.is_empty() => (
                CallKind::Exists,
                args.iter()
                    .map(|k| ClientOp::Get { key: k.to_vec() })
                    .collect(),
                session.read_consistency,
            ),
            b"mget" if !args.is_empty() => (
                CallKind::Mget,
                args.iter()
                    .map(|k| ClientOp::Get { key: k.to_vec() })
                    .collect(),
                session.read_consistency,
            ),
            b"mset" if !args.is_empty() && args.len() % 2 == 0 => (
                CallKind::Mset,
                args.chunks_exact(2)
                    .map(|p| ClientOp::Put {
                        key: p[0].to_vec(),
                        value: p[1].to_vec(),
                    })
                    .collect(),
                session.write_consistency,
            ),
            _ => return Err(wrong_args(name)),
        };
        let call = self.next_call;
        self.next_call += 1;
        self.calls.insert(
            call,
            Call {
                conn,
                kind,
                resp3: session.protocol == 3,
                results: vec![None; ops.len()],
                remaining: ops.len(),
            },
        );
        let now = self.now();
        for (index, op) in ops.into_iter().enumerate() {
            let client = self.next_client;
            self.next_client += 1;
            self.clients.insert(client, (call, index));
            self.node
                .handle_client(now, ClientId(client), op, consistency);
        }
        Ok(call)
    }

    /// Feeds received peer messages to the node.
    pub fn deliver(&mut self, envelopes: Vec<Envelope>) {
        for envelope in envelopes {
            let now = self.now();
            self.node.handle_message(now, envelope);
        }
    }

    /// Releases durable acknowledgements; runs the node's timers and
    /// reconnects peers when they are due.
    pub fn tick(&mut self, registry: &Registry) {
        let now = self.now();
        self.node.handle_durable(now);
        if self.node.poll_timeout().is_some_and(|t| t <= now.mono) {
            self.node.handle_tick(now);
        }
        let wall = Instant::now();
        if self.peers.next_timer().is_some_and(|t| t <= wall) {
            self.peers.connect_due(registry, wall);
        }
    }

    /// Sends the node's messages and collects finished commands.
    pub fn drain(&mut self, registry: &Registry, finished: &mut Vec<Finished>) {
        while let Some(output) = self.node.poll_output() {
            match output {
                Output::Send { to, envelope } => self.peers.send(to, &envelope),
                Output::Reply { client, result } => {
                    let Some((call_id, index)) = self.clients.remove(&client.0) else {
                        continue;
                    };
                    let Some(call) = self.calls.get_mut(&call_id) else {
                        continue;
                    };
                    call.results[index] = Some(result);
                    call.remaining -= 1;
                    if call.remaining == 0 {
                        if let Some(call) = self.calls.remove(&call_id) {
                            finished.push(Finished {
                                conn: call.conn,
                                call: call_id,
                                bytes: render(&call),
                            });
                        }
                    }
                }
            }
        }
        self.peers.flush(registry);
        if self.status_published.elapsed() >= STATUS_EVERY {
            self.publish_status();
        }
    }

    fn publish_status(&mut self) {
        self.status_published = Instant::now();
        let mut status = self.status.lock();
        status.peers = self
            .node
            .peer_states()
            .into_iter()
            .map(|(id, up)| (id, up, self.peers.is_connected(id)))
            .collect();
        status.hints_pending = self.node.hints_pending();
        status.stats = self.node.stats().clone();
        status.ring_tokens = self.node.ring().token_count();
    }
}

/// The RESP reply of a finished command.
fn render(call: &Call) -> Vec<u8> {
    let mut out = Vec::new();
    let results: Vec<&Result<ClientReply, ClientError>> = call.results.iter().flatten().collect();
    // Any failure fails the whole command (for MGET/MSET/DEL too): the
    // client learns the quorum was not met and can retry.
    if let Some(Err(error)) = results.iter().find(|r| r.is_err()) {
        reply::error_line(&mut out, &error.to_string());
        return out;
    }
    let value = |r: &Result<ClientReply, ClientError>| match r {
        Ok(ClientReply::Value { value, .. }) => value.clone(),
        _ => None,
    };
    match call.kind {
        CallKind::Get => match results.first().and_then(|r| value(r)) {
            Some(v) => reply::bulk(&mut out, &v),
            None => reply::null(&mut out, call.resp3),
        },
        CallKind::Set | CallKind::Mset => reply::ok(&mut out),
        CallKind::Del => {
            let deleted = results
                .iter()
                .filter(|r| matches!(r, Ok(ClientReply::Written { existed: true, .. })))
                .count();
            reply::integer(&mut out, deleted as i64);
        }
        CallKind::Exists => {
            let found = results.iter().filter(|r| value(r).is_some()).count();
            reply::integer(&mut out, found as i64);
        }
        CallKind::Mget => {
            reply::array(&mut out, results.len());
            for r in results {
                match value(r) {
                    Some(v) => reply::bulk(&mut out, &v),
                    None => reply::null(&mut out, call.resp3),
                }
            }
        }
    }
    out
}
