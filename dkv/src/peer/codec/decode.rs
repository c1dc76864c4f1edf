//! Decoding of peer frames: check-then-parse, never a panic, never more
//! allocated than the frame holds (see the parent module).

use super::frame_type::*;
use super::{
    DELTA_FLOAT, DELTA_INT, ENTRY_COUNTER, ENTRY_EXPIRING, ENTRY_EXPIRING_COUNTER, ENTRY_TOMBSTONE,
    ENTRY_VALUE, LEN_PREFIX,
};
use crate::counter::{CounterError, Delta};
use crate::engine::{Entry, EntryRef};
use crate::peer::error::FrameError;
use crate::peer::message::{
    Envelope, Hello, HelloReply, Message, Proof, RequestId, PROTOCOL_VERSION,
};
use crate::peer::shared_write::SharedWrite;
use crate::version::{NodeId, Timestamp, Version};

/// Whether `buf` starts with a whole frame: `Ok(Some(n))` with its length
/// `n` on the wire (prefix included), `Ok(None)` if more bytes are needed.
/// Fails as soon as the length prefix is over `max_frame` or 0, so the
/// caller never buffers an oversize frame.
pub fn check_frame(buf: &[u8], max_frame: usize) -> Result<Option<usize>, FrameError> {
    let [a, b, c, d, ..] = *buf else {
        return Ok(None);
    };
    let len = u32::from_le_bytes([a, b, c, d]);
    if u64::from(len) > max_frame as u64 {
        return Err(FrameError::TooLarge {
            len: u64::from(len),
            max: max_frame as u64,
        });
    }
    if len == 0 {
        return Err(FrameError::Empty);
    }
    // `len <= max_frame`, a usize, so this cannot overflow but for a
    // `max_frame` within 4 of `usize::MAX`; saturate rather than wrap.
    let total = (len as usize).saturating_add(LEN_PREFIX);
    Ok((buf.len() >= total).then_some(total))
}

/// Decodes the [`Hello`] at the start of `buf`: `Ok(Some((hello, used)))`,
/// or `Ok(None)` until the whole frame has arrived. A Hello of another
/// protocol version is [`FrameError::UnsupportedVersion`] as soon as its
/// version field is in.
pub fn decode_hello(buf: &[u8], max_frame: usize) -> Result<Option<(Hello, usize)>, FrameError> {
    let complete = check_frame(buf, max_frame)?;
    if let Some(&kind) = buf.get(LEN_PREFIX) {
        if kind != HELLO {
            return Err(FrameError::UnexpectedType(kind));
        }
    }
    if let Some(version) = buf.get(LEN_PREFIX + 1..LEN_PREFIX + 3) {
        let version = u16::from_le_bytes([version[0], version[1]]);
        if version != PROTOCOL_VERSION {
            return Err(FrameError::UnsupportedVersion(version));
        }
    }
    if complete.is_none() {
        return Ok(None);
    }
    let Some(RawFrame { payload, used, .. }) = next_frame(buf, max_frame, |t| t == HELLO)? else {
        return Ok(None);
    };
    let mut r = Reader(payload);
    let protocol_version = r.u16("protocol_version")?;
    let node_id = NodeId(r.u32("node_id")?);
    let to = NodeId(r.u32("to")?);
    let nonce = r.array("nonce")?;
    r.end()?;
    let hello = Hello {
        protocol_version,
        node_id,
        to,
        nonce,
    };
    Ok(Some((hello, used)))
}

/// Decodes the [`Proof`] at the start of `buf`, like [`decode_hello`].
pub fn decode_proof(buf: &[u8], max_frame: usize) -> Result<Option<(Proof, usize)>, FrameError> {
    let Some(RawFrame { payload, used, .. }) = next_frame(buf, max_frame, |t| t == PROOF)? else {
        return Ok(None);
    };
    let mut r = Reader(payload);
    let proof = r.array("proof")?;
    r.end()?;
    Ok(Some((Proof { proof }, used)))
}

