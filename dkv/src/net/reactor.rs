//! The reactor: one thread that owns every socket of a node and drives
//! the command layer (and through it the node) with what they carry.
//!
//! Each turn of the loop does a bounded amount of work, in this order:
//!
//! 1. wait for readiness (not at all when work is left from the last
//!    turn), and note which connections became readable or writable;
//! 2. accept new connections, at most [`ACCEPTS_PER_TURN`];
//! 3. feed the executor what the peers sent, what the logs made durable
//!    (the [`DurabilityWatch`]) and the time;
//! 4. serve each connection in the work list once: read at most
//!    [`READ_PER_TURN`] bytes, run at most [`COMMANDS_PER_TURN`] requests;
//!    one with more to do goes back on the list for the next turn;
//! 5. drain the executor: messages to the peers, completed replies into
//!    their connections' places;
//! 6. write what is ready.
//!
//! Nothing here calls back into itself: a connection that can make
//! progress again (its replies drained, a call completed) is put on the
//! work list, never served from inside another step. Both logs are held
//! for the turn, so one fsync covers every write it made.
//!
//! Backpressure: a connection whose unsent replies pass
//! `max_output_bytes`, or whose calls in flight reach
//! [`MAX_CALLS_IN_FLIGHT`], runs no more requests (and so reads no more
//! once its input buffer is full) until they drain. A protocol error gets
//! an `-ERR` reply and the connection closes once the replies before it
//! are out; other connections never notice.

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token};

use crate::clock::wall_millis;
use crate::command::{ConnId, Executor};
use crate::disk::{DurabilityWatch, Progress, StoreDisk};
use crate::net::conn::{Conn, ReadOutcome, Step};
use crate::net::handshake::PeerIdentity;
use crate::net::peers::Peers;
use crate::net::rate_log::RateLimitedLog;
use crate::net::tls::{TlsSetup, Transport};
use crate::net::wakeup::Wakeup;
use crate::node::Now;
use crate::peer::Envelope;
use crate::slab::{Key, Slab};
use crate::version::NodeId;

/// The longest per-turn list whose memory a reactor keeps for the next
/// turn.
const KEPT_LIST_CAPACITY: usize = 4096;

const LISTENER: Token = Token(usize::MAX - 1);
const WAKER: Token = Token(usize::MAX - 2);
/// Data commands one connection may have waiting on the node at once.
const MAX_CALLS_IN_FLIGHT: usize = 1024;
/// Requests one connection runs per turn, at most.
const COMMANDS_PER_TURN: usize = 1024;
/// Bytes read from one connection per turn, at most.
const READ_PER_TURN: usize = 256 * 1024;
/// Connections accepted per turn, at most.
const ACCEPTS_PER_TURN: usize = 256;
/// Unsent reply bytes an unauthenticated connection may hold; past it the
/// connection is closed (Redis's pre-auth rule: a stranger cannot make the
/// node buffer for it).
const PREAUTH_MAX_OUTPUT: usize = 64 << 10;
/// How long after a failed accept (no descriptors, no memory) the
/// listener is tried again.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);
/// What a client past `maxclients` is told before it is closed.
const MAX_CLIENTS_REPLY: &[u8] = b"-ERR max number of clients reached\r\n";
/// A closed connection that held this much makes the reactor hand freed
/// memory back to the OS.
const RETURN_MEMORY_AFTER: usize = 8 << 20;
/// How long a stopping reactor waits for replies to drain.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Shared between the reactor and the handle that stops it.
pub(crate) struct Control {
    pub stopping: AtomicBool,
    pub wakeup: Wakeup,
}

/// What a node of a cluster of several needs for its peer links.
pub(crate) struct PeerSetup {
    pub identity: PeerIdentity,
    pub bind: std::net::SocketAddr,
    pub members: Vec<(NodeId, std::net::SocketAddr)>,
}

