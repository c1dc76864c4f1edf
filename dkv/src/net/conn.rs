//! One client connection as the reactor sees it: its socket, the bytes
//! read but not yet parsed, the command layer's [`Session`] it lends to
//! every command, and the replies waiting to be sent.
//!
//! Replies leave in request order. A command that answered at once has
//! its reply appended to the tail of the output; one that is pending (a
//! data command waiting for replicas or an fsync) holds a place in the
//! output until its completion fills it, and nothing behind it is sent
//! before it. Writing gathers every contiguous ready segment into one
//! `writev`.
//!
//! The connection knows bytes, not commands: it parses requests with the
//! RESP parser under the limits the command layer sets, and hands each to
//! the caller's closure.

use std::collections::VecDeque;
use std::io::{self, IoSlice, Read, Write};

use mio::net::TcpStream;

use crate::command::{CallId, Executed, Session};
use crate::net::tls::Transport;
use crate::resp::{self, Limits, Parser, ProtocolError};

/// Segments gathered into one `writev` at most.
const MAX_WRITE_SEGMENTS: usize = 64;
/// What a segment costs beyond its bytes (the deque slot, the allocation).
const SEGMENT_OVERHEAD: usize = 48;
/// Calls a new connection may have in flight; each completion raises it by
/// one (so it doubles every round trip) up to the reactor's bound.
const INITIAL_CALL_WINDOW: usize = 32;
/// An idle buffer whose capacity passed this is given back.
const KEEP_CAPACITY: usize = 64 << 10;
/// A written segment's buffer up to this capacity is kept for the next.
const SPARE_SEGMENT_BYTES: usize = 16 << 10;
/// A ready segment this small is copied to join the one before it.
const MERGE_LIMIT: usize = 4096;

enum Segment {
    /// Reply bytes, `sent` of them already written.
    Ready { bytes: Vec<u8>, sent: usize },
    /// The place of a reply still to come, and the bytes of the request
    /// that made it (held by the node until it completes).
    Pending { call: CallId, request_bytes: usize },
}

/// What a read attempt found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ReadOutcome {
    /// The socket had no more for now.
    Drained,
    /// Stopped with bytes possibly left in the socket (the input buffer is
    /// full or the turn's budget spent): read again without an event.
    Stopped,
    /// The peer closed its side (or the socket failed).
    Closed,
}

/// What [`Conn::run_next`] did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// One request ran (or was refused with a protocol error).
    Ran,
    /// No whole request is buffered.
    Idle,
}

pub(crate) struct Conn {
    socket: Transport,
    input: Vec<u8>,
    /// Unparsed input starts here.
    input_start: usize,
    parser: Parser,
    session: Session,
    output: VecDeque<Segment>,
    /// Replies appended after the last segment, not yet sealed into one;
    /// the first `tail_sent` bytes are written. It keeps its capacity
    /// across turns, so a connection with no pending call allocates
    /// nothing for its replies.
    tail: Vec<u8>,
    tail_sent: usize,
    /// A written segment's buffer, kept for the next segment (at most
    /// `SPARE_SEGMENT_BYTES` of capacity, as Redis keeps a reply buffer
    /// per client), so a pipeline's replies do not allocate one afresh.
    spare: Vec<u8>,
    output_bytes: usize,
    calls_in_flight: usize,
    /// Request bytes of the calls in flight.
    request_bytes_in_flight: usize,
    /// Calls in flight allowed now: starts small, grows with completions.
    call_window: usize,
    /// The largest recent reply to a call (decaying), so that the calls in
    /// flight times it stays within the output bound.
    large_reply: usize,
    /// Nothing more will be read: EOF, or the stream lost its framing.
    read_closed: bool,
    /// Close once everything queued is sent (QUIT, a fatal protocol
    /// error, shutdown); no more requests run.
    closing: bool,
    /// The socket may hold bytes not read yet (edge-triggered polling
    /// will not report them again).
    read_pending: bool,
    /// The poller reported the peer's end closed: read on to the EOF.
    peer_hung_up: bool,
    writable_registered: bool,
    /// Queued in the reactor's work list.
    scheduled: bool,
    /// Listed for writing this turn.
    dirty: bool,
}

