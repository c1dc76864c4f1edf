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

use crate::hash::KeyHash;
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

/// What one key at one version adds to its leaf: its [`KeyHash`] mixed
/// with the version, so no second pass over the key's bytes.
pub fn entry_hash(hash: KeyHash, version: Version) -> u64 {
    leaf_hash(hash, version.timestamp.0, u64::from(version.node_id.0))
}

/// What a counter's state digest adds to its key's leaf (0 for none).
fn state_hash(hash: KeyHash, state: u64) -> u64 {
    if state == 0 {
        return 0;
    }
    // Past every u32: never the node id of an entry's hash.
    const STATE_TAG: u64 = 0x57a7e << 32;
    leaf_hash(hash, state, STATE_TAG)
}

/// `fmix64(fmix64(low ^ a) ^ high ^ b)` of the key's hash words, never
/// zero (zero would make a key invisible to the tree). `fmix64` is
/// MurmurHash3's finalizer, a bijection that spreads every input bit over
/// the output: two versions of one key differ in `a` or `b`, so their
/// hashes differ as unrelated numbers.
fn leaf_hash(hash: KeyHash, a: u64, b: u64) -> u64 {
    let (low, high) = hash.words();
    fmix64(fmix64(low ^ a) ^ high ^ b).max(1)
}

/// MurmurHash3's 64-bit finalizer.
fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^= k >> 33;
    k
}

/// One partition's tree.
///
/// Branches, leaves and the key count sit in one allocation, behind the
/// one pointer the table of trees holds, so that table stays small enough
/// to stay in cache and an update finds its branch and its leaf from that
/// pointer with no load in between. (A node keeps a tree per partition it
/// replicates, about 8 KiB each, 3 MiB for 384 partitions, so a write's
/// leaf is rarely in cache; benches/README.md, 2026-12-03, night.)
#[derive(Clone, PartialEq, Eq)]
pub struct TicTacTree(Box<Tree>);

#[derive(Clone, PartialEq, Eq)]
struct Tree {
    branches: [u64; BRANCHES],
    leaves: [u64; SEGMENTS],
    keys: u64,
}

impl std::fmt::Debug for TicTacTree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TicTacTree")
            .field("root", &format_args!("{:016x}", self.root()))
            .field("keys", &self.0.keys)
            .finish()
    }
}

impl Default for TicTacTree {
    fn default() -> TicTacTree {
        TicTacTree(Box::new(Tree {
            branches: [0; BRANCHES],
            leaves: [0; SEGMENTS],
            keys: 0,
        }))
    }
}

impl TicTacTree {
    /// The key whose hash is `hash` went from `old` (none: it was absent)
    /// to `new` (none: it is gone from this replica entirely). Tombstones
    /// are versions like any other and stay in the tree.
    pub fn update(&mut self, hash: KeyHash, old: Option<Version>, new: Option<Version>) {
        if old == new {
            return;
        }
        let tree = &mut *self.0;
        let mut delta = 0;
        if let Some(old) = old {
            delta ^= entry_hash(hash, old);
            tree.keys = tree.keys.saturating_sub(1);
        }
        if let Some(new) = new {
            delta ^= entry_hash(hash, new);
            tree.keys += 1;
        }
        tree.flip(segment_of(hash) as usize, delta);
    }

    /// The counter whose key's hash is `hash` changed state from `old` to
    /// `new` (digests, 0 for none): copies of one version that differ in
    /// their counter state then differ in their trees too.
    pub fn update_state(&mut self, hash: KeyHash, old: u64, new: u64) {
        if old == new {
            return;
        }
        let delta = state_hash(hash, old) ^ state_hash(hash, new);
        self.0.flip(segment_of(hash) as usize, delta);
    }

    /// The XOR of every branch.
    pub fn root(&self) -> u64 {
        self.0.branches.iter().fold(0, |acc, b| acc ^ b)
    }

    pub fn branches(&self) -> &[u64; BRANCHES] {
        &self.0.branches
    }

    /// The leaves of branch `branch`, first segment first.
    pub fn leaves_of(&self, branch: usize) -> &[u64] {
        self.0.leaves_of_branch(branch)
    }

    /// Keys the tree holds (tombstones included).
    pub fn keys(&self) -> u64 {
        self.0.keys
    }