pub(crate) struct Reactor {
    poll: Poll,
    listener: Option<TcpListener>,
    conns: Slab<Conn>,
    /// Present when the node has peers.
    peers: Option<Peers>,
    executor: Executor<StoreDisk>,
    watch: DurabilityWatch,
    control: Arc<Control>,
    /// Every socket read goes through this one buffer, zeroed once.
    scratch: Box<[u8]>,
    started: Instant,
    /// Connections to serve this turn, each at most once.
    work: VecDeque<Key>,
    /// Connections with output to write this turn.
    dirty: Vec<Key>,
    /// `dirty` being written (kept, like `received`, so that a turn does
    /// not allocate and free these lists afresh).
    writing: Vec<Key>,
    /// Peer messages read this turn.
    received: Vec<Envelope>,
    /// The listener may have more connections waiting.
    accept_pending: bool,
    /// An accept failed for want of descriptors or memory: try again then.
    accept_retry_at: Option<Instant>,
    /// Clients connected at most; the next is told so and closed.
    max_clients: usize,
    max_output: usize,
    /// Closings for output limits, logged at a bounded rate.
    output_log: RateLimitedLog,
    /// Failed accepts, logged at a bounded rate.
    accept_log: RateLimitedLog,
    /// TLS for every client, when configured.
    client_tls: Option<Arc<rustls::ServerConfig>>,
}

/// The bound past which a connection is closed: twice `max_output` (it
/// runs no new command once at `max_output`, so only replies to calls
/// already in flight get it there), or [`PREAUTH_MAX_OUTPUT`] before it
/// authenticates.
fn hard_output_limit(conn: &Conn, max_output: usize) -> usize {
    if conn.session().is_authenticated() {
        max_output.saturating_mul(2)
    } else {
        PREAUTH_MAX_OUTPUT
    }
}

/// Tells a client past `maxclients` so, as Redis does, and closes it. The
/// socket is new and its buffer empty, so one non-blocking write suffices.
fn refuse_client(mut socket: mio::net::TcpStream, peer: std::net::SocketAddr) {
    use std::io::Write as _;
    if let Err(e) = socket.write(MAX_CLIENTS_REPLY) {
        log::debug!("telling {peer} the clients are too many: {e}");
    }
}

/// Gives the allocator's free memory back to the OS (glibc keeps freed
/// blocks in its arenas, so a closed client's buffers would otherwise stay
/// in the process's resident set).
fn return_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory of the allocator.
    unsafe {
        libc::malloc_trim(0);
    }
}

impl Reactor {
    /// Sets up polling on `listener` (and the peer port); the caller runs
    /// [`Reactor::run`] on its own thread.
    pub fn new(
        listener: TcpListener,
        executor: Executor<StoreDisk>,
        peers: Option<PeerSetup>,
        tls: Option<TlsSetup>,
        started: Instant,
    ) -> io::Result<(Reactor, Arc<Control>)> {
        let max_clients = executor.settings().max_clients;
        let poll = Poll::new()?;
        let mut listener = listener;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let waker = mio::Waker::new(poll.registry(), WAKER)?;
        let control = Arc::new(Control {
            stopping: AtomicBool::new(false),
            wakeup: Wakeup::new(waker),
        });
        let watch = executor.node().disk().watch();
        {
            let control = Arc::clone(&control);
            watch.on_progress(move || control.wakeup.wake());
        }
        let peers = match peers {
            None => None,
            Some(setup) => Some(Peers::new(
                poll.registry(),
                setup.identity,
                setup.bind,
                &setup.members,
                tls.as_ref(),
            )?),
        };
        let max_output = executor.settings().max_output_bytes;
        Ok((
            Reactor {
                poll,
                listener: Some(listener),
                conns: Slab::new(),
                peers,
                executor,
                watch,
                control: Arc::clone(&control),
                scratch: vec![0u8; 64 * 1024].into_boxed_slice(),
                started,
                work: VecDeque::new(),
                dirty: Vec::new(),
                writing: Vec::new(),
                received: Vec::new(),
                accept_pending: true,
                accept_retry_at: None,
                max_clients,
                max_output,
                output_log: RateLimitedLog::new(),
                accept_log: RateLimitedLog::new(),
                client_tls: tls.map(|t| t.clients),
            },
            control,
        ))
    }

    fn now(&self) -> Now {
        Now {
            mono: self.started.elapsed().as_millis() as u64,
            wall: wall_millis(),
        }
    }

