//! Durable hints: the hints a node keeps for others, in a WAL of their own.
//!
//! Each change is one WAL record (see `docs/wal-format.md`) whose key is a
//! tag byte, the target's id (u32 big-endian) and the key:
//!
//! | tag | version | value |
//! |-----|---------|-------|
//! | `H` (hint kept) | the hinted write's version | stored-at ms (u64 LE), kind (0 value, 1 tombstone, 2 value with an expiry: unix ms, u64 LE, follows; 3 and 4 the same two for a counter's state), value bytes |
//! | `R` (hint gone) | the version that was delivered or dropped | none (a tombstone record) |
//!
//! Replay keeps the newest `H` per target and key and applies an `R` only
//! when its version matches, so a delivery acknowledged for an old hint
//! never erases a newer one. When most of the log is removals, the live
//! hints are rewritten into a fresh segment, synced, and the older
//! segments deleted.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use crate::engine::{Entry, EntryRef};
use crate::node::Hint;
use crate::version::{NodeId, Version};
use crate::wal::{FsyncMode, Lsn, Wal, WalConfig, WalError, WalRecord};

const TAG_HINT: u8 = b'H';
const TAG_REMOVED: u8 = b'R';
/// Compact once this many removals have piled up and they outnumber the
/// live hints.
const COMPACT_AFTER_REMOVALS: usize = 10_000;

/// The hints of one node, durable in their own WAL.
pub struct HintLog {
    wal: Arc<Wal>,
    hints: BTreeMap<(NodeId, Vec<u8>), Hint>,
    removals: usize,
}

fn record_key(tag: u8, target: NodeId, key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + key.len());
    out.push(tag);
    out.extend_from_slice(&target.0.to_be_bytes());
    out.extend_from_slice(key);
    out
}

const KIND_VALUE: u8 = 0;
const KIND_TOMBSTONE: u8 = 1;
const KIND_EXPIRING: u8 = 2;
const KIND_COUNTER: u8 = 3;
const KIND_EXPIRING_COUNTER: u8 = 4;

fn encode_value(hint: &Hint) -> Vec<u8> {
    let value = hint.entry.value.as_deref().unwrap_or(&[]);
    let mut out = Vec::with_capacity(17 + value.len());
    out.extend_from_slice(&hint.stored_at_millis.to_le_bytes());
    let counter = hint.entry.counter;
    match (&hint.entry.value, hint.entry.expires_at) {
        (None, _) => out.push(KIND_TOMBSTONE),
        (Some(_), None) => out.push(if counter { KIND_COUNTER } else { KIND_VALUE }),
        (Some(_), Some(at)) => {
            out.push(if counter {
                KIND_EXPIRING_COUNTER
            } else {
                KIND_EXPIRING
            });
            out.extend_from_slice(&at.to_le_bytes());
        }
    }
    out.extend_from_slice(value);
    out
}

/// The hinted entry in a kept record's value after its stored-at time:
/// `(value, expiry, counter)`, or `None` if the bytes are not one.
fn decode_entry(kind_and_value: &[u8]) -> Option<(Option<Vec<u8>>, Option<u64>, bool)> {
    let (&kind, rest) = kind_and_value.split_first()?;
    let counter = matches!(kind, KIND_COUNTER | KIND_EXPIRING_COUNTER);
    match kind {
        KIND_VALUE | KIND_COUNTER => Some((Some(rest.to_vec()), None, counter)),
        KIND_TOMBSTONE if rest.is_empty() => Some((None, None, false)),
        KIND_EXPIRING | KIND_EXPIRING_COUNTER => {
            let (at, value) = rest.split_first_chunk::<8>()?;
            Some((Some(value.to_vec()), Some(u64::from_le_bytes(*at)), counter))
        }
        _ => None,
    }
}

/// One change a record describes.
enum Change {
    Kept(Hint),
    Removed {
        target: NodeId,
        key: Vec<u8>,
        version: Version,
    },
}

