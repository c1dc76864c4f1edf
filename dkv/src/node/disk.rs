//! What the sans-IO node asks of its disk, and an in-memory stand-in.
//!
//! [`Disk`] is the one place the replication core touches data: reads are
//! synchronous (the engine is in memory); a write is applied at once and
//! returns the [`Ticket`] its acknowledgement must wait for, if any. The
//! node never asks the disk whether a ticket is durable: the runtime tells
//! it, with [`super::Node::handle_durable`], when its log reports progress
//! (raft-rs's `on_persist_ready`). A replica's acknowledgement is sent only
//! once its write is durable (persist before send).
//!
//! [`MemDisk`] keeps a *written* and a *synced* image so the simulator can
//! crash a node at any point and keep only what was synced.

use std::collections::BTreeMap;

use crate::engine::{scan_position, EngineStats, Entry, EntryRef, ScanPage, Supersedes};
use crate::version::{NodeId, Timestamp, Version};
use crate::wal::Lsn;

/// The logs a node writes: its data, and the hints it keeps for others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Log {
    /// Client data (the store's WAL).
    Data,
    /// Hints (their own WAL).
    Hints,
}

impl Log {
    /// Both logs.
    pub const ALL: [Log; 2] = [Log::Data, Log::Hints];

    /// A dense index for per-log tables.
    pub fn index(self) -> usize {
        match self {
            Log::Data => 0,
            Log::Hints => 1,
        }
    }
}

/// Names a write to wait for: the log it went to and its sequence there.
/// As an input ([`super::Node::handle_durable`]) it means "everything in
/// this log up to this sequence is durable".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ticket {
    /// The log.
    pub log: Log,
    /// The sequence within it.
    pub lsn: Lsn,
}

impl Ticket {
    /// A data-log ticket.
    pub fn data(lsn: Lsn) -> Ticket {
        Ticket {
            log: Log::Data,
            lsn,
        }
    }

    /// A hint-log ticket.
    pub fn hint(lsn: Lsn) -> Ticket {
        Ticket {
            log: Log::Hints,
            lsn,
        }
    }
}

/// A failed write to local storage (the log refused it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("local storage: {0}")]
pub struct DiskError(pub String);

/// The outcome of applying a write locally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    /// Whether the write's version beat the stored one.
    pub won: bool,
    /// Whether the key held a value (not a tombstone) just before; see
    /// [`Applied::held_live_at`] for whether it had expired.
    pub was_live: bool,
    /// The expiry of the value held just before, if it had one.
    pub held_expires_at: Option<u64>,
    /// The version the key held just before, if any: a write that did
    /// not win was beaten by it.
    pub held: Option<Version>,
    /// The state digests of the entry held before and after (see
    /// [`crate::engine::EntryRef::state_digest`]).
    pub held_state: u64,
    /// See `held_state`.
    pub state: u64,
    /// Wait for this before acknowledging; `None` when the disk promises
    /// nothing more than it already did (no fsync to wait for).
    pub ticket: Option<Ticket>,
}

