//! The write-ahead log: every write is appended here before it is
//! acknowledged, and replayed from here after a restart.
//!
//! | file            | owns                                                       |
//! |-----------------|------------------------------------------------------------|
//! | [`record`]      | the record byte format, pure encode/decode                 |
//! | [`segment`]     | segment file names, listing, creation, the [`SegmentIo`] seam |
//! | `recovery`      | scanning, replaying and repairing the log at open          |
//! | `commit`        | group commit: the shared append buffer, waiting for durability |
//! | `syncer`        | the syncer thread: writes, rotates and syncs segments      |
//!
//! Invariants: lsns are assigned in append order, start at 1 (or where
//! `replay_from` says) and strictly increase through the log; a record is
//! reported durable (by [`Wal::wait_durable`], [`Wal::durable_lsn`] or an
//! [`Wal::on_durable`] callback) only once the mode's promise holds for it and
//! for every record before it; after a failed write or sync the log refuses
//! all writes ([`WalError::Poisoned`]) until reopened. The byte format and the
//! recovery rules are in `docs/wal-format.md`.
//!
//! ```no_run
//! use dkv::wal::{Lsn, Wal, WalConfig};
//! use dkv::{EntryRef, NodeId, Timestamp, Version};
//!
//! # fn main() -> Result<(), dkv::wal::WalError> {
//! let (wal, report) = Wal::open(WalConfig::new("/var/lib/dkv/wal"), Lsn(1), |record| {
//!     // apply `record` to the store
//!     # let _ = record;
//! })?;
//! println!("replayed {} records", report.records_replayed);
//! let version = Version::new(Timestamp::from_millis(1), NodeId(1));
//! let lsn = wal.append(b"key", EntryRef::value(version, b"value"))?;
//! wal.wait_durable(lsn)?; // now acknowledge the write
//! wal.close()
//! # }
//! ```

mod commit;
#[cfg(test)]
mod fault_tests;
pub mod record;
mod recovery;
pub mod segment;
mod syncer;
#[cfg(test)]
mod tests;

use std::fmt;
use std::fs;
use std::io;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crate::engine::EntryRef;
use crate::version::Version;
pub use commit::MAX_BUFFERED_BYTES;
use commit::{Shared, Start};
pub use record::DecodeError;
use segment::{io_error, SegmentInfo};
pub use segment::{SegmentIo, StdIo};
use syncer::{Active, Syncer};

/// A log sequence number. The first record is `Lsn(1)` unless `replay_from`
/// says more; `Lsn(0)` means "nothing".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Lsn(pub u64);

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// When the log calls `fdatasync`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncMode {
    /// Acknowledge a write only after a sync covering it (group commit).
    Always,
    /// Write promptly, sync every interval; acknowledge at once.
    Periodic(Duration),
    /// Write promptly, never sync (except on [`Wal::sync`] and close).
    Never,
}

/// The interval `"periodic"` parses to.
pub const DEFAULT_PERIODIC_INTERVAL: Duration = Duration::from_secs(1);

/// An `--fsync` value that is not `always`, `periodic` or `never`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown fsync mode {0:?}: expected \"always\", \"periodic\" (sync every second) or \"never\""
)]
pub struct ParseFsyncModeError(pub String);

impl FromStr for FsyncMode {
    type Err = ParseFsyncModeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "always" => Ok(FsyncMode::Always),
            "periodic" => Ok(FsyncMode::Periodic(DEFAULT_PERIODIC_INTERVAL)),
            "never" => Ok(FsyncMode::Never),
            _ => Err(ParseFsyncModeError(s.to_string())),
        }
    }
}

/// Default segment size: 64 MiB.
pub const DEFAULT_SEGMENT_BYTES: u64 = 64 << 20;

/// Where the log lives and how it syncs.
#[derive(Debug, Clone)]
pub struct WalConfig {
    /// The WAL directory, created if missing.
    pub dir: PathBuf,
    /// When to `fdatasync`.
    pub fsync: FsyncMode,
    /// A new segment starts once the current one reaches this many bytes.
    pub segment_bytes: u64,
    /// With [`FsyncMode::Always`], while the log is busy (records arrived
    /// during the last fsync), the next fsync starts no sooner than this
    /// long after the last one ended, so that one covers more records.
    /// Zero (the default) syncs back to back. A writer that waits for each
    /// record before the next never finds the log busy and never waits; a
    /// sync request, shutdown or a full buffer ends the wait.
    pub fsync_window: Duration,
}

