//! The sans-IO replication core: one node of the cluster as a state
//! machine. A node alone is a cluster of one (N = W = R = 1) and runs the
//! same code.
//!
//! A [`Node`] does no IO and reads no clock. The runtime (the reactor in
//! production, the simulator in tests) feeds it inputs, each stamped with
//! a [`Now`]:
//!
//! * [`Node::handle_request`]: an operation to coordinate (get, put,
//!   delete), tagged with the runtime's [`OpId`];
//! * [`Node::handle_message`]: a peer's message;
//! * [`Node::handle_durable`]: a log became durable up to a sequence (the
//!   runtime learns it from its WAL), and [`Node::handle_disk_failed`]: a
//!   log failed for good;
//! * [`Node::handle_tick`]: time passed ([`Node::poll_timeout`] says when).
//!
//! After every input the runtime drains [`Node::poll_output`]: messages to
//! send and operation replies. The node's only other contact with the
//! world is its [`Disk`].
//!
//! The parts, each owning its state:
//!
//! | file            | part                                                      |
//! |-----------------|-----------------------------------------------------------|
//! | `coordinator.rs`| [`coordinator::Coordinator`]: plans, requests in flight, deadlines |
//! | `quorum.rs`     | the write and read tallies (who answered, when W or R is reached) |
//! | `handoff.rs`    | [`handoff::Handoff`]: hints kept for others, their delivery |
//! | `failure.rs`    | [`failure::FailureDetector`]: heartbeats, peer health      |
//! | `durability.rs` | [`durability::DurabilityGate`]: actions held until durable |
//! | `ids.rs`        | typed request ids (write, read, delivery, repair)          |
//! | `disk.rs`       | the [`Disk`] trait and [`MemDisk`]                         |
//! | `types.rs`      | [`Op`], [`OpReply`], [`OpError`], [`Output`], settings     |
//!
//! This file composes them and owns the control flow: the coordinator's
//! side (start a request, count answers, reply, repair, hint the silent)
//! and the replica's side (apply or keep a hint, acknowledge once durable,
//! answer reads), both under one clock discipline: a write is stamped by
//! this node's hybrid clock, and a replicated write stamped too far ahead
//! of this node's wall clock is refused.

mod coordinator;
mod disk;
mod durability;
mod failure;
mod handoff;
mod ids;
mod quorum;
mod types;

#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, VecDeque};

use crate::clock::HybridClock;
use crate::engine::Entry;
use crate::peer::{Envelope, Message, RequestId};
use crate::ring::Ring;
use crate::version::{NodeId, Version};

pub use disk::{Applied, Disk, DiskError, DiskStats, Hint, Log, MemDisk, Ticket};
pub use types::{
    Consistency, NodeSettings, NodeStats, Now, Op, OpError, OpId, OpReply, OpResult, Output,
};

use coordinator::{Coordinator, Expired, ReadOp, WriteOp};
use durability::{Deferred, DurabilityGate};
use failure::FailureDetector;
use handoff::Handoff;
use ids::{Classified, ReadId, RequestIds, WriteId};
use quorum::{ReadTally, WriteTally};

/// One node's replication state machine.
pub struct Node<D: Disk> {
    settings: NodeSettings,
    ring: Ring,
    disk: D,
    clock: HybridClock,
    now: Now,
    ids: RequestIds,
    coordinator: Coordinator,
    handoff: Handoff,
    detector: FailureDetector,
    gate: DurabilityGate,
    outputs: VecDeque<Output>,
    /// Read repairs, quorum failures, clock refusals (hint counters live
    /// in the handoff).
    stats: NodeStats,
}

