//! [`Wakeup`]: wakes the reactor from other threads (the WAL syncers, the
//! handle that stops the node) at most once per turn.
//!
//! Invariant: after a thread calls [`Wakeup::wake`], the reactor is woken
//! unless a wake is already pending; the reactor clears the pending flag
//! *before* it looks at what woke it, so no wake is ever lost.

use std::sync::atomic::{AtomicBool, Ordering};

/// Wakes the reactor at most once per drain.
pub(crate) struct Wakeup {
    waker: mio::Waker,
    pending: AtomicBool,
}

impl Wakeup {
    pub fn new(waker: mio::Waker) -> Self {
        Wakeup {
            waker,
            pending: AtomicBool::new(false),
        }
    }

    pub fn wake(&self) {
        if !self.pending.swap(true, Ordering::AcqRel) {
            if let Err(e) = self.waker.wake() {
                log::error!("cannot wake the reactor: {e}");
            }
        }
    }

    /// Called by the reactor before it looks at what woke it.
    pub fn clear(&self) {
        self.pending.store(false, Ordering::Release);
    }
}
