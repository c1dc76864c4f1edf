//! The coordinator's control flow for reads: ask the reachable owners,
//! answer with the newest version at R replies, fail at once when R is out
//! of reach, and repair the replicas that answered with something older.
//! The state lives in `coordinator.rs` and `quorum.rs`.
//!
//! Quorum reads are monotonic: when the R replies disagree, the read
//! sends the newest version to the stale ones and answers only once it is
//! on N - R + 1 owners (so every later quorum read meets one of them), or
//! at the deadline, whichever comes first. When replicas agree, that costs
//! nothing; when they do not (a write in flight, a replica that missed
//! one), one round trip.

use crate::engine::Entry;
use crate::node::coordinator::{self, ReadOp};
use crate::node::ids::ReadId;
use crate::node::quorum::ReadTally;
use crate::node::{Disk, Node, OpError, OpId, OpReply};
use crate::peer::{Message, RequestId};
use crate::version::NodeId;

impl<D: Disk> Node<D> {
    pub(super) fn start_read(&mut self, op: OpId, key: &[u8], required: usize) {
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
        // Weaker than a quorum read: no waiting for repairs.
        let needed = if required >= self.settings.read_quorum {
            (n + 1)
                .saturating_sub(self.settings.read_quorum)
                .min(asked.len())
        } else {
            0
        };
        self.coordinator.open_read(
            read,
            ReadOp {
                op,
                key: key.to_vec(),
                tally: ReadTally::new(asked.clone(), required),
                needed,
                answered: false,
                repaired: Vec::new(),
                repair_acks: Vec::new(),
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

    pub(super) fn on_read_reply(&mut self, from: NodeId, id: ReadId, entry: Option<Entry>) {
        let Some(read) = self.coordinator.read_mut(id) else {
            return;
        };
        let progress = read.tally.record(from, entry);
        if progress.complete {
            // Every asked replica answered: a held answer can go now if
            // the newest is on enough of them; the rest is repaired.
            self.try_answer(id);
            if let Some(read) = self.coordinator.read_mut(id) {
                if read.answered {
                    if let Some(read) = self.coordinator.finish_read(id) {
                        self.repair(read);
                    }
                }
            }
        } else {
            self.try_answer(id);
        }
    }

    /// A replica took the newest version a waiting read sent it.
    pub(super) fn on_repair_ack(&mut self, from: NodeId, id: ReadId, ok: bool) {
        let Some(read) = self.coordinator.read_mut(id) else {
            return;
        };
        if ok && read.repaired.contains(&from) && !read.repair_acks.contains(&from) {
            read.repair_acks.push(from);
            self.try_answer(id);
            if let Some(read) = self.coordinator.read_mut(id) {
                if read.answered && read.tally.answered() == read.tally.asked() {
                    if let Some(read) = self.coordinator.finish_read(id) {
                        self.repair(read);
                    }
                }
            }
        }
    }

    /// Answers a read that has R replies once the newest version is on
    /// enough owners; until then, sends it to the stale ones (once).
    fn try_answer(&mut self, id: ReadId) {
        let Some(read) = self.coordinator.read_mut(id) else {
            return;
        };
        if read.answered || !read.tally.reached() {
            return;
        }
        let holding = read.tally.holding_newest().len() + read.repair_acks.len();
        if holding >= read.needed {
            read.answered = true;
            let newest = read.tally.newest().cloned();
            let version = newest.as_ref().map(|e| e.version);
            let op = read.op;
            self.reply(
                op,
                Ok(OpReply::Value {
                    value: newest.and_then(|e| e.value),
                    version,
                }),
            );
            return;
        }
        let Some(newest) = read.tally.newest().cloned() else {
            return;
        };
        let stale: Vec<NodeId> = read
            .tally
            .stale()
            .into_iter()
            .filter(|n| !read.repaired.contains(n))
            .collect();
        read.repaired.extend(stale.iter().copied());
        let key = read.key.clone();
        for node in stale {
            self.stats.read_repairs += 1;
            if node == self.settings.id {
                let applied = self.accepts_timestamp(newest.version.timestamp)
                    && self
                        .disk
                        .apply(&key, newest.version, newest.value.as_deref())
                        .is_ok();
                self.on_repair_ack(node, id, applied);
            } else {
                self.send(
                    node,
                    Message::Replicate {
                        request: id.repair().into(),
                        key: key.clone(),
                        entry: newest.clone(),
                        hint_for: None,
                    },
                );
            }
        }
    }

    /// A replica the read asked could not be reached: when R is out of
    /// reach the read fails now.
    pub(super) fn on_read_unreachable(&mut self, from: NodeId, id: ReadId) {
        let Some(read) = self.coordinator.read_mut(id) else {
            return;
        };
        read.tally.fail(from);
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
                let error = OpError::RepairIncomplete {
                    holding: read.tally.holding_newest().len() + read.repair_acks.len(),
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
                reachable: read.tally.asked(),
            };
            self.reply(read.op, Err(error));
        }
    }

    /// Sends the newest version to every replica that answered with an
    /// older one (or none). This node's own stale copy is repaired under
    /// the same drift check a replicated write gets.
    fn repair(&mut self, read: ReadOp) {
        let Some(newest) = read.tally.newest().cloned() else {
            return;
        };
        for node in read.tally.stale() {
            if read.repaired.contains(&node) {
                continue;
            }
            self.stats.read_repairs += 1;
            if node == self.settings.id {
                if !self.accepts_timestamp(newest.version.timestamp) {
                    continue;
                }
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
}
