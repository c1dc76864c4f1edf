//! [`TicTacTree`]: a Merkle tree whose hashes combine by XOR (Riak's
//! TictacAAE), so a write updates it from the old and the new version of
//! its key alone, without rescanning anything.
//!
//! A key falls in one of [`SEGMENTS`] leaves; a leaf holds the XOR of
//! `hash(key, version)` over its keys, a branch the XOR of its
//! [`LEAVES_PER_BRANCH`] leaves, the root the XOR of the branches. Two
//! replicas holding the same keys at the same versions have equal trees;
//! where they differ, comparing branches, then the leaves of the branches
//! that differ, finds the segments to compare key by key. Pure data.

use crate::hash::{murmur3_x64_128, KeyHash};
use crate::version::Version;

/// Leaves of a tree.
pub const SEGMENTS: usize = 1024;
/// Leaves under one branch.
pub const LEAVES_PER_BRANCH: usize = 32;
/// Branches of a tree.
pub const BRANCHES: usize = SEGMENTS / LEAVES_PER_BRANCH;

/// The leaf a key falls in, by its [`KeyHash`]: the high bits (the ring
/// position uses the low ones, so the leaves of one partition fill evenly).
pub fn segment_of(hash: KeyHash) -> u16 {
    (hash.high() % SEGMENTS as u64) as u16
}

/// What one key at one version adds to its leaf.
pub fn entry_hash(key: &[u8], version: Version) -> u64 {
    let mut prefix = [0u8; 12];
    prefix[..8].copy_from_slice(&version.timestamp.0.to_le_bytes());
    prefix[8..].copy_from_slice(&version.node_id.0.to_le_bytes());
    leaf_hash(&prefix, key, 0x7ac7ac)
}

/// What a counter's state digest adds to its key's leaf (0 for none).
fn state_hash(key: &[u8], state: u64) -> u64 {
    if state == 0 {
        return 0;
    }
    leaf_hash(key, &state.to_le_bytes(), 0x57a7e)
}

/// MurmurHash3 of `first` then `second` under `seed`, never zero (zero
/// would make a key invisible to the tree).
fn leaf_hash(first: &[u8], second: &[u8], seed: u32) -> u64 {
    let len = first.len() + second.len();
    let mut on_stack = [0u8; 256];
    let mut on_heap = Vec::new();
    let bytes = if len <= on_stack.len() {
        on_stack[..first.len()].copy_from_slice(first);
        on_stack[first.len()..len].copy_from_slice(second);
        &on_stack[..len]
    } else {
        on_heap.reserve_exact(len);
        on_heap.extend_from_slice(first);
        on_heap.extend_from_slice(second);
        &on_heap[..]
    };
    (murmur3_x64_128(bytes, seed) as u64).max(1)
}

/// One partition's tree.
#[derive(Clone, PartialEq, Eq)]
pub struct TicTacTree {
    leaves: Box<[u64; SEGMENTS]>,
    branches: [u64; BRANCHES],
    keys: u64,
}

impl std::fmt::Debug for TicTacTree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TicTacTree")
            .field("root", &format_args!("{:016x}", self.root()))
            .field("keys", &self.keys)
            .finish()
    }
}

impl Default for TicTacTree {
    fn default() -> TicTacTree {
        TicTacTree {
            leaves: Box::new([0; SEGMENTS]),
            branches: [0; BRANCHES],
            keys: 0,
        }
    }
}

impl TicTacTree {
    /// `key` (whose hash is `hash`) went from `old` (none: it was absent)
    /// to `new` (none: it is gone from this replica entirely). Tombstones
    /// are versions like any other and stay in the tree.
    pub fn update(
        &mut self,
        key: &[u8],
        hash: KeyHash,
        old: Option<Version>,
        new: Option<Version>,
    ) {
        debug_assert_eq!(hash, KeyHash::of(key), "the hash is the key's");
        if old == new {
            return;
        }
        let mut delta = 0;
        if let Some(old) = old {
            delta ^= entry_hash(key, old);
            self.keys = self.keys.saturating_sub(1);
        }
        if let Some(new) = new {
            delta ^= entry_hash(key, new);
            self.keys += 1;
        }
        let segment = segment_of(hash) as usize;
        self.leaves[segment] ^= delta;
        self.branches[segment / LEAVES_PER_BRANCH] ^= delta;
    }

    /// A counter at `key` (whose hash is `hash`) changed state from `old`
    /// to `new` (digests, 0 for none): copies of one version that differ
    /// in their counter state then differ in their trees too.
    pub fn update_state(&mut self, key: &[u8], hash: KeyHash, old: u64, new: u64) {
        debug_assert_eq!(hash, KeyHash::of(key), "the hash is the key's");
        if old == new {
            return;
        }
        let delta = state_hash(key, old) ^ state_hash(key, new);
        let segment = segment_of(hash) as usize;
        self.leaves[segment] ^= delta;
        self.branches[segment / LEAVES_PER_BRANCH] ^= delta;
    }

