use std::time::Duration;

use super::*;
use crate::version::NodeId;
use crate::wal::FsyncMode;

fn config(dir: &std::path::Path) -> StoreConfig {
    let mut config = StoreConfig::new(NodeId(1), dir);
    config.shards = 4;
    config.snapshot_interval = None;
    config.snapshot_wal_bytes = None;
    config
}

#[test]
fn writes_survive_close_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(config(dir.path())).unwrap();
    store.put(b"a", b"1").unwrap();
    store.put(b"b", b"2").unwrap();
    store.put(b"a", b"3").unwrap();
    assert!(store.delete(b"b").unwrap());
    assert!(!store.delete(b"never-written").unwrap());
    store.close().unwrap();

    let store = Store::open(config(dir.path())).unwrap();
    assert_eq!(store.get(b"a").as_deref(), Some(&b"3"[..]));
    assert_eq!(store.get(b"b"), None);
    assert!(store.get_entry(b"b").unwrap().is_tombstone());
    assert_eq!(store.stats().recovery.records_replayed, 5);
}

#[test]
fn new_versions_beat_recovered_ones_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(config(dir.path())).unwrap();
    // A replicated write from a peer whose clock runs 20 s ahead.
    let ahead = Timestamp::from_millis(wall_millis() + 20_000);
    store
        .apply(b"k", &Entry::value(Version::new(ahead, NodeId(2)), "peer"))
        .unwrap();
    store.close().unwrap();

    let store = Store::open(config(dir.path())).unwrap();
    let version = store.put(b"k", b"mine").unwrap();
    assert!(version.timestamp > ahead);
    assert_eq!(store.get(b"k").as_deref(), Some(&b"mine"[..]));
}

#[test]
fn apply_refuses_runaway_timestamps_and_keeps_larger_versions() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(config(dir.path())).unwrap();
    let far = Timestamp::from_millis(wall_millis() + 3_600_000);
    let err = store
        .apply(b"k", &Entry::value(Version::new(far, NodeId(2)), "x"))
        .unwrap_err();
    assert!(matches!(err, StoreError::Clock(_)), "{err}");
    assert_eq!(store.get_entry(b"k"), None);

    let newer = store.put(b"k", b"new").unwrap();
    let older = Version::new(Timestamp(newer.timestamp.0 - 1), NodeId(9));
    assert!(!store.apply(b"k", &Entry::value(older, "old")).unwrap());
    assert_eq!(store.get(b"k").as_deref(), Some(&b"new"[..]));
}

#[test]
fn snapshot_compacts_the_wal_and_reopens_from_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.wal_segment_bytes = 4096;
    let store = Store::open(cfg.clone()).unwrap();
    for i in 0..500u32 {
        store
            .put(format!("k{i}").as_bytes(), &[i as u8; 40])
            .unwrap();
    }
    let before = store.stats().wal_bytes;
    let info = store.snapshot().unwrap();
    assert_eq!(info.entries, 500);
    assert!(store.stats().wal_bytes < before / 10, "WAL not compacted");
    for i in 500..600u32 {
        store
            .put(format!("k{i}").as_bytes(), &[i as u8; 40])
            .unwrap();
    }
    store.delete(b"k0").unwrap();
    store.close().unwrap();

    let store = Store::open(cfg).unwrap();
    let stats = store.stats();
    assert_eq!(stats.engine.keys, 599);
    assert_eq!(stats.recovery.records_replayed, 101);
    assert_eq!(stats.last_snapshot.unwrap().lsn, info.lsn);
    assert_eq!(store.get(b"k599").unwrap(), vec![599u32 as u8; 40]);
}

#[test]
fn writes_racing_a_snapshot_are_all_recovered() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.fsync = FsyncMode::Never;
    cfg.wal_segment_bytes = 8192;
    let store = Store::open(cfg.clone()).unwrap();
    std::thread::scope(|scope| {
        for writer in 0..4u32 {
            let store = &store;
            scope.spawn(move || {
                for i in 0..2000u32 {
                    let key = format!("w{writer}-{}", i % 300);
                    store.put(key.as_bytes(), &i.to_le_bytes()).unwrap();
                }
            });
        }
        let store = &store;
        scope.spawn(move || {
            for _ in 0..5 {
                store.snapshot().unwrap();
                std::thread::sleep(Duration::from_millis(2));
            }
        });
    });
    let expected = store.engine().to_sorted_vec();
    store.close().unwrap();
    let store = Store::open(cfg).unwrap();
    assert_eq!(store.engine().to_sorted_vec(), expected);
    for writer in 0..4u32 {
        for k in 0..300u32 {
            let last = (1700..2000).find(|i| i % 300 == k).unwrap();
            let value = store.get(format!("w{writer}-{k}").as_bytes()).unwrap();
            assert_eq!(value, last.to_le_bytes());
        }
    }
}

#[test]
fn background_snapshotter_triggers_on_wal_size() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.fsync = FsyncMode::Never;
    cfg.wal_segment_bytes = 4096;
    cfg.snapshot_wal_bytes = Some(16 * 1024);
    let store = Store::open(cfg).unwrap();
    for i in 0..1000u32 {
        store.put(format!("k{i}").as_bytes(), &[7; 64]).unwrap();
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while store.stats().snapshots_taken == 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(store.stats().snapshots_taken > 0);
    store.close().unwrap();
}

#[test]
fn tombstones_past_grace_are_purged_by_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.tombstone_grace = Duration::ZERO;
    let store = Store::open(cfg).unwrap();
    store.put(b"k", b"v").unwrap();
    store.delete(b"k").unwrap();
    std::thread::sleep(Duration::from_millis(5));
    assert_eq!(store.stats().engine.tombstones, 1);
    store.snapshot().unwrap();
    assert_eq!(store.stats().engine.tombstones, 0);
}

#[test]
fn corrupt_snapshot_refuses_to_open_and_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(config(dir.path())).unwrap();
    store.put(b"k", b"v").unwrap();
    let info = store.snapshot().unwrap();
    store.close().unwrap();
    let mut bytes = std::fs::read(&info.path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&info.path, bytes).unwrap();
    let err = Store::open(config(dir.path())).err().unwrap();
    assert!(
        err.to_string().contains(&info.path.display().to_string()),
        "{err}"
    );
}
