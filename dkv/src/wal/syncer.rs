//! The syncer thread: the only writer of segment files.
//!
//! Each *round* it takes everything appenders queued (one swap under the
//! state mutex), writes it to the active segment, starting new segments at
//! the round's marks, and syncs as the mode asks: always (Always), once the
//! interval has passed (Periodic), or only when `sync` or shutdown asks
//! (Never). Then it publishes the durable lsn, wakes that round's waiters and
//! calls the durability callbacks.
//!
//! A new segment that cannot be created (no descriptors left, say) is not a
//! failure: nothing written is in doubt, so the records go on into the
//! active segment and the switch is tried again next round (logged at most
//! once a second).
//!
//! Invariants: a segment is synced before the next one is started (except in
//! Never mode, where it is remembered and synced by the next `sync`); the
//! durable lsn only moves forward, and only past records every byte of which
//! (and of every earlier record) the mode's promise covers; after a failed
//! round the thread publishes the failure and exits without touching the
//! files again.

use std::fs::File;
use std::io;
use std::mem;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

/// How long Periodic and Never modes let records gather before writing.
const COALESCE_WINDOW: std::time::Duration = std::time::Duration::from_millis(1);
/// ... unless this much is already buffered.
const COALESCE_BYTES: usize = 1 << 20;

use super::commit::{Failure, Mark, Shared};
use super::segment::{segment_file_name, SegmentInfo};
use super::{FsyncMode, Lsn};

/// The active segment, owned by the syncer.
pub(crate) struct Active {
    pub(crate) file: File,
    pub(crate) segment: SegmentInfo,
}

/// An IO failure inside a round.
struct RoundError {
    op: &'static str,
    path: PathBuf,
    source: io::Error,
}

/// The syncer thread's state.
pub(crate) struct Syncer {
    shared: Arc<Shared>,
    active: Active,
    /// Bytes written to the active segment since its last sync.
    dirty: bool,
    /// Sealed segments written without a sync (Never mode); `sync` syncs them.
    unsynced_sealed: Vec<PathBuf>,
    written: u64,
    synced: u64,
    last_sync: Instant,
    /// Records arrived while the last round wrote and synced: the log is
    /// busy, and a round may wait out the fsync window.
    busy: bool,
    spare: Vec<u8>,
    spare_marks: Vec<Mark>,
    /// A segment switch that could not create its file: tried again at the
    /// start of the next round, with that round's first lsn as base.
    roll_pending: bool,
    /// When a failed creation was last logged.
    creation_logged: Option<Instant>,
}

/// Marks the syncer gone when its thread ends, even by panic, so no caller
/// waits for it forever.
struct Gone<'a>(&'a Shared);

impl Drop for Gone<'_> {
    fn drop(&mut self) {
        let shared = self.0;
        let mut st = shared.state.lock();
        st.syncer_gone = true;
        if !st.shutdown && st.failure.is_none() {
            log::error!("WAL syncer thread stopped unexpectedly; the log is poisoned");
            let last = st.next_lsn - 1;
            st.failure = Some(Failure {
                op: "sync thread",
                path: shared.config.dir.clone(),
                source: Arc::new(io::Error::other("the WAL syncer thread stopped")),
                first: st.durable + 1,
                last,
                round: st.rounds_taken,
            });
            shared.poisoned.store(true, Ordering::Release);
        }
        drop(st);
        shared.wake_all_waiters();
    }
}

impl Syncer {
    pub(crate) fn new(shared: Arc<Shared>, active: Active) -> Syncer {
        let durable = shared.durable.load(Ordering::Acquire);
        Syncer {
            shared,
            active,
            dirty: false,
            unsynced_sealed: Vec::new(),
            written: durable,
            synced: durable,
            last_sync: Instant::now(),
            busy: false,
            spare: Vec::new(),
            spare_marks: Vec::new(),
            roll_pending: false,
            creation_logged: None,
        }
    }

    /// The thread body: rounds until shutdown or failure.
    pub(crate) fn run(mut self) {
        let shared = Arc::clone(&self.shared);
        let _gone = Gone(&shared);
        while self.round() {}
    }

