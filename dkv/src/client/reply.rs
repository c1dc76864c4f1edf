//! The client's side of RESP2: an incremental reply parser.
//!
//! [`parse_reply`] looks at the bytes received so far and returns either a
//! whole [`Reply`] with the number of bytes it took, or `None` when more
//! bytes are needed. It never panics and never allocates more than the
//! input holds: a bulk or array is only built once its header's length has
//! been checked against [`ReplyLimits`] and (for bulks) its data has fully
//! arrived. Splitting a stream anywhere gives the same replies.

use crate::resp::Reply;

/// Bounds on what a server may send; a reply past them is a protocol error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyLimits {
    /// Longest bulk string.
    pub max_bulk_len: usize,
    /// Most elements in one array.
    pub max_array_len: usize,
    /// Deepest nesting of arrays.
    pub max_depth: usize,
    /// Longest simple string, error or integer line.
    pub max_line_len: usize,
}

impl Default for ReplyLimits {
    fn default() -> Self {
        ReplyLimits {
            max_bulk_len: 512 << 20,
            max_array_len: 1 << 24,
            max_depth: 8,
            max_line_len: 64 << 10,
        }
    }
}

/// A reply that is not valid RESP2 (or exceeds the limits).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("protocol error in reply: {0}")]
pub struct ReplyError(pub String);

fn bad(message: impl Into<String>) -> ReplyError {
    ReplyError(message.into())
}

/// Parses one reply from the start of `buf`: `Ok(Some((reply, used)))`,
/// `Ok(None)` when `buf` holds only part of it, or an error.
pub fn parse_reply(buf: &[u8], limits: &ReplyLimits) -> Result<Option<(Reply, usize)>, ReplyError> {
    let mut at = 0;
    match parse_at(buf, &mut at, limits, 0)? {
        Some(reply) => Ok(Some((reply, at))),
        None => Ok(None),
    }
}

/// The line starting at `*at` (without `\r\n`), advancing past it.
fn line<'a>(
    buf: &'a [u8],
    at: &mut usize,
    limits: &ReplyLimits,
) -> Result<Option<&'a [u8]>, ReplyError> {
    let rest = buf.get(*at..).unwrap_or_default();
    match rest.iter().position(|&b| b == b'\n') {
        Some(end) => {
            if end == 0 || rest[end - 1] != b'\r' {
                return Err(bad("line not terminated by CRLF"));
            }
            if end - 1 > limits.max_line_len {
                return Err(bad("line too long"));
            }
            *at += end + 1;
            Ok(Some(&rest[..end - 1]))
        }
        None if rest.len() > limits.max_line_len + 2 => Err(bad("line too long")),
        None => Ok(None),
    }
}

fn integer(text: &[u8]) -> Result<i64, ReplyError> {
    std::str::from_utf8(text)
        .ok()
        .and_then(|t| t.parse::<i64>().ok())
        .ok_or_else(|| bad(format!("bad integer {:?}", String::from_utf8_lossy(text))))
}

