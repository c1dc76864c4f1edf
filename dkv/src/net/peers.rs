//! Peer connections: the cluster's binary links, driven by the reactor.
//!
//! Each node dials every peer once and sends all its messages for that
//! peer over that outbound connection; what a peer sends arrives on the
//! inbound connection the peer dialled. A new connection opens with the
//! challenge-response handshake of [`super::handshake`]; a refused one
//! closes, and refusals are logged at a bounded rate (a line a second at
//! most, with a count of those left out), so guessing cannot flood the
//! log. Outbound connections reconnect with exponential backoff. Frames
//! are bounded in size (small until the handshake passes), and a link is
//! read by a bounded budget per turn ([`io_bounds`]); a peer that breaks
//! the protocol is disconnected.
//!
//! No message is dropped silently. One sent while its link is being
//! (re)established waits, within a bound, for the handshake; one that
//! cannot wait (the link failed, the wait or the backlog is full) comes
//! back from [`Peers::take_undeliverable`], so the node can fail that
//! replica's part of the request at once. A message already handed to the
//! kernel when a connection breaks is lost with it; the node's timeouts
//! and hints cover those.
//!
//! Bytes and framing only: what a message means is the node's business.
//! [`Peers::poll_link_changes`] reports links going up and down, for INFO.

use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Registry, Token};

use crate::net::handshake::{Dialler, Listener, Outcome, PeerIdentity};
use crate::net::rate_log::RateLimitedLog;
use crate::net::tls::{TlsSetup, Transport};
use crate::peer::{self, Envelope};
use crate::slab::Slab;
use crate::version::NodeId;
use io_bounds::{
    read_available, write_pending, Stopped, HANDSHAKE_INPUT_MAX, READ_BUDGET, READ_CHUNK,
};

/// Tokens at and above this belong to peer sockets.
pub(crate) const PEER_TOKEN_BASE: usize = 1 << 40;
const LISTENER_TOKEN: usize = PEER_TOKEN_BASE;
const INBOUND_BASE: usize = PEER_TOKEN_BASE + 1;
const OUTBOUND_BASE: usize = PEER_TOKEN_BASE + (1 << 32);
const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(2);
/// Unsent bytes kept for one peer before its messages are refused.
const MAX_PEER_BACKLOG: usize = 256 << 20;
/// Bytes of messages kept for one peer while its link connects.
const MAX_QUEUED_BYTES: usize = 16 << 20;
/// Inbound connections still in their handshake at once, at most; more
/// are closed as they come (a stranger cannot use up the descriptors).
const MAX_HANDSHAKING: usize = 64;
/// An inbound connection that has not finished its handshake by then is
/// closed.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// Inbound connections accepted per call, at most; the rest next turn.
const ACCEPTS_PER_TURN: usize = 64;
/// How long after a failed accept (no descriptors) the listener is tried
/// again: the connection waits in the backlog and no event would say so.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

enum OutState {
    Idle { retry_at: Instant },
    Connecting(Dialler),
    Handshaking(Dialler),
    Ready,
}

impl OutState {
    /// Bytes the listener may have sent on this link and not yet had
    /// decoded. It speaks here only in the handshake; once that is done,
    /// what it sends comes over the link it dialled, so a single byte
    /// breaks the protocol (and reading one is enough to see it, or a
    /// close).
    fn input_limit(&self) -> usize {
        match self {
            OutState::Ready => 1,
            _ => HANDSHAKE_INPUT_MAX,
        }
    }
}

struct Outbound {
    addr: SocketAddr,
    socket: Option<Transport>,
    state: OutState,
    backoff: Duration,
    input: Vec<u8>,
    output: Vec<u8>,
    sent: usize,
    /// Messages waiting for the handshake to complete.
    queued: VecDeque<Envelope>,
    queued_bytes: usize,
    /// A connection attempt failed since the last success: messages no
    /// longer wait for the next one.
    failed: bool,
}

struct Inbound {
    socket: Transport,
    addr: SocketAddr,
    /// The handshake until it passes; then `None` and `from` is set.
    handshake: Option<Listener>,
    from: Option<NodeId>,
    input: Vec<u8>,
    output: Vec<u8>,
}