impl Conn {
    pub fn new(socket: Transport, session: Session, limits: Limits) -> Conn {
        Conn {
            socket,
            input: Vec::new(),
            input_start: 0,
            parser: Parser::new(limits),
            session,
            output: VecDeque::new(),
            tail: Vec::new(),
            tail_sent: 0,
            spare: Vec::new(),
            output_bytes: 0,
            calls_in_flight: 0,
            request_bytes_in_flight: 0,
            call_window: INITIAL_CALL_WINDOW,
            large_reply: 0,
            read_closed: false,
            closing: false,
            read_pending: true,
            peer_hung_up: false,
            writable_registered: false,
            scheduled: false,
            dirty: false,
        }
    }

    /// Marks the connection as on the work list; false if it already was.
    pub fn schedule(&mut self) -> bool {
        !std::mem::replace(&mut self.scheduled, true)
    }

    /// Takes the connection off the work list (it is being served).
    pub fn unschedule(&mut self) {
        self.scheduled = false;
    }

    /// Marks the connection as listed for writing; false if it already was.
    pub fn mark_dirty(&mut self) -> bool {
        !std::mem::replace(&mut self.dirty, true)
    }

    /// Takes the connection off the write list (it is being written).
    pub fn clear_dirty(&mut self) {
        self.dirty = false;
    }

    pub fn socket_mut(&mut self) -> &mut TcpStream {
        self.socket.socket_mut()
    }

    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The poller saw the socket readable (or hung up, or failed).
    pub fn on_readable(&mut self, hung_up: bool) {
        self.read_pending = true;
        self.peer_hung_up |= hung_up;
    }

    /// Whether reading could find something now.
    pub fn wants_read(&self) -> bool {
        self.read_pending && !self.read_closed
    }

    fn unparsed(&self) -> &[u8] {
        &self.input[self.input_start..]
    }

    fn consume(&mut self, bytes: usize) {
        self.input_start += bytes;
        debug_assert!(self.input_start <= self.input.len());
        if self.input_start >= self.input.len() {
            self.input.clear();
            self.input_start = 0;
            if self.input.capacity() > KEEP_CAPACITY {
                self.input = Vec::new();
            }
        }
    }

