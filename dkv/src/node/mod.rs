//! The sans-IO replication core: one node of the cluster as a state
//! machine.
//!
//! A [`Node`] does no IO and reads no clock. The runtime (the mio reactor
//! in production, the simulator in tests) feeds it inputs —
//! [`Node::handle_client`], [`Node::handle_message`], [`Node::handle_tick`]
//! — each stamped with a [`Now`], and drains [`Node::poll_output`] after
//! every input: messages to send and client replies. [`Node::poll_timeout`]
//! says when to tick next. Its only other contact with the world is its
//! [`Storage`], whose writes it acknowledges only once durable.
//!
//! What it owns, by file:
//! * `coordinator.rs`: writes to the N replicas of a key's preference list,
//!   success at W acknowledgements; reads from R, newest version wins;
//!   timeouts that fail a request with how many replicas answered; read
//!   repair of stale replicas.
//! * `replica.rs`: applying replicated writes and answering reads for
//!   peers, acknowledging only after the write is durable.
//! * `handoff.rs`: sloppy quorum's hints — a write meant for a down (or
//!   silent) replica is kept, durably and within count and age bounds, and
//!   delivered when the replica is up again.
//! * `failure.rs`: heartbeats and the failure detector.

mod coordinator;
mod failure;
mod handoff;
mod replica;
pub mod disk;
mod types;

use std::collections::{BTreeMap, HashMap, VecDeque};

use crate::clock::HybridClock;
use crate::peer::{Envelope, Message, RequestId};
use crate::ring::Ring;
use crate::version::NodeId;

pub use disk::{Applied, MemDisk, Disk, DiskError, Hint, Ticket};
pub use types::{
    ClientError, ClientId, ClientOp, ClientReply, Consistency, NodeSettings, NodeStats, Now, Output,
};

use coordinator::{ReadOp, WriteOp};
use failure::PeerHealth;
use handoff::HintSlot;

/// An acknowledgement held until the write it covers is durable.
#[derive(Debug, Clone)]
enum Deferred {
    /// Tell a peer its replicated write (or hint) is safe.
    Ack {
        to: NodeId,
        request: RequestId,
        ok: bool,
        was_live: bool,
    },
    /// Count this node's own copy towards a write it coordinates.
    OwnWrite { request: u64, was_live: bool },
}

/// One node's replication state machine.
pub struct Node<D: Disk> {
    settings: NodeSettings,
    ring: Ring,
    disk: D,
    clock: HybridClock,
    now: Now,
    next_request: u64,
    writes: HashMap<u64, WriteOp>,
    reads: HashMap<u64, ReadOp>,
    deferred: Vec<(Ticket, Deferred)>,
    peers: BTreeMap<NodeId, PeerHealth>,
    hints: BTreeMap<NodeId, BTreeMap<Vec<u8>, HintSlot>>,
    /// Hint deliveries in flight: request -> (target, key).
    deliveries: HashMap<u64, (NodeId, Vec<u8>)>,
    next_heartbeat: u64,
    outputs: VecDeque<Output>,
    stats: NodeStats,
}

