//! [`StoreConfig`]: where a store keeps its files and how it syncs them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::clock::DEFAULT_MAX_DRIFT;
use crate::engine::DEFAULT_SHARDS;
use crate::version::NodeId;
use crate::wal::FsyncMode;

/// Tombstones are kept this long before they may be purged (Cassandra's
/// `gc_grace_seconds` default): long enough for hints and repair to finish.
pub const DEFAULT_TOMBSTONE_GRACE: Duration = Duration::from_secs(10 * 24 * 3600);

/// Everything [`crate::Store::open`] needs.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// This node's id: stamped into the versions of the writes it issues.
    pub node_id: NodeId,
    /// Directory of the WAL segments.
    pub wal_dir: PathBuf,
    /// Directory of the snapshots.
    pub snapshot_dir: PathBuf,
    /// When a write is acknowledged relative to its fsync.
    pub fsync: FsyncMode,
    /// The data log's pause between fsyncs while busy
    /// ([`crate::wal::WalConfig::fsync_window`]); zero syncs back to back.
    pub fsync_window: Duration,
    /// Number of engine shards, a power of two.
    pub shards: usize,
    /// A WAL segment is closed and a new one started past this size.
    pub wal_segment_bytes: u64,
    /// Take a snapshot this often (`None`: never on a timer).
    pub snapshot_interval: Option<Duration>,
    /// Take a snapshot when the WAL passes this many bytes (`None`: never
    /// on size).
    pub snapshot_wal_bytes: Option<u64>,
    /// Tombstones older than this are purged when a snapshot is taken.
    pub tombstone_grace: Duration,
    /// Whether snapshots purge tombstones by age. A node of a cluster turns
    /// it off: there its replication core purges a tombstone only once
    /// anti-entropy has found every replica holding it.
    pub purge_tombstones_by_age: bool,
    /// Timestamps from peers further ahead of the wall clock are refused.
    pub max_clock_drift: Duration,
}

/// The longest group commit window a store takes
/// ([`StoreConfig::fsync_window`]).
pub const MAX_FSYNC_WINDOW: Duration = Duration::from_secs(1);

impl StoreConfig {
    /// Why the group commit window cannot be used, if it cannot: a window
    /// spaces the fsyncs of `FsyncMode::Always` only, and is at most
    /// [`MAX_FSYNC_WINDOW`].
    pub fn fsync_window_problem(&self) -> Option<String> {
        if self.fsync_window.is_zero() {
            None
        } else if self.fsync != FsyncMode::Always {
            Some("an fsync window applies to fsync always only".into())
        } else if self.fsync_window > MAX_FSYNC_WINDOW {
            Some(format!(
                "an fsync window is at most one second, not {} us",
                self.fsync_window.as_micros()
            ))
        } else {
            None
        }
    }

    /// Defaults with WAL and snapshots under `data_dir` (`wal/` and
    /// `snapshots/`), fsync always, 32 shards, a snapshot every 10 minutes
    /// or when the WAL passes 256 MiB.
    pub fn new(node_id: NodeId, data_dir: impl AsRef<Path>) -> StoreConfig {
        let data_dir = data_dir.as_ref();
        StoreConfig {
            node_id,
            wal_dir: data_dir.join("wal"),
            snapshot_dir: data_dir.join("snapshots"),
            fsync: FsyncMode::Always,
            fsync_window: Duration::ZERO,
            shards: DEFAULT_SHARDS,
            wal_segment_bytes: 64 << 20,
            snapshot_interval: Some(Duration::from_secs(600)),
            snapshot_wal_bytes: Some(256 << 20),
            tombstone_grace: DEFAULT_TOMBSTONE_GRACE,
            purge_tombstones_by_age: true,
            max_clock_drift: DEFAULT_MAX_DRIFT,
        }
    }
}
