//! The RESP2 reply writer: append-only encoding into a `Vec<u8>`.
//!
//! Free functions write one frame (or an array header) at the end of an
//! output buffer, with no allocation beyond the buffer's own growth;
//! integers and lengths are formatted on the stack. [`Reply`] is the same
//! as a value, for code that builds a reply before it is written.
//!
//! Invariant: whatever the arguments, the output is well-formed RESP2.
//! Simple strings and error lines cannot carry `\r` or `\n`, so those bytes
//! are replaced with spaces, as Redis does for error messages.

use super::error::ProtocolError;

/// Error code prefixes used by dkv (the first word of an error line).
pub mod code {
    /// A generic error, e.g. `ERR unknown command 'FOO'`.
    pub const ERR: &str = "ERR";
    /// `AUTH` with a wrong password.
    pub const WRONGPASS: &str = "WRONGPASS";
    /// A command sent before `AUTH` on a protected node.
    pub const NOAUTH: &str = "NOAUTH";
    /// A quorum that could not be reached.
    pub const UNAVAILABLE: &str = "UNAVAILABLE";
}

/// Appends `+<text>\r\n`.
pub fn simple(out: &mut Vec<u8>, text: impl AsRef<[u8]>) {
    out.push(b'+');
    push_line(out, text.as_ref());
}

/// Appends `+OK\r\n`.
pub fn ok(out: &mut Vec<u8>) {
    out.extend_from_slice(b"+OK\r\n");
}

/// Appends `-<code> <message>\r\n`, e.g. `error(out, code::ERR, "syntax error")`.
/// An empty message gives `-<code>\r\n`.
pub fn error(out: &mut Vec<u8>, code: &str, message: impl AsRef<[u8]>) {
    let message = message.as_ref();
    out.push(b'-');
    if message.is_empty() {
        push_line(out, code.as_bytes());
    } else {
        push_text(out, code.as_bytes());
        out.push(b' ');
        push_line(out, message);
    }
}

/// Appends the reply Redis sends for a protocol error:
/// `-ERR Protocol error: ...\r\n`.
pub fn protocol_error(out: &mut Vec<u8>, err: &ProtocolError) {
    error(out, code::ERR, err.to_string());
}

/// Appends `:<value>\r\n`.
pub fn integer(out: &mut Vec<u8>, value: i64) {
    out.push(b':');
    push_i64(out, value);
    out.extend_from_slice(b"\r\n");
}

/// Appends `$<len>\r\n<data>\r\n`.
pub fn bulk(out: &mut Vec<u8>, data: &[u8]) {
    out.reserve(data.len() + 16);
    out.push(b'$');
    push_u64(out, data.len() as u64);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// Appends `$-1\r\n`, the null bulk string (`GET` of a missing key).
pub fn null_bulk(out: &mut Vec<u8>) {
    out.extend_from_slice(b"$-1\r\n");
}

/// Appends a missing value: `$-1\r\n` in RESP2, `_\r\n` in RESP3.
pub fn null(out: &mut Vec<u8>, resp3: bool) {
    if resp3 {
        out.extend_from_slice(b"_\r\n");
    } else {
        null_bulk(out);
    }
}

/// Appends the header of `pairs` key/value pairs: a map (`%<pairs>`) in
/// RESP3, a flat array of `2 * pairs` frames in RESP2, as Redis replies.
pub fn map(out: &mut Vec<u8>, pairs: usize, resp3: bool) {
    if resp3 {
        out.push(b'%');
        push_u64(out, pairs as u64);
        out.extend_from_slice(b"\r\n");
    } else {
        array(out, 2 * pairs);
    }
}

/// Appends an error from a whole line, `CODE message` (as `Display` of the
/// node's errors and the server's messages read).
pub fn error_line(out: &mut Vec<u8>, line: &str) {
    let (code, message) = line.split_once(' ').unwrap_or((line, ""));
    error(out, code, message);
}

/// Appends `*<len>\r\n`; the caller then appends `len` frames.
pub fn array(out: &mut Vec<u8>, len: usize) {
    out.push(b'*');
    push_u64(out, len as u64);
    out.extend_from_slice(b"\r\n");
}

/// Appends `*-1\r\n`, the null array.
pub fn null_array(out: &mut Vec<u8>) {
    out.extend_from_slice(b"*-1\r\n");
}

/// A reply as a value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Reply {
    /// `+<text>`.
    Simple(String),
    /// `-<code> <message>`.
    Error {
        /// The first word, e.g. [`code::ERR`].
        code: String,
        /// The rest of the line.
        message: String,
    },
    /// `:<value>`.
    Integer(i64),
    /// `$<len>\r\n<data>`.
    Bulk(Vec<u8>),
    /// `$-1`.
    NullBulk,
    /// `*<len>` then the elements.
    Array(Vec<Reply>),
    /// `*-1`.
    NullArray,
}

impl Reply {
    /// `+OK`.
    pub fn ok() -> Reply {
        Reply::Simple("OK".to_owned())
    }

    /// `-<code> <message>`.
    pub fn error(code: &str, message: impl Into<String>) -> Reply {
        Reply::Error {
            code: code.to_owned(),
            message: message.into(),
        }
    }

    /// Appends the encoding of this reply to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Reply::Simple(text) => simple(out, text),
            Reply::Error { code, message } => error(out, code, message),
            Reply::Integer(value) => integer(out, *value),
            Reply::Bulk(data) => bulk(out, data),
            Reply::NullBulk => null_bulk(out),
            Reply::Array(items) => {
                array(out, items.len());
                for item in items {
                    item.encode(out);
                }
            }
            Reply::NullArray => null_array(out),
        }
    }

    /// The encoding of this reply in a new buffer.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }
}