impl<D: Disk> Node<D> {
    /// A node at `now` over `disk` (whose hints it loads). Peers start
    /// out presumed up; silence marks them down.
    pub fn new(settings: NodeSettings, disk: D, now: Now) -> Node<D> {
        let ring = Ring::new(&settings.members, settings.virtual_nodes);
        let mut clock = HybridClock::new(settings.max_clock_drift);
        let mut hints: BTreeMap<NodeId, BTreeMap<Vec<u8>, HintSlot>> = BTreeMap::new();
        for hint in disk.hints() {
            clock.advance_to(hint.entry.version.timestamp);
            hints
                .entry(hint.target)
                .or_default()
                .insert(hint.key.clone(), HintSlot::new(hint));
        }
        let peers = settings
            .members
            .iter()
            .filter(|&&id| id != settings.id)
            .map(|&id| (id, PeerHealth::new(now)))
            .collect();
        Node {
            ring,
            disk,
            clock,
            now,
            next_request: 1,
            writes: HashMap::new(),
            reads: HashMap::new(),
            deferred: Vec::new(),
            peers,
            hints,
            deliveries: HashMap::new(),
            next_heartbeat: now.mono,
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

    /// Its storage (the simulator syncs and crashes it through this).
    pub fn disk(&self) -> &D {
        &self.disk
    }

    /// Mutable access to its storage.
    pub fn disk_mut(&mut self) -> &mut D {
        &mut self.disk
    }

    /// Counters.
    pub fn stats(&self) -> &NodeStats {
        &self.stats
    }

    /// Moves the clock past a timestamp this node's own storage holds
    /// (the runtime calls it once after opening the store).
    pub fn advance_clock(&mut self, seen: crate::version::Timestamp) {
        self.clock.advance_to(seen);
    }

    /// Next output for the runtime.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// When the node next needs [`Node::handle_tick`].
    pub fn poll_timeout(&self) -> Option<u64> {
        let mut next = self.next_heartbeat;
        for op in self.writes.values() {
            next = next.min(op.deadline);
        }
        for op in self.reads.values() {
            next = next.min(op.deadline);
        }
        if !self.deliveries.is_empty() || self.hints.keys().any(|t| self.is_up(*t)) {
            next = next.min(self.now.mono + self.settings.heartbeat_interval.as_millis() as u64);
        }
        Some(next)
    }

    /// Coordinates a client request.
    pub fn handle_client(
        &mut self,
        now: Now,
        client: ClientId,
        op: ClientOp,
        consistency: Consistency,
    ) {
        self.now = now;
        match op {
            ClientOp::Get { key } => self.start_read(client, key, consistency),
            ClientOp::Put { key, value } => self.start_write(client, key, Some(value), consistency),
            ClientOp::Delete { key } => self.start_write(client, key, None, consistency),
        }
        self.release_durable();
    }

    /// Handles a message from a peer.
    pub fn handle_message(&mut self, now: Now, envelope: Envelope) {
        self.now = now;
        let from = envelope.from;
        if from == self.settings.id || !self.peers.contains_key(&from) {
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
        self.heard_from(from);
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
            } => self.on_replicate_ack(from, request, ok, was_live),
            Message::Read { request, key } => self.on_read(from, request, key),
            Message::ReadReply { request, entry } => self.on_read_reply(from, request, entry),
            Message::Heartbeat => {}
        }
        self.release_durable();
    }

    /// Releases acknowledgements whose writes became durable (the runtime
    /// calls it when its disk reports progress; cheaper than a tick).
    pub fn handle_durable(&mut self, now: Now) {
        self.now = now;
        self.release_durable();
    }

    /// Advances timers: heartbeats, failure detection, request timeouts,
    /// hint delivery; also releases acknowledgements that became durable.
    pub fn handle_tick(&mut self, now: Now) {
        self.now = now;
        self.release_durable();
        self.check_failures();
        if now.mono >= self.next_heartbeat {
            self.send_heartbeats();
            self.next_heartbeat = now.mono + self.settings.heartbeat_interval.as_millis() as u64;
        }
        self.expire_requests();
        self.expire_hints();
        self.deliver_hints();
    }

    fn next_request_id(&mut self) -> u64 {
        let id = self.next_request;
        self.next_request += 1;
        id
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

    fn reply(&mut self, client: ClientId, result: Result<ClientReply, ClientError>) {
        if matches!(result, Err(ClientError::Unavailable { .. })) {
            self.stats.quorum_failures += 1;
        }
        self.outputs.push_back(Output::Reply { client, result });
    }

    /// Sends every held acknowledgement whose write is now durable.
    fn release_durable(&mut self) {
        let storage = &self.disk;
        if !self
            .deferred
            .iter()
            .any(|(ticket, _)| storage.is_durable(*ticket))
        {
            return;
        }
        let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.deferred)
            .into_iter()
            .partition(|(ticket, _)| storage.is_durable(*ticket));
        self.deferred = waiting;
        for (_, action) in ready {
            match action {
                Deferred::Ack {
                    to,
                    request,
                    ok,
                    was_live,
                } => self.send(
                    to,
                    Message::ReplicateAck {
                        request,
                        ok,
                        was_live,
                    },
                ),
                Deferred::OwnWrite { request, was_live } => {
                    self.on_write_acked(self.settings.id, request, was_live)
                }
            }
        }
    }

    fn defer(&mut self, ticket: Ticket, action: Deferred) {
        self.deferred.push((ticket, action));
    }
}

#[cfg(test)]
mod tests;
