//! Programs: the data commands that read before they write (`SET NX`,
//! `GETDEL`, `EXPIRE`, `APPEND`, `INCR`, `RENAME`, ...) or that compute
//! their reply from what they read (`TTL`, `STRLEN`, `GETRANGE`, `LCS`).
//!
//! A [`Program`] names the keys it reads; the executor reads them at the
//! request's read level, hands the values to [`Program::decide`], writes
//! what it decided at the write level and sends the reply it rendered (or
//! the first write's error). The executor runs the programs touching one
//! key one after another, so on one coordinator each is atomic; two
//! coordinators can interleave (see docs/commands.md).
//!
//! Programs own their arguments: they outlive the request buffer.

use super::parse::{ArgList, Command};
use super::strings::{self, BitUnit, MAX_STRING_LEN};
use crate::counter::Delta;
use crate::resp::reply;

/// What a read found: the live value and its expiry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Found {
    /// The value; `None` when missing, deleted or expired.
    pub value: Option<Vec<u8>>,
    /// When it expires (unix ms), if it does.
    pub expires_at: Option<u64>,
}

/// A write a program decided on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Write {
    /// Store a value with an expiry (or none).
    Put {
        key: Vec<u8>,
        value: Vec<u8>,
        expires_at: Option<u64>,
    },
    /// Delete.
    Delete { key: Vec<u8> },
    /// Add to a counter; the reply is the value the add leaves.
    Add { key: Vec<u8>, delta: Delta },
}

impl Write {
    /// The key written.
    pub fn key(&self) -> &[u8] {
        match self {
            Write::Put { key, .. } | Write::Delete { key } | Write::Add { key, .. } => key,
        }
    }
}

/// What a program does once its reads are in: the writes, and the reply
/// to send once they are acknowledged.
#[derive(Debug, Default)]
pub(crate) struct Decision {
    pub writes: Vec<Write>,
    pub reply: Vec<u8>,
}

/// The expiry a write leaves: none, an absolute time, or the one the key
/// has (`KEEPTTL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NewExpiry {
    None,
    At(u64),
    Keep,
}

/// `SET`'s condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Condition {
    /// `NX`: only if the key is missing.
    Missing,
    /// `XX`: only if it exists.
    Present,
}

/// `EXPIRE`'s options, all of which must hold: `NX` (the key has no
/// expiry), `XX` (it has one), `GT` (the new expiry is later; none counts
/// as later than any), `LT` (it is earlier).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct ExpireCondition {
    pub nx: bool,
    pub xx: bool,
    pub gt: bool,
    pub lt: bool,
}

impl ExpireCondition {
    /// Whether a key whose expiry is `current` may take `at`.
    fn allows(self, current: Option<u64>, at: i64) -> bool {
        // No expiry counts as later than any time.
        let current_ms = current.map_or(i128::MAX, i128::from);
        let at = i128::from(at);
        (!self.nx || current.is_none())
            && (!self.xx || current.is_some())
            && (!self.gt || at > current_ms)
            && (!self.lt || at < current_ms)
    }
}

/// How `TTL` and its relatives answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TtlQuery {
    /// Milliseconds (`PTTL`, `PEXPIRETIME`) rather than seconds.
    pub millis: bool,
    /// The absolute time (`EXPIRETIME`) rather than what remains.
    pub absolute: bool,
}

/// `LCS`'s reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LcsReply {
    String,
    Len,
    Idx { min_len: usize, with_len: bool },
}

