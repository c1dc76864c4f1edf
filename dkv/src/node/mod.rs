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
//! * [`Node::handle_link`]: the runtime's link to a peer went up or down,
//!   and [`Node::handle_undeliverable`]: a message could not be sent;
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
//! | `failure.rs`    | [`failure::FailureDetector`]: heartbeats, peer health, links |
//! | `clocks.rs`     | [`clocks::PeerClocks`]: peers' clock readings, this clock's skew |
//! | `durability.rs` | [`durability::DurabilityGate`]: actions held until durable |
//! | `deferred.rs`   | carrying out what the gate held, or failing it with its log |
//! | `keyspace.rs`   | [`KeyspaceOp`]: flushes (the flush floor) and cluster-wide scans |
//! | `ids.rs`        | typed request ids (write, read, delivery, repair)          |
//! | `replica.rs`    | the replica's side: replicated writes, hints delivered    |
//! | `aae.rs`        | anti-entropy: trees per partition, exchanges, tombstone purge |
//! | `tictac.rs`     | [`tictac::TicTacTree`]: the XOR Merkle tree              |
//! | `disk.rs`       | the [`Disk`] trait and [`MemDisk`]                         |
//! | `types.rs`      | [`Op`], [`OpReply`], [`OpError`], [`Output`], settings     |
//!
//! The control flow that sequences them: this file (inputs, outputs,
//! answering reads), `replica.rs` (apply or keep a hint, acknowledge once
//! durable; hint delivery), `write_path.rs` and `read_path.rs` (the
//! coordinator's side).
//!
//! **Ordering.** A replica answers a write with the version it held for
//! the key. A copy counts towards W only if the write superseded what the
//! replica held; when W can no longer be reached that way, the coordinator
//! moves its clock past the newest version it was told of and stamps the
//! write again (a few times at most). Any two quorums of owners meet, so if
//! a write w2 began after w1 was acknowledged, the replica in both held w1
//! (or newer) when w2 reached it, and w2 counted there only if its version
//! was greater: every acknowledged write is ordered after every write
//! acknowledged before it began, whatever the coordinators' clocks, as long
//! as the two levels' replica sets must meet (W1 + W2 > N; QUORUM twice
//! does). It costs an extra round trip only when clocks disagree.
//!
//! **One clock discipline.** Every write is stamped by this node's hybrid
//! clock, first moved past its own copy of the key. Drift checks (on every
//! envelope, every replicated write, repairs and hint deliveries included,
//! and a repair of this node's own copy) compare against a reference wall
//! time: this node's own, or its peers' when most of them are ahead of it
//! by more than the drift limit. A node whose clock is ahead of most of its
//! peers' by more than the limit coordinates no writes (its peers would
//! refuse them, and its own copy must not shadow later writes) and says so
//! in its log and INFO.

mod aae;
mod clocks;
mod coordinator;
mod counters;
mod deferred;
mod disk;
mod durability;
mod failure;
mod handoff;
mod ids;
mod keyspace;
mod quorum;
mod read_path;
mod replica;
pub mod tictac;

pub use aae::AaeStats;
mod types;
mod write_path;

#[cfg(test)]
mod expiry_tests;
#[cfg(test)]
mod keyspace_tests;
#[cfg(test)]
mod read_path_tests;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;

use crate::clock::HybridClock;
use crate::counter::Actor;
use crate::engine::{Entry, EntryRef};
use crate::hash::KeyHash;
use crate::peer::{Envelope, Message};
use crate::ring::{PreferenceLists, Ring};
use crate::version::{NodeId, Timestamp, Version};

pub use clocks::ClockSkew;
pub use disk::{Applied, Disk, DiskError, DiskStats, Hint, Log, MemDisk, Ticket};
pub use keyspace::KeyspaceOp;
pub use types::{
    Consistency, NodeSettings, NodeStats, Now, Op, OpError, OpId, OpReply, OpResult, Output,
};

use clocks::PeerClocks;
use coordinator::{Coordinator, Expired};
use durability::{Deferred, DurabilityGate, KeyBarriers};
use failure::FailureDetector;
use handoff::Handoff;
use ids::{Classified, RequestIds};

/// Attempts of one write, its first included: re-stamping is needed at
/// most once per clock that disagrees, so a few suffice.
const MAX_WRITE_ATTEMPTS: u32 = 4;
/// Ticks at least this often (ms), for active expiry.
const EXPIRY_TICK_MS: u64 = 100;
/// How often a clock that is off is reported in the log, at most (ms).
const SKEW_LOG_EVERY_MS: u64 = 10_000;

