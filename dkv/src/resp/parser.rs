//! The incremental RESP2 request parser.
//!
//! A request is either a multibulk array of bulk strings
//! (`*<n>\r\n$<len>\r\n<bytes>\r\n...`) or, when its first byte is not `*`,
//! an inline line ended by `\n` (optionally `\r\n`) and split as
//! [`super::inline`] describes. Empty requests (`*0`, `*-1`, blank lines) are
//! skipped, as Redis skips them; their bytes are counted into the `consumed`
//! of the next command.
//!
//! Check-then-parse: nothing is copied until a whole request has arrived;
//! then its arguments are copied once into a [`Command`]. A [`Parser`] keeps
//! a small resumable state (where it stopped, the argument ranges found so
//! far), so a request arriving in many reads is scanned once, not once per
//! read. Integer header lines are re-read from their start, but they are at
//! most 22 bytes.
//!
//! Every limit is decided by bytes that are part of the request (a
//! header's value, the position of a line's end), never by how much
//! happens to be buffered, so the result does not depend on how the stream
//! was split into reads.

use super::command::Command;
use super::error::{ProtocolError, ProtocolErrorKind as Kind};
use super::inline::split_args;
use super::limits::Limits;

/// Parses one request from the front of `buf` with no saved state.
///
/// `Ok(Some((command, consumed)))`: a whole command occupies the first
/// `consumed` bytes (`consumed > 0`). `Ok(None)`: more bytes are needed.
/// Rescans `buf` from its start; a connection should keep a [`Parser`]
/// instead, which resumes where it stopped.
pub fn parse_command(
    buf: &[u8],
    limits: &Limits,
) -> Result<Option<(Command, usize)>, ProtocolError> {
    Parser::new(*limits).parse(buf)
}

/// An incremental request parser, one per connection.
///
/// Contract: call [`Parser::parse`] with the connection's unconsumed bytes.
/// Between calls the caller may only append to that buffer, except that
/// after `Ok(Some((_, consumed)))` it drops the first `consumed` bytes, and
/// after an error with [`ProtocolError::skip`] `Some(n)` it may drop the
/// first `n` bytes and go on. A caller that breaks the contract gets wrong
/// arguments, never a panic; [`Parser::reset`] starts afresh.
#[derive(Debug, Clone)]
pub struct Parser {
    limits: Limits,
    /// Bytes of `buf` already accounted for: skipped empty requests, and
    /// the parts of the current request already checked.
    pos: usize,
    state: State,
    /// Ranges of the arguments of the current multibulk request read so
    /// far; kept across requests so that a command costs no allocation here.
    args: Vec<(usize, usize)>,
}

#[derive(Debug, Clone, Default)]
enum State {
    /// The byte at `pos` starts a request.
    #[default]
    Idle,
    /// An inline line starts at `start`; `start..pos` holds no `\n`.
    Inline { start: usize },
    /// A multibulk request with `left` arguments still to come (those
    /// already read are in `Parser::args`). `bulk` is the length of the next
    /// argument once its `$<len>\r\n` header is read (its data is at `pos`).
    Multibulk { left: usize, bulk: Option<usize> },
}

/// Result of reading an integer header line (after its `*` or `$`).
enum IntLine {
    /// The line is not finished, and nothing so far rules it out.
    Incomplete,
    /// Not an integer as Redis's `string2ll` reads one, or no `\r\n`.
    Invalid,
    /// The value and the offset just past the `\r\n`.
    Done { value: i64, next: usize },
}

/// Reads `[-]digits\r\n` at `buf[start..]` with Redis's `string2ll` rules:
/// `0`, or an optional `-` then a digit 1-9 then digits, within `i64`.
/// A byte that cannot continue a valid line fails at once, so a line is
/// never scanned past 22 bytes.
fn int_line(buf: &[u8], start: usize) -> IntLine {
    let mut i = start;
    let negative = buf.get(i) == Some(&b'-');
    if negative {
        i += 1;
    }
    let limit: u64 = if negative { 1 << 63 } else { i64::MAX as u64 };
    let mut magnitude: u64 = match buf.get(i) {
        None => return IntLine::Incomplete,
        Some(&b'0') if !negative => 0,
        Some(&d @ b'1'..=b'9') => u64::from(d - b'0'),
        Some(_) => return IntLine::Invalid,
    };
    let leading_zero = magnitude == 0;
    i += 1;
    loop {
        match buf.get(i) {
            None => return IntLine::Incomplete,
            Some(&b'\r') => break,
            Some(&d @ b'0'..=b'9') if !leading_zero => {
                magnitude = match magnitude
                    .checked_mul(10)
                    .and_then(|m| m.checked_add(u64::from(d - b'0')))
                {
                    Some(m) if m <= limit => m,
                    _ => return IntLine::Invalid,
                };
            }
            Some(_) => return IntLine::Invalid,
        }
        i += 1;
    }
    match buf.get(i + 1) {
        None => IntLine::Incomplete,
        Some(&b'\n') => {
            let value = if negative {
                // magnitude <= 2^63, so this is exact (i64::MIN included).
                (magnitude as i64).wrapping_neg()
            } else {
                magnitude as i64
            };
            IntLine::Done { value, next: i + 2 }
        }
        Some(_) => IntLine::Invalid,
    }
}

