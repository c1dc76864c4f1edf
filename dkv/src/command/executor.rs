//! [`Executor`]: every connection's commands, run against the node.
//!
//! The executor owns the replication core ([`Node`]) and is itself
//! sans-IO: the IO layer hands it each parsed request with the time, the
//! connection's [`Session`] and an output buffer; peer messages, disk
//! progress and ticks go through it to the node. A data command becomes
//! one node operation per key, tagged with the command's [`CallId`]; when
//! every operation has its result the command's reply is rendered once,
//! by [`super::reply`], whether it finished at once (a node alone reading
//! from memory, or with nothing to fsync) or later:
//!
//! * finished at once: the reply is appended to the caller's buffer and
//!   [`Executed::Answered`] returned (a call of one operation then never
//!   enters the call table);
//! * finished later: [`Executed::Pending`] now, and a [`Completion`] with
//!   the reply from [`Executor::poll_completion`] when it is done.
//!
//! Messages for peers come out of [`Executor::poll_transmit`]. The IO
//! layer drains both after every input.
//!
//! Deadlines: a request may come wrapped as `DKV.DEADLINE <unix-ms>
//! <command> [arg ...]` (dkv's own clients wrap every data request so).
//! One read after its deadline (a coordinator that was paused, say) is
//! answered `-TIMEOUT ...` and applies nothing. The deadline is the
//! client's wall clock, so it holds to within the clocks' agreement; plain
//! RESP clients send no deadline and their requests run whenever they are
//! read.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use crate::command::admin;
use crate::command::error::CommandError;
use crate::command::parse::{self, Command, ConfigRequest, Request};
use crate::command::program::Program;
use crate::command::reply::{self, DataKind};
use crate::command::session::Session;
use crate::command::settings::{ServerStats, Settings};
use crate::command::stats::{CommandStats, Outcome};
use crate::node::{Consistency, Disk, KeyspaceOp, Node, Now, Op, OpError, OpId, Output};
use crate::peer::Envelope;
use crate::resp::{self, reply as resp_reply, Limits};
use crate::slab::{Key, Slab};
use crate::version::NodeId;

mod batch;
mod call;
mod programs;

use call::{Call, CallKind, ProgramCall, Queued, Results};

/// The IO layer's handle for a connection, echoed in its completions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnId(pub u64);

/// A data command in flight, named in its [`Completion`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CallId(u64);

/// A data command that finished after [`Executor::execute`] returned.
/// The reply is borrowed from the executor until the next input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Completion<'a> {
    /// The connection that sent it.
    pub conn: ConnId,
    /// The call [`Executed::Pending`] named.
    pub call: CallId,
    /// The whole RESP reply.
    pub reply: &'a [u8],
}

/// A finished call whose reply waits in the executor's reply buffer.
#[derive(Debug)]
struct Finished {
    conn: ConnId,
    call: CallId,
    reply: std::ops::Range<usize>,
}

/// What became of a request handed to [`Executor::execute`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "a pending call's reply must be waited for"]
pub enum Executed {
    /// The reply is in the output buffer.
    Answered,
    /// The reply will come as a [`Completion`] for this call.
    Pending(CallId),
    /// The reply is in the output buffer; close the connection once it is
    /// sent (`QUIT`).
    Close,
}

/// Runs commands for every connection of one node.
pub struct Executor<D: Disk> {
    node: Node<D>,
    settings: Settings,
    stats: Arc<ServerStats>,
    calls: Slab<Call>,
    transmits: VecDeque<(NodeId, Envelope)>,
    completions: VecDeque<Finished>,
    /// The replies of `completions`, back to back: one buffer for all, so
    /// finishing a call allocates nothing.
    replies: Vec<u8>,
    /// Whether this node's link to each peer is up, as the IO layer says.
    links: BTreeMap<NodeId, bool>,
    /// Keys a program in flight holds: a command on one of them waits in
    /// `queued` until the program is done, so each program is atomic on
    /// this coordinator and commands on a key run in the order they came.
    locked: HashSet<Vec<u8>>,
    queued: VecDeque<Queued>,
    /// The `EXEC` each command of a transaction in flight belongs to.
    batch_parent: HashMap<Key, Key>,
    /// `EXEC`s whose waiting command finished.
    ready_batches: VecDeque<Key>,
    driving_batches: bool,
    command_stats: CommandStats,
    /// Commands seen, for timing one in [`TIMED_EVERY`].
    timing_tick: u64,
    now: Now,
    next_session: u64,
}

