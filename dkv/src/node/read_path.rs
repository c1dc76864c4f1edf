//! The coordinator's control flow for reads: ask as many reachable owners
//! as the read must hear (the others are spares, asked when one cannot be
//! reached or when the read is slow), answer with the newest version at R
//! replies, fail at once when R is out of reach, and repair the replicas
//! that answered with something older.
//! The state lives in `coordinator.rs` and `quorum.rs`.
//!
//! Quorum reads are monotonic: a quorum read answers only once the newest
//! version it found is on N - R + 1 owners, so every later quorum read
//! meets one of them. When the replies agree, that costs nothing. When
//! they disagree (a write in flight, a replica that missed one), the read
//! sends the newest version to the stale replicas (once each) and counts
//! those that took it; a replica that refuses it because it holds
//! something newer is asked again (once), and its newer answer becomes the
//! one to spread. A read that gets no further by its deadline fails
//! (`RepairIncomplete`) rather than answer something a later read could
//! contradict. Replicas answer only from durable data (see
//! `durability.rs`), so no answer rests on a copy a crash can take back.

use std::sync::Arc;

use crate::engine::Entry;
use crate::hash::KeyHash;
use crate::node::coordinator::{self, ReadOp};
use crate::node::durability::Deferred;
use crate::node::ids::ReadId;
use crate::node::quorum::ReadTally;
use crate::node::{Disk, Node, OpError, OpId};
use crate::peer::{Message, RequestId, SharedWrite};
use crate::version::{NodeId, Version};

impl<D: Disk> Node<D> {
    pub(super) fn start_read(&mut self, op: OpId, key: &[u8], required: usize) {
        let n = self.settings.replication_factor;
        let me = self.settings.id;
        if self.ring.len() == 1 {
            return self.read_alone(op, key);
        }
        let detector = &self.detector;
        let turn = self.coordinator.next_read_turn();
        let owners = coordinator::plan_read(
            &self.ring,
            &self.preferences,
            KeyHash::of(key),
            me,
            turn,
            |id| detector.is_up(id),
        );
        if owners.len() < required {
            let error = OpError::Unavailable {
                answered: 0,
                required,
                replicas: n,
                reachable: owners.len(),
            };
            self.reply(op, Err(error));
            return;
        }
        // Weaker than a quorum read: no waiting for repairs.
        let needed = if required >= self.settings.read_quorum {
            (n + 1)
                .saturating_sub(self.settings.read_quorum)
                .min(owners.len())
        } else {
            0
        };
        let ask = required.max(needed);
        if owners == [me] {
            return self.read_alone(op, key);
        }
        let read = self.ids.read();
        let deadline = self.deadline();
        if ask < owners.len() {
            let hedge_at = self.now.mono + self.settings.read_hedge_after.as_millis() as u64;
            self.coordinator.hedge_read(read, hedge_at);
        }
        let key: Arc<[u8]> = key.into();
        self.coordinator.open_read(
            read,
            ReadOp {
                op,
                key: Arc::clone(&key),
                tally: ReadTally::with_spares(owners, ask, required),
                needed,
                answered: false,
                repaired: Vec::new(),
                repair_acks: Vec::new(),
                asked_again: Vec::new(),
            },
            deadline,
        );
        for at in 0..ask {
            let Some(node) = self
                .coordinator
                .read_mut(read)
                .and_then(|r| r.tally.owner(at))
            else {
                break;
            };
            self.ask(node, read, &key);
        }
    }

    /// A read that has not answered by its hedge time asks every spare: an
    /// asked replica may be paused or slow without being believed down.
    pub(super) fn on_read_hedge(&mut self, id: ReadId) {
        let Some(read) = self.coordinator.read_mut(id) else {
            return;
        };
        if read.answered {
            return;
        }
        let key = read.key.clone();
        let mut spares = Vec::new();
        while let Some(spare) = read.tally.take_spare() {
            spares.push(spare);
        }
        self.stats.read_hedges += spares.len() as u64;
        for spare in spares {
            self.ask(spare, id, &key);
        }
    }