/// A data command that reads first.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Program {
    /// `GET`, queued behind a program on its key.
    Get { key: Vec<u8> },
    /// `MGET`, likewise.
    MGet { keys: Vec<Vec<u8>> },
    /// `EXISTS`, `TOUCH`, likewise.
    Exists { keys: Vec<Vec<u8>> },
    /// `DEL`, `UNLINK`, likewise: deletes the keys it finds.
    Del { keys: Vec<Vec<u8>> },
    /// `MSET`, likewise.
    MSet { pairs: Vec<(Vec<u8>, Vec<u8>)> },
    /// `SET` with `NX`/`XX`/`GET`/`KEEPTTL`, `SETNX` (an integer reply),
    /// `GETSET`.
    Set {
        key: Vec<u8>,
        value: Vec<u8>,
        condition: Option<Condition>,
        get: bool,
        expiry: NewExpiry,
        integer_reply: bool,
    },
    /// `MSETNX`: every pair, or none if any key exists.
    MSetNx { pairs: Vec<(Vec<u8>, Vec<u8>)> },
    /// `GETDEL`.
    GetDel { key: Vec<u8> },
    /// `GETEX`: the value, and its expiry changed (`None`: unchanged;
    /// `Some(NewExpiry::None)`: `PERSIST`).
    GetEx {
        key: Vec<u8>,
        change: Option<NewExpiry>,
    },
    /// `EXPIRE` and relatives, at an absolute time.
    Expire {
        key: Vec<u8>,
        at: i64,
        condition: ExpireCondition,
    },
    /// `PERSIST`.
    Persist { key: Vec<u8> },
    /// `TTL`, `PTTL`, `EXPIRETIME`, `PEXPIRETIME`.
    Ttl { key: Vec<u8>, query: TtlQuery },
    /// `TYPE`.
    Type { key: Vec<u8> },
    /// `APPEND`.
    Append { key: Vec<u8>, suffix: Vec<u8> },
    /// `STRLEN`.
    Strlen { key: Vec<u8> },
    /// `GETRANGE`, `SUBSTR`.
    GetRange { key: Vec<u8>, start: i64, end: i64 },
    /// `SETRANGE`.
    SetRange {
        key: Vec<u8>,
        offset: u64,
        bytes: Vec<u8>,
    },
    /// `GETBIT`.
    GetBit { key: Vec<u8>, offset: u64 },
    /// `SETBIT`.
    SetBit {
        key: Vec<u8>,
        offset: u64,
        bit: bool,
    },
    /// `BITCOUNT`.
    BitCount {
        key: Vec<u8>,
        range: Option<(i64, i64, BitUnit)>,
    },
    /// `BITPOS`.
    BitPos {
        key: Vec<u8>,
        bit: bool,
        start: Option<i64>,
        end: Option<i64>,
        unit: BitUnit,
    },
    /// `LCS`.
    Lcs {
        a: Vec<u8>,
        b: Vec<u8>,
        reply: LcsReply,
    },
    /// `INCR`, `DECR`, `INCRBY`, `DECRBY`, `INCRBYFLOAT`, queued behind a
    /// program on its key: an add to a counter, which reads nothing first
    /// (the replica that adds reads its own copy; see `node/counters.rs`).
    Add { key: Vec<u8>, delta: Delta },
    /// `RENAME`, `RENAMENX`.
    Rename {
        from: Vec<u8>,
        to: Vec<u8>,
        only_new: bool,
    },
    /// `COPY`.
    Copy {
        from: Vec<u8>,
        to: Vec<u8>,
        replace: bool,
    },
    /// `DKV.DELIFEQ key value`: delete if the key holds exactly `value`
    /// (a lock's release).
    DelIfEq { key: Vec<u8>, value: Vec<u8> },
    /// `DKV.PEXPIREIFEQ key value ms [ADD]`: set the key's expiry `ms` from
    /// now (or `ms` past its current one, with `ADD`) if it holds exactly
    /// `value` and, with `ADD`, has an expiry (a lock's extension).
    PExpireIfEq {
        key: Vec<u8>,
        value: Vec<u8>,
        ms: u64,
        add: bool,
    },
}

impl Program {
    /// The keys read, in order: [`Program::decide`] gets one [`Found`]
    /// per key. A program writes only keys it reads, so these are also the
    /// keys the executor holds while it runs.
    pub fn reads(&self) -> Vec<&[u8]> {
        match self {
            Program::Set { key, .. }
            | Program::GetDel { key }
            | Program::GetEx { key, .. }
            | Program::Expire { key, .. }
            | Program::Persist { key }
            | Program::Ttl { key, .. }
            | Program::Type { key }
            | Program::Append { key, .. }
            | Program::Strlen { key }
            | Program::GetRange { key, .. }
            | Program::SetRange { key, .. }
            | Program::GetBit { key, .. }
            | Program::SetBit { key, .. }
            | Program::BitCount { key, .. }
            | Program::BitPos { key, .. }
            | Program::Add { key, .. }
            | Program::DelIfEq { key, .. }
            | Program::PExpireIfEq { key, .. } => vec![key],
            Program::MSetNx { pairs } | Program::MSet { pairs } => {
                pairs.iter().map(|(k, _)| k.as_slice()).collect()
            }
            Program::Get { key } => vec![key],
            Program::MGet { keys } | Program::Exists { keys } | Program::Del { keys } => {
                keys.iter().map(Vec::as_slice).collect()
            }
            Program::Lcs { a, b, .. } => vec![a, b],
            Program::Rename { from, to, .. } | Program::Copy { from, to, .. } => vec![from, to],
        }
    }

