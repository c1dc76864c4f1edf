//! Reads and writes on one peer socket, with the bounds that keep what a
//! peer sends in its socket rather than in this node's memory.

use std::io::{self, Read, Write};

use crate::net::tls::Transport;
use crate::peer;

/// Bytes a peer socket is read by at a time, through [`super::Peers`]' scratch
/// buffer (kept, so no read zeroes a fresh one).
pub(super) const READ_CHUNK: usize = 64 * 1024;

/// Bytes read from one established peer link per event, at most. A peer
/// that sends faster than this node decodes waits in its socket, not in
/// this node's memory: a link's input holds at most one unfinished frame
/// and one turn's budget, and what the turn left unread is read the next.
pub(super) const READ_BUDGET: usize = 1 << 20;

/// Why [`read_available`] stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stopped {
    /// The socket had nothing more: the next event says when it has.
    Drained,
    /// The budget was spent; the socket may hold more, and no event will
    /// say so.
    Budget,
    /// The peer closed the connection (or it failed).
    Closed,
}

/// Reads into `into` until the socket would block or `budget` bytes came,
/// through `scratch`.
pub(super) fn read_available(
    socket: &mut Transport,
    into: &mut Vec<u8>,
    budget: usize,
    scratch: &mut [u8],
) -> Stopped {
    let mut taken = 0;
    loop {
        let room = budget.saturating_sub(taken).min(scratch.len());
        if room == 0 {
            return Stopped::Budget;
        }
        match socket.read(&mut scratch[..room]) {
            Ok(0) => return Stopped::Closed,
            Ok(n) => {
                taken += n;
                into.extend_from_slice(&scratch[..n]);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Stopped::Drained,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Stopped::Closed,
        }
    }
}

/// Bytes a link still in its handshake may have sent and not yet had
/// decoded: its two small handshake frames, no more.
pub(super) const HANDSHAKE_INPUT_MAX: usize = 2 * peer::HANDSHAKE_MAX_FRAME;

/// Writes from `buf[*sent..]`; `Ok(true)` when everything is out.
pub(super) fn write_pending(
    socket: &mut Transport,
    buf: &mut Vec<u8>,
    sent: &mut usize,
    writes: &mut u64,
) -> io::Result<bool> {
    socket.flush_tls()?;
    while *sent < buf.len() {
        *writes += 1;
        match socket.write(&buf[*sent..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => *sent += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.clear();
    *sent = 0;
    Ok(true)
}
