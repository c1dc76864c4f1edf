//! The [`dkv_client`] handle: a connection to a cluster, and the reads,
//! writes, deletes, batches and status queries issued through it.
//!
//! The handle wraps the core crate's blocking `Client` in a mutex, so it
//! may be shared between threads; calls through one handle are serialized
//! (one connection, one request at a time). A panic while the lock was
//! held poisons it; the next call then drops the connection and goes on
//! with a fresh one, since no request state survives a call.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use dkv::client::{Client, ClientOptions};

use crate::args;
use crate::buf::{dkv_buf, dkv_cluster_status, dkv_slice};
use crate::error::{dkv_status, guard, guard_void, Error};

/// A client connected to a cluster. Thread-safe: it may be used from
/// several threads at once, but their calls are serialized on its single
/// connection (for parallel requests, use one client per thread). Free it
/// with `dkv_client_free`.
#[allow(non_camel_case_types)]
pub struct dkv_client {
    inner: Mutex<Client>,
    addrs: Vec<SocketAddr>,
    options: ClientOptions,
}

impl dkv_client {
    pub(crate) fn lock(&self) -> Result<MutexGuard<'_, Client>, Error> {
        match self.inner.lock() {
            Ok(client) => Ok(client),
            Err(poisoned) => {
                // A request interrupted by a panic may have left a reply
                // in flight: start over with a new connection.
                let mut client = poisoned.into_inner();
                *client = Client::connect(&self.addrs, self.options.clone())?;
                self.inner.clear_poison();
                Ok(client)
            }
        }
    }
}

/// Connects to the first reachable node of `addrs` (an array of
/// `addr_count` "host:port" strings, tried in order). Requests fail over
/// to the next node when a connection breaks. `timeout_ms` bounds each
/// connection attempt and is the default timeout of requests given 0
/// (0 here means 5000). On success `*client_out` owns a new client; on
/// failure it is NULL: INVALID_ARGUMENT for a bad list, UNAVAILABLE when
/// no node answers.
#[no_mangle]
pub extern "C" fn dkv_client_connect(
    addrs: *const *const std::ffi::c_char,
    addr_count: usize,
    timeout_ms: u32,
    client_out: *mut *mut dkv_client,
) -> dkv_status {
    guard("dkv_client_connect", || {
        // SAFETY: a non-NULL out-pointer is writable per the contract.
        let out = unsafe { args::non_null_mut(client_out, "client_out")? };
        *out = std::ptr::null_mut();
        // SAFETY: `addrs` holds `addr_count` pointers per the contract.
        let texts = unsafe { args::array(addrs, addr_count, "addrs")? };
        if texts.is_empty() {
            return Err(Error::invalid("addr_count is 0: give at least one node"));
        }
        let mut resolved = Vec::new();
        for (i, &text) in texts.iter().enumerate() {
            let what = format!("addrs[{i}]");
            // SAFETY: each non-NULL entry is NUL-terminated.
            let text = unsafe { args::string(text, &what)? };
            let found = text
                .to_socket_addrs()
                .map_err(|e| Error::invalid(format!("{what} `{text}`: {e}")))?;
            resolved.extend(found);
        }
        let timeout = args::timeout(timeout_ms).unwrap_or(Duration::from_secs(5));
        let options = ClientOptions {
            connect_timeout: timeout,
            timeout,
            ..ClientOptions::default()
        };
        let client = Client::connect(&resolved, options.clone())?;
        *out = Box::into_raw(Box::new(dkv_client {
            inner: Mutex::new(client),
            addrs: resolved,
            options,
        }));
        Ok(dkv_status::Ok)
    })
}

/// Closes the connection and frees the client. NULL does nothing. No
/// other thread may use the client during or after this call.
#[no_mangle]
pub extern "C" fn dkv_client_free(client: *mut dkv_client) {
    guard_void("dkv_client_free", || {
        if !client.is_null() {
            // SAFETY: a non-NULL client came from dkv_client_connect and
            // is freed once.
            drop(unsafe { Box::from_raw(client) });
        }
    });
}