/// Decodes one record; `None` for a record this log did not write.
fn decode(record: &WalRecord) -> Option<Change> {
    if record.key.len() < 5 {
        return None;
    }
    let target = NodeId(u32::from_be_bytes([
        record.key[1],
        record.key[2],
        record.key[3],
        record.key[4],
    ]));
    let key = record.key[5..].to_vec();
    match (record.key[0], &record.value) {
        (TAG_HINT, Some(value)) if value.len() >= 9 => {
            let mut stored_at = [0u8; 8];
            stored_at.copy_from_slice(&value[..8]);
            let (hinted, expires_at, counter) = decode_entry(&value[8..])?;
            Some(Change::Kept(Hint {
                target,
                key,
                entry: Entry {
                    version: record.version,
                    value: hinted,
                    expires_at,
                    counter,
                },
                stored_at_millis: u64::from_le_bytes(stored_at),
            }))
        }
        (TAG_REMOVED, None) => Some(Change::Removed {
            target,
            key,
            version: record.version,
        }),
        _ => None,
    }
}

impl HintLog {
    /// Opens (or creates) the hint log in `dir` and replays it.
    pub fn open(dir: PathBuf, fsync: FsyncMode) -> Result<HintLog, WalError> {
        let mut hints: BTreeMap<(NodeId, Vec<u8>), Hint> = BTreeMap::new();
        let mut removals = 0;
        let config = WalConfig {
            fsync,
            ..WalConfig::new(dir)
        };
        let (wal, _report) = Wal::open(config, Lsn(1), |record| match decode(&record) {
            Some(Change::Kept(hint)) => {
                let slot = (hint.target, hint.key.clone());
                if hints
                    .get(&slot)
                    .is_none_or(|h| h.entry.version < hint.entry.version)
                {
                    hints.insert(slot, hint);
                }
            }
            Some(Change::Removed {
                target,
                key,
                version,
            }) => {
                removals += 1;
                let slot = (target, key);
                if hints.get(&slot).is_some_and(|h| h.entry.version == version) {
                    hints.remove(&slot);
                }
            }
            None => log::warn!(
                "hint log: skipping a record it cannot read (lsn {})",
                record.lsn.0
            ),
        })?;
        Ok(HintLog {
            wal: Arc::new(wal),
            hints,
            removals,
        })
    }

    /// Keeps `hint` unless a newer one for the same target and key is
    /// held; returns the sequence to wait for.
    pub fn put(&mut self, hint: &Hint) -> Result<Lsn, WalError> {
        let slot = (hint.target, hint.key.clone());
        if self
            .hints
            .get(&slot)
            .is_some_and(|h| h.entry.version >= hint.entry.version)
        {
            // A newer hint is held; waiting for the latest record covers it.
            return Ok(Lsn(self.wal.next_lsn().0.saturating_sub(1)));
        }
        let lsn = self.wal.append(
            &record_key(TAG_HINT, hint.target, &hint.key),
            EntryRef::value(hint.entry.version, &encode_value(hint)),
        )?;
        self.hints.insert(slot, hint.clone());
        Ok(lsn)
    }

    /// Forgets the hint for `(target, key)` if it still has `version`.
    pub fn remove(&mut self, target: NodeId, key: &[u8], version: Version) -> Result<(), WalError> {
        let slot = (target, key.to_vec());
        if self
            .hints
            .get(&slot)
            .is_none_or(|h| h.entry.version != version)
        {
            return Ok(());
        }
        self.wal.append(
            &record_key(TAG_REMOVED, target, key),
            EntryRef::tombstone(version),
        )?;
        self.hints.remove(&slot);
        self.removals += 1;
        if self.removals >= COMPACT_AFTER_REMOVALS && self.removals > self.hints.len() {
            self.compact()?;
        }
        Ok(())
    }

