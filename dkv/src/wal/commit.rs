//! Group commit: the shared append buffer and the syncer thread.
//!
//! Appenders encode their record into one in-memory buffer under a short
//! mutex and return its lsn; they wake the syncer only if it is asleep, so a
//! busy log costs no futex wake per append. The syncer takes the whole buffer
//! in one swap (a *round*), writes it, `fdatasync`s once for everything in it
//! (Always), publishes the durable lsn, wakes waiters and calls the durable
//! callbacks. Records that arrive while it writes form the next round: under
//! load one sync covers many writes.
//!
//! Invariants:
//!
//! * lsns are assigned under the state mutex in buffer order, so the bytes of
//!   the log are in strictly increasing lsn order;
//! * segment switches are marks in the buffer, placed under the same mutex,
//!   so the lsn `rotate` returns is exactly where the new segment starts;
//! * the buffer holds at most [`MAX_BUFFERED_BYTES`] (or one record, if
//!   larger): appenders block while it is full;
//! * fsyncgate: once a write or sync fails the log is poisoned. The records
//!   that failing round covered get its error, every later waiter and every
//!   later append gets [`WalError::Poisoned`], and nothing is retried: after
//!   a failed `fdatasync` the page cache may have dropped the dirty pages, so
//!   a later success would prove nothing. Only reopening (recovery) clears it.
//! * only the syncer thread touches the active segment's file.

