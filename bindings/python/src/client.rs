//! `dkv.Client`: the core's blocking client behind a small pool, so one
//! `Client` can be shared by many Python threads.
//!
//! Each call borrows an idle connection (or opens one), runs with the GIL
//! released, and puts the connection back. Concurrent calls therefore run
//! on separate connections, in parallel; a lone thread reuses one
//! connection. New connections start at successive nodes of the list, so
//! a pool spreads its coordinators over the cluster; each still fails
//! over along the whole list. The pool lock is only ever taken with the
//! GIL released and is held for a push or a pop, never across IO.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use dkv::client::{Client as CoreClient, ClientError, ClientOptions, ErrorKind, Ttl};
use parking_lot::Mutex;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString, PyTuple};

use crate::args;
use crate::errors::{from_client, invalid};

/// A client of a dkv cluster, safe to share between threads.
///
/// ``Client(addresses, *, timeout=5.0, connect_timeout=2.0,
/// password=None, max_connections=16)``
///
/// ``addresses`` is a list of ``"host:port"`` strings (a single string is
/// accepted too). Any node coordinates any request: the client connects
/// to the first node that answers and fails over to the next when a
/// connection breaks. ``timeout`` is the default time allowed for a
/// request (seconds), ``connect_timeout`` the time allowed for one
/// connection attempt, ``password`` is sent with AUTH on every new
/// connection.
///
/// Thread safety: every method may be called from any number of threads
/// at once. Each call borrows a connection from a small pool (opening a
/// new one when all are busy) and releases the GIL while it waits for
/// the cluster; ``max_connections`` bounds the idle connections kept.
///
/// Keys are ``bytes`` (``str`` is accepted and UTF-8 encoded); values
/// are ``bytes``. Every request method takes ``consistency=`` (``dkv.ONE``,
/// ``dkv.QUORUM`` (the default), ``dkv.ALL`` or a replica count) and
/// ``timeout=`` (seconds; ``None`` for the client's default). Failures
/// raise subclasses of ``dkv.DkvError``.
#[pyclass(module = "dkv._dkv", frozen)]
pub struct Client {
    addrs: Vec<SocketAddr>,
    options: ClientOptions,
    idle: Mutex<Vec<CoreClient>>,
    max_idle: usize,
    /// How many connections were opened: the next one starts at this
    /// index of `addrs`.
    opened: AtomicUsize,
    closed: AtomicBool,
}

impl Client {
    /// Runs `f` on a pooled connection with the GIL released.
    fn call<R: Send>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&mut CoreClient) -> Result<R, ClientError> + Send,
    ) -> PyResult<R> {
        py.detach(|| self.call_detached(f))
            .map_err(|e| from_client(py, &e))
    }

    fn call_detached<R>(
        &self,
        f: impl FnOnce(&mut CoreClient) -> Result<R, ClientError>,
    ) -> Result<R, ClientError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(ClientError::new(
                ErrorKind::InvalidArgument,
                "the client is closed",
            ));
        }
        let pooled = self.idle.lock().pop();
        let mut conn = match pooled {
            Some(conn) => conn,
            None => self.open()?,
        };
        let result = f(&mut conn);
        if !self.closed.load(Ordering::Acquire) {
            let mut idle = self.idle.lock();
            if idle.len() < self.max_idle {
                idle.push(conn);
            }
        }
        result
    }

    /// Opens a connection, starting at the next node in turn.
    fn open(&self) -> Result<CoreClient, ClientError> {
        let n = self.addrs.len();
        let start = self.opened.fetch_add(1, Ordering::Relaxed) % n.max(1);
        let mut order = self.addrs.clone();
        order.rotate_left(start);
        CoreClient::connect(&order, self.options.clone())
    }
}

