//! A fresh scratch directory per fuzz input, for the targets that write
//! files: under `DKV_FUZZ_DIR`, or `/dev/shm` (memory, so runs are fast).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

static RUN: AtomicU64 = AtomicU64::new(0);

/// A directory path no other input of this process uses (not created).
pub fn dir(target: &str) -> PathBuf {
    let base = std::env::var_os("DKV_FUZZ_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/dev/shm"));
    let run = RUN.fetch_add(1, Ordering::Relaxed);
    base.join(format!("dkv-fuzz-{target}-{}-{run}", std::process::id()))
}
