//! [`DurabilityWatch`]: how the runtime learns what became durable, to
//! hand it to the node as an input.
//!
//! The WAL's syncer thread calls back after each round; the runtime
//! registers a callback that only wakes its loop ([`DurabilityWatch::on_progress`]),
//! and on the next turn asks [`DurabilityWatch::poll`] what changed: a
//! log durable further than last reported, a log that failed (a refused
//! write or fsync poisons it), or a failed log started afresh (the store
//! does that for the data log from a snapshot once the disk takes writes
//! again). The node never asks the disk; it is told.

use std::sync::Arc;

use crate::node::{Log, Ticket};
use crate::store::Store;
use crate::wal::{HoldGuard, Lsn, Wal, WalError};

/// What one log did since the last [`DurabilityWatch::poll`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Everything up to the ticket's sequence is durable.
    Durable(Ticket),
    /// The log failed: it refuses writes until it recovers.
    Failed(Log),
    /// A failed log started afresh: it takes writes again.
    Recovered(Log),
}

/// Both logs, shared.
#[derive(Clone)]
pub struct LogHandles {
    store: Arc<Store>,
    hints: Arc<Wal>,
}

impl LogHandles {
    /// Holds both logs' syncers back while the caller appends a burst, so
    /// that one fsync round covers it all (one per reactor turn).
    pub fn hold(&self) -> [HoldGuard<'_>; 2] {
        [self.store.wal().hold(), self.hints.hold()]
    }
}

/// The runtime's handle on the data log and the hint log.
pub struct DurabilityWatch {
    store: Arc<Store>,
    hints: Arc<Wal>,
    reported: [Lsn; 2],
    failed: [bool; 2],
}

impl DurabilityWatch {
    pub(crate) fn new(store: Arc<Store>, hints: Arc<Wal>) -> DurabilityWatch {
        let reported = [store.wal().durable_lsn(), hints.durable_lsn()];
        DurabilityWatch {
            store,
            hints,
            reported,
            failed: [false; 2],
        }
    }

    fn wal(&self, log: Log) -> &Wal {
        match log {
            Log::Data => self.store.wal(),
            Log::Hints => &self.hints,
        }
    }

    /// Calls `wake` whenever either log makes progress or fails (from the
    /// syncer threads: it must only signal, not work).
    pub fn on_progress(&self, wake: impl Fn() + Send + Sync + Clone + 'static) {
        for log in Log::ALL {
            let wake = wake.clone();
            self.wal(log).on_durable(Box::new(move |_| wake()));
        }
    }

    /// Handles on both logs that can be held while the watch is not
    /// borrowed.
    pub fn handles(&self) -> LogHandles {
        LogHandles {
            store: Arc::clone(&self.store),
            hints: Arc::clone(&self.hints),
        }
    }

    /// What changed since the last call: at most one item per log.
    pub fn poll(&mut self) -> Vec<Progress> {
        let mut progress = Vec::new();
        for log in Log::ALL {
            let index = log.index();
            let (durable, poisoned) = {
                let wal = self.wal(log);
                (wal.durable_lsn(), wal.is_poisoned())
            };
            if self.failed[index] {
                if poisoned {
                    continue;
                }
                self.failed[index] = false;
                progress.push(Progress::Recovered(log));
            }
            if durable > self.reported[index] {
                self.reported[index] = durable;
                progress.push(Progress::Durable(Ticket { log, lsn: durable }));
            }
            if poisoned {
                self.failed[index] = true;
                progress.push(Progress::Failed(log));
            }
        }
        progress
    }

    /// Writes and fsyncs both logs now (at shutdown).
    pub fn sync(&self) -> Result<(), WalError> {
        self.store.wal().sync()?;
        self.hints.sync()
    }
}
