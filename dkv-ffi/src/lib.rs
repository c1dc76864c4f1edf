//! libdkv: the C ABI of dkv. Built as `libdkv.so` and `libdkv.a` (C links
//! with `-ldkv`); `include/dkv.h` is generated from this crate by cbindgen
//! with `cbindgen.toml`, and a test fails when it drifts.
//!
//! | file        | owns                                                          |
//! |-------------|---------------------------------------------------------------|
//! | `error.rs`  | `dkv_status`, the thread-local last error, the panic boundary |
//! | `args.rs`   | NULL, length, UTF-8, consistency and timeout checks            |
//! | `buf.rs`    | `dkv_slice`, `dkv_buf`, `dkv_cluster_status` and their frees   |
//! | `node.rs`   | `dkv_node_config_*` and `dkv_node_*`: nodes in this process    |
//! | `client.rs` | `dkv_client_*`, `dkv_put/get/delete`, batches, status          |
//!
//! Conventions (rustls-ffi's, sqlite's): opaque handles with create/free
//! pairs; every function that can fail returns a `dkv_status` and leaves a
//! message for `dkv_last_error`; out-pointers are written on every path
//! (NULL or empty on failure) so cleanup is unconditional; memory libdkv
//! hands out is freed by libdkv's own functions; no panic crosses the
//! boundary.

// These are C entry points: their pointer contracts are stated for C
// callers in each doc comment (and so in dkv.h), checked as far as a
// pointer can be checked (NULL, lengths) through `args`, and every body
// runs under `error::guard`. Marking them `unsafe fn` would add nothing
// for C and only burden the Rust tests and benchmark that call them.
#![allow(clippy::not_unsafe_ptr_arg_deref)]

mod args;
mod buf;
mod cache;
mod client;
mod error;
mod node;

pub use buf::{
    dkv_buf, dkv_buf_free, dkv_cluster_status, dkv_cluster_status_free, dkv_peer_status, dkv_slice,
};
pub use cache::{
    dkv_expire, dkv_flush, dkv_incr_by, dkv_key_list, dkv_key_list_free, dkv_persist, dkv_put_ttl,
    dkv_scan, dkv_ttl,
};
pub use client::{
    dkv_client, dkv_client_connect, dkv_client_free, dkv_client_status, dkv_delete, dkv_get,
    dkv_get_many, dkv_put, dkv_put_many,
};
pub use error::dkv_status;
pub use node::{
    dkv_node, dkv_node_config, dkv_node_config_add_node, dkv_node_config_free, dkv_node_config_new,
    dkv_node_config_set_cluster_conf, dkv_node_config_set_cluster_secret,
    dkv_node_config_set_data_dir, dkv_node_config_set_fsync, dkv_node_config_set_node_id,
    dkv_node_config_set_port, dkv_node_config_set_replication, dkv_node_config_set_timeouts,
    dkv_node_free, dkv_node_port, dkv_node_start, dkv_node_status, dkv_node_stop,
};

use std::ffi::c_char;

/// The version of the ABI this header describes. It changes only when a
/// function's signature or meaning changes incompatibly; compare it with
/// `dkv_abi_version()` to detect a header/library mismatch.
pub const DKV_ABI_VERSION: u32 = 4;

/// Wait for one replica.
pub const DKV_CONSISTENCY_ONE: i32 = -1;
/// Wait for the configured quorum: W replicas for writes, R for reads.
pub const DKV_CONSISTENCY_QUORUM: i32 = -2;
/// Wait for all N replicas.
pub const DKV_CONSISTENCY_ALL: i32 = -3;

/// Acknowledge a write after it is fsynced (group commit). The default.
pub const DKV_FSYNC_ALWAYS: u32 = 0;
/// Acknowledge at once; fsync every interval.
pub const DKV_FSYNC_PERIODIC: u32 = 1;
/// Acknowledge at once; never fsync (data survives a process crash only
/// through replicas).
pub const DKV_FSYNC_NEVER: u32 = 2;

/// The library's version, e.g. "0.1.0": a static string, never freed.
#[no_mangle]
pub extern "C" fn dkv_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// The ABI version of the loaded library (see `DKV_ABI_VERSION`).
#[no_mangle]
pub extern "C" fn dkv_abi_version() -> u32 {
    DKV_ABI_VERSION
}

/// The message of the most recent call on this thread that returned a
/// status other than OK or NOT_FOUND, or "" when the last such call
/// succeeded. The string belongs to libdkv: do not free it; it stays
/// valid until the next libdkv call on this thread. Never NULL.
#[no_mangle]
pub extern "C" fn dkv_last_error() -> *const c_char {
    error::last_error_ptr()
}

/// The name of a status code, e.g. "UNAVAILABLE" for
/// DKV_STATUS_UNAVAILABLE, or "UNKNOWN": a static string, never freed.
#[no_mangle]
pub extern "C" fn dkv_status_name(status: u32) -> *const c_char {
    match dkv_status::from_u32(status) {
        Some(s) => s.name().as_ptr(),
        None => c"UNKNOWN".as_ptr(),
    }
}
