//! [`ProtocolError`]: why a request could not be parsed, and whether the
//! connection can go on.
//!
//! The messages are Redis's own where Redis has one, so a client sees
//! `-ERR Protocol error: invalid bulk length` exactly as from redis-server.
//! Each error says whether the stream can be resynchronised: only an inline
//! request whose line was read whole can be skipped; for every other error
//! the reactor should reply and close the connection, as Redis does for all
//! protocol errors.

use std::fmt;

/// What was wrong with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolErrorKind {
    /// `*<n>` with `n` not an integer, or above `max_args`.
    #[error("Protocol error: invalid multibulk length")]
    InvalidMultibulkLength,
    /// `*<n>` above `max_args` under [`Limits::unauthenticated`](super::Limits).
    #[error("Protocol error: unauthenticated multibulk length")]
    UnauthenticatedMultibulkLength,
    /// An argument of a multibulk request did not start with `$`.
    #[error("Protocol error: expected '$', got '{}'", Printable(*.0))]
    ExpectedDollar(u8),
    /// `$<len>` with `len` not an integer, or negative.
    #[error("Protocol error: invalid bulk length")]
    InvalidBulkLength,
    /// `$<len>` above `max_bulk_len`, the bound of every key and value:
    /// Redis's words, then the limit's name and size.
    #[error("Protocol error: invalid bulk length (over --max-bulk-len, {0} bytes)")]
    BulkOverLimit(usize),
    /// `$<len>` above `max_bulk_len` under [`Limits::unauthenticated`](super::Limits).
    #[error("Protocol error: unauthenticated bulk length")]
    UnauthenticatedBulkLength,
    /// The `len` bytes of a bulk were not followed by `\r\n` (Redis does not
    /// check, and silently drops two bytes; dkv refuses).
    #[error("Protocol error: bulk data not followed by CRLF")]
    MissingBulkCrlf,
    /// An inline line longer than `max_inline_len`.
    #[error("Protocol error: too big inline request")]
    TooBigInlineRequest,
    /// An inline line with an unclosed quote, or a closing quote not followed
    /// by a space.
    #[error("Protocol error: unbalanced quotes in request")]
    UnbalancedQuotes,
    /// An inline line with more than `max_args` arguments.
    #[error("Protocol error: too many arguments in inline request")]
    TooManyInlineArguments,
    /// A request (with the empty requests before it) over `max_request_len`.
    #[error("Protocol error: too big request")]
    TooBigRequest,
}

/// A request that breaks the protocol or a [`Limits`](super::Limits) bound.
///
/// `Display` gives the message without the error code; a reply is
/// `-ERR <message>` (see [`reply::protocol_error`](super::reply::protocol_error)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[error("{kind}")]
pub struct ProtocolError {
    kind: ProtocolErrorKind,
    skip: Option<usize>,
}

impl ProtocolError {
    /// An error that loses the stream's framing.
    pub(crate) fn fatal(kind: ProtocolErrorKind) -> ProtocolError {
        ProtocolError { kind, skip: None }
    }

    /// An error in a request that ends `skip` bytes into the buffer.
    pub(crate) fn skippable(kind: ProtocolErrorKind, skip: usize) -> ProtocolError {
        ProtocolError {
            kind,
            skip: Some(skip),
        }
    }

    /// What was wrong.
    pub fn kind(&self) -> ProtocolErrorKind {
        self.kind
    }

    /// `Some(n)` when the bad request occupies exactly the first `n` bytes of
    /// the buffer that was parsed: drop them, reply with the error, and
    /// parsing can go on with the next request. `None` when the framing is
    /// lost: reply and close the connection. Redis closes in both cases; a
    /// server that wants to be strictly Redis-like may do the same.
    pub fn skip(&self) -> Option<usize> {
        self.skip
    }

    /// Whether the stream can be resynchronised (`skip().is_some()`).
    pub fn is_recoverable(&self) -> bool {
        self.skip.is_some()
    }
}

/// A byte shown as Redis's `%c` would, but escaped when not printable so
/// that an error line never carries a control byte.
struct Printable(u8);

impl fmt::Display for Printable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", std::ascii::escape_default(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_redis_words() {
        let e = ProtocolError::fatal(ProtocolErrorKind::ExpectedDollar(b'x'));
        assert_eq!(e.to_string(), "Protocol error: expected '$', got 'x'");
        assert!(!e.is_recoverable());
        let e = ProtocolError::fatal(ProtocolErrorKind::ExpectedDollar(b'\r'));
        assert_eq!(e.to_string(), "Protocol error: expected '$', got '\\r'");
        let e = ProtocolError::skippable(ProtocolErrorKind::UnbalancedQuotes, 7);
        assert_eq!(
            e.to_string(),
            "Protocol error: unbalanced quotes in request"
        );
        assert_eq!(e.skip(), Some(7));
    }
}
