//! Group commit, caller side: the shared append buffer and waiting for
//! durability. The other side is the syncer thread (`syncer.rs`).
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
//!   a later success would prove nothing. Only reopening (recovery) or
//!   starting afresh past a snapshot ([`Wal::revive`](super::Wal::revive))
//!   clears it.
//! * only the syncer thread (`syncer.rs`) touches the active segment's file.

use std::io;
use std::mem;
use std::panic::{self, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Condvar, Mutex, MutexGuard, RwLock};

use super::record;
use super::segment::{SegmentInfo, SegmentIo};
use super::{DurableCallback, FsyncMode, Lsn, WalConfig, WalError, WalStats};
use crate::engine::EntryRef;

/// Most bytes appenders may queue before they block (64 MiB).
pub const MAX_BUFFERED_BYTES: usize = 64 << 20;

/// State shared by the [`Wal`](super::Wal) handle and its syncer thread.
pub(crate) struct Shared {
    pub(super) state: Mutex<State>,
    /// Wakes the syncer.
    pub(super) work: Condvar,
    /// Signalled when a round ends: durability waiters, `sync`, `rotate`.
    /// Waiters for round `r` sleep on `done[r % 2]`, so the end of a round
    /// wakes only its own waiters, not those of the round queued behind it.
    pub(super) done: [Condvar; 2],
    /// Wakes appenders waiting for buffer room.
    pub(super) space: Condvar,
    pub(super) durable: AtomicU64,
    pub(super) poisoned: AtomicBool,
    pub(super) total_bytes: AtomicU64,
    /// Live segments in order; the last is the one being written.
    pub(crate) segments: Mutex<Vec<SegmentInfo>>,
    pub(super) callbacks: RwLock<Vec<DurableCallback>>,
    pub(crate) io: Arc<dyn SegmentIo>,
    pub(crate) config: WalConfig,
    pub(super) rounds: AtomicU64,
    pub(super) syncs: AtomicU64,
    pub(super) records_written: AtomicU64,
    pub(super) bytes_written: AtomicU64,
}

pub(super) struct State {
    pub(super) buf: Vec<u8>,
    pub(super) buf_records: u64,
    pub(super) marks: Vec<Mark>,
    pub(super) next_lsn: u64,
    /// Bytes of the active segment, queued ones included.
    pub(super) active_len: u64,
    /// Last lsn in the active segment, queued ones included; 0 if none.
    pub(super) active_last: u64,
    pub(super) syncer_idle: bool,
    /// The syncer waits out its fsync window (`WalConfig::fsync_window`):
    /// appends let it be, but a sync request or a full buffer wakes it.
    pub(super) syncer_in_window: bool,
    /// Open [`Shared::hold`]s: appends do not wake the syncer meanwhile.
    pub(super) holds: usize,
    pub(super) space_waiters: usize,
    pub(super) round_wanted: bool,
    pub(super) force_sync: bool,
    pub(super) rounds_taken: u64,
    pub(super) rounds_done: u64,
    /// The last lsn of the most recently taken round.
    pub(super) taken_last: u64,
    pub(super) shutdown: bool,
    pub(super) syncer_gone: bool,
    pub(super) durable: u64,
    pub(super) failure: Option<Failure>,
}

impl State {
    /// Whether the caller must notify the syncer (it was asleep); marks it
    /// awake so later callers do not notify again.
    fn wake_syncer(&mut self) -> bool {
        mem::replace(&mut self.syncer_idle, false)
    }

    /// Whether one who needs a round now (a sync request, an appender
    /// facing a full buffer) must notify the syncer: it sleeps, or waits
    /// out its window.
    fn syncer_needs_waking(&mut self) -> bool {
        self.wake_syncer() || self.syncer_in_window
    }
}

/// Start a new segment with base `base` before the byte at `offset`.
pub(super) struct Mark {
    pub(super) offset: usize,
    pub(super) base: Lsn,
}

/// The round that poisoned the log.
pub(super) struct Failure {
    pub(super) op: &'static str,
    pub(super) path: PathBuf,
    pub(super) source: Arc<io::Error>,
    /// Lsns the failed round covered: not durable, and never will be.
    pub(super) first: u64,
    pub(super) last: u64,
    pub(super) round: u64,
}

impl Failure {
    /// The error a waiter for `lsn` gets: the failure itself if its round
    /// covered `lsn`, otherwise `Poisoned`.
    pub(super) fn error_for(&self, lsn: u64) -> WalError {
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
                syncer_in_window: false,
                holds: 0,
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

    pub(crate) fn append(&self, key: &[u8], entry: EntryRef<'_>) -> Result<Lsn, WalError> {
        let len = record::encoded_len(key.len(), entry).map_err(|e| WalError::RecordTooLarge {
            len: e.len,
            max: e.max,
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
            if st.syncer_needs_waking() {
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
        let written = record::encode_into(&mut st.buf, lsn, key, entry).map_err(|e| {
            WalError::RecordTooLarge {
                len: e.len,
                max: e.max,
            }
        })?;
        st.active_len += written as u64;
        st.active_last = lsn.0;
        st.next_lsn += 1;
        st.buf_records += 1;
        let wake = st.holds == 0 && st.wake_syncer();
        drop(st);
        if wake {
            self.work.notify_one();
        }
        Ok(lsn)
    }

    /// Defers waking the syncer for appends until the matching
    /// [`Shared::release`]: a caller about to append a burst (a reactor
    /// turn) gets one round for all of it instead of a first round for its
    /// first record alone.
    pub(crate) fn hold(&self) {
        self.state.lock().holds += 1;
    }

    /// Ends a [`Shared::hold`], waking the syncer if records wait.
    pub(crate) fn release(&self) {
        let mut st = self.state.lock();
        st.holds = st.holds.saturating_sub(1);
        let wake = st.holds == 0 && !st.buf.is_empty() && st.wake_syncer();
        drop(st);
        if wake {
            self.work.notify_one();
        }
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

    pub(super) fn done_for(&self, round: u64) -> &Condvar {
        &self.done[(round % 2) as usize]
    }

    pub(super) fn wake_all_waiters(&self) {
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
        if st.syncer_needs_waking() {
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

    /// Resets the state of a poisoned log whose syncer has exited so that a
    /// new syncer can start with a fresh segment at `base`: nothing queued,
    /// nothing failed, everything below `base` durable.
    pub(super) fn restart(&self, base: u64) {
        let mut st = self.state.lock();
        debug_assert!(st.failure.is_some() && st.syncer_gone);
        debug_assert!(base >= st.next_lsn);
        st.buf.clear();
        st.buf_records = 0;
        st.marks.clear();
        st.next_lsn = base;
        st.active_len = 0;
        st.active_last = 0;
        st.syncer_idle = false;
        st.round_wanted = false;
        st.force_sync = false;
        st.rounds_done = st.rounds_taken;
        st.taken_last = base - 1;
        st.shutdown = false;
        st.syncer_gone = false;
        st.durable = base - 1;
        st.failure = None;
        self.durable.store(base - 1, Ordering::Release);
        self.total_bytes.store(0, Ordering::Relaxed);
        self.poisoned.store(false, Ordering::Release);
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

    pub(super) fn call_back(&self, result: Result<Lsn, Arc<WalError>>) {
        for callback in self.callbacks.read().iter() {
            let arg = result.clone();
            if panic::catch_unwind(AssertUnwindSafe(|| callback(arg))).is_err() {
                log::error!("a WAL durability callback panicked");
            }
        }
    }
}
