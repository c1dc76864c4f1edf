//! Versions: the `(timestamp, node_id)` pairs that order writes to a key.
//!
//! Last-Write-Wins compares versions timestamp first, then node id, so two
//! different writes always have distinct versions (a node never issues the
//! same timestamp twice, see [`crate::clock`]) and every replica picks the
//! same winner whatever order the writes arrive in.

use std::fmt;

/// A node's identity in the cluster (`node <id>` in `cluster.conf`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct NodeId(pub u32);

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A hybrid-logical-clock timestamp: milliseconds since the Unix epoch in the
/// upper 48 bits, a logical counter in the lower 16 (see [`crate::clock`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// Bits of the logical part.
    pub const LOGICAL_BITS: u32 = 16;

    /// The timestamp at `millis` with logical part zero.
    pub fn from_millis(millis: u64) -> Self {
        Timestamp(millis << Self::LOGICAL_BITS)
    }

    /// The physical part, in milliseconds since the Unix epoch.
    pub fn millis(self) -> u64 {
        self.0 >> Self::LOGICAL_BITS
    }
}

/// The version of one write: compared by timestamp, then by node id.
///
/// The derived `Ord` relies on the field order: `timestamp` first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Version {
    /// When the write was issued, by its coordinator's hybrid clock.
    pub timestamp: Timestamp,
    /// The coordinator that issued it; breaks ties between equal timestamps.
    pub node_id: NodeId,
}

impl Version {
    /// A version from its parts.
    pub fn new(timestamp: Timestamp, node_id: NodeId) -> Self {
        Version { timestamp, node_id }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.timestamp.0, self.node_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(ts: u64, node: u32) -> Version {
        Version::new(Timestamp(ts), NodeId(node))
    }

    #[test]
    fn timestamp_orders_before_node_id() {
        assert!(v(2, 1) > v(1, 9));
        assert!(v(1, 2) > v(1, 1));
        assert_eq!(v(3, 3), v(3, 3));
    }

    #[test]
    fn millis_round_trip() {
        let ts = Timestamp::from_millis(1_700_000_000_123);
        assert_eq!(ts.millis(), 1_700_000_000_123);
        assert_eq!(Timestamp(ts.0 + 5).millis(), 1_700_000_000_123);
    }
}