    /// A plain data command as a program, so it can wait behind one on
    /// its key; `None` for a command that is not a data command.
    pub fn from_plain(command: &Command<'_>) -> Option<Program> {
        let owned = |keys: &ArgList<'_>| keys.iter().map(<[u8]>::to_vec).collect();
        Some(match command {
            Command::Get { key } => Program::Get { key: key.to_vec() },
            Command::Set {
                key,
                value,
                expires_at,
            } => Program::Set {
                key: key.to_vec(),
                value: value.to_vec(),
                condition: None,
                get: false,
                expiry: expires_at.map_or(NewExpiry::None, NewExpiry::At),
                integer_reply: false,
            },
            Command::Add { key, delta } => Program::Add {
                key: key.to_vec(),
                delta: *delta,
            },
            Command::MGet { keys } => Program::MGet { keys: owned(keys) },
            Command::Exists { keys } => Program::Exists { keys: owned(keys) },
            Command::Del { keys } => Program::Del { keys: owned(keys) },
            Command::MSet { pairs } => Program::MSet {
                pairs: pairs
                    .pairs()
                    .map(|(k, v)| (k.to_vec(), v.to_vec()))
                    .collect(),
            },
            _ => return None,
        })
    }

    /// The writes and the reply, given what the reads found (one per key
    /// of [`Program::reads`]) at `now` (unix ms, the time expiries go by).
    pub fn decide(self, found: Vec<Found>, now: u64, resp3: bool) -> Decision {
        let mut d = Decision::default();
        let out = &mut d.reply;
        let mut found = found.into_iter();
        let mut next = || found.next().unwrap_or_default();
        match self {
            Program::Get { .. } => match next().value {
                Some(v) => reply::bulk(out, &v),
                None => reply::null(out, resp3),
            },
            Program::MGet { keys } => {
                reply::array(out, keys.len());
                for _ in &keys {
                    match next().value {
                        Some(v) => reply::bulk(out, &v),
                        None => reply::null(out, resp3),
                    }
                }
            }
            Program::Exists { keys } => {
                let found = keys.iter().filter(|_| next().value.is_some()).count();
                reply::integer(out, found as i64);
            }
            Program::Del { keys } => {
                let mut deleted = 0;
                for key in keys {
                    if next().value.is_some() && !d.writes.iter().any(|w| w.key() == key) {
                        deleted += 1;
                        d.writes.push(Write::Delete { key });
                    }
                }
                reply::integer(out, deleted);
            }
            Program::MSet { pairs } => {
                reply::ok(out);
                d.writes = puts(pairs);
            }
            Program::Set {
                key,
                value,
                condition,
                get,
                expiry,
                integer_reply,
            } => {
                let old = next();
                let allowed = match condition {
                    None => true,
                    Some(Condition::Missing) => old.value.is_none(),
                    Some(Condition::Present) => old.value.is_some(),
                };
                if get {
                    match &old.value {
                        Some(v) => reply::bulk(out, v),
                        None => reply::null(out, resp3),
                    }
                } else if integer_reply {
                    reply::integer(out, i64::from(allowed));
                } else if allowed {
                    reply::ok(out);
                } else {
                    reply::null(out, resp3);
                }
                if allowed {
                    let expires_at = match expiry {
                        NewExpiry::None => None,
                        NewExpiry::At(at) => Some(at),
                        NewExpiry::Keep => old.expires_at,
                    };
                    d.writes.push(Write::Put {
                        key,
                        value,
                        expires_at,
                    });
                }
            }
            Program::MSetNx { pairs } => {
                let any = pairs.iter().any(|_| next().value.is_some());
                reply::integer(out, i64::from(!any));
                if !any {
                    d.writes = puts(pairs);
                }
            }
            Program::GetDel { key } => match next().value {
                Some(v) => {
                    reply::bulk(out, &v);
                    d.writes.push(Write::Delete { key });
                }
                None => reply::null(out, resp3),
            },
            Program::GetEx { key, change } => match next() {
                Found {
                    value: Some(value),
                    expires_at,
                } => {
                    reply::bulk(out, &value);
                    match change {
                        Some(NewExpiry::At(at)) if at <= now => {
                            d.writes.push(Write::Delete { key })
                        }
                        Some(NewExpiry::At(at)) => d.writes.push(Write::Put {
                            key,
                            value,
                            expires_at: Some(at),
                        }),
                        Some(NewExpiry::None) if expires_at.is_some() => {
                            d.writes.push(Write::Put {
                                key,
                                value,
                                expires_at: None,
                            })
                        }
                        _ => {}
                    }
                }
                _ => reply::null(out, resp3),
            },
            Program::Expire { key, at, condition } => {
                let old = next();
                let Some(value) = old.value else {
                    reply::integer(out, 0);
                    return d;
                };
                let allowed = condition.allows(old.expires_at, at);
                reply::integer(out, i64::from(allowed));
                if allowed {
                    d.writes.push(if at <= now as i64 {
                        Write::Delete { key }
                    } else {
                        Write::Put {
                            key,
                            value,
                            expires_at: Some(at as u64),
                        }
                    });
                }
            }
            Program::Persist { key } => match next() {
                Found {
                    value: Some(value),
                    expires_at: Some(_),
                } => {
                    reply::integer(out, 1);
                    d.writes.push(Write::Put {
                        key,
                        value,
                        expires_at: None,
                    });
                }
                _ => reply::integer(out, 0),
            },
            Program::Ttl { query, .. } => {
                let old = next();
                let answer = match (old.value, old.expires_at) {
                    (None, _) => -2,
                    (Some(_), None) => -1,
                    (Some(_), Some(at)) => {
                        let ms = if query.absolute {
                            at as i64
                        } else {
                            at.saturating_sub(now) as i64
                        };
                        if query.millis {
                            ms
                        } else {
                            (ms + 500) / 1000
                        }
                    }
                };
                reply::integer(out, answer);
            }
            Program::Type { .. } => {
                let kind = if next().value.is_some() {
                    "string"
                } else {
                    "none"
                };
                reply::simple(out, kind);
            }
            Program::Append { key, suffix } => {
                let old = next();
                let mut value = old.value.unwrap_or_default();
                if value.len() as u64 + suffix.len() as u64 > MAX_STRING_LEN {
                    reply::error_line(
                        out,
                        "ERR string exceeds maximum allowed size (proto-max-bulk-len)",
                    );
                    return d;
                }
                value.extend_from_slice(&suffix);
                reply::integer(out, value.len() as i64);
                d.writes.push(Write::Put {
                    key,
                    value,
                    expires_at: old.expires_at,
                });
            }
            Program::Strlen { .. } => {
                reply::integer(out, next().value.map_or(0, |v| v.len()) as i64);
            }
            Program::GetRange { start, end, .. } => {
                let value = next().value.unwrap_or_default();
                match strings::byte_range(value.len(), start, end) {
                    Some((a, b)) => reply::bulk(out, &value[a..=b]),
                    None => reply::bulk(out, b""),
                }
            }
            Program::SetRange { key, offset, bytes } => {
                let old = next();
                let value = old.value.unwrap_or_default();
                if bytes.is_empty() {
                    reply::integer(out, value.len() as i64);
                    return d;
                }
                if offset + bytes.len() as u64 > MAX_STRING_LEN {
                    reply::error_line(
                        out,
                        "ERR string exceeds maximum allowed size (proto-max-bulk-len)",
                    );
                    return d;
                }
                let value = strings::set_range(&value, offset as usize, &bytes);
                reply::integer(out, value.len() as i64);
                d.writes.push(Write::Put {
                    key,
                    value,
                    expires_at: old.expires_at,
                });
            }
            Program::GetBit { offset, .. } => {
                let value = next().value.unwrap_or_default();
                reply::integer(out, i64::from(strings::get_bit(&value, offset)));
            }
            Program::SetBit { key, offset, bit } => {
                let old = next();
                let (value, was) = strings::set_bit(&old.value.unwrap_or_default(), offset, bit);
                reply::integer(out, i64::from(was));
                d.writes.push(Write::Put {
                    key,
                    value,
                    expires_at: old.expires_at,
                });
            }
            Program::BitCount { range, .. } => {
                let value = next().value.unwrap_or_default();
                reply::integer(out, strings::bit_count(&value, range) as i64);
            }
            Program::BitPos {
                bit,
                start,
                end,
                unit,
                ..
            } => match next().value {
                Some(value) => reply::integer(out, strings::bit_pos(&value, bit, start, end, unit)),
                None => reply::integer(out, if bit { -1 } else { 0 }),
            },
            Program::Lcs { reply: mode, .. } => {
                let (a, b) = (
                    next().value.unwrap_or_default(),
                    next().value.unwrap_or_default(),
                );
                render_lcs(out, &a, &b, mode, resp3);
            }
            Program::Add { key, delta } => d.writes.push(Write::Add { key, delta }),
            Program::Rename { from, to, only_new } => {
                let (source, target) = (next(), next());
                let Some(value) = source.value else {
                    reply::error_line(out, "ERR no such key");
                    return d;
                };
                if from == to {
                    if only_new {
                        reply::integer(out, 0);
                    } else {
                        reply::ok(out);
                    }
                    return d;
                }
                if only_new && target.value.is_some() {
                    reply::integer(out, 0);
                    return d;
                }
                if only_new {
                    reply::integer(out, 1);
                } else {
                    reply::ok(out);
                }
                d.writes.push(Write::Put {
                    key: to,
                    value,
                    expires_at: source.expires_at,
                });
                d.writes.push(Write::Delete { key: from });
            }
            Program::DelIfEq { key, value } => {
                let held = next().value;
                let matches = held.as_deref() == Some(value.as_slice());
                reply::integer(out, i64::from(matches));
                if matches {
                    d.writes.push(Write::Delete { key });
                }
            }
            Program::PExpireIfEq {
                key,
                value,
                ms,
                add,
            } => {
                let old = next();
                let at = match (&old.value, old.expires_at, add) {
                    (Some(v), _, false) if *v == value => Some(now.saturating_add(ms)),
                    (Some(v), Some(at), true) if *v == value => Some(at.saturating_add(ms)),
                    _ => None,
                };
                reply::integer(out, i64::from(at.is_some()));
                if let Some(at) = at {
                    d.writes.push(Write::Put {
                        key,
                        value,
                        expires_at: Some(at),
                    });
                }
            }
            Program::Copy { from, to, replace } => {
                let (source, target) = (next(), next());
                let copies =
                    source.value.is_some() && from != to && (replace || target.value.is_none());
                reply::integer(out, i64::from(copies));
                if let (true, Some(value)) = (copies, source.value) {
                    d.writes.push(Write::Put {
                        key: to,
                        value,
                        expires_at: source.expires_at,
                    });
                }
            }
        }
        d
    }
}

