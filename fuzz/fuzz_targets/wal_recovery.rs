//! Fuzz target for WAL recovery (`dkv::wal::Wal::open`).
//!
//! Input layout: byte 0 is how many segments (1-3) and where the cuts go;
//! the rest is split into that many segment files named `wal-<base>.log`
//! with bases 1, 1000, 2000, written to a fresh directory, which is then
//! opened. Whatever the bytes, recovery must not panic; every record it
//! replays must have a strictly larger lsn than the one before; the next
//! lsn must be past them; and the recovered log must take a new record and
//! replay exactly the same records, plus it, when opened again.
//!
//! Run: `cargo +nightly fuzz run wal_recovery` from `fuzz/`.

#![no_main]

use std::path::PathBuf;

use dkv::wal::{FsyncMode, Lsn, Wal, WalConfig, WalRecord};
use dkv::{EntryRef, NodeId, Timestamp, Version};
use libfuzzer_sys::fuzz_target;

mod scratch;

fn open(dir: &PathBuf) -> (Wal, Vec<WalRecord>, Lsn) {
    let mut replayed = Vec::new();
    let config = WalConfig {
        fsync: FsyncMode::Never,
        segment_bytes: 1 << 16,
        ..WalConfig::new(dir)
    };
    let (wal, report) = Wal::open(config, Lsn(1), |r| replayed.push(r)).expect("recovery opens any bytes");
    (wal, replayed, report.next_lsn)
}

fuzz_target!(|data: &[u8]| {
    let Some((&control, rest)) = data.split_first() else {
        return;
    };
    let segments = 1 + (control % 3) as usize;
    let dir = scratch::dir("wal");
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let mut cut = rest;
    for (i, base) in [1u64, 1000, 2000].iter().take(segments).enumerate() {
        let share = if i + 1 == segments {
            cut.len()
        } else {
            (cut.len() * usize::from(control / 3 % 7 + 1) / 8).min(cut.len())
        };
        let (bytes, after) = cut.split_at(share);
        cut = after;
        std::fs::write(dir.join(format!("wal-{base:020}.log")), bytes).expect("write segment");
    }

    let (wal, replayed, next) = open(&dir);
    for pair in replayed.windows(2) {
        assert!(pair[0].lsn < pair[1].lsn, "lsns go up");
    }
    if let Some(last) = replayed.last() {
        assert!(next > last.lsn, "the next lsn is past what was replayed");
    }
    let version = Version::new(Timestamp(7), NodeId(1));
    let lsn = wal
        .append(b"after", EntryRef::new(version, Some(b"v"), Some(9)))
        .expect("a recovered log takes writes");
    assert_eq!(lsn, next);
    wal.close().expect("close");

    let (wal, again, _) = open(&dir);
    assert_eq!(again.len(), replayed.len() + 1, "the same records, plus the new one");
    assert_eq!(&again[..replayed.len()], &replayed[..]);
    assert_eq!(again.last().map(|r| r.lsn), Some(lsn));
    drop(wal);
    let _ = std::fs::remove_dir_all(&dir);
});
