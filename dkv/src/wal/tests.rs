//! Unit tests of the log as a whole: round trips, segments, modes, group
//! commit. Faults are in `fault_tests.rs`, byte-level damage in
//! `tests/wal_corruption.rs`.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::*;
use crate::engine::EntryRef;
use crate::version::{NodeId, Timestamp};

pub(super) fn version(n: u64) -> Version {
    Version::new(Timestamp(n), NodeId(7))
}

pub(super) fn config(dir: &Path, fsync: FsyncMode) -> WalConfig {
    WalConfig {
        dir: dir.to_path_buf(),
        fsync,
        segment_bytes: DEFAULT_SEGMENT_BYTES,
        fsync_window: Duration::ZERO,
    }
}

/// Opens `config`, collecting the replayed records.
pub(super) fn reopen(
    config: &WalConfig,
    replay_from: Lsn,
) -> (Wal, RecoveryReport, Vec<WalRecord>) {
    let mut records = Vec::new();
    let (wal, report) = Wal::open(config.clone(), replay_from, |r| records.push(r)).unwrap();
    (wal, report, records)
}

fn key(i: u64) -> Vec<u8> {
    format!("key-{i}").into_bytes()
}

fn value(i: u64) -> Option<Vec<u8>> {
    // Every fifth record is a tombstone; the rest vary in size.
    (i % 5 != 0).then(|| vec![i as u8; (i % 37) as usize])
}

pub(super) fn append_n(wal: &Wal, range: std::ops::RangeInclusive<u64>) -> Vec<Lsn> {
    range
        .map(|i| {
            wal.append(
                &key(i),
                EntryRef::new(version(i), value(i).as_deref(), None),
            )
            .unwrap()
        })
        .collect()
}

pub(super) fn check(records: &[WalRecord], range: std::ops::RangeInclusive<u64>) {
    let expected: Vec<u64> = range.collect();
    assert_eq!(records.len(), expected.len());
    for (record, i) in records.iter().zip(expected) {
        assert_eq!(record.lsn, Lsn(i));
        assert_eq!(record.key, key(i));
        assert_eq!(record.version, version(i));
        assert_eq!(record.value, value(i));
    }
}

fn segment_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[test]
fn round_trip_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path(), FsyncMode::Always);
    cfg.segment_bytes = 300;
    let (wal, report, records) = reopen(&cfg, Lsn(0));
    assert_eq!((report.next_lsn, records.len()), (Lsn(1), 0));
    let lsns = append_n(&wal, 1..=120);
    assert_eq!(lsns.first(), Some(&Lsn(1)));
    wal.wait_durable(Lsn(120)).unwrap();
    assert_eq!(wal.durable_lsn(), Lsn(120));
    assert_eq!(wal.next_lsn(), Lsn(121));
    wal.close().unwrap();
    let files = segment_files(dir.path());
    assert!(files.len() > 3, "{files:?}");
    assert_eq!(files[0], "wal-00000000000000000001.log");

    let (wal, report, records) = reopen(&cfg, Lsn(1));
    check(&records, 1..=120);
    assert_eq!(report.records_replayed, 120);
    assert_eq!(report.segments, files.len());
    assert!(report.damage.is_none());
    assert_eq!(report.next_lsn, Lsn(121));
    let total: u64 = files
        .iter()
        .map(|f| std::fs::metadata(dir.path().join(f)).unwrap().len())
        .sum();
    assert_eq!(report.bytes_replayed, total);
    assert_eq!(wal.size_bytes(), total);
    append_n(&wal, 121..=130);
    wal.close().unwrap();
    let (_wal, _, records) = reopen(&cfg, Lsn(1));
    check(&records, 1..=130);
}

#[test]
fn segments_are_named_by_their_first_lsn() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path(), FsyncMode::Never);
    cfg.segment_bytes = 1;
    let (wal, _, _) = reopen(&cfg, Lsn(0));
    append_n(&wal, 1..=3);
    wal.close().unwrap();
    assert_eq!(
        segment_files(dir.path()),
        [1, 2, 3].map(|n| segment::segment_file_name(Lsn(n)))
    );
}