/// One command in this many that answers at once is timed.
const TIMED_EVERY: u64 = 16;

impl<D: Disk> Executor<D> {
    /// An executor over `node`, at `now`.
    pub fn new(node: Node<D>, settings: Settings, stats: Arc<ServerStats>, now: Now) -> Self {
        let links = node
            .settings()
            .members
            .iter()
            .filter(|&&id| id != node.id())
            .map(|&id| (id, false))
            .collect();
        Executor {
            node,
            settings,
            stats,
            calls: Slab::new(),
            transmits: VecDeque::new(),
            completions: VecDeque::new(),
            replies: Vec::new(),
            links,
            locked: HashSet::new(),
            queued: VecDeque::new(),
            batch_parent: HashMap::new(),
            ready_batches: VecDeque::new(),
            driving_batches: false,
            command_stats: CommandStats::default(),
            timing_tick: 0,
            now,
            next_session: 1,
        }
    }

    /// The replication core.
    pub fn node(&self) -> &Node<D> {
        &self.node
    }

    /// Mutable access to the node, for a simulator that syncs or crashes
    /// its disk.
    pub fn node_mut(&mut self) -> &mut Node<D> {
        &mut self.node
    }

    /// The static settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The counters shared with the IO layer.
    pub fn stats(&self) -> &Arc<ServerStats> {
        &self.stats
    }

    /// A session for a new connection from `peer`.
    pub fn open_session(&mut self, peer: Option<std::net::SocketAddr>) -> Session {
        let id = self.next_session;
        self.next_session += 1;
        Session::new(id, peer, self.settings.requirepass.is_some())
    }

    /// The request limits for a connection: small until it authenticates
    /// when a password is set (as Redis does for unauthenticated clients).
    pub fn limits(&self, session: &Session) -> Limits {
        if session.is_authenticated() {
            self.settings.limits
        } else {
            Limits::unauthenticated()
        }
    }

    /// The IO layer's link to `peer` went up or down: shown by INFO, and
    /// the node routes around a peer without one.
    pub fn handle_link(&mut self, now: Now, peer: NodeId, connected: bool) {
        self.now = now;
        if let Some(link) = self.links.get_mut(&peer) {
            *link = connected;
        }
        self.node.handle_link(now, peer, connected);
        self.collect(None);
    }

    /// The IO layer could not send `envelope` to `peer`.
    pub fn handle_undeliverable(&mut self, now: Now, peer: NodeId, envelope: Envelope) {
        self.now = now;
        self.node.handle_undeliverable(now, peer, envelope.message);
        self.collect(None);
    }

    /// Runs one request and appends its reply to `out`, or starts it.
    pub fn execute(
        &mut self,
        now: Now,
        conn: ConnId,
        session: &mut Session,
        request: &resp::Command,
        out: &mut Vec<u8>,
    ) -> Executed {
        // Every command is counted; one in TIMED_EVERY is timed (a clock
        // read costs as much as a GET's parsing), and its time stands for
        // the others'.
        self.timing_tick = self.timing_tick.wrapping_add(1);
        let started = (self.timing_tick % TIMED_EVERY == 0).then(Instant::now);
        let before = out.len();
        let mut which = Which::default();
        let executed = self.run_request(now, conn, session, request, out, &mut which);
        let Some(index) = which.index else {
            return executed;
        };
        match executed {
            Executed::Pending(call) => {
                if let Some(call) = self.calls.get_mut(Key::from_u64(call.0)) {
                    // A call that waits on replicas or the disk is always
                    // timed: it is slow next to a clock read.
                    call.started = Some((index, started.unwrap_or_else(Instant::now)));
                }
            }
            Executed::Answered | Executed::Close => {
                let outcome = if which.rejected {
                    Outcome::Rejected
                } else {
                    Outcome::of_reply(out.get(before..).unwrap_or_default())
                };
                let usec = started.map(|at| at.elapsed().as_micros() as u64);
                self.command_stats.record(index, usec, TIMED_EVERY, outcome);
            }
        }
        executed
    }

    /// Records a pending call's stats as its reply is rendered.
    fn record_finished(&mut self, started: Option<(usize, Instant)>, reply: &[u8]) {
        record_call(&mut self.command_stats, started, reply);
    }

    /// A call that finished after `execute` returned: its reply joins the
    /// completions, and its stats are recorded.
    fn complete(&mut self, call: Call, id: CallId) {
        let (conn, started) = (call.conn, call.started);
        let start = self.replies.len();
        call.render(&mut self.replies);
        record_call(&mut self.command_stats, started, &self.replies[start..]);
        self.completions.push_back(Finished {
            conn,
            call: id,
            reply: start..self.replies.len(),
        });
    }