fn parse_at(
    buf: &[u8],
    at: &mut usize,
    limits: &ReplyLimits,
    depth: usize,
) -> Result<Option<Reply>, ReplyError> {
    let Some(&kind) = buf.get(*at) else {
        return Ok(None);
    };
    let start = *at;
    *at += 1;
    let Some(text) = line(buf, at, limits)? else {
        *at = start;
        return Ok(None);
    };
    let reply = match kind {
        b'+' => Reply::Simple(String::from_utf8_lossy(text).into_owned()),
        b'-' => {
            let text = String::from_utf8_lossy(text);
            let (code, message) = text.split_once(' ').unwrap_or((&text, ""));
            Reply::error(code, message)
        }
        b':' => Reply::Integer(integer(text)?),
        b'$' => {
            let len = integer(text)?;
            if len == -1 {
                return Ok(Some(Reply::NullBulk));
            }
            let len = usize::try_from(len).map_err(|_| bad("negative bulk length"))?;
            if len > limits.max_bulk_len {
                return Err(bad(format!("bulk of {len} bytes is over the limit")));
            }
            let Some(data) = buf.get(*at..).and_then(|rest| rest.get(..len + 2)) else {
                *at = start;
                return Ok(None);
            };
            if &data[len..] != b"\r\n" {
                return Err(bad("bulk not terminated by CRLF"));
            }
            *at += len + 2;
            Reply::Bulk(data[..len].to_vec())
        }
        b'*' => {
            let len = integer(text)?;
            if len == -1 {
                return Ok(Some(Reply::NullArray));
            }
            let len = usize::try_from(len).map_err(|_| bad("negative array length"))?;
            if len > limits.max_array_len {
                return Err(bad(format!("array of {len} elements is over the limit")));
            }
            if depth >= limits.max_depth {
                return Err(bad("arrays nested too deeply"));
            }
            // Every element takes at least 3 bytes (`:0\r\n` is 4, `+\r\n`
            // is 3): never reserve more than the buffer could hold.
            let remaining = buf.len().saturating_sub(*at);
            let mut items = Vec::with_capacity(len.min(remaining / 3));
            for _ in 0..len {
                match parse_at(buf, at, limits, depth + 1)? {
                    Some(item) => items.push(item),
                    None => {
                        *at = start;
                        return Ok(None);
                    }
                }
            }
            Reply::Array(items)
        }
        other => {
            return Err(bad(format!(
                "unknown reply type byte 0x{other:02x} (this client speaks RESP2)"
            )))
        }
    };
    Ok(Some(reply))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(bytes: &[u8]) -> Result<Option<(Reply, usize)>, ReplyError> {
        parse_reply(bytes, &ReplyLimits::default())
    }

    #[test]
    fn every_reply_type_round_trips_through_the_writer() {
        let replies = [
            Reply::ok(),
            Reply::error("UNAVAILABLE", "1 of 2 required replicas answered"),
            Reply::error("ERR", ""),
            Reply::Integer(-42),
            Reply::Integer(i64::MAX),
            Reply::Bulk(b"a\r\nb\x00".to_vec()),
            Reply::Bulk(Vec::new()),
            Reply::NullBulk,
            Reply::NullArray,
            Reply::Array(vec![]),
            Reply::Array(vec![
                Reply::Bulk(b"v".to_vec()),
                Reply::NullBulk,
                Reply::Array(vec![Reply::Integer(1), Reply::ok()]),
            ]),
        ];
        for reply in replies {
            let bytes = reply.to_bytes();
            assert_eq!(parse(&bytes), Ok(Some((reply.clone(), bytes.len()))));
        }
    }

    #[test]
    fn split_anywhere_waits_then_parses_the_same() {
        let mut stream = Vec::new();
        let replies = [
            Reply::Array(vec![Reply::Bulk(b"xyz".to_vec()), Reply::NullBulk]),
            Reply::error("ERR", "bad"),
            Reply::Bulk(vec![7; 300]),
        ];
        for r in &replies {
            r.encode(&mut stream);
        }
        let first = replies[0].to_bytes().len();
        for cut in 0..first {
            assert_eq!(parse(&stream[..cut]), Ok(None), "cut at {cut}");
        }
        let mut at = 0;
        for r in &replies {
            let (got, used) = parse(&stream[at..]).unwrap().unwrap();
            assert_eq!(&got, r);
            at += used;
        }
        assert_eq!(at, stream.len());
    }

    #[test]
    fn malformed_and_oversized_replies_are_errors() {
        let limits = ReplyLimits {
            max_bulk_len: 10,
            max_array_len: 3,
            max_depth: 2,
            max_line_len: 16,
        };
        for bytes in [
            &b"?x\r\n"[..],
            b":12a\r\n",
            b"+ok\n",
            b"$11\r\n",
            b"$-2\r\n",
            b"*4\r\n",
            b"*-5\r\n",
            b"$3\r\nabcde",
            b"*1\r\n*1\r\n*1\r\n:1\r\n",
            b"+aaaaaaaaaaaaaaaaaaaaaaaaa",
        ] {
            assert!(
                parse_reply(bytes, &limits).is_err(),
                "{:?}",
                String::from_utf8_lossy(bytes)
            );
        }
    }

    #[test]
    fn a_huge_declared_array_allocates_nothing_up_front() {
        // 16M elements declared, none present: incomplete, no 16M Vec.
        assert_eq!(parse(b"*16000000\r\n"), Ok(None));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        for _ in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 24) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|i| b"*$:+-\r\n0123-x"[((seed >> (i * 2)) % 13) as usize])
                .collect();
            let _ = parse(&bytes);
        }
    }
}
