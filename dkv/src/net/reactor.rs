//! The reactor: one thread that owns every client socket.
//!
//! It accepts connections, reads until `WouldBlock`, parses commands, hands
//! each connection's commands to the worker pool one batch at a time (so a
//! connection's commands run in order and see their own writes), and
//! writes replies back in order. Workers return results through a queue and
//! a `mio::Waker`; the WAL's durability callback uses the same waker, and
//! replies that wait for a WAL sequence are released when it is durable.
//!
//! Backpressure: a connection whose unsent replies pass `max_output_bytes`,
//! or whose unparsed input passes the request limit, is not read from until
//! they drain. A protocol error gets an `-ERR` reply and the connection is
//! closed once the replies before it are out; other connections never
//! notice.

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token};
use parking_lot::Mutex;

use crate::net::cluster::{is_data_command, ClusterRuntime};
use crate::net::conn::{Conn, ReadOutcome};
use crate::net::peers::{PeerIdentity, Peers};
use crate::net::slab::{Key, Slab};
use crate::net::workers::{Wakeup, WorkerPool};
use crate::resp::{self, Command, ProtocolError};
use crate::server::commands::{Effect, Executor};
use crate::server::session::Session;
use crate::wal::Lsn;

const LISTENER: Token = Token(usize::MAX - 1);
const WAKER: Token = Token(usize::MAX - 2);
/// Cluster commands one connection may have waiting on the replication
/// core at once.
const MAX_CALLS_IN_FLIGHT: usize = 1024;
/// Commands handed to a worker in one batch, at most.
const MAX_BATCH: usize = 1024;
/// Bytes read from one connection per turn, beyond what it has buffered.
const READ_PER_TURN: usize = 256 * 1024;
/// How long a stopping reactor waits for replies to drain.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// One parsed request: a command, or the protocol error found in its
/// place.
pub(crate) enum Request {
    Command(Command),
    /// A bad request. Fatal when the parser could not skip it: the
    /// connection closes after the error reply.
    Invalid(ProtocolError),
}

/// A batch of one connection's requests, run in order by a worker.
pub(crate) struct Job {
    key: Key,
    session: Session,
    requests: VecDeque<Request>,
    /// Stop once this many reply bytes are produced; the rest comes back.
    output_budget: usize,
}

/// What a worker hands back.
pub(crate) struct Done {
    key: Key,
    session: Session,
    out: Vec<u8>,
    effect: Effect,
    /// Requests not run because the output budget was spent.
    leftover: VecDeque<Request>,
}

/// Runs a job's requests in order until they are done, one closes the
/// connection, or the replies pass the output budget.
fn run_job(executor: &Executor, job: Job) -> Done {
    let Job {
        key,
        mut session,
        mut requests,
        output_budget,
    } = job;
    let mut out = Vec::with_capacity(64 * requests.len().min(64));
    let mut effect = Effect::default();
    while let Some(request) = requests.pop_front() {
        match request {
            Request::Command(command) => {
                let args: Vec<&[u8]> = command.iter().collect();
                executor.execute(&mut session, &args, &mut out, &mut effect);
            }
            Request::Invalid(error) => {
                resp::reply::protocol_error(&mut out, &error);
                effect.close |= !error.is_recoverable();
            }
        }
        if effect.close {
            requests.clear();
            break;
        }
        if out.len() >= output_budget {
            break;
        }
    }
    Done {
        key,
        session,
        out,
        effect,
        leftover: requests,
    }
}

/// Whether a batch is big enough to be worth handing to a worker. Handing
/// over costs two thread wake-ups, more than running a few in-memory
/// commands here; a long pipeline or a large value is worth it, since the
/// reactor goes on serving other connections meanwhile.
fn worth_a_worker(requests: &VecDeque<Request>) -> bool {
    const INLINE_COMMANDS: usize = 32;
    const INLINE_BYTES: usize = 64 * 1024;
    let bytes: usize = requests
        .iter()
        .map(|r| match r {
            Request::Command(command) => command.data_len(),
            Request::Invalid(_) => 0,
        })
        .sum();
    requests.len() > INLINE_COMMANDS || bytes > INLINE_BYTES
}