    /// How long the next poll may wait.
    fn poll_timeout(&self, now: Now, stopping: bool) -> Option<Duration> {
        let unread = self.peers.as_ref().is_some_and(Peers::has_unread);
        if !self.work.is_empty() || self.accept_pending || unread {
            return Some(Duration::ZERO);
        }
        let mut timeout = stopping.then_some(Duration::from_millis(10));
        let mut consider = |wait: Duration| {
            timeout = Some(timeout.map_or(wait, |t: Duration| t.min(wait)));
        };
        if let Some(due) = self.executor.poll_timeout() {
            consider(Duration::from_millis(due.saturating_sub(now.mono) + 1));
        }
        if let Some(retry) = self.accept_retry_at {
            consider(retry.saturating_duration_since(Instant::now()) + Duration::from_millis(1));
        }
        if let Some(due) = self.peers.as_ref().and_then(Peers::next_timer) {
            consider(due.saturating_duration_since(Instant::now()) + Duration::from_millis(1));
        }
        timeout
    }

    /// Runs until [`Control::stopping`] is set, then stops accepting,
    /// finishes in-flight commands, syncs the logs, sends what it can and
    /// returns.
    pub fn run(mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        let mut shutdown_deadline: Option<Instant> = None;
        loop {
            let timeout = self.poll_timeout(self.now(), shutdown_deadline.is_some());
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
            // Waker events carry no data: clear first, then look at
            // everything that could have woken us.
            self.control.wakeup.clear();
            let logs = self.watch.handles();
            let hold = logs.hold();
            self.turn(&events);
            drop(hold);

            if self.control.stopping.load(Ordering::Acquire) {
                let deadline = *shutdown_deadline.get_or_insert_with(|| {
                    self.begin_shutdown();
                    Instant::now() + SHUTDOWN_GRACE
                });
                if self.conns.len() == 0 || Instant::now() >= deadline {
                    break;
                }
            }
        }
        self.watch.sync().map_err(io::Error::other)
    }

    /// One turn: events, accepts, inputs to the executor, connections,
    /// outputs, writes.
    fn turn(&mut self, events: &Events) {
        let now = self.now();
        let mut received = std::mem::take(&mut self.received);
        debug_assert!(received.is_empty());
        // Links that stopped at their read budget last turn go first: no
        // event will come for what they hold.
        if let Some(peers) = self.peers.as_mut() {
            peers.read_unread(self.poll.registry(), &mut received);
        }
        for event in events.iter() {
            match event.token() {
                LISTENER => self.accept_pending = true,
                WAKER => {}
                token if Peers::owns(token) => {
                    if let Some(peers) = self.peers.as_mut() {
                        peers.handle_event(self.poll.registry(), token, &mut received);
                    }
                }
                Token(index) => {
                    let Some(key) = self.conns.key_at(index) else {
                        continue;
                    };
                    let hung_up = event.is_read_closed() || event.is_error();
                    if let Some(conn) = self.conns.get_mut(key) {
                        if event.is_readable() || hung_up {
                            conn.on_readable(hung_up);
                        }
                    }
                    self.schedule(key);
                    if event.is_writable() {
                        self.mark_dirty(key);
                    }
                }
            }
        }
        if self.accept_retry_at.is_some_and(|at| at <= Instant::now()) {
            self.accept_retry_at = None;
            self.accept_pending = true;
        }
        if self.accept_pending {
            self.accept();
        }
        for envelope in received.drain(..) {
            self.executor.handle_message(now, envelope);
        }
        // A burst's capacity is not kept for ever.
        if received.capacity() <= KEPT_LIST_CAPACITY {
            self.received = received;
        }
        for progress in self.watch.poll() {
            match progress {
                Progress::Durable(ticket) => self.executor.handle_durable(now, ticket),
                Progress::Failed(log) => {
                    log::error!(
                        "the {log:?} log failed: writes are refused until it starts afresh"
                    );
                    self.executor.handle_disk_failed(now, log);
                }
                Progress::Recovered(log) => {
                    log::warn!("the {log:?} log started afresh: writes resume");
                }
            }
        }
        self.executor.handle_tick(now);
        if let Some(peers) = self.peers.as_mut() {
            let wall = Instant::now();
            if peers.next_timer().is_some_and(|t| t <= wall) {
                peers.on_timer(self.poll.registry(), wall);
            }
        }
        for _ in 0..self.work.len() {
            let Some(key) = self.work.pop_front() else {
                break;
            };
            self.serve(key, now);
        }
        self.drain_executor(now);
        let mut writing = std::mem::take(&mut self.writing);
        std::mem::swap(&mut writing, &mut self.dirty);
        for &key in &writing {
            self.write(key);
        }
        writing.clear();
        if writing.capacity() <= KEPT_LIST_CAPACITY {
            self.writing = writing;
        }
    }

