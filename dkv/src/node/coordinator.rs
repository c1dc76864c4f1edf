//! The coordinator side: quorum writes and reads, timeouts, read repair.
//!
//! A write goes to the N replicas of the key's preference list; a replica
//! believed down is replaced by the next healthy node past the list, which
//! keeps the write as a hint for it. The client hears success at W
//! acknowledgements (or the level it asked for). The request then waits
//! for the other replicas until its deadline: any that stayed silent get a
//! hint kept here, so replicas converge even when messages are lost.
//!
//! A read asks every reachable replica of the preference list, answers at R
//! replies with the newest version, and when all have answered (or the
//! deadline passes) sends that newest version to the replicas that were
//! stale: read repair.

use std::collections::{BTreeMap, BTreeSet};

use crate::node::{
    ClientError, ClientId, ClientReply, Consistency, Deferred, Node, Disk, Hint,
};
use crate::peer::{Message, RequestId};
use crate::engine::Entry;
use crate::version::{NodeId, Version};

/// A write this node coordinates.
#[derive(Debug)]
pub(super) struct WriteOp {
    client: ClientId,
    key: Vec<u8>,
    entry: Entry,
    required: usize,
    /// `(sent to, stands in for)`: the owner when a substitute was used.
    targets: Vec<(NodeId, Option<NodeId>)>,
    acked: BTreeSet<NodeId>,
    existed: bool,
    replied: bool,
    reachable: usize,
    pub deadline: u64,
}

/// A read this node coordinates.
#[derive(Debug)]
pub(super) struct ReadOp {
    client: ClientId,
    key: Vec<u8>,
    required: usize,
    asked: Vec<NodeId>,
    replies: BTreeMap<NodeId, Option<Entry>>,
    replied: bool,
    pub deadline: u64,
}

fn newest(replies: &BTreeMap<NodeId, Option<Entry>>) -> Option<&Entry> {
    replies.values().flatten().max_by_key(|e| e.version)
}

impl<D: Disk> Node<D> {
    fn required(
        &mut self,
        client: ClientId,
        consistency: Consistency,
        quorum: usize,
    ) -> Option<usize> {
        let n = self.settings.replication_factor;
        let required = consistency.required(quorum, n);
        if required.is_none() {
            let asked = match consistency {
                Consistency::Count(k) => k,
                _ => 0,
            };
            self.reply(client, Err(ClientError::BadConsistency(asked, n)));
        }
        required
    }

    fn deadline(&self) -> u64 {
        self.now.mono + self.settings.request_timeout.as_millis() as u64
    }

    pub(super) fn start_write(
        &mut self,
        client: ClientId,
        key: Vec<u8>,
        value: Option<Vec<u8>>,
        consistency: Consistency,
    ) {
        let Some(required) = self.required(client, consistency, self.settings.write_quorum) else {
            return;
        };
        let version = Version::new(self.clock.tick(self.now.wall), self.settings.id);
        let entry = Entry { version, value };
        let n = self.settings.replication_factor;
        let preference = self.ring.preference_list(&key, n);
        // Stand-ins for down replicas: the next healthy nodes past the list.
        let mut spares = self
            .ring
            .walk(&key)
            .skip(n)
            .filter(|&node| self.is_up(node))
            .collect::<Vec<_>>()
            .into_iter();
        let mut targets = Vec::with_capacity(n);
        for &owner in &preference {
            if self.is_up(owner) {
                targets.push((owner, None));
            } else if let Some(spare) = spares.next() {
                targets.push((spare, Some(owner)));
            }
        }
        let reachable = targets
            .iter()
            .filter(|(_, hint_for)| hint_for.is_none())
            .count();
        if reachable < required {
            // Too few replicas up: fail at once and write nothing.
            let error = ClientError::Unavailable {
                answered: 0,
                required,
                replicas: n,
                reachable,
            };
            self.reply(client, Err(error));
            return;
        }
        let request = self.next_request_id();
        self.writes.insert(
            request,
            WriteOp {
                client,
                key: key.clone(),
                entry: entry.clone(),
                required,
                targets: targets.clone(),
                acked: BTreeSet::new(),
                existed: false,
                replied: false,
                reachable,
                deadline: self.deadline(),
            },
        );
        for (target, hint_for) in targets {
            if target == self.settings.id {
                self.write_locally(request, &key, &entry);
            } else {
                self.send(
                    target,
                    Message::Replicate {
                        request: RequestId(request),
                        key: key.clone(),
                        entry: entry.clone(),
                        hint_for,
                    },
                );
            }
        }
    }