    /// The branches where `theirs` differs from this tree.
    pub fn branches_differing(&self, theirs: &[u64]) -> Vec<u16> {
        (0..BRANCHES)
            .filter(|&b| theirs.get(b).copied().unwrap_or(0) != self.0.branches[b])
            .map(|b| b as u16)
            .collect()
    }

    /// Of `theirs` (segment, leaf) pairs, the segments whose leaf differs.
    pub fn segments_differing(&self, theirs: &[(u16, u64)]) -> Vec<u16> {
        theirs
            .iter()
            .filter(|(segment, leaf)| {
                self.0
                    .leaves
                    .get(*segment as usize)
                    .is_some_and(|mine| mine != leaf)
            })
            .map(|(segment, _)| *segment)
            .collect()
    }
}

impl Tree {
    /// XORs `delta` into `segment`'s leaf and its branch.
    fn flip(&mut self, segment: usize, delta: u64) {
        self.leaves[segment] ^= delta;
        self.branches[segment / LEAVES_PER_BRANCH] ^= delta;
        debug_assert_eq!(
            self.branches[segment / LEAVES_PER_BRANCH],
            self.leaves_of_branch(segment / LEAVES_PER_BRANCH)
                .iter()
                .fold(0, |acc, l| acc ^ l),
            "a branch is the XOR of its leaves"
        );
    }

    fn leaves_of_branch(&self, branch: usize) -> &[u64] {
        let start = branch * LEAVES_PER_BRANCH;
        &self.leaves[start..start + LEAVES_PER_BRANCH]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::murmur3_x64_128;
    use crate::version::{NodeId, Timestamp};

    fn v(ts: u64) -> Version {
        Version::new(Timestamp(ts), NodeId(1))
    }

    /// Leaves are compared between replicas: what an entry adds is part
    /// of the peer protocol (`docs/peer-protocol.md`), pinned here.
    #[test]
    fn entry_and_state_hashes_are_the_documented_ones() {
        let hash = KeyHash::of(b"k");
        let version = Version::new(Timestamp(0x10), NodeId(2));
        let (low, high) = hash.words();
        assert_eq!(
            entry_hash(hash, version),
            fmix64(fmix64(low ^ 0x10) ^ high ^ 2)
        );
        assert_eq!(entry_hash(hash, version), PINNED_ENTRY);
        assert_eq!(
            state_hash(hash, 7),
            fmix64(fmix64(low ^ 7) ^ high ^ (0x57a7e << 32))
        );
        assert_eq!(state_hash(hash, 0), 0);
        assert_eq!(fmix64(0x10), PINNED_FMIX);
    }

    const PINNED_ENTRY: u64 = 0xb7c0_9110_25a5_927e;
    const PINNED_FMIX: u64 = 0x5f69_4972_d3c6_8944;

    /// No two of many keys at many versions add the same hash, and the
    /// versions of one key never do.
    #[test]
    fn entry_hashes_do_not_collide() {
        let mut seen = std::collections::HashSet::new();
        for k in 0..2_000u32 {
            let hash = KeyHash::of(format!("key:{k:012}").as_bytes());
            for ts in [1u64, 2, 3, 1 << 16, u64::MAX] {
                for node in [1u32, 2, 3] {
                    let version = Version::new(Timestamp(ts), NodeId(node));
                    assert!(seen.insert(entry_hash(hash, version)), "{k} {ts} {node}");
                }
            }
        }
    }

    #[test]
    fn order_does_not_matter_and_updates_undo() {
        let mut a = TicTacTree::default();
        let mut b = TicTacTree::default();
        a.update(KeyHash::of(b"x"), None, Some(v(1)));
        a.update(KeyHash::of(b"y"), None, Some(v(2)));
        a.update(KeyHash::of(b"x"), Some(v(1)), Some(v(3)));
        b.update(KeyHash::of(b"y"), None, Some(v(2)));
        b.update(KeyHash::of(b"x"), None, Some(v(3)));
        assert_eq!(a, b);
        assert_eq!(a.keys(), 2);
        assert_ne!(a.root(), 0);
        b.update(KeyHash::of(b"x"), Some(v(3)), None);
        b.update(KeyHash::of(b"y"), Some(v(2)), None);
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
            a.update(KeyHash::of(key.as_bytes()), None, Some(v(1)));
            b.update(KeyHash::of(key.as_bytes()), None, Some(v(1)));
        }
        assert_eq!(a.root(), b.root());
        b.update(KeyHash::of(b"k7"), Some(v(1)), Some(v(2)));
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