/// Every peer socket of one node.
pub(crate) struct Peers {
    identity: PeerIdentity,
    listener: TcpListener,
    inbound: Slab<Inbound>,
    outbound: BTreeMap<NodeId, Outbound>,
    /// Link states last reported by [`Peers::poll_link_changes`].
    reported: BTreeMap<NodeId, bool>,
    /// Messages that could not be sent, for the node.
    undeliverable: Vec<(NodeId, Envelope)>,
    /// Every member's peer address, for admission.
    members: Vec<(NodeId, SocketAddr)>,
    refusals: RateLimitedLog,
    /// Inbound connections in their handshake, in the order they came, with
    /// their deadlines (some may have finished or gone since).
    handshaking: VecDeque<(Instant, crate::slab::Key)>,
    /// Of those, the ones still in their handshake.
    handshaking_now: usize,
    /// When to try the listener again (a failed or a bounded accept).
    accept_retry_at: Option<Instant>,
    accept_log: RateLimitedLog,
    /// TLS for accepted and dialled links, when configured.
    tls_server: Option<Arc<rustls::ServerConfig>>,
    tls_client: Option<Arc<rustls::ClientConfig>>,
    traffic: PeerTraffic,
    /// What every socket read lands in first ([`READ_CHUNK`] bytes).
    scratch: Box<[u8]>,
    /// Bytes an established link is read by per event, at most
    /// ([`READ_BUDGET`]; smaller in tests).
    read_budget: usize,
    /// Established inbound links that stopped at their budget with bytes
    /// perhaps left in the socket: no event will come for those, so the
    /// next turn reads them again ([`Peers::read_unread`]).
    unread: Vec<crate::slab::Key>,
}

/// Messages and socket writes on the peer links since start, for `INFO
/// cluster`: what a replicated write costs in frames and system calls.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PeerTraffic {
    /// Messages encoded onto a link.
    pub messages_sent: u64,
    /// Messages decoded from a link.
    pub messages_received: u64,
    /// `write` calls on established links (each carries every message
    /// encoded for its link since the last).
    pub socket_writes: u64,
}

impl Peers {
    /// Binds the peer port and plans a connection to every other member.
    pub fn new(
        registry: &Registry,
        identity: PeerIdentity,
        bind: SocketAddr,
        members: &[(NodeId, SocketAddr)],
        tls: Option<&TlsSetup>,
    ) -> io::Result<Peers> {
        let std_listener = std::net::TcpListener::bind(bind)?;
        std_listener.set_nonblocking(true)?;
        let mut listener = TcpListener::from_std(std_listener);
        registry.register(&mut listener, Token(LISTENER_TOKEN), Interest::READABLE)?;
        let now = Instant::now();
        let outbound = members
            .iter()
            .filter(|(id, _)| *id != identity.node_id)
            .map(|&(id, addr)| {
                let out = Outbound {
                    addr,
                    socket: None,
                    state: OutState::Idle { retry_at: now },
                    backoff: BACKOFF_MIN,
                    input: Vec::new(),
                    output: Vec::new(),
                    sent: 0,
                    queued: VecDeque::new(),
                    queued_bytes: 0,
                    failed: false,
                };
                (id, out)
            })
            .collect();
        Ok(Peers {
            identity,
            listener,
            inbound: Slab::new(),
            outbound,
            reported: BTreeMap::new(),
            undeliverable: Vec::new(),
            members: members.to_vec(),
            refusals: RateLimitedLog::new(),
            handshaking: VecDeque::new(),
            handshaking_now: 0,
            accept_retry_at: None,
            accept_log: RateLimitedLog::new(),
            tls_server: tls.and_then(|t| t.peer_server.clone()),
            tls_client: tls.and_then(|t| t.peer_client.clone()),
            traffic: PeerTraffic::default(),
            scratch: vec![0u8; READ_CHUNK].into_boxed_slice(),
            read_budget: READ_BUDGET,
            unread: Vec::new(),
        })
    }

    /// Whether `token` is a peer socket's.
    pub fn owns(token: Token) -> bool {
        token.0 >= PEER_TOKEN_BASE
    }

    /// When the next timer is due: a reconnection, a handshake deadline, a
    /// retry of the listener.
    pub fn next_timer(&self) -> Option<Instant> {
        let reconnect = self.outbound.values().filter_map(|o| match o.state {
            OutState::Idle { retry_at } => Some(retry_at),
            _ => None,
        });
        let handshake = self.handshaking.front().map(|&(deadline, _)| deadline);
        reconnect.chain(handshake).chain(self.accept_retry_at).min()
    }

