//! WAL benchmarks (no criterion: plain `main`, printed figures).
//!
//! 1. Durable writes/s with 50 writer threads, each looping `append` +
//!    `wait_durable` (fsync Always, group commit), against a baseline in the
//!    same run: 50 threads sharing a `Mutex<File>`, doing `write_all` +
//!    `sync_data` per record of the same encoded size. Prints the ratio and
//!    the average number of records per `fdatasync`.
//! 2. Recovery: 1M records (16-byte keys, 64-byte values) written in Never
//!    mode, then `Wal::open` replaying them, with the segments in the page
//!    cache and after evicting them (`posix_fadvise(DONTNEED)`).
//!
//! ```text
//! cargo bench -p dkv --bench wal                      # full: ~3 s per side, 1M records
//! DKV_BENCH_QUICK=1 cargo bench -p dkv --bench wal    # short: 1 s, 100k records
//! ```
//!
//! Files go under Cargo's target tmpdir (a real disk here; the bench warns
//! if it is a tmpfs, where fsync costs nothing and the ratio means nothing).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use dkv::engine::EntryRef;
use dkv::wal::{record, FsyncMode, Lsn, Wal, WalConfig};
use dkv::{NodeId, Timestamp, Version};

const THREADS: usize = 50;
const KEY_LEN: usize = 16;
const VALUE_LEN: usize = 64;

fn main() {
    let quick = std::env::var("DKV_BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0");
    let root = Path::new(env!("CARGO_TARGET_TMPDIR"));
    std::fs::create_dir_all(root).expect("create the bench directory");
    let dir = tempfile::tempdir_in(root).expect("create a temporary directory");
    println!(
        "dkv WAL benchmark in {}{}",
        dir.path().display(),
        if quick { " (quick)" } else { "" }
    );
    warn_if_tmpfs(dir.path());

    let duration = if quick {
        Duration::from_secs(1)
    } else {
        Duration::from_secs(3)
    };
    group_commit(&dir.path().join("group"), duration);
    let records = if quick { 100_000 } else { 1_000_000 };
    recovery(&dir.path().join("recovery"), records);
}

fn key(i: u64) -> [u8; KEY_LEN] {
    let mut key = [0u8; KEY_LEN];
    key.copy_from_slice(format!("key-{i:012}").as_bytes());
    key
}

fn version(i: u64) -> Version {
    Version::new(Timestamp(i), NodeId(1))
}

fn group_commit(dir: &Path, duration: Duration) {
    let value = [7u8; VALUE_LEN];
    let record_len =
        record::encoded_len(KEY_LEN, EntryRef::value(version(0), &value)).expect("small record");
    println!();
    println!(
        "== durable writes: {THREADS} threads, {record_len}-byte records, {duration:?} each =="
    );

    // Group commit through the WAL.
    let (wal, _) = Wal::open(WalConfig::new(dir), Lsn(0), |_| {}).expect("open the WAL");
    let wal = Arc::new(wal);
    let (ops, elapsed, max_latency) = run_writers(duration, |t, i| {
        let lsn = wal
            .append(
                &key(t * 1_000_000_000 + i),
                EntryRef::value(version(i), &value),
            )
            .expect("append");
        wal.wait_durable(lsn).expect("wait_durable");
    });
    let stats = wal.stats();
    let group_rate = ops as f64 / elapsed.as_secs_f64();
    let batch = stats.records_written as f64 / stats.syncs.max(1) as f64;
    println!(
        "group commit (fsync always): {group_rate:>10.0} durable writes/s  ({ops} writes, {} fdatasyncs, \
         average batch {batch:.1} records, max latency {max_latency:?})",
        stats.syncs
    );
    match Arc::try_unwrap(wal) {
        Ok(wal) => wal.close().expect("close the WAL"),
        Err(_) => unreachable!("every writer thread has finished"),
    }

    // Baseline: one fdatasync per write, the file behind a mutex.
    let mut encoded = Vec::new();
    record::encode_into(
        &mut encoded,
        Lsn(1),
        &key(0),
        EntryRef::value(version(0), &value),
    )
    .expect("encode");
    let path = dir.join("baseline.log");
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .expect("open the baseline file");
    let file = Mutex::new(file);
    let (base_ops, base_elapsed, base_max) = run_writers(duration, |_, _| {
        let mut file = file.lock().expect("baseline mutex");
        file.write_all(&encoded).expect("baseline write");
        file.sync_data().expect("baseline fdatasync");
    });
    let base_rate = base_ops as f64 / base_elapsed.as_secs_f64();
    println!(
        "baseline (fdatasync per write): {base_rate:>7.0} durable writes/s  ({base_ops} writes, max latency {base_max:?})"
    );
    println!(
        "ratio: group commit is {:.1}x the baseline (target >= 10x)",
        group_rate / base_rate.max(f64::MIN_POSITIVE)
    );
}

