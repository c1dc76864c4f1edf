//! The consistent-hash ring: which nodes hold a key. Pure, no IO.
//!
//! Each node owns `virtual_nodes` tokens on a ring of 2^64 positions. The
//! placement rules below are the contract every language binding must follow
//! bit for bit, so that all of them route a key to the same nodes:
//!
//! * A key's position is [`ring_position`] of its bytes: MurmurHash3 x64-128,
//!   seed 0, low 64 bits (the reference implementation's first output word).
//! * Token `i` (`0 <= i < virtual_nodes`) of node `n` sits at
//!   [`ring_position`] of the ASCII string `"<n>-<i>"`, both numbers in
//!   decimal with no padding or sign: node 12's tokens are `"12-0"`,
//!   `"12-1"`, ..., `"12-127"` (see [`token_position`]).
//! * Tokens are ordered by `(position, node id)`: two tokens at the same
//!   position (a 64-bit hash collision) are ordered by node id, lower first.
//! * A key belongs to the first token at or after its position, wrapping
//!   from the top of the ring to the bottom. Its *walk* visits the tokens
//!   clockwise from there, once round the ring, and yields each node the
//!   first time one of its tokens is met; its *preference list* of N is the
//!   first N nodes of the walk. Sloppy quorum takes the healthy nodes past
//!   the first N.
//!
//! Invariants: the node list is sorted and distinct; every node has exactly
//! `virtual_nodes` (at least 1) tokens; a walk yields every node exactly once.
//! Adding a node only moves keys *to* it: every other key keeps its primary,
//! and a preference list changes only by the new node entering it.

mod preferences;
#[cfg(test)]
mod tests;

pub use preferences::PreferenceLists;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::iter::FusedIterator;

use crate::hash::{ring_position, KeyHash};
use crate::version::NodeId;

/// The default number of tokens per node (`virtual_nodes` in `cluster.conf`).
pub const DEFAULT_VIRTUAL_NODES: usize = 128;

/// The position of token `index` of `node`: [`ring_position`] of the ASCII
/// string `"<node>-<index>"` in decimal, e.g. `"3-17"`.
pub fn token_position(node: NodeId, index: usize) -> u64 {
    let mut name = String::with_capacity(24);
    let _ = write!(name, "{node}-{index}");
    ring_position(name.as_bytes())
}

/// A consistent-hash ring of nodes with virtual-node tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ring {
    /// The members, sorted and distinct.
    nodes: Vec<NodeId>,
    /// Token positions, ascending (ties ordered by owner).
    positions: Vec<u64>,
    /// `owners[i]` is the index in `nodes` of the node owning token `i`.
    owners: Vec<u32>,
    virtual_nodes: usize,
}

impl Ring {
    /// A ring of `nodes` (duplicates ignored, order irrelevant), each with
    /// `virtual_nodes` tokens; 0 is taken as 1.
    pub fn new(nodes: &[NodeId], virtual_nodes: usize) -> Ring {
        let mut nodes = nodes.to_vec();
        nodes.sort_unstable();
        nodes.dedup();
        let virtual_nodes = virtual_nodes.max(1);
        let mut tokens: Vec<(u64, u32)> = Vec::with_capacity(nodes.len() * virtual_nodes);
        let mut name = String::with_capacity(24);
        for (index, node) in nodes.iter().enumerate() {
            // Distinct node ids are u32s, so there are at most 2^32 of them.
            let index = index as u32;
            for i in 0..virtual_nodes {
                name.clear();
                let _ = write!(name, "{node}-{i}");
                tokens.push((ring_position(name.as_bytes()), index));
            }
        }
        // `nodes` is sorted, so ordering owners by index orders them by id.
        tokens.sort_unstable();
        let (positions, owners) = tokens.into_iter().unzip();
        Ring {
            nodes,
            positions,
            owners,
            virtual_nodes,
        }
    }

    /// A key's position on the ring ([`ring_position`] of its bytes).
    pub fn position(key: &[u8]) -> u64 {
        ring_position(key)
    }

    /// The members, sorted by id.
    pub fn nodes(&self) -> &[NodeId] {
        &self.nodes
    }

    /// How many nodes the ring has.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the ring has no nodes (every walk is then empty).
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Whether `node` is a member.
    pub fn contains(&self, node: NodeId) -> bool {
        self.nodes.binary_search(&node).is_ok()
    }

    /// Tokens per node.
    pub fn virtual_nodes(&self) -> usize {
        self.virtual_nodes
    }

    /// Tokens on the ring: `len() * virtual_nodes()`.
    pub fn token_count(&self) -> usize {
        self.positions.len()
    }