    /// Runs the timers that are due: dials peers whose retry time has
    /// come, closes inbound handshakes past their deadline, tries the
    /// listener again.
    pub fn on_timer(&mut self, registry: &Registry, now: Instant) {
        self.connect_due(registry, now);
        while let Some(&(deadline, key)) = self.handshaking.front() {
            if deadline > now {
                break;
            }
            self.handshaking.pop_front();
            if self
                .inbound
                .get(key)
                .is_some_and(|conn| conn.handshake.is_some())
            {
                let addr = self.inbound.get(key).map(|conn| conn.addr);
                self.refusals
                    .note(|| format!("peer handshake refused: {addr:?} did not finish it in time"));
                self.drop_inbound(registry, key);
            }
        }
        if self.accept_retry_at.is_some_and(|at| at <= now) {
            self.accept_retry_at = None;
            self.accept(registry);
        }
    }

    /// Closes an inbound connection, keeping the handshake count.
    fn drop_inbound(&mut self, registry: &Registry, key: crate::slab::Key) {
        if let Some(mut conn) = self.inbound.remove(key) {
            if conn.handshake.is_some() {
                self.handshaking_now -= 1;
            }
            let _ = registry.deregister(conn.socket.socket_mut());
        }
    }

    /// Dials peers whose retry time has come.
    fn connect_due(&mut self, registry: &Registry, now: Instant) {
        for (&id, out) in self.outbound.iter_mut() {
            let OutState::Idle { retry_at } = out.state else {
                continue;
            };
            if retry_at > now {
                continue;
            }
            match TcpStream::connect(out.addr) {
                Ok(mut socket) => {
                    let token = Token(OUTBOUND_BASE + id.0 as usize);
                    if registry
                        .register(&mut socket, token, Interest::READABLE | Interest::WRITABLE)
                        .is_err()
                    {
                        let lost = out.fail_attempt(now);
                        self.undeliverable.extend(lost.into_iter().map(|e| (id, e)));
                        continue;
                    }
                    let _ = socket.set_nodelay(true);
                    let transport =
                        match Transport::dial(socket, self.tls_client.as_ref(), out.addr.ip()) {
                            Ok(transport) => transport,
                            Err(e) => {
                                log::warn!("TLS to node {id}: {e}");
                                let lost = out.fail_attempt(now);
                                self.undeliverable.extend(lost.into_iter().map(|e| (id, e)));
                                continue;
                            }
                        };
                    let (dialler, hello) = Dialler::start(&self.identity, id);
                    out.socket = Some(transport);
                    out.state = OutState::Connecting(dialler);
                    out.input.clear();
                    out.output = hello;
                    out.sent = 0;
                }
                Err(e) => {
                    log::debug!("connecting to node {id} at {}: {e}", out.addr);
                    let lost = out.fail_attempt(now);
                    self.undeliverable.extend(lost.into_iter().map(|e| (id, e)));
                }
            }
        }
    }

    /// Queues an envelope for its peer. Nothing is written until
    /// [`Peers::flush`], so one reactor turn's messages share a syscall.
    /// One that cannot be sent or wait comes back from
    /// [`Peers::take_undeliverable`].
    pub fn send(&mut self, to: NodeId, envelope: Envelope) {
        let Some(out) = self.outbound.get_mut(&to) else {
            self.undeliverable.push((to, envelope));
            return;
        };
        let ready = matches!(out.state, OutState::Ready);
        let may_wait = match out.state {
            OutState::Ready => false,
            OutState::Connecting(_) | OutState::Handshaking(_) => true,
            OutState::Idle { .. } => !out.failed,
        };
        if ready && out.output.len() <= MAX_PEER_BACKLOG {
            match peer::encode_envelope(&envelope, &mut out.output) {
                Ok(_) => self.traffic.messages_sent += 1,
                Err(e) => {
                    log::warn!("message for node {to} not sent: {e}");
                    self.undeliverable.push((to, envelope));
                }
            }
            return;
        }
        let len = peer::envelope_frame_len(&envelope) as usize;
        if may_wait && out.queued_bytes + len <= MAX_QUEUED_BYTES {
            out.queued_bytes += len;
            out.queued.push_back(envelope);
        } else {
            self.undeliverable.push((to, envelope));
        }
    }

