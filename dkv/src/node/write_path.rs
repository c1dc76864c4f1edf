//! The coordinator's control flow for writes: stamp, send to the targets,
//! count the copies that superseded what their replica held, re-stamp
//! when W is out of reach because a replica held something newer, reply,
//! and hint the owners that stayed silent. The state lives in the parts
//! (`coordinator.rs`, `quorum.rs`, `handoff.rs`); this file only sequences
//! them.

use std::collections::BTreeSet;

use crate::engine::EntryRef;
use crate::hash::KeyHash;
use crate::node::clocks::ClockSkew;
use crate::node::coordinator::{self, WriteAttempt, WriteOp};
use crate::node::counters::counted;
use crate::node::durability::Deferred;
use crate::node::ids::WriteId;
use crate::node::quorum::{Target, WriteTally};
use crate::node::{Disk, Hint, Node, OpError, OpId, OpReply, MAX_WRITE_ATTEMPTS};
use crate::peer::{Message, SharedWrite};
use crate::version::{NodeId, Version};

impl<D: Disk> Node<D> {
    /// The first attempt of a write that arrived now, with the client's
    /// deadline if it sent one.
    pub(super) fn first_attempt(&self, client_deadline: Option<u64>) -> WriteAttempt {
        WriteAttempt {
            number: 1,
            existed: false,
            expires: self.deadline(),
            client_deadline,
        }
    }

    /// Whether this node's clock is the odd one out is for its peers'
    /// clocks to say: until it has heard most of those it can reach (or,
    /// reaching none, any at all), it stamps no write, and says so.
    pub(super) fn clock_unknown(&self) -> Option<OpError> {
        self.clocks_unheard(|heard, up| heard * 2 <= up)
    }

    /// The agreed time expiries go by is the median of every clock: until
    /// this node has heard every peer it believes up (or, believing none
    /// up, any), or while the clocks it knows split evenly between two far
    /// apart, it does not know it well enough to judge an expiry at the
    /// moment the others do, and says so.
    pub(super) fn expiry_clock_unknown(&self) -> Option<OpError> {
        if let Some(error) = self.clocks_unheard(|heard, up| heard < up) {
            return Some(error);
        }
        let spread_ms = self.clocks.disputed()?;
        Some(OpError::ClockDisputed { spread_ms })
    }

    /// The error for a node whose heard and reachable peers `unheard`
    /// finds too few, if it does.
    fn clocks_unheard(&self, unheard: impl Fn(usize, usize) -> bool) -> Option<OpError> {
        if self.clocks.heard_every_peer() {
            // As many heard as are up, whichever are: too few for neither
            // rule. The usual case, answered without a lookup per member.
            debug_assert!(self.count_unheard(&unheard).is_none());
            return None;
        }
        self.count_unheard(&unheard)
    }

    fn count_unheard(&self, unheard: &impl Fn(usize, usize) -> bool) -> Option<OpError> {
        let me = self.settings.id;
        let (mut peers_up, mut heard) = (0, 0);
        for &member in &self.settings.members {
            if member != me && self.detector.is_up(member) {
                peers_up += 1;
                heard += usize::from(self.clocks.heard(member));
            }
        }
        let has_peers = self.settings.members.len() > 1;
        let unknown = if peers_up > 0 {
            unheard(heard, peers_up)
        } else {
            has_peers && !self.clocks.heard_any()
        };
        unknown.then_some(OpError::ClockUnknown {
            heard,
            peers: peers_up,
        })
    }

    /// Whether this node may stamp a write now; if not, `op` is answered
    /// with why.
    pub(super) fn may_stamp(&mut self, op: OpId) -> bool {
        if let Some(error) = self.clock_unknown() {
            self.reply(op, Err(error));
            return false;
        }
        if let ClockSkew::Ahead(ahead_ms) = self.clocks.skew() {
            // Peers would refuse the stamp, and this node's own copy must
            // not shadow the writes they accept.
            self.stats.clock_ahead_refusals += 1;
            let limit_ms = self.settings.max_clock_drift.as_millis() as u64;
            self.reply(op, Err(OpError::ClockAhead { ahead_ms, limit_ms }));
            return false;
        }
        true
    }

