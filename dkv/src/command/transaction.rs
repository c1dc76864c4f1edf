//! [`Transaction`]: what `MULTI` queues on a connection until `EXEC` or
//! `DISCARD`.
//!
//! dkv runs an `EXEC`'s commands in order, each as it would run alone;
//! other clients' commands may interleave with them, and in a cluster
//! each key's writes go to its own replicas, so a transaction is a batch,
//! not an isolated unit (docs/commands.md). The queue is bounded.

use crate::resp;

/// Commands a transaction may queue at most.
pub(crate) const MAX_QUEUED_COMMANDS: usize = 100_000;
/// Bytes of arguments a transaction may queue at most.
pub(crate) const MAX_QUEUED_BYTES: usize = 256 << 20;

/// A connection's open transaction.
#[derive(Debug, Clone, Default)]
pub(crate) struct Transaction {
    queued: Vec<resp::Command>,
    bytes: usize,
    /// A command was refused while queueing: `EXEC` aborts.
    failed: bool,
}

impl Transaction {
    /// Queues `command`; false (and the transaction fails) when it would
    /// pass the bounds.
    pub fn queue(&mut self, command: &resp::Command) -> bool {
        let bytes = self.bytes + command.data_len();
        if self.queued.len() >= MAX_QUEUED_COMMANDS || bytes > MAX_QUEUED_BYTES {
            self.failed = true;
            return false;
        }
        self.bytes = bytes;
        self.queued.push(command.clone());
        true
    }

    /// Marks the transaction failed (a refused command).
    pub fn fail(&mut self) {
        self.failed = true;
    }

    /// The queued commands, or `None` if the transaction failed.
    pub fn into_commands(self) -> Option<Vec<resp::Command>> {
        (!self.failed).then_some(self.queued)
    }
}
