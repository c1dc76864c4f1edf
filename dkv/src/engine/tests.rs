use proptest::prelude::*;

use super::*;
use crate::version::NodeId;

fn v(ts: u64, node: u32) -> Version {
    Version::new(Timestamp(ts), NodeId(node))
}

#[test]
fn newer_version_wins_older_is_ignored() {
    let engine = Engine::new(4).unwrap();
    assert!(engine.put(b"k", b"one", v(2, 1)));
    assert!(!engine.put(b"k", b"zero", v(1, 9)));
    assert!(!engine.put(b"k", b"same", v(2, 1)));
    assert_eq!(engine.get(b"k"), Some(Entry::value(v(2, 1), "one")));
    assert!(engine.put(b"k", b"tie-break", v(2, 2)));
    assert_eq!(engine.get(b"k").unwrap().value.unwrap(), b"tie-break");
}

#[test]
fn delete_leaves_a_tombstone_that_older_writes_cannot_beat() {
    let engine = Engine::new(1).unwrap();
    engine.put(b"k", b"v", v(1, 1));
    assert!(engine.delete(b"k", v(2, 1)));
    assert!(!engine.put(b"k", b"stale", v(1, 5)));
    assert_eq!(engine.get(b"k"), Some(Entry::tombstone(v(2, 1))));
    let stats = engine.stats();
    assert_eq!((stats.keys, stats.tombstones), (0, 1));
    assert!(engine.put(b"k", b"newer", v(3, 1)));
    assert_eq!(engine.stats().tombstones, 0);
}

#[test]
fn purge_drops_only_old_tombstones() {
    let engine = Engine::new(2).unwrap();
    engine.delete(b"old", v(10, 1));
    engine.delete(b"young", v(100, 1));
    engine.put(b"live", b"x", v(1, 1));
    assert_eq!(engine.purge_tombstones(Timestamp(50)), 1);
    assert_eq!(engine.get(b"old"), None);
    assert!(engine.get(b"young").is_some());
    assert!(engine.get(b"live").is_some());
    let stats = engine.stats();
    assert_eq!((stats.keys, stats.tombstones), (1, 1));
}

#[test]
fn stats_count_bytes() {
    let engine = Engine::new(1).unwrap();
    let empty = engine.stats().bytes;
    engine.put(b"key", &[0u8; 100], v(1, 1));
    assert!(engine.stats().bytes >= empty + 103);
    engine.put(b"key", &[0u8; 10], v(2, 1));
    let after = engine.stats().bytes;
    engine.put(b"key", &[0u8; 100], v(3, 1));
    assert_eq!(engine.stats().bytes, after + 90);
}

#[test]
fn binary_and_empty_keys() {
    let engine = Engine::new(8).unwrap();
    engine.put(b"", b"empty key", v(1, 1));
    engine.put(&[0, 255, 0], b"", v(1, 1));
    assert_eq!(engine.get(b"").unwrap().value.unwrap(), b"empty key");
    assert_eq!(engine.get(&[0, 255, 0]).unwrap().value.unwrap(), b"");
    assert_eq!(engine.len(), 2);
}

#[test]
fn rejects_bad_shard_counts() {
    assert!(Engine::new(0).is_err());
    assert!(Engine::new(3).is_err());
    assert!(Engine::new(1 << 17).is_err());
    assert_eq!(Engine::new(1).unwrap().shard_count(), 1);
    assert_eq!(Engine::new(32).unwrap().shard_count(), 32);
}

#[test]
fn concurrent_writers_converge_on_the_largest_version() {
    let engine = Engine::new(4).unwrap();
    std::thread::scope(|scope| {
        for node in 0..4u32 {
            let engine = &engine;
            scope.spawn(move || {
                for ts in 0..2000u64 {
                    let key = format!("k{}", ts % 50);
                    engine.put(key.as_bytes(), &node.to_le_bytes(), v(ts, node));
                }
            });
        }
    });
    for k in 0..50u64 {
        let entry = engine.get(format!("k{k}").as_bytes()).unwrap();
        assert_eq!(entry.version, v(1950 + k, 3));
    }
}

#[derive(Debug, Clone)]
struct Write {
    key: u8,
    version: Version,
    value: Option<Vec<u8>>,
}

fn write_strategy() -> impl Strategy<Value = Write> {
    (
        0u8..8,
        0u64..20,
        0u32..3,
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..8)),
    )
        .prop_map(|(key, ts, node, value)| Write {
            key,
            version: v(ts, node),
            value,
        })
}

