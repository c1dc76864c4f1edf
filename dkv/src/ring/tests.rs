//! Ring tests: golden placements a port can check itself against, the
//! walk's laws, balance and minimal movement.
//!
//! The golden values were cross-checked against an independent pure-Python
//! MurmurHash3 x64-128 and ring (not part of the repository).

use proptest::prelude::*;

use super::*;

fn ids(ids: &[u32]) -> Vec<NodeId> {
    ids.iter().map(|&id| NodeId(id)).collect()
}

fn ring_of(n: u32, virtual_nodes: usize) -> Ring {
    Ring::new(&ids(&(1..=n).collect::<Vec<_>>()), virtual_nodes)
}

/// Every token of the ring of nodes 1, 2, 3 with 4 virtual nodes each.
const GOLDEN_TOKENS: [(u64, u32); 12] = [
    (0x08d50be7c9f87f8c, 1),
    (0x137a2626bb77a2f8, 2),
    (0x3869baa823a995bb, 1),
    (0x4d2d868fdcec61c8, 3),
    (0x9fef68387c73d7e1, 3),
    (0xa8c8ab028082c8b4, 3),
    (0xbaf7b5d9d7fcb058, 1),
    (0xbdfaa29a4c37daf5, 2),
    (0xcac175526c12a4ca, 1),
    (0xcdbed9507a532eea, 2),
    (0xd1e41472b3ceaed9, 3),
    (0xecb63e4556a0d361, 2),
];