impl Applied {
    /// Whether a reader at `now_ms` would have seen the value held just
    /// before (what `DEL` counts).
    pub fn held_live_at(&self, now_ms: u64) -> bool {
        self.was_live && self.held_expires_at.is_none_or(|at| now_ms < at)
    }
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

/// Counters of a disk, for INFO.
#[derive(Debug, Clone, Default)]
pub struct DiskStats {
    /// Keys, tombstones and bytes in memory.
    pub engine: EngineStats,
    /// What the disk says of its logs and snapshots, as INFO's
    /// `persistence` lines (`wal_bytes`, `last_snapshot_lsn`, ...).
    pub persistence: Vec<(&'static str, String)>,
}

/// The node's local data and hints.
pub trait Disk {
    /// The local entry for `key`, tombstones included.
    fn get(&self, key: &[u8]) -> Option<Entry>;
    /// The version of the local entry for `key`, without copying its value.
    fn version_of(&self, key: &[u8]) -> Option<Version>;
    /// Applies a write with Last-Write-Wins and logs it.
    fn apply(&mut self, key: &[u8], entry: EntryRef<'_>) -> Result<Applied, DiskError>;
    /// One step of active expiry: gives back the memory of some entries
    /// that expired before `now_ms` (a tombstone at their version stays
    /// unless `alone`, a node with no replicas); returns how many. Called
    /// on every tick; each call does a bounded amount of work.
    fn expire_step(&mut self, now_ms: u64, alone: bool) -> usize;
    /// Stores a hint durably (replacing an older one for the same target
    /// and key); returns what to wait for, if anything.
    fn put_hint(&mut self, hint: &Hint) -> Result<Option<Ticket>, DiskError>;
    /// Forgets the hint for `(target, key)` if it still has `version`.
    fn remove_hint(
        &mut self,
        target: NodeId,
        key: &[u8],
        version: Version,
    ) -> Result<(), DiskError>;
    /// Every stored hint (read once at start-up).
    fn hints(&self) -> Vec<Hint>;
    /// The newest timestamp stored: the clock starts past it.
    fn max_timestamp(&self) -> Timestamp;
    /// Calls `f` with every local key, its version and its state digest,
    /// tombstones included (anti-entropy builds its trees and lists
    /// segments with it).
    fn for_each_version(&self, f: &mut dyn FnMut(&[u8], Version, u64));
    /// Every tombstone held, with its version.
    fn tombstones(&self) -> Vec<(Vec<u8>, Version)>;
    /// Drops the tombstone of `key` if it still has `version` (every
    /// replica holds it); whether it did.
    fn purge_tombstone(&mut self, key: &[u8], version: Version) -> bool;
    /// Raises the flush floor (`FLUSHDB`): every entry at or below
    /// `floor` is dropped and writes at or below it are refused from then
    /// on; returns what to wait for before acknowledging, if anything.
    fn raise_floor(&mut self, floor: Version) -> Result<Option<Ticket>, DiskError>;
    /// The flush floor (`Version::default()` before any flush).
    fn floor(&self) -> Version;
    /// One page of local keys that `keep` accepts, from scan position
    /// `from` (see [`crate::engine::Engine::scan`]).
    fn scan(
        &self,
        from: u64,
        count: usize,
        keep: &mut dyn FnMut(&[u8], EntryRef<'_>) -> bool,
    ) -> ScanPage;
    /// Counters.
    fn stats(&self) -> DiskStats;
}

/// An in-memory [`Disk`] with a written and a synced image, one sequence
/// for both logs.
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
    floor: Version,
}

impl MemDisk {
    /// An empty disk.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes everything written so far durable; returns what the runtime
    /// hands the node ([`super::Node::handle_durable`]), one ticket per log.
    pub fn sync(&mut self) -> [Ticket; 2] {
        self.synced = self.written.clone();
        self.synced_lsn = self.next_lsn;
        let lsn = Lsn(self.synced_lsn);
        [Ticket::data(lsn), Ticket::hint(lsn)]
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

    fn ticket(&self, log: Log) -> Option<Ticket> {
        Some(Ticket {
            log,
            lsn: Lsn(self.next_lsn),
        })
    }
}

impl Disk for MemDisk {
    fn for_each_version(&self, f: &mut dyn FnMut(&[u8], Version, u64)) {
        for (key, entry) in &self.written.data {
            f(key, entry.version, entry.as_ref().state_digest());
        }
    }

    fn tombstones(&self) -> Vec<(Vec<u8>, Version)> {
        self.written
            .data
            .iter()
            .filter(|(_, e)| e.is_tombstone())
            .map(|(k, e)| (k.clone(), e.version))
            .collect()
    }

    fn purge_tombstone(&mut self, key: &[u8], version: Version) -> bool {
        let purgeable = self
            .written
            .data
            .get(key)
            .is_some_and(|e| e.is_tombstone() && e.version == version);
        if purgeable {
            // As the real store: memory only; what is on disk is replayed
            // (and purged again) after a crash.
            self.written.data.remove(key);
        }
        purgeable
    }

    fn get(&self, key: &[u8]) -> Option<Entry> {
        self.written.data.get(key).cloned()
    }

    fn version_of(&self, key: &[u8]) -> Option<Version> {
        self.written.data.get(key).map(|e| e.version)
    }

    fn apply(&mut self, key: &[u8], entry: EntryRef<'_>) -> Result<Applied, DiskError> {
        if entry.version <= self.written.floor {
            return Ok(Applied {
                won: false,
                was_live: false,
                held_expires_at: None,
                held: Some(self.written.floor),
                held_state: 0,
                state: 0,
                ticket: self.ticket(Log::Data),
            });
        }
        let old = self.written.data.get(key);
        let was_live = old.is_some_and(|e| !e.is_tombstone());
        let held_expires_at = old.and_then(|e| e.expires_at);
        let held = old.map(|e| e.version);
        let held_state = old.map_or(0, |e| e.as_ref().state_digest());
        // The engine's rule: newer wins, copies of one counter merge.
        let stored = match old.map(|old| crate::engine::supersedes(old.as_ref(), entry)) {
            None | Some(Supersedes::Whole) => Some(entry.to_owned()),
            Some(Supersedes::Merged(state, expires_at)) => {
                Some(EntryRef::counter(entry.version, &state, expires_at).to_owned())
            }
            Some(Supersedes::No) => None,
        };
        let won = stored.is_some();
        let state = stored
            .as_ref()
            .map_or(held_state, |e| e.as_ref().state_digest());
        if let Some(stored) = stored {
            self.written.data.insert(key.to_vec(), stored);
            self.next_lsn += 1;
        }
        Ok(Applied {
            won,
            was_live,
            held_expires_at,
            held,
            held_state,
            state,
            ticket: self.ticket(Log::Data),
        })
    }