impl<D: Disk> Node<D> {
    /// A node at `now` over `disk`, whose hints it loads and past whose
    /// newest timestamp its clock starts. Peers start out presumed up;
    /// silence marks them down.
    pub fn new(settings: NodeSettings, disk: D, now: Now) -> Node<D> {
        let ring = Ring::new(&settings.members, settings.virtual_nodes);
        let mut clock = HybridClock::new(settings.max_clock_drift);
        clock.advance_to(disk.max_timestamp());
        let hints = disk.hints();
        for hint in &hints {
            clock.advance_to(hint.entry.version.timestamp);
        }
        let detector = FailureDetector::new(
            settings.id,
            &settings.members,
            now.mono,
            settings.heartbeat_interval.as_millis() as u64,
            settings.failure_timeout.as_millis() as u64,
        );
        Node {
            ring,
            disk,
            clock,
            now,
            ids: RequestIds::new(),
            coordinator: Coordinator::new(),
            handoff: Handoff::new(&settings, hints),
            detector,
            gate: DurabilityGate::new(),
            outputs: VecDeque::new(),
            stats: NodeStats::default(),
            settings,
        }
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.settings.id
    }

    /// The settings it runs with.
    pub fn settings(&self) -> &NodeSettings {
        &self.settings
    }

    /// The ring it places keys on.
    pub fn ring(&self) -> &Ring {
        &self.ring
    }

    /// Its disk (read-only: writes go through the node).
    pub fn disk(&self) -> &D {
        &self.disk
    }

    /// Mutable access to its disk, for a runtime that syncs or crashes it
    /// (the simulator).
    pub fn disk_mut(&mut self) -> &mut D {
        &mut self.disk
    }

    /// Counters.
    pub fn stats(&self) -> NodeStats {
        let (hints_delivered, hints_dropped) = self.handoff.counters();
        NodeStats {
            hints_delivered,
            hints_dropped,
            ..self.stats.clone()
        }
    }

    /// Whether `node` is believed up (this node always is).
    pub fn is_up(&self, node: NodeId) -> bool {
        self.detector.is_up(node)
    }

    /// Every peer and whether it is believed up.
    pub fn peer_states(&self) -> Vec<(NodeId, bool)> {
        self.detector.states()
    }

    /// Hints waiting, per target.
    pub fn hints_pending(&self) -> Vec<(NodeId, usize)> {
        self.handoff.pending()
    }

    /// Requests this node coordinates that have not finished, and actions
    /// waiting for the disk.
    pub fn in_flight(&self) -> (usize, usize) {
        (self.coordinator.in_flight(), self.gate.waiting())
    }

    /// Next output for the runtime.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// When the node next needs [`Node::handle_tick`] (monotonic ms).
    pub fn poll_timeout(&self) -> Option<u64> {
        let mut next = self.detector.next_deadline();
        if let Some(deadline) = self.coordinator.next_deadline() {
            next = next.min(deadline);
        }
        if self.handoff.has_work(|t| self.detector.is_up(t)) {
            next = next.min(self.now.mono + self.settings.heartbeat_interval.as_millis() as u64);
        }
        Some(next)
    }

    /// Coordinates an operation; its reply comes out of
    /// [`Node::poll_output`], at once when no other node or disk sync is
    /// involved.
    pub fn handle_request(
        &mut self,
        now: Now,
        op: OpId,
        request: Op<'_>,
        consistency: Consistency,
    ) {
        self.advance(now);
        match request {
            Op::Get { key } => self.start_read(op, key, consistency),
            Op::Put { key, value } => self.start_write(op, key, Some(value), consistency),
            Op::Delete { key } => self.start_write(op, key, None, consistency),
        }
    }

