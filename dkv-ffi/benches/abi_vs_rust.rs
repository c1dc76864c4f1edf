//! The cost of the C ABI: `dkv_put`/`dkv_get` through libdkv's exported
//! functions against the same operations through the Rust client, on one
//! node in this process, in one run. Rounds alternate between the two so
//! that drift (caches, CPU frequency) hits both alike.
//!
//! `cargo bench -p dkv-ffi --bench abi_vs_rust` (DKV_BENCH_OPS sets the
//! operations per round, DKV_BENCH_ROUNDS the rounds).

use std::ffi::CString;
use std::time::{Duration, Instant};

use dkv::{
    dkv_buf, dkv_buf_free, dkv_client, dkv_client_connect, dkv_client_free, dkv_get, dkv_put,
    dkv_status, DKV_CONSISTENCY_QUORUM,
};
use dkv_core::client::{Client, ClientOptions};
use dkv_core::node::Consistency;
use dkv_core::server::{Node, NodeConfig};
use dkv_core::wal::FsyncMode;
use dkv_core::NodeId;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[derive(Default)]
struct Totals {
    rust_put: Duration,
    c_put: Duration,
    rust_get: Duration,
    c_get: Duration,
}

fn main() {
    let ops = env_usize("DKV_BENCH_OPS", 20_000);
    let rounds = env_usize("DKV_BENCH_ROUNDS", 5);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = NodeConfig::new(NodeId(1), 0, dir.path());
    config.store.fsync = FsyncMode::Never;
    config.worker_threads = 1;
    let node = Node::start(config).expect("node starts");
    let addr = node.client_addr();

    let mut rust = Client::connect(&[addr], ClientOptions::default()).expect("rust client");
    let text = CString::new(addr.to_string()).expect("address");
    let addrs = [text.as_ptr()];
    let mut c: *mut dkv_client = std::ptr::null_mut();
    assert_eq!(
        dkv_client_connect(addrs.as_ptr(), 1, 0, &mut c),
        dkv_status::Ok
    );

    let keys: Vec<Vec<u8>> = (0..ops)
        .map(|i| format!("key-{i:08}").into_bytes())
        .collect();
    let value = vec![b'v'; 100];
    let q = Consistency::Quorum;
    let mut t = Totals::default();
    for round in 0..=rounds {
        let mut this = Totals::default();
        let started = Instant::now();
        for key in &keys {
            rust.put(key, &value, q, None).expect("rust put");
        }
        this.rust_put = started.elapsed();
        let started = Instant::now();
        for key in &keys {
            let s = dkv_put(
                c,
                key.as_ptr(),
                key.len(),
                value.as_ptr(),
                value.len(),
                DKV_CONSISTENCY_QUORUM,
                0,
            );
            assert_eq!(s, dkv_status::Ok);
        }
        this.c_put = started.elapsed();
        let started = Instant::now();
        for key in &keys {
            let got = rust.get(key, q, None).expect("rust get");
            assert_eq!(got.map(|v| v.len()), Some(value.len()));
        }
        this.rust_get = started.elapsed();
        let started = Instant::now();
        for key in &keys {
            let mut buf = dkv_buf {
                data: std::ptr::null_mut(),
                len: 0,
            };
            let s = dkv_get(
                c,
                key.as_ptr(),
                key.len(),
                DKV_CONSISTENCY_QUORUM,
                0,
                &mut buf,
            );
            assert_eq!((s, buf.len), (dkv_status::Ok, value.len()));
            dkv_buf_free(&mut buf);
        }
        this.c_get = started.elapsed();
        // Round 0 warms up the connections, the store and the allocator.
        if round > 0 {
            t.rust_put += this.rust_put;
            t.c_put += this.c_put;
            t.rust_get += this.rust_get;
            t.c_get += this.c_get;
        }
    }
    dkv_client_free(c);
    node.stop().expect("node stops");

    let total = (ops * rounds) as f64;
    let rate = |d: Duration| total / d.as_secs_f64();
    println!("one local node, fsync never, 100-byte values, {rounds} rounds x {ops} ops (after 1 warm-up round)");
    println!(
        "{:<6} {:>14} {:>14} {:>10}",
        "op", "Rust ops/s", "C ABI ops/s", "C/Rust time"
    );
    for (name, r, cd) in [("put", t.rust_put, t.c_put), ("get", t.rust_get, t.c_get)] {
        println!(
            "{name:<6} {:>14.0} {:>14.0} {:>10.3}",
            rate(r),
            rate(cd),
            cd.as_secs_f64() / r.as_secs_f64()
        );
    }
    let ratio = (t.c_put + t.c_get).as_secs_f64() / (t.rust_put + t.rust_get).as_secs_f64();
    println!("overall C ABI time / Rust time = {ratio:.3} (target <= 1.10)");
}