#[test]
fn rotate_then_remove_segments_before() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), FsyncMode::Never);
    let (wal, _, _) = reopen(&cfg, Lsn(0));
    append_n(&wal, 1..=10);
    assert_eq!(wal.rotate().unwrap(), Lsn(11));
    // Rotating an empty segment keeps it.
    assert_eq!(wal.rotate().unwrap(), Lsn(11));
    assert_eq!(segment_files(dir.path()).len(), 2);
    append_n(&wal, 11..=20);
    wal.sync().unwrap();
    let before = wal.size_bytes();
    assert_eq!(wal.rotate().unwrap(), Lsn(21));
    append_n(&wal, 21..=25);
    wal.sync().unwrap();
    // Nothing is wholly below 11 except the first segment.
    assert_eq!(wal.remove_segments_before(Lsn(15)).unwrap(), 1);
    assert!(wal.size_bytes() < before);
    assert_eq!(wal.remove_segments_before(Lsn(15)).unwrap(), 0);
    // The active segment is never removed.
    assert_eq!(wal.remove_segments_before(Lsn(1000)).unwrap(), 1);
    assert_eq!(
        segment_files(dir.path()),
        [segment::segment_file_name(Lsn(21))]
    );
    wal.close().unwrap();
    let (_wal, report, records) = reopen(&cfg, Lsn(21));
    check(&records, 21..=25);
    assert_eq!(report.next_lsn, Lsn(26));
}

#[test]
fn replay_from_skips_but_validates() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), FsyncMode::Never);
    let (wal, _, _) = reopen(&cfg, Lsn(0));
    append_n(&wal, 1..=50);
    wal.close().unwrap();

    let (wal, report, records) = reopen(&cfg, Lsn(20));
    check(&records, 20..=50);
    assert_eq!((report.records_skipped, report.next_lsn), (19, Lsn(51)));
    drop(wal);

    // A snapshot newer than the log: lsns jump forward.
    let (wal, report, records) = reopen(&cfg, Lsn(100));
    assert!(records.is_empty());
    assert_eq!(report.next_lsn, Lsn(100));
    assert_eq!(
        wal.append(b"k", EntryRef::new(version(1), None, None))
            .unwrap(),
        Lsn(100)
    );
    assert_eq!(wal.rotate().unwrap(), Lsn(101));
    assert_eq!(
        wal.append(b"k", EntryRef::new(version(2), None, None))
            .unwrap(),
        Lsn(101)
    );
    wal.close().unwrap();
    let (_wal, report, records) = reopen(&cfg, Lsn(0));
    let lsns: Vec<u64> = records.iter().map(|r| r.lsn.0).collect();
    assert_eq!(lsns.len(), 52);
    assert_eq!(&lsns[49..], [50, 100, 101]);
    assert!(report.damage.is_none(), "{:?}", report.damage);
}

#[test]
fn every_fsync_mode_round_trips() {
    for mode in [
        FsyncMode::Always,
        FsyncMode::Periodic(Duration::from_millis(5)),
        FsyncMode::Never,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path(), mode);
        let (wal, _, _) = reopen(&cfg, Lsn(0));
        let lsns = append_n(&wal, 1..=40);
        for lsn in lsns {
            wal.wait_durable(lsn).unwrap();
        }
        let syncs_before_close = wal.stats().syncs;
        match mode {
            FsyncMode::Always => assert!(syncs_before_close >= 1),
            FsyncMode::Never => assert_eq!(syncs_before_close, 0),
            FsyncMode::Periodic(_) => {}
        }
        wal.close().unwrap();
        let (_wal, _, records) = reopen(&cfg, Lsn(1));
        check(&records, 1..=40);
    }
}

#[test]
fn never_and_periodic_do_not_wait() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), FsyncMode::Periodic(Duration::from_secs(3600)));
    let (wal, _, _) = reopen(&cfg, Lsn(0));
    let lsn = wal
        .append(b"k", EntryRef::new(version(1), Some(b"v"), None))
        .unwrap();
    let started = Instant::now();
    wal.wait_durable(lsn).unwrap();
    assert!(started.elapsed() < Duration::from_secs(1));
    wal.sync().unwrap();
    assert_eq!(wal.durable_lsn(), lsn);
}

#[test]
fn periodic_sync_happens_on_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), FsyncMode::Periodic(Duration::from_millis(20)));
    let (wal, _, _) = reopen(&cfg, Lsn(0));
    let last = *append_n(&wal, 1..=10).last().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while wal.durable_lsn() < last {
        assert!(Instant::now() < deadline, "no periodic sync within 5 s");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(wal.stats().syncs >= 1);
    // And again for later writes, with no one asking.
    let later = wal
        .append(b"later", EntryRef::new(version(11), None, None))
        .unwrap();
    while wal.durable_lsn() < later {
        assert!(Instant::now() < deadline, "no second periodic sync");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(wal.stats().syncs >= 2);
}

#[test]
fn durable_callbacks_see_every_lsn_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _, _) = reopen(&config(dir.path(), FsyncMode::Always), Lsn(0));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    wal.on_durable(Box::new(move |result| {
        sink.lock().unwrap().push(result.unwrap().0);
    }));
    let last = *append_n(&wal, 1..=30).last().unwrap();
    wal.wait_durable(last).unwrap();
    wal.close().unwrap();
    let seen = seen.lock().unwrap();
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
    assert_eq!(seen.last(), Some(&30));
}

