//! Hinted handoff: writes kept for replicas that could not take them.
//!
//! A hint is stored durably (through [`Storage::put_hint`]) and mirrored
//! here, at most one per target and key (the newest version wins). Hints
//! are bounded per target by count (the oldest are dropped) and by age;
//! a dropped hint is counted and left to read repair. When the failure
//! detector sees a target up, its hints are sent to it in batches as
//! ordinary replicated writes; each is forgotten once acknowledged, and
//! retried on the next tick otherwise.

use crate::node::{Node, Disk, DiskError, Hint, Ticket};
use crate::peer::{Message, RequestId};
use crate::version::NodeId;

/// A hint and its delivery state.
#[derive(Debug, Clone)]
pub(super) struct HintSlot {
    pub hint: Hint,
    /// `(request, deadline)` of a delivery in flight.
    pub in_flight: Option<(u64, u64)>,
}

impl HintSlot {
    pub fn new(hint: Hint) -> HintSlot {
        HintSlot {
            hint,
            in_flight: None,
        }
    }
}

impl<D: Disk> Node<D> {
    /// Hints waiting per target.
    pub fn hints_pending(&self) -> Vec<(NodeId, usize)> {
        self.hints
            .iter()
            .map(|(&target, hints)| (target, hints.len()))
            .filter(|(_, n)| *n > 0)
            .collect()
    }

    /// Stores a hint durably and mirrors it; returns what to wait for
    /// before acknowledging it.
    pub(super) fn keep_hint(&mut self, hint: Hint) -> Result<Ticket, DiskError> {
        let ticket = self.disk.put_hint(&hint)?;
        let slots = self.hints.entry(hint.target).or_default();
        let newer = slots
            .get(&hint.key)
            .is_none_or(|slot| slot.hint.entry.version < hint.entry.version);
        if newer {
            slots.insert(hint.key.clone(), HintSlot::new(hint.clone()));
        }
        if slots.len() > self.settings.max_hints_per_target {
            let oldest = slots
                .iter()
                .min_by_key(|(_, slot)| slot.hint.stored_at_millis)
                .map(|(key, _)| key.clone());
            if let Some(key) = oldest {
                self.drop_hint(hint.target, &key);
            }
        }
        Ok(ticket)
    }

    fn drop_hint(&mut self, target: NodeId, key: &[u8]) {
        let Some(slot) = self
            .hints
            .get_mut(&target)
            .and_then(|slots| slots.remove(key))
        else {
            return;
        };
        self.stats.hints_dropped += 1;
        if let Err(e) = self
            .disk
            .remove_hint(target, key, slot.hint.entry.version)
        {
            log::error!("node {}: cannot drop a hint: {e}", self.settings.id);
        }
    }

    /// Drops hints past the age limit.
    pub(super) fn expire_hints(&mut self) {
        let limit = self.settings.max_hint_age.as_millis() as u64;
        let now = self.now.wall;
        let expired: Vec<(NodeId, Vec<u8>)> = self
            .hints
            .iter()
            .flat_map(|(&target, slots)| {
                slots
                    .iter()
                    .filter(|(_, slot)| now.saturating_sub(slot.hint.stored_at_millis) > limit)
                    .map(move |(key, _)| (target, key.clone()))
            })
            .collect();
        for (target, key) in expired {
            self.drop_hint(target, &key);
        }
    }

    /// Sends hints to targets that are up, a batch at a time, and makes
    /// timed-out deliveries eligible again.
    pub(super) fn deliver_hints(&mut self) {
        let now = self.now.mono;
        let timeout = self.settings.request_timeout.as_millis() as u64;
        let batch = self.settings.hint_batch;
        let targets: Vec<NodeId> = self
            .hints
            .keys()
            .copied()
            .filter(|&t| self.is_up(t))
            .collect();
        for target in targets {
            let mut to_send = Vec::new();
            let mut in_flight = 0;
            if let Some(slots) = self.hints.get_mut(&target) {
                for (key, slot) in slots.iter_mut() {
                    if let Some((request, deadline)) = slot.in_flight {
                        if deadline > now {
                            in_flight += 1;
                            continue;
                        }
                        self.deliveries.remove(&request);
                        slot.in_flight = None;
                    }
                    if in_flight + to_send.len() < batch {
                        to_send.push((key.clone(), slot.hint.entry.clone()));
                    }
                }
            }
            for (key, entry) in to_send {
                let request = self.next_request_id();
                if let Some(slot) = self
                    .hints
                    .get_mut(&target)
                    .and_then(|slots| slots.get_mut(&key))
                {
                    slot.in_flight = Some((request, now + timeout));
                }
                self.deliveries.insert(request, (target, key.clone()));
                self.send(
                    target,
                    Message::Replicate {
                        request: RequestId(request),
                        key,
                        entry,
                        hint_for: None,
                    },
                );
            }
        }
    }

    pub(super) fn on_hint_delivered(&mut self, request: u64, ok: bool) {
        let Some((target, key)) = self.deliveries.remove(&request) else {
            return;
        };
        let Some(slot) = self
            .hints
            .get_mut(&target)
            .and_then(|slots| slots.get_mut(&key))
        else {
            return;
        };
        if slot.in_flight.map(|(r, _)| r) != Some(request) {
            // A newer hint replaced the one delivered; keep it.
            return;
        }
        slot.in_flight = None;
        if !ok {
            return;
        }
        let version = slot.hint.entry.version;
        if let Some(slots) = self.hints.get_mut(&target) {
            slots.remove(&key);
            if slots.is_empty() {
                self.hints.remove(&target);
            }
        }
        self.stats.hints_delivered += 1;
        if let Err(e) = self.disk.remove_hint(target, &key, version) {
            log::error!(
                "node {}: cannot forget a delivered hint: {e}",
                self.settings.id
            );
        }
    }
}
