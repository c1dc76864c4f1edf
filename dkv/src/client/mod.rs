//! A blocking Rust client for a dkv cluster, speaking RESP2 over one
//! [`std::net::TcpStream`] at a time.
//!
//! [`Client::connect`] is given a list of nodes; any node coordinates any
//! request, so the client talks to the first one it can reach and, when
//! that connection breaks, fails over to the next (reconnecting lazily, on
//! the next request). Given more than one node, it also learns the ring and
//! sends each single-key request to one of the key's replicas
//! (`routes.rs`), falling back to the first way when none answers. Each request carries its own [`Consistency`] and
//! timeout: the consistency is sent (`CONSISTENCY READ <l> WRITE <l>`) only
//! when it differs from what the connection's server-side session already
//! has, and the timeout bounds the whole request, reply included. Every
//! data request is sent as `DKV.DEADLINE <unix-ms> ...` with the wall-clock
//! time its timeout ends: a node that reads it only after that (it was
//! paused, say) answers `-TIMEOUT` and applies nothing, so a request this
//! client gave up on cannot take effect behind the requests it sends next
//! (to within the clocks' agreement).
//!
//! | file        | owns                                                       |
//! |-------------|------------------------------------------------------------|
//! | `commands.rs` | expiry, counters, scans and flushes                      |
//! | `conn.rs`   | one connection: encoding, reading under a deadline         |
//! | `reply.rs`  | the incremental RESP2 reply parser                         |
//! | `routes.rs` | token-aware routing: each key to one of its replicas       |
//! | `error.rs`  | [`ClientError`] and its stable [`ErrorKind`]               |
//! | `status.rs` | [`NodeStatus`] parsed from `INFO cluster`                  |
//!
//! Invariants: a request that timed out or got a malformed reply drops its
//! connection (a late reply must never be read as the next request's); a
//! request is retried on another node only when its connection broke,
//! never after a timeout or an error reply. A retried write may be applied
//! twice, which last-write-wins makes harmless for puts; a retried delete
//! may report that the key did not exist.
//!
//! ```no_run
//! use dkv::client::{Client, ClientOptions};
//! use dkv::node::Consistency;
//!
//! let nodes = ["127.0.0.1:7001".parse().unwrap(), "127.0.0.1:7002".parse().unwrap()];
//! let mut client = Client::connect(&nodes, ClientOptions::default())?;
//! client.put(b"k", b"v", Consistency::Quorum, None)?;
//! assert_eq!(client.get(b"k", Consistency::Quorum, None)?, Some(b"v".to_vec()));
//! # Ok::<(), dkv::client::ClientError>(())
//! ```

mod commands;
mod conn;
mod error;
pub mod reply;
mod routes;
mod status;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

pub use commands::{ScanPage, Ttl};
pub use error::{ClientError, ErrorKind};
pub use reply::ReplyLimits;
pub use status::{NodeStatus, PeerStatus};

use crate::node::Consistency;
use crate::resp::Reply;
use conn::{CallError, Connection};

/// How a client connects and how long it waits by default.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Time allowed to open one TCP connection.
    pub connect_timeout: Duration,
    /// Time allowed for a request whose caller gives none.
    pub timeout: Duration,
    /// Sent with `AUTH` on every new connection, when set.
    pub password: Option<String>,
    /// Bounds on replies.
    pub limits: ReplyLimits,
    /// Send each single-key request to one of its key's replicas, when
    /// the client is given more than one node (see `routes.rs`).
    pub token_aware: bool,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            connect_timeout: Duration::from_secs(2),
            timeout: Duration::from_secs(5),
            password: None,
            limits: ReplyLimits::default(),
            token_aware: true,
        }
    }
}

/// A blocking client. Not `Sync` by itself: share it behind a mutex, or
/// give each thread its own.
pub struct Client {
    addrs: Vec<SocketAddr>,
    options: ClientOptions,
    conn: Option<Connection>,
    /// The address to try first when (re)connecting.
    next: usize,
    /// Where keys' replicas are, once learned (token-aware routing).
    routes: Option<routes::Routes>,
    /// Connections to replicas other than `conn`'s node, one per node.
    pool: Vec<Connection>,
    /// Replicas passed over until then: unreachable, or broke.
    avoid: Vec<(SocketAddr, Instant)>,
}

/// Why [`Client::open`] gave no connection.
enum Opened {
    /// The node could not be reached (try another).
    Unreachable(String),
    /// It answered, and refused (a wrong password): no node will do better.
    Refused(ClientError),
}

/// Which of the session's two levels a request uses.
#[derive(Clone, Copy)]
enum Side {
    Read,
    Write,
}