fn owned_bytes(py: Python<'_>, value: Option<Vec<u8>>) -> Option<Bound<'_, PyBytes>> {
    value.map(|v| PyBytes::new(py, &v))
}

#[pymethods]
impl Client {
    #[new]
    #[pyo3(signature = (addresses, *, timeout = 5.0, connect_timeout = 2.0, password = None, max_connections = 16))]
    fn new(
        py: Python<'_>,
        addresses: &Bound<'_, PyAny>,
        timeout: f64,
        connect_timeout: f64,
        password: Option<String>,
        max_connections: usize,
    ) -> PyResult<Client> {
        let texts: Vec<String> = if let Ok(one) = addresses.cast::<PyString>() {
            vec![one.to_cow()?.to_string()]
        } else {
            let mut texts = Vec::new();
            for item in addresses.try_iter()? {
                let item = item?;
                texts.push(item.extract::<String>().map_err(|_| {
                    PyTypeError::new_err("addresses must be \"host:port\" strings")
                })?);
            }
            texts
        };
        if texts.is_empty() {
            return Err(invalid(py, "no node addresses given"));
        }
        let addrs = texts
            .iter()
            .map(|t| args::address(py, t))
            .collect::<PyResult<Vec<_>>>()?;
        if max_connections == 0 {
            return Err(invalid(py, "max_connections must be at least 1"));
        }
        let options = ClientOptions {
            timeout: args::seconds_value(py, "timeout", timeout)?,
            connect_timeout: args::seconds_value(py, "connect_timeout", connect_timeout)?,
            password,
            ..ClientOptions::default()
        };
        let client = Client {
            addrs,
            options,
            idle: Mutex::new(Vec::new()),
            max_idle: max_connections,
            opened: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
        };
        // Connect now, so an unreachable cluster is reported here.
        let first = py
            .detach(|| client.open())
            .map_err(|e| from_client(py, &e))?;
        client.idle.lock().push(first);
        Ok(client)
    }

    /// ``get(key, *, consistency=QUORUM, timeout=None) -> bytes | None``
    ///
    /// Reads ``key``: its value, or ``None`` when it is missing or deleted.
    /// At ``consistency`` the newest of that many replicas' answers wins.
    #[pyo3(signature = (key, *, consistency = None, timeout = None))]
    fn get<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
        consistency: Option<&Bound<'py, PyAny>>,
        timeout: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let key = args::key(key)?;
        let level = args::consistency(py, consistency)?;
        let timeout = args::timeout(py, timeout)?;
        let value = self.call(py, |c| c.get(&key, level, timeout))?;
        Ok(owned_bytes(py, value))
    }

    /// ``put(key, value, *, ttl=None, consistency=QUORUM, timeout=None) -> None``
    ///
    /// Writes ``value`` under ``key``; returns once ``consistency``
    /// replicas acknowledged it. With ``ttl`` (seconds), the key expires
    /// that long from now.
    #[pyo3(signature = (key, value, *, ttl = None, consistency = None, timeout = None))]
    fn put(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        value: &Bound<'_, PyAny>,
        ttl: Option<&Bound<'_, PyAny>>,
        consistency: Option<&Bound<'_, PyAny>>,
        timeout: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let key = args::key(key)?;
        let value = args::value(value)?;
        let level = args::consistency(py, consistency)?;
        let timeout = args::timeout(py, timeout)?;
        match ttl.filter(|t| !t.is_none()) {
            Some(ttl) => {
                let ttl = args::seconds(py, "ttl", ttl)?;
                self.call(py, |c| c.put_with_ttl(&key, &value, ttl, level, timeout))
            }
            None => self.call(py, |c| c.put(&key, &value, level, timeout)),
        }
    }

    /// ``expire(key, ttl, *, consistency=QUORUM, timeout=None) -> bool``
    ///
    /// Makes ``key`` expire ``ttl`` seconds from now; ``False`` when it
    /// does not exist.
    #[pyo3(signature = (key, ttl, *, consistency = None, timeout = None))]
    fn expire(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        ttl: &Bound<'_, PyAny>,
        consistency: Option<&Bound<'_, PyAny>>,
        timeout: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        let key = args::key(key)?;
        let ttl = args::seconds(py, "ttl", ttl)?;
        let level = args::consistency(py, consistency)?;
        let timeout = args::timeout(py, timeout)?;
        self.call(py, |c| c.expire(&key, ttl, level, timeout))
    }

    /// ``persist(key, *, consistency=QUORUM, timeout=None) -> bool``
    ///
    /// Removes ``key``'s expiry; ``True`` when it had one.
    #[pyo3(signature = (key, *, consistency = None, timeout = None))]
    fn persist(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        consistency: Option<&Bound<'_, PyAny>>,
        timeout: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        let key = args::key(key)?;
        let level = args::consistency(py, consistency)?;
        let timeout = args::timeout(py, timeout)?;
        self.call(py, |c| c.persist(&key, level, timeout))
    }

    /// ``ttl(key, *, consistency=QUORUM, timeout=None) -> float | None``
    ///
    /// The seconds before ``key`` expires; ``-1.0`` when it does not
    /// expire, ``None`` when it does not exist.
    #[pyo3(signature = (key, *, consistency = None, timeout = None))]
    fn ttl(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        consistency: Option<&Bound<'_, PyAny>>,
        timeout: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Option<f64>> {
        let key = args::key(key)?;
        let level = args::consistency(py, consistency)?;
        let timeout = args::timeout(py, timeout)?;
        Ok(match self.call(py, |c| c.ttl(&key, level, timeout))? {
            Ttl::Missing => None,
            Ttl::Persistent => Some(-1.0),
            Ttl::Expires(left) => Some(left.as_secs_f64()),
        })
    }

    /// ``incr(key, amount=1, *, consistency=QUORUM, timeout=None) -> int``
    ///
    /// Adds ``amount`` to the integer at ``key`` (missing counts as 0) and
    /// returns the new value. Raises ``InvalidArgument`` when the value is
    /// not an integer. Never sent twice: if the connection breaks during
    /// it, ``Unavailable`` says it may have been applied.
    #[pyo3(signature = (key, amount = 1, *, consistency = None, timeout = None))]
    fn incr(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        amount: i64,
        consistency: Option<&Bound<'_, PyAny>>,
        timeout: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<i64> {
        let key = args::key(key)?;
        let level = args::consistency(py, consistency)?;
        let timeout = args::timeout(py, timeout)?;
        self.call(py, |c| c.incr_by(&key, amount, level, timeout))
    }

    /// ``scan(pattern=None, *, count=1000, timeout=None) -> Iterator[bytes]``
    ///
    /// Every key matching ``pattern`` (a Redis glob such as
    /// ``b"session:*"``; ``None``: every key), each once, fetched a page
    /// of about ``count`` keys at a time as the iterator is consumed.
    #[pyo3(signature = (pattern = None, *, count = 1000, timeout = None))]
    fn scan(
        slf: &Bound<'_, Self>,
        pattern: Option<&Bound<'_, PyAny>>,
        count: usize,
        timeout: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<KeyScan> {
        let py = slf.py();
        let pattern = match pattern.filter(|p| !p.is_none()) {
            Some(p) => Some(args::key(p)?),
            None => None,
        };
        Ok(KeyScan {
            client: slf.clone().unbind(),
            pattern,
            count: count.max(1),
            timeout: args::timeout(py, timeout)?,
            state: Mutex::new(ScanState::default()),
        })
    }

    /// ``flush(*, timeout=None) -> None``: deletes every key of the
    /// cluster (``FLUSHDB``); nothing written before comes back.
    #[pyo3(signature = (*, timeout = None))]
    fn flush(&self, py: Python<'_>, timeout: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let timeout = args::timeout(py, timeout)?;
        self.call(py, |c| c.flush(timeout))
    }

    /// ``delete(key, *, consistency=QUORUM, timeout=None) -> bool``
    ///
    /// Deletes ``key``; ``True`` when a replica that acknowledged held a
    /// live value before.
    #[pyo3(signature = (key, *, consistency = None, timeout = None))]
    fn delete(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        consistency: Option<&Bound<'_, PyAny>>,
        timeout: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        let key = args::key(key)?;
        let level = args::consistency(py, consistency)?;
        let timeout = args::timeout(py, timeout)?;
        self.call(py, |c| c.delete(&key, level, timeout))
    }

    /// ``get_many(keys, *, consistency=QUORUM, timeout=None) -> list[bytes | None]``
    ///
    /// Reads several keys in one request; the answers are in the order of
    /// ``keys``. The whole batch fails if any key misses its level.
    #[pyo3(signature = (keys, *, consistency = None, timeout = None))]
    fn get_many<'py>(
        &self,
        py: Python<'py>,
        keys: &Bound<'py, PyAny>,
        consistency: Option<&Bound<'py, PyAny>>,
        timeout: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyList>> {
        let keys = args::keys(keys)?;
        let level = args::consistency(py, consistency)?;
        let timeout = args::timeout(py, timeout)?;
        let values = self.call(py, |c| {
            let refs: Vec<&[u8]> = keys.iter().map(Vec::as_slice).collect();
            c.get_many(&refs, level, timeout)
        })?;
        PyList::new(py, values.into_iter().map(|v| owned_bytes(py, v)))
    }

    /// ``put_many(items, *, consistency=QUORUM, timeout=None) -> None``
    ///
    /// Writes several pairs in one request: ``items`` is a mapping or an
    /// iterable of ``(key, value)`` pairs. It fails if any pair misses its
    /// level; pairs that reached theirs stay written.
    #[pyo3(signature = (items, *, consistency = None, timeout = None))]
    fn put_many(
        &self,
        py: Python<'_>,
        items: &Bound<'_, PyAny>,
        consistency: Option<&Bound<'_, PyAny>>,
        timeout: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let pairs = args::pairs(items)?;
        let level = args::consistency(py, consistency)?;
        let timeout = args::timeout(py, timeout)?;
        self.call(py, |c| {
            let refs: Vec<(&[u8], &[u8])> = pairs
                .iter()
                .map(|(k, v)| (k.as_slice(), v.as_slice()))
                .collect();
            c.put_many(&refs, level, timeout)
        })
    }

    /// ``status(*, timeout=None) -> ClusterStatus``
    ///
    /// The answering node's view of its cluster (``INFO cluster``): its id,
    /// N, W, R, each peer's state and the hints it holds.
    #[pyo3(signature = (*, timeout = None))]
    fn status(
        &self,
        py: Python<'_>,
        timeout: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<ClusterStatus> {
        let timeout = args::timeout(py, timeout)?;
        let status = self.call(py, |c| c.status(timeout))?;
        Ok(ClusterStatus::from(status))
    }

    /// ``ping(*, timeout=None) -> None``: checks that some node answers.
    #[pyo3(signature = (*, timeout = None))]
    fn ping(&self, py: Python<'_>, timeout: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let timeout = args::timeout(py, timeout)?;
        self.call(py, |c| c.ping(timeout))
    }

    /// ``close() -> None``: closes the pooled connections. Calls made
    /// afterwards raise ``InvalidArgument``; calls in flight finish and
    /// drop their connection. Idempotent.
    fn close(&self, py: Python<'_>) {
        self.closed.store(true, Ordering::Release);
        let idle: Vec<CoreClient> = py.detach(|| std::mem::take(&mut *self.idle.lock()));
        drop(idle);
    }

    /// Whether ``close()`` was called.
    #[getter]
    fn closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// The node addresses, as given (resolved to ``"ip:port"``).
    #[getter]
    fn addresses(&self) -> Vec<String> {
        self.addrs.iter().map(SocketAddr::to_string).collect()
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, PyTuple>) -> bool {
        self.close(py);
        false
    }

    fn __repr__(&self) -> String {
        format!(
            "dkv.Client({:?}{})",
            self.addresses(),
            if self.closed() { ", closed" } else { "" }
        )
    }
}

/// One peer as the answering node sees it.
#[pyclass(module = "dkv._dkv", frozen, get_all)]
#[derive(Clone)]
pub struct PeerStatus {
    /// The peer's node id.
    pub node_id: u32,
    /// Whether the failure detector thinks it is up.
    pub up: bool,
    /// Whether the answering node's link to it is connected.
    pub connected: bool,
    /// Hints the answering node holds for it.
    pub hints_pending: u64,
}

#[pymethods]
impl PeerStatus {
    fn __repr__(&self) -> String {
        format!(
            "PeerStatus(node_id={}, up={}, connected={}, hints_pending={})",
            self.node_id,
            py_bool(self.up),
            py_bool(self.connected),
            self.hints_pending
        )
    }
}

fn py_bool(b: bool) -> &'static str {
    if b {
        "True"
    } else {
        "False"
    }
}

/// A node's view of its cluster, from ``Client.status()``.
#[pyclass(module = "dkv._dkv", frozen, get_all)]
#[derive(Clone)]
pub struct ClusterStatus {
    /// The answering node's id (0 if it did not say).
    pub node_id: u32,
    /// The cluster's name.
    pub cluster_name: String,
    /// N: replicas per key.
    pub replication_factor: usize,
    /// W: acknowledgements a QUORUM write needs.
    pub write_quorum: usize,
    /// R: replies a QUORUM read needs.
    pub read_quorum: usize,
    /// Every other member (``PeerStatus``), by id.
    pub peers: Vec<PeerStatus>,
    /// Hints held for all targets.
    pub hints_pending: u64,
}

impl From<dkv::client::NodeStatus> for ClusterStatus {
    fn from(s: dkv::client::NodeStatus) -> Self {
        ClusterStatus {
            node_id: s.node_id.0,
            cluster_name: s.cluster_name,
            replication_factor: s.replication_factor,
            write_quorum: s.write_quorum,
            read_quorum: s.read_quorum,
            peers: s
                .peers
                .into_iter()
                .map(|p| PeerStatus {
                    node_id: p.id.0,
                    up: p.up,
                    connected: p.connected,
                    hints_pending: p.hints_pending,
                })
                .collect(),
            hints_pending: s.hints_pending,
        }
    }
}

#[pymethods]
impl ClusterStatus {
    /// ``peer(node_id) -> PeerStatus | None``: the peer with this id.
    fn peer(&self, node_id: u32) -> Option<PeerStatus> {
        self.peers.iter().find(|p| p.node_id == node_id).cloned()
    }

    fn __repr__(&self) -> String {
        let peers: Vec<String> = self.peers.iter().map(PeerStatus::__repr__).collect();
        format!(
            "ClusterStatus(node_id={}, cluster_name={:?}, replication_factor={}, write_quorum={}, \
             read_quorum={}, peers=[{}], hints_pending={})",
            self.node_id,
            self.cluster_name,
            self.replication_factor,
            self.write_quorum,
            self.read_quorum,
            peers.join(", "),
            self.hints_pending
        )
    }
}

/// Where a [`KeyScan`] stands.
#[derive(Default)]
struct ScanState {
    cursor: u64,
    started: bool,
    pending: std::collections::VecDeque<Vec<u8>>,
    seen: std::collections::HashSet<Vec<u8>>,
}

/// The iterator ``Client.scan`` returns: keys, each once, a page at a time.
#[pyclass(module = "dkv._dkv", frozen)]
pub struct KeyScan {
    client: Py<Client>,
    pattern: Option<Vec<u8>>,
    count: usize,
    timeout: Option<std::time::Duration>,
    state: Mutex<ScanState>,
}

#[pymethods]
impl KeyScan {
    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyBytes>>> {
        loop {
            let (cursor, started) = {
                let mut state = self.state.lock();
                if let Some(key) = state.pending.pop_front() {
                    return Ok(Some(PyBytes::new(py, &key)));
                }
                if state.started && state.cursor == 0 {
                    return Ok(None);
                }
                (state.cursor, state.started)
            };
            debug_assert!(!started || cursor != 0);
            let client = self.client.get();
            let (pattern, count, timeout) = (self.pattern.clone(), self.count, self.timeout);
            let page = client.call(py, |c| c.scan(cursor, pattern.as_deref(), count, timeout))?;
            let mut state = self.state.lock();
            state.started = true;
            state.cursor = page.cursor;
            for key in page.keys {
                if state.seen.insert(key.clone()) {
                    state.pending.push_back(key);
                }
            }
        }
    }
}
