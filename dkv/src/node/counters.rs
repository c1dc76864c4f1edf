//! `INCR` and its kin: an add to a counter (see [`crate::counter`]) made
//! by one replica of the key, the leader, in its own slot, then
//! replicated like any write.
//!
//! The leader is this node when it is an owner of the key (no message),
//! or the first owner that is up. It adds to the copy it holds in memory,
//! so its slot only grows, whatever the other copies hold; the new state
//! then goes to every target as a [`Message::Replicate`] (the leader's own
//! durable copy counts as one acknowledgement), and the client hears the
//! value at W. Replicas merge what they receive with what they hold: two
//! leaders adding at once (coordinators that disagree about who is up)
//! both count.
//!
//! An add is never stamped again: a replica holding a newer assignment
//! (a `SET` the leader had not seen) refuses it, and the add fails if W
//! can no longer be reached, as the `SET` it lost to says it should.

use crate::counter::{Counter, CounterError, CounterValue, Delta};
use crate::engine::{Entry, EntryRef};
use crate::hash::KeyHash;
use crate::node::coordinator::{self, CounterWrite, WriteOp};
use crate::node::durability::Deferred;
use crate::node::ids::WriteId;
use crate::node::quorum::WriteTally;
use crate::node::{Disk, Node, OpError, OpId, OpReply};
use crate::peer::{Message, RequestId, SharedWrite};
use crate::version::{NodeId, Version};

impl<D: Disk> Node<D> {
    /// Starts an add of `delta` to the counter at `key`.
    pub(super) fn start_add(
        &mut self,
        op: OpId,
        key: &[u8],
        delta: Delta,
        required: usize,
        client_deadline: Option<u64>,
    ) {
        if !self.may_stamp(op) {
            return;
        }
        let me = self.settings.id;
        let n = self.settings.replication_factor;
        let detector = &self.detector;
        let hash = KeyHash::of(key);
        let plan =
            coordinator::plan_write(&self.ring, &self.preferences, hash, |id| detector.is_up(id));
        if self.ring.len() == 1 || plan.is_only(me) {
            return self.add_alone(op, key, delta);
        }
        let owners = || plan.targets.iter().filter(|t| t.stands_in_for.is_none());
        let leader = owners()
            .find(|t| t.node == me)
            .or_else(|| owners().next())
            .map(|t| t.node);
        let (Some(leader), true) = (leader, plan.reachable >= required) else {
            let error = OpError::Unavailable {
                answered: 0,
                required,
                replicas: n,
                reachable: plan.reachable,
            };
            return self.reply(op, Err(error));
        };
        let (entry, value) = if leader == me {
            match self.add_here(key, delta) {
                Ok((entry, value)) => (entry, Some(value)),
                Err(error) => return self.reply(op, Err(OpError::Counter(error))),
            }
        } else {
            // Filled in when the leader answers.
            (Entry::tombstone(Version::default()), None)
        };
        let write = self.ids.write();
        let targets = plan.targets.clone();
        let body = SharedWrite::new(key, entry.as_ref());
        self.coordinator.open_write(
            write,
            WriteOp {
                op,
                body: body.clone(),
                tally: WriteTally::new(plan.targets, required),
                reachable: plan.reachable,
                attempt: self.first_attempt(client_deadline),
                newest_held: None,
                counter: Some(Box::new(CounterWrite { leader, value })),
            },
            self.deadline(),
        );
        if leader == me {
            self.send_write(write, (&body, hash), &targets, None);
        } else {
            let message = Message::CounterAdd {
                request: write.into(),
                key: key.to_vec(),
                delta,
            };
            self.send(leader, message);
        }
    }

    /// An add on a node that is the key's only replica.
    fn add_alone(&mut self, op: OpId, key: &[u8], delta: Delta) {
        let (entry, value) = match self.add_here(key, delta) {
            Ok(added) => added,
            Err(error) => return self.reply(op, Err(OpError::Counter(error))),
        };
        match self.apply_local(key, entry.as_ref()) {
            Ok(applied) => {
                let reply = counted(value);
                self.defer(applied.ticket, Deferred::Reply { op, reply });
            }
            Err(e) => self.reply(op, Err(OpError::Storage(e.to_string()))),
        }
    }