    /// Messages that could not be sent since the last call.
    pub fn take_undeliverable(&mut self) -> Vec<(NodeId, Envelope)> {
        std::mem::take(&mut self.undeliverable)
    }

    /// Writes what [`Peers::send`] queued, to every peer.
    pub fn flush(&mut self, registry: &Registry) {
        for (&id, out) in self.outbound.iter_mut() {
            if out.output.len() > out.sent {
                if let Err(e) = out.flush(&mut self.traffic.socket_writes) {
                    log::info!("connection to node {id} lost: {e}");
                    let lost = out.disconnect(registry, Instant::now());
                    self.undeliverable.extend(lost.into_iter().map(|e| (id, e)));
                }
            }
        }
    }

    /// Handles readiness on a peer socket; returns the envelopes received.
    pub fn handle_event(
        &mut self,
        registry: &Registry,
        token: Token,
        received: &mut Vec<Envelope>,
    ) {
        match token.0 {
            LISTENER_TOKEN => self.accept(registry),
            t if t >= OUTBOUND_BASE => {
                self.outbound_event(registry, NodeId((t - OUTBOUND_BASE) as u32))
            }
            t => {
                if let Some(key) = self.inbound.key_at(t - INBOUND_BASE) {
                    self.inbound_event(registry, key, received)
                }
            }
        }
    }

    fn accept(&mut self, registry: &Registry) {
        for _ in 0..ACCEPTS_PER_TURN {
            match self.listener.accept() {
                Ok((socket, addr)) if self.handshaking_now >= MAX_HANDSHAKING => {
                    self.refusals.note(|| {
                        format!(
                            "peer handshake refused: {addr} closed at once, {MAX_HANDSHAKING} \
                             connections are in their handshake already"
                        )
                    });
                    drop(socket);
                }
                Ok((socket, addr)) => {
                    let _ = socket.set_nodelay(true);
                    let socket = match Transport::accept(socket, self.tls_server.as_ref()) {
                        Ok(transport) => transport,
                        Err(e) => {
                            log::warn!("TLS for the peer connection from {addr}: {e}");
                            continue;
                        }
                    };
                    let key = self.inbound.insert(Inbound {
                        socket,
                        addr,
                        handshake: Some(Listener::AwaitHello),
                        from: None,
                        input: Vec::new(),
                        output: Vec::new(),
                    });
                    let Some(conn) = self.inbound.get_mut(key) else {
                        continue;
                    };
                    if registry
                        .register(
                            conn.socket.socket_mut(),
                            Token(INBOUND_BASE + key.index),
                            Interest::READABLE,
                        )
                        .is_err()
                    {
                        self.inbound.remove(key);
                        log::warn!("cannot register peer connection from {addr}");
                        continue;
                    }
                    self.handshaking_now += 1;
                    self.handshaking
                        .push_back((Instant::now() + HANDSHAKE_TIMEOUT, key));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // EMFILE and friends: try again shortly.
                    self.accept_log
                        .note(|| format!("peer accept failed, retrying in 100 ms: {e}"));
                    self.accept_retry_at = Some(Instant::now() + ACCEPT_RETRY);
                    return;
                }
            }
        }
        // More may wait: the next turn goes on.
        self.accept_retry_at = Some(Instant::now());
    }

    /// Whether a link stopped at its read budget last turn: the reactor
    /// must not wait in poll before [`Peers::read_unread`].
    pub fn has_unread(&self) -> bool {
        !self.unread.is_empty()
    }

    /// Reads again the links that stopped at their budget last turn.
    pub fn read_unread(&mut self, registry: &Registry, received: &mut Vec<Envelope>) {
        for key in std::mem::take(&mut self.unread) {
            self.inbound_event(registry, key, received);
        }
    }

