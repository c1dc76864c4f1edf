//! Fuzz target for snapshot and flush-floor loading (`dkv::snapshot`).
//!
//! Input layout: byte 0 picks what the rest is: a snapshot file (even) or
//! a flush-floor file (odd). The file is written to a fresh directory and
//! loaded. Whatever the bytes, loading must not panic; it either fails
//! with a `SnapshotError` naming the file or loads, and a loaded
//! snapshot's engine, written out again and reloaded, holds the same
//! entries.
//!
//! Run: `cargo +nightly fuzz run snapshot_load` from `fuzz/`.

#![no_main]


use dkv::snapshot;
use dkv::wal::Lsn;
use dkv::Engine;
use libfuzzer_sys::fuzz_target;

mod scratch;

fuzz_target!(|data: &[u8]| {
    let Some((&kind, bytes)) = data.split_first() else {
        return;
    };
    let dir = scratch::dir("snap");
    std::fs::create_dir_all(&dir).expect("scratch dir");
    if kind % 2 == 1 {
        std::fs::write(dir.join("flush-floor.dkv"), bytes).expect("write floor");
        if let Err(e) = snapshot::floor::read(&dir) {
            assert!(e.to_string().contains("flush-floor.dkv"), "{e}");
        }
        let _ = std::fs::remove_dir_all(&dir);
        return;
    }
    let path = dir.join("snapshot-00000000000000000001.dkv");
    std::fs::write(&path, bytes).expect("write snapshot");
    let engine = Engine::new(4).expect("engine");
    match snapshot::load(&path, &engine) {
        Err(e) => assert!(e.to_string().contains("snapshot-"), "{e}"),
        Ok(_) => {
            let again = dir.join("again");
            let info = snapshot::write(&again, &engine, Lsn(5)).expect("write back");
            let reloaded = Engine::new(2).expect("engine");
            snapshot::load(&info.path, &reloaded).expect("what was written loads");
            assert_eq!(reloaded.to_sorted_vec(), engine.to_sorted_vec());
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
});