    fn schedule(&mut self, key: Key) {
        if self.conns.get_mut(key).is_some_and(Conn::schedule) {
            self.work.push_back(key);
        }
    }

    fn mark_dirty(&mut self, key: Key) {
        if self.conns.get_mut(key).is_some_and(Conn::mark_dirty) {
            self.dirty.push(key);
        }
    }

    fn accept(&mut self) {
        for _ in 0..ACCEPTS_PER_TURN {
            let Some(listener) = &self.listener else {
                self.accept_pending = false;
                return;
            };
            match listener.accept() {
                Ok((socket, peer)) if self.conns.len() >= self.max_clients => {
                    refuse_client(socket, peer);
                    self.executor
                        .stats()
                        .rejected_connections
                        .fetch_add(1, Ordering::Relaxed);
                }
                Ok((socket, peer)) => {
                    if let Err(e) = socket.set_nodelay(true) {
                        log::debug!("TCP_NODELAY on {peer}: {e}");
                    }
                    let transport = match Transport::accept(socket, self.client_tls.as_ref()) {
                        Ok(transport) => transport,
                        Err(e) => {
                            log::warn!("TLS for the client at {peer}: {e}");
                            continue;
                        }
                    };
                    let session = self.executor.open_session(Some(peer));
                    let limits = self.executor.limits(&session);
                    let key = self.conns.insert(Conn::new(transport, session, limits));
                    let Some(conn) = self.conns.get_mut(key) else {
                        continue;
                    };
                    if let Err(e) = self.poll.registry().register(
                        conn.socket_mut(),
                        Token(key.index),
                        Interest::READABLE,
                    ) {
                        log::warn!("cannot register connection from {peer}: {e}");
                        self.conns.remove(key);
                        continue;
                    }
                    let stats = self.executor.stats();
                    stats.connections_received.fetch_add(1, Ordering::Relaxed);
                    stats.connected_clients.fetch_add(1, Ordering::Relaxed);
                    // Bytes may have arrived before registration.
                    self.schedule(key);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.accept_pending = false;
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // EMFILE and friends: the connection waits in the
                    // backlog, and no new event would say so; try again
                    // shortly, whatever happens meanwhile.
                    self.accept_log
                        .note(|| format!("accept failed, retrying in 100 ms: {e}"));
                    self.accept_pending = false;
                    self.accept_retry_at = Some(Instant::now() + ACCEPT_RETRY);
                    return;
                }
            }
        }
    }

    /// Reads from a connection and runs its requests, within the turn's
    /// budgets; requeues it when it stopped with work left.
    fn serve(&mut self, key: Key, now: Now) {
        let max_output = self.max_output;
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        conn.unschedule();
        let limits = self.executor.limits(conn.session());
        let max_input = limits.max_request_len.saturating_add(16 * 1024);
        let mut more = false;
        if conn.wants_read() && conn.can_run(max_output, MAX_CALLS_IN_FLIGHT) {
            more |= conn.read(&mut self.scratch, max_input, READ_PER_TURN) == ReadOutcome::Stopped;
        }
        let conn_id = ConnId(key.to_u64());
        let mut ran = 0;
        while conn.can_run(max_output, MAX_CALLS_IN_FLIGHT) {
            if ran == COMMANDS_PER_TURN {
                more = true;
                break;
            }
            // Authentication changes the limits: ask before every request.
            let limits = self.executor.limits(conn.session());
            let executor = &mut self.executor;
            let step = conn.run_next(limits, |session, request, out| {
                executor.execute(now, conn_id, session, request, out)
            });
            if step == Step::Idle {
                break;
            }
            ran += 1;
        }
        // Stopped by a budget while it could go on: next turn.
        let blocked = !conn.can_run(max_output, MAX_CALLS_IN_FLIGHT);
        let requeue = more && !blocked;
        self.mark_dirty(key);
        if requeue {
            self.schedule(key);
        }
    }

