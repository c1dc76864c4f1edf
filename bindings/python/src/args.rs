//! Arguments from Python: keys, values, consistency levels, timeouts and
//! addresses, checked here so that nothing a caller passes can panic.
//! Everything is copied into owned Rust values before the GIL is
//! released.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use dkv::node::Consistency;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyByteArray, PyBytes, PyFloat, PyInt, PyMemoryView, PyString};

use crate::errors::invalid;

/// The C ABI's numbers for the named levels (`DKV_CONSISTENCY_*`).
pub const ONE: i64 = -1;
pub const QUORUM: i64 = -2;
pub const ALL: i64 = -3;

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map_or_else(|_| "?".to_string(), |n| n.to_string())
}

/// Bytes from `bytes`, `bytearray` or `memoryview`; `str` too when
/// `allow_str` (UTF-8 encoded).
fn bytes_of(obj: &Bound<'_, PyAny>, what: &str, allow_str: bool) -> PyResult<Vec<u8>> {
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(b.as_bytes().to_vec());
    }
    if allow_str {
        if let Ok(s) = obj.cast::<PyString>() {
            return Ok(s.to_cow()?.as_bytes().to_vec());
        }
    }
    if let Ok(b) = obj.cast::<PyByteArray>() {
        return Ok(b.to_vec());
    }
    if obj.is_instance_of::<PyMemoryView>() {
        let copy = obj
            .py()
            .import("builtins")?
            .getattr("bytes")?
            .call1((obj,))?;
        return Ok(copy.cast_into::<PyBytes>()?.as_bytes().to_vec());
    }
    let accepted = if allow_str {
        "bytes or str"
    } else {
        "bytes (or bytearray, memoryview)"
    };
    Err(PyTypeError::new_err(format!(
        "{what} must be {accepted}, not {}",
        type_name(obj)
    )))
}

/// A key: bytes-like or `str`.
pub fn key(obj: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    bytes_of(obj, "a key", true)
}

/// A value: bytes-like only (text must be encoded by the caller, who
/// knows its encoding).
pub fn value(obj: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    bytes_of(obj, "a value", false)
}

/// Every key of an iterable.
pub fn keys(obj: &Bound<'_, PyAny>) -> PyResult<Vec<Vec<u8>>> {
    if obj.is_instance_of::<PyBytes>() || obj.is_instance_of::<PyString>() {
        return Err(PyTypeError::new_err(
            "keys must be an iterable of keys, not a single key",
        ));
    }
    obj.try_iter()?.map(|item| key(&item?)).collect()
}

/// `(key, value)` pairs from a mapping (anything with `.items()`) or an
/// iterable of pairs.
pub fn pairs(obj: &Bound<'_, PyAny>) -> PyResult<Vec<(Vec<u8>, Vec<u8>)>> {
    let items = if obj.hasattr("items")? {
        obj.call_method0("items")?
    } else {
        obj.clone()
    };
    let mut out = Vec::new();
    for item in items.try_iter()? {
        let item = item?;
        let (k, v): (Bound<'_, PyAny>, Bound<'_, PyAny>) = item.extract().map_err(|_| {
            PyTypeError::new_err(format!(
                "put_many takes a mapping or (key, value) pairs, got an item of type {}",
                type_name(&item)
            ))
        })?;
        out.push((key(&k)?, value(&v)?));
    }
    Ok(out)
}

/// A consistency level: `dkv.ONE`, `dkv.QUORUM`, `dkv.ALL` (the C ABI's
/// -1, -2, -3), a replica count from 1, or the text `"one"`, `"quorum"`,
/// `"all"` or a number. `None` is QUORUM.
pub fn consistency(py: Python<'_>, obj: Option<&Bound<'_, PyAny>>) -> PyResult<Consistency> {
    let Some(obj) = obj else {
        return Ok(Consistency::Quorum);
    };
    if obj.is_none() {
        return Ok(Consistency::Quorum);
    }
    if obj.is_instance_of::<PyBool>() {
        return Err(PyTypeError::new_err(
            "consistency must be dkv.ONE, dkv.QUORUM, dkv.ALL or a replica count, not a bool",
        ));
    }
    if obj.is_instance_of::<PyInt>() {
        let n: i64 = obj
            .extract()
            .map_err(|_| invalid(py, "consistency: a replica count that large cannot be met"))?;
        return match n {
            ONE => Ok(Consistency::One),
            QUORUM => Ok(Consistency::Quorum),
            ALL => Ok(Consistency::All),
            n if n >= 1 => Ok(Consistency::Count(usize::try_from(n).unwrap_or(usize::MAX))),
            n => Err(invalid(
                py,
                format!(
                    "consistency {n} is not valid: use dkv.ONE, dkv.QUORUM, dkv.ALL or a \
                     replica count from 1"
                ),
            )),
        };
    }
    if let Ok(text) = obj.cast::<PyString>() {
        let text = text.to_cow()?;
        return match Consistency::parse(&text) {
            Some(Consistency::Count(0)) | None => Err(invalid(
                py,
                format!("consistency {text:?} is not valid: use \"one\", \"quorum\", \"all\" or a count from 1"),
            )),
            Some(level) => Ok(level),
        };
    }
    Err(PyTypeError::new_err(format!(
        "consistency must be dkv.ONE, dkv.QUORUM, dkv.ALL, an int or a str, not {}",
        type_name(obj)
    )))
}

/// A duration in seconds (int or float): positive and not NaN; infinity
/// means no limit.
pub fn seconds(py: Python<'_>, name: &str, obj: &Bound<'_, PyAny>) -> PyResult<Duration> {
    if obj.is_instance_of::<PyBool>()
        || !(obj.is_instance_of::<PyFloat>() || obj.is_instance_of::<PyInt>())
    {
        return Err(PyTypeError::new_err(format!(
            "{name} must be a number of seconds, not {}",
            type_name(obj)
        )));
    }
    seconds_value(py, name, obj.extract()?)
}

/// [`seconds`] for a number already extracted.
pub fn seconds_value(py: Python<'_>, name: &str, secs: f64) -> PyResult<Duration> {
    if secs.is_nan() || secs <= 0.0 {
        return Err(invalid(
            py,
            format!("{name} must be a positive number of seconds, got {secs}"),
        ));
    }
    Ok(Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX))
}

/// An optional timeout: `None` means the client's default.
pub fn timeout(py: Python<'_>, obj: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Duration>> {
    match obj {
        Some(obj) if !obj.is_none() => seconds(py, "timeout", obj).map(Some),
        _ => Ok(None),
    }
}

/// Resolves `"host:port"` to its first address (loopback names resolve
/// locally; no address is ever contacted here).
pub fn address(py: Python<'_>, text: &str) -> PyResult<SocketAddr> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    if !text.contains(':') {
        return Err(invalid(py, format!("address {text:?} is not host:port")));
    }
    let owned = text.to_string();
    let resolved = py.detach(move || owned.to_socket_addrs().map(|mut a| a.next()));
    match resolved {
        Ok(Some(addr)) => Ok(addr),
        Ok(None) => Err(invalid(py, format!("address {text:?} resolves to nothing"))),
        Err(e) => Err(invalid(py, format!("address {text:?}: {e}"))),
    }
}