    /// A read whose only replica is this node: nothing to wait for or
    /// repair.
    fn read_alone(&mut self, op: OpId, key: &[u8]) {
        let entry = self.local_entry(key);
        let barrier = self.read_barrier(key);
        if self.gate.covers(barrier) {
            // The common case, answered without a detour through the gate.
            let reply = self.value_reply(entry);
            self.reply(op, reply);
        } else {
            self.defer(barrier, Deferred::Value { op, entry });
        }
    }

    pub(super) fn on_read_reply(&mut self, from: NodeId, id: ReadId, entry: Option<Entry>) {
        let Some(read) = self.coordinator.read_mut(id) else {
            return;
        };
        read.tally.record(from, entry);
        self.try_answer(id);
    }

    /// A replica's answer to a repair this read sent while it waited:
    /// `held` is what it held before (`None` when it did not take it).
    pub(super) fn on_repair_ack(
        &mut self,
        from: NodeId,
        id: ReadId,
        held: Option<Option<Version>>,
    ) {
        let Some(read) = self.coordinator.read_mut(id) else {
            return;
        };
        let Some(&(_, sent)) = read.repaired.iter().find(|(n, _)| *n == from) else {
            return;
        };
        if read.repair_acks.iter().any(|(n, _)| *n == from) {
            return;
        }
        match held {
            // Refused (its clock check, its disk): it does not count.
            None => return,
            Some(held) if held.is_none_or(|h| h <= sent) => read.repair_acks.push((from, sent)),
            // It held something newer than the read found: ask it again.
            Some(_) => {
                if read.asked_again.contains(&from) {
                    return;
                }
                read.asked_again.push(from);
                read.tally.forget(from);
                let key = read.key.clone();
                self.ask(from, id, &key);
                return;
            }
        }
        self.try_answer(id);
    }

    /// Sends a read to one replica (this node's own copy goes through the
    /// same durability wait as a replica's answer).
    fn ask(&mut self, node: NodeId, id: ReadId, key: &Arc<[u8]>) {
        if node == self.settings.id {
            let entry = self.local_entry(key);
            let barrier = self.read_barrier(key);
            self.defer(barrier, Deferred::OwnRead { read: id, entry });
        } else {
            self.send(
                node,
                Message::Read {
                    request: id.into(),
                    key: Arc::clone(key),
                },
            );
        }
    }

    /// Answers a read that has R replies once the newest version is on
    /// enough owners, and until then sends it to stale replicas; finishes
    /// the read (repairing the rest) once it has answered and every asked
    /// replica has.
    fn try_answer(&mut self, id: ReadId) {
        let Some(read) = self.coordinator.read_mut(id) else {
            return;
        };
        if !read.answered && read.tally.reached() {
            // The usual read: every asked replica answered, alike, and
            // enough of them. All hold the newest copy, nothing is left to
            // repair, so the read ends here and its copy moves into the
            // reply instead of being copied.
            if read.tally.complete()
                && read.tally.answered() >= read.needed
                && read.repair_acks.is_empty()
                && read.tally.agree_on_a_plain_copy()
            {
                let op = read.op;
                let newest = self
                    .coordinator
                    .finish_read(id)
                    .and_then(|read| read.tally.into_agreed());
                let reply = self.value_reply(newest);
                self.reply(op, reply);
                return;
            }
            let newest = read.tally.newest();
            let version = newest.as_ref().map(|e| e.version);
            let holding = read.tally.holding(newest.as_ref())
                + read
                    .repair_acks
                    .iter()
                    .filter(|&&(node, sent)| {
                        Some(sent) == version && !read.tally.answered_with(node, newest.as_ref())
                    })
                    .count();
            if holding >= read.needed {
                read.answered = true;
                let op = read.op;
                let reply = self.value_reply(newest);
                self.reply(op, reply);
            } else if let Some(newest) = newest {
                let stale: Vec<NodeId> = read
                    .tally
                    .stale_against(&newest)
                    .into_iter()
                    .filter(|n| !read.repaired.iter().any(|(r, _)| r == n))
                    .collect();
                read.repaired
                    .extend(stale.iter().map(|&n| (n, newest.version)));
                let key = read.key.clone();
                for node in stale {
                    self.repair_one(node, id, &key, &newest);
                }
            }
        }
        let Some(read) = self.coordinator.read_mut(id) else {
            return;
        };
        if read.answered && read.tally.complete() {
            if let Some(read) = self.coordinator.finish_read(id) {
                self.repair(read);
            }
        }
    }