impl WalConfig {
    /// `dir` with the defaults: [`FsyncMode::Always`], 64 MiB segments.
    pub fn new(dir: impl Into<PathBuf>) -> WalConfig {
        WalConfig {
            dir: dir.into(),
            fsync: FsyncMode::Always,
            segment_bytes: DEFAULT_SEGMENT_BYTES,
            fsync_window: Duration::ZERO,
        }
    }
}

/// One logged write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalRecord {
    /// Its position in the log.
    pub lsn: Lsn,
    /// The key written.
    pub key: Vec<u8>,
    /// The write's version.
    pub version: Version,
    /// The value; `None` is a tombstone.
    pub value: Option<Vec<u8>>,
    /// When the value expires (unix ms), if it does.
    pub expires_at: Option<u64>,
    /// The value is a counter's state (see [`crate::engine::Entry::counter`]).
    pub counter: bool,
}

impl WalRecord {
    /// The record's entry, borrowed.
    pub fn entry(&self) -> crate::engine::EntryRef<'_> {
        crate::engine::EntryRef {
            counter: self.counter && self.value.is_some(),
            ..crate::engine::EntryRef::new(self.version, self.value.as_deref(), self.expires_at)
        }
    }
}

/// Why recovery stopped before the end of the log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DamageReason {
    /// The bytes there are not a valid record.
    #[error("{0}")]
    Record(DecodeError),
    /// A valid record whose lsn is below its segment's base or not above
    /// the previous record's.
    #[error("record lsn {found} where at least {at_least} was expected")]
    LsnOutOfOrder {
        /// The smallest lsn that would have been in order.
        at_least: Lsn,
        /// The lsn found.
        found: Lsn,
    },
    /// The segment ends before the next segment's base: records are missing
    /// from its tail (or it holds none at all).
    #[error(
        "the segment ends {}, but the next segment begins at lsn {next_base}",
        match .expected {
            Some(lsn) => format!("before lsn {lsn}"),
            None => "with no records".to_string(),
        }
    )]
    MissingRecords {
        /// One past this segment's last lsn, if it has records.
        expected: Option<Lsn>,
        /// The next segment's base.
        next_base: Lsn,
    },
}

impl DamageReason {
    /// Whether the log simply ends early here.
    pub fn is_incomplete(&self) -> bool {
        matches!(self, DamageReason::Record(e) if e.is_incomplete())
    }
}

/// Where and why recovery stopped early.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DamageReport {
    /// The segment holding the damage.
    pub segment: PathBuf,
    /// Byte offset of the first bad record in it.
    pub offset: u64,
    /// What was wrong.
    pub reason: DamageReason,
    /// True if it was a torn tail, simply truncated; false if the rest of
    /// the log was kept aside.
    pub torn_tail: bool,
}

/// What [`Wal::open`] found and did.
#[derive(Debug, Clone, Default)]
pub struct RecoveryReport {
    /// Records handed to `apply`.
    pub records_replayed: u64,
    /// Valid records below `replay_from`, checked but not applied.
    pub records_skipped: u64,
    /// Encoded bytes (headers included) of the records replayed.
    pub bytes_replayed: u64,
    /// Bytes cut from the end of the damaged segment (torn or kept aside).
    pub truncated_bytes: u64,
    /// Files the damage was moved to: never replayed, never deleted.
    pub kept_aside: Vec<PathBuf>,
    /// Where replay stopped early, if it did.
    pub damage: Option<DamageReport>,
    /// Live segments after recovery.
    pub segments: usize,
    /// The lsn the next append gets.
    pub next_lsn: Lsn,
}

