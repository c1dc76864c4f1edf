use super::*;

fn v(ts: u64, node: u32) -> Version {
    Version::new(Timestamp(ts), NodeId(node))
}

fn sample_engine(keys: usize) -> Engine {
    let engine = Engine::new(8).unwrap();
    for i in 0..keys {
        let key = format!("key-{i}");
        if i % 5 == 0 {
            engine.delete(key.as_bytes(), v(i as u64 + 1, 2));
        } else {
            engine.put(
                key.as_bytes(),
                format!("value-{i}").as_bytes(),
                v(i as u64 + 1, 1),
            );
        }
    }
    engine.put(b"", b"", v(7, 7));
    engine.put(&[0, 1, 2, 255], &[255, 0], v(8, 3));
    engine
}

#[test]
fn round_trip_keeps_values_tombstones_and_versions() {
    let dir = tempfile::tempdir().unwrap();
    let engine = sample_engine(500);
    let info = write(dir.path(), &engine, Lsn(42)).unwrap();
    assert_eq!(info.lsn, Lsn(42));
    assert_eq!(info.entries, 502);
    let loaded = Engine::new(32).unwrap();
    let read = load_latest(dir.path(), &loaded).unwrap().unwrap();
    assert_eq!(read, info);
    assert_eq!(loaded.to_sorted_vec(), engine.to_sorted_vec());
    assert_eq!(loaded.stats().tombstones, 100);
}

#[test]
fn large_shards_are_split_into_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::new(1).unwrap();
    for i in 0..40u64 {
        engine.put(&i.to_le_bytes(), &vec![i as u8; 100_000], v(i + 1, 1));
    }
    let info = write(dir.path(), &engine, Lsn(1)).unwrap();
    assert!(info.bytes > 3 * BLOCK_TARGET as u64);
    let loaded = Engine::new(4).unwrap();
    load(&info.path, &loaded).unwrap();
    assert_eq!(loaded.to_sorted_vec(), engine.to_sorted_vec());
}

#[test]
fn empty_directory_has_no_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::new(1).unwrap();
    assert_eq!(load_latest(dir.path(), &engine).unwrap(), None);
    assert_eq!(
        load_latest(&dir.path().join("missing"), &engine).unwrap(),
        None
    );
}

#[test]
fn newer_snapshot_replaces_older_and_temp_files() {
    let dir = tempfile::tempdir().unwrap();
    let engine = sample_engine(10);
    write(dir.path(), &engine, Lsn(5)).unwrap();
    fs::write(
        dir.path().join("snapshot-00000000000000000009.dkv.tmp"),
        b"junk",
    )
    .unwrap();
    engine.put(b"later", b"x", v(100, 1));
    write(dir.path(), &engine, Lsn(9)).unwrap();
    let names: Vec<String> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, vec![file_name(Lsn(9))]);
    let loaded = Engine::new(1).unwrap();
    assert_eq!(
        load_latest(dir.path(), &loaded).unwrap().unwrap().lsn,
        Lsn(9)
    );
    assert!(loaded.get(b"later").is_some());
}

#[test]
fn every_truncation_and_every_flipped_byte_is_reported_not_panicked() {
    let dir = tempfile::tempdir().unwrap();
    let engine = sample_engine(30);
    let info = write(dir.path(), &engine, Lsn(3)).unwrap();
    let original = fs::read(&info.path).unwrap();
    let probe = dir.path().join("probe.dkv");
    for cut in 0..original.len() {
        fs::write(&probe, &original[..cut]).unwrap();
        let result = load(&probe, &Engine::new(1).unwrap());
        assert!(
            matches!(result, Err(SnapshotError::Corrupt { .. })),
            "truncated at {cut}: {result:?}"
        );
    }
    for index in 0..original.len() {
        let mut damaged = original.clone();
        damaged[index] ^= 0xFF;
        fs::write(&probe, &damaged).unwrap();
        let result = load(&probe, &Engine::new(1).unwrap());
        assert!(
            matches!(result, Err(SnapshotError::Corrupt { .. })),
            "byte {index} flipped: {result:?}"
        );
    }
    let mut extended = original.clone();
    extended.push(0);
    fs::write(&probe, &extended).unwrap();
    assert!(load(&probe, &Engine::new(1).unwrap()).is_err());
}

#[test]
fn file_names_parse_strictly() {
    assert_eq!(parse_file_name(&file_name(Lsn(77))), Some(Lsn(77)));
    assert_eq!(parse_file_name("snapshot-77.dkv"), None);
    assert_eq!(parse_file_name("snapshot-0000000000000000007x.dkv"), None);
    assert_eq!(parse_file_name("other"), None);
}

#[test]
fn expiries_round_trip_and_format_one_files_still_load() {
    let dir = tempfile::tempdir().unwrap();
    let engine = sample_engine(20);
    engine.apply(
        b"session",
        EntryRef::new(v(100, 1), Some(b"data"), Some(1_800_000_000_000)),
    );
    let info = write(dir.path(), &engine, Lsn(3)).unwrap();
    let loaded = Engine::new(4).unwrap();
    load(&info.path, &loaded).unwrap();
    assert_eq!(loaded.to_sorted_vec(), engine.to_sorted_vec());
    assert_eq!(
        loaded.get(b"session").unwrap().expires_at,
        Some(1_800_000_000_000)
    );
    assert_eq!(loaded.stats().expiring, 1);

    // A file written before expiries existed (format 1: no kind 2) loads.
    let old_dir = tempfile::tempdir().unwrap();
    let plain = sample_engine(20);
    let info = write(old_dir.path(), &plain, Lsn(3)).unwrap();
    let mut bytes = std::fs::read(&info.path).unwrap();
    bytes[8..12].copy_from_slice(&1u32.to_le_bytes());
    let crc = crc32(&bytes[..HEADER_LEN - 4]);
    bytes[HEADER_LEN - 4..HEADER_LEN].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&info.path, &bytes).unwrap();
    let loaded = Engine::new(4).unwrap();
    load(&info.path, &loaded).unwrap();
    assert_eq!(loaded.to_sorted_vec(), plain.to_sorted_vec());
    // And a format this build does not know is refused with its number.
    bytes[8..12].copy_from_slice(&9u32.to_le_bytes());
    let crc = crc32(&bytes[..HEADER_LEN - 4]);
    bytes[HEADER_LEN - 4..HEADER_LEN].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&info.path, &bytes).unwrap();
    let err = load(&info.path, &Engine::new(4).unwrap()).unwrap_err();
    assert!(
        err.to_string().contains("unsupported format version 9"),
        "{err}"
    );
}

#[test]
fn a_block_length_past_the_end_of_the_file_allocates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let info = write(dir.path(), &sample_engine(3), Lsn(1)).unwrap();
    let mut bytes = std::fs::read(&info.path).unwrap();
    // The first block's length: just under the limit, far past the file.
    bytes[HEADER_LEN..HEADER_LEN + 4].copy_from_slice(&((MAX_BLOCK - 1) as u32).to_le_bytes());
    std::fs::write(&info.path, &bytes).unwrap();
    let before = resident_kib();
    let err = load(&info.path, &Engine::new(1).unwrap()).unwrap_err();
    assert!(err.to_string().contains("truncated block"), "{err}");
    // A 1 GiB buffer would show in the resident set (it is zero-filled).
    assert!(
        resident_kib() < before + 100_000,
        "{before} -> {}",
        resident_kib()
    );
}

fn resident_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}