/// Whether a request may be sent again after its connection broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resend {
    WhenBroken,
    Never,
}

/// The text `CONSISTENCY` takes for a level.
fn level_text(level: Consistency) -> String {
    match level {
        Consistency::One => "ONE".into(),
        Consistency::Quorum => "QUORUM".into(),
        Consistency::All => "ALL".into(),
        Consistency::Count(k) => k.to_string(),
    }
}

/// Now + `timeout`, or about a century from now for timeouts too large
/// for the clock (a caller's `Duration::MAX` must not panic).
fn deadline_after(timeout: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout)
        .or_else(|| now.checked_add(Duration::from_secs(100 * 365 * 86_400)))
        .unwrap_or(now)
}

fn check_key(key: &[u8]) -> Result<(), ClientError> {
    if key.is_empty() {
        return Err(ClientError::new(
            ErrorKind::InvalidArgument,
            "keys must not be empty",
        ));
    }
    Ok(())
}

impl Client {
    /// Connects to the first reachable node of `addrs`, in order.
    ///
    /// Fails with [`ErrorKind::InvalidArgument`] for an empty list and
    /// [`ErrorKind::Unavailable`] when no node can be reached.
    pub fn connect(addrs: &[SocketAddr], options: ClientOptions) -> Result<Client, ClientError> {
        if addrs.is_empty() {
            return Err(ClientError::new(
                ErrorKind::InvalidArgument,
                "no node addresses given",
            ));
        }
        let mut client = Client {
            addrs: addrs.to_vec(),
            options,
            conn: None,
            next: 0,
            routes: None,
            pool: Vec::new(),
            avoid: Vec::new(),
        };
        let per_node = client.options.connect_timeout;
        let total = per_node.saturating_mul(u32::try_from(addrs.len()).unwrap_or(u32::MAX));
        client.reconnect(deadline_after(total))?;
        Ok(client)
    }

    /// The node the client is connected to now, if any.
    pub fn connected_to(&self) -> Option<SocketAddr> {
        self.conn.as_ref().map(Connection::addr)
    }

    /// The nodes the client may use, in the order it tries them.
    pub fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// Reads `key`: `Ok(None)` when it is missing or deleted.
    pub fn get(
        &mut self,
        key: &[u8],
        consistency: Consistency,
        timeout: Option<Duration>,
    ) -> Result<Option<Vec<u8>>, ClientError> {
        check_key(key)?;
        match self.request(&[b"GET", key], Some((Side::Read, consistency)), timeout)? {
            Reply::Bulk(value) => Ok(Some(value)),
            Reply::NullBulk => Ok(None),
            other => Err(ClientError::unexpected("GET", &other)),
        }
    }

    /// Writes `value` under `key`.
    pub fn put(
        &mut self,
        key: &[u8],
        value: &[u8],
        consistency: Consistency,
        timeout: Option<Duration>,
    ) -> Result<(), ClientError> {
        check_key(key)?;
        let reply = self.request(
            &[b"SET", key, value],
            Some((Side::Write, consistency)),
            timeout,
        )?;
        expect_ok("SET", reply)
    }

    /// Deletes `key`; `true` when a replica that acknowledged held a live
    /// value before.
    pub fn delete(
        &mut self,
        key: &[u8],
        consistency: Consistency,
        timeout: Option<Duration>,
    ) -> Result<bool, ClientError> {
        check_key(key)?;
        match self.request(&[b"DEL", key], Some((Side::Write, consistency)), timeout)? {
            Reply::Integer(n) => Ok(n > 0),
            other => Err(ClientError::unexpected("DEL", &other)),
        }
    }