/// A WAL failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WalError {
    /// A file operation failed.
    #[error("WAL I/O error on {}: {source}", path.display())]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The write or sync covering this record failed: it is not durable,
    /// and the log is poisoned.
    #[error("WAL {op} failed on {}: {source}; the record is not durable and the log refuses writes until reopened", path.display())]
    SyncFailed {
        /// `"write"`, `"fdatasync"`, `"segment creation"`.
        op: &'static str,
        /// The segment concerned.
        path: PathBuf,
        /// The OS error, shared by every waiter it failed.
        source: Arc<io::Error>,
    },
    /// An earlier write or sync failed.
    #[error(
        "a previous write or fsync of the log failed; it refuses writes until it is started \
         afresh from a snapshot (the node retries that every few seconds) or reopened"
    )]
    Poisoned,
    /// [`Wal::revive`] on a log that has not failed.
    #[error("the log has not failed; there is nothing to revive")]
    NotPoisoned,
    /// The record's payload is over [`record::MAX_PAYLOAD_LEN`].
    #[error("WAL record payload of {len} bytes exceeds the limit of {max} bytes")]
    RecordTooLarge {
        /// The payload length it would need.
        len: u64,
        /// The limit.
        max: u64,
    },
}

/// What [`Wal::on_durable`] callbacks receive: the highest durable lsn after
/// a round, or the error that poisoned the log (shared, so clonable).
pub type DurableResult = Result<Lsn, Arc<WalError>>;

/// A durability callback. It runs on the syncer thread, which waits for it:
/// it must be quick, and must not call [`Wal::on_durable`] or any method that
/// waits for the syncer (`wait_durable`, `sync`, `rotate`, `close`). A panic
/// in it is caught and logged.
pub type DurableCallback = Box<dyn Fn(DurableResult) + Send + Sync>;

/// Counters for monitoring and benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WalStats {
    /// Records written to segment files by this process.
    pub records_written: u64,
    /// Bytes written to segment files by this process.
    pub bytes_written: u64,
    /// Syncer rounds (one write of everything queued).
    pub rounds: u64,
    /// `fdatasync` calls.
    pub syncs: u64,
}

/// The write-ahead log. `Send + Sync`: share it as `Arc<Wal>`.
pub struct Wal {
    shared: Arc<Shared>,
    syncer: parking_lot::Mutex<Option<JoinHandle<()>>>,
}

impl Wal {
    /// Opens the log in `config.dir` (creating it if needed), recovers it,
    /// and replays every valid record with lsn `>= replay_from`, in order,
    /// through `apply`. The next lsn is the largest of: one past the last
    /// valid record seen, `replay_from`, 1, and the base of the last segment.
    pub fn open(
        config: WalConfig,
        replay_from: Lsn,
        apply: impl FnMut(WalRecord),
    ) -> Result<(Wal, RecoveryReport), WalError> {
        Wal::open_with_io(config, Arc::new(StdIo), replay_from, apply)
    }