    /// Handles a message from a peer.
    pub fn handle_message(&mut self, now: Now, envelope: Envelope) {
        self.advance(now);
        let from = envelope.from;
        if !self.detector.knows(from) {
            log::warn!(
                "node {}: message from unknown node {from} ignored",
                self.settings.id
            );
            return;
        }
        if self.clock.observe(envelope.clock, now.wall).is_err() {
            self.stats.clock_refusals += 1;
            log::warn!(
                "node {}: clock of node {from} is too far ahead; not followed",
                self.settings.id
            );
        }
        if self.detector.heard_from(from, now.mono) {
            self.deliver_hints();
        }
        match envelope.message {
            Message::Replicate {
                request,
                key,
                entry,
                hint_for,
            } => self.on_replicate(from, request, key, entry, hint_for),
            Message::ReplicateAck {
                request,
                ok,
                was_live,
            } => match Classified::of(request) {
                Classified::Write(write) if ok => self.on_write_ack(from, write, was_live),
                Classified::Delivery(delivery) => {
                    self.handoff.on_delivered(&mut self.disk, delivery, ok)
                }
                // A refused copy counts for nothing; repairs are fire and
                // forget; a read is never acknowledged this way.
                Classified::Write(_) | Classified::Repair(_) | Classified::Read(_) => {}
            },
            Message::Read { request, key } => {
                let entry = self.disk.get(&key);
                self.send(from, Message::ReadReply { request, entry });
            }
            Message::ReadReply { request, entry } => {
                if let Classified::Read(read) = Classified::of(request) {
                    self.on_read_reply(from, read, entry);
                }
            }
            Message::Heartbeat => {}
        }
    }

    /// The runtime's log reports everything in `durable.log` up to
    /// `durable.lsn` durable: releases what waited for it.
    pub fn handle_durable(&mut self, now: Now, durable: Ticket) {
        self.advance(now);
        let mut released = Vec::new();
        self.gate.advance(durable, &mut released);
        for action in released {
            self.perform(action);
        }
    }

    /// The runtime's log failed for good (a refused fsync poisons it):
    /// everything waiting on it fails instead of waiting for ever.
    pub fn handle_disk_failed(&mut self, now: Now, log: Log) {
        self.advance(now);
        let mut failed = Vec::new();
        self.gate.fail(log, &mut failed);
        for action in failed {
            match action {
                Deferred::Ack { to, request, .. } => self.send(
                    to,
                    Message::ReplicateAck {
                        request,
                        ok: false,
                        was_live: false,
                    },
                ),
                // The copy never counts; the write fails at its deadline
                // unless other replicas make its quorum.
                Deferred::OwnWrite { .. } => {}
                Deferred::Reply { op, .. } => {
                    self.reply(op, Err(OpError::Storage(format!("the {log:?} log failed"))))
                }
            }
        }
    }

    /// Advances timers: failure detection, heartbeats, request deadlines,
    /// hint expiry and delivery.
    pub fn handle_tick(&mut self, now: Now) {
        self.advance(now);
        self.detector.check(now.mono);
        if let Some(peers) = self.detector.heartbeat_due(now.mono) {
            for peer in peers {
                self.send(peer, Message::Heartbeat);
            }
        }
        for expired in self.coordinator.expire(now.mono) {
            match expired {
                Expired::Write(write) => self.on_write_expired(write),
                Expired::Read(read) => self.on_read_expired(read),
            }
        }
        self.handoff.expire(&mut self.disk, now.wall);
        self.deliver_hints();
    }

    fn advance(&mut self, now: Now) {
        debug_assert!(now.mono >= self.now.mono, "monotonic time went backwards");
        self.now = now;
    }

    fn deadline(&self) -> u64 {
        self.now.mono + self.settings.request_timeout.as_millis() as u64
    }

    fn send(&mut self, to: NodeId, message: Message) {
        let clock = self.clock.last();
        self.outputs.push_back(Output::Send {
            to,
            envelope: Envelope {
                from: self.settings.id,
                clock,
                message,
            },
        });
    }

    fn reply(&mut self, op: OpId, result: OpResult) {
        if matches!(result, Err(OpError::Unavailable { .. })) {
            self.stats.quorum_failures += 1;
        }
        self.outputs.push_back(Output::Reply { op, result });
    }

    /// Holds `action` until `ticket` is durable, or does it now.
    fn defer(&mut self, ticket: Option<Ticket>, action: Deferred) {
        let ready = match ticket {
            None => Some(action),
            Some(ticket) => self.gate.defer(ticket, action),
        };
        if let Some(action) = ready {
            self.perform(action);
        }
    }

