//! [`Store`]: one node's durable key-value store.
//!
//! A store is the [`Engine`] made durable: it opens a data directory (the
//! newest snapshot, then the WAL replayed over it), stamps and applies
//! writes, logs them, and takes snapshots that compact the log. The node
//! server and the C ABI are built on it.
//!
//! Ordering invariant: a write is applied to the engine *before* its WAL
//! record is appended. A snapshot that begins at WAL sequence `S` (the
//! sequence [`Wal::rotate`] hands out) therefore already holds every write
//! whose record is below `S`, and replaying from `S` restores the rest. The
//! write is acknowledged only once [`Wal::wait_durable`] says its record is
//! as durable as the fsync mode promises; a write that fails there was
//! possibly applied and is reported as failed (its outcome is unknown, as
//! with any failed write in a replicated store).
//!
//! ```no_run
//! use dkv::{NodeId, Store, StoreConfig};
//! let store = Store::open(StoreConfig::new(NodeId(1), "./dkv-data/node-1"))?;
//! store.put(b"greeting", b"hello")?;
//! assert_eq!(store.get(b"greeting").as_deref(), Some(&b"hello"[..]));
//! store.close()?;
//! # Ok::<(), dkv::StoreError>(())
//! ```

mod config;

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::clock::{wall_millis, ClockDriftError, HybridClock};
use crate::engine::{Engine, EngineStats, Entry, EntryRef, ShardCountError, MAX_KEY_LEN};
use crate::snapshot::{self, SnapshotError, SnapshotInfo};
use crate::version::{Timestamp, Version};
use crate::wal::{record, Lsn, RecoveryReport, Wal, WalConfig, WalError};

pub use config::{StoreConfig, DEFAULT_TOMBSTONE_GRACE, MAX_FSYNC_WINDOW};