    /// [`Wal::open`] with the file operations of `io` (fault injection).
    pub fn open_with_io(
        config: WalConfig,
        io: Arc<dyn SegmentIo>,
        replay_from: Lsn,
        mut apply: impl FnMut(WalRecord),
    ) -> Result<(Wal, RecoveryReport), WalError> {
        let dir = config.dir.clone();
        if !dir.is_dir() {
            fs::create_dir_all(&dir).map_err(|e| io_error(&dir, e))?;
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                io.sync_dir(parent).map_err(|e| io_error(parent, e))?;
            }
        }
        let recovered = recovery::recover(&dir, &*io, replay_from, &mut apply)?;
        let mut report = recovered.report;
        let mut segments = recovered.segments;
        let after_last = recovered.last_lsn.map_or(1, |lsn| lsn.saturating_add(1));
        let mut next_lsn = after_last.max(replay_from.0).max(1);
        if let Some(last) = segments.last() {
            next_lsn = next_lsn.max(last.base.0);
        }
        let active = match segments.last() {
            Some(last) => {
                let file = segment::open_segment(last)?;
                if config.fsync != FsyncMode::Never {
                    io.sync_data(&file).map_err(|e| io_error(&last.path, e))?;
                }
                Active {
                    file,
                    segment: last.clone(),
                }
            }
            None => {
                let (file, segment) = segment::create_segment(&dir, &*io, Lsn(next_lsn))?;
                segments.push(segment.clone());
                Active { file, segment }
            }
        };
        report.next_lsn = Lsn(next_lsn);
        report.segments = segments.len();
        let start = Start {
            next_lsn,
            active_len: active.segment.len,
            active_last: recovered.active_last.unwrap_or(0),
            total_bytes: segments.iter().map(|s| s.len).sum(),
        };
        let shared = Arc::new(Shared::new(config, io, segments, &start));
        let handle = spawn_syncer(&shared, active)?;
        Ok((
            Wal {
                shared,
                syncer: parking_lot::Mutex::new(Some(handle)),
            },
            report,
        ))
    }

    /// Starts the log afresh after a failure poisoned it: every segment is
    /// deleted and a new one begins at [`Wal::next_lsn`], which is returned;
    /// the records below it count as durable. Sound only once everything
    /// below that lsn is durable elsewhere: the store calls it right after
    /// writing a snapshot at that lsn. Old segments are deleted, not kept,
    /// because after a failed write or fsync their contents prove nothing
    /// (fsyncgate), and a damaged record in the middle of the log would make
    /// the next recovery set aside everything after it.
    ///
    /// Errors if the log is not poisoned ([`WalError::NotPoisoned`]) or the
    /// new segment cannot be made (the log stays poisoned; try again).
    pub fn revive(&self) -> Result<Lsn, WalError> {
        let shared = &self.shared;
        if !shared.is_poisoned() {
            return Err(WalError::NotPoisoned);
        }
        // The syncer exits as soon as it publishes the failure.
        if let Some(handle) = self.syncer.lock().take() {
            if handle.join().is_err() {
                log::error!("the WAL syncer thread panicked");
            }
        }
        let base = shared.next_lsn();
        let dir = &shared.config.dir;
        let (file, segment) = segment::create_segment(dir, &*shared.io, base)?;
        let old: Vec<SegmentInfo> =
            std::mem::replace(&mut *shared.segments.lock(), vec![segment.clone()]);
        for victim in &old {
            match fs::remove_file(&victim.path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => log::warn!(
                    "cannot delete old WAL segment {}: {e}",
                    victim.path.display()
                ),
            }
        }
        shared.io.sync_dir(dir).map_err(|e| io_error(dir, e))?;
        shared.restart(base.0);
        let handle = spawn_syncer(shared, Active { file, segment })?;
        *self.syncer.lock() = Some(handle);
        log::warn!(
            "WAL in {} started afresh at lsn {base} after a failure; writes resume",
            dir.display()
        );
        shared.call_back(Ok(Lsn(base.0 - 1)));
        Ok(base)
    }

    /// Encodes and queues one record (`value: None` is a tombstone); returns
    /// its lsn at once. It blocks only while [`MAX_BUFFERED_BYTES`] are
    /// queued. Errors: [`WalError::RecordTooLarge`], [`WalError::Poisoned`].
    pub fn append(&self, key: &[u8], entry: EntryRef<'_>) -> Result<Lsn, WalError> {
        self.shared.append(key, entry)
    }

    /// Always: blocks until `lsn` is synced, or returns the error of the
    /// round that covered it ([`WalError::SyncFailed`]), or
    /// [`WalError::Poisoned`] if an earlier round failed. An lsn not yet
    /// appended is waited for too. Periodic/Never: `Ok` at once unless the
    /// log is poisoned.
    pub fn wait_durable(&self, lsn: Lsn) -> Result<(), WalError> {
        self.shared.wait_durable(lsn)
    }

    /// Registers a callback the syncer calls after each round that advances
    /// the durable lsn, with that lsn, and once with the error that poisons
    /// the log. A reactor uses it to release replies without a blocked
    /// thread per write.
    pub fn on_durable(&self, callback: DurableCallback) {
        self.shared.on_durable(callback);
    }

    /// The highest lsn the mode's promise holds for, with every lsn before
    /// it: synced (Always, Periodic) or handed to the OS (Never).
    pub fn durable_lsn(&self) -> Lsn {
        self.shared.durable_lsn()
    }

    /// The lsn the next append will get.
    pub fn next_lsn(&self) -> Lsn {
        self.shared.next_lsn()
    }

    /// Whether a failed write or sync has poisoned the log.
    pub fn is_poisoned(&self) -> bool {
        self.shared.is_poisoned()
    }

    /// Holds back the syncer while the caller appends a burst, so that one
    /// round (one fsync in Always mode) covers all of it: the reactor holds
    /// the log for each turn of its loop, as Redis fsyncs once per event
    /// loop iteration. Appends still return at once; the syncer starts when
    /// the guard drops.
    pub fn hold(&self) -> HoldGuard<'_> {
        self.shared.hold();
        HoldGuard { wal: self }
    }

    /// Writes and fsyncs everything appended so far, in any mode.
    pub fn sync(&self) -> Result<(), WalError> {
        self.shared.sync()
    }

    /// Starts a new segment and returns the lsn it begins at: `next_lsn` at
    /// that moment, atomically with respect to appends. Every record in
    /// earlier segments is below it. If the active segment is still empty it
    /// is kept (it already begins there).
    pub fn rotate(&self) -> Result<Lsn, WalError> {
        self.shared.rotate()
    }

    /// Deletes every segment all of whose records are below `lsn` (never the
    /// active one), fsyncs the directory, and returns how many it deleted.
    pub fn remove_segments_before(&self, lsn: Lsn) -> Result<usize, WalError> {
        let shared = &self.shared;
        let victims: Vec<_> = {
            let mut segments = shared.segments.lock();
            // Segment i holds only lsns below the base of segment i + 1.
            let count = segments
                .windows(2)
                .take_while(|pair| pair[1].base <= lsn)
                .count();
            segments.drain(..count).collect()
        };
        for (index, victim) in victims.iter().enumerate() {
            match fs::remove_file(&victim.path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    let mut segments = shared.segments.lock();
                    segments.splice(0..0, victims[index..].iter().cloned());
                    return Err(io_error(&victim.path, e));
                }
            }
            shared.forget_bytes(victim.len);
        }
        if !victims.is_empty() {
            let dir = &shared.config.dir;
            shared.io.sync_dir(dir).map_err(|e| io_error(dir, e))?;
        }
        Ok(victims.len())
    }

    /// Bytes written to all live segments (the snapshot trigger).
    pub fn size_bytes(&self) -> u64 {
        self.shared.size_bytes()
    }

    /// Counters since open.
    pub fn stats(&self) -> WalStats {
        self.shared.stats()
    }

    /// The configuration the log was opened with.
    pub fn config(&self) -> &WalConfig {
        &self.shared.config
    }

    /// Syncs, stops the syncer thread and closes the files.
    pub fn close(mut self) -> Result<(), WalError> {
        let synced = self.shared.sync();
        self.stop();
        synced
    }

    fn stop(&mut self) {
        if let Some(handle) = self.syncer.get_mut().take() {
            self.shared.shut_down();
            if handle.join().is_err() {
                log::error!("the WAL syncer thread panicked");
            }
        }
    }
}

fn spawn_syncer(shared: &Arc<Shared>, active: Active) -> Result<JoinHandle<()>, WalError> {
    let syncer = Syncer::new(Arc::clone(shared), active);
    thread::Builder::new()
        .name("dkv-wal-sync".into())
        .spawn(move || syncer.run())
        .map_err(|e| io_error(&shared.config.dir, e))
}

impl Drop for Wal {
    fn drop(&mut self) {
        self.stop();
    }
}

impl fmt::Debug for Wal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wal")
            .field("dir", &self.shared.config.dir)
            .field("fsync", &self.shared.config.fsync)
            .field("next_lsn", &self.next_lsn())
            .field("durable_lsn", &self.durable_lsn())
            .finish()
    }
}

/// Returned by [`Wal::hold`]; the syncer may start once it drops.
#[must_use = "the hold ends when the guard drops"]
pub struct HoldGuard<'a> {
    wal: &'a Wal,
}

impl Drop for HoldGuard<'_> {
    fn drop(&mut self) {
        self.wal.shared.release();
    }
}
