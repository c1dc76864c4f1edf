//! The replica's side: a replicated write applied here (or kept as a hint
//! when this node stands in for a down owner), acknowledged once durable,
//! under the clock check every applied entry goes through; and the
//! delivery of the hints this node keeps to owners that are up again.

use crate::node::disk::Hint;
use crate::node::durability::Deferred;
use crate::node::{Disk, Node};
use crate::peer::{Message, RequestId, SharedWrite};
use crate::version::NodeId;

impl<D: Disk> Node<D> {
    pub(super) fn deliver_hints(&mut self) {
        let detector = &self.detector;
        let due = self
            .handoff
            .due(self.now.mono, |t| detector.is_up(t), &mut self.ids);
        for delivery in due {
            self.send(
                delivery.target,
                Message::Replicate {
                    request: delivery.id.into(),
                    write: SharedWrite::new(&delivery.key, delivery.entry.as_ref()),
                    hint_for: None,
                },
            );
        }
    }

    /// A replicated write: applied here, or kept as a hint when this node
    /// stands in for `hint_for`; acknowledged once durable. A write
    /// stamped too far ahead of this node's clock is refused, so a runaway
    /// clock cannot spread.
    pub(super) fn on_replicate(
        &mut self,
        from: NodeId,
        request: RequestId,
        write: SharedWrite,
        hint_for: Option<NodeId>,
    ) {
        let entry = write.entry();
        let refuse = |node: &mut Self| {
            node.send(
                from,
                Message::ReplicateAck {
                    request,
                    ok: false,
                    was_live: false,
                    held: None,
                },
            )
        };
        let reference = self.reference_wall();
        if self
            .clock
            .observe(entry.version.timestamp, reference)
            .is_err()
        {
            self.stats.clock_refusals += 1;
            log::debug!(
                "node {}: refusing a write from node {from} stamped {} ms ahead",
                self.settings.id,
                entry.version.timestamp.millis().saturating_sub(reference)
            );
            refuse(self);
            return;
        }
        if let Some(owner) = hint_for {
            if !self.settings.members.contains(&owner) {
                log::warn!(
                    "node {}: refusing a hint from node {from} for node {owner}, not a member",
                    self.settings.id
                );
                refuse(self);
                return;
            }
        }
        let result = match hint_for {
            Some(owner) if owner != self.settings.id => {
                let hint = Hint {
                    target: owner,
                    key: write.key().to_vec(),
                    entry: entry.to_owned(),
                    stored_at_millis: self.now.wall,
                };
                self.handoff
                    .keep(&mut self.disk, hint)
                    .map(|ticket| (ticket, false, None))
            }
            _ => self
                .apply_local(write.key(), entry)
                .map(|applied| (applied.ticket, applied.was_live, applied.held)),
        };
        match result {
            Ok((ticket, was_live, held)) => self.defer(
                ticket,
                Deferred::Ack {
                    to: from,
                    request,
                    was_live,
                    held,
                },
            ),
            Err(e) => {
                log::error!("node {}: {e}", self.settings.id);
                refuse(self);
            }
        }
    }
}