/// Decodes the listener's answer to a [`Hello`] (a challenge or a
/// refusal) at the start of `buf`, like [`decode_hello`].
pub fn decode_challenge(
    buf: &[u8],
    max_frame: usize,
) -> Result<Option<(HelloReply, usize)>, FrameError> {
    decode_listener_frame(buf, max_frame, CHALLENGE)
}

/// Decodes the listener's answer to a [`Proof`] (a welcome or a refusal)
/// at the start of `buf`, like [`decode_hello`].
pub fn decode_hello_reply(
    buf: &[u8],
    max_frame: usize,
) -> Result<Option<(HelloReply, usize)>, FrameError> {
    decode_listener_frame(buf, max_frame, WELCOME)
}

/// A frame of type `expected` or [`REFUSED`].
fn decode_listener_frame(
    buf: &[u8],
    max_frame: usize,
    expected: u8,
) -> Result<Option<(HelloReply, usize)>, FrameError> {
    let accepts = |t| t == expected || t == REFUSED;
    let Some(RawFrame {
        kind,
        payload,
        used,
    }) = next_frame(buf, max_frame, accepts)?
    else {
        return Ok(None);
    };
    let mut r = Reader(payload);
    let reply = match kind {
        CHALLENGE => HelloReply::Challenge {
            nonce: r.array("nonce")?,
        },
        WELCOME => HelloReply::Welcome {
            node_id: NodeId(r.u32("node_id")?),
            proof: r.array("proof")?,
            settings_digest: r.u64("settings_digest")?,
            cluster_name: r.string("cluster_name")?,
        },
        _ => HelloReply::Refused {
            reason: r.string("reason")?,
        },
    };
    r.end()?;
    Ok(Some((reply, used)))
}

