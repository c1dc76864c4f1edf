//! Hinted handoff: writes kept for replicas that could not take them.
//!
//! A hint is stored durably (through [`Disk::put_hint`]) and mirrored
//! here, at most one per target and key (the newest version wins). Hints
//! are bounded per target by count (the oldest are dropped) and by age; a
//! dropped hint is counted and left to read repair. When the failure
//! detector sees a target up, its hints are sent to it in batches as
//! ordinary replicated writes; each is forgotten once acknowledged, and
//! sent again after the request timeout otherwise.

use std::collections::{BTreeMap, HashMap};

use crate::engine::Entry;
use crate::node::disk::{Disk, DiskError, Hint, Ticket};
use crate::node::ids::{DeliveryId, RequestIds};
use crate::node::types::NodeSettings;
use crate::version::NodeId;

/// A hint and its delivery state.
#[derive(Debug, Clone)]
struct HintSlot {
    hint: Hint,
    /// `(delivery, deadline)` of a delivery in flight.
    in_flight: Option<(DeliveryId, u64)>,
}

/// One hint to send now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Delivery {
    pub target: NodeId,
    pub id: DeliveryId,
    pub key: Vec<u8>,
    pub entry: Entry,
}

/// Every hint this node keeps, and the deliveries in flight.
#[derive(Debug)]
pub(crate) struct Handoff {
    me: NodeId,
    hints: BTreeMap<NodeId, BTreeMap<Vec<u8>, HintSlot>>,
    deliveries: HashMap<DeliveryId, (NodeId, Vec<u8>)>,
    max_per_target: usize,
    max_age_millis: u64,
    batch: usize,
    timeout_millis: u64,
    delivered: u64,
    dropped: u64,
}

impl Handoff {
    /// The hints read back from disk at start-up.
    pub fn new(settings: &NodeSettings, stored: Vec<Hint>) -> Handoff {
        let mut hints: BTreeMap<NodeId, BTreeMap<Vec<u8>, HintSlot>> = BTreeMap::new();
        for hint in stored {
            hints.entry(hint.target).or_default().insert(
                hint.key.clone(),
                HintSlot {
                    hint,
                    in_flight: None,
                },
            );
        }
        Handoff {
            me: settings.id,
            hints,
            deliveries: HashMap::new(),
            max_per_target: settings.max_hints_per_target,
            max_age_millis: settings.max_hint_age.as_millis() as u64,
            batch: settings.hint_batch,
            timeout_millis: settings.request_timeout.as_millis() as u64,
            delivered: 0,
            dropped: 0,
        }
    }

    /// Hints waiting per target.
    pub fn pending(&self) -> Vec<(NodeId, usize)> {
        self.hints
            .iter()
            .map(|(&target, hints)| (target, hints.len()))
            .filter(|(_, n)| *n > 0)
            .collect()
    }

    /// Hints delivered and dropped since start.
    pub fn counters(&self) -> (u64, u64) {
        (self.delivered, self.dropped)
    }

    /// Whether a tick could deliver something: deliveries in flight may
    /// time out, and a target that is up may have hints waiting.
    pub fn has_work(&self, is_up: impl Fn(NodeId) -> bool) -> bool {
        !self.deliveries.is_empty() || self.hints.keys().any(|&t| is_up(t))
    }

    /// Stores a hint durably and mirrors it; returns what to wait for
    /// before acknowledging it.
    pub fn keep<D: Disk>(&mut self, disk: &mut D, hint: Hint) -> Result<Option<Ticket>, DiskError> {
        let ticket = disk.put_hint(&hint)?;
        let target = hint.target;
        let slots = self.hints.entry(target).or_default();
        let newer = slots
            .get(&hint.key)
            .is_none_or(|slot| slot.hint.entry.version < hint.entry.version);
        if newer {
            slots.insert(
                hint.key.clone(),
                HintSlot {
                    hint,
                    in_flight: None,
                },
            );
        }
        if slots.len() > self.max_per_target {
            let oldest = slots
                .iter()
                .min_by_key(|(_, slot)| slot.hint.stored_at_millis)
                .map(|(key, _)| key.clone());
            if let Some(key) = oldest {
                self.drop_hint(disk, target, &key);
            }
        }
        Ok(ticket)
    }

    fn drop_hint<D: Disk>(&mut self, disk: &mut D, target: NodeId, key: &[u8]) {
        let Some(slot) = self
            .hints
            .get_mut(&target)
            .and_then(|slots| slots.remove(key))
        else {
            return;
        };
        self.dropped += 1;
        if let Err(e) = disk.remove_hint(target, key, slot.hint.entry.version) {
            log::error!("node {}: cannot drop a hint: {e}", self.me);
        }
    }

    /// Drops hints past the age limit.
    pub fn expire<D: Disk>(&mut self, disk: &mut D, now_wall: u64) {
        let limit = self.max_age_millis;
        let expired: Vec<(NodeId, Vec<u8>)> = self
            .hints
            .iter()
            .flat_map(|(&target, slots)| {
                slots
                    .iter()
                    .filter(|(_, slot)| now_wall.saturating_sub(slot.hint.stored_at_millis) > limit)
                    .map(move |(key, _)| (target, key.clone()))
            })
            .collect();
        for (target, key) in expired {
            self.drop_hint(disk, target, &key);
        }
    }