/// Shared between the reactor and the handle that stops it.
pub(crate) struct Control {
    pub stopping: AtomicBool,
    pub wakeup: Wakeup,
}

pub(crate) struct Reactor {
    poll: Poll,
    listener: Option<TcpListener>,
    conns: Slab<Conn>,
    executor: Arc<Executor>,
    control: Arc<Control>,
    results: Arc<Mutex<Vec<Done>>>,
    workers: Option<WorkerPool<Job>>,
    /// Results of batches run inline (no worker threads), processed by the
    /// loop rather than recursively.
    inline_done: Vec<Done>,
    /// Every socket read goes through this one buffer, zeroed once.
    scratch: Box<[u8]>,
    durable: Lsn,
    next_session_id: u64,
    /// Present when this node is one of several: data commands go through
    /// its replication core.
    cluster: Option<ClusterRuntime>,
}

/// What a node of a multi-node cluster hands the reactor.
pub(crate) struct ClusterSetup {
    pub node: crate::node::Node<crate::disk::StoreDisk>,
    pub identity: PeerIdentity,
    pub peer_bind: std::net::SocketAddr,
    pub members: Vec<(crate::version::NodeId, std::net::SocketAddr)>,
    pub status: Arc<Mutex<crate::server::ClusterStatus>>,
}

impl Reactor {
    /// Sets up polling on `listener`; the caller runs [`Reactor::run`] on
    /// its own thread.
    pub fn new(
        listener: TcpListener,
        executor: Arc<Executor>,
        cluster: Option<ClusterSetup>,
    ) -> io::Result<(Reactor, Arc<Control>)> {
        let poll = Poll::new()?;
        let mut listener = listener;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let waker = mio::Waker::new(poll.registry(), WAKER)?;
        let control = Arc::new(Control {
            stopping: AtomicBool::new(false),
            wakeup: Wakeup::new(waker),
        });
        let results: Arc<Mutex<Vec<Done>>> = Arc::new(Mutex::new(Vec::new()));
        // Cluster commands run on this thread, beside the replication core.
        let threads = if cluster.is_some() {
            0
        } else {
            executor.config.worker_threads
        };
        let workers = match threads {
            0 => None,
            threads => {
                let executor = Arc::clone(&executor);
                let results = Arc::clone(&results);
                let control = Arc::clone(&control);
                Some(WorkerPool::start(threads, move |job: Job| {
                    let done = run_job(&executor, job);
                    results.lock().push(done);
                    control.wakeup.wake();
                })?)
            }
        };
        // Replies wait for the disk only with --fsync always; otherwise the
        // syncer need not wake the reactor at all.
        if executor.store().config().fsync == crate::wal::FsyncMode::Always {
            let control = Arc::clone(&control);
            executor
                .store()
                .wal()
                .on_durable(Box::new(move |_| control.wakeup.wake()));
        }
        let cluster = match cluster {
            None => None,
            Some(setup) => {
                // Hints wait for their own log's syncs.
                let control = Arc::clone(&control);
                setup
                    .node
                    .disk()
                    .hint_log()
                    .wal()
                    .on_durable(Box::new(move |_| control.wakeup.wake()));
                let peers = Peers::new(
                    poll.registry(),
                    setup.identity,
                    setup.peer_bind,
                    &setup.members,
                )?;
                Some(ClusterRuntime::new(
                    setup.node,
                    peers,
                    Instant::now(),
                    setup.status,
                ))
            }
        };
        let durable = executor.store().wal().durable_lsn();
        Ok((
            Reactor {
                poll,
                listener: Some(listener),
                conns: Slab::new(),
                executor,
                control: Arc::clone(&control),
                results,
                workers,
                inline_done: Vec::new(),
                scratch: vec![0u8; 64 * 1024].into_boxed_slice(),
                durable,
                next_session_id: 1,
                cluster,
            },
            control,
        ))
    }