    /// Reads until the socket is drained, EOF, `max_input` unparsed bytes
    /// or `budget` bytes read, through the reactor's `scratch` buffer.
    ///
    /// A read shorter than `scratch` took everything the socket held, so it
    /// ends the loop without the extra `read` that would only say
    /// WouldBlock: with edge-triggered polling, new data raises a new event
    /// anyway. When the peer has hung up, reading goes on to the EOF, which
    /// no later event would report.
    pub fn read(&mut self, scratch: &mut [u8], max_input: usize, budget: usize) -> ReadOutcome {
        if self.input_start > 0 && self.input_start * 2 > self.input.len() {
            self.input.drain(..self.input_start);
            self.input_start = 0;
        }
        let mut taken = 0;
        loop {
            if self.input.len() - self.input_start >= max_input || taken >= budget {
                self.read_pending = true;
                return ReadOutcome::Stopped;
            }
            match self.socket.read(scratch) {
                Ok(0) => {
                    self.read_pending = false;
                    self.read_closed = true;
                    return ReadOutcome::Closed;
                }
                Ok(n) => {
                    taken += n;
                    self.input.extend_from_slice(&scratch[..n]);
                    // A short read drained a plain socket; TLS decrypts a
                    // record at a time, so it reads on to WouldBlock.
                    if n < scratch.len() && !self.peer_hung_up && !self.socket.is_tls() {
                        self.read_pending = false;
                        return ReadOutcome::Drained;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.read_pending = false;
                    return ReadOutcome::Drained;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.read_pending = false;
                    self.read_closed = true;
                    return ReadOutcome::Closed;
                }
            }
        }
    }

    /// Whether more requests may run now: not closing, and neither the
    /// unsent replies nor the pending calls are over their bounds. Calls in
    /// flight are bounded by `max_calls`, by the connection's window, by
    /// how many of its recent largest replies fit in `max_output`, and by
    /// the bytes of their requests (`max_output` too).
    pub fn can_run(&self, max_output: usize, max_calls: usize) -> bool {
        // One call always may; more only while their recent largest replies
        // would fit (a product, not a quotient: this runs per request).
        let replies_fit = self.calls_in_flight == 0
            || self.calls_in_flight.saturating_mul(self.large_reply) < max_output;
        !self.closing
            && self.output_bytes < max_output
            && self.calls_in_flight < max_calls.min(self.call_window)
            && replies_fit
            && self.request_bytes_in_flight < max_output
    }

    /// Moves the replies appended since the last segment into one.
    fn seal_tail(&mut self) {
        if self.tail_sent < self.tail.len() {
            let spare = std::mem::take(&mut self.spare);
            self.output.push_back(Segment::Ready {
                bytes: std::mem::replace(&mut self.tail, spare),
                sent: self.tail_sent,
            });
        } else {
            self.tail.clear();
        }
        self.tail_sent = 0;
    }

    /// Parses the next request under `limits` and hands it to `run`, with
    /// the session and the buffer its reply goes to. A protocol error is
    /// answered here; when the stream cannot be resynchronised the
    /// connection closes after the replies before it are out.
    pub fn run_next(
        &mut self,
        limits: Limits,
        run: impl FnOnce(&mut Session, &resp::Command, &mut Vec<u8>) -> Executed,
    ) -> Step {
        if self.closing {
            return Step::Idle;
        }
        if *self.parser.limits() != limits {
            self.parser.set_limits(limits);
        }
        let parsed = {
            let input = &self.input[self.input_start..];
            self.parser.parse(input)
        };
        match parsed {
            Ok(Some((request, used))) => {
                self.consume(used);
                let before = self.tail.len();
                let executed = run(&mut self.session, &request, &mut self.tail);
                self.output_bytes += self.tail.len() - before;
                match executed {
                    Executed::Answered => {}
                    Executed::Pending(call) => {
                        self.calls_in_flight += 1;
                        self.request_bytes_in_flight += used;
                        self.seal_tail();
                        self.output.push_back(Segment::Pending {
                            call,
                            request_bytes: used,
                        });
                    }
                    Executed::Close => self.close_after_output(),
                }
                Step::Ran
            }
            Ok(None) => {
                // A peer that closed mid-request will never finish it.
                if self.read_closed {
                    let rest = self.unparsed().len();
                    self.consume(rest);
                }
                Step::Idle
            }
            Err(error) => {
                self.protocol_error(&error);
                Step::Ran
            }
        }
    }

    fn protocol_error(&mut self, error: &ProtocolError) {
        let before = self.tail.len();
        resp::reply::protocol_error(&mut self.tail, error);
        self.output_bytes += self.tail.len() - before;
        match error.skip() {
            Some(skip) => self.consume(skip),
            None => {
                // Framing is lost: nothing after this can be read.
                let rest = self.unparsed().len();
                self.consume(rest);
                self.close_after_output();
            }
        }
    }

    /// Stops reading and running; the connection closes once the replies
    /// already owed are sent.
    pub fn close_after_output(&mut self) {
        self.closing = true;
        self.read_closed = true;
    }

    /// Fills a pending place with its reply. A reply that follows ready
    /// bytes joins them (and a small ready segment after it joins too), so
    /// a pipeline of pending writes ends up in one buffer, not one each.
    pub fn complete(&mut self, call: CallId, reply: &[u8]) {
        let Some((at, request_bytes)) =
            self.output.iter().enumerate().find_map(|(at, s)| match s {
                Segment::Pending {
                    call: c,
                    request_bytes,
                } if *c == call => Some((at, *request_bytes)),
                _ => None,
            })
        else {
            return;
        };
        self.output_bytes += reply.len();
        self.calls_in_flight -= 1;
        self.request_bytes_in_flight -= request_bytes;
        self.large_reply = reply.len().max(self.large_reply - self.large_reply / 8);
        self.call_window = (self.call_window + 1).min(1 << 16);
        if let Some(Segment::Ready { bytes, .. }) =
            at.checked_sub(1).and_then(|i| self.output.get_mut(i))
        {
            bytes.extend_from_slice(reply);
            self.output.remove(at);
            let next_is_small = matches!(
                self.output.get(at),
                Some(Segment::Ready { bytes, sent }) if bytes.len() - sent <= MERGE_LIMIT
            );
            if next_is_small {
                if let Some(Segment::Ready { bytes: next, sent }) = self.output.remove(at) {
                    if let Some(Segment::Ready { bytes, .. }) = self.output.get_mut(at - 1) {
                        bytes.extend_from_slice(&next[sent..]);
                    }
                }
            }
            return;
        }
        let mut bytes = std::mem::take(&mut self.spare);
        bytes.extend_from_slice(reply);
        self.output[at] = Segment::Ready { bytes, sent: 0 };
    }

    pub fn output_bytes(&self) -> usize {
        self.output_bytes
    }

    /// The input buffer's allocation.
    pub fn input_capacity(&self) -> usize {
        self.input.capacity()
    }

    /// The memory the unsent output really holds: every segment's
    /// allocation (its capacity, not its length) and bookkeeping, and the
    /// tail's bytes (the tail's spare capacity is at most its length, and
    /// is given back once it drains). Walks the segments: call it once per
    /// write, not per reply.
    pub fn held_bytes(&self) -> usize {
        let segments: usize = self
            .output
            .iter()
            .map(|segment| match segment {
                Segment::Ready { bytes, .. } => bytes.capacity() + SEGMENT_OVERHEAD,
                Segment::Pending { .. } => SEGMENT_OVERHEAD,
            })
            .sum();
        segments + self.tail.len()
    }

    /// Whether bytes are ready to be written: a ready segment first in
    /// line, or the tail with nothing pending before it.
    fn has_ready(&self) -> bool {
        match self.output.front() {
            Some(Segment::Ready { .. }) => true,
            Some(Segment::Pending { .. }) => false,
            None => self.tail_sent < self.tail.len(),
        }
    }

    /// Writes every ready segment in order, and the tail after them,
    /// stopping at the first pending one or when the socket would block.
    /// `Err`: the connection is dead.
    /// Drops the written segment at the front, keeping its buffer as the
    /// spare when that is small and no spare is kept yet.
    fn pop_written(&mut self) {
        if let Some(Segment::Ready { mut bytes, .. }) = self.output.pop_front() {
            if self.spare.capacity() == 0 && bytes.capacity() <= SPARE_SEGMENT_BYTES {
                bytes.clear();
                self.spare = bytes;
            }
        }
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.socket.flush_tls()?;
        loop {
            // Ready segments already written (or empty) go.
            while matches!(self.output.front(), Some(Segment::Ready { bytes, sent }) if *sent >= bytes.len())
            {
                self.pop_written();
            }
            if !self.has_ready() {
                return Ok(());
            }
            let mut slices = [IoSlice::new(&[]); MAX_WRITE_SEGMENTS];
            let mut count = 0;
            let mut with_tail = true;
            for segment in &self.output {
                match segment {
                    Segment::Ready { bytes, sent } if count < MAX_WRITE_SEGMENTS => {
                        slices[count] = IoSlice::new(&bytes[*sent..]);
                        count += 1;
                    }
                    _ => {
                        with_tail = false;
                        break;
                    }
                }
            }
            if with_tail && count < MAX_WRITE_SEGMENTS && self.tail_sent < self.tail.len() {
                slices[count] = IoSlice::new(&self.tail[self.tail_sent..]);
                count += 1;
            }
            let written = match self.socket.write_vectored(&slices[..count]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            self.output_bytes -= written;
            let mut left = written;
            while left > 0 {
                let Some(Segment::Ready { bytes, sent }) = self.output.front_mut() else {
                    break;
                };
                let take = left.min(bytes.len() - *sent);
                *sent += take;
                left -= take;
                if *sent == bytes.len() {
                    self.pop_written();
                }
            }
            if left > 0 {
                debug_assert!(self.output.is_empty(), "the tail is written last");
                self.tail_sent += left;
                debug_assert!(self.tail_sent <= self.tail.len());
                if self.tail_sent == self.tail.len() {
                    self.tail.clear();
                    self.tail_sent = 0;
                    if self.tail.capacity() > KEEP_CAPACITY {
                        self.tail = Vec::new();
                    }
                } else if self.tail_sent > KEEP_CAPACITY && self.tail_sent * 2 > self.tail.len() {
                    // A slow reader: drop the sent half rather than hold it
                    // until the rest goes too (amortised: each byte moves
                    // at most once per halving).
                    self.tail.drain(..self.tail_sent);
                    self.tail_sent = 0;
                }
            }
        }
    }

    /// Whether WRITABLE readiness is worth asking for: bytes are ready but
    /// the socket would not take them.
    pub fn wants_writable(&self) -> bool {
        self.has_ready() || self.socket.wants_write()
    }

    /// Records which interest is registered; true when it must change.
    pub fn writable_interest_changes(&mut self, wanted: bool) -> bool {
        let changes = wanted != self.writable_registered;
        self.writable_registered = wanted;
        changes
    }

    /// Whether the unparsed input may hold another whole request.
    pub fn has_input(&self) -> bool {
        !self.unparsed().is_empty()
    }

    /// Whether the connection has nothing left to do and should close.
    pub fn finished(&self) -> bool {
        let idle = self.output.is_empty()
            && self.tail.is_empty()
            && self.calls_in_flight == 0
            && !self.socket.wants_write();
        idle && (self.closing || (self.read_closed && !self.has_input()))
    }
}
