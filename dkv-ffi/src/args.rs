//! Checking what C hands in: every pointer, length, string, consistency
//! level and timeout an exported function receives goes through one of
//! these helpers before it is used, so a NULL, an impossible length or
//! invalid UTF-8 becomes `DKV_STATUS_INVALID_ARGUMENT` with a message
//! naming the argument, never a dereference.
//!
//! What cannot be checked (a dangling pointer, a length longer than the
//! buffer) is the caller's contract, stated on each function in `dkv.h`.

use std::ffi::{c_char, CStr};
use std::time::Duration;

use dkv::node::Consistency;

use crate::error::Error;
use crate::{DKV_CONSISTENCY_ALL, DKV_CONSISTENCY_ONE, DKV_CONSISTENCY_QUORUM};

/// `ptr` as a reference, or an error naming `what` when it is NULL.
///
/// # Safety
/// A non-NULL `ptr` must point to a live, properly aligned `T`.
pub unsafe fn non_null<'a, T>(ptr: *const T, what: &str) -> Result<&'a T, Error> {
    // SAFETY: the caller's contract, NULL excluded here.
    unsafe { ptr.as_ref() }.ok_or_else(|| Error::invalid(format!("{what} is NULL")))
}

/// `ptr` as a mutable reference, or an error naming `what` when NULL.
///
/// # Safety
/// A non-NULL `ptr` must point to a live, properly aligned `T` that
/// nothing else accesses during the call.
pub unsafe fn non_null_mut<'a, T>(ptr: *mut T, what: &str) -> Result<&'a mut T, Error> {
    // SAFETY: the caller's contract, NULL excluded here.
    unsafe { ptr.as_mut() }.ok_or_else(|| Error::invalid(format!("{what} is NULL")))
}

/// `len` bytes at `ptr`. A zero length is refused unless `allow_empty`,
/// in which case `ptr` may be NULL; otherwise `ptr` must not be NULL.
///
/// # Safety
/// A non-NULL `ptr` must point to at least `len` readable bytes that stay
/// unchanged during the call.
pub unsafe fn bytes<'a>(
    ptr: *const u8,
    len: usize,
    what: &str,
    allow_empty: bool,
) -> Result<&'a [u8], Error> {
    if len == 0 {
        return if allow_empty {
            Ok(&[])
        } else {
            Err(Error::invalid(format!("{what} must not be empty")))
        };
    }
    if ptr.is_null() {
        return Err(Error::invalid(format!(
            "{what} is NULL with a length of {len}"
        )));
    }
    if len > isize::MAX as usize {
        return Err(Error::invalid(format!(
            "{what}'s length {len} is too large"
        )));
    }
    // SAFETY: non-NULL, length within isize::MAX, and the caller promises
    // `len` readable bytes.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// `count` elements at `ptr`, which may be NULL only when `count` is 0.
///
/// # Safety
/// A non-NULL `ptr` must point to `count` live, aligned elements.
pub unsafe fn array<'a, T>(ptr: *const T, count: usize, what: &str) -> Result<&'a [T], Error> {
    if count == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(Error::invalid(format!(
            "{what} is NULL with a count of {count}"
        )));
    }
    if count
        .checked_mul(std::mem::size_of::<T>().max(1))
        .is_none_or(|b| b > isize::MAX as usize)
    {
        return Err(Error::invalid(format!(
            "{what}'s count {count} is too large"
        )));
    }
    // SAFETY: as for `bytes`, per the caller's contract.
    Ok(unsafe { std::slice::from_raw_parts(ptr, count) })
}

/// A `mut` array of `count` elements, as [`array`].
///
/// # Safety
/// A non-NULL `ptr` must point to `count` live, aligned, writable elements
/// nothing else accesses during the call.
pub unsafe fn array_mut<'a, T>(
    ptr: *mut T,
    count: usize,
    what: &str,
) -> Result<&'a mut [T], Error> {
    // SAFETY: same checks as `array`, same contract plus writability.
    unsafe { array(ptr, count, what)? };
    if count == 0 {
        return Ok(&mut []);
    }
    // SAFETY: checked by `array` just above.
    Ok(unsafe { std::slice::from_raw_parts_mut(ptr, count) })
}