#[test]
fn sixteen_threads_recover_in_lsn_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path(), FsyncMode::Always);
    cfg.segment_bytes = 16 << 10;
    let (wal, _, _) = reopen(&cfg, Lsn(0));
    let wal = Arc::new(wal);
    const THREADS: u64 = 16;
    const EACH: u64 = 300;
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let wal = Arc::clone(&wal);
            std::thread::spawn(move || {
                let mut lsns = Vec::new();
                for i in 0..EACH {
                    let key = format!("t{t}-{i}");
                    let lsn = wal
                        .append(
                            key.as_bytes(),
                            EntryRef::new(version(i), Some(&[t as u8; 8]), None),
                        )
                        .unwrap();
                    if i % 50 == 49 {
                        wal.wait_durable(lsn).unwrap();
                    }
                    lsns.push(lsn);
                }
                lsns
            })
        })
        .collect();
    for handle in handles {
        let lsns = handle.join().unwrap();
        assert!(lsns.windows(2).all(|w| w[0] < w[1]));
    }
    let stats = wal.stats();
    Arc::into_inner(wal).unwrap().close().unwrap();
    assert!(stats.rounds <= stats.records_written);

    let (_wal, report, records) = reopen(&cfg, Lsn(1));
    assert_eq!(records.len() as u64, THREADS * EACH);
    assert!(report.segments > 1);
    let mut next_per_thread = vec![0u64; THREADS as usize];
    for (i, record) in records.iter().enumerate() {
        assert_eq!(record.lsn, Lsn(i as u64 + 1));
        let key = String::from_utf8(record.key.clone()).unwrap();
        let (t, n) = key[1..].split_once('-').unwrap();
        let (t, n): (usize, u64) = (t.parse().unwrap(), n.parse().unwrap());
        assert_eq!(n, next_per_thread[t], "thread {t} out of order");
        assert_eq!(record.value.as_deref(), Some(&[t as u8; 8][..]));
        next_per_thread[t] += 1;
    }
}

#[test]
fn drop_without_close_keeps_written_records() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), FsyncMode::Never);
    let (wal, _, _) = reopen(&cfg, Lsn(0));
    append_n(&wal, 1..=25);
    drop(wal);
    let (_wal, _, records) = reopen(&cfg, Lsn(1));
    check(&records, 1..=25);
}

#[test]
fn oversized_records_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _, _) = reopen(&config(dir.path(), FsyncMode::Never), Lsn(0));
    let big = vec![0u8; record::MAX_PAYLOAD_LEN];
    let err = wal
        .append(b"k", EntryRef::new(version(1), Some(&big), None))
        .unwrap_err();
    assert!(matches!(err, WalError::RecordTooLarge { .. }), "{err}");
    assert_eq!(
        wal.append(b"k", EntryRef::new(version(1), None, None))
            .unwrap(),
        Lsn(1)
    );
}

#[test]
fn fsync_mode_parses() {
    assert_eq!("always".parse(), Ok(FsyncMode::Always));
    assert_eq!(
        " Periodic ".parse(),
        Ok(FsyncMode::Periodic(Duration::from_secs(1)))
    );
    assert_eq!("never".parse(), Ok(FsyncMode::Never));
    let err = "sometimes".parse::<FsyncMode>().unwrap_err();
    assert!(err.to_string().contains("\"sometimes\""), "{err}");
    assert!(err.to_string().contains("always"), "{err}");
}

#[test]
fn io_errors_name_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let err = Wal::open(config(&file, FsyncMode::Never), Lsn(0), |_| {}).unwrap_err();
    assert!(err.to_string().contains("not-a-dir"), "{err}");
}