proptest! {
    /// Any permutation of the same writes, with duplicates, applied to two
    /// engines gives identical contents.
    #[test]
    fn lww_converges_under_any_order(
        writes in proptest::collection::vec(write_strategy(), 0..60),
        shuffle_seed in any::<u64>(),
        duplicates in proptest::collection::vec(any::<prop::sample::Index>(), 0..20),
    ) {
        // The same write (key, version) must always carry the same value,
        // as it does in the system: a version names one write.
        let mut canonical = std::collections::HashMap::new();
        let writes: Vec<Write> = writes
            .into_iter()
            .map(|w| {
                let value = canonical.entry((w.key, w.version)).or_insert(w.value.clone()).clone();
                Write { value, ..w }
            })
            .collect();
        let mut permuted = writes.clone();
        for index in &duplicates {
            if !writes.is_empty() {
                permuted.push(writes[index.index(writes.len())].clone());
            }
        }
        // Deterministic Fisher-Yates from the seed.
        let mut state = shuffle_seed | 1;
        for i in (1..permuted.len()).rev() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            permuted.swap(i, (state % (i as u64 + 1)) as usize);
        }
        let a = Engine::new(4).unwrap();
        let b = Engine::new(2).unwrap();
        for w in &writes {
            a.apply(&[w.key], EntryRef::new(w.version, w.value.as_deref(), None));
        }
        for w in &permuted {
            b.apply(&[w.key], EntryRef::new(w.version, w.value.as_deref(), None));
        }
        prop_assert_eq!(a.to_sorted_vec(), b.to_sorted_vec());
        prop_assert_eq!(a.stats().keys, b.stats().keys);
        prop_assert_eq!(a.stats().tombstones, b.stats().tombstones);
    }
}

#[test]
fn a_raised_floor_drops_what_is_below_and_refuses_it_later() {
    let engine = Engine::new(4).unwrap();
    engine.put(b"old", b"1", v(5, 1));
    engine.delete(b"gone", v(6, 1));
    engine.put(b"new", b"2", v(20, 1));
    assert_eq!(engine.raise_floor(v(10, 1)), 2);
    assert_eq!(engine.floor(), v(10, 1));
    assert_eq!(engine.get(b"old"), None);
    assert!(engine.get(b"new").is_some());
    let late = engine.apply_with_outcome(b"old", EntryRef::value(v(9, 3), b"late"));
    assert!(!late.won);
    assert_eq!(late.previous, Some(v(10, 1)), "the floor is what beat it");
    assert!(engine.put(b"old", b"after", v(11, 1)));
    // Never lowered.
    assert_eq!(engine.raise_floor(v(3, 1)), 0);
    assert_eq!(engine.floor(), v(10, 1));
    let stats = engine.stats();
    assert_eq!((stats.keys, stats.tombstones), (2, 0));
}

#[test]
fn a_scan_returns_every_key_once_in_pages() {
    let engine = Engine::new(8).unwrap();
    for i in 0..1000u64 {
        engine.put(format!("k{i}").as_bytes(), b"v", v(i + 1, 1));
    }
    engine.delete(b"k7", v(5_000, 1));
    let mut seen = std::collections::BTreeSet::new();
    let mut from = 0;
    let mut pages = 0;
    loop {
        let page = engine.scan(from, 37, |_, entry| entry.value.is_some());
        assert!(page.keys.len() <= 37 + 2, "{}", page.keys.len());
        for key in page.keys {
            assert!(seen.insert(key), "a key came twice");
        }
        pages += 1;
        match page.next {
            Some(next) => from = next,
            None => break,
        }
    }
    assert_eq!(seen.len(), 999);
    assert!(!seen.contains(b"k7".as_slice()));
    assert!((27..=30).contains(&pages), "{pages} pages");
    assert_eq!(engine.scan(0, 10, |_, _| false), ScanPage::default());
}

#[test]
fn expired_entries_become_tombstones_or_go() {
    let engine = Engine::new(1).unwrap();
    engine.apply(b"a", EntryRef::new(v(1, 1), Some(b"x"), Some(100)));
    engine.apply(b"b", EntryRef::new(v(1, 1), Some(b"y"), Some(300)));
    engine.put(b"c", b"z", v(1, 1));
    assert_eq!(engine.stats().expiring, 2);
    assert_eq!(engine.expire_shard(0, 200, ExpiredEntries::Tombstone), 1);
    assert_eq!(engine.get(b"a"), Some(Entry::tombstone(v(1, 1))));
    assert_eq!(engine.stats().expiring, 1);
    assert_eq!(engine.expire_shard(0, 400, ExpiredEntries::Drop), 1);
    assert_eq!(engine.get(b"b"), None);
    let stats = engine.stats();
    assert_eq!((stats.keys, stats.tombstones, stats.expiring), (1, 1, 0));
}

#[test]
fn keys_left_after_a_table_shrinks_are_still_found() {
    let engine = Engine::new(1).unwrap();
    for i in 0..10_000u32 {
        engine.put(format!("key-{i}").as_bytes(), b"x", v(u64::from(i) + 1, 1));
    }
    let before = engine.stats().bytes;
    // Drops all but the newest 100: the table is rebuilt smaller, every
    // key left rehashed.
    assert_eq!(engine.raise_floor(v(9_900, 1)), 9_900);
    assert!(
        engine.stats().bytes < before / 4,
        "the table did not shrink"
    );
    for i in 0..10_000u32 {
        let found = engine.get(format!("key-{i}").as_bytes()).is_some();
        assert_eq!(found, i >= 9_900, "key-{i}");
    }
    // And it grows again as before.
    for i in 0..10_000u32 {
        engine.put(
            format!("new-{i}").as_bytes(),
            b"y",
            v(20_000 + u64::from(i), 1),
        );
    }
    assert!((0..10_000u32).all(|i| engine.get(format!("new-{i}").as_bytes()).is_some()));
}