/// The NUL-terminated UTF-8 string at `ptr`.
///
/// # Safety
/// A non-NULL `ptr` must point to a NUL-terminated string.
pub unsafe fn string<'a>(ptr: *const c_char, what: &str) -> Result<&'a str, Error> {
    if ptr.is_null() {
        return Err(Error::invalid(format!("{what} is NULL")));
    }
    // SAFETY: non-NULL and NUL-terminated per the caller's contract.
    let text = unsafe { CStr::from_ptr(ptr) };
    text.to_str()
        .map_err(|e| Error::invalid(format!("{what} is not valid UTF-8 ({e})")))
}

/// A consistency argument: `DKV_CONSISTENCY_ONE`, `_QUORUM`, `_ALL`, or a
/// number of replicas (1 or more).
pub fn consistency(level: i32) -> Result<Consistency, Error> {
    match level {
        DKV_CONSISTENCY_ONE => Ok(Consistency::One),
        DKV_CONSISTENCY_QUORUM => Ok(Consistency::Quorum),
        DKV_CONSISTENCY_ALL => Ok(Consistency::All),
        k if k >= 1 => Ok(Consistency::Count(k as usize)),
        other => Err(Error::invalid(format!(
            "consistency {other} is not DKV_CONSISTENCY_ONE, _QUORUM, _ALL or a number of replicas (1 or more)"
        ))),
    }
}

/// A timeout argument in milliseconds; 0 means "the default".
pub fn timeout(ms: u32) -> Option<Duration> {
    (ms > 0).then(|| Duration::from_millis(u64::from(ms)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dkv_status;

    #[test]
    fn nulls_and_lengths_are_refused_with_the_argument_named() {
        // SAFETY: only NULL or valid pointers are passed.
        unsafe {
            let e = non_null::<u8>(std::ptr::null(), "client").unwrap_err();
            assert_eq!(e.message, "client is NULL");
            assert_eq!(e.status, dkv_status::InvalidArgument);
            assert!(bytes(std::ptr::null(), 0, "value", true)
                .unwrap()
                .is_empty());
            assert_eq!(
                bytes(std::ptr::null(), 3, "key", false)
                    .unwrap_err()
                    .message,
                "key is NULL with a length of 3"
            );
            assert_eq!(
                bytes(b"x".as_ptr(), 0, "key", false).unwrap_err().message,
                "key must not be empty"
            );
            assert!(bytes(b"x".as_ptr(), usize::MAX, "key", false).is_err());
            assert_eq!(bytes(b"xy".as_ptr(), 2, "key", false).unwrap(), b"xy");
            assert!(array::<u64>(std::ptr::null(), 0, "keys")
                .unwrap()
                .is_empty());
            assert!(array::<u64>(std::ptr::null(), 2, "keys").is_err());
            let x = [1u64];
            assert!(array(x.as_ptr(), usize::MAX / 4, "keys").is_err());
        }
    }

    #[test]
    fn strings_must_be_utf8() {
        // SAFETY: NUL-terminated literals.
        unsafe {
            assert_eq!(
                string(c"127.0.0.1:1".as_ptr(), "addr").unwrap(),
                "127.0.0.1:1"
            );
            let e = string(c"\xff\xfe".as_ptr(), "addr").unwrap_err();
            assert!(
                e.message.starts_with("addr is not valid UTF-8"),
                "{}",
                e.message
            );
            assert!(string(std::ptr::null(), "addr").is_err());
        }
    }

    #[test]
    fn consistency_levels() {
        assert_eq!(consistency(DKV_CONSISTENCY_ONE), Ok(Consistency::One));
        assert_eq!(consistency(DKV_CONSISTENCY_QUORUM), Ok(Consistency::Quorum));
        assert_eq!(consistency(DKV_CONSISTENCY_ALL), Ok(Consistency::All));
        assert_eq!(consistency(2), Ok(Consistency::Count(2)));
        assert!(consistency(0).is_err());
        assert!(consistency(-4).is_err());
        assert_eq!(timeout(0), None);
        assert_eq!(timeout(5), Some(Duration::from_millis(5)));
    }
}