/// Runs `write(thread, i)` on [`THREADS`] threads for `duration`; returns the
/// writes done, the time taken and the worst single write.
fn run_writers(duration: Duration, write: impl Fn(u64, u64) + Sync) -> (u64, Duration, Duration) {
    let stop = AtomicBool::new(false);
    let ops = AtomicU64::new(0);
    let worst = AtomicU64::new(0);
    let start = Barrier::new(THREADS + 1);
    let elapsed = thread::scope(|scope| {
        for t in 0..THREADS as u64 {
            let (stop, ops, worst, start, write) = (&stop, &ops, &worst, &start, &write);
            scope.spawn(move || {
                start.wait();
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let began = Instant::now();
                    write(t, i);
                    worst.fetch_max(began.elapsed().as_nanos() as u64, Ordering::Relaxed);
                    i += 1;
                }
                ops.fetch_add(i, Ordering::Relaxed);
            });
        }
        start.wait();
        let began = Instant::now();
        thread::sleep(duration);
        stop.store(true, Ordering::Relaxed);
        began
    })
    .elapsed();
    (
        ops.load(Ordering::Relaxed),
        elapsed,
        Duration::from_nanos(worst.load(Ordering::Relaxed)),
    )
}

fn recovery(dir: &Path, records: u64) {
    println!();
    println!("== recovery: {records} records, {KEY_LEN}-byte keys, {VALUE_LEN}-byte values ==");
    let value = [9u8; VALUE_LEN];
    let mut config = WalConfig::new(dir);
    config.fsync = FsyncMode::Never;
    let (wal, _) = Wal::open(config.clone(), Lsn(0), |_| {}).expect("open the WAL");
    let began = Instant::now();
    for i in 0..records {
        wal.append(&key(i), EntryRef::value(version(i), &value))
            .expect("append");
    }
    wal.close().expect("close the WAL");
    let write = began.elapsed();
    println!(
        "write (fsync never, one thread, then one sync): {:>10.0} records/s",
        records as f64 / write.as_secs_f64()
    );

    for cold in [false, true] {
        if cold {
            evict(dir);
        }
        let mut replayed = 0u64;
        let mut checksum = 0u64;
        let began = Instant::now();
        let (wal, report) = Wal::open(config.clone(), Lsn(0), |r| {
            replayed += 1;
            checksum = checksum.wrapping_add(r.lsn.0 ^ r.key.len() as u64);
        })
        .expect("reopen the WAL");
        let elapsed = began.elapsed();
        drop(wal);
        assert_eq!(replayed, records, "every record replayed");
        std::hint::black_box(checksum);
        let secs = elapsed.as_secs_f64();
        println!(
            "replay ({}): {:>10.0} records/s, {:>6.0} MB/s  ({} bytes, {} segments, {elapsed:?})",
            if cold {
                "after evicting the page cache"
            } else {
                "page cache warm"
            },
            report.records_replayed as f64 / secs,
            report.bytes_replayed as f64 / secs / 1e6,
            report.bytes_replayed,
            report.segments,
        );
    }
}

/// Drops the WAL's files from the page cache, so replay reads the disk.
fn evict(dir: &Path) {
    for entry in std::fs::read_dir(dir).expect("list the WAL") {
        let path = entry.expect("list the WAL").path();
        if let Ok(file) = File::open(&path) {
            use std::os::unix::io::AsRawFd;
            // SAFETY: a valid open descriptor; advice only, no memory involved.
            unsafe {
                libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED);
            }
        }
    }
}

fn warn_if_tmpfs(dir: &Path) {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    const TMPFS_MAGIC: i64 = 0x0102_1994;
    let Ok(path) = CString::new(dir.as_os_str().as_bytes()) else {
        return;
    };
    // SAFETY: `path` is NUL-terminated; `statfs` fills the zeroed struct.
    let mut stat: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statfs(path.as_ptr(), &mut stat) } == 0 && stat.f_type as i64 == TMPFS_MAGIC {
        println!(
            "WARNING: {} is a tmpfs: fsync is free there, so the ratio is meaningless",
            dir.display()
        );
    }
}
