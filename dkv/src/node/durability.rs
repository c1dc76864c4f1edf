//! The durability gate: actions held until the write they cover is
//! durable.
//!
//! Persist before send: a replica acknowledges a write, and a coordinator
//! counts its own copy, only once the log record is durable; a read reply
//! (a replica's, the coordinator's own, a lone node's answer) goes out only
//! once the last data write to its key is durable, so no reader ever sees
//! a value a crash could take back; a read of a key with no write in
//! flight answers at once, whatever the log is doing for other keys
//! ([`KeyBarriers`]). The node puts
//! each such action here with the [`Ticket`] it waits for; the runtime
//! reports each log's progress ([`DurabilityGate::advance`]) and the gate
//! hands back every action now covered, in ticket order. Tickets of one
//! log are handed out in increasing order, so each log's queue is sorted
//! and releasing costs only the actions released.
//!
//! A log that fails (a refused fsync poisons it) fails every action
//! waiting on it: [`DurabilityGate::fail`] hands them back to be answered
//! with an error rather than left waiting for ever.

use std::collections::VecDeque;

use crate::engine::Entry;
use crate::node::disk::{Log, Ticket};
use crate::node::ids::{ReadId, WriteId};
use crate::node::types::{OpId, OpReply};
use crate::peer::{Message, RequestId};
use crate::version::{NodeId, Version};
use crate::wal::Lsn;

/// An action held until its write is durable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Deferred {
    /// Tell a coordinator its replicated write (or the hint kept for it)
    /// is safe here, and what version the key held before it.
    Ack {
        to: NodeId,
        request: RequestId,
        was_live: bool,
        held: Option<Version>,
    },
    /// Count this node's own copy towards a write it coordinates.
    OwnWrite {
        write: WriteId,
        was_live: bool,
        held: Option<Version>,
    },
    /// Answer a write whose only replica is this node.
    Reply { op: OpId, reply: OpReply },
    /// Answer a coordinator's read with this replica's entry.
    ReadReply {
        to: NodeId,
        request: RequestId,
        entry: Option<Entry>,
    },
    /// Count this node's own entry towards a read it coordinates.
    OwnRead { read: ReadId, entry: Option<Entry> },
    /// Answer a read whose only replica is this node.
    Value { op: OpId, entry: Option<Entry> },
    /// Count a repair of this node's own copy towards the read waiting
    /// for it.
    OwnRepair { read: ReadId, held: Option<Version> },
    /// Push an entry to a peer that lacks it (anti-entropy), once it is
    /// durable here.
    Push {
        to: NodeId,
        key: Vec<u8>,
        entry: Entry,
    },
    /// Send a message once what it reports is durable (a flush's
    /// acknowledgement, a scan's page).
    Send { to: NodeId, message: Message },
}

/// Buckets of [`KeyBarriers`]: a power of two.
const KEY_BARRIER_BUCKETS: usize = 4096;

/// For each key, the data log position a read of it must wait for: that
/// of the last write applied to it. Kept per bucket of the key's hash
/// (the newest position of any key in the bucket), so it costs a fixed
/// 32 KiB and no allocation per write; a key sharing a bucket with a key
/// being written waits for that write too (a chance of one in 4,096 per
/// write in flight), which is harmless: it only waits as every read once
/// did.
#[derive(Debug)]
pub(crate) struct KeyBarriers {
    lsns: Box<[u64]>,
}

impl Default for KeyBarriers {
    fn default() -> Self {
        KeyBarriers {
            lsns: vec![0; KEY_BARRIER_BUCKETS].into_boxed_slice(),
        }
    }
}

impl KeyBarriers {
    fn bucket(key: &[u8]) -> usize {
        use std::hash::Hasher;
        // Chosen keys can only make reads share a bucket, that is wait
        // for a group commit: the fast id hash is enough.
        let mut hasher = crate::hash::IdHasher::default();
        hasher.write(key);
        hasher.finish() as usize & (KEY_BARRIER_BUCKETS - 1)
    }

    /// A write to `key` was applied at `lsn` of the data log.
    pub fn note(&mut self, key: &[u8], lsn: Lsn) {
        let slot = &mut self.lsns[Self::bucket(key)];
        *slot = (*slot).max(lsn.0);
    }

    /// The ticket a read of `key` waits for (`None`: no write to it yet).
    pub fn of(&self, key: &[u8]) -> Option<Ticket> {
        match self.lsns[Self::bucket(key)] {
            0 => None,
            lsn => Some(Ticket::data(Lsn(lsn))),
        }
    }
}

/// Actions waiting for each log, and how far each log is durable.
#[derive(Debug, Default)]
pub(crate) struct DurabilityGate {
    waiting: [VecDeque<(Lsn, Deferred)>; 2],
    durable: [Lsn; 2],
}

impl DurabilityGate {
    pub fn new() -> DurabilityGate {
        DurabilityGate::default()
    }