    /// Starts `attempt` of a write of `(value, expiry)` (`value: None`
    /// deletes).
    pub(super) fn start_write(
        &mut self,
        op: OpId,
        key: &[u8],
        (value, expires_at): (Option<&[u8]>, Option<u64>),
        required: usize,
        attempt: WriteAttempt,
    ) {
        let n = self.settings.replication_factor;
        let me = self.settings.id;
        if !self.may_stamp(op) {
            return;
        }
        if self.ring.len() == 1 {
            // A node alone owns every key: no placement to work out, and its
            // clock, which started past every stored stamp and stamps every
            // write, is already past its copy.
            let version = Version::new(self.clock.tick(self.reference_wall()), me);
            return self.write_alone(op, key, EntryRef::new(version, value, expires_at));
        }
        // The clock is past every stamp this node holds (`apply_local`
        // moves it past each it stores), so its own part of the write
        // always supersedes its copy: no lookup of the key needed.
        debug_assert!(
            self.disk
                .version_of(key)
                .is_none_or(|held| held.timestamp <= self.clock.last()),
            "the clock is past this node's copy of the key"
        );
        let detector = &self.detector;
        let hash = KeyHash::of(key);
        let plan =
            coordinator::plan_write(&self.ring, &self.preferences, hash, |id| detector.is_up(id));
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
        let version = Version::new(self.clock.tick(self.reference_wall()), me);
        let entry = EntryRef::new(version, value, expires_at);
        if plan.is_only(me) {
            return self.write_alone(op, key, entry);
        }
        let write = self.ids.write();
        let body = SharedWrite::new(key, entry);
        // The messages are queued before the write is opened, so that they
        // borrow the plan's targets instead of a copy; this node's own copy
        // is applied after, since a failure there answers the open write.
        self.send_copies(write, &body, &plan.targets, None);
        let local = plan.targets.iter().any(|t| t.node == me);
        self.coordinator.open_write(
            write,
            WriteOp {
                op,
                body,
                tally: WriteTally::new(plan.targets, required).with_existed(attempt.existed),
                reachable: plan.reachable,
                attempt,
                newest_held: None,
                counter: None,
            },
            // The timer queue is in start order: a stamp taken again gets
            // a full timeout of its own to collect its answers, but none is
            // taken after `attempt.expires` (see `on_write_lost`).
            self.deadline(),
        );
        if local {
            self.write_locally(write, (key, hash), entry);
        }
    }

    /// Sends a write (`body`, whose key's hash is `hash`) to each of
    /// `targets` but `skip`, and applies this node's own copy when it is
    /// one of them. The write must be open.
    pub(super) fn send_write(
        &mut self,
        write: WriteId,
        (body, hash): (&SharedWrite, KeyHash),
        targets: &[Target],
        skip: Option<NodeId>,
    ) {
        self.send_copies(write, body, targets, skip);
        let me = self.settings.id;
        if targets.iter().any(|t| t.node == me && Some(me) != skip) {
            self.write_locally(write, (body.key(), hash), body.entry());
        }
    }

    /// Sends `body` to each of `targets` but `skip` and this node. Every
    /// message shares `body`'s one buffer.
    fn send_copies(
        &mut self,
        write: WriteId,
        body: &SharedWrite,
        targets: &[Target],
        skip: Option<NodeId>,
    ) {
        let me = self.settings.id;
        for target in targets
            .iter()
            .filter(|t| t.node != me && Some(t.node) != skip)
        {
            self.send(
                target.node,
                Message::Replicate {
                    request: write.into(),
                    write: body.clone(),
                    hint_for: target.stands_in_for,
                },
            );
        }
    }

    /// A write whose only replica is this node: its own durable copy is
    /// the whole write.
    fn write_alone(&mut self, op: OpId, key: &[u8], entry: EntryRef<'_>) {
        let version = entry.version;
        match self.apply_local(key, entry) {
            Ok(applied) => {
                debug_assert!(applied.won, "the clock is past every stamp stored here");
                let reply = OpReply::Written {
                    existed: applied.was_live,
                    version,
                };
                let action = Deferred::Reply { op, reply };
                self.defer(applied.ticket, action);
            }
            Err(e) => self.reply(op, Err(OpError::Storage(e.to_string()))),
        }
    }

    fn write_locally(
        &mut self,
        write: WriteId,
        (key, hash): (&[u8], KeyHash),
        entry: EntryRef<'_>,
    ) {
        match self.apply_hashed(key, Some(hash), entry) {
            Ok(applied) => {
                let action = Deferred::OwnWrite {
                    write,
                    was_live: applied.was_live,
                    held: applied.held,
                };
                self.defer(applied.ticket, action);
            }
            Err(e) => {
                log::error!("node {}: local write failed: {e}", self.settings.id);
                self.on_write_answer(self.settings.id, write, false, false, None);
            }
        }
    }

