//! Storage benchmarks: engine get/put throughput, resident bytes per key,
//! and snapshot write/load time, for 1M keys of 16-byte keys and 64-byte
//! values. Run: `cargo bench -p dkv --bench storage` (set
//! `DKV_BENCH_KEYS` for another key count). Memory is compared with a
//! `redis-server` started on 127.0.0.1 when one is installed.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use dkv::snapshot;
use dkv::wal::Lsn;
use dkv::{Engine, NodeId, Timestamp, Version};

fn key(i: u64) -> [u8; 16] {
    let mut key = *b"key:000000000000";
    let digits = format!("{i:012}");
    key[4..].copy_from_slice(digits.as_bytes());
    key
}

fn value(i: u64) -> [u8; 64] {
    let mut value = [b'v'; 64];
    value[..8].copy_from_slice(&i.to_le_bytes());
    value
}

fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn version(i: u64) -> Version {
    Version::new(Timestamp(i + 1), NodeId(1))
}

fn ops_per_sec(ops: u64, elapsed: Duration) -> f64 {
    ops as f64 / elapsed.as_secs_f64()
}

/// Runs `threads` threads each doing `per_thread` operations; ops/s.
fn run_threads(threads: u64, per_thread: u64, op: impl Fn(u64, u64) + Sync) -> f64 {
    let start = Instant::now();
    std::thread::scope(|scope| {
        for t in 0..threads {
            let op = &op;
            scope.spawn(move || {
                for i in 0..per_thread {
                    op(t, i);
                }
            });
        }
    });
    ops_per_sec(threads * per_thread, start.elapsed())
}

/// Bytes per key redis-server uses for the same data, if one is installed.
fn redis_bytes_per_key(keys: u64) -> Option<f64> {
    let port = 16379;
    let mut server = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::null())
        .spawn()
        .ok()?;
    let result = (|| {
        let mut conn = (0..50).find_map(|_| {
            std::thread::sleep(Duration::from_millis(100));
            TcpStream::connect(("127.0.0.1", port)).ok()
        })?;
        let used = |conn: &mut TcpStream| -> Option<f64> {
            conn.write_all(b"INFO memory\r\n").ok()?;
            let mut reader = BufReader::new(conn.try_clone().ok()?);
            let mut header = String::new();
            reader.read_line(&mut header).ok()?;
            let len: usize = header.trim().trim_start_matches('$').parse().ok()?;
            let mut body = vec![0u8; len + 2];
            std::io::Read::read_exact(&mut reader, &mut body).ok()?;
            let text = String::from_utf8_lossy(&body).to_string();
            text.lines()
                .find_map(|l| l.strip_prefix("used_memory_rss:"))
                .and_then(|v| v.trim().parse().ok())
        };
        let before = used(&mut conn)?;
        let mut reader = BufReader::new(conn.try_clone().ok()?);
        let mut batch = Vec::new();
        for i in 0..keys {
            batch.extend_from_slice(b"*3\r\n$3\r\nSET\r\n$16\r\n");
            batch.extend_from_slice(&key(i));
            batch.extend_from_slice(b"\r\n$64\r\n");
            batch.extend_from_slice(&value(i));
            batch.extend_from_slice(b"\r\n");
            if i % 1000 == 999 || i + 1 == keys {
                conn.write_all(&batch).ok()?;
                batch.clear();
                for _ in 0..(i % 1000 + 1) {
                    let mut line = String::new();
                    reader.read_line(&mut line).ok()?;
                }
            }
        }
        let after = used(&mut conn)?;
        Some((after - before) / keys as f64)
    })();
    let _ = server.kill();
    let _ = server.wait();
    result
}

fn main() {
    let keys: u64 = std::env::var("DKV_BENCH_KEYS")
        .ok()
        .and_then(|k| k.parse().ok())
        .unwrap_or(1_000_000);
    println!("dkv storage benchmark: {keys} keys, 16-byte keys, 64-byte values");

    // Memory first, before anything else fragments the heap.
    let before = resident_bytes();
    let engine = Engine::new(32).unwrap();
    for i in 0..keys {
        engine.put(&key(i), &value(i), version(i));
    }
    let dkv_per_key = (resident_bytes() - before) as f64 / keys as f64;
    let redis_per_key = redis_bytes_per_key(keys);
    match redis_per_key {
        Some(redis) => println!(
            "memory: dkv {dkv_per_key:.1} bytes/key resident, redis-server {redis:.1} bytes/key (dkv/redis {:.2})",
            dkv_per_key / redis
        ),
        None => println!("memory: dkv {dkv_per_key:.1} bytes/key resident (redis-server not found)"),
    }

    for threads in [1u64, 2] {
        let per_thread = keys / threads;
        let put = run_threads(threads, per_thread, |t, i| {
            let k = t * per_thread + i;
            engine.put(&key(k), &value(k), version(keys + k));
        });
        let get = run_threads(threads, per_thread, |t, i| {
            let k = (t * per_thread + i * 7919) % keys;
            std::hint::black_box(engine.get(&key(k)));
        });
        println!("engine {threads} thread(s): put {put:.0} ops/s, get {get:.0} ops/s");
    }

    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let start = Instant::now();
    let info = snapshot::write(dir.path(), &engine, Lsn(1)).unwrap();
    let write_time = start.elapsed();
    drop(engine);
    let loaded = Engine::new(32).unwrap();
    let start = Instant::now();
    snapshot::load(&info.path, &loaded).unwrap();
    let load_time = start.elapsed();
    println!(
        "snapshot of {} entries ({:.1} MB): written in {:.2} s, loaded in {:.2} s ({:.0} entries/s)",
        info.entries,
        info.bytes as f64 / 1e6,
        write_time.as_secs_f64(),
        load_time.as_secs_f64(),
        ops_per_sec(info.entries, load_time)
    );
}