    /// The hints to send now: for every target that is up, up to a batch
    /// in flight; deliveries that timed out are sent again.
    pub fn due(
        &mut self,
        now_mono: u64,
        is_up: impl Fn(NodeId) -> bool,
        ids: &mut RequestIds,
    ) -> Vec<Delivery> {
        let mut due = Vec::new();
        let deadline = now_mono + self.timeout_millis;
        for (&target, slots) in self.hints.iter_mut() {
            if !is_up(target) {
                continue;
            }
            let mut in_flight = 0;
            for (key, slot) in slots.iter_mut() {
                if let Some((id, until)) = slot.in_flight {
                    if until > now_mono {
                        in_flight += 1;
                        continue;
                    }
                    self.deliveries.remove(&id);
                    slot.in_flight = None;
                }
                if in_flight >= self.batch {
                    continue;
                }
                in_flight += 1;
                let id = ids.delivery();
                slot.in_flight = Some((id, deadline));
                self.deliveries.insert(id, (target, key.clone()));
                due.push(Delivery {
                    target,
                    id,
                    key: key.clone(),
                    entry: slot.hint.entry.clone(),
                });
            }
        }
        due
    }

    /// Forgets every hint without delivering it (tests of read repair).
    #[cfg(test)]
    pub fn forget_all(&mut self) {
        self.hints.clear();
        self.deliveries.clear();
    }

    /// A delivery was acknowledged (`ok`) or refused.
    pub fn on_delivered<D: Disk>(&mut self, disk: &mut D, id: DeliveryId, ok: bool) {
        let Some((target, key)) = self.deliveries.remove(&id) else {
            return;
        };
        let Some(slots) = self.hints.get_mut(&target) else {
            return;
        };
        let Some(slot) = slots.get_mut(&key) else {
            return;
        };
        if slot.in_flight.map(|(d, _)| d) != Some(id) {
            // A newer hint replaced the one delivered; keep it.
            return;
        }
        slot.in_flight = None;
        if !ok {
            return;
        }
        let version = slot.hint.entry.version;
        slots.remove(&key);
        if slots.is_empty() {
            self.hints.remove(&target);
        }
        self.delivered += 1;
        if let Err(e) = disk.remove_hint(target, &key, version) {
            log::error!("node {}: cannot forget a delivered hint: {e}", self.me);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::disk::MemDisk;
    use crate::version::{Timestamp, Version};
    use std::time::Duration;

    fn hint(target: u32, key: &str, ts: u64, at: u64) -> Hint {
        Hint {
            target: NodeId(target),
            key: key.as_bytes().to_vec(),
            entry: Entry::value(Version::new(Timestamp(ts), NodeId(1)), "v"),
            stored_at_millis: at,
        }
    }

    fn settings() -> NodeSettings {
        let mut s = NodeSettings::new(NodeId(1), vec![NodeId(1), NodeId(2)], 2, 1, 1);
        s.max_hints_per_target = 2;
        s.max_hint_age = Duration::from_millis(100);
        s.hint_batch = 1;
        s.request_timeout = Duration::from_millis(10);
        s
    }

    #[test]
    fn count_and_age_bounds_drop_the_oldest() {
        let mut disk = MemDisk::new();
        let mut h = Handoff::new(&settings(), Vec::new());
        for (i, key) in ["a", "b", "c"].iter().enumerate() {
            h.keep(&mut disk, hint(2, key, 1, i as u64)).unwrap();
        }
        assert_eq!(h.pending(), vec![(NodeId(2), 2)]);
        assert_eq!(h.counters(), (0, 1));
        assert_eq!(disk.hints().len(), 2, "the dropped hint left the disk too");
        h.expire(&mut disk, 102);
        assert_eq!(
            h.pending(),
            vec![(NodeId(2), 1)],
            "b (stored at 1) is too old"
        );
        h.expire(&mut disk, 1000);
        assert!(h.pending().is_empty());
    }

    #[test]
    fn deliveries_go_in_batches_retry_after_the_timeout_and_end_on_ack() {
        let mut disk = MemDisk::new();
        let mut ids = RequestIds::new(0);
        let mut h = Handoff::new(&settings(), Vec::new());
        h.keep(&mut disk, hint(2, "a", 1, 0)).unwrap();
        h.keep(&mut disk, hint(2, "b", 1, 0)).unwrap();
        assert!(h.due(0, |_| false, &mut ids).is_empty(), "target down");
        let first = h.due(0, |_| true, &mut ids);
        assert_eq!(first.len(), 1, "one batch in flight");
        assert!(h.due(5, |_| true, &mut ids).is_empty());
        let again = h.due(10, |_| true, &mut ids);
        assert_eq!(again.len(), 1, "timed out: sent again");
        h.on_delivered(&mut disk, first[0].id, true);
        assert_eq!(h.pending(), vec![(NodeId(2), 2)], "a stale delivery id");
        h.on_delivered(&mut disk, again[0].id, true);
        assert_eq!(h.pending(), vec![(NodeId(2), 1)]);
        assert_eq!(h.counters(), (1, 0));
    }
}