    /// A target's answer to a write: taken (`ok`, with the version it held
    /// before), refused, or unreachable (`ok` false).
    pub(super) fn on_write_answer(
        &mut self,
        from: NodeId,
        id: WriteId,
        ok: bool,
        was_live: bool,
        held: Option<Version>,
    ) {
        let Some(write) = self.coordinator.write_mut(id) else {
            return;
        };
        let version = write.body.version();
        // A copy counts only if this write superseded what the replica
        // held (the same version is this very write, delivered twice).
        let counts = ok && held.is_none_or(|h| h <= version);
        if let Some(newer) = held.filter(|h| *h > version) {
            write.newest_held = Some(write.newest_held.map_or(newer, |n| n.max(newer)));
        }
        let progress = if counts {
            write.tally.ack(from, was_live)
        } else {
            write.tally.refuse(from)
        };
        let (op, existed) = (write.op, write.tally.existed());
        let reached = write.tally.reached();
        let lost = !reached && !write.tally.can_reach();
        if progress.reached {
            let reply = match write.counter.as_ref().and_then(|c| c.value) {
                Some(value) => counted(value),
                None => OpReply::Written { existed, version },
            };
            self.reply(op, Ok(reply));
        }
        if lost {
            if let Some(write) = self.coordinator.finish_write(id) {
                self.on_write_lost(write);
            }
        } else if progress.complete && reached {
            if let Some(write) = self.coordinator.finish_write(id) {
                self.hint_silent_replicas(write);
            }
        }
    }

    /// W can no longer be reached by this attempt. If a replica held a
    /// newer version, and the write still has time (its first deadline,
    /// the client's), the clock moves past it and the write is stamped
    /// again; otherwise the write fails now rather than at its deadline.
    fn on_write_lost(&mut self, write: WriteOp) {
        let attempt = write.attempt;
        let in_time = self.now.mono < attempt.expires
            && attempt
                .client_deadline
                .is_none_or(|d| self.cluster_wall() <= d);
        // An add is never stamped again (see `counters.rs`).
        let restamp = in_time && write.counter.is_none();
        if let Some(newest) = write.newest_held.filter(|_| restamp) {
            if attempt.number < MAX_WRITE_ATTEMPTS {
                self.stats.restamps += 1;
                self.clock.advance_to(newest.timestamp);
                let required = write.tally.required();
                let next = WriteAttempt {
                    number: attempt.number + 1,
                    existed: write.tally.existed(),
                    ..attempt
                };
                let entry = write.body.entry();
                let payload = (entry.value, entry.expires_at);
                return self.start_write(write.op, write.body.key(), payload, required, next);
            }
        }
        self.reply(write.op, Err(self.write_unavailable(&write)));
        self.hint_silent_replicas(write);
    }

    pub(super) fn on_write_expired(&mut self, write: WriteOp) {
        if !write.tally.reached() {
            self.reply(write.op, Err(self.write_unavailable(&write)));
        }
        self.hint_silent_replicas(write);
    }

    /// The error of a write that did not reach W.
    pub(super) fn write_unavailable(&self, write: &WriteOp) -> OpError {
        OpError::Unavailable {
            answered: write.tally.owners_acked(),
            required: write.tally.required(),
            replicas: self.settings.replication_factor,
            reachable: write.reachable,
        }
    }

    /// Keeps a hint for every owner whose copy was not acknowledged, by it
    /// or by its stand-in, and for every owner no stand-in was found for.
    fn hint_silent_replicas(&mut self, write: WriteOp) {
        if write.counter.as_ref().is_some_and(|c| c.value.is_none()) {
            // An add whose leader never answered: nothing was written.
            return;
        }
        let n = self.settings.replication_factor;
        if write.tally.all_owners_acked(n) {
            // The common case: every owner took it, nothing to hint.
            return;
        }
        let covered: BTreeSet<NodeId> = write.tally.targets().iter().map(|t| t.owner()).collect();
        let uncovered = self
            .ring
            .preference_list(write.body.key(), n)
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
                key: write.body.key().to_vec(),
                entry: write.body.to_entry(),
                stored_at_millis: self.now.wall,
            };
            if let Err(e) = self.handoff.keep(&mut self.disk, hint) {
                log::error!("node {me}: cannot keep a hint for node {owner}: {e}");
            }
        }
    }
}