    fn perform(&mut self, action: Deferred) {
        match action {
            Deferred::Ack {
                to,
                request,
                was_live,
            } => self.send(
                to,
                Message::ReplicateAck {
                    request,
                    ok: true,
                    was_live,
                },
            ),
            Deferred::OwnWrite { write, was_live } => {
                self.on_write_ack(self.settings.id, write, was_live)
            }
            Deferred::Reply {
                op,
                existed,
                version,
            } => self.reply(op, Ok(OpReply::Written { existed, version })),
        }
    }

    /// The replicas `consistency` requires, or a reply saying it is out
    /// of range.
    fn required(&mut self, op: OpId, consistency: Consistency, quorum: usize) -> Option<usize> {
        let n = self.settings.replication_factor;
        let required = consistency.required(quorum, n);
        if required.is_none() {
            let asked = match consistency {
                Consistency::Count(k) => k,
                _ => 0,
            };
            self.reply(op, Err(OpError::BadConsistency(asked, n)));
        }
        required
    }

    // ---- coordinator: writes ----

    fn start_write(
        &mut self,
        op: OpId,
        key: &[u8],
        value: Option<&[u8]>,
        consistency: Consistency,
    ) {
        let Some(required) = self.required(op, consistency, self.settings.write_quorum) else {
            return;
        };
        let n = self.settings.replication_factor;
        let me = self.settings.id;
        if self.ring.len() == 1 {
            // A node alone owns every key: no placement to work out.
            let version = Version::new(self.clock.tick(self.now.wall), me);
            return self.write_alone(op, key, value, version);
        }
        let detector = &self.detector;
        let plan = coordinator::plan_write(&self.ring, key, n, |id| detector.is_up(id));
        if plan.reachable < required {
            // Too few replicas up: fail at once and write nothing.
            let error = OpError::Unavailable {
                answered: 0,
                required,
                replicas: n,
                reachable: plan.reachable,
            };
            self.reply(op, Err(error));
            return;
        }
        let version = Version::new(self.clock.tick(self.now.wall), me);
        if plan.is_only(me) {
            return self.write_alone(op, key, value, version);
        }
        let entry = Entry {
            version,
            value: value.map(<[u8]>::to_vec),
        };
        let write = self.ids.write();
        let targets = plan.targets.clone();
        let deadline = self.deadline();
        self.coordinator.open_write(
            write,
            WriteOp {
                op,
                key: key.to_vec(),
                entry: entry.clone(),
                tally: WriteTally::new(plan.targets, required),
                reachable: plan.reachable,
            },
            deadline,
        );
        for target in targets {
            if target.node == me {
                self.write_locally(write, key, &entry);
            } else {
                self.send(
                    target.node,
                    Message::Replicate {
                        request: write.into(),
                        key: key.to_vec(),
                        entry: entry.clone(),
                        hint_for: target.stands_in_for,
                    },
                );
            }
        }
    }

    /// A write whose only replica is this node: its own durable copy is
    /// the whole write.
    fn write_alone(&mut self, op: OpId, key: &[u8], value: Option<&[u8]>, version: Version) {
        match self.disk.apply(key, version, value) {
            Ok(applied) => {
                let action = Deferred::Reply {
                    op,
                    existed: applied.was_live,
                    version,
                };
                self.defer(applied.ticket, action);
            }
            Err(e) => self.reply(op, Err(OpError::Storage(e.to_string()))),
        }
    }

    fn write_locally(&mut self, write: WriteId, key: &[u8], entry: &Entry) {
        match self.disk.apply(key, entry.version, entry.value.as_deref()) {
            Ok(applied) => {
                let action = Deferred::OwnWrite {
                    write,
                    was_live: applied.was_live,
                };
                self.defer(applied.ticket, action);
            }
            Err(e) => log::error!("node {}: local write failed: {e}", self.settings.id),
        }
    }

