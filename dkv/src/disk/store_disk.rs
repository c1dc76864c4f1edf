//! [`StoreDisk`]: the node's [`Disk`] over a real [`Store`] and
//! [`HintLog`].
//!
//! Writes are applied and logged at once; with `--fsync always` each
//! returns the ticket of its WAL record, which the node waits for (the
//! runtime reports progress through a [`DurabilityWatch`]). With
//! `periodic` or `never` the fsync mode promises nothing more than the
//! write already got, so no ticket is returned and the node acknowledges
//! at once.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::disk::hint_log::HintLog;
use crate::disk::watch::DurabilityWatch;
use crate::engine::{Entry, EntryRef, ExpiredEntries, ScanPage};
use crate::node::{Applied, Disk, DiskError, DiskStats, Hint, Ticket};
use crate::store::{Store, StoreError};
use crate::version::{NodeId, Timestamp, Version};
use crate::wal::FsyncMode;

/// Data in the node's store, hints in their own log.
pub struct StoreDisk {
    store: Arc<Store>,
    hints: HintLog,
    /// Only `--fsync always` makes acknowledgements wait for the disk.
    wait_for_sync: bool,
    /// When starting a failed hint log afresh was last tried.
    hint_recovery_tried: Option<Instant>,
    /// The shard active expiry visits next.
    expiry_cursor: usize,
}

/// Shards active expiry visits per step.
const EXPIRY_SHARDS_PER_STEP: usize = 4;

/// How often a failed hint log is tried again (when hints come and go).
const HINT_LOG_RECOVERY_INTERVAL: Duration = Duration::from_secs(2);

fn disk_error(e: impl std::fmt::Display) -> DiskError {
    DiskError(e.to_string())
}

impl StoreDisk {
    /// Wraps an open store and opens (or creates) the hint log in
    /// `hints_dir`, with the store's fsync mode.
    pub fn open(store: Arc<Store>, hints_dir: PathBuf) -> Result<StoreDisk, StoreError> {
        let fsync = store.config().fsync;
        let hints = HintLog::open(hints_dir, fsync)?;
        Ok(StoreDisk {
            store,
            hints,
            wait_for_sync: fsync == FsyncMode::Always,
            hint_recovery_tried: None,
            expiry_cursor: 0,
        })
    }

    /// A failed hint log is started afresh from the hints in memory, at
    /// most every [`HINT_LOG_RECOVERY_INTERVAL`], when a hint is to be kept
    /// or forgotten (the data log recovers by itself, from the store's
    /// snapshot thread).
    fn recover_hint_log_if_due(&mut self) {
        if !self.hints.wal().is_poisoned() {
            return;
        }
        let due = self
            .hint_recovery_tried
            .is_none_or(|at| at.elapsed() >= HINT_LOG_RECOVERY_INTERVAL);
        if !due {
            return;
        }
        self.hint_recovery_tried = Some(Instant::now());
        if let Err(e) = self.hints.recover() {
            log::error!("the hint log failed and cannot start afresh yet: {e}");
        }
    }

    /// The data store.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// A watch on both logs, for the runtime that reports their progress
    /// to the node.
    pub fn watch(&self) -> DurabilityWatch {
        DurabilityWatch::new(Arc::clone(&self.store), self.hints.shared_wal())
    }
}

impl Disk for StoreDisk {
    fn get(&self, key: &[u8]) -> Option<Entry> {
        self.store.get_entry(key)
    }

    fn version_of(&self, key: &[u8]) -> Option<Version> {
        self.store.engine().version_of(key)
    }

    fn apply(&mut self, key: &[u8], entry: EntryRef<'_>) -> Result<Applied, DiskError> {
        let submitted = self.store.submit(key, entry).map_err(disk_error)?;
        Ok(Applied {
            won: submitted.applied,
            was_live: submitted.was_live,
            held_expires_at: submitted.held_expires_at,
            held: submitted.previous,
            held_state: submitted.held_state,
            state: submitted.state,
            ticket: self.wait_for_sync.then(|| Ticket::data(submitted.lsn)),
        })
    }

    fn put_hint(&mut self, hint: &Hint) -> Result<Option<Ticket>, DiskError> {
        self.recover_hint_log_if_due();
        let lsn = self.hints.put(hint).map_err(disk_error)?;
        Ok(self.wait_for_sync.then(|| Ticket::hint(lsn)))
    }

