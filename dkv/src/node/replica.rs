//! The replica side: applying writes and answering reads for coordinators.
//!
//! A replicated write is applied (or, when this node stands in for a down
//! replica, kept as a hint) and acknowledged only once durable. A write
//! stamped too far in the future is refused (`ok = false`) so a runaway
//! clock cannot spread.

use crate::node::{Deferred, Node, Disk, Hint};
use crate::peer::{Message, RequestId};
use crate::engine::Entry;
use crate::version::NodeId;

impl<D: Disk> Node<D> {
    pub(super) fn on_replicate(
        &mut self,
        from: NodeId,
        request: RequestId,
        key: Vec<u8>,
        entry: Entry,
        hint_for: Option<NodeId>,
    ) {
        if self
            .clock
            .observe(entry.version.timestamp, self.now.wall)
            .is_err()
        {
            self.stats.clock_refusals += 1;
            log::warn!(
                "node {}: refusing a write from node {from} stamped {} ms ahead",
                self.settings.id,
                entry
                    .version
                    .timestamp
                    .millis()
                    .saturating_sub(self.now.wall)
            );
            self.send(
                from,
                Message::ReplicateAck {
                    request,
                    ok: false,
                    was_live: false,
                },
            );
            return;
        }
        let result = match hint_for {
            Some(owner) if owner != self.settings.id => {
                let hint = Hint {
                    target: owner,
                    key,
                    entry,
                    stored_at_millis: self.now.wall,
                };
                self.keep_hint(hint).map(|ticket| (ticket, false))
            }
            _ => {
                let was_live = self.disk.get(&key).is_some_and(|e| !e.is_tombstone());
                self.disk
                    .apply(&key, &entry)
                    .map(|applied| (applied.ticket, was_live))
            }
        };
        match result {
            Ok((ticket, was_live)) => self.defer(
                ticket,
                Deferred::Ack {
                    to: from,
                    request,
                    ok: true,
                    was_live,
                },
            ),
            Err(e) => {
                log::error!("node {}: {e}", self.settings.id);
                self.send(
                    from,
                    Message::ReplicateAck {
                        request,
                        ok: false,
                        was_live: false,
                    },
                );
            }
        }
    }

    pub(super) fn on_read(&mut self, from: NodeId, request: RequestId, key: Vec<u8>) {
        let entry = self.disk.get(&key);
        self.send(from, Message::ReadReply { request, entry });
    }
}