    fn write_locally(&mut self, request: u64, key: &[u8], entry: &Entry) {
        let was_live = self.disk.get(key).is_some_and(|e| !e.is_tombstone());
        match self.disk.apply(key, entry) {
            Ok(applied) => self.defer(applied.ticket, Deferred::OwnWrite { request, was_live }),
            Err(e) => log::error!("node {}: local write failed: {e}", self.settings.id),
        }
    }

    pub(super) fn on_replicate_ack(
        &mut self,
        from: NodeId,
        request: RequestId,
        ok: bool,
        was_live: bool,
    ) {
        if self.deliveries.contains_key(&request.0) {
            self.on_hint_delivered(request.0, ok);
        } else if ok {
            self.on_write_acked(from, request.0, was_live);
        }
    }

    pub(super) fn on_write_acked(&mut self, from: NodeId, request: u64, was_live: bool) {
        let Some(op) = self.writes.get_mut(&request) else {
            return;
        };
        if !op.targets.iter().any(|(target, _)| *target == from) {
            return;
        }
        op.acked.insert(from);
        op.existed |= was_live;
        let complete = op.acked.len() == op.targets.len();
        // Only owners count towards the quorum: a stand-in's hint makes the
        // write durable but a read of the owners would not see it, so
        // counting it would break W + R > N (Cassandra does the same).
        if !op.replied && Self::owners_acked(op) >= op.required {
            op.replied = true;
            let (client, existed, version) = (op.client, op.existed, op.entry.version);
            self.reply(client, Ok(ClientReply::Written { existed, version }));
        }
        if complete && self.writes.get(&request).is_some_and(|op| op.replied) {
            if let Some(op) = self.writes.remove(&request) {
                self.hint_silent_replicas(op);
            }
        }
    }

    pub(super) fn start_read(&mut self, client: ClientId, key: Vec<u8>, consistency: Consistency) {
        let Some(required) = self.required(client, consistency, self.settings.read_quorum) else {
            return;
        };
        let preference = self
            .ring
            .preference_list(&key, self.settings.replication_factor);
        let asked: Vec<NodeId> = preference
            .into_iter()
            .filter(|&node| self.is_up(node))
            .collect();
        if asked.len() < required {
            let n = self.settings.replication_factor;
            let error = ClientError::Unavailable {
                answered: 0,
                required,
                replicas: n,
                reachable: asked.len(),
            };
            self.reply(client, Err(error));
            return;
        }
        let request = self.next_request_id();
        self.reads.insert(
            request,
            ReadOp {
                client,
                key: key.clone(),
                required,
                asked: asked.clone(),
                replies: BTreeMap::new(),
                replied: false,
                deadline: self.deadline(),
            },
        );
        for node in asked {
            if node == self.settings.id {
                let entry = self.disk.get(&key);
                self.on_read_reply(node, RequestId(request), entry);
            } else {
                self.send(
                    node,
                    Message::Read {
                        request: RequestId(request),
                        key: key.clone(),
                    },
                );
            }
        }
    }

    pub(super) fn on_read_reply(&mut self, from: NodeId, request: RequestId, entry: Option<Entry>) {
        let Some(op) = self.reads.get_mut(&request.0) else {
            return;
        };
        if !op.asked.contains(&from) {
            return;
        }
        op.replies.insert(from, entry);
        let mut answer = None;
        if !op.replied && op.replies.len() >= op.required {
            op.replied = true;
            let newest = newest(&op.replies).cloned();
            let version = newest.as_ref().map(|e| e.version);
            answer = Some((op.client, newest.and_then(|e| e.value), version));
        }
        let finished = op.replies.len() == op.asked.len() && op.replied;
        if let Some((client, value, version)) = answer {
            self.reply(client, Ok(ClientReply::Value { value, version }));
        }
        if finished {
            if let Some(op) = self.reads.remove(&request.0) {
                self.repair(op);
            }
        }
    }