    /// One round; false when the syncer should exit.
    fn round(&mut self) -> bool {
        let shared = Arc::clone(&self.shared);
        let mode = shared.config.fsync;
        let mut st = shared.state.lock();
        loop {
            if st.failure.is_some() {
                return false;
            }
            let unsynced = self.dirty;
            let periodic_due = match mode {
                FsyncMode::Periodic(every) => unsynced && self.last_sync.elapsed() >= every,
                _ => false,
            };
            if !st.buf.is_empty() || !st.marks.is_empty() || st.round_wanted || st.shutdown {
                break;
            }
            if periodic_due {
                break;
            }
            st.syncer_idle = true;
            match mode {
                FsyncMode::Periodic(every) if unsynced => match self.last_sync.checked_add(every) {
                    Some(deadline) => {
                        shared.work.wait_until(&mut st, deadline);
                    }
                    None => shared.work.wait(&mut st),
                },
                _ => shared.work.wait(&mut st),
            }
            st.syncer_idle = false;
        }
        // Without fsync on the critical path, let writes gather for a moment
        // so one write(2) carries many records instead of one each; nobody
        // waits for them, and a sync request or shutdown cuts the wait short.
        if mode != FsyncMode::Always
            && !st.shutdown
            && !st.round_wanted
            && st.buf.len() < COALESCE_BYTES
        {
            shared.work.wait_for(&mut st, COALESCE_WINDOW);
        }
        // Under load, let records gather for the rest of the window after
        // the last fsync; a sync request, shutdown or a full buffer cuts
        // the wait short (see `WalConfig::fsync_window`).
        let window = shared.config.fsync_window;
        if mode == FsyncMode::Always
            && self.busy
            && !st.shutdown
            && !st.round_wanted
            && !st.force_sync
            && st.space_waiters == 0
            && st.buf.len() < COALESCE_BYTES
        {
            if let Some(wait) = window.checked_sub(self.last_sync.elapsed()) {
                if !wait.is_zero() {
                    st.syncer_in_window = true;
                    shared.work.wait_for(&mut st, wait);
                    st.syncer_in_window = false;
                }
            }
        }
        mem::swap(&mut st.buf, &mut self.spare);
        mem::swap(&mut st.marks, &mut self.spare_marks);
        let records = mem::take(&mut st.buf_records);
        let shutdown = st.shutdown;
        let force = mem::take(&mut st.force_sync);
        st.round_wanted = false;
        st.rounds_taken += 1;
        let round = st.rounds_taken;
        let last = st.next_lsn - 1;
        st.taken_last = last;
        if st.space_waiters > 0 {
            shared.space.notify_all();
        }
        drop(st);

        let buf = mem::take(&mut self.spare);
        let marks = mem::take(&mut self.spare_marks);
        let bytes = buf.len() as u64;
        // At shutdown, Always and Periodic sync whatever is not yet synced.
        let flush = shutdown && mode != FsyncMode::Never;
        let result = self.write_round(&buf, &marks, force, flush);
        self.recycle(buf, marks);

        let mut st = shared.state.lock();
        st.rounds_done = round;
        self.busy = !st.buf.is_empty();
        match result {
            Ok(all_synced) => {
                self.written = last;
                if all_synced {
                    self.synced = last;
                }
                // Never promises only that records reached the OS.
                let durable = match mode {
                    FsyncMode::Never => last,
                    _ => self.synced,
                }
                .max(st.durable);
                let advanced = durable > st.durable;
                // Counted before anyone hears of the round: whoever saw
                // its records acknowledged sees them counted.
                shared.rounds.fetch_add(1, Ordering::Relaxed);
                shared.records_written.fetch_add(records, Ordering::Relaxed);
                shared.bytes_written.fetch_add(bytes, Ordering::Relaxed);
                st.durable = durable;
                shared.durable.store(durable, Ordering::Release);
                drop(st);
                shared.done_for(round).notify_all();
                if advanced {
                    shared.call_back(Ok(Lsn(durable)));
                }
                !shutdown
            }
            Err(e) => {
                log::error!(
                    "WAL {} failed on {}: {}; lsns {}..={} are not durable and the log \
                     refuses writes until reopened",
                    e.op,
                    e.path.display(),
                    e.source,
                    self.synced + 1,
                    last
                );
                let failure = Failure {
                    op: e.op,
                    path: e.path,
                    source: Arc::new(e.source),
                    first: self.synced + 1,
                    last,
                    round,
                };
                let error = Arc::new(failure.error_for(failure.first));
                st.failure = Some(failure);
                st.buf = Vec::new();
                st.marks.clear();
                shared.poisoned.store(true, Ordering::Release);
                drop(st);
                shared.wake_all_waiters();
                shared.call_back(Err(error));
                false
            }
        }
    }

    /// Keeps the round's buffers for reuse, dropping a spike's capacity.
    fn recycle(&mut self, mut buf: Vec<u8>, mut marks: Vec<Mark>) {
        buf.clear();
        buf.shrink_to(4 << 20);
        marks.clear();
        self.spare = buf;
        self.spare_marks = marks;
    }

