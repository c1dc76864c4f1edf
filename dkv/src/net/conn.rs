//! One client connection as the reactor sees it: its socket, the bytes
//! read but not yet parsed, and the replies waiting to be sent, each held
//! back until the WAL sequence it depends on is durable.

use std::collections::VecDeque;
use std::io::{self, Read, Write};

use mio::net::TcpStream;

use crate::net::reactor::Request;
use crate::resp::{Limits, Parser};
use crate::server::session::Session;
use crate::wal::Lsn;

/// Replies of one batch, sent only once `gate` (if any) is durable; or
/// the slot of one cluster command, empty until the command finishes.
struct Segment {
    bytes: Vec<u8>,
    sent: usize,
    gate: Option<Lsn>,
    call: Option<u64>,
}

impl Segment {
    fn blocked(&self, durable: Lsn) -> bool {
        self.call.is_some() || self.gate.is_some_and(|g| g > durable)
    }
}

/// What a read attempt found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ReadOutcome {
    /// Read until the socket had no more for now.
    Drained,
    /// Stopped because the input buffer is full; read again later.
    Full,
    /// The peer closed its side (or the socket failed).
    Closed,
}

pub(crate) struct Conn {
    pub socket: TcpStream,
    /// Unparsed input starts at `input_start`.
    pub input: Vec<u8>,
    pub input_start: usize,
    /// Resumes a request split across reads where it stopped.
    pub parser: Parser,
    /// Parsed requests waiting for their turn on a worker.
    pub pending: VecDeque<Request>,
    /// A fatal protocol error was parsed: nothing after it is read.
    pub parse_stopped: bool,
    /// `None` while a worker runs a batch for this connection.
    pub session: Option<Session>,
    output: VecDeque<Segment>,
    output_bytes: usize,
    /// No more reading: the peer closed, or a QUIT or protocol error ends
    /// the connection once the replies are out.
    pub read_closed: bool,
    /// Close as soon as everything queued is sent.
    pub close_after_flush: bool,
    /// Reading stopped before the socket said WouldBlock (backpressure):
    /// the reactor must read again itself, edge-triggered polling won't.
    pub read_pending: bool,
    pub writable_registered: bool,
    /// The poller reported the peer's end closed (or an error): read to EOF.
    pub peer_hung_up: bool,
    /// Cluster commands whose replies are not in yet.
    pub calls_in_flight: usize,
}

impl Conn {
    pub fn new(socket: TcpStream, session: Session, limits: Limits) -> Conn {
        Conn {
            socket,
            input: Vec::new(),
            input_start: 0,
            parser: Parser::new(limits),
            pending: VecDeque::new(),
            parse_stopped: false,
            session: Some(session),
            output: VecDeque::new(),
            output_bytes: 0,
            read_closed: false,
            close_after_flush: false,
            read_pending: false,
            writable_registered: false,
            peer_hung_up: false,
            calls_in_flight: 0,
        }
    }

    pub fn busy(&self) -> bool {
        self.session.is_none()
    }

    pub fn unparsed(&self) -> &[u8] {
        &self.input[self.input_start..]
    }

    pub fn consume(&mut self, bytes: usize) {
        self.input_start += bytes;
        if self.input_start == self.input.len() {
            self.input.clear();
            self.input_start = 0;
        }
    }

    /// Reads until the socket is drained, EOF, or `max_input` unparsed
    /// bytes, through the reactor's `scratch` buffer.
    ///
    /// A read shorter than `scratch` took everything the socket held, so it
    /// ends the loop without the extra `read` that would only say
    /// WouldBlock: with edge-triggered polling, new data raises a new event
    /// anyway. When the peer has hung up, reading goes on to the EOF, which
    /// no later event would report.
    pub fn read(&mut self, scratch: &mut [u8], max_input: usize) -> ReadOutcome {
        if self.input_start > 0 && self.input_start * 2 > self.input.len() {
            self.input.drain(..self.input_start);
            self.input_start = 0;
        }
        loop {
            if self.input.len() - self.input_start >= max_input {
                self.read_pending = true;
                return ReadOutcome::Full;
            }
            match self.socket.read(scratch) {
                Ok(0) => return ReadOutcome::Closed,
                Ok(n) => {
                    self.input.extend_from_slice(&scratch[..n]);
                    if n < scratch.len() && !self.peer_hung_up {
                        self.read_pending = false;
                        return ReadOutcome::Drained;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.read_pending = false;
                    return ReadOutcome::Drained;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return ReadOutcome::Closed,
            }
        }
    }

    pub fn queue(&mut self, bytes: Vec<u8>, gate: Option<Lsn>) {
        if bytes.is_empty() {
            return;
        }
        self.output_bytes += bytes.len();
        self.output.push_back(Segment {
            bytes,
            sent: 0,
            gate,
            call: None,
        });
    }

    /// Holds a place in the reply order for a cluster command.
    pub fn queue_call(&mut self, call: u64) {
        self.calls_in_flight += 1;
        self.output.push_back(Segment {
            bytes: Vec::new(),
            sent: 0,
            gate: None,
            call: Some(call),
        });
    }

    /// Fills a cluster command's place with its reply.
    pub fn fill_call(&mut self, call: u64, bytes: Vec<u8>) {
        if let Some(segment) = self.output.iter_mut().find(|s| s.call == Some(call)) {
            self.calls_in_flight -= 1;
            self.output_bytes += bytes.len();
            segment.bytes = bytes;
            segment.call = None;
        }
    }

    pub fn output_bytes(&self) -> usize {
        self.output_bytes
    }

    pub fn has_output(&self) -> bool {
        !self.output.is_empty()
    }

    /// Whether the first queued segment cannot be sent yet.
    pub fn blocked(&self, durable: Lsn) -> bool {
        self.output.front().is_some_and(|s| s.blocked(durable))
    }

    /// Writes every segment whose gate is durable, in order, until the
    /// socket would block. `Err` means the connection is dead.
    pub fn flush(&mut self, durable: Lsn) -> io::Result<()> {
        while let Some(segment) = self.output.front_mut() {
            if segment.blocked(durable) {
                return Ok(());
            }
            while segment.sent < segment.bytes.len() {
                match self.socket.write(&segment.bytes[segment.sent..]) {
                    Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                    Ok(n) => {
                        segment.sent += n;
                        self.output_bytes -= n;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            self.output.pop_front();
        }
        Ok(())
    }

    /// Whether the connection has nothing left to do and should close.
    pub fn finished(&self) -> bool {
        let idle = !self.busy()
            && self.output.is_empty()
            && self.pending.is_empty()
            && self.calls_in_flight == 0;
        idle && (self.close_after_flush || (self.read_closed && self.unparsed().is_empty()))
    }
}