    /// Sends the newest version to every replica that answered with an
    /// older one (or none).
    fn repair(&mut self, op: ReadOp) {
        let Some(newest) = newest(&op.replies).cloned() else {
            return;
        };
        for (node, entry) in &op.replies {
            if entry.as_ref().is_some_and(|e| e.version >= newest.version) {
                continue;
            }
            self.stats.read_repairs += 1;
            if *node == self.settings.id {
                if let Err(e) = self.disk.apply(&op.key, &newest) {
                    log::error!("node {}: read repair failed locally: {e}", self.settings.id);
                }
            } else {
                let request = RequestId(self.next_request_id());
                self.send(
                    *node,
                    Message::Replicate {
                        request,
                        key: op.key.clone(),
                        entry: newest.clone(),
                        hint_for: None,
                    },
                );
            }
        }
    }

    /// Keeps a hint for every owner whose write was not acknowledged, by it
    /// or by its stand-in, and for every owner no stand-in was found for.
    fn hint_silent_replicas(&mut self, op: WriteOp) {
        let n = self.settings.replication_factor;
        let covered: BTreeSet<NodeId> = op.targets.iter().map(|(t, h)| h.unwrap_or(*t)).collect();
        let unacked = op
            .targets
            .iter()
            .filter(|(target, _)| !op.acked.contains(target))
            .map(|(t, h)| h.unwrap_or(*t));
        let uncovered = self
            .ring
            .preference_list(&op.key, n)
            .into_iter()
            .filter(|owner| !covered.contains(owner));
        let owners: BTreeSet<NodeId> = unacked
            .chain(uncovered)
            .filter(|&owner| owner != self.settings.id)
            .collect();
        for owner in owners {
            let hint = Hint {
                target: owner,
                key: op.key.clone(),
                entry: op.entry.clone(),
                stored_at_millis: self.now.wall,
            };
            if let Err(e) = self.keep_hint(hint) {
                log::error!(
                    "node {}: cannot keep a hint for node {owner}: {e}",
                    self.settings.id
                );
            }
        }
    }

    /// Owners (not stand-ins) that acknowledged a write: what counts
    /// towards its quorum.
    fn owners_acked(op: &WriteOp) -> usize {
        op.targets
            .iter()
            .filter(|(t, hint_for)| hint_for.is_none() && op.acked.contains(t))
            .count()
    }

    /// Requests past their deadline.
    fn expired<T>(
        ops: &std::collections::HashMap<u64, T>,
        now: u64,
        deadline: impl Fn(&T) -> u64,
    ) -> Vec<u64> {
        ops.iter()
            .filter(|(_, op)| deadline(op) <= now)
            .map(|(&id, _)| id)
            .collect()
    }

    /// Fails or finishes requests past their deadline.
    pub(super) fn expire_requests(&mut self) {
        let now = self.now.mono;
        let n = self.settings.replication_factor;
        for id in Self::expired(&self.writes, now, |op| op.deadline) {
            let Some(op) = self.writes.remove(&id) else {
                continue;
            };
            if !op.replied {
                let answered = Self::owners_acked(&op);
                let error = ClientError::Unavailable {
                    answered,
                    required: op.required,
                    replicas: n,
                    reachable: op.reachable,
                };
                self.reply(op.client, Err(error));
            }
            self.hint_silent_replicas(op);
        }
        for id in Self::expired(&self.reads, now, |op| op.deadline) {
            let Some(op) = self.reads.remove(&id) else {
                continue;
            };
            if op.replied {
                self.repair(op);
            } else {
                let error = ClientError::Unavailable {
                    answered: op.replies.len(),
                    required: op.required,
                    replicas: n,
                    reachable: op.asked.len(),
                };
                self.reply(op.client, Err(error));
            }
        }
    }
}