/// Writes `value_len` bytes at `value` under the key. Keys are 1 or more
/// bytes; values may be empty (then `value` may be NULL). `consistency`
/// is `DKV_CONSISTENCY_ONE`, `_QUORUM`, `_ALL` or a number of replicas;
/// `timeout_ms` 0 is the client's default. UNAVAILABLE when too few
/// replicas acknowledged in time (the write may still have reached some).
#[no_mangle]
pub extern "C" fn dkv_put(
    client: *const dkv_client,
    key: *const u8,
    key_len: usize,
    value: *const u8,
    value_len: usize,
    consistency: i32,
    timeout_ms: u32,
) -> dkv_status {
    guard("dkv_put", || {
        // SAFETY: pointers are live for their lengths per the contract.
        let client = unsafe { args::non_null(client, "client")? };
        let key = unsafe { args::bytes(key, key_len, "key", false)? };
        let value = unsafe { args::bytes(value, value_len, "value", true)? };
        let level = args::consistency(consistency)?;
        client
            .lock()?
            .put(key, value, level, args::timeout(timeout_ms))?;
        Ok(dkv_status::Ok)
    })
}

/// Reads the key. OK: `*value_out` holds the value (free it with
/// `dkv_buf_free`; an empty value is `{NULL, 0}`). NOT_FOUND: the key is
/// missing or deleted and `*value_out` is `{NULL, 0}`. On any other
/// status `*value_out` is `{NULL, 0}` too, so freeing it is always safe.
#[no_mangle]
pub extern "C" fn dkv_get(
    client: *const dkv_client,
    key: *const u8,
    key_len: usize,
    consistency: i32,
    timeout_ms: u32,
    value_out: *mut dkv_buf,
) -> dkv_status {
    guard("dkv_get", || {
        // SAFETY: pointers are live for their lengths per the contract.
        let out = unsafe { args::non_null_mut(value_out, "value_out")? };
        *out = dkv_buf::EMPTY;
        let client = unsafe { args::non_null(client, "client")? };
        let key = unsafe { args::bytes(key, key_len, "key", false)? };
        let level = args::consistency(consistency)?;
        match client.lock()?.get(key, level, args::timeout(timeout_ms))? {
            Some(value) => {
                *out = dkv_buf::from_vec(value);
                Ok(dkv_status::Ok)
            }
            None => Ok(dkv_status::NotFound),
        }
    })
}

/// Deletes the key (writes a tombstone). `*existed_out`, when not NULL,
/// is set to whether an acknowledging replica held a live value. Deleting
/// a missing key is OK.
#[no_mangle]
pub extern "C" fn dkv_delete(
    client: *const dkv_client,
    key: *const u8,
    key_len: usize,
    consistency: i32,
    timeout_ms: u32,
    existed_out: *mut bool,
) -> dkv_status {
    guard("dkv_delete", || {
        // SAFETY: pointers are live for their lengths per the contract;
        // existed_out may be NULL.
        let existed = unsafe { existed_out.as_mut() };
        let client = unsafe { args::non_null(client, "client")? };
        let key = unsafe { args::bytes(key, key_len, "key", false)? };
        let level = args::consistency(consistency)?;
        let found = client
            .lock()?
            .delete(key, level, args::timeout(timeout_ms))?;
        if let Some(existed) = existed {
            *existed = found;
        }
        Ok(dkv_status::Ok)
    })
}