use std::fs::File;
use std::io;
use std::mem;
use std::panic::{self, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::{Condvar, Mutex, MutexGuard, RwLock};

use super::record;
use super::segment::{create_segment, SegmentInfo, SegmentIo};
use super::{DurableCallback, FsyncMode, Lsn, WalConfig, WalError, WalStats};
use crate::version::Version;

/// Most bytes appenders may queue before they block (64 MiB).
pub const MAX_BUFFERED_BYTES: usize = 64 << 20;

/// State shared by the [`Wal`](super::Wal) handle and its syncer thread.
pub(crate) struct Shared {
    state: Mutex<State>,
    /// Wakes the syncer.
    work: Condvar,
    /// Signalled when a round ends: durability waiters, `sync`, `rotate`.
    /// Waiters for round `r` sleep on `done[r % 2]`, so the end of a round
    /// wakes only its own waiters, not those of the round queued behind it.
    done: [Condvar; 2],
    /// Wakes appenders waiting for buffer room.
    space: Condvar,
    durable: AtomicU64,
    poisoned: AtomicBool,
    total_bytes: AtomicU64,
    /// Live segments in order; the last is the one being written.
    pub(crate) segments: Mutex<Vec<SegmentInfo>>,
    callbacks: RwLock<Vec<DurableCallback>>,
    pub(crate) io: Arc<dyn SegmentIo>,
    pub(crate) config: WalConfig,
    rounds: AtomicU64,
    syncs: AtomicU64,
    records_written: AtomicU64,
    bytes_written: AtomicU64,
}

struct State {
    buf: Vec<u8>,
    buf_records: u64,
    marks: Vec<Mark>,
    next_lsn: u64,
    /// Bytes of the active segment, queued ones included.
    active_len: u64,
    /// Last lsn in the active segment, queued ones included; 0 if none.
    active_last: u64,
    syncer_idle: bool,
    space_waiters: usize,
    round_wanted: bool,
    force_sync: bool,
    rounds_taken: u64,
    rounds_done: u64,
    /// The last lsn of the most recently taken round.
    taken_last: u64,
    shutdown: bool,
    syncer_gone: bool,
    durable: u64,
    failure: Option<Failure>,
}

impl State {
    /// Whether the caller must notify the syncer (it was asleep); marks it
    /// awake so later callers do not notify again.
    fn wake_syncer(&mut self) -> bool {
        mem::replace(&mut self.syncer_idle, false)
    }
}

/// Start a new segment with base `base` before the byte at `offset`.
struct Mark {
    offset: usize,
    base: Lsn,
}

/// The round that poisoned the log.
struct Failure {
    op: &'static str,
    path: PathBuf,
    source: Arc<io::Error>,
    /// Lsns the failed round covered: not durable, and never will be.
    first: u64,
    last: u64,
    round: u64,
}

impl Failure {
    /// The error a waiter for `lsn` gets: the failure itself if its round
    /// covered `lsn`, otherwise `Poisoned`.
    fn error_for(&self, lsn: u64) -> WalError {
        if (self.first..=self.last).contains(&lsn) {
            WalError::SyncFailed {
                op: self.op,
                path: self.path.clone(),
                source: Arc::clone(&self.source),
            }
        } else {
            WalError::Poisoned
        }
    }
}

/// What the log looks like when the syncer starts.
pub(crate) struct Start {
    pub(crate) next_lsn: u64,
    pub(crate) active_len: u64,
    pub(crate) active_last: u64,
    pub(crate) total_bytes: u64,
}

impl Shared {
    pub(crate) fn new(
        config: WalConfig,
        io: Arc<dyn SegmentIo>,
        segments: Vec<SegmentInfo>,
        start: &Start,
    ) -> Shared {
        let durable = start.next_lsn - 1;
        Shared {
            state: Mutex::new(State {
                buf: Vec::new(),
                buf_records: 0,
                marks: Vec::new(),
                next_lsn: start.next_lsn,
                active_len: start.active_len,
                active_last: start.active_last,
                syncer_idle: false,
                space_waiters: 0,
                round_wanted: false,
                force_sync: false,
                rounds_taken: 0,
                rounds_done: 0,
                taken_last: durable,
                shutdown: false,
                syncer_gone: false,
                durable,
                failure: None,
            }),
            work: Condvar::new(),
            done: [Condvar::new(), Condvar::new()],
            space: Condvar::new(),
            durable: AtomicU64::new(durable),
            poisoned: AtomicBool::new(false),
            total_bytes: AtomicU64::new(start.total_bytes),
            segments: Mutex::new(segments),
            callbacks: RwLock::new(Vec::new()),
            io,
            config,
            rounds: AtomicU64::new(0),
            syncs: AtomicU64::new(0),
            records_written: AtomicU64::new(0),
            bytes_written: AtomicU64::new(0),
        }
    }

    pub(crate) fn append(
        &self,
        key: &[u8],
        version: Version,
        value: Option<&[u8]>,
    ) -> Result<Lsn, WalError> {
        let len = record::encoded_len(key.len(), value.map(<[u8]>::len)).map_err(|e| {
            WalError::RecordTooLarge {
                len: e.len,
                max: e.max,
            }
        })?;
        let mut st = self.state.lock();
        loop {
            if st.failure.is_some() || st.syncer_gone {
                return Err(WalError::Poisoned);
            }
            if st.buf.is_empty() || st.buf.len() + len <= MAX_BUFFERED_BYTES {
                break;
            }
            st.space_waiters += 1;
            if st.wake_syncer() {
                self.work.notify_one();
            }
            self.space.wait(&mut st);
            st.space_waiters -= 1;
        }
        let lsn = Lsn(st.next_lsn);
        if st.active_len >= self.config.segment_bytes && st.active_last != 0 {
            let mark = Mark {
                offset: st.buf.len(),
                base: Lsn(st.active_last + 1),
            };
            st.marks.push(mark);
            st.active_len = 0;
        }
        let written = record::encode_into(&mut st.buf, lsn, key, version, value).map_err(|e| {
            WalError::RecordTooLarge {
                len: e.len,
                max: e.max,
            }
        })?;
        st.active_len += written as u64;
        st.active_last = lsn.0;
        st.next_lsn += 1;
        st.buf_records += 1;
        let wake = st.wake_syncer();
        drop(st);
        if wake {
            self.work.notify_one();
        }
        Ok(lsn)
    }

    pub(crate) fn wait_durable(&self, lsn: Lsn) -> Result<(), WalError> {
        if self.config.fsync != FsyncMode::Always {
            return if self.poisoned.load(Ordering::Acquire) {
                Err(WalError::Poisoned)
            } else {
                Ok(())
            };
        }
        if self.durable.load(Ordering::Acquire) >= lsn.0 {
            return Ok(());
        }
        let mut st = self.state.lock();
        loop {
            if st.durable >= lsn.0 {
                return Ok(());
            }
            if let Some(failure) = &st.failure {
                return Err(failure.error_for(lsn.0));
            }
            if st.syncer_gone {
                return Err(WalError::Poisoned);
            }
            // In the round being written, or else in the next one.
            let round = if lsn.0 <= st.taken_last {
                st.rounds_taken
            } else {
                st.rounds_taken + 1
            };
            self.done_for(round).wait(&mut st);
        }
    }

    fn done_for(&self, round: u64) -> &Condvar {
        &self.done[(round % 2) as usize]
    }

    fn wake_all_waiters(&self) {
        for done in &self.done {
            done.notify_all();
        }
        self.space.notify_all();
    }

    pub(crate) fn on_durable(&self, callback: DurableCallback) {
        self.callbacks.write().push(callback);
    }

    pub(crate) fn durable_lsn(&self) -> Lsn {
        Lsn(self.durable.load(Ordering::Acquire))
    }

    pub(crate) fn next_lsn(&self) -> Lsn {
        Lsn(self.state.lock().next_lsn)
    }

    pub(crate) fn is_poisoned(&self) -> bool {
        self.poisoned.load(Ordering::Acquire)
    }

    pub(crate) fn sync(&self) -> Result<(), WalError> {
        let mut st = self.state.lock();
        st.force_sync = true;
        let last = st.next_lsn - 1;
        self.run_round(st, last)
    }

    pub(crate) fn rotate(&self) -> Result<Lsn, WalError> {
        let mut st = self.state.lock();
        if st.failure.is_some() || st.syncer_gone {
            return Err(WalError::Poisoned);
        }
        let lsn = Lsn(st.next_lsn);
        // An empty active segment already starts at (or before) `lsn`.
        if st.active_last != 0 {
            let mark = Mark {
                offset: st.buf.len(),
                base: Lsn(st.active_last + 1),
            };
            st.marks.push(mark);
            st.active_len = 0;
            st.active_last = 0;
        }
        self.run_round(st, lsn.0 - 1)?;
        Ok(lsn)
    }

    /// Asks the syncer for a round covering everything queued so far and
    /// waits for it; `last` is the last lsn the caller cares about.
    fn run_round(&self, mut st: MutexGuard<'_, State>, last: u64) -> Result<(), WalError> {
        st.round_wanted = true;
        let target = st.rounds_taken + 1;
        if st.wake_syncer() {
            self.work.notify_one();
        }
        loop {
            if let Some(failure) = &st.failure {
                if failure.round <= target {
                    return Err(failure.error_for(last));
                }
            }
            if st.rounds_done >= target {
                return Ok(());
            }
            if st.syncer_gone {
                return Err(WalError::Poisoned);
            }
            self.done_for(target).wait(&mut st);
        }
    }

    pub(crate) fn size_bytes(&self) -> u64 {
        self.total_bytes.load(Ordering::Relaxed)
    }

    pub(crate) fn forget_bytes(&self, bytes: u64) {
        self.total_bytes.fetch_sub(bytes, Ordering::Relaxed);
    }

    pub(crate) fn stats(&self) -> WalStats {
        WalStats {
            records_written: self.records_written.load(Ordering::Relaxed),
            bytes_written: self.bytes_written.load(Ordering::Relaxed),
            rounds: self.rounds.load(Ordering::Relaxed),
            syncs: self.syncs.load(Ordering::Relaxed),
        }
    }

    /// Tells the syncer to finish: it writes what is queued (and syncs it,
    /// unless the mode is Never) and exits.
    pub(crate) fn shut_down(&self) {
        let mut st = self.state.lock();
        st.shutdown = true;
        st.syncer_idle = false;
        drop(st);
        self.work.notify_one();
    }

    fn call_back(&self, result: Result<Lsn, Arc<WalError>>) {
        for callback in self.callbacks.read().iter() {
            let arg = result.clone();
            if panic::catch_unwind(AssertUnwindSafe(|| callback(arg))).is_err() {
                log::error!("a WAL durability callback panicked");
            }
        }
    }
}

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
    spare: Vec<u8>,
    spare_marks: Vec<Mark>,
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
            spare: Vec::new(),
            spare_marks: Vec::new(),
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
                FsyncMode::Periodic(every) if unsynced => {
                    shared.work.wait_until(&mut st, self.last_sync + every);
                }
                _ => shared.work.wait(&mut st),
            }
            st.syncer_idle = false;
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
                st.durable = durable;
                shared.durable.store(durable, Ordering::Release);
                drop(st);
                shared.done_for(round).notify_all();
                shared.rounds.fetch_add(1, Ordering::Relaxed);
                shared.records_written.fetch_add(records, Ordering::Relaxed);
                shared.bytes_written.fetch_add(bytes, Ordering::Relaxed);
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
        let mut start = 0;
        for mark in marks {
            self.write(&buf[start..mark.offset])?;
            self.roll(mark.base, force || flush || mode != FsyncMode::Never)?;
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
    /// with base `base`.
    fn roll(&mut self, base: Lsn, sync: bool) -> Result<(), RoundError> {
        if sync && self.dirty {
            self.sync_active()?;
        } else if self.dirty {
            self.unsynced_sealed.push(self.active.segment.path.clone());
        }
        let shared = &self.shared;
        let (file, segment) =
            create_segment(&shared.config.dir, &*shared.io, base).map_err(|e| match e {
                WalError::Io { path, source } => RoundError {
                    op: "segment creation",
                    path,
                    source,
                },
                other => RoundError {
                    op: "segment creation",
                    path: shared.config.dir.clone(),
                    source: io::Error::other(other.to_string()),
                },
            })?;
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