    /// The XOR of every branch.
    pub fn root(&self) -> u64 {
        self.branches.iter().fold(0, |acc, b| acc ^ b)
    }

    pub fn branches(&self) -> &[u64; BRANCHES] {
        &self.branches
    }

    /// The leaves of branch `branch`, first segment first.
    pub fn leaves_of(&self, branch: usize) -> &[u64] {
        let start = branch * LEAVES_PER_BRANCH;
        &self.leaves[start..start + LEAVES_PER_BRANCH]
    }

    /// Keys the tree holds (tombstones included).
    pub fn keys(&self) -> u64 {
        self.keys
    }

    /// The branches where `theirs` differs from this tree.
    pub fn branches_differing(&self, theirs: &[u64]) -> Vec<u16> {
        (0..BRANCHES)
            .filter(|&b| theirs.get(b).copied().unwrap_or(0) != self.branches[b])
            .map(|b| b as u16)
            .collect()
    }

    /// Of `theirs` (segment, leaf) pairs, the segments whose leaf differs.
    pub fn segments_differing(&self, theirs: &[(u16, u64)]) -> Vec<u16> {
        theirs
            .iter()
            .filter(|(segment, leaf)| {
                self.leaves
                    .get(*segment as usize)
                    .is_some_and(|mine| mine != leaf)
            })
            .map(|(segment, _)| *segment)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::version::{NodeId, Timestamp};

    fn v(ts: u64) -> Version {
        Version::new(Timestamp(ts), NodeId(1))
    }

    /// The hash of two byte strings is the hash of their concatenation,
    /// on either side of the stack buffer's size.
    #[test]
    fn leaf_hash_is_the_hash_of_the_concatenation() {
        for len in [0, 1, 100, 243, 244, 245, 256, 257, 1000] {
            let key: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let mut both = b"prefix-12byt".to_vec();
            both.extend_from_slice(&key);
            let expected = (murmur3_x64_128(&both, 7) as u64).max(1);
            assert_eq!(leaf_hash(b"prefix-12byt", &key, 7), expected, "{len}");
        }
    }

    #[test]
    fn order_does_not_matter_and_updates_undo() {
        let mut a = TicTacTree::default();
        let mut b = TicTacTree::default();
        a.update(b"x", KeyHash::of(b"x"), None, Some(v(1)));
        a.update(b"y", KeyHash::of(b"y"), None, Some(v(2)));
        a.update(b"x", KeyHash::of(b"x"), Some(v(1)), Some(v(3)));
        b.update(b"y", KeyHash::of(b"y"), None, Some(v(2)));
        b.update(b"x", KeyHash::of(b"x"), None, Some(v(3)));
        assert_eq!(a, b);
        assert_eq!(a.keys(), 2);
        assert_ne!(a.root(), 0);
        b.update(b"x", KeyHash::of(b"x"), Some(v(3)), None);
        b.update(b"y", KeyHash::of(b"y"), Some(v(2)), None);
        assert_eq!(b, TicTacTree::default());
        assert_eq!(b.root(), 0);
    }

    /// Leaves are compared between replicas, so where a key falls is
    /// fixed: the high word of its seed-0 MurmurHash3, whose low word is
    /// its ring position.
    #[test]
    fn a_keys_segment_is_the_high_word_of_its_ring_hash() {
        for key in [&b""[..], b"k7", b"key:000000012345", &[0xff; 40]] {
            let both = murmur3_x64_128(key, 0);
            let hash = KeyHash::of(key);
            assert_eq!(
                segment_of(hash) as u64,
                ((both >> 64) as u64) % SEGMENTS as u64
            );
            assert_eq!(hash.ring_position(), crate::hash::ring_position(key));
            assert_eq!(hash.ring_position(), both as u64);
        }
    }

    #[test]
    fn a_difference_is_found_down_to_its_segment() {
        let mut a = TicTacTree::default();
        let mut b = TicTacTree::default();
        for i in 0..500u32 {
            let key = format!("k{i}");
            a.update(
                key.as_bytes(),
                KeyHash::of(key.as_bytes()),
                None,
                Some(v(1)),
            );
            b.update(
                key.as_bytes(),
                KeyHash::of(key.as_bytes()),
                None,
                Some(v(1)),
            );
        }
        assert_eq!(a.root(), b.root());
        b.update(b"k7", KeyHash::of(b"k7"), Some(v(1)), Some(v(2)));
        let branches = a.branches_differing(b.branches());
        let segment = segment_of(KeyHash::of(b"k7"));
        assert_eq!(branches, vec![segment / LEAVES_PER_BRANCH as u16]);
        let branch = branches[0] as usize;
        let theirs: Vec<(u16, u64)> = b
            .leaves_of(branch)
            .iter()
            .enumerate()
            .map(|(i, leaf)| ((branch * LEAVES_PER_BRANCH + i) as u16, *leaf))
            .collect();
        assert_eq!(a.segments_differing(&theirs), vec![segment]);
    }
}