    fn expire_step(&mut self, now_ms: u64, alone: bool) -> usize {
        // As the real store: memory only (the log keeps the expiring value,
        // whose replay meets the same expiry).
        let expired: Vec<Vec<u8>> = self
            .written
            .data
            .iter()
            .filter(|(_, e)| e.expires_at.is_some_and(|at| at <= now_ms))
            .map(|(k, _)| k.clone())
            .collect();
        for key in &expired {
            if alone {
                self.written.data.remove(key);
            } else if let Some(entry) = self.written.data.get_mut(key) {
                *entry = Entry::tombstone(entry.version);
            }
        }
        expired.len()
    }

    fn put_hint(&mut self, hint: &Hint) -> Result<Option<Ticket>, DiskError> {
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
        Ok(self.ticket(Log::Hints))
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

    fn max_timestamp(&self) -> Timestamp {
        self.written
            .data
            .values()
            .map(|e| e.version.timestamp)
            .max()
            .unwrap_or_default()
    }

    fn raise_floor(&mut self, floor: Version) -> Result<Option<Ticket>, DiskError> {
        if floor > self.written.floor {
            self.written.floor = floor;
            self.written.data.retain(|_, e| e.version > floor);
            self.next_lsn += 1;
        }
        Ok(self.ticket(Log::Data))
    }

    fn floor(&self) -> Version {
        self.written.floor
    }

    fn scan(
        &self,
        from: u64,
        count: usize,
        keep: &mut dyn FnMut(&[u8], EntryRef<'_>) -> bool,
    ) -> ScanPage {
        let mut found: Vec<(u64, &Vec<u8>)> = self
            .written
            .data
            .iter()
            .map(|(k, e)| (scan_position(k), k, e))
            .filter(|&(p, k, e)| p >= from && keep(k, e.as_ref()))
            .map(|(p, k, _)| (p, k))
            .collect();
        found.sort();
        let count = count.max(1);
        let last = found.get(count - 1).map(|&(p, _)| p);
        let (page, rest): (Vec<_>, Vec<_>) = found
            .into_iter()
            .partition(|&(p, _)| last.is_none_or(|last| p <= last));
        ScanPage {
            keys: page.into_iter().map(|(_, k)| k.clone()).collect(),
            next: match (last, rest.is_empty()) {
                (Some(last), false) => last.checked_add(1),
                _ => None,
            },
        }
    }

    fn stats(&self) -> DiskStats {
        let live = self.written.data.values().filter(|e| !e.is_tombstone());
        let keys = live.clone().count();
        let bytes = self
            .written
            .data
            .iter()
            .map(|(k, e)| k.len() + e.value.as_ref().map_or(0, Vec::len))
            .sum();
        DiskStats {
            engine: EngineStats {
                keys,
                tombstones: self.written.data.len() - keys,
                expiring: self
                    .written
                    .data
                    .values()
                    .filter(|e| e.expires_at.is_some())
                    .count(),
                bytes,
            },
            persistence: vec![("disk", "memory".to_string())],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(ts: u64) -> Version {
        Version::new(Timestamp(ts), NodeId(1))
    }

    fn value(ts: u64, value: &[u8]) -> EntryRef<'_> {
        EntryRef::value(version(ts), value)
    }

    fn tombstone(ts: u64) -> EntryRef<'static> {
        EntryRef::tombstone(version(ts))
    }

    #[test]
    fn crash_keeps_only_synced_writes() {
        let mut s = MemDisk::new();
        s.apply(b"a", value(1, b"1")).unwrap();
        let [data, _] = s.sync();
        let applied = s.apply(b"b", value(2, b"2")).unwrap();
        assert!(applied.ticket.is_some_and(|t| t.lsn > data.lsn));
        assert!(s.has_unsynced());
        s.crash();
        assert!(s.get(b"a").is_some());
        assert!(s.get(b"b").is_none());
        assert!(!s.has_unsynced());
    }

    #[test]
    fn apply_reports_whether_a_live_value_was_there() {
        let mut s = MemDisk::new();
        let first = s.apply(b"k", value(1, b"v")).unwrap();
        assert!(first.won && !first.was_live);
        let stale = s.apply(b"k", tombstone(0)).unwrap();
        assert!(!stale.won && stale.was_live);
        let delete = s.apply(b"k", tombstone(2)).unwrap();
        assert!(delete.won && delete.was_live);
        let again = s.apply(b"k", tombstone(3)).unwrap();
        assert!(again.won && !again.was_live);
        assert_eq!(s.max_timestamp(), Timestamp(3));
        assert_eq!(s.stats().engine.tombstones, 1);
    }

    #[test]
    fn hints_replace_by_version_and_remove_only_the_same_version() {
        let mut s = MemDisk::new();
        let hint = |ts| Hint {
            target: NodeId(2),
            key: b"k".to_vec(),
            entry: Entry::value(version(ts), "v"),
            stored_at_millis: 0,
        };
        s.put_hint(&hint(5)).unwrap();
        s.put_hint(&hint(3)).unwrap();
        assert_eq!(s.hints()[0].entry.version.timestamp, Timestamp(5));
        s.remove_hint(NodeId(2), b"k", version(3)).unwrap();
        assert_eq!(s.hints().len(), 1);
        s.remove_hint(NodeId(2), b"k", version(5)).unwrap();
        assert!(s.hints().is_empty());
    }
}