    /// Sends the executor's messages (handing back those that cannot be
    /// sent), reports link changes, and puts finished replies in place.
    fn drain_executor(&mut self, now: Now) {
        if let Some(peers) = self.peers.as_mut() {
            // A message handed back can make the node send others (a write
            // stamped again, say): a few rounds settle it.
            for _ in 0..8 {
                while let Some((to, envelope)) = self.executor.poll_transmit() {
                    peers.send(to, envelope);
                }
                peers.flush(self.poll.registry());
                for (peer, up) in peers.poll_link_changes() {
                    self.executor.handle_link(now, peer, up);
                }
                let undeliverable = peers.take_undeliverable();
                if undeliverable.is_empty() {
                    break;
                }
                for (peer, envelope) in undeliverable {
                    self.executor.handle_undeliverable(now, peer, envelope);
                }
            }
            let stats = self.executor.stats();
            stats
                .peer_handshakes_refused
                .store(peers.refused_handshakes(), Ordering::Relaxed);
            let traffic = peers.traffic();
            stats
                .peer_messages_sent
                .store(traffic.messages_sent, Ordering::Relaxed);
            stats
                .peer_messages_received
                .store(traffic.messages_received, Ordering::Relaxed);
            stats
                .peer_socket_writes
                .store(traffic.socket_writes, Ordering::Relaxed);
        } else {
            // A node alone has no one to talk to.
            while self.executor.poll_transmit().is_some() {}
        }
        while let Some(done) = self.executor.poll_completion() {
            let key = Key::from_u64(done.conn.0);
            let Some(conn) = self.conns.get_mut(key) else {
                continue;
            };
            conn.complete(done.call, done.reply);
            // Replies to calls already in flight may still pile up: past the
            // hard bound the connection goes, and its memory with it.
            if conn.output_bytes() > hard_output_limit(conn, self.max_output) {
                self.close_over_limit(key);
            } else {
                self.mark_dirty(key);
            }
        }
    }

    /// Writes what the connection has ready; closes it when it is done or
    /// dead; puts it back to work when backpressure lifts.
    fn write(&mut self, key: Key) {
        let max_output = self.max_output;
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        conn.clear_dirty();
        if conn.flush().is_err() || conn.finished() {
            self.close(key);
            return;
        }
        let held = conn.held_bytes();
        if held > hard_output_limit(conn, max_output) {
            self.close_over_limit(key);
            return;
        }
        self.executor
            .stats()
            .max_output_buffer
            .fetch_max(held as u64, Ordering::Relaxed);
        let wanted = conn.wants_writable();
        if conn.writable_interest_changes(wanted) {
            let interest = if wanted {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            if self
                .poll
                .registry()
                .reregister(conn.socket_mut(), Token(key.index), interest)
                .is_err()
            {
                self.close(key);
                return;
            }
        }
        // Backpressure lifts once half the limit has drained.
        let resumes = conn.output_bytes() < max_output / 2
            && conn.can_run(max_output, MAX_CALLS_IN_FLIGHT)
            && (conn.wants_read() || conn.has_input());
        if resumes {
            self.schedule(key);
        }
    }

    /// Closes a connection whose output passed its hard bound, as Redis
    /// closes a client past its output buffer limit.
    fn close_over_limit(&mut self, key: Key) {
        if let Some(conn) = self.conns.get(key) {
            let who = conn.session().peer();
            let authenticated = conn.session().is_authenticated();
            self.output_log.note(|| {
                format!(
                    "closing client {who:?}: unsent replies past its output limit ({})",
                    if authenticated {
                        "twice --max-output-bytes"
                    } else {
                        "64 KiB before AUTH"
                    }
                )
            });
        }
        self.executor
            .stats()
            .client_output_buffer_limit_disconnections
            .fetch_add(1, Ordering::Relaxed);
        self.close(key);
    }

    fn close(&mut self, key: Key) {
        if let Some(mut conn) = self.conns.remove(key) {
            let _ = self.poll.registry().deregister(conn.socket_mut());
            self.executor
                .stats()
                .connected_clients
                .fetch_sub(1, Ordering::Relaxed);
            let held = conn.held_bytes() + conn.input_capacity();
            drop(conn);
            if held >= RETURN_MEMORY_AFTER {
                return_freed_memory();
            }
        }
    }

    /// Stops accepting and reading; in-flight commands finish; both logs
    /// are synced so every held reply can go out.
    fn begin_shutdown(&mut self) {
        if let Some(mut listener) = self.listener.take() {
            let _ = self.poll.registry().deregister(&mut listener);
        }
        for key in self.conns.keys() {
            if let Some(conn) = self.conns.get_mut(key) {
                conn.close_after_output();
            }
            self.mark_dirty(key);
        }
        if let Err(e) = self.watch.sync() {
            log::error!("log sync at shutdown failed: {e}");
        }
    }
}
