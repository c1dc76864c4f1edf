//! The cache-tier calls: writes with a time to live, expiry, counters,
//! scans of the key space (their keys in a [`dkv_key_list`]) and flushes.

use std::time::Duration;

use dkv::client::Ttl;

use crate::args;
use crate::buf::dkv_buf;
use crate::client::dkv_client;
use crate::error::{dkv_status, guard, guard_void, Error};

/// Keys libdkv allocated (a scan's page); release with
/// `dkv_key_list_free`. `keys` is NULL when `len` is 0.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug)]
pub struct dkv_key_list {
    /// The keys, each freed with the list.
    pub keys: *mut dkv_buf,
    /// How many.
    pub len: usize,
}

impl dkv_key_list {
    const EMPTY: dkv_key_list = dkv_key_list {
        keys: std::ptr::null_mut(),
        len: 0,
    };

    fn from_keys(keys: Vec<Vec<u8>>) -> dkv_key_list {
        if keys.is_empty() {
            return dkv_key_list::EMPTY;
        }
        let boxed: Box<[dkv_buf]> = keys.into_iter().map(dkv_buf::from_vec).collect();
        let len = boxed.len();
        dkv_key_list {
            keys: Box::into_raw(boxed).cast::<dkv_buf>(),
            len,
        }
    }
}

fn ttl_of(ms: u64) -> Result<Duration, Error> {
    if ms == 0 {
        return Err(Error::invalid(
            "ttl_ms is 0: a time to live is at least 1 ms",
        ));
    }
    Ok(Duration::from_millis(ms))
}

/// Writes the value under the key, to expire `ttl_ms` milliseconds from
/// now (at least 1). Otherwise as `dkv_put`.
#[no_mangle]
pub extern "C" fn dkv_put_ttl(
    client: *const dkv_client,
    key: *const u8,
    key_len: usize,
    value: *const u8,
    value_len: usize,
    ttl_ms: u64,
    consistency: i32,
    timeout_ms: u32,
) -> dkv_status {
    guard("dkv_put_ttl", || {
        // SAFETY: pointers are live for their lengths per the contract.
        let client = unsafe { args::non_null(client, "client")? };
        let key = unsafe { args::bytes(key, key_len, "key", false)? };
        let value = unsafe { args::bytes(value, value_len, "value", true)? };
        let (level, ttl) = (args::consistency(consistency)?, ttl_of(ttl_ms)?);
        client
            .lock()?
            .put_with_ttl(key, value, ttl, level, args::timeout(timeout_ms))?;
        Ok(dkv_status::Ok)
    })
}

/// Makes the key expire `ttl_ms` milliseconds from now (at least 1).
/// NOT_FOUND when the key does not exist.
#[no_mangle]
pub extern "C" fn dkv_expire(
    client: *const dkv_client,
    key: *const u8,
    key_len: usize,
    ttl_ms: u64,
    consistency: i32,
    timeout_ms: u32,
) -> dkv_status {
    guard("dkv_expire", || {
        // SAFETY: pointers are live for their lengths per the contract.
        let client = unsafe { args::non_null(client, "client")? };
        let key = unsafe { args::bytes(key, key_len, "key", false)? };
        let (level, ttl) = (args::consistency(consistency)?, ttl_of(ttl_ms)?);
        let found = client
            .lock()?
            .expire(key, ttl, level, args::timeout(timeout_ms))?;
        Ok(if found {
            dkv_status::Ok
        } else {
            dkv_status::NotFound
        })
    })
}

/// Removes the key's expiry. `*changed_out`, when not NULL, says whether
/// it had one. NOT_FOUND when the key does not exist.
#[no_mangle]
pub extern "C" fn dkv_persist(
    client: *const dkv_client,
    key: *const u8,
    key_len: usize,
    consistency: i32,
    timeout_ms: u32,
    changed_out: *mut bool,
) -> dkv_status {
    guard("dkv_persist", || {
        // SAFETY: pointers are live for their lengths per the contract;
        // changed_out may be NULL.
        let changed = unsafe { changed_out.as_mut() };
        let client = unsafe { args::non_null(client, "client")? };
        let key = unsafe { args::bytes(key, key_len, "key", false)? };
        let level = args::consistency(consistency)?;
        let mut client = client.lock()?;
        let removed = client.persist(key, level, args::timeout(timeout_ms))?;
        if let Some(changed) = changed {
            *changed = removed;
        }
        if removed {
            return Ok(dkv_status::Ok);
        }
        // Nothing removed: tell a key without an expiry from no key.
        match client.ttl(key, level, args::timeout(timeout_ms))? {
            Ttl::Missing => Ok(dkv_status::NotFound),
            Ttl::Persistent | Ttl::Expires(_) => Ok(dkv_status::Ok),
        }
    })
}