impl From<ProtocolError> for Reply {
    fn from(err: ProtocolError) -> Reply {
        Reply::error(code::ERR, err.to_string())
    }
}

/// Appends `text` with `\r` and `\n` replaced by spaces.
fn push_text(out: &mut Vec<u8>, text: &[u8]) {
    if text.iter().any(|&b| b == b'\r' || b == b'\n') {
        out.extend(text.iter().map(|&b| match b {
            b'\r' | b'\n' => b' ',
            other => other,
        }));
    } else {
        out.extend_from_slice(text);
    }
}

/// Appends `text` (sanitised) and `\r\n`.
fn push_line(out: &mut Vec<u8>, text: &[u8]) {
    push_text(out, text);
    out.extend_from_slice(b"\r\n");
}

/// Appends the decimal digits of `value` without allocating.
fn push_u64(out: &mut Vec<u8>, mut value: u64) {
    if value < 10 {
        out.push(b'0' + value as u8);
        return;
    }
    let mut digits = [0u8; 20]; // u64::MAX has 20 digits
    let mut at = digits.len();
    while value > 0 {
        at -= 1;
        digits[at] = b'0' + (value % 10) as u8;
        value /= 10;
    }
    out.extend_from_slice(&digits[at..]);
}

/// Appends `value` in decimal, `-` first when negative (`i64::MIN` included).
fn push_i64(out: &mut Vec<u8>, value: i64) {
    if value < 0 {
        out.push(b'-');
    }
    push_u64(out, value.unsigned_abs());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resp::{parse_command, Limits, ProtocolErrorKind};

    fn written(f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let mut out = b"prefix".to_vec();
        f(&mut out);
        assert!(out.starts_with(b"prefix"), "writers only append");
        out.split_off(6)
    }

    #[test]
    fn simple_strings_and_errors() {
        assert_eq!(written(ok), b"+OK\r\n");
        assert_eq!(written(|o| simple(o, "PONG")), b"+PONG\r\n");
        assert_eq!(written(|o| simple(o, "a\r\nb")), b"+a  b\r\n");
        assert_eq!(
            written(|o| error(o, code::ERR, "unknown command 'FOO'")),
            b"-ERR unknown command 'FOO'\r\n"
        );
        assert_eq!(
            written(|o| error(o, code::WRONGPASS, "invalid username-password pair")),
            b"-WRONGPASS invalid username-password pair\r\n"
        );
        assert_eq!(
            written(|o| error(o, code::NOAUTH, "Authentication required.")),
            b"-NOAUTH Authentication required.\r\n"
        );
        assert_eq!(
            written(|o| error(o, code::UNAVAILABLE, "2 of 3 replicas\nanswered")),
            b"-UNAVAILABLE 2 of 3 replicas answered\r\n"
        );
        assert_eq!(written(|o| error(o, code::ERR, "")), b"-ERR\r\n");
    }

    #[test]
    fn protocol_errors_reply_like_redis() {
        let err = parse_command(b"*1\r\n$x\r\n", &Limits::default()).unwrap_err();
        assert_eq!(err.kind(), ProtocolErrorKind::InvalidBulkLength);
        assert_eq!(
            written(|o| protocol_error(o, &err)),
            b"-ERR Protocol error: invalid bulk length\r\n"
        );
        assert_eq!(
            Reply::from(err).to_bytes(),
            b"-ERR Protocol error: invalid bulk length\r\n"
        );
    }

    #[test]
    fn integers_including_extremes() {
        for (value, text) in [
            (0, "0"),
            (7, "7"),
            (10, "10"),
            (-1, "-1"),
            (1234567890, "1234567890"),
            (i64::MAX, "9223372036854775807"),
            (i64::MIN, "-9223372036854775808"),
        ] {
            assert_eq!(
                written(|o| integer(o, value)),
                format!(":{text}\r\n").as_bytes()
            );
        }
    }

    #[test]
    fn bulks_arrays_and_nulls() {
        assert_eq!(written(|o| bulk(o, b"")), b"$0\r\n\r\n");
        assert_eq!(written(|o| bulk(o, b"a\r\nb\x00")), b"$5\r\na\r\nb\x00\r\n");
        assert_eq!(written(null_bulk), b"$-1\r\n");
        assert_eq!(written(null_array), b"*-1\r\n");
        assert_eq!(written(|o| array(o, 0)), b"*0\r\n");
        let reply = Reply::Array(vec![
            Reply::Bulk(b"v".to_vec()),
            Reply::NullBulk,
            Reply::Integer(-3),
            Reply::ok(),
            Reply::error(code::ERR, "bad"),
            Reply::Array(vec![]),
            Reply::NullArray,
        ]);
        assert_eq!(
            reply.to_bytes(),
            b"*7\r\n$1\r\nv\r\n$-1\r\n:-3\r\n+OK\r\n-ERR bad\r\n*0\r\n*-1\r\n"
        );
    }

    #[test]
    fn a_bulk_array_reply_parses_back_as_a_request() {
        let mut out = Vec::new();
        array(&mut out, 3);
        for arg in [&b"SET"[..], b"k\r\n", b""] {
            bulk(&mut out, arg);
        }
        let (command, used) = parse_command(&out, &Limits::default()).unwrap().unwrap();
        assert_eq!(used, out.len());
        assert_eq!(command.to_vecs(), [&b"SET"[..], b"k\r\n", b""]);
    }
}