    /// Reads several keys in one request (`MGET`); the answers are in the
    /// order of `keys`. The whole batch fails if any key misses its quorum.
    pub fn get_many(
        &mut self,
        keys: &[&[u8]],
        consistency: Consistency,
        timeout: Option<Duration>,
    ) -> Result<Vec<Option<Vec<u8>>>, ClientError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut args: Vec<&[u8]> = Vec::with_capacity(keys.len() + 1);
        args.push(b"MGET");
        for key in keys {
            check_key(key)?;
            args.push(key);
        }
        match self.request(&args, Some((Side::Read, consistency)), timeout)? {
            Reply::Array(items) if items.len() == keys.len() => items
                .into_iter()
                .map(|item| match item {
                    Reply::Bulk(value) => Ok(Some(value)),
                    Reply::NullBulk => Ok(None),
                    other => Err(ClientError::unexpected("MGET", &other)),
                })
                .collect(),
            other => Err(ClientError::unexpected("MGET", &other)),
        }
    }

    /// Writes several pairs in one request (`MSET`). It fails if any pair
    /// misses its quorum; pairs that reached theirs stay written.
    pub fn put_many(
        &mut self,
        pairs: &[(&[u8], &[u8])],
        consistency: Consistency,
        timeout: Option<Duration>,
    ) -> Result<(), ClientError> {
        if pairs.is_empty() {
            return Ok(());
        }
        let mut args: Vec<&[u8]> = Vec::with_capacity(2 * pairs.len() + 1);
        args.push(b"MSET");
        for (key, value) in pairs {
            check_key(key)?;
            args.push(key);
            args.push(value);
        }
        let reply = self.request(&args, Some((Side::Write, consistency)), timeout)?;
        expect_ok("MSET", reply)
    }

    /// The connected node's view of the cluster (`INFO cluster`).
    pub fn status(&mut self, timeout: Option<Duration>) -> Result<NodeStatus, ClientError> {
        match self.request(&[b"INFO", b"cluster"], None, timeout)? {
            Reply::Bulk(text) => Ok(NodeStatus::parse(&String::from_utf8_lossy(&text))),
            other => Err(ClientError::unexpected("INFO", &other)),
        }
    }

    /// The text of `INFO <section>` from the connected node.
    pub fn info(
        &mut self,
        section: &str,
        timeout: Option<Duration>,
    ) -> Result<String, ClientError> {
        match self.request(&[b"INFO", section.as_bytes()], None, timeout)? {
            Reply::Bulk(text) => Ok(String::from_utf8_lossy(&text).into_owned()),
            other => Err(ClientError::unexpected("INFO", &other)),
        }
    }

    /// `PING`: checks that some node answers.
    pub fn ping(&mut self, timeout: Option<Duration>) -> Result<(), ClientError> {
        match self.request(&[b"PING"], None, timeout)? {
            Reply::Simple(s) if s == "PONG" => Ok(()),
            other => Err(ClientError::unexpected("PING", &other)),
        }
    }

    /// Runs one command, failing over to the next node while connections
    /// break. Error replies become errors.
    fn request(
        &mut self,
        args: &[&[u8]],
        level: Option<(Side, Consistency)>,
        timeout: Option<Duration>,
    ) -> Result<Reply, ClientError> {
        self.request_with(args, level, timeout, Resend::WhenBroken)
    }

    /// [`Client::request`], saying whether a command whose connection
    /// broke may be sent again: not one that is not idempotent (`INCR`),
    /// which the broken connection may already have delivered.
    fn request_with(
        &mut self,
        args: &[&[u8]],
        level: Option<(Side, Consistency)>,
        timeout: Option<Duration>,
        resend: Resend,
    ) -> Result<Reply, ClientError> {
        if let Some((_, Consistency::Count(0))) = level {
            return Err(ClientError::new(
                ErrorKind::InvalidArgument,
                "a consistency count must be at least 1",
            ));
        }
        let timeout = timeout.unwrap_or(self.options.timeout);
        let deadline = deadline_after(timeout);
        // Data requests carry the wall-clock time the client stops waiting.
        let wall_deadline = crate::clock::wall_millis()
            .saturating_add(u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX))
            .to_string();
        let routing_key = routes::routing_key(args);
        let wrapped: Vec<&[u8]>;
        let args = if level.is_some() {
            let mut with_deadline: Vec<&[u8]> = Vec::with_capacity(args.len() + 2);
            with_deadline.push(b"DKV.DEADLINE");
            with_deadline.push(wall_deadline.as_bytes());
            with_deadline.extend_from_slice(args);
            wrapped = with_deadline;
            &wrapped[..]
        } else {
            args
        };
        if let Some(key) = routing_key {
            if self.conn.is_none() {
                self.reconnect(deadline)?;
            }
            if let routes::Routed::Done(result) =
                self.call_routed(key, args, level, deadline, resend)
            {
                return result;
            }
        }
        let mut last_error = None;
        // One try per node, plus one: a connection that broke while idle
        // (its node restarted) must not use up the only node's try.
        for _ in 0..=self.addrs.len() {
            if self.conn.is_none() {
                self.reconnect(deadline)?;
            }
            let Some(conn) = self.conn.as_mut() else {
                break;
            };
            let result = match level {
                Some((side, wanted)) => {
                    set_level(conn, side, wanted, deadline).and_then(|()| conn.call(args, deadline))
                }
                None => conn.call(args, deadline),
            };
            match result {
                Ok(Reply::Error { code, message }) => {
                    return Err(ClientError::from_server(&code, &message))
                }
                Ok(reply) => return Ok(reply),
                Err(CallError::Broken(e)) => {
                    // The node is probably gone: start with the next one.
                    self.conn = None;
                    self.next = (self.next + 1) % self.addrs.len();
                    if resend == Resend::Never {
                        return Err(broken_not_resent(&e));
                    }
                    last_error = Some(e);
                }
                Err(CallError::Timeout(e) | CallError::Protocol(e)) => {
                    self.conn = None;
                    return Err(e);
                }
                Err(CallError::Rejected(e)) => return Err(e),
            }
        }
        Err(ClientError::new(
            ErrorKind::Unavailable,
            format!(
                "every node's connection broke during the request (last: {})",
                last_error.map_or_else(|| "none".to_string(), |e| e.to_string())
            ),
        ))
    }

    /// Opens a connection to `addr` and authenticates it.
    fn open(&self, addr: SocketAddr, deadline: Instant) -> Result<Connection, Opened> {
        let left = deadline.saturating_duration_since(Instant::now());
        let timeout = left.min(self.options.connect_timeout);
        let mut conn = Connection::open(addr, timeout, self.options.limits)
            .map_err(|e| Opened::Unreachable(e.message().to_string()))?;
        if let Some(password) = self.options.password.as_deref() {
            match conn.call(&[b"AUTH", password.as_bytes()], deadline) {
                Ok(Reply::Simple(_)) => {}
                Ok(Reply::Error { code, message }) => {
                    return Err(Opened::Refused(ClientError::from_server(&code, &message)))
                }
                Ok(other) => return Err(Opened::Refused(ClientError::unexpected("AUTH", &other))),
                Err(CallError::Broken(e) | CallError::Timeout(e)) => {
                    return Err(Opened::Unreachable(e.to_string()))
                }
                Err(CallError::Protocol(e) | CallError::Rejected(e)) => {
                    return Err(Opened::Refused(e))
                }
            }
        }
        Ok(conn)
    }

    /// Connects to the first node that answers, starting at `self.next`.
    fn reconnect(&mut self, deadline: Instant) -> Result<(), ClientError> {
        let mut errors = Vec::new();
        for i in 0..self.addrs.len() {
            let index = (self.next + i) % self.addrs.len();
            let addr = self.addrs[index];
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ClientError::new(
                    ErrorKind::Timeout,
                    format!(
                        "no node reachable before the timeout ({})",
                        errors.join("; ")
                    ),
                ));
            }
            match self.open(addr, deadline) {
                Ok(conn) => {
                    self.next = index;
                    self.conn = Some(conn);
                    self.learn_routes(deadline);
                    return Ok(());
                }
                Err(Opened::Unreachable(e)) => errors.push(e),
                Err(Opened::Refused(e)) => return Err(e),
            }
        }
        Err(ClientError::new(
            ErrorKind::Unavailable,
            format!("no node reachable: {}", errors.join("; ")),
        ))
    }
}