#[test]
fn damage_in_an_old_segment_is_kept_aside() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path(), FsyncMode::Never);
    cfg.segment_bytes = 400;
    let (wal, _, _) = reopen(&cfg, Lsn(0));
    append_n(&wal, 1..=60);
    wal.close().unwrap();
    let files = segment_files(dir.path());
    assert!(files.len() >= 3);
    // Flip a byte in the second record of the first segment.
    let first = dir.path().join(&files[0]);
    let mut bytes = std::fs::read(&first).unwrap();
    let (_, len) = record::decode(&bytes).unwrap();
    bytes[len + 12] ^= 0xFF;
    std::fs::write(&first, &bytes).unwrap();

    let (wal, report, records) = reopen(&cfg, Lsn(1));
    check(&records, 1..=1);
    let damage = report.damage.clone().unwrap();
    assert_eq!((damage.offset, damage.torn_tail), (len as u64, false));
    assert_eq!(report.kept_aside.len(), files.len());
    assert_eq!(report.next_lsn, Lsn(2));
    let mut aside =
        std::fs::read(dir.path().join(format!("{}.damaged-at-{len}", files[0]))).unwrap();
    aside.splice(0..0, bytes[..len].iter().copied());
    assert_eq!(aside, bytes, "the kept-aside copy holds the damaged bytes");
    for later in &files[1..] {
        assert!(dir.path().join(format!("{later}.after-damage")).exists());
    }
    append_n(&wal, 2..=5);
    wal.close().unwrap();
    let (_wal, report, records) = reopen(&cfg, Lsn(1));
    check(&records, 1..=5);
    assert!(report.damage.is_none());
}

#[test]
fn wal_is_send_and_sync() {
    fn shared<T: Send + Sync + 'static>() {}
    shared::<Wal>();
    shared::<WalError>();
}

#[test]
fn damage_reasons_read_well() {
    let missing = DamageReason::MissingRecords {
        expected: Some(Lsn(5)),
        next_base: Lsn(9),
    };
    assert_eq!(
        missing.to_string(),
        "the segment ends before lsn 5, but the next segment begins at lsn 9"
    );
    let empty = DamageReason::MissingRecords {
        expected: None,
        next_base: Lsn(9),
    };
    assert!(empty.to_string().contains("with no records"));
    assert!(WalError::Poisoned
        .to_string()
        .contains("a previous write or fsync of the log failed; it refuses writes until"));
}

/// A fresh fsync-always log in `dir` with `window`.
fn windowed_log(dir: &Path, window: Duration) -> Wal {
    let config = WalConfig {
        fsync_window: window,
        ..config(dir, FsyncMode::Always)
    };
    reopen(&config, Lsn(1)).0
}

/// Appends records 1, 2, ... without waiting for them, for `run` (at most
/// 200,000); returns the last one appended.
fn append_steadily(wal: &Wal, run: Duration) -> u64 {
    let started = Instant::now();
    let mut last = 0;
    while started.elapsed() < run && last < 200_000 {
        last += 1;
        append_n(wal, last..=last);
        // A little room between appends, as between a node's writes.
        std::thread::sleep(Duration::from_micros(50));
    }
    last
}

/// Appends steadily for `run`, then syncs; returns the log's fsync count.
fn syncs_under_steady_appends(dir: &Path, window: Duration, run: Duration) -> u64 {
    let wal = windowed_log(dir, window);
    let before = wal.stats().syncs;
    append_steadily(&wal, run);
    wal.sync().unwrap();
    wal.stats().syncs - before
}

#[test]
fn a_busy_log_waits_out_its_fsync_window_between_syncs() {
    let dir = tempfile::tempdir().unwrap();
    let run = Duration::from_millis(400);
    let back_to_back = syncs_under_steady_appends(&dir.path().join("a"), Duration::ZERO, run);
    let windowed =
        syncs_under_steady_appends(&dir.path().join("b"), Duration::from_millis(100), run);
    // 400 ms of appends: a sync each 100 ms at most, the final one, and
    // the first before the log was seen busy.
    assert!(windowed <= 8, "{windowed} syncs with a 100 ms window");
    assert!(
        back_to_back > 3 * windowed,
        "without a window the log syncs as fast as the disk: {back_to_back} against {windowed}"
    );
}

#[test]
fn a_writer_waiting_for_each_record_never_waits_out_the_window() {
    let dir = tempfile::tempdir().unwrap();
    let wal = windowed_log(dir.path(), Duration::from_secs(1));
    let started = Instant::now();
    for i in 1..=4 {
        let lsn = append_n(&wal, i..=i)[0];
        wal.wait_durable(lsn).unwrap();
    }
    // Were the window waited out after each sync, this took three seconds.
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "four sequential durable appends took {:?}",
        started.elapsed()
    );
}

#[test]
fn a_sync_request_cuts_the_fsync_window_short() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Arc::new(windowed_log(dir.path(), Duration::from_secs(5)));
    // Appends that keep coming: after its first round the log is busy and
    // its syncer waits out the 5 s window.
    let appender = {
        let wal = Arc::clone(&wal);
        std::thread::spawn(move || append_steadily(&wal, Duration::from_millis(300)))
    };
    let last = appender.join().unwrap();
    let started = Instant::now();
    wal.sync().unwrap();
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "a sync request waited {:?} for the window",
        started.elapsed()
    );
    assert_eq!(wal.durable_lsn(), Lsn(last));
}
