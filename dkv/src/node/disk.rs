//! What the sans-IO node asks of its disk, and an in-memory stand-in.
//!
//! [`Storage`] is the one place the replication core touches data: reads
//! are synchronous (the engine is in memory), writes return the WAL
//! sequence to wait for, and the node learns durability from
//! [`Storage::durable`]. A replica's acknowledgement is sent only once its
//! write is durable (persist before send).
//!
//! [`MemDisk`] keeps a *written* and a *synced* image so the simulator
//! can crash a node at any point and keep only what was synced.

use std::collections::BTreeMap;

use crate::engine::Entry;
use crate::version::{NodeId, Version};
use crate::wal::Lsn;

/// Names a write to wait for: which log it went to and its sequence there
/// (data and hints may live in different logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ticket {
    /// The log (0 = data, 1 = hints, by convention).
    pub log: u8,
    /// The sequence within it.
    pub lsn: Lsn,
}

impl Ticket {
    /// A data-log ticket.
    pub fn data(lsn: Lsn) -> Ticket {
        Ticket { log: 0, lsn }
    }

    /// A hint-log ticket.
    pub fn hint(lsn: Lsn) -> Ticket {
        Ticket { log: 1, lsn }
    }
}

/// A failed write to local storage (the WAL refused it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("local storage: {0}")]
pub struct DiskError(pub String);

/// The outcome of applying a write locally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    /// Whether the write's version beat the stored one.
    pub won: bool,
    /// Wait for this to be durable before acknowledging.
    pub ticket: Ticket,
}

/// A hint: a write kept for a replica that could not take it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hint {
    /// The replica it is meant for.
    pub target: NodeId,
    /// The key.
    pub key: Vec<u8>,
    /// The write.
    pub entry: Entry,
    /// When it was stored (wall clock, ms), for the age limit.
    pub stored_at_millis: u64,
}

/// The node's local data and hints.
pub trait Disk {
    /// The local entry for `key`, tombstones included.
    fn get(&self, key: &[u8]) -> Option<Entry>;
    /// Applies a write with Last-Write-Wins and logs it.
    fn apply(&mut self, key: &[u8], entry: &Entry) -> Result<Applied, DiskError>;
    /// Stores a hint durably (replacing an older one for the same target
    /// and key); returns what to wait for.
    fn put_hint(&mut self, hint: &Hint) -> Result<Ticket, DiskError>;
    /// Forgets the hint for `(target, key)` if it still has `version`.
    fn remove_hint(
        &mut self,
        target: NodeId,
        key: &[u8],
        version: Version,
    ) -> Result<(), DiskError>;
    /// Every stored hint (read once at start-up).
    fn hints(&self) -> Vec<Hint>;
    /// Whether the write named by `ticket` is durable.
    fn is_durable(&self, ticket: Ticket) -> bool;
}

/// An in-memory [`Storage`] with a written and a synced image.
#[derive(Debug, Clone, Default)]
pub struct MemDisk {
    written: Image,
    synced: Image,
    next_lsn: u64,
    synced_lsn: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Image {
    data: BTreeMap<Vec<u8>, Entry>,
    hints: BTreeMap<(NodeId, Vec<u8>), Hint>,
}

impl MemDisk {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes everything written so far durable.
    pub fn sync(&mut self) {
        self.synced = self.written.clone();
        self.synced_lsn = self.next_lsn;
    }

    /// Whether something written is not yet synced.
    pub fn has_unsynced(&self) -> bool {
        self.synced_lsn != self.next_lsn
    }

    /// A crash: everything not synced is lost.
    pub fn crash(&mut self) {
        self.written = self.synced.clone();
        self.next_lsn = self.synced_lsn;
    }

    /// Every local entry, in key order.
    pub fn entries(&self) -> &BTreeMap<Vec<u8>, Entry> {
        &self.written.data
    }
}

impl Disk for MemDisk {
    fn get(&self, key: &[u8]) -> Option<Entry> {
        self.written.data.get(key).cloned()
    }

    fn apply(&mut self, key: &[u8], entry: &Entry) -> Result<Applied, DiskError> {
        let won = self
            .written
            .data
            .get(key)
            .is_none_or(|old| old.version < entry.version);
        if won {
            self.written.data.insert(key.to_vec(), entry.clone());
            self.next_lsn += 1;
        }
        Ok(Applied {
            won,
            ticket: Ticket::data(Lsn(self.next_lsn)),
        })
    }

    fn put_hint(&mut self, hint: &Hint) -> Result<Ticket, DiskError> {
        let slot = (hint.target, hint.key.clone());
        if self
            .written
            .hints
            .get(&slot)
            .is_none_or(|old| old.entry.version < hint.entry.version)
        {
            self.written.hints.insert(slot, hint.clone());
            self.next_lsn += 1;
        }
        Ok(Ticket::hint(Lsn(self.next_lsn)))
    }

    fn remove_hint(
        &mut self,
        target: NodeId,
        key: &[u8],
        version: Version,
    ) -> Result<(), DiskError> {
        let slot = (target, key.to_vec());
        if self
            .written
            .hints
            .get(&slot)
            .is_some_and(|h| h.entry.version == version)
        {
            self.written.hints.remove(&slot);
            self.next_lsn += 1;
        }
        Ok(())
    }

    fn hints(&self) -> Vec<Hint> {
        self.written.hints.values().cloned().collect()
    }

    /// One log serves data and hints here.
    fn is_durable(&self, ticket: Ticket) -> bool {
        ticket.lsn.0 <= self.synced_lsn
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::version::Timestamp;

    fn entry(ts: u64, value: &str) -> Entry {
        Entry::value(Version::new(Timestamp(ts), NodeId(1)), value)
    }

    #[test]
    fn crash_keeps_only_synced_writes() {
        let mut s = MemDisk::new();
        s.apply(b"a", &entry(1, "1")).unwrap();
        s.sync();
        let applied = s.apply(b"b", &entry(2, "2")).unwrap();
        assert!(!s.is_durable(applied.ticket));
        s.crash();
        assert!(s.get(b"a").is_some());
        assert!(s.get(b"b").is_none());
        assert!(!s.has_unsynced());
    }

    #[test]
    fn hints_replace_by_version_and_remove_only_the_same_version() {
        let mut s = MemDisk::new();
        let hint = |ts| Hint {
            target: NodeId(2),
            key: b"k".to_vec(),
            entry: entry(ts, "v"),
            stored_at_millis: 0,
        };
        s.put_hint(&hint(5)).unwrap();
        s.put_hint(&hint(3)).unwrap();
        assert_eq!(s.hints()[0].entry.version.timestamp, Timestamp(5));
        s.remove_hint(NodeId(2), b"k", Version::new(Timestamp(3), NodeId(1)))
            .unwrap();
        assert_eq!(s.hints().len(), 1);
        s.remove_hint(NodeId(2), b"k", Version::new(Timestamp(5), NodeId(1)))
            .unwrap();
        assert!(s.hints().is_empty());
    }
}