    /// Appends a record for every hint held (compaction, recovery).
    fn append_every_hint(&self) -> Result<(), WalError> {
        for hint in self.hints.values() {
            self.wal.append(
                &record_key(TAG_HINT, hint.target, &hint.key),
                EntryRef::value(hint.entry.version, &encode_value(hint)),
            )?;
        }
        Ok(())
    }

    /// Rewrites the live hints into a new segment and drops the old ones.
    fn compact(&mut self) -> Result<(), WalError> {
        let start = self.wal.rotate()?;
        self.append_every_hint()?;
        // The rewritten hints must be on disk before their originals go.
        self.wal.sync()?;
        self.wal.remove_segments_before(start)?;
        self.removals = 0;
        Ok(())
    }

    /// After a failure poisoned the log: starts it afresh with the hints
    /// held in memory (every hint kept and not delivered). A crash before
    /// the rewrite is synced loses hints, which only speed up repair.
    pub fn recover(&mut self) -> Result<(), WalError> {
        self.wal.revive()?;
        self.append_every_hint()?;
        self.wal.sync()?;
        self.removals = 0;
        log::warn!(
            "the hint log started afresh with {} hints",
            self.hints.len()
        );
        Ok(())
    }

    /// Every hint held.
    pub fn all(&self) -> Vec<Hint> {
        self.hints.values().cloned().collect()
    }

    /// The log, for durability queries and callbacks.
    pub fn wal(&self) -> &Wal {
        &self.wal
    }

    /// A handle on the log for a runtime that watches its durability.
    pub fn shared_wal(&self) -> Arc<Wal> {
        Arc::clone(&self.wal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::version::Timestamp;

    fn hint(target: u32, key: &str, ts: u64, value: Option<&str>) -> Hint {
        Hint {
            target: NodeId(target),
            key: key.as_bytes().to_vec(),
            entry: Entry {
                version: Version::new(Timestamp(ts), NodeId(1)),
                value: value.map(|v| v.as_bytes().to_vec()),
                expires_at: None,
                counter: false,
            },
            stored_at_millis: 77,
        }
    }

    #[test]
    fn hints_survive_reopen_and_removals_match_versions() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = HintLog::open(dir.path().to_path_buf(), FsyncMode::Always).unwrap();
        log.put(&hint(2, "a", 5, Some("x"))).unwrap();
        log.put(&hint(2, "a", 3, Some("older"))).unwrap();
        log.put(&hint(3, "b", 1, None)).unwrap();
        log.put(&hint(2, "c", 1, Some("y"))).unwrap();
        // A removal for a version that is no longer held changes nothing.
        log.remove(NodeId(2), b"a", Version::new(Timestamp(3), NodeId(1)))
            .unwrap();
        log.remove(NodeId(2), b"c", Version::new(Timestamp(1), NodeId(1)))
            .unwrap();
        log.wal().sync().unwrap();
        drop(log);
        let log = HintLog::open(dir.path().to_path_buf(), FsyncMode::Always).unwrap();
        let all = log.all();
        assert_eq!(all, vec![hint(2, "a", 5, Some("x")), hint(3, "b", 1, None)]);
    }

    #[test]
    fn compaction_keeps_live_hints_and_shrinks_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = HintLog::open(dir.path().to_path_buf(), FsyncMode::Never).unwrap();
        log.put(&hint(9, "keep", 1, Some("kept"))).unwrap();
        for i in 0..COMPACT_AFTER_REMOVALS as u64 + 5 {
            let h = hint(2, &format!("k{i}"), i + 1, Some("v"));
            log.put(&h).unwrap();
            log.remove(h.target, &h.key, h.entry.version).unwrap();
        }
        assert!(log.removals < 10);
        log.wal().sync().unwrap();
        drop(log);
        let log = HintLog::open(dir.path().to_path_buf(), FsyncMode::Never).unwrap();
        assert_eq!(log.all(), vec![hint(9, "keep", 1, Some("kept"))]);
    }
}