    fn run_request(
        &mut self,
        now: Now,
        conn: ConnId,
        session: &mut Session,
        request: &resp::Command,
        out: &mut Vec<u8>,
        which: &mut Which,
    ) -> Executed {
        self.now = now;
        self.stats.commands.fetch_add(1, Ordering::Relaxed);
        let (request, deadline) = match deadline_prefix(Request::new(request)) {
            Ok(split) => split,
            Err(error) => {
                resp_reply::error_line(out, &error.to_string());
                return Executed::Answered;
            }
        };
        let spec = parse::lookup(request).and_then(|(index, spec)| {
            which.index = Some(index);
            if !session.is_authenticated() && !spec.allowed_unauthenticated() {
                return Err(CommandError::NoAuth);
            }
            Ok(spec)
        });
        if session.transaction.is_some() {
            if let Some(executed) = self.queue_in_transaction(session, &spec, request, out) {
                // Counted when EXEC runs it.
                which.index = None;
                return executed;
            }
        }
        let node = &self.node;
        let expiry_now = || node.expiry_time(now.wall);
        let command = spec.and_then(|spec| parse::parse(spec, request, &expiry_now));
        let command = match command {
            Ok(command) => command,
            Err(error) => {
                which.rejected = true;
                resp_reply::error_line(out, &error.to_string());
                return Executed::Answered;
            }
        };
        if deadline.is_some_and(|d| now.wall > d) {
            self.node.note_deadline_passed();
            resp_reply::error_line(out, &OpError::DeadlinePassed.to_string());
            return Executed::Answered;
        }
        let (read, write) = (session.read_consistency, session.write_consistency);
        let resp3 = session.resp3();
        let call = CallStart {
            now,
            conn,
            resp3,
            deadline,
            out,
        };
        if !self.locked.is_empty() {
            // A program holds some key: a command on it waits its turn, as
            // a program of its own.
            let command = match Program::from_plain(&command) {
                Some(program) if program.reads().iter().any(|k| self.locked.contains(*k)) => {
                    Command::Program(Box::new(program))
                }
                _ => command,
            };
            if let Command::Program(program) = command {
                return self.start_program(call, *program, read, write);
            }
            return self.run(call, command, session, read, write);
        }
        self.run(call, command, session, read, write)
    }

    /// Runs a parsed command.
    #[inline(always)]
    fn run(
        &mut self,
        call: CallStart<'_>,
        command: Command<'_>,
        session: &mut Session,
        read: Consistency,
        write: Consistency,
    ) -> Executed {
        let now = call.now;
        match command {
            Command::Get { key } => self.call(call, DataKind::Get, read, 1, [Op::Get { key }]),
            Command::Set {
                key,
                value,
                expires_at,
            } => self.call(
                call,
                DataKind::Set,
                write,
                1,
                [Op::Put {
                    key,
                    value,
                    expires_at,
                }],
            ),
            Command::Add { key, delta } => {
                self.call(call, DataKind::Counter, write, 1, [Op::Add { key, delta }])
            }
            Command::Program(program) => self.start_program(call, *program, read, write),
            Command::Multi => {
                session.transaction = Some(Default::default());
                resp_reply::ok(call.out);
                Executed::Answered
            }
            Command::Exec => self.exec(call, session),
            Command::Flush => self.keyspace_call(call, DataKind::Flush, KeyspaceOp::Flush),
            Command::Scan {
                no_type_matches: true,
                ..
            } => {
                // dkv holds strings only.
                reply::render(DataKind::Scan, call.resp3, &[], call.out);
                Executed::Answered
            }
            Command::Scan {
                cursor,
                count,
                pattern,
                ..
            } => {
                let op = KeyspaceOp::Scan {
                    cursor,
                    count,
                    pattern,
                };
                self.keyspace_call(call, DataKind::Scan, op)
            }
            Command::Keys { pattern } => {
                self.keyspace_call(call, DataKind::Keys, KeyspaceOp::Keys { pattern })
            }
            Command::RandomKey => {
                self.keyspace_call(call, DataKind::RandomKey, KeyspaceOp::RandomKey)
            }
            Command::DbSize => self.keyspace_call(call, DataKind::Count, KeyspaceOp::Count),
            Command::Discard => {
                resp_reply::error_line(call.out, "ERR DISCARD without MULTI");
                Executed::Answered
            }
            Command::Del { keys } => self.call(
                call,
                DataKind::Del,
                write,
                keys.len(),
                keys.iter().map(|key| Op::Delete { key }),
            ),
            Command::Exists { keys } => self.call(
                call,
                DataKind::Exists,
                read,
                keys.len(),
                keys.iter().map(|key| Op::Get { key }),
            ),
            Command::MGet { keys } => self.call(
                call,
                DataKind::MGet,
                read,
                keys.len(),
                keys.iter().map(|key| Op::Get { key }),
            ),
            Command::MSet { pairs } => self.call(
                call,
                DataKind::MSet,
                write,
                pairs.len() / 2,
                pairs.pairs().map(|(key, value)| Op::Put {
                    key,
                    value,
                    expires_at: None,
                }),
            ),
            other => {
                if matches!(other, Command::Config(ConfigRequest::ResetStat)) {
                    self.command_stats.reset();
                }
                let context = admin::Context {
                    node: &self.node,
                    settings: &self.settings,
                    stats: &self.stats,
                    links: &self.links,
                    command_stats: &self.command_stats,
                    now,
                };
                admin::run(&context, session, other, call.out)
            }
        }
    }