    /// The leader's part, for a coordinator that holds no copy: the add,
    /// applied here, and its new state sent back once durable.
    pub(super) fn on_counter_add(
        &mut self,
        from: NodeId,
        request: RequestId,
        key: Vec<u8>,
        delta: Delta,
    ) {
        let added = self.add_here(&key, delta).and_then(|(entry, _)| {
            match self.apply_local(&key, entry.as_ref()) {
                Ok(applied) => Ok((entry, applied.ticket)),
                Err(e) => {
                    log::error!("node {}: a counter add failed: {e}", self.settings.id);
                    Err(CounterError::Storage)
                }
            }
        });
        let (result, ticket) = match added {
            Ok((entry, ticket)) => (Ok(entry), ticket),
            Err(error) => (Err(error), None),
        };
        let message = Message::CounterAdded { request, result };
        self.defer(ticket, Deferred::Send { to: from, message });
    }

    /// The leader answered: its copy counts, and the state it made goes to
    /// the other targets.
    pub(super) fn on_counter_added(
        &mut self,
        from: NodeId,
        id: WriteId,
        result: Result<Entry, CounterError>,
    ) {
        let Some(write) = self.coordinator.write_mut(id) else {
            return;
        };
        let waiting = write
            .counter
            .as_ref()
            .is_some_and(|c| c.leader == from && c.value.is_none());
        if !waiting {
            return;
        }
        let value = result.and_then(|entry| {
            let state = entry.value.as_deref().filter(|_| entry.counter);
            let counter = state.and_then(|s| Counter::decode(s).ok());
            counter
                .map(|c| (entry, c.value()))
                .ok_or(CounterError::Storage)
        });
        match value {
            Ok((entry, value)) => {
                let body = SharedWrite::new(write.body.key(), entry.as_ref());
                write.body = body.clone();
                if let Some(counter) = write.counter.as_mut() {
                    counter.value = Some(value);
                }
                let targets = write.tally.targets().to_vec();
                let hash = KeyHash::of(body.key());
                self.send_write(id, (&body, hash), &targets, Some(from));
                self.on_write_answer(from, id, true, false, None);
            }
            Err(error) => {
                if let Some(write) = self.coordinator.finish_write(id) {
                    self.reply(write.op, Err(OpError::Counter(error)));
                }
            }
        }
    }

    /// The leader could not be reached: the add fails now (nothing was
    /// sent to the other targets).
    pub(super) fn on_counter_add_undeliverable(&mut self, to: NodeId, id: WriteId) {
        let Some(write) = self.coordinator.write_mut(id) else {
            return;
        };
        if write.counter.as_ref().is_some_and(|c| c.leader == to) {
            if let Some(write) = self.coordinator.finish_write(id) {
                let error = self.write_unavailable(&write);
                self.reply(write.op, Err(error));
            }
        }
    }

    /// Adds `delta` to this node's slot of the counter at `key`, as this
    /// copy shows it: the entry to write and the value it reads as.
    ///
    /// A live counter of the delta's kind is added to at its version; a
    /// live plain value becomes a counter at the value's version (every
    /// leader that converts it builds the same base, so their slots
    /// merge); anything else (missing, deleted, expired, the other kind of
    /// counter) starts a counter at a fresh stamp, as an assignment.
    fn add_here(
        &mut self,
        key: &[u8],
        delta: Delta,
    ) -> Result<(Entry, CounterValue), CounterError> {
        let held = self.local_entry(key);
        let now = self.expiry_now();
        let live = held.as_ref().filter(|e| e.live_at(now));
        let (mut counter, version, expires_at) = match live {
            Some(entry) => {
                let value = entry.value.as_deref().unwrap_or_default();
                let counter = if entry.counter {
                    Counter::decode(value).map_err(|_| CounterError::NotInteger)?
                } else {
                    Counter::start(Some(value), delta)?
                };
                if counter.takes(delta) {
                    (counter, Some(entry.version), entry.expires_at)
                } else {
                    let shown = counter.value().render();
                    (Counter::start(Some(&shown), delta)?, None, entry.expires_at)
                }
            }
            None => (Counter::start(None, delta)?, None, None),
        };
        let value = counter.add(self.actor, delta)?;
        let version = match version {
            Some(version) => version,
            None => {
                if let Some(held) = &held {
                    self.clock.advance_to(held.version.timestamp);
                }
                Version::new(self.clock.tick(self.reference_wall()), self.settings.id)
            }
        };
        let state = counter.encode();
        let entry = EntryRef::counter(version, &state, expires_at).to_owned();
        Ok((entry, value))
    }
}

/// The reply to an add: the value, rendered as Redis does.
pub(super) fn counted(value: CounterValue) -> OpReply {
    OpReply::Counted {
        float: matches!(value, CounterValue::Float(_)),
        value: value.render(),
    }
}
