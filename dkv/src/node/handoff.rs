//! Hinted handoff: writes kept for replicas that could not take them.
//!
//! A hint is stored durably (through [`Disk::put_hint`]) and mirrored
//! here, at most one per target and key (the newest version wins). Hints
//! are kept only for members of the cluster, and bounded per target by
//! count and by bytes (the oldest are dropped) and by age; a dropped hint
//! is counted and left to read repair. When the failure
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
    /// Bytes of the hints kept per target, as [`hint_bytes`] counts them.
    bytes: BTreeMap<NodeId, usize>,
    deliveries: HashMap<DeliveryId, (NodeId, Vec<u8>)>,
    max_per_target: usize,
    max_bytes_per_target: usize,
    max_age_millis: u64,
    batch: usize,
    timeout_millis: u64,
    delivered: u64,
    dropped: u64,
}

/// What one hint is counted as against the byte bound: its key and value
/// plus a fixed allowance for the entry, the slot and the map.
pub(crate) fn hint_bytes(hint: &Hint) -> usize {
    const OVERHEAD: usize = 96;
    hint.key.len() + hint.entry.value.as_ref().map_or(0, |v| v.len()) + OVERHEAD
}

impl Handoff {
    /// The hints read back from disk at start-up.
    pub fn new(settings: &NodeSettings, stored: Vec<Hint>) -> Handoff {
        let mut hints: BTreeMap<NodeId, BTreeMap<Vec<u8>, HintSlot>> = BTreeMap::new();
        let mut bytes: BTreeMap<NodeId, usize> = BTreeMap::new();
        for hint in stored {
            *bytes.entry(hint.target).or_default() += hint_bytes(&hint);
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
            bytes,
            deliveries: HashMap::new(),
            max_per_target: settings.max_hints_per_target,
            max_bytes_per_target: settings.max_hint_bytes_per_target,
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
    /// before acknowledging it. Past the target's count or byte bound the
    /// oldest hints are dropped, this one last of all.
    pub fn keep<D: Disk>(&mut self, disk: &mut D, hint: Hint) -> Result<Option<Ticket>, DiskError> {
        let ticket = disk.put_hint(&hint)?;
        let target = hint.target;
        let slots = self.hints.entry(target).or_default();
        let newer = slots
            .get(&hint.key)
            .is_none_or(|slot| slot.hint.entry.version < hint.entry.version);
        if newer {
            let added = hint_bytes(&hint);
            let replaced = slots
                .insert(
                    hint.key.clone(),
                    HintSlot {
                        hint,
                        in_flight: None,
                    },
                )
                .map_or(0, |old| hint_bytes(&old.hint));
            let bytes = self.bytes.entry(target).or_default();
            *bytes = (*bytes + added).saturating_sub(replaced);
        }
        // Each pass drops one hint, so this ends within the slots' count.
        loop {
            let count = self.hints.get(&target).map_or(0, BTreeMap::len);
            let bytes = self.bytes.get(&target).copied().unwrap_or(0);
            if count <= self.max_per_target && (bytes <= self.max_bytes_per_target || count <= 1) {
                break;
            }
            let oldest = self.hints.get(&target).and_then(|slots| {
                slots
                    .iter()
                    .min_by_key(|(_, slot)| slot.hint.stored_at_millis)
                    .map(|(key, _)| key.clone())
            });
            let Some(key) = oldest else {
                break;
            };
            self.drop_hint(disk, target, &key);
        }
        Ok(ticket)
    }

    /// Bytes of the hints kept for `target`.
    #[cfg(test)]
    pub fn bytes_for(&self, target: NodeId) -> usize {
        self.bytes.get(&target).copied().unwrap_or(0)
    }

    /// Bytes of the hints kept, all targets together.
    pub fn total_bytes(&self) -> usize {
        self.bytes.values().sum()
    }

    /// Forgets the slot of `key` for `target`, keeping the byte count.
    fn remove_slot(&mut self, target: NodeId, key: &[u8]) -> Option<HintSlot> {
        let slots = self.hints.get_mut(&target)?;
        let slot = slots.remove(key)?;
        if slots.is_empty() {
            self.hints.remove(&target);
        }
        if let Some(bytes) = self.bytes.get_mut(&target) {
            *bytes = bytes.saturating_sub(hint_bytes(&slot.hint));
            if *bytes == 0 {
                self.bytes.remove(&target);
            }
        }
        Some(slot)
    }

    fn drop_hint<D: Disk>(&mut self, disk: &mut D, target: NodeId, key: &[u8]) {
        let Some(slot) = self.remove_slot(target, key) else {
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
        self.bytes.clear();
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
        self.remove_slot(target, &key);
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
        s.max_hint_bytes_per_target = 1 << 20;
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
    fn the_byte_bound_drops_the_oldest_but_keeps_the_newest() {
        let mut disk = MemDisk::new();
        let mut s = settings();
        s.max_hints_per_target = 100;
        s.max_hint_bytes_per_target = 3 * (1000 + 1 + 96);
        let mut h = Handoff::new(&s, Vec::new());
        let big = |key: &str, at: u64| Hint {
            entry: Entry::value(Version::new(Timestamp(1), NodeId(1)), vec![0u8; 1000]),
            ..hint(2, key, 1, at)
        };
        for (i, key) in ["a", "b", "c", "d", "e"].iter().enumerate() {
            h.keep(&mut disk, big(key, i as u64)).unwrap();
        }
        assert_eq!(h.pending(), vec![(NodeId(2), 3)]);
        assert_eq!(h.counters(), (0, 2));
        assert_eq!(h.bytes_for(NodeId(2)), 3 * 1097);
        assert_eq!(disk.hints().len(), 3);
        // A single hint over the bound is still kept: it is the newest.
        s.max_hint_bytes_per_target = 10;
        let mut h = Handoff::new(&s, Vec::new());
        h.keep(&mut disk, big("z", 9)).unwrap();
        assert_eq!(h.pending(), vec![(NodeId(2), 1)]);
        // Replacing a hint counts the new one's bytes, not both.
        let mut h = Handoff::new(&settings(), Vec::new());
        h.keep(&mut disk, hint(2, "k", 1, 0)).unwrap();
        h.keep(&mut disk, hint(2, "k", 2, 1)).unwrap();
        assert_eq!(h.bytes_for(NodeId(2)), 1 + 1 + 96);
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
