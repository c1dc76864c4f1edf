//! The cost of the C ABI: `dkv_put`/`dkv_get` through libdkv's exported
//! functions against the same operations through the Rust client, on one
//! node in this process, in one run. Rounds alternate between the two so
//! that drift (caches, CPU frequency) hits both alike.
//!
//! The C side is `libdkv.so` itself, loaded with `dlopen` as a C program
//! would link it (libdkv is a C library, not a Rust one: it has no rlib),
//! built by `cargo build -p dkv-ffi` of this profile before the run.
//!
//! `cargo bench -p dkv-ffi --bench abi_vs_rust` (DKV_BENCH_OPS sets the
//! operations per round, DKV_BENCH_ROUNDS the rounds).

use std::ffi::{c_char, c_void, CStr, CString};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use dkv::client::{Client, ClientOptions};
use dkv::node::Consistency;
use dkv::server::{self, ServerConfig};
use dkv::wal::FsyncMode;
use dkv::NodeId;

/// `dkv_buf` of `dkv.h`.
#[repr(C)]
struct DkvBuf {
    data: *mut u8,
    len: usize,
}

/// `DKV_CONSISTENCY_QUORUM` of `dkv.h`.
const QUORUM: i32 = -2;
const STATUS_OK: u32 = 0;

type ConnectFn = unsafe extern "C" fn(*const *const c_char, usize, u32, *mut *mut c_void) -> u32;
type FreeClientFn = unsafe extern "C" fn(*mut c_void);
type PutFn =
    unsafe extern "C" fn(*const c_void, *const u8, usize, *const u8, usize, i32, u32) -> u32;
type GetFn = unsafe extern "C" fn(*const c_void, *const u8, usize, i32, u32, *mut DkvBuf) -> u32;
type FreeBufFn = unsafe extern "C" fn(*mut DkvBuf);

/// The entry points the benchmark calls, resolved from the loaded library.
struct Abi {
    connect: ConnectFn,
    free_client: FreeClientFn,
    put: PutFn,
    get: GetFn,
    free_buf: FreeBufFn,
}

/// Builds libdkv for this profile and returns the path of `libdkv.so`.
fn build_libdkv() -> PathBuf {
    let exe = std::env::current_exe().expect("bench executable path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps")
        .to_path_buf();
    let mut cargo = std::process::Command::new(env!("CARGO"));
    cargo
        .args(["build", "-p", "dkv-ffi"])
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    if profile_dir.ends_with("release") {
        cargo.arg("--release");
    }
    let status = cargo.status().expect("run cargo build -p dkv-ffi");
    assert!(status.success(), "cargo build -p dkv-ffi failed");
    profile_dir.join("libdkv.so")
}

fn load(path: &std::path::Path) -> Abi {
    let name = CString::new(path.to_string_lossy().as_bytes()).expect("library path");
    // SAFETY: dlopen is given a NUL-terminated path; the handle is never
    // closed, so the symbols stay valid for the whole run.
    let handle = unsafe { libc::dlopen(name.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
    if handle.is_null() {
        // SAFETY: dlerror returns a NUL-terminated message after a failure.
        let why = unsafe { CStr::from_ptr(libc::dlerror()) };
        panic!("dlopen {}: {}", path.display(), why.to_string_lossy());
    }
    let symbol = |name: &str| {
        let c_name = CString::new(name).expect("symbol name");
        // SAFETY: `handle` is a live library handle and `c_name` a C string.
        let address = unsafe { libc::dlsym(handle, c_name.as_ptr()) };
        assert!(!address.is_null(), "libdkv has no symbol {name}");
        address
    };
    // SAFETY: each symbol is the function of that name in dkv.h, whose C
    // signature the matching type above spells out.
    unsafe {
        Abi {
            connect: std::mem::transmute::<*mut c_void, ConnectFn>(symbol("dkv_client_connect")),
            free_client: std::mem::transmute::<*mut c_void, FreeClientFn>(symbol(
                "dkv_client_free",
            )),
            put: std::mem::transmute::<*mut c_void, PutFn>(symbol("dkv_put")),
            get: std::mem::transmute::<*mut c_void, GetFn>(symbol("dkv_get")),
            free_buf: std::mem::transmute::<*mut c_void, FreeBufFn>(symbol("dkv_buf_free")),
        }
    }
}

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
    let abi = load(&build_libdkv());
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = ServerConfig::new(NodeId(1), 0, dir.path());
    config.store.fsync = FsyncMode::Never;
    let node = server::start(config).expect("node starts");
    let addr = node.client_addr();

    let mut rust = Client::connect(&[addr], ClientOptions::default()).expect("rust client");
    let text = CString::new(addr.to_string()).expect("address");
    let addrs = [text.as_ptr()];
    let mut c: *mut c_void = std::ptr::null_mut();
    // SAFETY: one valid C string in a one-element array; `c` is written.
    assert_eq!(
        unsafe { (abi.connect)(addrs.as_ptr(), 1, 0, &mut c) },
        STATUS_OK
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
            // SAFETY: `c` is a live client; key and value outlive the call.
            let s = unsafe {
                (abi.put)(
                    c,
                    key.as_ptr(),
                    key.len(),
                    value.as_ptr(),
                    value.len(),
                    QUORUM,
                    0,
                )
            };
            assert_eq!(s, STATUS_OK);
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
            let mut buf = DkvBuf {
                data: std::ptr::null_mut(),
                len: 0,
            };
            // SAFETY: `c` is a live client and `buf` a writable dkv_buf,
            // freed by libdkv's own function.
            let s = unsafe { (abi.get)(c, key.as_ptr(), key.len(), QUORUM, 0, &mut buf) };
            assert_eq!((s, buf.len), (STATUS_OK, value.len()));
            // SAFETY: as above.
            unsafe { (abi.free_buf)(&mut buf) };
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
    // SAFETY: `c` came from dkv_client_connect and is not used again.
    unsafe { (abi.free_client)(c) };
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