    fn on_write_ack(&mut self, from: NodeId, id: WriteId, was_live: bool) {
        let Some(write) = self.coordinator.write_mut(id) else {
            return;
        };
        let progress = write.tally.ack(from, was_live);
        let (op, existed, version) = (write.op, write.tally.existed(), write.entry.version);
        let done = progress.complete && write.tally.reached();
        if progress.reached {
            self.reply(op, Ok(OpReply::Written { existed, version }));
        }
        if done {
            if let Some(write) = self.coordinator.finish_write(id) {
                self.hint_silent_replicas(write);
            }
        }
    }

    fn on_write_expired(&mut self, write: WriteOp) {
        if !write.tally.reached() {
            let error = OpError::Unavailable {
                answered: write.tally.owners_acked(),
                required: write.tally.required(),
                replicas: self.settings.replication_factor,
                reachable: write.reachable,
            };
            self.reply(write.op, Err(error));
        }
        self.hint_silent_replicas(write);
    }

    /// Keeps a hint for every owner whose copy was not acknowledged, by it
    /// or by its stand-in, and for every owner no stand-in was found for.
    fn hint_silent_replicas(&mut self, write: WriteOp) {
        let n = self.settings.replication_factor;
        let covered: BTreeSet<NodeId> = write.tally.targets().iter().map(|t| t.owner()).collect();
        let uncovered = self
            .ring
            .preference_list(&write.key, n)
            .into_iter()
            .filter(|owner| !covered.contains(owner));
        let me = self.settings.id;
        let owners: BTreeSet<NodeId> = write
            .tally
            .unacked_owners()
            .chain(uncovered)
            .filter(|&owner| owner != me)
            .collect();
        for owner in owners {
            let hint = Hint {
                target: owner,
                key: write.key.clone(),
                entry: write.entry.clone(),
                stored_at_millis: self.now.wall,
            };
            if let Err(e) = self.handoff.keep(&mut self.disk, hint) {
                log::error!("node {me}: cannot keep a hint for node {owner}: {e}");
            }
        }
    }

    // ---- coordinator: reads ----

    fn start_read(&mut self, op: OpId, key: &[u8], consistency: Consistency) {
        let Some(required) = self.required(op, consistency, self.settings.read_quorum) else {
            return;
        };
        let n = self.settings.replication_factor;
        let me = self.settings.id;
        if self.ring.len() == 1 {
            return self.read_alone(op, key);
        }
        let detector = &self.detector;
        let asked = coordinator::plan_read(&self.ring, key, n, |id| detector.is_up(id));
        if asked.len() < required {
            let error = OpError::Unavailable {
                answered: 0,
                required,
                replicas: n,
                reachable: asked.len(),
            };
            self.reply(op, Err(error));
            return;
        }
        if asked == [me] {
            return self.read_alone(op, key);
        }
        let read = self.ids.read();
        let deadline = self.deadline();
        self.coordinator.open_read(
            read,
            ReadOp {
                op,
                key: key.to_vec(),
                tally: ReadTally::new(asked.clone(), required),
            },
            deadline,
        );
        for node in asked {
            if node == me {
                let entry = self.disk.get(key);
                self.on_read_reply(me, read, entry);
            } else {
                self.send(
                    node,
                    Message::Read {
                        request: read.into(),
                        key: key.to_vec(),
                    },
                );
            }
        }
    }

    /// A read whose only replica is this node: nothing to wait for or
    /// repair.
    fn read_alone(&mut self, op: OpId, key: &[u8]) {
        let entry = self.disk.get(key);
        let version = entry.as_ref().map(|e| e.version);
        let value = entry.and_then(|e| e.value);
        self.reply(op, Ok(OpReply::Value { value, version }));
    }

