//! Fault injection: a failing write or `fdatasync` poisons the log
//! (fsyncgate), every waiter it covered gets the error, nothing is retried.

use std::fs::File;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::tests::{append_n, check, config, reopen, version};
use super::*;
use crate::engine::EntryRef;

/// Real file operations, with switchable failures.
#[derive(Default)]
struct FaultyIo {
    fail_write: AtomicBool,
    fail_sync: AtomicBool,
    fail_create: AtomicBool,
    syncs: AtomicU64,
}

impl SegmentIo for FaultyIo {
    fn write_all(&self, file: &mut File, bytes: &[u8]) -> io::Result<()> {
        if self.fail_write.load(Ordering::SeqCst) {
            // A short write, as a full disk gives.
            file.write_all(&bytes[..bytes.len() / 2])?;
            return Err(io::Error::other("injected write failure"));
        }
        file.write_all(bytes)
    }

    fn create_new(&self, path: &std::path::Path) -> io::Result<File> {
        if self.fail_create.load(Ordering::SeqCst) {
            return Err(io::Error::from_raw_os_error(libc::EMFILE));
        }
        std::fs::OpenOptions::new()
            .append(true)
            .create_new(true)
            .open(path)
    }

    fn sync_data(&self, file: &File) -> io::Result<()> {
        self.syncs.fetch_add(1, Ordering::SeqCst);
        if self.fail_sync.load(Ordering::SeqCst) {
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
        file.sync_data()
    }
}

fn open_faulty(cfg: &WalConfig) -> (Wal, Arc<FaultyIo>) {
    let io = Arc::new(FaultyIo::default());
    let (wal, _) = Wal::open_with_io(cfg.clone(), io.clone(), Lsn(0), |_| {}).unwrap();
    (wal, io)
}

#[test]
fn failed_sync_poisons_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), FsyncMode::Always);
    let (wal, io) = open_faulty(&cfg);
    let errors = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&errors);
    wal.on_durable(Box::new(move |result| {
        if let Err(e) = result {
            sink.lock().unwrap().push(e.to_string());
        }
    }));
    let good = wal
        .append(b"good", EntryRef::new(version(1), Some(b"v"), None))
        .unwrap();
    wal.wait_durable(good).unwrap();

    io.fail_sync.store(true, Ordering::SeqCst);
    let bad = wal
        .append(b"bad", EntryRef::new(version(2), Some(b"v"), None))
        .unwrap();
    let err = wal.wait_durable(bad).unwrap_err();
    assert!(
        matches!(
            err,
            WalError::SyncFailed {
                op: "fdatasync",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("wal-"), "names the segment: {err}");
    assert!(wal.is_poisoned());
    // Never retried as if the data were safe: the sync is not repeated and
    // durability does not advance even once the disk "recovers".
    io.fail_sync.store(false, Ordering::SeqCst);
    let syncs = io.syncs.load(Ordering::SeqCst);
    assert!(matches!(
        wal.append(b"later", EntryRef::new(version(3), None, None)),
        Err(WalError::Poisoned)
    ));
    assert!(matches!(
        wal.wait_durable(bad),
        Err(WalError::SyncFailed { .. })
    ));
    assert!(matches!(
        wal.wait_durable(Lsn(bad.0 + 1)),
        Err(WalError::Poisoned)
    ));
    wal.wait_durable(good).unwrap();
    assert!(wal.sync().is_err());
    assert!(matches!(wal.rotate(), Err(WalError::Poisoned)));
    assert_eq!(wal.durable_lsn(), good);
    assert_eq!(io.syncs.load(Ordering::SeqCst), syncs);
    assert!(wal.close().is_err());
    // The syncer has stopped: its callbacks have all run.
    assert_eq!(errors.lock().unwrap().len(), 1);

    // Reopening clears it; the record that failed may or may not be there.
    let (wal, report, records) = reopen(&cfg, Lsn(0));
    assert_eq!(records[0].key, b"good");
    let lsn = wal
        .append(b"after", EntryRef::new(version(4), None, None))
        .unwrap();
    assert_eq!(lsn, report.next_lsn);
    wal.wait_durable(lsn).unwrap();
}

#[test]
fn failed_sync_fails_every_waiter_it_covered() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, io) = open_faulty(&config(dir.path(), FsyncMode::Always));
    let wal = Arc::new(wal);
    io.fail_sync.store(true, Ordering::SeqCst);
    let waiters: Vec<_> = (0..8)
        .map(|i| {
            let wal = Arc::clone(&wal);
            std::thread::spawn(move || {
                let lsn = wal.append(b"k", EntryRef::new(version(i), Some(b"v"), None))?;
                wal.wait_durable(lsn)
            })
        })
        .collect();
    for waiter in waiters {
        let err = waiter.join().unwrap().unwrap_err();
        assert!(
            matches!(err, WalError::SyncFailed { .. } | WalError::Poisoned),
            "{err}"
        );
    }
    assert_eq!(wal.durable_lsn(), Lsn(0));
}

#[test]
fn failed_write_poisons_and_recovery_repairs_the_tail() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), FsyncMode::Periodic(Duration::from_secs(3600)));
    let (wal, io) = open_faulty(&cfg);
    append_n(&wal, 1..=5);
    wal.sync().unwrap();
    io.fail_write.store(true, Ordering::SeqCst);
    append_n(&wal, 6..=6);
    let err = wal.sync().unwrap_err();
    assert!(
        matches!(err, WalError::SyncFailed { op: "write", .. }),
        "{err}"
    );
    assert!(matches!(wal.wait_durable(Lsn(6)), Err(WalError::Poisoned)));
    assert!(wal
        .append(b"k", EntryRef::new(version(7), None, None))
        .is_err());
    drop(wal);
    // Half a record at the tail: a torn write, truncated on reopen.
    let (wal, report, records) = reopen(&cfg, Lsn(1));
    check(&records, 1..=5);
    assert!(report.damage.unwrap().torn_tail);
    append_n(&wal, 6..=7);
    wal.close().unwrap();
    let (_wal, _, records) = reopen(&cfg, Lsn(1));
    check(&records, 1..=7);
}