/// A store error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The write-ahead log failed.
    #[error(transparent)]
    Wal(#[from] WalError),
    /// Writing or loading a snapshot failed.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// The configuration is unusable.
    #[error("invalid store configuration: {0}")]
    Config(#[from] ShardCountError),
    /// A key longer than the engine can hold.
    #[error("key of {0} bytes is too large")]
    KeyTooLarge(usize),
    /// A replicated write stamped too far in the future.
    #[error(transparent)]
    Clock(#[from] ClockDriftError),
}

/// A write applied to the engine and queued in the WAL, not yet durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "a submitted write is not durable until its lsn is"]
pub struct Submitted {
    /// The write's version.
    pub version: Version,
    /// Whether it won Last-Write-Wins (a losing write is not logged).
    pub applied: bool,
    /// Whether the key held a value (not a tombstone) just before.
    pub was_live: bool,
    /// That value's expiry, if it had one.
    pub held_expires_at: Option<u64>,
    /// The version the key held just before, if any.
    pub previous: Option<Version>,
    /// The held and the stored entries' state digests (see
    /// [`crate::engine::ApplyOutcome`]).
    pub held_state: u64,
    /// See `held_state`.
    pub state: u64,
    /// Wait for this sequence to be durable before acknowledging. For a
    /// losing write it is the latest queued sequence, which covers the
    /// newer write that beat it.
    pub lsn: Lsn,
}

/// Counters for INFO, the C ABI and benchmarks.
#[derive(Debug, Clone)]
pub struct StoreStats {
    /// Keys, tombstones and bytes in memory.
    pub engine: EngineStats,
    /// Bytes in live WAL segments.
    pub wal_bytes: u64,
    /// Highest durable WAL sequence.
    pub durable_lsn: Lsn,
    /// Next WAL sequence to be handed out.
    pub next_lsn: Lsn,
    /// Snapshots taken since open.
    pub snapshots_taken: u64,
    /// Times the data log failed and was started afresh since open.
    pub log_recoveries: u64,
    /// Whether the data log has failed and refuses writes now.
    pub log_failed: bool,
    /// The newest snapshot on disk, if any.
    pub last_snapshot: Option<SnapshotInfo>,
    /// What recovery did at open.
    pub recovery: RecoveryReport,
    /// The data log's writes and fsyncs since open.
    pub wal: crate::wal::WalStats,
}

struct Shared {
    config: StoreConfig,
    engine: Engine,
    wal: Wal,
    clock: Mutex<HybridClock>,
    /// Held for the whole of a snapshot: one at a time.
    snapshot_running: Mutex<()>,
    /// Held briefly to read or record snapshot results.
    snapshot_state: Mutex<SnapshotState>,
    recovery: RecoveryReport,
    stop: Mutex<bool>,
    stop_signal: Condvar,
}

struct SnapshotState {
    last: Option<SnapshotInfo>,
    last_at: Instant,
    taken: u64,
    /// Times the data log was started afresh after a failure.
    log_recoveries: u64,
}

/// One node's durable store. Cheap to share: clone the `Arc` around it, or
/// call its methods from many threads (`Store: Sync`).
pub struct Store {
    shared: Arc<Shared>,
    snapshotter: Option<JoinHandle<()>>,
}

impl Store {
    /// Opens the store: loads the newest snapshot, replays the WAL over it,
    /// and starts the background snapshotter.
    pub fn open(config: StoreConfig) -> Result<Store, StoreError> {
        let engine = Engine::new(config.shards)?;
        // The flush floor first: nothing at or below it may come back from
        // the snapshot or the log.
        engine.raise_floor(snapshot::floor::read(&config.snapshot_dir)?);
        let loaded = snapshot::load_latest(&config.snapshot_dir, &engine)?;
        let replay_from = loaded.as_ref().map_or(Lsn(1), |info| info.lsn);
        let wal_config = WalConfig {
            dir: config.wal_dir.clone(),
            fsync: config.fsync,
            segment_bytes: config.wal_segment_bytes,
            fsync_window: config.fsync_window,
        };
        let (wal, recovery) = Wal::open(wal_config, replay_from, |record| {
            engine.apply(&record.key, record.entry());
        })?;
        let mut clock = HybridClock::new(config.max_clock_drift);
        clock.advance_to(engine.max_timestamp());
        log::info!(
            "store opened: {} keys, snapshot {:?}, {} WAL records replayed",
            engine.len(),
            loaded.as_ref().map(|s| &s.path),
            recovery.records_replayed
        );
        let shared = Arc::new(Shared {
            config,
            engine,
            wal,
            clock: Mutex::new(clock),
            snapshot_running: Mutex::new(()),
            snapshot_state: Mutex::new(SnapshotState {
                last: loaded,
                last_at: Instant::now(),
                taken: 0,
                log_recoveries: 0,
            }),
            recovery,
            stop: Mutex::new(false),
            stop_signal: Condvar::new(),
        });
        // Always started: besides timed snapshots it starts a failed log
        // afresh once the disk takes writes again.
        let snapshotter = {
            let shared = Arc::clone(&shared);
            Some(
                std::thread::Builder::new()
                    .name("dkv-snapshot".into())
                    .spawn(move || run_snapshotter(&shared))
                    .map_err(|source| WalError::Io {
                        path: "snapshot thread".into(),
                        source,
                    })?,
            )
        };
        Ok(Store {
            shared,
            snapshotter,
        })
    }

    /// The value of `key`, or `None` if it is missing or deleted.
    pub fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        let entry = self.shared.engine.get(key)?;
        if entry.live_at(wall_millis()) {
            entry.value
        } else {
            None
        }
    }

    /// The entry of `key` with its version, tombstones included.
    pub fn get_entry(&self, key: &[u8]) -> Option<Entry> {
        self.shared.engine.get(key)
    }

    /// Writes `value` under `key` with a fresh version and returns once it
    /// is as durable as the fsync mode promises.
    pub fn put(&self, key: &[u8], value: &[u8]) -> Result<Version, StoreError> {
        let submitted = self.submit(key, EntryRef::value(self.stamp(), value))?;
        self.shared.wal.wait_durable(submitted.lsn)?;
        Ok(submitted.version)
    }

    /// Deletes `key` (writes a tombstone) and returns whether it held a
    /// live value.
    pub fn delete(&self, key: &[u8]) -> Result<bool, StoreError> {
        let existed = self.get(key).is_some();
        let submitted = self.submit(key, EntryRef::tombstone(self.stamp()))?;
        self.shared.wal.wait_durable(submitted.lsn)?;
        Ok(existed)
    }

    /// Applies a write stamped elsewhere (replication, repair, hints):
    /// moves the clock past its timestamp, keeps the larger version, and
    /// returns once durable whether it won.
    pub fn apply(&self, key: &[u8], entry: &Entry) -> Result<bool, StoreError> {
        self.observe(entry.version.timestamp)?;
        let submitted = self.submit(key, entry.as_ref())?;
        self.shared.wal.wait_durable(submitted.lsn)?;
        Ok(submitted.applied)
    }

    /// A fresh version for a write this node coordinates.
    pub fn stamp(&self) -> Version {
        let timestamp = self.shared.clock.lock().tick(wall_millis());
        Version::new(timestamp, self.shared.config.node_id)
    }

    /// Moves the clock past a peer's timestamp, refusing one too far ahead.
    pub fn observe(&self, timestamp: Timestamp) -> Result<(), ClockDriftError> {
        self.shared.clock.lock().observe(timestamp, wall_millis())
    }

    /// Applies a write and queues its WAL record without waiting for disk:
    /// for callers that release the acknowledgement later (the reactor
    /// registers [`Wal::on_durable`]; others call [`Store::wait_durable`]).
    pub fn submit(&self, key: &[u8], entry: EntryRef<'_>) -> Result<Submitted, StoreError> {
        if key.len() > MAX_KEY_LEN {
            return Err(StoreError::KeyTooLarge(key.len()));
        }
        let wal = &self.shared.wal;
        // A failed log takes nothing: refuse before the engine sees it, so
        // memory holds no write beyond the failed round's.
        if wal.is_poisoned() {
            return Err(WalError::Poisoned.into());
        }
        // Refuse an oversized record before the engine sees it.
        record::encoded_len(key.len(), entry).map_err(|e| WalError::RecordTooLarge {
            len: e.len,
            max: e.max,
        })?;
        let outcome = self.shared.engine.apply_with_outcome(key, entry);
        let lsn = if outcome.won {
            wal.append(key, entry)?
        } else {
            Lsn(wal.next_lsn().0.saturating_sub(1))
        };
        Ok(Submitted {
            version: entry.version,
            applied: outcome.won,
            was_live: outcome.was_live,
            held_expires_at: outcome.held_expires_at,
            previous: outcome.previous,
            held_state: outcome.held_state,
            state: outcome.state,
            lsn,
        })
    }

    /// `FLUSHDB`: records `floor` durably, then drops every entry at or
    /// below it; returns how many were dropped. Writes at or below it are
    /// refused from then on, after a restart too.
    pub fn raise_floor(&self, floor: Version) -> Result<usize, StoreError> {
        if floor <= self.shared.engine.floor() {
            return Ok(0);
        }
        snapshot::floor::write(&self.shared.config.snapshot_dir, floor)?;
        Ok(self.shared.engine.raise_floor(floor))
    }

    /// Blocks until `lsn` is as durable as the fsync mode promises.
    pub fn wait_durable(&self, lsn: Lsn) -> Result<(), StoreError> {
        Ok(self.shared.wal.wait_durable(lsn)?)
    }

    /// The write-ahead log, for registering durability callbacks.
    pub fn wal(&self) -> &Wal {
        &self.shared.wal
    }

    /// The in-memory engine (read-only use: writes must go through the
    /// store to be logged).
    pub fn engine(&self) -> &Engine {
        &self.shared.engine
    }

    /// Takes a snapshot now and compacts the WAL behind it.
    pub fn snapshot(&self) -> Result<SnapshotInfo, StoreError> {
        take_snapshot(&self.shared)
    }

    /// Counters for monitoring.
    pub fn stats(&self) -> StoreStats {
        let snapshots = self.shared.snapshot_state.lock();
        StoreStats {
            engine: self.shared.engine.stats(),
            wal_bytes: self.shared.wal.size_bytes(),
            durable_lsn: self.shared.wal.durable_lsn(),
            next_lsn: self.shared.wal.next_lsn(),
            snapshots_taken: snapshots.taken,
            log_recoveries: snapshots.log_recoveries,
            log_failed: self.shared.wal.is_poisoned(),
            last_snapshot: snapshots.last.clone(),
            recovery: self.shared.recovery.clone(),
            wal: self.shared.wal.stats(),
        }
    }

    /// The configuration the store was opened with.
    pub fn config(&self) -> &StoreConfig {
        &self.shared.config
    }

    /// Stops the snapshotter, syncs the WAL and closes it.
    pub fn close(mut self) -> Result<(), StoreError> {
        self.stop_snapshotter();
        self.shared.wal.sync()?;
        Ok(())
    }

    fn stop_snapshotter(&mut self) {
        *self.shared.stop.lock() = true;
        self.shared.stop_signal.notify_all();
        if let Some(handle) = self.snapshotter.take() {
            if handle.join().is_err() {
                log::error!("snapshot thread panicked");
            }
        }
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        self.stop_snapshotter();
    }
}

fn take_snapshot(shared: &Shared) -> Result<SnapshotInfo, StoreError> {
    let _running = shared.snapshot_running.lock();
    let grace_millis = shared.config.tombstone_grace.as_millis() as u64;
    let horizon = Timestamp::from_millis(wall_millis().saturating_sub(grace_millis));
    let purged = if shared.config.purge_tombstones_by_age {
        shared.engine.purge_tombstones(horizon)
    } else {
        0
    };
    let lsn = shared.wal.rotate()?;
    let info = snapshot::write(&shared.config.snapshot_dir, &shared.engine, lsn)?;
    let removed = shared.wal.remove_segments_before(lsn)?;
    log::info!(
        "snapshot {} at lsn {}: {} entries, {} bytes; {} tombstones purged, {} WAL segments removed",
        info.path.display(),
        lsn.0,
        info.entries,
        info.bytes,
        purged,
        removed
    );
    record_snapshot(shared, &info);
    Ok(info)
}

/// How often a failed data log is tried again.
const LOG_RECOVERY_INTERVAL: Duration = Duration::from_secs(2);

/// Starts the data log afresh after a failure, without a restart: a
/// snapshot of memory at the log's next lsn (every write the engine holds,
/// acknowledged or not: the engine is written first), then the log begins
/// a new segment there and the old ones go. Nothing that was not durable
/// is acknowledged: writes that failed with the log were answered with an
/// error, and may or may not survive, as any write whose outcome was not
/// reported. Fails, leaving the log poisoned, while the disk still refuses.
fn recover_log(shared: &Shared) -> Result<SnapshotInfo, StoreError> {
    let _running = shared.snapshot_running.lock();
    let lsn = shared.wal.next_lsn();
    let info = snapshot::write(&shared.config.snapshot_dir, &shared.engine, lsn)?;
    let base = shared.wal.revive()?;
    debug_assert_eq!(base, lsn, "nothing appends to a poisoned log");
    log::warn!(
        "the data log recovered: snapshot {} at lsn {} holds every write so far ({} entries), \
         and the log goes on from there",
        info.path.display(),
        lsn.0,
        info.entries
    );
    record_snapshot(shared, &info);
    shared.snapshot_state.lock().log_recoveries += 1;
    Ok(info)
}

/// Notes `info` as the newest snapshot, taken now.
fn record_snapshot(shared: &Shared, info: &SnapshotInfo) {
    let mut state = shared.snapshot_state.lock();
    state.last = Some(info.clone());
    state.last_at = Instant::now();
    state.taken += 1;
}

fn run_snapshotter(shared: &Shared) {
    let poll = Duration::from_millis(100);
    let mut recovery_tried: Option<Instant> = None;
    loop {
        {
            let mut stop = shared.stop.lock();
            if !*stop {
                shared.stop_signal.wait_for(&mut stop, poll);
            }
            if *stop {
                return;
            }
        }
        if shared.wal.is_poisoned() {
            let due = recovery_tried.is_none_or(|at| at.elapsed() >= LOG_RECOVERY_INTERVAL);
            if due {
                recovery_tried = Some(Instant::now());
                if let Err(e) = recover_log(shared) {
                    log::error!("the data log failed and cannot start afresh yet: {e}");
                }
            }
            continue;
        }
        let due_by_time = shared
            .config
            .snapshot_interval
            .is_some_and(|every| shared.snapshot_state.lock().last_at.elapsed() >= every);
        let due_by_size = shared
            .config
            .snapshot_wal_bytes
            .is_some_and(|limit| shared.wal.size_bytes() >= limit);
        if due_by_time || due_by_size {
            if let Err(e) = take_snapshot(shared) {
                // The old snapshot and the WAL are intact; try again later.
                log::error!("snapshot failed: {e}");
                shared.snapshot_state.lock().last_at = Instant::now();
            }
        }
    }
}

#[cfg(test)]
mod tests;