/// Decodes the [`Envelope`] at the start of `buf`, like [`decode_hello`].
pub fn decode_envelope(
    buf: &[u8],
    max_frame: usize,
) -> Result<Option<(Envelope, usize)>, FrameError> {
    let accepts = |t| (REPLICATE..=COUNTER_ADDED).contains(&t);
    let Some(RawFrame {
        kind,
        payload,
        used,
    }) = next_frame(buf, max_frame, accepts)?
    else {
        return Ok(None);
    };
    let mut r = Reader(payload);
    let from = NodeId(r.u32("from")?);
    let clock = Timestamp(r.u64("clock")?);
    let message = match kind {
        REPLICATE => Message::Replicate {
            request: RequestId(r.u64("request")?),
            write: {
                let key = r.bytes("key")?;
                SharedWrite::within(payload, key, r.entry_ref()?)
            },
            hint_for: match r.u8("hint_for")? {
                0 => None,
                1 => Some(NodeId(r.u32("hint_for")?)),
                value => return Err(bad_tag("hint_for", value)),
            },
        },
        REPLICATE_ACK => {
            let request = RequestId(r.u64("request")?);
            let flags = r.u8("flags")?;
            if flags & !0b111 != 0 {
                return Err(bad_tag("flags", flags));
            }
            let held = if flags & 4 != 0 {
                let timestamp = Timestamp(r.u64("held")?);
                Some(Version::new(timestamp, NodeId(r.u32("held")?)))
            } else {
                None
            };
            Message::ReplicateAck {
                request,
                ok: flags & 1 != 0,
                was_live: flags & 2 != 0,
                held,
            }
        }
        READ => Message::Read {
            request: RequestId(r.u64("request")?),
            key: r.bytes("key")?.into(),
        },
        READ_REPLY => Message::ReadReply {
            request: RequestId(r.u64("request")?),
            entry: match r.u8("entry")? {
                0 => None,
                1 => Some(r.entry()?),
                value => return Err(bad_tag("entry", value)),
            },
        },
        HEARTBEAT => Message::Heartbeat,
        AAE_BRANCHES => {
            let (exchange, partition, count) = r.aae_head(8)?;
            let mut branches = Vec::with_capacity(count);
            for _ in 0..count {
                branches.push(r.u64("branches")?);
            }
            Message::AaeBranches {
                exchange,
                partition,
                branches,
            }
        }
        AAE_LEAVES => {
            let (exchange, partition, count) = r.aae_head(10)?;
            let mut leaves = Vec::with_capacity(count);
            for _ in 0..count {
                leaves.push((r.u16("leaves")?, r.u64("leaves")?));
            }
            Message::AaeLeaves {
                exchange,
                partition,
                leaves,
            }
        }
        AAE_KEYS_WANTED => {
            let (exchange, partition, count) = r.aae_head(2)?;
            let mut segments = Vec::with_capacity(count);
            for _ in 0..count {
                segments.push(r.u16("segments")?);
            }
            Message::AaeKeysWanted {
                exchange,
                partition,
                segments,
            }
        }
        FLUSH => Message::Flush {
            request: r.u64("request")?,
            floor: Version {
                timestamp: Timestamp(r.u64("floor.timestamp")?),
                node_id: NodeId(r.u32("floor.node_id")?),
            },
        },
        FLUSH_ACK => Message::FlushAck {
            request: r.u64("request")?,
        },
        SCAN => Message::Scan {
            request: r.u64("request")?,
            from: r.u64("from")?,
            count: r.u32("count")?,
            pattern: r.bytes("pattern")?.to_vec(),
        },
        SCAN_REPLY => {
            let request = r.u64("request")?;
            let next = match r.u8("next")? {
                0 => None,
                1 => Some(r.u64("next")?),
                tag => return Err(bad_tag("next", tag)),
            };
            let live_keys = r.u64("live_keys")?;
            let count = r.u32("count")? as usize;
            // Each key takes at least its 4-byte length.
            if count.saturating_mul(4) > r.0.len() {
                return Err(FrameError::Truncated { field: "count" });
            }
            let mut keys = Vec::with_capacity(count);
            for _ in 0..count {
                keys.push(r.bytes("keys")?.to_vec());
            }
            Message::ScanReply {
                request,
                next,
                live_keys,
                keys,
            }
        }
        COUNTER_ADD => Message::CounterAdd {
            request: RequestId(r.u64("request")?),
            key: r.bytes("key")?.to_vec(),
            delta: match r.u8("delta")? {
                DELTA_INT => Delta::Int(r.u64("delta")? as i64),
                DELTA_FLOAT => {
                    let x = f64::from_bits(r.u64("delta")?);
                    if !x.is_finite() {
                        return Err(FrameError::BadValue {
                            field: "delta",
                            reason: "not a finite float",
                        });
                    }
                    Delta::Float(x)
                }
                tag => return Err(bad_tag("delta", tag)),
            },
        },
        COUNTER_ADDED => {
            let request = RequestId(r.u64("request")?);
            let result = match r.u8("result")? {
                0 => Ok(r.entry()?),
                code => Err(CounterError::from_code(code).ok_or(bad_tag("result", code))?),
            };
            Message::CounterAdded { request, result }
        }
        _ => {
            let (exchange, partition, count) = r.aae_head(16)?;
            let mut keys = Vec::with_capacity(count);
            for _ in 0..count {
                let key = r.bytes("keys")?.to_vec();
                let timestamp = Timestamp(r.u64("keys")?);
                let node_id = NodeId(r.u32("keys")?);
                keys.push((key, Version { timestamp, node_id }));
            }
            Message::AaeKeys {
                exchange,
                partition,
                keys,
            }
        }
    };
    r.end()?;
    Ok(Some((
        Envelope {
            from,
            clock,
            message,
        },
        used,
    )))
}

/// A whole frame, split: its type, its payload, and the bytes it used.
struct RawFrame<'a> {
    kind: u8,
    payload: &'a [u8],
    used: usize,
}