    /// Starts a data command: one node operation per key.
    fn call<'a>(
        &mut self,
        start: CallStart<'_>,
        kind: DataKind,
        consistency: Consistency,
        parts: usize,
        ops: impl IntoIterator<Item = Op<'a>>,
    ) -> Executed {
        let mut ops = ops.into_iter();
        if parts == 1 {
            // One operation, very often answered at once: the call enters
            // the table only if it has to wait (it gets the key it was
            // started under, as nothing else inserts meanwhile).
            let Some(op) = ops.next() else {
                return Executed::Answered;
            };
            let key = self.calls.vacant_key();
            let op_id = OpId {
                call: key.to_u64(),
                part: 0,
            };
            self.node
                .handle_request(start.now, op_id, op, consistency, start.deadline);
            if let Some(result) = self.node.take_only_reply(op_id) {
                reply::render(kind, start.resp3, std::slice::from_ref(&result), start.out);
                return Executed::Answered;
            }
            let inserted = self
                .calls
                .insert(Call::data(start.conn, kind, start.resp3, 1));
            debug_assert_eq!(inserted, key, "the call has the key it was started under");
            return self.answered_or_pending(key, start.out);
        }
        let key = self
            .calls
            .insert(Call::data(start.conn, kind, start.resp3, parts));
        let call = key.to_u64();
        for (part, op) in ops.enumerate() {
            debug_assert!(part < parts);
            // Parts are bounded by the argument limit, far below u32::MAX.
            let op_id = OpId {
                call,
                part: part as u32,
            };
            self.node
                .handle_request(start.now, op_id, op, consistency, start.deadline);
        }
        self.answered_or_pending(key, start.out)
    }

    /// Collects what the node answered: the reply of call `key` into `out`
    /// if it came, or the call's id to wait for.
    fn answered_or_pending(&mut self, key: Key, out: &mut Vec<u8>) -> Executed {
        if self.collect(Some((key, out))) {
            Executed::Answered
        } else {
            Executed::Pending(CallId(key.to_u64()))
        }
    }

    /// Starts a request about the whole key space.
    fn keyspace_call(
        &mut self,
        start: CallStart<'_>,
        kind: DataKind,
        request: KeyspaceOp<'_>,
    ) -> Executed {
        let key = self
            .calls
            .insert(Call::data(start.conn, kind, start.resp3, 1));
        let op = OpId::single(key.to_u64());
        self.node.handle_keyspace(start.now, op, request);
        self.answered_or_pending(key, start.out)
    }

    /// Moves the node's outputs into the transmit and completion queues;
    /// the `immediate` call, if it finished, is rendered into its buffer
    /// instead (returns whether it was).
    fn collect(&mut self, mut immediate: Option<(Key, &mut Vec<u8>)>) -> bool {
        if self.completions.is_empty() {
            // Every reply handed out has been taken: the buffer starts over.
            self.replies.clear();
        }
        let mut answered = false;
        while let Some(output) = self.node.poll_output() {
            match output {
                Output::Send { to, envelope } => self.transmits.push_back((to, envelope)),
                Output::Reply { op, result } => {
                    let key = Key::from_u64(op.call);
                    let Some(call) = self.calls.get_mut(key) else {
                        continue;
                    };
                    if !call.record(op.part, result) {
                        continue;
                    }
                    if matches!(call.kind, CallKind::Program(_)) && self.program_step(key) {
                        // The program's writes went out.
                        continue;
                    }
                    let Some(call) = self.calls.remove(key) else {
                        continue;
                    };
                    if let CallKind::Program(program) = &call.kind {
                        for held in &program.keys {
                            self.locked.remove(held);
                        }
                        self.start_queued();
                    }
                    // (The emptiness check keeps a hash off the data path.)
                    if !self.batch_parent.is_empty() {
                        if let Some(parent) = self.batch_parent.remove(&key) {
                            self.batch_part_done(parent, call);
                            continue;
                        }
                    }
                    match &mut immediate {
                        Some((wanted, out)) if *wanted == key => {
                            // The command is still in `execute`, which
                            // records its stats.
                            call.render(out);
                            answered = true;
                        }
                        _ => self.complete(call, CallId(op.call)),
                    }
                }
            }
        }
        if !self.ready_batches.is_empty() {
            self.drive_ready_batches();
        }
        answered
    }

    /// A message from a peer.
    pub fn handle_message(&mut self, now: Now, envelope: Envelope) {
        self.now = now;
        self.node.handle_message(now, envelope);
        self.collect(None);
    }

    /// A log's progress, as the runtime's disk reports it.
    pub fn handle_durable(&mut self, now: Now, durable: crate::node::Ticket) {
        self.now = now;
        self.node.handle_durable(now, durable);
        self.collect(None);
    }

    /// A log failed for good.
    pub fn handle_disk_failed(&mut self, now: Now, log: crate::node::Log) {
        self.now = now;
        self.node.handle_disk_failed(now, log);
        self.collect(None);
    }

    /// Time passed: runs the node's timers if they are due.
    pub fn handle_tick(&mut self, now: Now) {
        self.now = now;
        if self.node.poll_timeout().is_some_and(|t| t <= now.mono) {
            self.node.handle_tick(now);
            self.collect(None);
        }
    }

    /// When [`Executor::handle_tick`] is next needed (monotonic ms).
    pub fn poll_timeout(&self) -> Option<u64> {
        self.node.poll_timeout()
    }

    /// The next message for a peer.
    pub fn poll_transmit(&mut self) -> Option<(NodeId, Envelope)> {
        self.transmits.pop_front()
    }

    /// The next command that finished.
    pub fn poll_completion(&mut self) -> Option<Completion<'_>> {
        let done = self.completions.pop_front()?;
        Some(Completion {
            conn: done.conn,
            call: done.call,
            reply: self.replies.get(done.reply).unwrap_or_default(),
        })
    }

    /// Data commands still waiting for their operations.
    pub fn calls_in_flight(&self) -> usize {
        self.calls.len()
    }
}

