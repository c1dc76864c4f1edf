//! The node's [`Storage`] over a real [`Store`] and [`HintLog`].

use std::sync::Arc;

use crate::disk::hint_log::HintLog;
use crate::node::{Applied, Disk, DiskError, Hint, Ticket};
use crate::engine::Entry;
use crate::store::Store;
use crate::version::{NodeId, Version};
use crate::wal::FsyncMode;

/// Data in the node's store, hints in their own log.
pub struct StoreDisk {
    store: Arc<Store>,
    hints: HintLog,
    /// Only `--fsync always` makes acknowledgements wait for the disk.
    wait_for_sync: bool,
}

impl StoreDisk {
    /// Wraps an open store and hint log.
    pub fn new(store: Arc<Store>, hints: HintLog) -> StoreDisk {
        let wait_for_sync = store.config().fsync == FsyncMode::Always;
        StoreDisk {
            store,
            hints,
            wait_for_sync,
        }
    }

    /// The data store.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// The hint log.
    pub fn hint_log(&self) -> &HintLog {
        &self.hints
    }
}

fn disk_error(e: impl std::fmt::Display) -> DiskError {
    DiskError(e.to_string())
}

impl Disk for StoreDisk {
    fn get(&self, key: &[u8]) -> Option<Entry> {
        self.store.get_entry(key)
    }

    fn apply(&mut self, key: &[u8], entry: &Entry) -> Result<Applied, DiskError> {
        let submitted = self
            .store
            .submit(key, entry.version, entry.value.as_deref())
            .map_err(disk_error)?;
        Ok(Applied {
            won: submitted.applied,
            ticket: Ticket::data(submitted.lsn),
        })
    }

    fn put_hint(&mut self, hint: &Hint) -> Result<Ticket, DiskError> {
        self.hints
            .put(hint)
            .map(Ticket::hint)
            .map_err(disk_error)
    }

    fn remove_hint(
        &mut self,
        target: NodeId,
        key: &[u8],
        version: Version,
    ) -> Result<(), DiskError> {
        self.hints
            .remove(target, key, version)
            .map_err(disk_error)
    }

    fn hints(&self) -> Vec<Hint> {
        self.hints.all()
    }

    fn is_durable(&self, ticket: Ticket) -> bool {
        if !self.wait_for_sync {
            return true;
        }
        let durable = match ticket.log {
            0 => self.store.wal().durable_lsn(),
            _ => self.hints.wal().durable_lsn(),
        };
        ticket.lsn <= durable
    }
}