/// The next whole frame. Rejects a type that `accepts` refuses as soon as
/// the type byte arrives.
fn next_frame(
    buf: &[u8],
    max_frame: usize,
    accepts: impl Fn(u8) -> bool,
) -> Result<Option<RawFrame<'_>>, FrameError> {
    let complete = check_frame(buf, max_frame)?;
    let Some(&kind) = buf.get(LEN_PREFIX) else {
        return Ok(None);
    };
    if !accepts(kind) {
        return Err(FrameError::UnexpectedType(kind));
    }
    let Some(used) = complete else {
        return Ok(None);
    };
    Ok(buf.get(LEN_PREFIX + 1..used).map(|payload| RawFrame {
        kind,
        payload,
        used,
    }))
}

fn bad_tag(field: &'static str, value: u8) -> FrameError {
    FrameError::BadTag { field, value }
}

/// Reads fields off the front of a payload; every read is bounds-checked.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], FrameError> {
        if n > self.0.len() {
            return Err(FrameError::Truncated { field });
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], FrameError> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N, field)?);
        Ok(out)
    }

    fn u8(&mut self, field: &'static str) -> Result<u8, FrameError> {
        Ok(self.array::<1>(field)?[0])
    }

    fn u16(&mut self, field: &'static str) -> Result<u16, FrameError> {
        self.array(field).map(u16::from_le_bytes)
    }

    fn u32(&mut self, field: &'static str) -> Result<u32, FrameError> {
        self.array(field).map(u32::from_le_bytes)
    }

    fn u64(&mut self, field: &'static str) -> Result<u64, FrameError> {
        self.array(field).map(u64::from_le_bytes)
    }

    /// A u32 length and that many bytes, borrowed: nothing is allocated for
    /// a length that runs past the payload.
    fn bytes(&mut self, field: &'static str) -> Result<&'a [u8], FrameError> {
        let len = self.u32(field)?;
        self.take(len as usize, field)
    }

    fn string(&mut self, field: &'static str) -> Result<String, FrameError> {
        let bytes = self.bytes(field)?;
        match std::str::from_utf8(bytes) {
            Ok(text) => Ok(text.to_owned()),
            Err(_) => Err(FrameError::BadUtf8 { field }),
        }
    }

    fn entry(&mut self) -> Result<Entry, FrameError> {
        self.entry_ref().map(|entry| entry.to_owned())
    }

    /// An entry whose value is borrowed from the payload.
    fn entry_ref(&mut self) -> Result<EntryRef<'a>, FrameError> {
        let timestamp = Timestamp(self.u64("entry.timestamp")?);
        let node_id = NodeId(self.u32("entry.node_id")?);
        let version = Version { timestamp, node_id };
        match self.u8("entry.kind")? {
            ENTRY_VALUE => Ok(EntryRef::value(version, self.bytes("entry.value")?)),
            ENTRY_TOMBSTONE => Ok(EntryRef::tombstone(version)),
            ENTRY_COUNTER => Ok(EntryRef::counter(version, self.bytes("entry.value")?, None)),
            kind @ (ENTRY_EXPIRING | ENTRY_EXPIRING_COUNTER) => {
                let expires_at = Some(self.u64("entry.expires_at")?);
                let value = self.bytes("entry.value")?;
                Ok(EntryRef {
                    version,
                    value: Some(value),
                    expires_at,
                    counter: kind == ENTRY_EXPIRING_COUNTER,
                })
            }
            value => Err(bad_tag("entry.kind", value)),
        }
    }

    /// An anti-entropy message's exchange, partition and item count; the
    /// count is checked against the bytes left (each item at least
    /// `item_min` bytes) before anything is allocated for it.
    fn aae_head(&mut self, item_min: usize) -> Result<(u64, u32, usize), FrameError> {
        let exchange = self.u64("exchange")?;
        let partition = self.u32("partition")?;
        let count = self.u32("count")? as usize;
        if count.saturating_mul(item_min) > self.0.len() {
            return Err(FrameError::Truncated { field: "count" });
        }
        Ok((exchange, partition, count))
    }

    /// Checks nothing is left.
    fn end(self) -> Result<(), FrameError> {
        match self.0.len() {
            0 => Ok(()),
            extra => Err(FrameError::TrailingBytes { extra }),
        }
    }
}
