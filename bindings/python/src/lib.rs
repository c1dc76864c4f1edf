//! `dkv._dkv`: the Python extension module of dkv, built with pyo3 and
//! maturin as an abi3 wheel (CPython 3.9+). The pure-Python package
//! `dkv` (in `python/dkv/`) re-exports it and adds `local_cluster`.
//!
//! | file        | owns                                                        |
//! |-------------|-------------------------------------------------------------|
//! | `node.rs`   | `Node`: a node in this process, restartable on its data dir |
//! | `client.rs` | `Client` (a thread-safe pool over the core client), status  |
//! | `args.rs`   | checking keys, values, levels, timeouts and addresses       |
//! | `errors.rs` | `DkvError` and its subclasses, with the C ABI's codes        |
//!
//! Invariants: every blocking call releases the GIL (`Python::detach`)
//! and takes no lock while holding it that a detached thread could hold
//! across IO; arguments are copied into owned values first. Nothing a
//! caller passes can panic: bad input is an exception, and a panic that
//! slips through anyway becomes pyo3's `PanicException`.

mod args;
mod client;
mod errors;
mod node;

use pyo3::prelude::*;

/// dkv, a Dynamo-style distributed in-memory key-value store: nodes that
/// run in this process and a client for any dkv cluster.
#[pymodule]
fn _dkv(m: &Bound<'_, PyModule>) -> PyResult<()> {
    errors::register(m)?;
    m.add_class::<node::Node>()?;
    m.add_class::<client::Client>()?;
    m.add_class::<client::KeyScan>()?;
    m.add_class::<client::ClusterStatus>()?;
    m.add_class::<client::PeerStatus>()?;
    m.add("ONE", args::ONE)?;
    m.add("QUORUM", args::QUORUM)?;
    m.add("ALL", args::ALL)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