/// Writes of every pair, without expiry (`MSET`, `MSETNX`).
fn puts(pairs: Vec<(Vec<u8>, Vec<u8>)>) -> Vec<Write> {
    pairs
        .into_iter()
        .map(|(key, value)| Write::Put {
            key,
            value,
            expires_at: None,
        })
        .collect()
}

/// `LCS`'s reply in each of its forms.
fn render_lcs(out: &mut Vec<u8>, a: &[u8], b: &[u8], mode: LcsReply, resp3: bool) {
    let (common, matches) = strings::lcs(a, b);
    match mode {
        LcsReply::String => reply::bulk(out, &common),
        LcsReply::Len => reply::integer(out, common.len() as i64),
        LcsReply::Idx { min_len, with_len } => {
            reply::map(out, 2, resp3);
            reply::bulk(out, b"matches");
            let kept: Vec<_> = matches.iter().filter(|m| m.len >= min_len).collect();
            reply::array(out, kept.len());
            for m in kept {
                reply::array(out, if with_len { 3 } else { 2 });
                for (start, end) in [m.a, m.b] {
                    reply::array(out, 2);
                    reply::integer(out, start as i64);
                    reply::integer(out, end as i64);
                }
                if with_len {
                    reply::integer(out, m.len as i64);
                }
            }
            reply::bulk(out, b"len");
            reply::integer(out, common.len() as i64);
        }
    }
}

#[cfg(test)]
mod tests;