    /// Sends `newest` to one stale replica while the read waits for it.
    fn repair_one(&mut self, node: NodeId, id: ReadId, key: &[u8], newest: &Entry) {
        self.stats.read_repairs += 1;
        if node != self.settings.id {
            let repair = Message::Replicate {
                request: id.repair().into(),
                write: SharedWrite::new(key, newest.as_ref()),
                hint_for: None,
            };
            self.send(node, repair);
            return;
        }
        if !self.accepts_timestamp(newest.version.timestamp) {
            return;
        }
        match self.apply_local(key, newest.as_ref()) {
            Ok(applied) => self.defer(
                applied.ticket,
                Deferred::OwnRepair {
                    read: id,
                    held: applied.held,
                },
            ),
            Err(e) => log::error!("node {}: read repair failed locally: {e}", self.settings.id),
        }
    }

    /// A replica the read asked could not be reached: when R is out of
    /// reach the read fails now.
    pub(super) fn on_read_unreachable(&mut self, from: NodeId, id: ReadId) {
        let Some(read) = self.coordinator.read_mut(id) else {
            return;
        };
        read.tally.fail(from);
        if let Some(spare) = (!read.answered).then(|| read.tally.take_spare()).flatten() {
            let key = read.key.clone();
            self.ask(spare, id, &key);
            return;
        }
        if read.tally.reached() || read.tally.can_reach() {
            return;
        }
        if let Some(read) = self.coordinator.finish_read(id) {
            self.on_read_expired(read);
        }
    }

    pub(super) fn on_read_expired(&mut self, read: ReadOp) {
        if read.tally.reached() {
            if !read.answered {
                // Repairs did not land in time. The newest value may be on
                // too few owners for a later read to meet it: say so
                // rather than answer something a later read contradicts.
                let newest = read.tally.newest();
                let version = newest.as_ref().map(|e| e.version);
                let repaired = read.repair_acks.iter().filter(|(_, v)| Some(*v) == version);
                let error = OpError::RepairIncomplete {
                    holding: read.tally.holding(newest.as_ref()) + repaired.count(),
                    needed: read.needed,
                };
                self.reply(read.op, Err(error));
            }
            self.repair(read);
        } else {
            let error = OpError::Unavailable {
                answered: read.tally.answered(),
                required: read.tally.required(),
                replicas: self.settings.replication_factor,
                reachable: read.tally.reachable(),
            };
            self.reply(read.op, Err(error));
        }
    }

    /// Sends the newest version to every replica that answered with an
    /// older one (or none). This node's own stale copy is repaired under
    /// the same drift check a replicated write gets.
    fn repair(&mut self, read: ReadOp) {
        if read.tally.agree() {
            return;
        }
        let Some(newest) = read.tally.newest() else {
            return;
        };
        for node in read.tally.stale_against(&newest) {
            if read.repaired.iter().any(|(n, _)| *n == node) {
                continue;
            }
            self.stats.read_repairs += 1;
            if node == self.settings.id {
                if !self.accepts_timestamp(newest.version.timestamp) {
                    continue;
                }
                let applied = self.apply_local(&read.key, newest.as_ref());
                if let Err(e) = applied {
                    log::error!("node {}: read repair failed locally: {e}", self.settings.id);
                }
            } else {
                let request: RequestId = self.ids.repair().into();
                self.send(
                    node,
                    Message::Replicate {
                        request,
                        write: SharedWrite::new(&read.key, newest.as_ref()),
                        hint_for: None,
                    },
                );
            }
        }
    }
}