    fn on_read_reply(&mut self, from: NodeId, id: ReadId, entry: Option<Entry>) {
        let Some(read) = self.coordinator.read_mut(id) else {
            return;
        };
        let progress = read.tally.record(from, entry);
        let answer = progress.reached.then(|| {
            let newest = read.tally.newest().cloned();
            let version = newest.as_ref().map(|e| e.version);
            (read.op, newest.and_then(|e| e.value), version)
        });
        let done = progress.complete && read.tally.reached();
        if let Some((op, value, version)) = answer {
            self.reply(op, Ok(OpReply::Value { value, version }));
        }
        if done {
            if let Some(read) = self.coordinator.finish_read(id) {
                self.repair(read);
            }
        }
    }

    fn on_read_expired(&mut self, read: ReadOp) {
        if read.tally.reached() {
            self.repair(read);
        } else {
            let error = OpError::Unavailable {
                answered: read.tally.answered(),
                required: read.tally.required(),
                replicas: self.settings.replication_factor,
                reachable: read.tally.asked(),
            };
            self.reply(read.op, Err(error));
        }
    }

    /// Sends the newest version to every replica that answered with an
    /// older one (or none).
    fn repair(&mut self, read: ReadOp) {
        let Some(newest) = read.tally.newest().cloned() else {
            return;
        };
        for node in read.tally.stale() {
            self.stats.read_repairs += 1;
            if node == self.settings.id {
                let applied = self
                    .disk
                    .apply(&read.key, newest.version, newest.value.as_deref());
                if let Err(e) = applied {
                    log::error!("node {}: read repair failed locally: {e}", self.settings.id);
                }
            } else {
                let request: RequestId = self.ids.repair().into();
                self.send(
                    node,
                    Message::Replicate {
                        request,
                        key: read.key.clone(),
                        entry: newest.clone(),
                        hint_for: None,
                    },
                );
            }
        }
    }

    // ---- hints ----

    fn deliver_hints(&mut self) {
        let detector = &self.detector;
        let due = self
            .handoff
            .due(self.now.mono, |t| detector.is_up(t), &mut self.ids);
        for delivery in due {
            self.send(
                delivery.target,
                Message::Replicate {
                    request: delivery.id.into(),
                    key: delivery.key,
                    entry: delivery.entry,
                    hint_for: None,
                },
            );
        }
    }

    // ---- replica ----

    /// A replicated write: applied here, or kept as a hint when this node
    /// stands in for `hint_for`; acknowledged once durable. A write
    /// stamped too far ahead of this node's clock is refused, so a runaway
    /// clock cannot spread.
    fn on_replicate(
        &mut self,
        from: NodeId,
        request: RequestId,
        key: Vec<u8>,
        entry: Entry,
        hint_for: Option<NodeId>,
    ) {
        let refuse = |node: &mut Self| {
            node.send(
                from,
                Message::ReplicateAck {
                    request,
                    ok: false,
                    was_live: false,
                },
            )
        };
        if self
            .clock
            .observe(entry.version.timestamp, self.now.wall)
            .is_err()
        {
            self.stats.clock_refusals += 1;
            log::warn!(
                "node {}: refusing a write from node {from} stamped {} ms ahead",
                self.settings.id,
                entry
                    .version
                    .timestamp
                    .millis()
                    .saturating_sub(self.now.wall)
            );
            refuse(self);
            return;
        }
        let result = match hint_for {
            Some(owner) if owner != self.settings.id => {
                let hint = Hint {
                    target: owner,
                    key,
                    entry,
                    stored_at_millis: self.now.wall,
                };
                self.handoff
                    .keep(&mut self.disk, hint)
                    .map(|ticket| (ticket, false))
            }
            _ => self
                .disk
                .apply(&key, entry.version, entry.value.as_deref())
                .map(|applied| (applied.ticket, applied.was_live)),
        };
        match result {
            Ok((ticket, was_live)) => self.defer(
                ticket,
                Deferred::Ack {
                    to: from,
                    request,
                    was_live,
                },
            ),
            Err(e) => {
                log::error!("node {}: {e}", self.settings.id);
                refuse(self);
            }
        }
    }
}