/// The key's time to live in `*ttl_ms_out`: the milliseconds left, or -1
/// when it does not expire. NOT_FOUND (and -2) when it does not exist.
#[no_mangle]
pub extern "C" fn dkv_ttl(
    client: *const dkv_client,
    key: *const u8,
    key_len: usize,
    consistency: i32,
    timeout_ms: u32,
    ttl_ms_out: *mut i64,
) -> dkv_status {
    guard("dkv_ttl", || {
        // SAFETY: pointers are live for their lengths per the contract.
        let out = unsafe { args::non_null_mut(ttl_ms_out, "ttl_ms_out")? };
        *out = -2;
        let client = unsafe { args::non_null(client, "client")? };
        let key = unsafe { args::bytes(key, key_len, "key", false)? };
        let level = args::consistency(consistency)?;
        match client.lock()?.ttl(key, level, args::timeout(timeout_ms))? {
            Ttl::Missing => Ok(dkv_status::NotFound),
            Ttl::Persistent => {
                *out = -1;
                Ok(dkv_status::Ok)
            }
            Ttl::Expires(left) => {
                *out = i64::try_from(left.as_millis()).unwrap_or(i64::MAX);
                Ok(dkv_status::Ok)
            }
        }
    })
}

/// Adds `delta` to the integer stored at the key (a missing key counts as
/// 0) and puts the new value in `*value_out`. INVALID_ARGUMENT (from the
/// server) when the value is not an integer or the sum would overflow.
/// Not retried on another node if the connection breaks mid-request (it
/// may have been applied): UNAVAILABLE says so.
#[no_mangle]
pub extern "C" fn dkv_incr_by(
    client: *const dkv_client,
    key: *const u8,
    key_len: usize,
    delta: i64,
    consistency: i32,
    timeout_ms: u32,
    value_out: *mut i64,
) -> dkv_status {
    guard("dkv_incr_by", || {
        // SAFETY: pointers are live for their lengths per the contract.
        let out = unsafe { args::non_null_mut(value_out, "value_out")? };
        *out = 0;
        let client = unsafe { args::non_null(client, "client")? };
        let key = unsafe { args::bytes(key, key_len, "key", false)? };
        let level = args::consistency(consistency)?;
        *out = client
            .lock()?
            .incr_by(key, delta, level, args::timeout(timeout_ms))?;
        Ok(dkv_status::Ok)
    })
}

/// One page of a scan of the keys matching `pattern` (a Redis glob of
/// `pattern_len` bytes; NULL/0: every key) from `cursor` (0 to start):
/// `*keys_out` gets the page (free it with `dkv_key_list_free`) and
/// `*cursor_out` the cursor to go on from, 0 when the scan is done. On a
/// cluster a key may come more than once. `count` hints at the page size.
#[no_mangle]
pub extern "C" fn dkv_scan(
    client: *const dkv_client,
    cursor: u64,
    pattern: *const u8,
    pattern_len: usize,
    count: u32,
    timeout_ms: u32,
    cursor_out: *mut u64,
    keys_out: *mut dkv_key_list,
) -> dkv_status {
    guard("dkv_scan", || {
        // SAFETY: out-pointers are writable and `pattern` is live for its
        // length per the contract.
        let keys = unsafe { args::non_null_mut(keys_out, "keys_out")? };
        *keys = dkv_key_list::EMPTY;
        let next = unsafe { args::non_null_mut(cursor_out, "cursor_out")? };
        *next = 0;
        let client = unsafe { args::non_null(client, "client")? };
        let pattern = unsafe { args::bytes(pattern, pattern_len, "pattern", true)? };
        let pattern = (!pattern.is_empty()).then_some(pattern);
        let page = client.lock()?.scan(
            cursor,
            pattern,
            count.max(1) as usize,
            args::timeout(timeout_ms),
        )?;
        *next = page.cursor;
        *keys = dkv_key_list::from_keys(page.keys);
        Ok(dkv_status::Ok)
    })
}

/// Frees a key list and sets it to `{NULL, 0}`; NULL or an empty list
/// does nothing.
#[no_mangle]
pub extern "C" fn dkv_key_list_free(list: *mut dkv_key_list) {
    guard_void("dkv_key_list_free", || {
        // SAFETY: a non-NULL `list` points to a list the caller owns.
        let Some(list) = (unsafe { list.as_mut() }) else {
            return;
        };
        if !list.keys.is_null() && list.len > 0 {
            let slice = std::ptr::slice_from_raw_parts_mut(list.keys, list.len);
            // SAFETY: keys/len are those of a leaked Box<[dkv_buf]>
            // (dkv_key_list::from_keys), handed back exactly once.
            let keys = unsafe { Box::from_raw(slice) };
            for mut key in keys.into_vec() {
                crate::buf::dkv_buf_free(&mut key);
            }
        }
        *list = dkv_key_list::EMPTY;
    });
}

/// Deletes every key of the cluster (`FLUSHDB`): keys written before it
/// never come back, through any replica.
#[no_mangle]
pub extern "C" fn dkv_flush(client: *const dkv_client, timeout_ms: u32) -> dkv_status {
    guard("dkv_flush", || {
        // SAFETY: `client` is a live client per the contract.
        let client = unsafe { args::non_null(client, "client")? };
        client.lock()?.flush(args::timeout(timeout_ms))?;
        Ok(dkv_status::Ok)
    })
}
