//! One blocking RESP2 connection to one node: request encoding, reply
//! reading under a deadline, and the consistency levels the server-side
//! session currently has (so a level is only sent when it changes).
//!
//! Invariant: after any error other than an error *reply*, the connection
//! is in an unknown state (a reply may still be on its way) and the owner
//! must drop it; [`CallError::Broken`] and [`CallError::Timeout`] say so.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use super::reply::{parse_reply, ReplyLimits};
use super::{ClientError, ErrorKind};
use crate::node::Consistency;
use crate::resp::{reply, Reply};

/// Why a call on a connection failed.
#[derive(Debug)]
pub(crate) enum CallError {
    /// The connection broke (reset, closed, refused): another node may
    /// serve the request.
    Broken(ClientError),
    /// The deadline passed; the connection must be dropped.
    Timeout(ClientError),
    /// The reply was malformed; the connection must be dropped.
    Protocol(ClientError),
    /// The server refused a setup command (e.g. a consistency level out of
    /// range); the connection is fine.
    Rejected(ClientError),
}

/// A connected socket and its per-connection state.
pub(crate) struct Connection {
    stream: TcpStream,
    addr: SocketAddr,
    out: Vec<u8>,
    /// Received bytes live in `inbuf[start..end]`; the rest is free space.
    inbuf: Vec<u8>,
    start: usize,
    end: usize,
    socket_timeout: Option<Duration>,
    limits: ReplyLimits,
    /// The levels the server's session has: read, write.
    pub levels: (Consistency, Consistency),
}

const READ_CHUNK: usize = 64 << 10;

impl Connection {
    /// Connects within `timeout`.
    pub fn open(
        addr: SocketAddr,
        timeout: Duration,
        limits: ReplyLimits,
    ) -> Result<Connection, ClientError> {
        let stream = TcpStream::connect_timeout(&addr, timeout.max(Duration::from_millis(1)))
            .map_err(|e| ClientError::from_io(&format!("connecting to {addr}"), &e))?;
        // Requests are small and latency-bound: do not let Nagle hold them.
        stream
            .set_nodelay(true)
            .map_err(|e| ClientError::from_io("setting TCP_NODELAY", &e))?;
        Ok(Connection {
            stream,
            addr,
            out: Vec::new(),
            inbuf: Vec::new(),
            start: 0,
            end: 0,
            socket_timeout: None,
            limits,
            levels: (Consistency::Quorum, Consistency::Quorum),
        })
    }

    /// The node this connection reaches.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn set_timeout(&mut self, timeout: Duration) -> Result<(), CallError> {
        let timeout = Some(timeout.max(Duration::from_millis(1)));
        if self.socket_timeout != timeout {
            let set = |e: std::io::Error| CallError::Broken(ClientError::from_io("socket", &e));
            self.stream.set_read_timeout(timeout).map_err(set)?;
            self.stream.set_write_timeout(timeout).map_err(set)?;
            self.socket_timeout = timeout;
        }
        Ok(())
    }

    /// Sends one command and reads its reply, all before `deadline`.
    /// An error reply is `Ok(Reply::Error { .. })`.
    pub fn call(&mut self, args: &[&[u8]], deadline: Instant) -> Result<Reply, CallError> {
        let timeout = deadline.saturating_duration_since(Instant::now());
        if timeout.is_zero() {
            return Err(CallError::Timeout(ClientError::new(
                ErrorKind::Timeout,
                "the request's time ran out before it was sent",
            )));
        }
        self.set_timeout(timeout)?;
        self.out.clear();
        reply::array(&mut self.out, args.len());
        for arg in args {
            reply::bulk(&mut self.out, arg);
        }
        let addr = self.addr;
        if let Err(e) = self.stream.write_all(&self.out) {
            let error = ClientError::from_io(&format!("sending to {addr}"), &e);
            return Err(match error.kind() {
                ErrorKind::Timeout => CallError::Timeout(error),
                _ => CallError::Broken(error),
            });
        }
        self.read_reply(deadline)
    }

    fn read_reply(&mut self, deadline: Instant) -> Result<Reply, CallError> {
        loop {
            match parse_reply(&self.inbuf[self.start..self.end], &self.limits) {
                Ok(Some((reply, used))) => {
                    self.start += used;
                    if self.start == self.end {
                        self.start = 0;
                        self.end = 0;
                        // Do not keep a huge value's buffer for good.
                        if self.inbuf.len() > 16 * READ_CHUNK {
                            self.inbuf = Vec::new();
                        }
                    }
                    return Ok(reply);
                }
                Ok(None) => {}
                Err(e) => {
                    return Err(CallError::Protocol(ClientError::new(
                        ErrorKind::Protocol,
                        format!("{} (from {})", e, self.addr),
                    )))
                }
            }
            if Instant::now() >= deadline {
                return Err(self.timed_out());
            }
            self.make_room();
            match self.stream.read(&mut self.inbuf[self.end..]) {
                Ok(0) => {
                    return Err(CallError::Broken(ClientError::new(
                        ErrorKind::Io,
                        format!("{} closed the connection", self.addr),
                    )))
                }
                Ok(n) => self.end += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let error = ClientError::from_io(&format!("reading from {}", self.addr), &e);
                    return Err(match error.kind() {
                        ErrorKind::Timeout => self.timed_out(),
                        _ => CallError::Broken(error),
                    });
                }
            }
        }
    }

    /// Ensures free space after `end`: moves unparsed bytes to the front,
    /// and grows the buffer (doubling) only when it is full of them.
    fn make_room(&mut self) {
        if self.start > 0 {
            self.inbuf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.inbuf.len() {
            let grown = (self.inbuf.len() * 2).max(READ_CHUNK);
            self.inbuf.resize(grown, 0);
        }
    }

    fn timed_out(&self) -> CallError {
        CallError::Timeout(ClientError::new(
            ErrorKind::Timeout,
            format!("no reply from {} before the request's timeout", self.addr),
        ))
    }
}
