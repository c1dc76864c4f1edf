//! The exception hierarchy: `dkv.DkvError` and one subclass per failure
//! class, each carrying the same numeric `code` as the C ABI's
//! `dkv_status` (and so the same classes as the client's `ErrorKind`).
//!
//! The classes are built once, at module import, with Python's `type()`
//! so that they can also derive from the matching built-in exception
//! (`Timeout` is a `TimeoutError`, `InvalidArgument` a `ValueError`, ...):
//! `except TimeoutError` keeps working for code that knows nothing of dkv.

use dkv::client::{ClientError, ErrorKind};
use dkv::server::ServerError;
use dkv::snapshot::SnapshotError;
use dkv::StoreError;
use pyo3::exceptions::{PyException, PyOSError, PyTimeoutError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple, PyType};
use pyo3::PyTypeInfo;

/// A failure class. The discriminants are the C ABI's `dkv_status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    InvalidArgument = 2,
    Unavailable = 3,
    Timeout = 4,
    Io = 5,
    Corruption = 6,
    Config = 8,
    Protocol = 9,
    Server = 10,
}

impl Kind {
    const ALL: [Kind; 8] = [
        Kind::InvalidArgument,
        Kind::Unavailable,
        Kind::Timeout,
        Kind::Io,
        Kind::Corruption,
        Kind::Config,
        Kind::Protocol,
        Kind::Server,
    ];

    /// The Python class name.
    fn class_name(self) -> &'static str {
        match self {
            Kind::InvalidArgument => "InvalidArgument",
            Kind::Unavailable => "Unavailable",
            Kind::Timeout => "Timeout",
            Kind::Io => "IoError",
            Kind::Corruption => "CorruptionError",
            Kind::Config => "ConfigError",
            Kind::Protocol => "ProtocolError",
            Kind::Server => "ServerError",
        }
    }

    /// The status name shared with the C ABI and RESP error prefixes.
    fn status_name(self) -> &'static str {
        match self {
            Kind::InvalidArgument => "INVALID_ARGUMENT",
            Kind::Unavailable => "UNAVAILABLE",
            Kind::Timeout => "TIMEOUT",
            Kind::Io => "IO",
            Kind::Corruption => "CORRUPTION",
            Kind::Config => "CONFIG",
            Kind::Protocol => "PROTOCOL",
            Kind::Server => "SERVER",
        }
    }

    fn doc(self) -> &'static str {
        match self {
            Kind::InvalidArgument => {
                "A bad argument: an empty key, a consistency level that is not ONE, QUORUM, \
                 ALL or 1..N, a negative timeout, or a command the server refused as \
                 malformed. Also a ValueError."
            }
            Kind::Unavailable => {
                "The request could not reach its consistency level (too few replicas \
                 answered), or no node of the client's list could be reached."
            }
            Kind::Timeout => {
                "No complete reply arrived within the request's timeout. The request may \
                 still have been applied. Also a TimeoutError."
            }
            Kind::Io => {
                "An operating-system error (e.g. a port already in use, an unreadable data \
                 directory) or a server's storage error. Also an OSError."
            }
            Kind::Corruption => "A node's data on disk is damaged beyond what recovery repairs.",
            Kind::Config => {
                "A node configuration or cluster.conf was refused; the message says what \
                 is wrong (and the line, for a file)."
            }
            Kind::Protocol => "A server's reply was not valid RESP2 or not of the expected shape.",
            Kind::Server => "Any other error reply from a server (e.g. NOAUTH).",
        }
    }

    /// The built-in exception the class also derives from, if any.
    fn builtin<'py>(self, py: Python<'py>) -> Option<Bound<'py, PyType>> {
        match self {
            Kind::InvalidArgument => Some(PyValueError::type_object(py)),
            Kind::Timeout => Some(PyTimeoutError::type_object(py)),
            Kind::Io => Some(PyOSError::type_object(py)),
            _ => None,
        }
    }
}

