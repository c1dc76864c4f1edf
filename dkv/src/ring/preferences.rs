//! Every partition's preference list for one replication factor, worked
//! out once from the ring: a key's owners are then a binary search for its
//! partition and a slice, with no walk of the tokens per request.

use super::Ring;
use crate::version::NodeId;

/// The first `n` nodes of each partition's walk (all the nodes when the
/// ring has fewer), back to back in partition order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreferenceLists {
    /// Nodes per list: `min(n, nodes)`.
    width: usize,
    lists: Vec<NodeId>,
}

impl PreferenceLists {
    /// The lists of every partition of `ring` for `n` replicas.
    pub fn new(ring: &Ring, n: usize) -> PreferenceLists {
        let width = n.min(ring.len());
        let mut lists = Vec::with_capacity(ring.partition_count() * width);
        for partition in 0..ring.partition_count() as u32 {
            lists.extend(ring.partition_replicas(partition, width));
        }
        debug_assert_eq!(lists.len(), ring.partition_count() * width);
        PreferenceLists { width, lists }
    }

    /// The replicas of every key in `partition`, in walk order: empty for a
    /// partition the ring does not have.
    pub fn of_partition(&self, partition: u32) -> &[NodeId] {
        let start = partition as usize * self.width;
        self.lists.get(start..start + self.width).unwrap_or(&[])
    }

    /// Nodes per list: the replication factor, or the ring's size when
    /// smaller.
    pub fn width(&self) -> usize {
        self.width
    }
}
