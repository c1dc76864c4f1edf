//! Byte-level damage to a WAL: every truncation point and every flipped byte.
//!
//! A log of 200 varied records (keys of 1-8 bytes, values of 0-24, one in six
//! a tombstone) is built once in one segment and once across three. Then, for
//! every byte offset, a copy is truncated there, and for every byte, a copy
//! has it flipped (xor 0xFF); each copy is reopened. (Across three segments,
//! every second offset and byte, to keep the suite at a few seconds in debug.)
//! Recovery must never panic, must replay exactly the records before the
//! damaged one (known from the record offsets), and must leave a log that
//! takes new appends: on a stride of the cases, three records are appended
//! and reopening again yields that prefix plus the new records.
//!
//! fsync is meaningless here and costs milliseconds per call, so the copies
//! are opened with a [`SegmentIo`] whose syncs do nothing.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use dkv::wal::{record, FsyncMode, Lsn, RecoveryReport, SegmentIo, Wal, WalConfig, WalRecord};
use dkv::EntryRef;
use dkv::{NodeId, Timestamp, Version};

/// Real reads and writes, no syncs.
struct NoSync;

impl SegmentIo for NoSync {
    fn sync_data(&self, _file: &File) -> io::Result<()> {
        Ok(())
    }

    fn sync_dir(&self, _dir: &Path) -> io::Result<()> {
        Ok(())
    }
}

/// One segment file of the pristine log.
struct Segment {
    name: String,
    bytes: Vec<u8>,
    /// `(start offset, end offset, index into the records)` of each record.
    records: Vec<(usize, usize, usize)>,
}

struct Log {
    records: Vec<WalRecord>,
    segments: Vec<Segment>,
}

fn config(dir: &Path, segment_bytes: u64) -> WalConfig {
    WalConfig {
        dir: dir.to_path_buf(),
        fsync: FsyncMode::Never,
        segment_bytes,
        fsync_window: std::time::Duration::ZERO,
    }
}

/// A deterministic generator, so a failure reproduces.
struct XorShift(u64);

impl XorShift {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn build(dir: &Path, count: u64, segment_bytes: u64) -> Log {
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let (wal, _) = Wal::open(config(dir, segment_bytes), Lsn(0), |_| {}).unwrap();
    let mut records = Vec::new();
    for i in 1..=count {
        let key: Vec<u8> = (0..1 + rng.below(8))
            .map(|_| rng.below(256) as u8)
            .collect();
        let value = (rng.below(6) != 0).then(|| {
            (0..rng.below(25))
                .map(|_| rng.below(256) as u8)
                .collect::<Vec<u8>>()
        });
        let version = Version::new(Timestamp(1_000 + i), NodeId(rng.below(4) as u32));
        // Some values expire (record kind 2).
        let expires_at = value
            .as_ref()
            .and((rng.below(3) == 0).then(|| 1_800_000_000_000 + rng.below(1_000_000)));
        // Some values are counter states (kinds 3 and 4): the log keeps
        // the flag, not the meaning.
        let counter = value.is_some() && rng.below(4) == 0;
        let entry = EntryRef {
            counter,
            ..EntryRef::new(version, value.as_deref(), expires_at)
        };
        let lsn = wal.append(&key, entry).unwrap();
        assert_eq!(lsn, Lsn(i));
        records.push(WalRecord {
            lsn,
            key,
            version,
            value,
            expires_at,
            counter,
        });
    }
    drop(wal);

    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    let mut next = 0;
    let segments: Vec<Segment> = names
        .into_iter()
        .map(|name| {
            let bytes = fs::read(dir.join(&name)).unwrap();
            let mut offsets = Vec::new();
            let mut at = 0;
            while at < bytes.len() {
                let (record, len) = record::decode(&bytes[at..]).unwrap();
                assert_eq!(record, records[next]);
                offsets.push((at, at + len, next));
                at += len;
                next += 1;
            }
            Segment {
                name,
                bytes,
                records: offsets,
            }
        })
        .collect();
    assert_eq!(next, records.len(), "every record is in some segment");
    Log { records, segments }
}

/// A directory for the damaged copies. Syncs are stubbed out, so a tmpfs
/// (`/dev/shm`, when there is one) loses nothing and spares the disk tens of
/// thousands of metadata operations.
fn scratch_dir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(dir) = tempfile::tempdir_in(shm) {
            return dir;
        }
    }
    tempfile::tempdir().unwrap()
}

/// Replaces the contents of `dir` with the log, segment `damaged` replaced by
/// `bytes`. `leftovers` are the files the previous case kept aside.
fn install(dir: &Path, log: &Log, damaged: usize, bytes: &[u8], leftovers: &[PathBuf]) {
    // Rewriting in place (not delete and create) keeps this loop cheap.
    for path in leftovers {
        fs::remove_file(path).unwrap();
    }
    for (index, segment) in log.segments.iter().enumerate() {
        let contents = if index == damaged {
            bytes
        } else {
            &segment.bytes[..]
        };
        fs::write(dir.join(&segment.name), contents).unwrap();
    }
}

fn open(dir: &Path, segment_bytes: u64) -> (Wal, RecoveryReport, Vec<WalRecord>) {
    let mut replayed = Vec::new();
    let (wal, report) =
        Wal::open_with_io(config(dir, segment_bytes), Arc::new(NoSync), Lsn(0), |r| {
            replayed.push(r)
        })
        .unwrap_or_else(|e| panic!("open failed: {e}"));
    (wal, report, replayed)
}

