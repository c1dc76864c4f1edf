//! The one renderer of data commands: the node's results for each key of
//! a command, turned into the command's RESP reply.
//!
//! A command over several keys (`MGET`, `DEL k1 k2`, `MSET`) is one node
//! operation per key; any failure fails the whole command (the client
//! learns the quorum was not met and can retry, as with a single key).

use crate::node::{OpReply, OpResult};
use crate::resp::reply;

/// What a data command asked for, and so how its results combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DataKind {
    Get,
    Set,
    Del,
    Exists,
    MGet,
    MSet,
    /// `FLUSHDB`: `+OK`.
    Flush,
    /// `SCAN`: the cursor and the page.
    Scan,
    /// `KEYS`: the keys.
    Keys,
    /// `RANDOMKEY`: a key or nil.
    RandomKey,
    /// `DBSIZE`: the count.
    Count,
    /// `INCR` and its kin: the counter's value.
    Counter,
}

fn value(result: &OpResult) -> Option<&[u8]> {
    match result {
        Ok(OpReply::Value { value, .. }) => value.as_deref(),
        _ => None,
    }
}

/// Appends the reply of a finished data command. `results` holds one
/// result per key, in the command's order.
pub(crate) fn render(kind: DataKind, resp3: bool, results: &[OpResult], out: &mut Vec<u8>) {
    if let Some(Err(error)) = results.iter().find(|r| r.is_err()) {
        reply::error_line(out, &error.to_string());
        return;
    }
    match kind {
        DataKind::Get => match results.first().and_then(value) {
            Some(v) => reply::bulk(out, v),
            None => reply::null(out, resp3),
        },
        DataKind::Set | DataKind::MSet | DataKind::Flush => reply::ok(out),
        DataKind::Scan | DataKind::Keys | DataKind::RandomKey => {
            let (keys, cursor) = match results.first() {
                Some(Ok(OpReply::Keys { keys, cursor })) => (keys.as_slice(), *cursor),
                _ => (&[][..], 0),
            };
            if kind == DataKind::RandomKey {
                match keys.first() {
                    Some(key) => reply::bulk(out, key),
                    None => reply::null(out, resp3),
                }
                return;
            }
            if kind == DataKind::Scan {
                reply::array(out, 2);
                reply::bulk(out, cursor.to_string().as_bytes());
            }
            reply::array(out, keys.len());
            for key in keys {
                reply::bulk(out, key);
            }
        }
        DataKind::Counter => render_counted(results.first(), out),
        DataKind::Count => {
            let count = match results.first() {
                Some(Ok(OpReply::Count(count))) => *count,
                _ => 0,
            };
            reply::integer(out, count as i64);
        }
        DataKind::Del => {
            let deleted = results
                .iter()
                .filter(|r| matches!(r, Ok(OpReply::Written { existed: true, .. })))
                .count();
            reply::integer(out, deleted as i64);
        }
        DataKind::Exists => {
            let found = results.iter().filter(|r| value(r).is_some()).count();
            reply::integer(out, found as i64);
        }
        DataKind::MGet => {
            reply::array(out, results.len());
            for result in results {
                match value(result) {
                    Some(v) => reply::bulk(out, v),
                    None => reply::null(out, resp3),
                }
            }
        }
    }
}

/// An add's reply: `INCRBYFLOAT`'s value as a bulk string, the others'
/// as an integer (wider than `i64` only when increments through several
/// nodes at once passed its range together).
pub(crate) fn render_counted(result: Option<&OpResult>, out: &mut Vec<u8>) {
    match result {
        Some(Ok(OpReply::Counted { value, float: true })) => reply::bulk(out, value),
        Some(Ok(OpReply::Counted {
            value,
            float: false,
        })) => {
            out.push(b':');
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
        Some(Err(error)) => reply::error_line(out, &error.to_string()),
        _ => reply::error_line(out, "ERR the add did not answer"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::OpError;
    use crate::version::Version;

    fn found(v: &str) -> OpResult {
        Ok(OpReply::Value {
            value: Some(v.as_bytes().to_vec()),
            version: Some(Version::default()),
            expires_at: None,
        })
    }

    fn missing() -> OpResult {
        Ok(OpReply::Value {
            value: None,
            version: None,
            expires_at: None,
        })
    }

    fn written(existed: bool) -> OpResult {
        Ok(OpReply::Written {
            existed,
            version: Version::default(),
        })
    }

    fn rendered(kind: DataKind, resp3: bool, results: &[OpResult]) -> String {
        let mut out = Vec::new();
        render(kind, resp3, results, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn every_kind_renders_as_redis_replies() {
        assert_eq!(rendered(DataKind::Get, false, &[found("v")]), "$1\r\nv\r\n");
        assert_eq!(rendered(DataKind::Get, false, &[missing()]), "$-1\r\n");
        assert_eq!(rendered(DataKind::Get, true, &[missing()]), "_\r\n");
        assert_eq!(rendered(DataKind::Set, false, &[written(true)]), "+OK\r\n");
        assert_eq!(
            rendered(DataKind::Del, false, &[written(true), written(false)]),
            ":1\r\n"
        );
        assert_eq!(
            rendered(
                DataKind::Exists,
                false,
                &[found("a"), missing(), found("b")]
            ),
            ":2\r\n"
        );
        assert_eq!(
            rendered(DataKind::MGet, false, &[found("a"), missing()]),
            "*2\r\n$1\r\na\r\n$-1\r\n"
        );
    }

    #[test]
    fn any_failure_fails_the_whole_command() {
        let unavailable = Err(OpError::Unavailable {
            answered: 1,
            required: 2,
            replicas: 3,
            reachable: 1,
        });
        assert_eq!(
            rendered(DataKind::MGet, false, &[found("a"), unavailable]),
            "-UNAVAILABLE 1 of 2 required replicas answered (3 replicas, 1 reachable)\r\n"
        );
    }
}