/// One node's replication state machine.
pub struct Node<D: Disk> {
    settings: NodeSettings,
    ring: Ring,
    /// Every partition's owners for the replication factor.
    preferences: PreferenceLists,
    disk: D,
    clock: HybridClock,
    now: Now,
    ids: RequestIds,
    coordinator: Coordinator,
    handoff: Handoff,
    detector: FailureDetector,
    gate: DurabilityGate,
    /// The last data write applied here that had something to wait for:
    /// read replies wait for it (see `durability.rs`).
    data_barrier: Option<Ticket>,
    /// Per key, the data write a read of it waits for.
    key_barriers: KeyBarriers,
    clocks: PeerClocks,
    /// When a clock that is off was last reported (monotonic ms).
    skew_logged_at: Option<u64>,
    outputs: VecDeque<Output>,
    /// Read repairs, quorum failures, clock refusals (hint counters live
    /// in the handoff).
    stats: NodeStats,
    /// Anti-entropy: trees, exchange schedule, the exchange running.
    aae: aae::Aae,
    /// Flushes and scans in flight.
    keyspace: keyspace::Keyspace,
    /// The disk's flush floor, kept here: every read of a key the disk
    /// lacks consults it, and the disk's copy sits behind a lock.
    floor: Version,
    /// Who this node is as a counter's adder, in this run.
    actor: Actor,
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
        let clocks = PeerClocks::new(
            settings
                .members
                .iter()
                .filter(|&&m| m != settings.id)
                .count(),
            settings.max_clock_drift.as_millis() as u64,
        );
        let mut aae = aae::Aae::new(
            settings.id,
            &ring,
            settings.replication_factor,
            settings.aae_enabled && settings.members.len() > 1,
            settings.aae_interval.as_millis() as u64,
        );
        aae.limit_bytes_per_sec(settings.aae_max_bytes_per_sec);
        let mut node = Node {
            preferences: PreferenceLists::new(&ring, settings.replication_factor),
            ring,
            disk,
            clock,
            now,
            ids: RequestIds::new(now.wall),
            coordinator: Coordinator::new(),
            handoff: Handoff::new(&settings, hints),
            detector,
            gate: DurabilityGate::new(),
            data_barrier: None,
            key_barriers: KeyBarriers::default(),
            clocks,
            skew_logged_at: None,
            outputs: VecDeque::new(),
            stats: NodeStats::default(),
            settings,
            aae,
            keyspace: keyspace::Keyspace::default(),
            floor: Version::default(),
            actor: Actor::default(),
        };
        // A run's first stamp: past every stamp this disk holds, so a
        // restart is a new actor whatever its last run lost.
        node.actor = Actor {
            node: node.settings.id,
            epoch: node.clock.tick(now.wall).0,
        };
        node.floor = node.disk.floor();
        node.build_trees();
        node
    }

    /// Anti-entropy's counters and progress.
    pub fn aae_stats(&self) -> AaeStats {
        self.aae.stats()
    }

    /// The root of this node's anti-entropy tree for the partition of
    /// `key`, if it replicates it (tests compare replicas with it).
    pub fn aae_root_of(&self, key: &[u8]) -> Option<u64> {
        self.aae
            .tree(self.ring.key_partition(KeyHash::of(key)))
            .map(|t| t.root())
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

    /// How this node's clock stands against its peers'.
    pub fn clock_skew(&self) -> ClockSkew {
        self.clocks.skew()
    }

    /// The time expiries are judged by at `wall` on this node's clock (see
    /// `clocks.rs`): nearly the same moment on every node.
    pub fn expiry_time(&self, wall: u64) -> u64 {
        self.clocks.agreed_wall(wall)
    }

    /// [`Node::expiry_time`] now.
    fn expiry_now(&self) -> u64 {
        self.clocks.agreed_wall(self.now.wall)
    }

    /// The cluster's wall time at `wall` on this node's clock, as this node
    /// judges client deadlines by it (its own, moved by the majority's
    /// offset when it is ahead or behind).
    pub fn cluster_time(&self, wall: u64) -> u64 {
        self.clocks.cluster_wall(wall)
    }

    /// Hints waiting, per target.
    pub fn hints_pending(&self) -> Vec<(NodeId, usize)> {
        self.handoff.pending()
    }

    /// Bytes of the hints this node keeps, all targets together, as the
    /// per-target byte bound counts them.
    pub fn hints_pending_bytes(&self) -> usize {
        self.handoff.total_bytes()
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

    /// The reply to `op` when it is the only output waiting (a read of a
    /// node alone, say, answered from memory at once); otherwise `None`,
    /// and every output stays for [`Node::poll_output`].
    pub fn take_only_reply(&mut self, op: OpId) -> Option<OpResult> {
        match self.outputs.front() {
            Some(Output::Reply { op: first, .. }) if *first == op && self.outputs.len() == 1 => {
                match self.outputs.pop_front() {
                    Some(Output::Reply { result, .. }) => Some(result),
                    _ => None,
                }
            }
            _ => None,
        }
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
        if let Some(due) = self.aae.next_due() {
            next = next.min(due.max(self.now.mono + 1));
        }
        if let Some(due) = self.keyspace_timeout() {
            next = next.min(due.max(self.now.mono + 1));
        }
        // Active expiry runs on ticks.
        next = next.min(self.now.mono + EXPIRY_TICK_MS);
        Some(next)
    }

    /// Coordinates an operation; its reply comes out of
    /// [`Node::poll_output`], at once when no other node or disk sync is
    /// involved. With a `deadline` (wall-clock ms, the client's), an
    /// operation read after it is refused and applies nothing.
    pub fn handle_request(
        &mut self,
        now: Now,
        op: OpId,
        request: Op<'_>,
        consistency: Consistency,
        deadline: Option<u64>,
    ) {
        self.advance(now);
        if deadline.is_some_and(|d| self.cluster_wall() > d) {
            self.stats.deadlines_passed += 1;
            self.reply(op, Err(OpError::DeadlinePassed));
            return;
        }
        let quorum = match request {
            Op::Get { .. } => self.settings.read_quorum,
            Op::Put { .. } | Op::Delete { .. } | Op::Add { .. } => self.settings.write_quorum,
        };
        let Some(required) = self.required(op, consistency, quorum) else {
            return;
        };
        match request {
            Op::Get { key } => self.start_read(op, key, required),
            Op::Put {
                key,
                value,
                expires_at,
            } => {
                let attempt = self.first_attempt(deadline);
                self.start_write(op, key, (Some(value), expires_at), required, attempt)
            }
            Op::Delete { key } => {
                let attempt = self.first_attempt(deadline);
                self.start_write(op, key, (None, None), required, attempt)
            }
            Op::Add { key, delta } => self.start_add(op, key, delta, required, deadline),
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
        self.clocks.observe(from, envelope.clock, now.wall);
        if self
            .clock
            .observe(envelope.clock, self.reference_wall())
            .is_err()
        {
            self.stats.clock_refusals += 1;
            log::debug!(
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
                write,
                hint_for,
            } => self.on_replicate(from, request, write, hint_for),
            Message::ReplicateAck {
                request,
                ok,
                was_live,
                held,
            } => match Classified::of(request) {
                Classified::Write(write) => self.on_write_answer(from, write, ok, was_live, held),
                Classified::Delivery(delivery) => {
                    self.handoff.on_delivered(&mut self.disk, delivery, ok)
                }
                // A repair a read waits for; others are fire and forget
                // (their read is gone). A read is never acknowledged so.
                Classified::Repair(repair) => {
                    self.on_repair_ack(from, repair.read(), ok.then_some(held))
                }
                Classified::Read(_) => {}
            },
            Message::Read { request, key } => {
                let entry = self.local_entry(&key);
                let barrier = self.read_barrier(&key);
                let reply = Deferred::ReadReply {
                    to: from,
                    request,
                    entry,
                };
                self.defer(barrier, reply);
            }
            Message::ReadReply { request, entry } => {
                if let Classified::Read(read) = Classified::of(request) {
                    self.on_read_reply(from, read, entry);
                }
            }
            Message::Heartbeat => {}
            Message::CounterAdd {
                request,
                key,
                delta,
            } => self.on_counter_add(from, request, key, delta),
            Message::CounterAdded { request, result } => {
                if let Classified::Write(write) = Classified::of(request) {
                    self.on_counter_added(from, write, result);
                }
            }
            Message::Flush { request, floor } => self.on_flush(from, request, floor),
            Message::FlushAck { request } => self.on_flush_ack(from, request),
            Message::Scan {
                request,
                from: start,
                count,
                pattern,
            } => self.on_scan(from, request, start, count, &pattern),
            Message::ScanReply {
                request,
                next,
                live_keys,
                keys,
            } => self.on_scan_reply(from, request, next, live_keys, keys),
            Message::AaeBranches {
                exchange,
                partition,
                branches,
            } => self.on_aae_branches(from, exchange, partition, &branches),
            Message::AaeLeaves {
                exchange,
                partition,
                leaves,
            } => self.on_aae_leaves(from, exchange, partition, &leaves),
            Message::AaeKeysWanted {
                exchange,
                partition,
                segments,
            } => self.on_aae_keys_wanted(from, exchange, partition, &segments),
            Message::AaeKeys {
                exchange,
                partition,
                keys,
            } => self.on_aae_keys(from, exchange, partition, keys),
        }
    }

    /// Counts a request refused for its deadline before it reached the
    /// node (the command layer checks non-data commands itself).
    pub fn note_deadline_passed(&mut self) {
        self.stats.deadlines_passed += 1;
    }

    /// The runtime's link to `peer` went up or down. A peer without a link
    /// is not reachable: requests go to stand-ins rather than wait for
    /// their deadline.
    pub fn handle_link(&mut self, now: Now, peer: NodeId, up: bool) {
        self.advance(now);
        if up {
            // The peer hears this node's clock at once, not at the next
            // heartbeat, and its flush floor.
            self.send(peer, Message::Heartbeat);
            self.announce_floor(peer);
        }
        if self.detector.set_link(peer, up) {
            self.deliver_hints();
        }
    }

    /// The runtime could not send `message` to `to` (no link, or its queue
    /// was full): that replica's part of the request fails now.
    pub fn handle_undeliverable(&mut self, now: Now, to: NodeId, message: Message) {
        self.advance(now);
        match message {
            Message::Replicate { request, .. } => match Classified::of(request) {
                Classified::Write(write) => self.on_write_answer(to, write, false, false, None),
                Classified::Delivery(delivery) => {
                    self.handoff.on_delivered(&mut self.disk, delivery, false)
                }
                Classified::Repair(repair) => self.on_repair_ack(to, repair.read(), None),
                Classified::Read(_) => {}
            },
            Message::Read { request, .. } => {
                if let Classified::Read(read) = Classified::of(request) {
                    self.on_read_unreachable(to, read);
                }
            }
            Message::CounterAdd { request, .. } => {
                if let Classified::Write(write) = Classified::of(request) {
                    self.on_counter_add_undeliverable(to, write);
                }
            }
            // Answers and heartbeats: the other side times out, or hears
            // the next one.
            Message::CounterAdded { .. }
            | Message::ReplicateAck { .. }
            | Message::ReadReply { .. }
            | Message::Heartbeat
            | Message::AaeBranches { .. }
            | Message::AaeLeaves { .. }
            | Message::AaeKeysWanted { .. }
            | Message::AaeKeys { .. }
            | Message::Flush { .. }
            | Message::FlushAck { .. }
            | Message::ScanReply { .. } => {}
            Message::Scan { request, .. } => self.on_scan_undeliverable(to, request),
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
        for read in self.coordinator.hedges_due(now.mono) {
            self.on_read_hedge(read);
        }
        for expired in self.coordinator.expire(now.mono) {
            match expired {
                Expired::Write(write) => self.on_write_expired(write),
                Expired::Read(read) => self.on_read_expired(read),
            }
        }
        self.handoff.expire(&mut self.disk, now.wall);
        self.deliver_hints();
        self.report_skew();
        self.aae_tick();
        self.purge_confirmed_tombstones();
        self.expire_keyspace();
        let alone = self.settings.replication_factor == 1 && self.settings.members.len() == 1;
        self.disk.expire_step(self.expiry_now(), alone);
    }

    fn advance(&mut self, now: Now) {
        debug_assert!(now.mono >= self.now.mono, "monotonic time went backwards");
        self.now = now;
    }

    /// The wall time drift checks and stamps go by (see the module doc).
    fn reference_wall(&self) -> u64 {
        self.clocks.reference_wall(self.now.wall)
    }

    /// The wall time deadlines go by (see `clocks.rs`).
    fn cluster_wall(&self) -> u64 {
        self.clocks.cluster_wall(self.now.wall)
    }

    /// Whether an entry stamped `timestamp` may be applied here: not more
    /// than the drift limit past the reference wall time.
    fn accepts_timestamp(&self, timestamp: Timestamp) -> bool {
        let limit = self.settings.max_clock_drift.as_millis() as u64;
        timestamp.millis() <= self.reference_wall().saturating_add(limit)
    }

    /// Logs a clock that is off, once per [`SKEW_LOG_EVERY_MS`] at most.
    fn report_skew(&mut self) {
        let skew = self.clocks.skew();
        if skew == ClockSkew::InStep {
            self.skew_logged_at = None;
            return;
        }
        if self
            .skew_logged_at
            .is_some_and(|at| self.now.mono < at + SKEW_LOG_EVERY_MS)
        {
            return;
        }
        self.skew_logged_at = Some(self.now.mono);
        let limit = self.settings.max_clock_drift.as_millis();
        match skew {
            ClockSkew::Ahead(by) => log::warn!(
                "node {}: this node's clock is {by} ms ahead of most of its peers' (limit {limit} ms): it coordinates no writes until they agree",
                self.settings.id
            ),
            ClockSkew::Behind(by) => log::warn!(
                "node {}: this node's clock is {by} ms behind most of its peers' (limit {limit} ms): it follows theirs",
                self.settings.id
            ),
            ClockSkew::InStep => {}
        }
    }

    fn deadline(&self) -> u64 {
        self.now.mono + self.settings.request_timeout.as_millis() as u64
    }

    fn send(&mut self, to: NodeId, message: Message) {
        let clock = self.clock.reading(self.reference_wall());
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

    /// What a read of `key` answered from this node's copy waits for: the
    /// last write to the key, when one was applied since the last flush
    /// of the keyspace. After a failed log, nothing (see
    /// `handle_disk_failed`).
    fn read_barrier(&self, key: &[u8]) -> Option<Ticket> {
        self.data_barrier?;
        self.key_barriers.of(key)
    }

    /// Applies a write to the local data, noting what later read replies
    /// must wait for.
    fn apply_local(&mut self, key: &[u8], entry: EntryRef<'_>) -> Result<Applied, DiskError> {
        self.apply_hashed(key, None, entry)
    }

    /// [`Node::apply_local`] for a key whose hash may be known already
    /// (anti-entropy needs it; it is worked out only then when not).
    fn apply_hashed(
        &mut self,
        key: &[u8],
        hash: Option<KeyHash>,
        entry: EntryRef<'_>,
    ) -> Result<Applied, DiskError> {
        debug_assert!(
            hash.is_none_or(|hash| hash == KeyHash::of(key)),
            "the hash is the key's"
        );
        let mut applied = self.disk.apply(key, entry)?;
        if applied.won {
            // Every stamp stored here is behind this node's clock, so a
            // write it stamps next supersedes its own copy (`start_write`
            // relies on it). Replicated writes passed the drift check.
            self.clock.advance_to(entry.version.timestamp);
        }
        // Whether the key held something a reader would see: an expired
        // value counts as gone, judged by the cluster's time.
        applied.was_live = applied.held_live_at(self.expiry_now());
        // Anti-entropy off (a node alone): no placement to hash.
        if applied.won && self.aae.enabled() {
            // One hash places the key on the ring and in its leaf.
            let hash = hash.unwrap_or_else(|| KeyHash::of(key));
            let partition = self.ring.key_partition(hash);
            self.aae
                .record(partition, hash, applied.held, Some(entry.version));
            self.aae
                .record_state(partition, hash, applied.held_state, applied.state);
        }
        if let Some(ticket) = applied.ticket.filter(|t| t.log == Log::Data) {
            debug_assert!(
                self.data_barrier.is_none_or(|b| b <= ticket),
                "data tickets grow"
            );
            self.data_barrier = Some(ticket);
            self.key_barriers.note(key, ticket.lsn);
        }
        Ok(applied)
    }

    /// What a read answers for the newest entry it found: an expired
    /// value reads as missing, judged by the agreed time, so every
    /// coordinator lets it go at the same moment whatever the replicas'
    /// clocks did with their copies.
    #[inline]
    fn value_reply(&self, newest: Option<Entry>) -> OpResult {
        if newest.as_ref().is_some_and(|e| e.expires_at.is_some()) {
            // An expiry is judged by the agreed time, which a node that
            // has not heard its peers' clocks does not know.
            if let Some(error) = self.expiry_clock_unknown() {
                return Err(error);
            }
        }
        let version = newest.as_ref().map(|e| e.version);
        let live = |entry: &Entry| match entry.expires_at {
            None => entry.value.is_some(),
            Some(_) => entry.live_at(self.expiry_now()),
        };
        match newest {
            Some(entry) if live(&entry) => Ok(OpReply::Value {
                expires_at: entry.expires_at,
                value: entry.into_readable_value(),
                version,
            }),
            _ => Ok(OpReply::Value {
                value: None,
                version,
                expires_at: None,
            }),
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
}