/// Reads `count` keys in one request. `values_out` and `found_out` are
/// arrays of `count` entries the caller provides: on OK, `values_out[i]`
/// holds the value of `keys[i]` (free each with `dkv_buf_free`) and
/// `found_out[i]` says whether it exists. On failure every entry is
/// `{NULL, 0}` / false. The batch fails as a whole if any key misses its
/// consistency level. `count` 0 is OK and sends nothing.
#[no_mangle]
pub extern "C" fn dkv_get_many(
    client: *const dkv_client,
    keys: *const dkv_slice,
    count: usize,
    consistency: i32,
    timeout_ms: u32,
    values_out: *mut dkv_buf,
    found_out: *mut bool,
) -> dkv_status {
    guard("dkv_get_many", || {
        // SAFETY: arrays hold `count` entries per the contract.
        // Both outputs are emptied before anything can fail, so that each
        // is empty on every error path (including the other one's NULL).
        let mut values = unsafe { args::array_mut(values_out, count, "values_out") };
        let mut found = unsafe { args::array_mut(found_out, count, "found_out") };
        if let Ok(values) = &mut values {
            values.iter_mut().for_each(|v| *v = dkv_buf::EMPTY);
        }
        if let Ok(found) = &mut found {
            found.iter_mut().for_each(|f| *f = false);
        }
        let (values, found) = (values?, found?);
        let client = unsafe { args::non_null(client, "client")? };
        let slices = unsafe { args::array(keys, count, "keys")? };
        let keys = slices
            .iter()
            .enumerate()
            // SAFETY: each slice is live for its length per the contract.
            .map(|(i, s)| unsafe { args::bytes(s.data, s.len, &format!("keys[{i}]"), false) })
            .collect::<Result<Vec<&[u8]>, Error>>()?;
        let level = args::consistency(consistency)?;
        let answers = client
            .lock()?
            .get_many(&keys, level, args::timeout(timeout_ms))?;
        for ((answer, value), found) in answers.into_iter().zip(values).zip(found) {
            if let Some(bytes) = answer {
                *value = dkv_buf::from_vec(bytes);
                *found = true;
            }
        }
        Ok(dkv_status::Ok)
    })
}

/// Writes `count` pairs (`keys[i]` gets `values[i]`) in one request. It
/// fails if any pair misses its consistency level; pairs that met theirs
/// stay written. `count` 0 is OK and sends nothing.
#[no_mangle]
pub extern "C" fn dkv_put_many(
    client: *const dkv_client,
    keys: *const dkv_slice,
    values: *const dkv_slice,
    count: usize,
    consistency: i32,
    timeout_ms: u32,
) -> dkv_status {
    guard("dkv_put_many", || {
        // SAFETY: arrays hold `count` entries, each slice live for its
        // length, per the contract.
        let client = unsafe { args::non_null(client, "client")? };
        let keys = unsafe { args::array(keys, count, "keys")? };
        let values = unsafe { args::array(values, count, "values")? };
        let mut pairs = Vec::with_capacity(count);
        for (i, (k, v)) in keys.iter().zip(values).enumerate() {
            let key = unsafe { args::bytes(k.data, k.len, &format!("keys[{i}]"), false)? };
            let value = unsafe { args::bytes(v.data, v.len, &format!("values[{i}]"), true)? };
            pairs.push((key, value));
        }
        let level = args::consistency(consistency)?;
        client
            .lock()?
            .put_many(&pairs, level, args::timeout(timeout_ms))?;
        Ok(dkv_status::Ok)
    })
}

/// Fills `*status_out` with the view of the cluster of the node the
/// client is connected to (peers up or down, hints pending). Free it with
/// `dkv_cluster_status_free`; on failure it is left empty.
#[no_mangle]
pub extern "C" fn dkv_client_status(
    client: *const dkv_client,
    timeout_ms: u32,
    status_out: *mut dkv_cluster_status,
) -> dkv_status {
    guard("dkv_client_status", || {
        // SAFETY: non-NULL pointers are live per the contract.
        let out = unsafe { args::non_null_mut(status_out, "status_out")? };
        *out = dkv_cluster_status::EMPTY;
        let client = unsafe { args::non_null(client, "client")? };
        let status = client.lock()?.status(args::timeout(timeout_ms))?;
        *out = dkv_cluster_status::from_status(&status);
        Ok(dkv_status::Ok)
    })
}