/// The error of a request that must not be sent twice whose connection
/// broke under it.
fn broken_not_resent(e: &ClientError) -> ClientError {
    ClientError::new(
        ErrorKind::Unavailable,
        format!(
            "the connection broke during the request, which may have been applied; not sent again ({e})"
        ),
    )
}

/// Makes the connection's session use `wanted` for `side`, sending
/// `CONSISTENCY` only when it differs from what the session has.
fn set_level(
    conn: &mut Connection,
    side: Side,
    wanted: Consistency,
    deadline: Instant,
) -> Result<(), CallError> {
    let (mut read, mut write) = conn.levels;
    match side {
        Side::Read if read == wanted => return Ok(()),
        Side::Write if write == wanted => return Ok(()),
        Side::Read => read = wanted,
        Side::Write => write = wanted,
    }
    let (read_text, write_text) = (level_text(read), level_text(write));
    let reply = conn.call(
        &[
            b"CONSISTENCY",
            b"READ",
            read_text.as_bytes(),
            b"WRITE",
            write_text.as_bytes(),
        ],
        deadline,
    )?;
    match reply {
        Reply::Simple(_) => {
            conn.levels = (read, write);
            Ok(())
        }
        // An error reply here is the caller's (a level out of range); the
        // connection is fine, so it is not a CallError of the connection.
        Reply::Error { code, message } => Err(CallError::Rejected(ClientError::from_server(
            &code, &message,
        ))),
        other => Err(CallError::Protocol(ClientError::unexpected(
            "CONSISTENCY",
            &other,
        ))),
    }
}

fn expect_ok(command: &str, reply: Reply) -> Result<(), ClientError> {
    match reply {
        Reply::Simple(s) if s == "OK" => Ok(()),
        other => Err(ClientError::unexpected(command, &other)),
    }
}
