//! Status codes, the thread-local last-error message, and [`guard`]: the
//! one panic boundary every exported function body runs under.
//!
//! Invariants: no panic unwinds out of an `extern "C"` function (each body
//! is inside [`guard`] or [`guard_void`]); every status other than `OK` and
//! `NOT_FOUND` leaves a message for `dkv_last_error` on the calling thread,
//! and `OK`/`NOT_FOUND` clear it.

use std::cell::RefCell;
use std::ffi::{c_char, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

use dkv::client::{ClientError, ErrorKind};

/// The result of every libdkv call that can fail. The numbers are stable
/// across versions; new codes may be added at the end.
#[allow(non_camel_case_types)]
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum dkv_status {
    /// Success.
    Ok = 0,
    /// The key has no value (missing or deleted). Not an error: no message
    /// is recorded.
    NotFound = 1,
    /// An argument was refused: a NULL pointer where one is required, an
    /// empty key, a length too large, a string that is not UTF-8, a
    /// consistency level that is not DKV_CONSISTENCY_* or 1..N, or a
    /// request the server refused as malformed.
    InvalidArgument = 2,
    /// The consistency level could not be met (too few replicas answered
    /// in time), or no node of the client's list could be reached.
    Unavailable = 3,
    /// No reply arrived within the request's timeout.
    Timeout = 4,
    /// An operating-system error (a port in use, a directory that cannot
    /// be created), or a server's storage error.
    Io = 5,
    /// Stored data failed its checks when a node opened its store.
    Corruption = 6,
    /// A bug inside libdkv was caught at the boundary. The handle used may
    /// be in an unexpected state; the message says where.
    Panic = 7,
    /// A node configuration was refused (a cluster conf with errors,
    /// quorums out of range, a node id missing from its cluster).
    Config = 8,
    /// A server reply libdkv did not understand.
    Protocol = 9,
    /// Any other error reply from a server (e.g. authentication).
    Server = 10,
}

impl dkv_status {
    /// The constant's name without the `DKV_STATUS_` prefix.
    pub fn name(self) -> &'static CStr {
        match self {
            dkv_status::Ok => c"OK",
            dkv_status::NotFound => c"NOT_FOUND",
            dkv_status::InvalidArgument => c"INVALID_ARGUMENT",
            dkv_status::Unavailable => c"UNAVAILABLE",
            dkv_status::Timeout => c"TIMEOUT",
            dkv_status::Io => c"IO",
            dkv_status::Corruption => c"CORRUPTION",
            dkv_status::Panic => c"PANIC",
            dkv_status::Config => c"CONFIG",
            dkv_status::Protocol => c"PROTOCOL",
            dkv_status::Server => c"SERVER",
        }
    }

    /// The status with this number, if there is one.
    pub fn from_u32(code: u32) -> Option<dkv_status> {
        const ALL: [dkv_status; 11] = [
            dkv_status::Ok,
            dkv_status::NotFound,
            dkv_status::InvalidArgument,
            dkv_status::Unavailable,
            dkv_status::Timeout,
            dkv_status::Io,
            dkv_status::Corruption,
            dkv_status::Panic,
            dkv_status::Config,
            dkv_status::Protocol,
            dkv_status::Server,
        ];
        ALL.iter().copied().find(|s| *s as u32 == code)
    }
}

/// A failed call: its status and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub status: dkv_status,
    pub message: String,
}