/// Records the stats of a call timed since `started`, given its reply.
fn record_call(stats: &mut CommandStats, started: Option<(usize, Instant)>, reply: &[u8]) {
    if let Some((index, at)) = started {
        let usec = at.elapsed().as_micros() as u64;
        stats.record(index, Some(usec), 1, Outcome::of_reply(reply));
    }
}

/// Which command a request was, for its stats.
#[derive(Debug, Default)]
struct Which {
    index: Option<usize>,
    rejected: bool,
}

/// Where a data command came from and where an immediate reply goes.
struct CallStart<'o> {
    now: Now,
    conn: ConnId,
    resp3: bool,
    deadline: Option<u64>,
    out: &'o mut Vec<u8>,
}

/// Takes a `DKV.DEADLINE <unix-ms>` prefix off a request: the request it
/// wraps and the deadline.
#[inline]
fn deadline_prefix(request: Request<'_>) -> Result<(Request<'_>, Option<u64>), CommandError> {
    let is_prefix = request
        .name()
        .is_some_and(|n| n.eq_ignore_ascii_case(b"dkv.deadline"));
    if !is_prefix {
        return Ok((request, None));
    }
    if request.len() < 3 {
        return Err(CommandError::WrongArity("dkv.deadline"));
    }
    let deadline = request
        .get(1)
        .and_then(|d| std::str::from_utf8(d).ok())
        .and_then(|d| d.parse::<u64>().ok())
        .ok_or_else(|| {
            CommandError::refused(
                "ERR DKV.DEADLINE takes a deadline in milliseconds since the Unix epoch",
            )
        })?;
    Ok((request.skip(2), Some(deadline)))
}
