//! [`ClientError`]: what a client request can fail with, as a stable
//! [`ErrorKind`] (the C ABI maps it one-to-one onto `dkv_status`) and a
//! message for people.

use std::fmt;

use crate::resp::Reply;

/// The class of a failure. The numbering is stable: it is the C ABI's
/// `dkv_status` for the same failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A bad argument: empty key, consistency level out of range, a
    /// command the server refused as malformed (`-ERR ...`).
    InvalidArgument,
    /// The quorum could not be reached (`-UNAVAILABLE ...`), or no node of
    /// the list could be reached at all.
    Unavailable,
    /// No complete reply within the request's timeout.
    Timeout,
    /// An operating-system error, or a server's storage error (`-IOERR`).
    Io,
    /// The server's reply was not valid RESP2 or not the expected shape.
    Protocol,
    /// Any other error reply from the server (e.g. `-NOAUTH`).
    Server,
}

impl ErrorKind {
    /// A short upper-case name, e.g. `UNAVAILABLE`.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::InvalidArgument => "INVALID_ARGUMENT",
            ErrorKind::Unavailable => "UNAVAILABLE",
            ErrorKind::Timeout => "TIMEOUT",
            ErrorKind::Io => "IO",
            ErrorKind::Protocol => "PROTOCOL",
            ErrorKind::Server => "SERVER",
        }
    }
}

/// A failed client request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientError {
    kind: ErrorKind,
    message: String,
}

impl ClientError {
    /// An error of `kind` saying `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> ClientError {
        ClientError {
            kind,
            message: message.into(),
        }
    }

    /// Its class.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// What went wrong, for people.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The error a server's error reply stands for: `UNAVAILABLE` is
    /// [`ErrorKind::Unavailable`], `TIMEOUT` (a request read after its
    /// deadline, applied nowhere) [`ErrorKind::Timeout`], `ERR`
    /// [`ErrorKind::InvalidArgument`], `IOERR` [`ErrorKind::Io`], anything
    /// else [`ErrorKind::Server`].
    pub fn from_server(code: &str, message: &str) -> ClientError {
        let kind = match code {
            "UNAVAILABLE" => ErrorKind::Unavailable,
            "TIMEOUT" => ErrorKind::Timeout,
            "ERR" => ErrorKind::InvalidArgument,
            "IOERR" => ErrorKind::Io,
            _ => ErrorKind::Server,
        };
        let text = if message.is_empty() {
            code.to_string()
        } else {
            format!("{code} {message}")
        };
        ClientError::new(kind, format!("server: {text}"))
    }

    /// A reply of the wrong shape for the command that was sent.
    pub(crate) fn unexpected(command: &str, reply: &Reply) -> ClientError {
        ClientError::new(
            ErrorKind::Protocol,
            format!("unexpected reply to {command}: {reply:?}"),
        )
    }

    pub(crate) fn from_io(context: &str, error: &std::io::Error) -> ClientError {
        let kind = match error.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => ErrorKind::Timeout,
            _ => ErrorKind::Io,
        };
        ClientError::new(kind, format!("{context}: {error}"))
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.name(), self.message)
    }
}

impl std::error::Error for ClientError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_codes_map_to_stable_kinds() {
        let e = ClientError::from_server("UNAVAILABLE", "1 of 2 required replicas answered");
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        assert_eq!(
            e.message(),
            "server: UNAVAILABLE 1 of 2 required replicas answered"
        );
        assert_eq!(
            ClientError::from_server("ERR", "syntax").kind(),
            ErrorKind::InvalidArgument
        );
        assert_eq!(
            ClientError::from_server("IOERR", "disk").kind(),
            ErrorKind::Io
        );
        assert_eq!(
            ClientError::from_server("NOAUTH", "").kind(),
            ErrorKind::Server
        );
        assert_eq!(
            ClientError::from_server("NOAUTH", "").message(),
            "server: NOAUTH"
        );
        let timeout = std::io::Error::from(std::io::ErrorKind::WouldBlock);
        assert_eq!(
            ClientError::from_io("read", &timeout).kind(),
            ErrorKind::Timeout
        );
    }
}