impl Error {
    pub fn new(status: dkv_status, message: impl Into<String>) -> Error {
        Error {
            status,
            message: message.into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> Error {
        Error::new(dkv_status::InvalidArgument, message)
    }
}

impl From<ClientError> for Error {
    fn from(e: ClientError) -> Error {
        let status = match e.kind() {
            ErrorKind::InvalidArgument => dkv_status::InvalidArgument,
            ErrorKind::Unavailable => dkv_status::Unavailable,
            ErrorKind::Timeout => dkv_status::Timeout,
            ErrorKind::Io => dkv_status::Io,
            ErrorKind::Protocol => dkv_status::Protocol,
            _ => dkv_status::Server,
        };
        Error::new(status, e.message())
    }
}

thread_local! {
    static LAST_ERROR: RefCell<Option<CString>> = const { RefCell::new(None) };
}

/// Records `message` as this thread's last error.
pub fn set_last_error(message: &str) {
    // A C string cannot hold NUL: show it escaped rather than cut there.
    let text = CString::new(message.replace('\0', "\\0")).unwrap_or_default();
    LAST_ERROR.with(|last| *last.borrow_mut() = Some(text));
}

fn clear_last_error() {
    LAST_ERROR.with(|last| {
        if last.borrow().is_some() {
            *last.borrow_mut() = None;
        }
    });
}

/// A pointer to this thread's last error message, `""` when there is none.
pub fn last_error_ptr() -> *const c_char {
    LAST_ERROR.with(|last| match &*last.borrow() {
        // The CString lives in the thread-local until the next call on
        // this thread that sets or clears it; the pointer stays valid
        // until then, as documented on `dkv_last_error`.
        Some(text) => text.as_ptr(),
        None => c"".as_ptr(),
    })
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic payload".to_string()
    }
}

/// Runs the body of exported function `name`: catches panics, records the
/// message of a failure, clears it on success.
pub fn guard(name: &str, body: impl FnOnce() -> Result<dkv_status, Error>) -> dkv_status {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(status)) => {
            clear_last_error();
            status
        }
        Ok(Err(error)) => {
            set_last_error(&format!("{name}: {}", error.message));
            error.status
        }
        Err(payload) => {
            set_last_error(&format!("{name}: panic: {}", panic_message(&*payload)));
            dkv_status::Panic
        }
    }
}

/// [`guard`] for functions that return nothing (the `_free` functions): a
/// panic is recorded and swallowed.
pub fn guard_void(name: &str, body: impl FnOnce()) {
    if let Err(payload) = catch_unwind(AssertUnwindSafe(body)) {
        set_last_error(&format!("{name}: panic: {}", panic_message(&*payload)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn last() -> String {
        // SAFETY: last_error_ptr returns a valid NUL-terminated string.
        unsafe { CStr::from_ptr(last_error_ptr()) }
            .to_string_lossy()
            .into_owned()
    }

    #[test]
    fn a_panic_becomes_a_status_and_a_message() {
        let status = guard("dkv_test", || panic!("boom {}", 42));
        assert_eq!(status, dkv_status::Panic);
        assert_eq!(last(), "dkv_test: panic: boom 42");
        guard_void("dkv_test_free", || panic!("static"));
        assert_eq!(last(), "dkv_test_free: panic: static");
    }

    #[test]
    fn errors_are_recorded_and_success_clears_them() {
        let status = guard("dkv_x", || Err(Error::invalid("key is NULL\0!")));
        assert_eq!(status, dkv_status::InvalidArgument);
        assert_eq!(last(), "dkv_x: key is NULL\\0!");
        assert_eq!(
            guard("dkv_x", || Ok(dkv_status::NotFound)),
            dkv_status::NotFound
        );
        assert_eq!(last(), "");
    }

    #[test]
    fn the_last_error_is_per_thread() {
        guard("dkv_a", || Err(Error::invalid("here")));
        std::thread::spawn(|| assert_eq!(last(), ""))
            .join()
            .unwrap();
        assert_eq!(last(), "dkv_a: here");
    }

    #[test]
    fn status_numbers_are_stable() {
        for code in 0..11 {
            let status = dkv_status::from_u32(code).unwrap();
            assert_eq!(status as u32, code);
        }
        assert_eq!(dkv_status::from_u32(11), None);
        assert_eq!(dkv_status::Unavailable as u32, 3);
        assert_eq!(dkv_status::Panic.name(), c"PANIC");
    }
}