/// The classes, built at import.
struct Classes {
    base: Py<PyType>,
    kinds: Vec<(Kind, Py<PyType>)>,
}

static CLASSES: PyOnceLock<Classes> = PyOnceLock::new();

const BASE_DOC: &str = "The base class of every dkv error. `code` is the numeric status shared \
    with the C ABI (`dkv_status`), `status` its name (e.g. \"UNAVAILABLE\").";

fn new_class<'py>(
    py: Python<'py>,
    name: &str,
    bases: Bound<'py, PyTuple>,
    doc: &str,
    code: Option<(u32, &str)>,
) -> PyResult<Bound<'py, PyType>> {
    let dict = PyDict::new(py);
    dict.set_item("__doc__", doc)?;
    dict.set_item("__module__", "dkv")?;
    dict.set_item("code", code.map(|(c, _)| c))?;
    dict.set_item("status", code.map(|(_, s)| s))?;
    let ty = py
        .import("builtins")?
        .getattr("type")?
        .call1((name, bases, dict))?;
    Ok(ty.cast_into::<PyType>()?)
}

/// Builds the classes (once) and adds them to `module`.
pub fn register(module: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = module.py();
    let classes = CLASSES.get_or_try_init(py, || -> PyResult<Classes> {
        let base = new_class(
            py,
            "DkvError",
            PyTuple::new(py, [PyException::type_object(py)])?,
            BASE_DOC,
            None,
        )?;
        let mut kinds = Vec::new();
        for kind in Kind::ALL {
            let mut bases = vec![base.clone()];
            bases.extend(kind.builtin(py));
            let ty = new_class(
                py,
                kind.class_name(),
                PyTuple::new(py, bases)?,
                kind.doc(),
                Some((kind as u32, kind.status_name())),
            )?;
            kinds.push((kind, ty.unbind()));
        }
        Ok(Classes {
            base: base.unbind(),
            kinds,
        })
    })?;
    module.add("DkvError", classes.base.bind(py))?;
    for (kind, ty) in &classes.kinds {
        module.add(kind.class_name(), ty.bind(py))?;
    }
    Ok(())
}

/// An exception of class `kind` saying `message`.
pub fn error(py: Python<'_>, kind: Kind, message: impl Into<String>) -> PyErr {
    let message = message.into();
    match CLASSES.get(py) {
        Some(classes) => {
            let ty = classes
                .kinds
                .iter()
                .find(|(k, _)| *k == kind)
                .map_or(&classes.base, |(_, ty)| ty);
            PyErr::from_type(ty.bind(py).clone(), message)
        }
        // Only reachable if the module failed to initialise.
        None => PyException::new_err(message),
    }
}

/// An `InvalidArgument` error.
pub fn invalid(py: Python<'_>, message: impl Into<String>) -> PyErr {
    error(py, Kind::InvalidArgument, message)
}

/// The exception for a failed client request.
pub fn from_client(py: Python<'_>, e: &ClientError) -> PyErr {
    let kind = match e.kind() {
        ErrorKind::InvalidArgument => Kind::InvalidArgument,
        ErrorKind::Unavailable => Kind::Unavailable,
        ErrorKind::Timeout => Kind::Timeout,
        ErrorKind::Io => Kind::Io,
        ErrorKind::Protocol => Kind::Protocol,
        // ErrorKind is non-exhaustive: anything newer is a server error
        // until it gets a class of its own.
        _ => Kind::Server,
    };
    error(py, kind, e.message().to_string())
}

/// The exception for a node that failed to start or stop (the same
/// classes as `dkv_node_start`'s statuses).
pub fn from_node(py: Python<'_>, e: &ServerError) -> PyErr {
    let kind = match e {
        ServerError::Config(_) => Kind::Config,
        ServerError::Store(StoreError::Snapshot(SnapshotError::Corrupt { .. })) => Kind::Corruption,
        _ => Kind::Io,
    };
    error(py, kind, e.to_string())
}