/// Writes that wait while `closed` is set.
#[derive(Default)]
struct GatedIo {
    closed: AtomicBool,
    writes: AtomicU64,
}

impl SegmentIo for GatedIo {
    fn write_all(&self, file: &mut File, bytes: &[u8]) -> io::Result<()> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        while self.closed.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(1));
        }
        file.write_all(bytes)
    }
}

#[test]
fn appenders_block_while_the_buffer_is_full() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), FsyncMode::Never);
    let io = Arc::new(GatedIo::default());
    io.closed.store(true, Ordering::SeqCst);
    let (wal, _) = Wal::open_with_io(cfg.clone(), io.clone(), Lsn(0), |_| {}).unwrap();
    let wal = Arc::new(wal);
    // The syncer takes this one and then hangs in its write.
    wal.append(b"first", EntryRef::new(version(0), None, None))
        .unwrap();
    while io.writes.load(Ordering::SeqCst) == 0 {
        std::thread::sleep(Duration::from_millis(1));
    }
    let value = vec![0xAB; 1 << 20];
    let fit = MAX_BUFFERED_BYTES
        / record::encoded_len(8, EntryRef::value(Version::default(), &value)).unwrap();
    let done = Arc::new(AtomicU64::new(0));
    let appender = {
        let (wal, done) = (Arc::clone(&wal), Arc::clone(&done));
        std::thread::spawn(move || {
            for i in 0..fit as u64 + 5 {
                wal.append(
                    &i.to_le_bytes(),
                    EntryRef::new(version(i), Some(&value), None),
                )
                .unwrap();
                done.fetch_add(1, Ordering::SeqCst);
            }
        })
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while done.load(Ordering::SeqCst) < fit as u64 {
        assert!(
            std::time::Instant::now() < deadline,
            "appends stalled early"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        done.load(Ordering::SeqCst),
        fit as u64,
        "the buffer is bounded"
    );
    io.closed.store(false, Ordering::SeqCst);
    appender.join().unwrap();
    Arc::into_inner(wal).unwrap().close().unwrap();
    let (_wal, report, _) = reopen(&cfg, Lsn(1));
    assert_eq!(report.records_replayed, fit as u64 + 6);
}

#[test]
fn a_segment_that_cannot_be_created_is_retried_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path(), FsyncMode::Always);
    cfg.segment_bytes = 300;
    let (wal, io) = open_faulty(&cfg);
    append_n(&wal, 1..=5);
    let before = segment_count(dir.path());
    assert!(before >= 1);
    // No descriptors for new files: every record still becomes durable,
    // in the segment already open.
    io.fail_create.store(true, Ordering::SeqCst);
    for lsn in append_n(&wal, 6..=40) {
        wal.wait_durable(lsn).unwrap();
    }
    assert!(!wal.is_poisoned());
    assert_eq!(segment_count(dir.path()), before);
    // Descriptors back: the next round switches segments again.
    io.fail_create.store(false, Ordering::SeqCst);
    for lsn in append_n(&wal, 41..=80) {
        wal.wait_durable(lsn).unwrap();
    }
    assert!(segment_count(dir.path()) > before);
    wal.close().unwrap();
    let (_wal, _, records) = reopen(&cfg, Lsn(1));
    check(&records, 1..=80);
}

fn segment_count(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref().is_ok_and(|e| {
                segment::parse_segment_file_name(&e.file_name().to_string_lossy()).is_some()
            })
        })
        .count()
}

#[test]
fn a_failed_log_revived_takes_writes_again_and_recovers_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path(), FsyncMode::Always);
    cfg.segment_bytes = 300;
    let (wal, io) = open_faulty(&cfg);
    for lsn in append_n(&wal, 1..=20) {
        wal.wait_durable(lsn).unwrap();
    }
    assert!(matches!(wal.revive(), Err(WalError::NotPoisoned)));
    io.fail_write.store(true, Ordering::SeqCst);
    let doomed = wal
        .append(b"doomed", EntryRef::new(version(21), Some(b"x"), None))
        .unwrap();
    assert!(wal.wait_durable(doomed).is_err());
    assert!(wal.is_poisoned());
    // The disk is still full: reviving fails until it is not.
    io.fail_create.store(true, Ordering::SeqCst);
    assert!(wal.revive().is_err());
    assert!(wal.is_poisoned());
    io.fail_create.store(false, Ordering::SeqCst);
    io.fail_write.store(false, Ordering::SeqCst);
    let base = wal.revive().unwrap();
    assert_eq!(base, Lsn(22));
    assert!(!wal.is_poisoned());
    assert_eq!(wal.durable_lsn(), Lsn(21));
    for (i, lsn) in (22..=60).zip(append_n(&wal, 22..=60)) {
        assert_eq!(lsn, Lsn(i));
        wal.wait_durable(lsn).unwrap();
    }
    wal.close().unwrap();
    // The old segments are gone (a snapshot covers them); what was written
    // since recovers with no damage.
    let (_wal, report, records) = reopen(&cfg, Lsn(22));
    assert!(
        report.damage.is_none() && report.kept_aside.is_empty(),
        "{report:?}"
    );
    check(&records, 22..=60);
}