    /// Writes a round's bytes, switching segments at its marks; syncs if the
    /// mode or `force` asks. Returns whether everything written is synced.
    /// Sealing a segment syncs it unless the mode is Never (and no sync was
    /// asked for), so only the active segment can lag in Always/Periodic.
    fn write_round(
        &mut self,
        buf: &[u8],
        marks: &[Mark],
        force: bool,
        flush: bool,
    ) -> Result<bool, RoundError> {
        let mode = self.shared.config.fsync;
        let seal_sync = force || flush || mode != FsyncMode::Never;
        if self.roll_pending && !buf.is_empty() {
            self.roll(Lsn(self.written + 1), seal_sync)?;
        }
        let mut start = 0;
        for mark in marks {
            self.write(&buf[start..mark.offset])?;
            self.roll(mark.base, seal_sync)?;
            start = mark.offset;
        }
        self.write(&buf[start..])?;
        let sync = force
            || (flush && (self.dirty || !self.unsynced_sealed.is_empty()))
            || match mode {
                FsyncMode::Always => self.dirty,
                FsyncMode::Periodic(every) => self.dirty && self.last_sync.elapsed() >= every,
                FsyncMode::Never => false,
            };
        if sync {
            self.sync_sealed()?;
            self.sync_active()?;
        }
        Ok(!self.dirty && self.unsynced_sealed.is_empty())
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), RoundError> {
        if bytes.is_empty() {
            return Ok(());
        }
        let active = &mut self.active;
        if let Err(source) = self.shared.io.write_all(&mut active.file, bytes) {
            return Err(RoundError {
                op: "write",
                path: active.segment.path.clone(),
                source,
            });
        }
        active.segment.len += bytes.len() as u64;
        self.shared
            .total_bytes
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        self.dirty = true;
        Ok(())
    }

    fn sync_active(&mut self) -> Result<(), RoundError> {
        if let Err(source) = self.shared.io.sync_data(&self.active.file) {
            return Err(RoundError {
                op: "fdatasync",
                path: self.active.segment.path.clone(),
                source,
            });
        }
        self.shared.syncs.fetch_add(1, Ordering::Relaxed);
        self.dirty = false;
        self.last_sync = Instant::now();
        Ok(())
    }

    /// Syncs the segments sealed without a sync. One removed since is fine.
    fn sync_sealed(&mut self) -> Result<(), RoundError> {
        while let Some(path) = self.unsynced_sealed.last() {
            let synced = match File::open(path) {
                Ok(file) => self.shared.io.sync_data(&file),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(e),
            };
            if let Err(source) = synced {
                return Err(RoundError {
                    op: "fdatasync",
                    path: path.clone(),
                    source,
                });
            }
            self.shared.syncs.fetch_add(1, Ordering::Relaxed);
            self.unsynced_sealed.pop();
        }
        Ok(())
    }

    /// Seals the active segment (syncing it if `sync`) and starts the one
    /// with base `base`. If the new file cannot be created, the active
    /// segment stays active and the switch is pending.
    fn roll(&mut self, base: Lsn, sync: bool) -> Result<(), RoundError> {
        if sync && self.dirty {
            self.sync_active()?;
        }
        let shared = Arc::clone(&self.shared);
        let path = shared.config.dir.join(segment_file_name(base));
        let file = match shared.io.create_new(&path) {
            Ok(file) => file,
            Err(source) => {
                self.roll_pending = true;
                let quiet = self
                    .creation_logged
                    .is_some_and(|at| at.elapsed() < std::time::Duration::from_secs(1));
                if !quiet {
                    self.creation_logged = Some(Instant::now());
                    log::warn!(
                        "WAL cannot create {}: {source}; writing on into {} and trying again",
                        path.display(),
                        self.active.segment.path.display()
                    );
                }
                return Ok(());
            }
        };
        // A created file whose directory entry cannot be made durable is a
        // sync failure like any other.
        if let Err(source) = shared.io.sync_dir(&shared.config.dir) {
            return Err(RoundError {
                op: "directory fsync",
                path: shared.config.dir.clone(),
                source,
            });
        }
        if !sync && self.dirty {
            self.unsynced_sealed.push(self.active.segment.path.clone());
        }
        self.roll_pending = false;
        let segment = SegmentInfo { base, path, len: 0 };
        let mut segments = shared.segments.lock();
        if let Some(sealed) = segments.last_mut() {
            sealed.len = self.active.segment.len;
        }
        segments.push(segment.clone());
        drop(segments);
        self.active = Active { file, segment };
        self.dirty = false;
        Ok(())
    }
}
