//! The coordinator's control flow for reads: ask the reachable owners,
//! answer with the newest version at R replies, fail at once when R is out
//! of reach, and repair the replicas that answered with something older.
//! The state lives in `coordinator.rs` and `quorum.rs`.

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

    pub(super) fn on_read_reply(&mut self, from: NodeId, id: ReadId, entry: Option<Entry>) {
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