    /// Runs until [`Control::stopping`] is set, then stops accepting,
    /// finishes in-flight commands, syncs the WAL, sends what it can and
    /// returns.
    pub fn run(mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        let mut shutdown_deadline: Option<Instant> = None;
        let mut received = Vec::new();
        loop {
            let mut timeout = shutdown_deadline.map(|_| Duration::from_millis(10));
            if let Some(deadline) = self
                .cluster
                .as_ref()
                .and_then(ClusterRuntime::next_deadline)
            {
                let wait =
                    deadline.saturating_duration_since(Instant::now()) + Duration::from_millis(1);
                timeout = Some(timeout.map_or(wait, |t| t.min(wait)));
            }
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
            // One WAL round for everything this turn appends.
            let store = Arc::clone(&self.executor.store);
            let hold = store.wal().hold();
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept(),
                    WAKER => {}
                    token if Peers::owns(token) => {
                        if let Some(cluster) = self.cluster.as_mut() {
                            cluster
                                .peers
                                .handle_event(self.poll.registry(), token, &mut received);
                            cluster.deliver(std::mem::take(&mut received));
                        }
                    }
                    Token(index) => {
                        if let Some(key) = self.conns.key_at(index) {
                            if event.is_read_closed() || event.is_error() {
                                if let Some(conn) = self.conns.get_mut(key) {
                                    conn.peer_hung_up = true;
                                }
                            }
                            if event.is_readable() || event.is_read_closed() || event.is_error() {
                                self.on_readable(key);
                            }
                            if event.is_writable() {
                                self.flush(key);
                            }
                        }
                    }
                }
            }
            // Waker events carry no data: always collect what workers and
            // the WAL syncer left, whatever woke us.
            self.control.wakeup.clear();
            self.collect_results();
            self.release_durable();
            self.run_cluster();
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
        if let Some(mut workers) = self.workers.take() {
            workers.stop();
        }
        Ok(())
    }

    fn accept(&mut self) {
        loop {
            let Some(listener) = &self.listener else {
                return;
            };
            match listener.accept() {
                Ok((socket, peer)) => {
                    if let Err(e) = socket.set_nodelay(true) {
                        log::debug!("TCP_NODELAY on {peer}: {e}");
                    }
                    let id = self.next_session_id;
                    self.next_session_id += 1;
                    let session =
                        Session::new(id, Some(peer), self.executor.config.requirepass.is_some());
                    let limits = self.executor.limits_for(Some(&session));
                    let key = self.conns.insert(Conn::new(socket, session, limits));
                    let Some(conn) = self.conns.get_mut(key) else {
                        continue;
                    };
                    if let Err(e) = self.poll.registry().register(
                        &mut conn.socket,
                        Token(key.index),
                        Interest::READABLE,
                    ) {
                        log::warn!("cannot register connection from {peer}: {e}");
                        self.conns.remove(key);
                        continue;
                    }
                    self.executor
                        .stats
                        .connections_received
                        .fetch_add(1, Ordering::Relaxed);
                    self.executor
                        .stats
                        .connected_clients
                        .fetch_add(1, Ordering::Relaxed);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // EMFILE and friends: log and retry on the next event.
                    log::warn!("accept failed: {e}");
                    return;
                }
            }
        }
    }

    fn on_readable(&mut self, key: Key) {
        let max_request = self
            .executor
            .config
            .limits
            .max_request_len
            .saturating_add(16 * 1024);
        let max_output = self.executor.config.max_output_bytes;
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        // Read a bounded amount per turn so one fast client cannot starve
        // the others; a request larger than that still gets its bytes.
        let max_input = max_request.min(conn.unparsed().len() + READ_PER_TURN);
        if conn.read_closed {
            return;
        }
        if conn.output_bytes() >= max_output {
            conn.read_pending = true;
        } else if conn.read(&mut self.scratch, max_input) == ReadOutcome::Closed {
            conn.read_closed = true;
        }
        self.dispatch(key);
        self.flush(key);
    }

    /// Parses what the connection has buffered and hands a batch to a
    /// worker, unless one of its batches is running or its unsent replies
    /// are over the limit.
    fn dispatch(&mut self, key: Key) {
        let max_output = self.executor.config.max_output_bytes;
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        // A connection with cluster calls still out waits for them before
        // starting more, so a long pipeline cannot open unbounded requests.
        if conn.busy()
            || conn.close_after_flush
            || conn.output_bytes() >= max_output
            || conn.calls_in_flight >= MAX_CALLS_IN_FLIGHT
        {
            return;
        }
        // Authentication lifts the small limits of an anonymous connection.
        let limits = self.executor.limits_for(conn.session.as_ref());
        if *conn.parser.limits() != limits {
            conn.parser.set_limits(limits);
        }
        // Until it authenticates, a connection runs one command per batch,
        // so that the commands after a pipelined AUTH are parsed with the
        // limits AUTH lifted.
        let batch_limit = if conn.session.as_ref().is_some_and(|s| s.authenticated) {
            MAX_BATCH
        } else {
            1
        };
        while conn.pending.len() < batch_limit && !conn.parse_stopped {
            let unparsed = &conn.input[conn.input_start..];
            match conn.parser.parse(unparsed) {
                Ok(Some((command, used))) => {
                    conn.consume(used);
                    conn.pending.push_back(Request::Command(command));
                }
                Ok(None) => {
                    // A peer that closed mid-request will never finish it.
                    if conn.read_closed {
                        conn.consume(conn.unparsed().len());
                    }
                    break;
                }
                Err(error) => {
                    match error.skip() {
                        Some(skip) => conn.consume(skip),
                        None => {
                            // Framing is lost: nothing after this can be read.
                            conn.read_closed = true;
                            conn.parse_stopped = true;
                        }
                    }
                    conn.pending.push_back(Request::Invalid(error));
                }
            }
        }
        if conn.pending.is_empty() {
            return;
        }
        let Some(session) = conn.session.take() else {
            return;
        };
        let rest = conn.pending.split_off(conn.pending.len().min(batch_limit));
        let requests = std::mem::replace(&mut conn.pending, rest);
        if self.cluster.is_some() {
            self.run_cluster_batch(key, session, requests);
            return;
        }
        let job = Job {
            key,
            session,
            requests,
            output_budget: (max_output / 2).max(64 * 1024),
        };
        match &self.workers {
            Some(workers) if worth_a_worker(&job.requests) => workers.submit(job),
            _ => {
                let done = run_job(&self.executor, job);
                self.inline_done.push(done);
            }
        }
    }

    /// Runs a connection's requests on this thread: data commands start
    /// cluster calls whose replies fill their place later, the rest run at
    /// once.
    fn run_cluster_batch(&mut self, key: Key, mut session: Session, requests: VecDeque<Request>) {
        let (Some(cluster), Some(conn)) = (self.cluster.as_mut(), self.conns.get_mut(key)) else {
            return;
        };
        let mut ready = Vec::new();
        let mut effect = Effect::default();
        for request in requests {
            match request {
                Request::Command(command) => {
                    let args: Vec<&[u8]> = command.iter().collect();
                    let name = args
                        .first()
                        .map(|n| n.to_ascii_lowercase())
                        .unwrap_or_default();
                    if is_data_command(&name) && session.authenticated {
                        self.executor.stats.commands.fetch_add(1, Ordering::Relaxed);
                        match cluster.start(key, &session, &name, &args[1..]) {
                            Ok(call) => {
                                conn.queue(std::mem::take(&mut ready), None);
                                conn.queue_call(call);
                            }
                            Err(bytes) => ready.extend(bytes),
                        }
                    } else {
                        self.executor
                            .execute(&mut session, &args, &mut ready, &mut effect);
                    }
                }
                Request::Invalid(error) => {
                    resp::reply::protocol_error(&mut ready, &error);
                    effect.close |= !error.is_recoverable();
                }
            }
            if effect.close {
                break;
            }
        }
        conn.queue(ready, effect.durable_lsn);
        conn.session = Some(session);
        if effect.close {
            conn.read_closed = true;
            conn.close_after_flush = true;
            conn.pending.clear();
        }
        // The loop drains the node's messages and replies (run_cluster).
        self.flush(key);
    }

    /// Lets the replication core run its timers, sends what it produced,
    /// and fills the reply slots of finished commands.
    fn run_cluster(&mut self) {
        let Some(cluster) = self.cluster.as_mut() else {
            return;
        };
        cluster.tick(self.poll.registry());
        // Filling a reply may let its connection start more commands, whose
        // messages must go out before the loop sleeps again.
        loop {
            let Some(cluster) = self.cluster.as_mut() else {
                return;
            };
            let mut finished = Vec::new();
            cluster.drain(self.poll.registry(), &mut finished);
            if finished.is_empty() {
                return;
            }
            for done in finished {
                if let Some(conn) = self.conns.get_mut(done.conn) {
                    conn.fill_call(done.call, done.bytes);
                    self.flush(done.conn);
                }
            }
        }
    }

    fn collect_results(&mut self) {
        loop {
            let mut done: Vec<Done> = std::mem::take(&mut *self.results.lock());
            done.append(&mut self.inline_done);
            if done.is_empty() {
                return;
            }
            for result in done {
                self.complete(result);
            }
        }
    }

    fn complete(&mut self, done: Done) {
        let key = done.key;
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        conn.session = Some(done.session);
        conn.queue(done.out, done.effect.durable_lsn);
        self.executor
            .stats
            .max_output_buffer
            .fetch_max(conn.output_bytes() as u64, Ordering::Relaxed);
        if done.effect.close {
            conn.read_closed = true;
            conn.close_after_flush = true;
            conn.pending.clear();
        } else {
            for request in done.leftover.into_iter().rev() {
                conn.pending.push_front(request);
            }
        }
        // More commands may have arrived while the batch ran.
        if conn.read_pending && !conn.read_closed {
            self.on_readable(key);
        } else {
            self.dispatch(key);
            self.flush(key);
        }
    }

    fn release_durable(&mut self) {
        let durable = self.executor.store().wal().durable_lsn();
        if durable > self.durable {
            self.durable = durable;
            for key in self.conns.keys() {
                if self.conns.get_mut(key).is_some_and(|c| c.has_output()) {
                    self.flush(key);
                }
            }
        }
    }

    /// Sends what can be sent; closes the connection when it is done or
    /// dead; resumes reading when backpressure lifts.
    fn flush(&mut self, key: Key) {
        let durable = self.durable;
        let max_output = self.executor.config.max_output_bytes;
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if conn.flush(durable).is_err() {
            self.close(key);
            return;
        }
        if conn.finished() {
            self.close(key);
            return;
        }
        let want_writable = conn.has_output() && !conn.blocked(durable);
        if want_writable != conn.writable_registered {
            let interest = if want_writable {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            if self
                .poll
                .registry()
                .reregister(&mut conn.socket, Token(key.index), interest)
                .is_err()
            {
                self.close(key);
                return;
            }
            conn.writable_registered = want_writable;
        }
        // Backpressure lifts once half the limit has drained.
        if !conn.busy() && conn.output_bytes() < max_output / 2 {
            if conn.read_pending && !conn.read_closed {
                self.on_readable(key);
            } else if !conn.pending.is_empty()
                || (conn.calls_in_flight == 0 && !conn.unparsed().is_empty())
            {
                self.dispatch(key);
            }
        }
    }

    fn close(&mut self, key: Key) {
        if let Some(mut conn) = self.conns.remove(key) {
            let _ = self.poll.registry().deregister(&mut conn.socket);
            self.executor
                .stats
                .connected_clients
                .fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Stops accepting and reading; in-flight batches finish; the WAL is
    /// synced so every held reply can go out.
    fn begin_shutdown(&mut self) {
        if let Some(mut listener) = self.listener.take() {
            let _ = self.poll.registry().deregister(&mut listener);
        }
        for key in self.conns.keys() {
            if let Some(conn) = self.conns.get_mut(key) {
                conn.read_closed = true;
                conn.close_after_flush = true;
            }
        }
        if let Some(workers) = self.workers.take() {
            // Joining lets queued batches finish; their results are queued.
            let mut workers = workers;
            workers.stop();
            self.collect_results();
        }
        if let Err(e) = self.executor.store().wal().sync() {
            log::error!("WAL sync at shutdown failed: {e}");
        }
        self.release_durable();
        for key in self.conns.keys() {
            self.flush(key);
        }
    }
}