    fn inbound_event(
        &mut self,
        registry: &Registry,
        key: crate::slab::Key,
        received: &mut Vec<Envelope>,
    ) {
        let Some(conn) = self.inbound.get_mut(key) else {
            return;
        };
        // Before its handshake passes a connection has no business sending
        // more than the two small handshake frames.
        let budget = match conn.handshake {
            Some(_) => HANDSHAKE_INPUT_MAX.saturating_sub(conn.input.len()),
            None => self.read_budget,
        };
        let stopped = read_available(&mut conn.socket, &mut conn.input, budget, &mut self.scratch);
        let mut drop_conn = stopped == Stopped::Closed;
        let mut admitted = false;
        let mut used_total = 0;
        loop {
            let buf = &conn.input[used_total..];
            if let Some(handshake) = conn.handshake.as_mut() {
                let step = handshake.step(&self.identity, &self.members, conn.addr.ip(), buf);
                let (outcome, used) = match step {
                    Ok(Some(found)) => found,
                    Ok(None) => break,
                    Err(e) => {
                        self.refusals.note(|| {
                            format!("peer handshake refused: bad frame from {}: {e}", conn.addr)
                        });
                        drop_conn = true;
                        break;
                    }
                };
                used_total += used;
                let reply = match outcome {
                    Outcome::Send(bytes) => bytes,
                    Outcome::Done(from, bytes) => {
                        log::info!("node {from} connected from {}", conn.addr);
                        conn.handshake = None;
                        conn.from = Some(from);
                        admitted = true;
                        bytes
                    }
                    Outcome::Refuse(bytes, reason) => {
                        self.refusals.note(|| {
                            format!("peer handshake refused: from {}: {reason}", conn.addr)
                        });
                        drop_conn = true;
                        bytes
                    }
                };
                conn.output.extend_from_slice(&reply);
                let mut sent = 0;
                let mut writes = 0;
                let _ = write_pending(&mut conn.socket, &mut conn.output, &mut sent, &mut writes);
                conn.output.clear();
                if drop_conn {
                    break;
                }
                continue;
            }
            let Some(from) = conn.from else {
                break;
            };
            match peer::decode_envelope(buf, self.identity.max_frame) {
                Ok(Some((envelope, used))) => {
                    used_total += used;
                    if envelope.from != from {
                        log::warn!(
                            "node {from} sent a message signed as node {}; disconnecting",
                            envelope.from
                        );
                        drop_conn = true;
                        break;
                    }
                    self.traffic.messages_received += 1;
                    received.push(envelope);
                }
                Ok(None) => break,
                Err(e) => {
                    log::warn!("bad frame from node {from}: {e}; disconnecting");
                    drop_conn = true;
                    break;
                }
            }
        }
        conn.input.drain(..used_total.min(conn.input.len()));
        if conn.handshake.is_some() && conn.input.len() >= HANDSHAKE_INPUT_MAX {
            drop_conn = true;
        }
        debug_assert!(
            conn.handshake.is_some()
                || conn.input.len()
                    <= self.identity.max_frame + peer::LEN_PREFIX + self.read_budget,
            "an inbound link's input outgrew a frame and a budget"
        );
        if admitted {
            self.handshaking_now -= 1;
        }
        if drop_conn {
            self.drop_inbound(registry, key);
        } else if stopped == Stopped::Budget && !self.unread.contains(&key) {
            self.unread.push(key);
        }
    }