    fn remove_hint(
        &mut self,
        target: NodeId,
        key: &[u8],
        version: Version,
    ) -> Result<(), DiskError> {
        self.recover_hint_log_if_due();
        self.hints.remove(target, key, version).map_err(disk_error)
    }

    fn hints(&self) -> Vec<Hint> {
        self.hints.all()
    }

    fn for_each_version(&self, f: &mut dyn FnMut(&[u8], Version, u64)) {
        self.store
            .engine()
            .for_each(|key, entry| f(key, entry.version, entry.state_digest()));
    }

    fn tombstones(&self) -> Vec<(Vec<u8>, Version)> {
        let mut out = Vec::new();
        self.store.engine().for_each(|key, entry| {
            if entry.value.is_none() {
                out.push((key.to_vec(), entry.version));
            }
        });
        out
    }

    fn expire_step(&mut self, now_ms: u64, alone: bool) -> usize {
        let what = if alone {
            ExpiredEntries::Drop
        } else {
            ExpiredEntries::Tombstone
        };
        let engine = self.store.engine();
        // A few shards per tick: every shard is visited within a second or
        // two of ticks, and shards without an expiring entry cost a read
        // lock each.
        let mut expired = 0;
        for _ in 0..EXPIRY_SHARDS_PER_STEP.min(engine.shard_count()) {
            self.expiry_cursor = (self.expiry_cursor + 1) % engine.shard_count();
            expired += engine.expire_shard(self.expiry_cursor, now_ms, what);
        }
        expired
    }

    fn purge_tombstone(&mut self, key: &[u8], version: Version) -> bool {
        self.store.engine().purge_tombstone(key, version)
    }

    fn max_timestamp(&self) -> Timestamp {
        self.store.engine().max_timestamp()
    }

    fn raise_floor(&mut self, floor: Version) -> Result<Option<Ticket>, DiskError> {
        // The floor file is fsynced before this returns.
        self.store.raise_floor(floor).map_err(disk_error)?;
        Ok(None)
    }

    fn floor(&self) -> Version {
        self.store.engine().floor()
    }

    fn scan(
        &self,
        from: u64,
        count: usize,
        keep: &mut dyn FnMut(&[u8], EntryRef<'_>) -> bool,
    ) -> ScanPage {
        self.store.engine().scan(from, count, keep)
    }

    fn stats(&self) -> DiskStats {
        let s = self.store.stats();
        let mut lines: Vec<(&'static str, String)> = vec![
            ("wal_bytes", s.wal_bytes.to_string()),
            ("wal_next_lsn", s.next_lsn.0.to_string()),
            ("wal_durable_lsn", s.durable_lsn.0.to_string()),
            ("wal_records_written", s.wal.records_written.to_string()),
            ("wal_write_rounds", s.wal.rounds.to_string()),
            ("wal_fsyncs", s.wal.syncs.to_string()),
            ("snapshots_taken", s.snapshots_taken.to_string()),
            ("wal_failed", u8::from(s.log_failed).to_string()),
            ("wal_recoveries", s.log_recoveries.to_string()),
            (
                "hint_log_failed",
                u8::from(self.hints.wal().is_poisoned()).to_string(),
            ),
        ];
        match &s.last_snapshot {
            Some(snap) => lines.extend([
                ("last_snapshot_lsn", snap.lsn.0.to_string()),
                ("last_snapshot_entries", snap.entries.to_string()),
                ("last_snapshot_bytes", snap.bytes.to_string()),
            ]),
            None => lines.push(("last_snapshot_lsn", "none".to_string())),
        }
        lines.extend([
            (
                "recovery_records_replayed",
                s.recovery.records_replayed.to_string(),
            ),
            (
                "recovery_truncated_bytes",
                s.recovery.truncated_bytes.to_string(),
            ),
            (
                "recovery_files_kept_aside",
                s.recovery.kept_aside.len().to_string(),
            ),
            ("hint_log_bytes", self.hints.wal().size_bytes().to_string()),
        ]);
        DiskStats {
            engine: s.engine,
            persistence: lines,
        }
    }
}