/// Reopens the damaged copy in `dir` and checks it replays exactly
/// `records[..intact]`; if `append`, also that it takes new records.
fn check(
    dir: &Path,
    log: &Log,
    intact: usize,
    segment_bytes: u64,
    append: bool,
    what: &str,
) -> RecoveryReport {
    let (wal, report, replayed) = open(dir, segment_bytes);
    assert!(
        replayed == log.records[..intact],
        "{what}: replayed {} records, expected the first {intact}; report {report:?}",
        replayed.len()
    );
    assert_eq!(report.next_lsn, Lsn(intact as u64 + 1), "{what}");
    if !append {
        return report;
    }
    let mut expected = log.records[..intact].to_vec();
    for n in 0..3u64 {
        let version = Version::new(Timestamp(99_000 + n), NodeId(9));
        let value = (n != 1).then(|| vec![n as u8; 5]);
        let lsn = wal
            .append(b"new", EntryRef::new(version, value.as_deref(), None))
            .unwrap();
        expected.push(WalRecord {
            lsn,
            key: b"new".to_vec(),
            version,
            value,
            expires_at: None,
            counter: false,
        });
    }
    drop(wal);
    let (wal, again, replayed) = open(dir, segment_bytes);
    drop(wal);
    assert!(
        replayed == expected,
        "{what}: after appending, replayed {} records, expected {}; report {again:?}",
        replayed.len(),
        expected.len()
    );
    assert!(again.damage.is_none(), "{what}: {again:?}");
    report
}

/// Files in `dir` the next case must remove: what recovery kept aside, and
/// any segment the appends created.
fn leftovers(dir: &Path, log: &Log, report: &RecoveryReport, appended: bool) -> Vec<PathBuf> {
    let mut extra = report.kept_aside.clone();
    if appended {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_str().unwrap();
            if !log.segments.iter().any(|s| s.name == name) && !extra.contains(&path) {
                extra.push(path);
            }
        }
    }
    extra
}

/// Every `stride`-th truncation and flip of every segment (1: all of them);
/// the append check on every `append_stride`-th case.
fn damage_everywhere(
    count: u64,
    segment_bytes: u64,
    expected_segments: usize,
    stride: usize,
    append_stride: usize,
) {
    let pristine = tempfile::tempdir().unwrap();
    let log = build(pristine.path(), count, segment_bytes);
    assert_eq!(log.segments.len(), expected_segments);
    let work = scratch_dir();
    let dir = work.path();
    let mut case = 0usize;
    let mut aside = Vec::new();
    for (s, segment) in log.segments.iter().enumerate() {
        let is_last = s + 1 == log.segments.len();
        let len = segment.bytes.len();
        // The record a damaged byte belongs to, as an index into the records.
        let record_at = |offset: usize| {
            segment
                .records
                .iter()
                .find(|&&(_, end, _)| end > offset)
                .map(|&(_, _, index)| index)
        };

        for cut in (0..=len).step_by(stride) {
            case += 1;
            let intact = record_at(cut).unwrap_or(log.records.len());
            install(dir, &log, s, &segment.bytes[..cut], &aside);
            let what = format!("{} truncated at {cut}", segment.name);
            let append = case % append_stride == 0;
            let report = check(dir, &log, intact, segment_bytes, append, &what);
            aside = leftovers(dir, &log, &report, append);
            if is_last {
                assert!(report.kept_aside.is_empty(), "{what}: {report:?}");
            } else if cut < len {
                // A short old segment is damage, not a torn tail: the later
                // segments are kept aside.
                assert!(!report.kept_aside.is_empty(), "{what}: {report:?}");
            }
        }

        let mut bytes = segment.bytes.clone();
        for at in (0..len).step_by(stride) {
            case += 1;
            let intact = record_at(at).unwrap_or(log.records.len());
            bytes[at] ^= 0xFF;
            install(dir, &log, s, &bytes, &aside);
            bytes[at] ^= 0xFF;
            let what = format!("{} with byte {at} flipped", segment.name);
            let append = case % append_stride == 0;
            let report = check(dir, &log, intact, segment_bytes, append, &what);
            aside = leftovers(dir, &log, &report, append);
            let damage = report
                .damage
                .unwrap_or_else(|| panic!("{what}: no damage reported"));
            let start = segment.records.iter().find(|r| r.2 == intact).map(|r| r.0);
            assert_eq!(Some(damage.offset as usize), start, "{what}");
        }
    }
}

#[test]
fn every_truncation_and_flip_in_one_segment() {
    damage_everywhere(200, 1 << 20, 1, 1, 5);
}

#[test]
fn truncations_and_flips_across_three_segments() {
    damage_everywhere(200, 3_600, 3, 2, 7);
}

#[test]
fn kept_aside_files_survive_later_recoveries() {
    let pristine = tempfile::tempdir().unwrap();
    let log = build(pristine.path(), 120, 2_000);
    assert!(log.segments.len() >= 3);
    let work = tempfile::tempdir().unwrap();
    let mut bytes = log.segments[0].bytes.clone();
    let (start, _, index) = log.segments[0].records[3];
    bytes[start + 10] ^= 0xFF;
    install(work.path(), &log, 0, &bytes, &[]);
    let report = check(work.path(), &log, index, 2_000, true, "first");
    let mut kept = report.kept_aside.clone();
    kept.sort();
    assert_eq!(kept.len(), log.segments.len());
    for path in &kept {
        assert!(path.exists(), "{}", path.display());
    }
    // Damage the same spot again after more appends: nothing is overwritten.
    let first = work.path().join(&log.segments[0].name);
    let mut again = fs::read(&first).unwrap();
    again[start + 10] ^= 0xFF;
    fs::write(&first, &again).unwrap();
    let (_wal, report, _) = open(work.path(), 2_000);
    assert_eq!(report.kept_aside.len(), 1);
    assert!(!kept.contains(&report.kept_aside[0]));
    for path in &kept {
        assert!(path.exists(), "{}", path.display());
    }
}