    fn outbound_event(&mut self, registry: &Registry, id: NodeId) {
        let Some(out) = self.outbound.get_mut(&id) else {
            return;
        };
        let now = Instant::now();
        if let OutState::Connecting(_) = out.state {
            // A connect completes (or fails) when the socket turns writable.
            let ok = out
                .socket
                .as_ref()
                .is_some_and(|s| s.socket().peer_addr().is_ok());
            if !ok {
                let lost = out.disconnect(registry, now);
                self.undeliverable.extend(lost.into_iter().map(|e| (id, e)));
                return;
            }
            let state = std::mem::replace(&mut out.state, OutState::Ready);
            if let OutState::Connecting(dialler) = state {
                out.state = OutState::Handshaking(dialler);
            }
        }
        if let Err(e) = out.flush(&mut self.traffic.socket_writes) {
            log::debug!("connection to node {id}: {e}");
            let lost = out.disconnect(registry, now);
            self.undeliverable.extend(lost.into_iter().map(|e| (id, e)));
            return;
        }
        let budget = out.state.input_limit().saturating_sub(out.input.len());
        let stopped = match out.socket.as_mut() {
            Some(socket) => read_available(socket, &mut out.input, budget, &mut self.scratch),
            None => Stopped::Closed,
        };
        let mut open = stopped != Stopped::Closed;
        while let OutState::Handshaking(dialler) = &mut out.state {
            let (outcome, used) = match dialler.step(&self.identity, &out.input) {
                Ok(Some(found)) => found,
                Ok(None) => break,
                Err(e) => {
                    self.refusals
                        .note(|| format!("peer handshake failed: bad reply from node {id}: {e}"));
                    let lost = out.disconnect(registry, now);
                    self.undeliverable.extend(lost.into_iter().map(|e| (id, e)));
                    return;
                }
            };
            out.input.drain(..used);
            match outcome {
                Outcome::Send(bytes) => out.output.extend_from_slice(&bytes),
                Outcome::Done(..) => {
                    out.state = OutState::Ready;
                    out.backoff = BACKOFF_MIN;
                    out.failed = false;
                    log::info!("connected to node {id} at {}", out.addr);
                    // What waited for the handshake goes first.
                    for envelope in std::mem::take(&mut out.queued) {
                        match peer::encode_envelope(&envelope, &mut out.output) {
                            Ok(_) => self.traffic.messages_sent += 1,
                            Err(e) => {
                                log::warn!("message for node {id} not sent: {e}");
                                self.undeliverable.push((id, envelope));
                            }
                        }
                    }
                    out.queued_bytes = 0;
                }
                Outcome::Refuse(_, reason) => {
                    self.refusals
                        .note(|| format!("peer handshake failed: {reason}"));
                    let lost = out.disconnect(registry, now);
                    self.undeliverable.extend(lost.into_iter().map(|e| (id, e)));
                    return;
                }
            }
        }
        if open && out.input.len() >= out.state.input_limit() {
            log::warn!(
                "node {id} sent {} bytes on the link this node dialled, where it may send only \
                 its handshake; disconnecting",
                out.input.len()
            );
            open = false;
        }
        if let Err(e) = out.flush(&mut self.traffic.socket_writes) {
            log::info!("connection to node {id} lost: {e}");
            let lost = out.disconnect(registry, now);
            self.undeliverable.extend(lost.into_iter().map(|e| (id, e)));
            return;
        }
        if !open {
            let lost = out.disconnect(registry, now);
            self.undeliverable.extend(lost.into_iter().map(|e| (id, e)));
        }
    }

    /// Messages and writes on the links since start.
    pub fn traffic(&self) -> PeerTraffic {
        self.traffic
    }

    /// Handshakes refused since start (inbound and outbound), for `INFO`.
    pub fn refused_handshakes(&self) -> u64 {
        self.refusals.total()
    }

    /// Links that went up or down since the last call.
    pub fn poll_link_changes(&mut self) -> Vec<(NodeId, bool)> {
        let mut changes = Vec::new();
        for (&id, out) in &self.outbound {
            let up = matches!(out.state, OutState::Ready);
            if self.reported.get(&id) != Some(&up) {
                self.reported.insert(id, up);
                changes.push((id, up));
            }
        }
        changes
    }
}

impl Outbound {
    fn flush(&mut self, writes: &mut u64) -> io::Result<()> {
        if let Some(socket) = self.socket.as_mut() {
            if !matches!(self.state, OutState::Connecting(_)) {
                write_pending(socket, &mut self.output, &mut self.sent, writes)?;
            }
        }
        Ok(())
    }

    fn schedule_retry(&mut self, now: Instant) {
        self.state = OutState::Idle {
            retry_at: now + self.backoff,
        };
        self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
    }

    /// A connection attempt failed before it had a socket: plans the next
    /// one; returns the messages that were waiting, which will not be sent.
    #[must_use = "the messages that waited are undeliverable now"]
    fn fail_attempt(&mut self, now: Instant) -> VecDeque<Envelope> {
        self.failed = true;
        self.queued_bytes = 0;
        self.schedule_retry(now);
        std::mem::take(&mut self.queued)
    }

    /// Drops the connection and plans the next attempt; returns the
    /// messages that were waiting for it, which will not be sent.
    #[must_use = "the messages that waited are undeliverable now"]
    fn disconnect(&mut self, registry: &Registry, now: Instant) -> VecDeque<Envelope> {
        if let Some(mut socket) = self.socket.take() {
            let _ = registry.deregister(socket.socket_mut());
        }
        self.output.clear();
        self.sent = 0;
        self.input.clear();
        self.failed = true;
        self.queued_bytes = 0;
        self.schedule_retry(now);
        std::mem::take(&mut self.queued)
    }
}

mod io_bounds;
#[cfg(test)]
mod tests;