impl Parser {
    /// A parser that enforces `limits`.
    pub fn new(limits: Limits) -> Parser {
        Parser {
            limits,
            pos: 0,
            state: State::Idle,
            args: Vec::new(),
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Changes the limits, e.g. to [`Limits::default`] once a client has
    /// authenticated. A request already under way keeps the checks already
    /// made; later headers are checked against the new limits.
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    /// Forgets any partial request: the next call starts at byte 0.
    pub fn reset(&mut self) {
        self.pos = 0;
        self.state = State::Idle;
        self.args.clear();
        if self.args.capacity() > MAX_KEPT_ARGS {
            self.args = Vec::new();
        }
    }

    /// Parses the next request from the front of `buf` (see the type's
    /// contract). `Ok(Some((command, consumed)))`: drop `consumed` bytes
    /// (always > 0, skipped empty requests included) and call again for the
    /// next pipelined command. `Ok(None)`: call again once more bytes have
    /// been appended. `Err`: see [`ProtocolError::skip`]; the parser is reset.
    pub fn parse(&mut self, buf: &[u8]) -> Result<Option<(Command, usize)>, ProtocolError> {
        if self.pos > buf.len() {
            self.reset();
        }
        let result = self.step(buf);
        if !matches!(result, Ok(None)) {
            self.reset();
        }
        result
    }

    fn step(&mut self, buf: &[u8]) -> Result<Option<(Command, usize)>, ProtocolError> {
        loop {
            match &mut self.state {
                State::Idle => match buf.get(self.pos) {
                    None => return Ok(None),
                    Some(&b'*') => {
                        if let Some(found) = self.whole_multibulk(buf) {
                            return Ok(Some(found));
                        }
                        match int_line(buf, self.pos + 1) {
                            IntLine::Incomplete => return Ok(None),
                            IntLine::Invalid => return Err(fatal(Kind::InvalidMultibulkLength)),
                            IntLine::Done { value, next } => {
                                self.pos = next;
                                if self.pos > self.limits.max_request_len {
                                    return Err(fatal(Kind::TooBigRequest));
                                }
                                if value <= 0 {
                                    continue; // `*0`, `*-1`: an empty request
                                }
                                let count = value as u64;
                                if count > self.limits.arg_cap() {
                                    return Err(fatal(match self.limits.unauthenticated {
                                        true => Kind::UnauthenticatedMultibulkLength,
                                        false => Kind::InvalidMultibulkLength,
                                    }));
                                }
                                // count <= i32::MAX: it fits a usize. Reserve no
                                // more than Redis does for a count not yet backed
                                // by data.
                                let left = count as usize;
                                self.args.reserve(left.min(MAX_KEPT_ARGS));
                                self.state = State::Multibulk { left, bulk: None };
                            }
                        }
                    }
                    Some(_) => {
                        self.state = State::Inline { start: self.pos };
                    }
                },
                State::Inline { start } => {
                    let start = *start;
                    let found = buf
                        .get(self.pos..)
                        .and_then(|rest| rest.iter().position(|&b| b == b'\n'));
                    let Some(offset) = found else {
                        self.pos = buf.len();
                        if buf.len() - start > self.limits.max_inline_len {
                            return Err(fatal(Kind::TooBigInlineRequest));
                        }
                        return Ok(None);
                    };
                    let newline = self.pos + offset;
                    let end = newline + 1;
                    if newline - start > self.limits.max_inline_len {
                        return Err(fatal(Kind::TooBigInlineRequest));
                    }
                    if end > self.limits.max_request_len {
                        return Err(fatal(Kind::TooBigRequest));
                    }
                    let mut line = buf.get(start..newline).unwrap_or_default();
                    if let Some(stripped) = line.strip_suffix(b"\r") {
                        line = stripped;
                    }
                    let Some(command) = split_args(line) else {
                        return Err(ProtocolError::skippable(Kind::UnbalancedQuotes, end));
                    };
                    if command.len() > self.limits.max_args {
                        return Err(ProtocolError::skippable(Kind::TooManyInlineArguments, end));
                    }
                    if command.is_empty() {
                        self.pos = end;
                        self.state = State::Idle;
                        continue; // a blank line
                    }
                    return Ok(Some((command, end)));
                }
                State::Multibulk { left, bulk } => match *bulk {
                    None => {
                        match buf.get(self.pos) {
                            None => return Ok(None),
                            Some(&b'$') => {}
                            Some(&other) => return Err(fatal(Kind::ExpectedDollar(other))),
                        }
                        let (value, next) = match int_line(buf, self.pos + 1) {
                            IntLine::Incomplete => return Ok(None),
                            IntLine::Invalid => return Err(fatal(Kind::InvalidBulkLength)),
                            IntLine::Done { value, next } => (value, next),
                        };
                        let len = match usize::try_from(value) {
                            Ok(len) if len <= self.limits.max_bulk_len => len,
                            Ok(_) if self.limits.unauthenticated => {
                                return Err(fatal(Kind::UnauthenticatedBulkLength))
                            }
                            Ok(_) => {
                                return Err(fatal(Kind::BulkOverLimit(self.limits.max_bulk_len)))
                            }
                            _ => return Err(fatal(Kind::InvalidBulkLength)),
                        };
                        match next.checked_add(len).and_then(|e| e.checked_add(2)) {
                            Some(end) if end <= self.limits.max_request_len => {}
                            _ => return Err(fatal(Kind::TooBigRequest)),
                        }
                        self.pos = next;
                        *bulk = Some(len);
                    }
                    Some(len) => {
                        // pos + len + 2 <= max_request_len was checked with
                        // the header, so this cannot overflow.
                        let data_end = self.pos + len;
                        match buf.get(data_end..data_end + 2) {
                            None => return Ok(None),
                            Some(b"\r\n") => {}
                            Some(_) => return Err(fatal(Kind::MissingBulkCrlf)),
                        }
                        self.args.push((self.pos, data_end));
                        self.pos = data_end + 2;
                        *bulk = None;
                        *left -= 1;
                        if *left == 0 {
                            let command = collect(buf, &self.args);
                            return Ok(Some((command, self.pos)));
                        }
                    }
                },
            }
        }
    }
}

impl Parser {
    /// The usual request in one pass: a multibulk request whose headers
    /// are whole counts (read by the state machine's own [`int_line`]),
    /// within every limit, and all of it in `buf` from `pos`. Anything else (not all
    /// here yet, an empty request, a header or a limit to judge) is `None`,
    /// and the state machine parses it from the same place instead, so
    /// this path decides nothing the state machine would decide otherwise
    /// (`proptests.rs` checks that whole and split inputs agree). It is
    /// tried once per request: when it fails the state machine moves past
    /// the request's first header.
    fn whole_multibulk(&mut self, buf: &[u8]) -> Option<(Command, usize)> {
        debug_assert!(self.args.is_empty(), "a request starts with no arguments");
        let found = self.scan_multibulk(buf);
        if found.is_none() {
            self.args.clear();
        }
        let end = found?;
        Some((collect(buf, &self.args), end))
    }

    /// [`Parser::whole_multibulk`]'s scan: fills `args`, returns the end.
    fn scan_multibulk(&mut self, buf: &[u8]) -> Option<usize> {
        let limits = &self.limits;
        let (count, mut at) = whole_count(buf, self.pos + 1)?;
        if count == 0 || count as u64 > limits.arg_cap() || at > limits.max_request_len {
            return None;
        }
        self.args.reserve(count.min(MAX_KEPT_ARGS));
        for _ in 0..count {
            if buf.get(at) != Some(&b'$') {
                return None;
            }
            let (len, data) = whole_count(buf, at + 1)?;
            let end = data.checked_add(len)?;
            if len > limits.max_bulk_len || end.checked_add(2)? > limits.max_request_len {
                return None;
            }
            if buf.get(end..end + 2)? != b"\r\n" {
                return None;
            }
            self.args.push((data, end));
            at = end + 2;
        }
        Some(at)
    }
}

/// A header's value read by [`int_line`] as a count or a length: whole,
/// and not negative; `None` for anything else.
fn whole_count(buf: &[u8], start: usize) -> Option<(usize, usize)> {
    match int_line(buf, start) {
        IntLine::Done { value, next } => Some((usize::try_from(value).ok()?, next)),
        IntLine::Incomplete | IntLine::Invalid => None,
    }
}

/// Argument slots reserved ahead of data, and kept between requests.
const MAX_KEPT_ARGS: usize = 1024;

fn fatal(kind: Kind) -> ProtocolError {
    ProtocolError::fatal(kind)
}

/// Copies the argument ranges (all within `buf`) into one [`Command`].
fn collect(buf: &[u8], args: &[(usize, usize)]) -> Command {
    let bytes = args.iter().map(|&(start, end)| end - start).sum();
    let mut command = Command::with_capacity(args.len(), bytes);
    for &(start, end) in args {
        command.push(buf.get(start..end).unwrap_or_default());
    }
    command
}
