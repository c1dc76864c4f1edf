//! Typed ids for the requests a node sends its peers.
//!
//! Writes, reads, hint deliveries and read repairs each have their own id
//! type, so a reply cannot be routed to the wrong part of the node. On the
//! wire they share one [`RequestId`] space: the top two bits say which
//! kind an id is, the rest is a sequence number. A replica echoes the id
//! unchanged, and [`Classified::of`] tells the coordinator what an
//! acknowledgement or read reply answers.

use crate::peer::RequestId;

const KIND_SHIFT: u32 = 62;
const SEQUENCE_MASK: u64 = (1 << KIND_SHIFT) - 1;

const KIND_WRITE: u64 = 0;
const KIND_READ: u64 = 1;
const KIND_DELIVERY: u64 = 2;
const KIND_REPAIR: u64 = 3;

macro_rules! request_id {
    ($(#[$doc:meta])* $name:ident, $kind:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub(crate) struct $name(u64);

        impl From<$name> for RequestId {
            fn from(id: $name) -> RequestId {
                RequestId(($kind << KIND_SHIFT) | id.0)
            }
        }
    };
}

request_id!(
    /// A quorum write this node coordinates.
    WriteId,
    KIND_WRITE
);
request_id!(
    /// A quorum read this node coordinates.
    ReadId,
    KIND_READ
);
request_id!(
    /// One hint sent to the replica it was kept for.
    DeliveryId,
    KIND_DELIVERY
);
request_id!(
    /// A read repair: fire and forget, its acknowledgement is ignored.
    RepairId,
    KIND_REPAIR
);

impl ReadId {
    /// The id a read repair sent while this read waits is acknowledged
    /// under: the same sequence, the repair kind.
    pub fn repair(self) -> RepairId {
        RepairId(self.0)
    }
}

impl RepairId {
    /// The read this repair was sent for, if it was one (a repair sent
    /// after its read finished finds none).
    pub fn read(self) -> ReadId {
        ReadId(self.0)
    }
}

/// What a [`RequestId`] received from a peer answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Classified {
    Write(WriteId),
    Read(ReadId),
    Delivery(DeliveryId),
    Repair(RepairId),
}

impl Classified {
    /// Splits a wire id into its kind and sequence.
    pub fn of(id: RequestId) -> Classified {
        let sequence = id.0 & SEQUENCE_MASK;
        match id.0 >> KIND_SHIFT {
            KIND_WRITE => Classified::Write(WriteId(sequence)),
            KIND_READ => Classified::Read(ReadId(sequence)),
            KIND_DELIVERY => Classified::Delivery(DeliveryId(sequence)),
            _ => Classified::Repair(RepairId(sequence)),
        }
    }
}

/// Hands out ids, one sequence for all kinds (so an id is unique whatever
/// its kind, which makes logs unambiguous).
///
/// The sequence starts from the wall clock when the node starts, in its
/// high bits: a node that restarts must not hand out again an id its
/// previous life used, or a late answer to the old request (delayed in the
/// network, or queued while this node was paused) would count for the new
/// one.
#[derive(Debug, Clone)]
pub(crate) struct RequestIds {
    next: u64,
}

/// Ids one start may hand out per millisecond since the epoch before it
/// could meet the next start's (a million per ms).
const PER_START_SHIFT: u32 = 20;

impl RequestIds {
    /// Ids for a node started at `wall_millis`.
    pub fn new(wall_millis: u64) -> RequestIds {
        let base = (wall_millis << PER_START_SHIFT) & SEQUENCE_MASK;
        RequestIds { next: base + 1 }
    }

    fn next_sequence(&mut self) -> u64 {
        let sequence = self.next;
        // 2^62 ids: wrapping would take a century at a billion a second.
        self.next = (self.next + 1) & SEQUENCE_MASK;
        debug_assert!(sequence <= SEQUENCE_MASK);
        sequence
    }

    pub fn write(&mut self) -> WriteId {
        WriteId(self.next_sequence())
    }

    pub fn read(&mut self) -> ReadId {
        ReadId(self.next_sequence())
    }

    pub fn delivery(&mut self) -> DeliveryId {
        DeliveryId(self.next_sequence())
    }

    pub fn repair(&mut self) -> RepairId {
        RepairId(self.next_sequence())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips_through_the_wire_id() {
        let mut ids = RequestIds::new(1_700_000_000_000);
        let write = ids.write();
        let read = ids.read();
        let delivery = ids.delivery();
        let repair = ids.repair();
        assert_eq!(Classified::of(write.into()), Classified::Write(write));
        assert_eq!(Classified::of(read.into()), Classified::Read(read));
        assert_eq!(
            Classified::of(delivery.into()),
            Classified::Delivery(delivery)
        );
        assert_eq!(Classified::of(repair.into()), Classified::Repair(repair));
        let wire: Vec<RequestId> = vec![write.into(), read.into(), delivery.into(), repair.into()];
        let mut unique = wire.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), wire.len());
    }

    #[test]
    fn a_restarted_node_never_reuses_its_ids() {
        let mut before = RequestIds::new(1_700_000_000_000);
        let mut after = RequestIds::new(1_700_000_000_001);
        let old: Vec<RequestId> = (0..1000).map(|_| before.write().into()).collect();
        let new: Vec<RequestId> = (0..1000).map(|_| after.write().into()).collect();
        assert!(old.iter().all(|id| !new.contains(id)));
    }

    #[test]
    fn any_wire_id_classifies_without_panicking() {
        for raw in [0, 1, u64::MAX, 1 << 62, 3 << 62, SEQUENCE_MASK] {
            let _ = Classified::of(RequestId(raw));
        }
    }
}