    /// Holds `action` until `ticket` is durable; hands it straight back
    /// when it already is. An action whose ticket is older than one
    /// already waiting (a read waits for its own key's last write, which
    /// may be older than the last write of all) waits with that one, so
    /// each queue stays in order: a little later, never earlier.
    pub fn defer(&mut self, ticket: Ticket, action: Deferred) -> Option<Deferred> {
        let log = ticket.log.index();
        if ticket.lsn <= self.durable[log] {
            return Some(action);
        }
        let queue = &mut self.waiting[log];
        let lsn = queue
            .back()
            .map_or(ticket.lsn, |(last, _)| (*last).max(ticket.lsn));
        queue.push_back((lsn, action));
        None
    }

    /// Whether everything up to `ticket` is durable already (`None`: there
    /// was nothing to wait for).
    pub fn covers(&self, ticket: Option<Ticket>) -> bool {
        ticket.is_none_or(|t| t.lsn <= self.durable[t.log.index()])
    }

    /// Records that `ticket.log` is durable up to `ticket.lsn`; what that
    /// releases comes out of [`DurabilityGate::next_released`].
    pub fn advance(&mut self, ticket: Ticket) {
        let log = ticket.log.index();
        if ticket.lsn > self.durable[log] {
            self.durable[log] = ticket.lsn;
        }
    }

    /// The oldest action waiting on `log` that its durable point covers,
    /// if any: actions come out in the order they were deferred.
    pub fn next_released(&mut self, log: Log) -> Option<Deferred> {
        let log = log.index();
        let durable = self.durable[log];
        let queue = &mut self.waiting[log];
        if queue.front().is_some_and(|(lsn, _)| *lsn <= durable) {
            queue.pop_front().map(|(_, action)| action)
        } else {
            None
        }
    }

    /// The log failed: every action waiting on it moves into `failed`.
    pub fn fail(&mut self, log: Log, failed: &mut Vec<Deferred>) {
        failed.extend(self.waiting[log.index()].drain(..).map(|(_, a)| a));
    }

    /// Actions still waiting, on both logs.
    pub fn waiting(&self) -> usize {
        self.waiting.iter().map(VecDeque::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(call: u64) -> Deferred {
        Deferred::Reply {
            op: OpId::single(call),
            reply: OpReply::Written {
                existed: false,
                version: Version::default(),
            },
        }
    }

    fn advance(gate: &mut DurabilityGate, ticket: Ticket) -> Vec<Deferred> {
        gate.advance(ticket);
        std::iter::from_fn(|| gate.next_released(ticket.log)).collect()
    }

    #[test]
    fn actions_are_released_in_order_once_their_log_is_durable() {
        let mut gate = DurabilityGate::new();
        assert_eq!(gate.defer(Ticket::data(Lsn(1)), reply(1)), None);
        assert_eq!(gate.defer(Ticket::data(Lsn(3)), reply(2)), None);
        assert_eq!(gate.defer(Ticket::hint(Lsn(1)), reply(3)), None);
        assert_eq!(advance(&mut gate, Ticket::data(Lsn(2))), vec![reply(1)]);
        // The hint log's progress releases only hint-log actions.
        assert_eq!(advance(&mut gate, Ticket::hint(Lsn(5))), vec![reply(3)]);
        assert_eq!(advance(&mut gate, Ticket::data(Lsn(3))), vec![reply(2)]);
        assert_eq!(gate.waiting(), 0);
        // An older ticket than one waiting waits with it.
        assert_eq!(gate.defer(Ticket::data(Lsn(6)), reply(6)), None);
        assert_eq!(gate.defer(Ticket::data(Lsn(4)), reply(7)), None);
        assert!(advance(&mut gate, Ticket::data(Lsn(5))).is_empty());
        assert_eq!(
            advance(&mut gate, Ticket::data(Lsn(6))),
            vec![reply(6), reply(7)]
        );
        // Already durable: handed straight back.
        assert_eq!(gate.defer(Ticket::data(Lsn(2)), reply(4)), Some(reply(4)));
        // Progress never goes backwards.
        assert!(advance(&mut gate, Ticket::data(Lsn(1))).is_empty());
        assert_eq!(gate.defer(Ticket::data(Lsn(3)), reply(5)), Some(reply(5)));
    }

    #[test]
    fn a_key_waits_for_its_own_last_write_only() {
        let mut barriers = KeyBarriers::default();
        assert_eq!(barriers.of(b"a"), None);
        barriers.note(b"a", Lsn(7));
        barriers.note(b"a", Lsn(9));
        barriers.note(b"a", Lsn(8));
        assert_eq!(barriers.of(b"a"), Some(Ticket::data(Lsn(9))));
        // Of 100 other keys, few share a's bucket.
        let sharing = (0..100)
            .filter(|i| barriers.of(format!("key-{i}").as_bytes()).is_some())
            .count();
        assert!(sharing <= 2, "{sharing} keys share a's bucket");
    }

    #[test]
    fn a_failed_log_hands_back_only_its_own_actions() {
        let mut gate = DurabilityGate::new();
        let _ = gate.defer(Ticket::data(Lsn(1)), reply(1));
        let _ = gate.defer(Ticket::hint(Lsn(1)), reply(2));
        let mut failed = Vec::new();
        gate.fail(Log::Data, &mut failed);
        assert_eq!(failed, vec![reply(1)]);
        assert_eq!(gate.waiting(), 1);
    }
}