    /// Every token as `(position, owner)`, in ring order.
    pub fn tokens(&self) -> impl ExactSizeIterator<Item = (u64, NodeId)> + '_ {
        self.positions
            .iter()
            .zip(&self.owners)
            .map(|(&position, &owner)| (position, self.nodes[owner as usize]))
    }

    /// The node that owns `key`'s position: the first of its walk.
    pub fn primary(&self, key: &[u8]) -> Option<NodeId> {
        self.walk(key).next()
    }

    /// The first `n` distinct nodes clockwise from `key` (all of them if the
    /// ring has fewer than `n`).
    pub fn preference_list(&self, key: &[u8], n: usize) -> Vec<NodeId> {
        self.walk(key).take(n).collect()
    }

    /// The partition a ring position falls in: the index of the first
    /// token at or after it (wrapping past the last). Every key of one
    /// partition has the same preference list, so a partition is what
    /// anti-entropy compares between replicas.
    pub fn partition_of(&self, position: u64) -> u32 {
        let start = self.positions.partition_point(|&p| p < position);
        if start == self.positions.len() {
            0
        } else {
            start as u32
        }
    }

    /// The partition of the key whose hash is `hash`.
    pub fn key_partition(&self, hash: KeyHash) -> u32 {
        self.partition_of(hash.ring_position())
    }

    /// How many partitions the ring has (one per token).
    pub fn partition_count(&self) -> usize {
        self.positions.len()
    }

    /// The first `n` distinct nodes clockwise from partition `partition`'s
    /// token: the replicas of every key in it.
    pub fn partition_replicas(&self, partition: u32, n: usize) -> Vec<NodeId> {
        match self.positions.get(partition as usize) {
            Some(&position) => self.walk_from(position).take(n).collect(),
            None => Vec::new(),
        }
    }

    /// Every node once, in clockwise order from `key`'s position.
    pub fn walk(&self, key: &[u8]) -> Walk<'_> {
        self.walk_from(ring_position(key))
    }

    /// Every node once, in clockwise order from the first token at or after
    /// `position`.
    pub fn walk_from(&self, position: u64) -> Walk<'_> {
        let start = self.positions.partition_point(|&p| p < position);
        Walk {
            ring: self,
            next: if start == self.positions.len() {
                0
            } else {
                start
            },
            steps_left: self.positions.len(),
            remaining: self.nodes.len(),
            seen: Seen::new(self.nodes.len()),
        }
    }

    /// The fraction of the 2^64 positions each node owns as primary. Token
    /// `i` owns the arc after the previous token up to and including its own
    /// position. The fractions of all nodes sum to 1 (up to rounding); an
    /// empty ring gives an empty map.
    pub fn ownership(&self) -> BTreeMap<NodeId, f64> {
        let mut owned = vec![0u128; self.nodes.len()];
        let count = self.positions.len();
        for (i, (&position, &owner)) in self.positions.iter().zip(&self.owners).enumerate() {
            let arc = if i == 0 {
                // From the last token round through the top of the ring.
                let last = self.positions[count - 1];
                (1u128 << 64) - u128::from(last - position)
            } else {
                u128::from(position - self.positions[i - 1])
            };
            owned[owner as usize] += arc;
        }
        let ring = (1u128 << 64) as f64;
        self.nodes
            .iter()
            .zip(owned)
            .map(|(&node, arc)| (node, arc as f64 / ring))
            .collect()
    }
}

/// The distinct nodes clockwise from a position: see [`Ring::walk`].
///
/// Visits each token at most once and stops as soon as every node has been
/// yielded; its only allocation is a seen-set of one bit per node, inline up
/// to 256 nodes.
#[derive(Debug, Clone)]
pub struct Walk<'a> {
    ring: &'a Ring,
    /// The next token to visit.
    next: usize,
    /// Tokens not yet visited.
    steps_left: usize,
    /// Nodes not yet yielded.
    remaining: usize,
    seen: Seen,
}

impl Iterator for Walk<'_> {
    type Item = NodeId;

    fn next(&mut self) -> Option<NodeId> {
        while self.remaining > 0 && self.steps_left > 0 {
            let token = self.next;
            self.next = if token + 1 == self.ring.positions.len() {
                0
            } else {
                token + 1
            };
            self.steps_left -= 1;
            let owner = self.ring.owners[token] as usize;
            if self.seen.insert(owner) {
                self.remaining -= 1;
                return Some(self.ring.nodes[owner]);
            }
        }
        None
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        // Every node has a token, and a walk goes once round the whole ring,
        // so it yields exactly the nodes not seen yet.
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for Walk<'_> {}
impl FusedIterator for Walk<'_> {}

/// A set of node indices, one bit each.
#[derive(Debug, Clone)]
enum Seen {
    Inline([u64; 4]),
    Heap(Vec<u64>),
}

impl Seen {
    fn new(nodes: usize) -> Seen {
        if nodes <= 256 {
            Seen::Inline([0; 4])
        } else {
            Seen::Heap(vec![0; nodes.div_ceil(64)])
        }
    }

    /// Adds `index`; whether it was absent.
    fn insert(&mut self, index: usize) -> bool {
        let words: &mut [u64] = match self {
            Seen::Inline(words) => words,
            Seen::Heap(words) => words,
        };
        let (word, bit) = (index / 64, 1u64 << (index % 64));
        let absent = words[word] & bit == 0;
        words[word] |= bit;
        absent
    }
}