/// `(key, position, walk with 4 vnodes, walk with 128 vnodes)` on nodes 1-3.
type GoldenWalk = (&'static [u8], u64, [u32; 3], [u32; 3]);

const GOLDEN_WALKS: [GoldenWalk; 5] = [
    (b"", 0x0000000000000000, [1, 2, 3], [1, 2, 3]),
    (b"a", 0x85555565f6597889, [3, 1, 2], [2, 3, 1]),
    (b"hello", 0xcbd8a7b341bd9b02, [2, 3, 1], [3, 2, 1]),
    (b"user:1000", 0xb51427e2edce9a1a, [1, 2, 3], [1, 3, 2]),
    (b"key-42", 0xa7ee0685872b352c, [3, 1, 2], [2, 3, 1]),
];

/// `(key, preference list of 3)` on nodes 1-5 with 128 vnodes.
const GOLDEN_PREFERENCE_5: [(&[u8], [u32; 3]); 6] = [
    (b"", [1, 2, 5]),
    (b"a", [2, 5, 3]),
    (b"hello", [3, 2, 1]),
    (b"user:1000", [1, 5, 4]),
    (b"key-42", [2, 5, 3]),
    (b"\xff\x00binary", [5, 3, 4]),
];

#[test]
fn golden_tokens_of_a_small_ring() {
    let ring = ring_of(3, 4);
    let tokens: Vec<(u64, u32)> = ring.tokens().map(|(p, n)| (p, n.0)).collect();
    assert_eq!(tokens, GOLDEN_TOKENS);
    assert_eq!(token_position(NodeId(1), 0), 0xcac175526c12a4ca);
    assert_eq!(token_position(NodeId(3), 2), 0x9fef68387c73d7e1);
}

#[test]
fn golden_walks_and_preference_lists() {
    let (small, full) = (ring_of(3, 4), ring_of(3, 128));
    for (key, position, walk4, walk128) in GOLDEN_WALKS {
        assert_eq!(Ring::position(key), position, "position of {key:?}");
        assert_eq!(small.walk(key).collect::<Vec<_>>(), ids(&walk4), "{key:?}");
        assert_eq!(full.walk(key).collect::<Vec<_>>(), ids(&walk128), "{key:?}");
    }
    let five = ring_of(5, 128);
    for (key, preference) in GOLDEN_PREFERENCE_5 {
        assert_eq!(five.preference_list(key, 3), ids(&preference), "{key:?}");
    }
    // The first and last tokens of the default 3-node ring.
    let tokens: Vec<_> = full.tokens().collect();
    assert_eq!(tokens[0], (51390921728539354, NodeId(1)));
    assert_eq!(tokens[383], (18439823645470949038, NodeId(2)));
}

#[test]
fn golden_ownership_of_the_default_three_node_ring() {
    let shares = ring_of(3, 128).ownership();
    let expected = [0.31662662838653755, 0.29449905234551577, 0.3888743192679467];
    for (node, share) in ids(&[1, 2, 3]).into_iter().zip(expected) {
        assert!((shares[&node] - share).abs() < 1e-12, "{node}: {shares:?}");
    }
}

#[test]
fn walks_wrap_past_the_top_of_the_ring() {
    let ring = ring_of(3, 4);
    // Past the last token: the walk starts again at the first.
    let walk: Vec<_> = ring.walk_from(0xecb63e4556a0d362).collect();
    assert_eq!(walk, ids(&[1, 2, 3]));
    assert_eq!(ring.walk_from(u64::MAX).collect::<Vec<_>>(), walk);
    // Exactly on a token: that token's node first.
    assert_eq!(ring.walk_from(0xecb63e4556a0d361).next(), Some(NodeId(2)));
    // Just past node 3's token at 0x9fef...: its next token (node 3's too)
    // comes first, then node 1's, then node 2's.
    let walk: Vec<_> = ring.walk_from(0x9fef68387c73d7e2).collect();
    assert_eq!(walk, ids(&[3, 1, 2]));
}

#[test]
fn construction_ignores_order_and_duplicates() {
    let a = Ring::new(&ids(&[3, 1, 2]), 16);
    let b = Ring::new(&ids(&[1, 2, 3, 2, 1]), 16);
    assert_eq!(a, b);
    assert_eq!(a.nodes(), ids(&[1, 2, 3]));
    assert_eq!((a.len(), a.token_count(), a.virtual_nodes()), (3, 48, 16));
    assert!(a.contains(NodeId(2)) && !a.contains(NodeId(4)));
    // Zero virtual nodes means one.
    assert_eq!(Ring::new(&ids(&[7]), 0).token_count(), 1);
}

#[test]
fn degenerate_rings() {
    let empty = Ring::new(&[], 128);
    assert!(empty.is_empty());
    assert_eq!(empty.walk(b"k").count(), 0);
    assert_eq!(empty.preference_list(b"k", 3), vec![]);
    assert_eq!(empty.primary(b"k"), None);
    assert!(empty.ownership().is_empty());

    let one = Ring::new(&ids(&[9]), 1);
    assert_eq!(one.preference_list(b"k", 3), ids(&[9]));
    assert_eq!(one.ownership()[&NodeId(9)], 1.0);

    let three = ring_of(3, 8);
    assert_eq!(three.preference_list(b"k", 0), vec![]);
    assert_eq!(three.preference_list(b"k", 10).len(), 3);
}

#[test]
fn walks_past_256_nodes_use_the_heap_seen_set() {
    let ring = ring_of(300, 2);
    let mut walk: Vec<_> = ring.walk(b"k").collect();
    assert_eq!(walk.len(), 300);
    walk.sort();
    assert_eq!(walk, ring.nodes());
}

#[test]
fn ownership_sums_to_one() {
    for n in 1..=10 {
        let total: f64 = ring_of(n, 128).ownership().values().sum();
        assert!((total - 1.0).abs() < 1e-9, "{n} nodes: {total}");
    }
}

/// Positions of `count` sample keys `"key:<i>"`, hashed once.
fn sample_positions(count: usize) -> Vec<u64> {
    (0..count)
        .map(|i| ring_position(format!("key:{i}").as_bytes()))
        .collect()
}

const SAMPLE_KEYS: usize = 100_000;

#[test]
fn balance_busiest_node_within_1_3_of_the_mean() {
    let positions = sample_positions(SAMPLE_KEYS);
    for n in 3..=10u32 {
        let ring = ring_of(n, DEFAULT_VIRTUAL_NODES);
        let mean = 1.0 / f64::from(n);
        let busiest_share = ring.ownership().into_values().fold(0.0, f64::max);

        let mut keys = BTreeMap::<NodeId, usize>::new();
        for &p in &positions {
            if let Some(node) = ring.walk_from(p).next() {
                *keys.entry(node).or_default() += 1;
            }
        }
        let busiest_keys = keys.values().copied().max().unwrap_or(0) as f64 / SAMPLE_KEYS as f64;

        eprintln!(
            "balance: {n:2} nodes: busiest owns {:.3}x the mean (ring), {:.3}x (100k keys)",
            busiest_share / mean,
            busiest_keys / mean
        );
        assert!(busiest_share <= 1.3 * mean, "{n} nodes: {busiest_share}");
        assert!(busiest_keys <= 1.3 * mean, "{n} nodes: {busiest_keys}");
    }
}

#[test]
fn minimal_movement_when_a_node_joins() {
    let positions = sample_positions(SAMPLE_KEYS);
    for n in 3..=9u32 {
        let (before, after) = (ring_of(n, 128), ring_of(n + 1, 128));
        let joined = NodeId(n + 1);
        let (mut moved_primary, mut moved_preference) = (0usize, 0usize);
        for &p in &positions {
            let old: Vec<_> = before.walk_from(p).take(3).collect();
            let new: Vec<_> = after.walk_from(p).take(3).collect();
            if old[0] != new[0] {
                moved_primary += 1;
                // Keys move only to the node that joined.
                assert_eq!(new[0], joined, "position {p:#x}");
            }
            if old != new {
                moved_preference += 1;
                // The new node enters the list; the others keep their order
                // and the last one drops out.
                let without: Vec<_> = new.iter().copied().filter(|&x| x != joined).collect();
                assert_eq!(without.len(), 2, "position {p:#x}");
                assert_eq!(without, old[..2], "position {p:#x}");
            }
        }
        let ideal = 1.0 / f64::from(n + 1);
        let primary = moved_primary as f64 / SAMPLE_KEYS as f64;
        let preference = moved_preference as f64 / SAMPLE_KEYS as f64;
        eprintln!(
            "movement: {n} -> {} nodes: primary moved {primary:.4} (ideal {ideal:.4}, {:.3}x), \
             preference list of 3 changed {preference:.4} (ideal {:.4}, {:.3}x)",
            n + 1,
            primary / ideal,
            3.0 * ideal,
            preference / (3.0 * ideal),
        );
        assert!(primary <= ideal + 0.10, "{n} -> {}: {primary}", n + 1);
        assert!(
            preference <= 3.0 * ideal + 0.10,
            "{n} -> {}: {preference}",
            n + 1
        );
    }
}

fn arb_ring() -> impl Strategy<Value = Ring> {
    (prop::collection::vec(any::<u32>(), 0..20), 1..48usize)
        .prop_map(|(nodes, vnodes)| Ring::new(&ids(&nodes), vnodes))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn preference_list_is_a_prefix_of_the_walk(
        ring in arb_ring(),
        key in prop::collection::vec(any::<u8>(), 0..32),
        n in 0..24usize,
    ) {
        let walk: Vec<_> = ring.walk(&key).collect();
        let preference = ring.preference_list(&key, n);
        prop_assert_eq!(preference.len(), n.min(ring.len()));
        prop_assert_eq!(&walk[..preference.len()], &preference[..]);
        // The walk is a permutation of the members, starting at the primary.
        let mut sorted = walk.clone();
        sorted.sort();
        prop_assert_eq!(&sorted[..], ring.nodes());
        prop_assert_eq!(ring.primary(&key), walk.first().copied());
        prop_assert_eq!(ring.walk(&key).len(), ring.len());
        // Deterministic: a second ring from the same members agrees.
        let again = Ring::new(ring.nodes(), ring.virtual_nodes());
        prop_assert_eq!(again.preference_list(&key, n), preference);
    }

    #[test]
    fn the_worked_out_lists_are_the_walks(
        ring in arb_ring(),
        key in prop::collection::vec(any::<u8>(), 0..32),
        n in 0..24usize,
    ) {
        let lists = PreferenceLists::new(&ring, n);
        prop_assert_eq!(lists.width(), n.min(ring.len()));
        let partition = ring.key_partition(crate::hash::KeyHash::of(&key));
        prop_assert_eq!(lists.of_partition(partition), &ring.preference_list(&key, n)[..]);
        prop_assert!(lists.of_partition(ring.partition_count() as u32).is_empty());
    }
}

#[test]
fn a_partition_is_one_replica_set() {
    let ring = Ring::new(&[NodeId(1), NodeId(2), NodeId(3), NodeId(4), NodeId(5)], 16);
    assert_eq!(ring.partition_count(), 80);
    for i in 0..2000u32 {
        let key = format!("key-{i}");
        let partition = ring.partition_of(Ring::position(key.as_bytes()));
        assert!((partition as usize) < ring.partition_count());
        assert_eq!(
            ring.partition_replicas(partition, 3),
            ring.preference_list(key.as_bytes(), 3),
            "{key}"
        );
    }
    // Past the last token the ring wraps to the first.
    assert_eq!(ring.partition_of(u64::MAX), 0);
    assert!(ring.partition_replicas(9999, 3).is_empty());
}
