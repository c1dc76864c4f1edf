//! The peer frame codec: pure functions over byte buffers, no IO.
//!
//! A frame is `[u32 frame_len][u8 type][payload]`, little-endian, where
//! `frame_len` counts the type byte and the payload (so it is at least 1).
//! The layouts of every type are tables in `docs/peer-protocol.md`.
//!
//! Decoding is check-then-parse (like mini-redis `Frame::check`): the length
//! prefix is checked against the caller's `max_frame` and the type byte
//! against the phase as soon as they arrive, before the caller buffers the
//! rest; a frame is parsed only once all of it is present, and a length field
//! inside it is checked against the bytes that remain before anything is
//! copied. So decoding never panics and never allocates more than the frame
//! holds, whatever the bytes. The encoding is canonical: a decoded frame
//! re-encodes to exactly its bytes.

use super::error::FrameError;
use super::message::{Envelope, Hello, HelloReply, Message, Proof, NONCE_LEN, PROOF_LEN};
use crate::counter::Delta;
use crate::engine::{Entry, EntryRef};

/// Bytes of the length prefix.
pub const LEN_PREFIX: usize = 4;
/// The default bound on `frame_len`: a 64 MiB value (the largest a client
/// may send) plus 4 KiB for the key and the fixed fields.
pub const DEFAULT_MAX_FRAME: usize = (64 << 20) + (4 << 10);
/// A bound on `frame_len` for the handshake frames, so that a peer that has
/// not yet proven it belongs cannot make a node buffer a large frame.
pub const HANDSHAKE_MAX_FRAME: usize = 64 << 10;

/// Frame type bytes.
pub mod frame_type {
    /// [`Hello`](crate::peer::Hello).
    pub const HELLO: u8 = 0x01;
    /// [`HelloReply::Welcome`](crate::peer::HelloReply::Welcome).
    pub const WELCOME: u8 = 0x02;
    /// [`HelloReply::Refused`](crate::peer::HelloReply::Refused).
    pub const REFUSED: u8 = 0x03;
    /// [`HelloReply::Challenge`](crate::peer::HelloReply::Challenge).
    pub const CHALLENGE: u8 = 0x04;
    /// [`Proof`](crate::peer::Proof).
    pub const PROOF: u8 = 0x05;
    /// [`Message::Replicate`](crate::peer::Message::Replicate).
    pub const REPLICATE: u8 = 0x10;
    /// [`Message::ReplicateAck`](crate::peer::Message::ReplicateAck).
    pub const REPLICATE_ACK: u8 = 0x11;
    /// [`Message::Read`](crate::peer::Message::Read).
    pub const READ: u8 = 0x12;
    /// [`Message::ReadReply`](crate::peer::Message::ReadReply).
    pub const READ_REPLY: u8 = 0x13;
    /// [`Message::Heartbeat`](crate::peer::Message::Heartbeat).
    pub const HEARTBEAT: u8 = 0x14;
    /// [`Message::AaeBranches`](crate::peer::Message::AaeBranches).
    pub const AAE_BRANCHES: u8 = 0x15;
    /// [`Message::AaeLeaves`](crate::peer::Message::AaeLeaves).
    pub const AAE_LEAVES: u8 = 0x16;
    /// [`Message::AaeKeysWanted`](crate::peer::Message::AaeKeysWanted).
    pub const AAE_KEYS_WANTED: u8 = 0x17;
    /// [`Message::AaeKeys`](crate::peer::Message::AaeKeys).
    pub const AAE_KEYS: u8 = 0x18;
    /// [`Message::Flush`](crate::peer::Message::Flush).
    pub const FLUSH: u8 = 0x19;
    /// [`Message::FlushAck`](crate::peer::Message::FlushAck).
    pub const FLUSH_ACK: u8 = 0x1a;
    /// [`Message::Scan`](crate::peer::Message::Scan).
    pub const SCAN: u8 = 0x1b;
    /// [`Message::ScanReply`](crate::peer::Message::ScanReply).
    pub const SCAN_REPLY: u8 = 0x1c;
    /// [`Message::CounterAdd`](crate::peer::Message::CounterAdd).
    pub const COUNTER_ADD: u8 = 0x1d;
    /// [`Message::CounterAdded`](crate::peer::Message::CounterAdded).
    pub const COUNTER_ADDED: u8 = 0x1e;
}

use frame_type::*;

const ENTRY_VALUE: u8 = 0;
const ENTRY_TOMBSTONE: u8 = 1;
/// A value with an expiry (protocol 4): the expiry, unix ms u64, follows
/// the kind byte, then the value as for kind 0.
const ENTRY_EXPIRING: u8 = 2;
/// A counter's state (protocol 5), laid out as kind 0.
const ENTRY_COUNTER: u8 = 3;
/// A counter's state with an expiry (protocol 5), laid out as kind 2.
const ENTRY_EXPIRING_COUNTER: u8 = 4;
/// A [`Message::CounterAdd`]'s delta: an `i64`, or `f64` bits.
const DELTA_INT: u8 = 0;
const DELTA_FLOAT: u8 = 1;

// ---------------------------------------------------------------- encoding

/// Appends a [`Hello`] frame to `buf`; returns the bytes appended. On error
/// `buf` is unchanged.
pub fn encode_hello(hello: &Hello, buf: &mut Vec<u8>) -> Result<usize, FrameError> {
    let len = 1 + 2 + 4 + 4 + NONCE_LEN as u64;
    let start = begin(buf, len, HELLO)?;
    put_u16(buf, hello.protocol_version);
    put_u32(buf, hello.node_id.0);
    put_u32(buf, hello.to.0);
    buf.extend_from_slice(&hello.nonce);
    Ok(finish(buf, start, len))
}

/// Appends a [`Proof`] frame to `buf`; returns the bytes appended.
pub fn encode_proof(proof: &Proof, buf: &mut Vec<u8>) -> Result<usize, FrameError> {
    let len = 1 + PROOF_LEN as u64;
    let start = begin(buf, len, PROOF)?;
    buf.extend_from_slice(&proof.proof);
    Ok(finish(buf, start, len))
}

/// Appends a [`HelloReply`] frame to `buf`; returns the bytes appended. On
/// error `buf` is unchanged.
pub fn encode_hello_reply(reply: &HelloReply, buf: &mut Vec<u8>) -> Result<usize, FrameError> {
    match reply {
        HelloReply::Challenge { nonce } => {
            let len = 1 + NONCE_LEN as u64;
            let start = begin(buf, len, CHALLENGE)?;
            buf.extend_from_slice(nonce);
            Ok(finish(buf, start, len))
        }
        HelloReply::Welcome {
            node_id,
            proof,
            settings_digest,
            cluster_name,
        } => {
            let len = 1 + 4 + PROOF_LEN as u64 + 8 + field_len(cluster_name.len());
            let start = begin(buf, len, WELCOME)?;
            put_u32(buf, node_id.0);
            buf.extend_from_slice(proof);
            put_u64(buf, *settings_digest);
            put_bytes(buf, cluster_name.as_bytes());
            Ok(finish(buf, start, len))
        }
        HelloReply::Refused { reason } => {
            let len = 1 + field_len(reason.len());
            let start = begin(buf, len, REFUSED)?;
            put_bytes(buf, reason.as_bytes());
            Ok(finish(buf, start, len))
        }
    }
}

/// Appends an [`Envelope`] frame to `buf`; returns the bytes appended. On
/// error `buf` is unchanged.
pub fn encode_envelope(envelope: &Envelope, buf: &mut Vec<u8>) -> Result<usize, FrameError> {
    let len = envelope_frame_len(envelope);
    let start = begin(buf, len, message_type(&envelope.message))?;
    put_u32(buf, envelope.from.0);
    put_u64(buf, envelope.clock.0);
    match &envelope.message {
        Message::Replicate {
            request,
            write,
            hint_for,
        } => {
            put_u64(buf, request.0);
            put_bytes(buf, write.key());
            put_entry_ref(buf, write.entry());
            match hint_for {
                None => buf.push(0),
                Some(owner) => {
                    buf.push(1);
                    put_u32(buf, owner.0);
                }
            }
        }
        Message::ReplicateAck {
            request,
            ok,
            was_live,
            held,
        } => {
            put_u64(buf, request.0);
            // Flags: bit 0 ok, bit 1 was_live, bit 2 a held version follows.
            buf.push(u8::from(*ok) | (u8::from(*was_live) << 1) | (u8::from(held.is_some()) << 2));
            if let Some(version) = held {
                put_u64(buf, version.timestamp.0);
                put_u32(buf, version.node_id.0);
            }
        }
        Message::Read { request, key } => {
            put_u64(buf, request.0);
            put_bytes(buf, key);
        }
        Message::ReadReply { request, entry } => {
            put_u64(buf, request.0);
            match entry {
                None => buf.push(0),
                Some(entry) => {
                    buf.push(1);
                    put_entry(buf, entry);
                }
            }
        }
        Message::Heartbeat => {}
        Message::AaeBranches {
            exchange,
            partition,
            branches,
        } => {
            put_aae_head(buf, *exchange, *partition, branches.len());
            for branch in branches {
                put_u64(buf, *branch);
            }
        }
        Message::AaeLeaves {
            exchange,
            partition,
            leaves,
        } => {
            put_aae_head(buf, *exchange, *partition, leaves.len());
            for (segment, leaf) in leaves {
                put_u16(buf, *segment);
                put_u64(buf, *leaf);
            }
        }
        Message::AaeKeysWanted {
            exchange,
            partition,
            segments,
        } => {
            put_aae_head(buf, *exchange, *partition, segments.len());
            for segment in segments {
                put_u16(buf, *segment);
            }
        }
        Message::AaeKeys {
            exchange,
            partition,
            keys,
        } => {
            put_aae_head(buf, *exchange, *partition, keys.len());
            for (key, version) in keys {
                put_bytes(buf, key);
                put_u64(buf, version.timestamp.0);
                put_u32(buf, version.node_id.0);
            }
        }
        Message::Flush { request, floor } => {
            put_u64(buf, *request);
            put_u64(buf, floor.timestamp.0);
            put_u32(buf, floor.node_id.0);
        }
        Message::FlushAck { request } => put_u64(buf, *request),
        Message::Scan {
            request,
            from,
            count,
            pattern,
        } => {
            put_u64(buf, *request);
            put_u64(buf, *from);
            put_u32(buf, *count);
            put_bytes(buf, pattern);
        }
        Message::ScanReply {
            request,
            next,
            live_keys,
            keys,
        } => {
            put_u64(buf, *request);
            match next {
                Some(next) => {
                    buf.push(1);
                    put_u64(buf, *next);
                }
                None => buf.push(0),
            }
            put_u64(buf, *live_keys);
            // The frame fits a u32 (checked by `begin`), so its count does too.
            put_u32(buf, keys.len() as u32);
            for key in keys {
                put_bytes(buf, key);
            }
        }
        Message::CounterAdd {
            request,
            key,
            delta,
        } => {
            put_u64(buf, request.0);
            put_bytes(buf, key);
            match *delta {
                Delta::Int(n) => {
                    buf.push(DELTA_INT);
                    put_u64(buf, n as u64);
                }
                Delta::Float(x) => {
                    buf.push(DELTA_FLOAT);
                    put_u64(buf, x.to_bits());
                }
            }
        }
        Message::CounterAdded { request, result } => {
            put_u64(buf, request.0);
            match result {
                Ok(entry) => {
                    buf.push(0);
                    put_entry(buf, entry);
                }
                Err(error) => buf.push(error.code()),
            }
        }
    }
    Ok(finish(buf, start, len))
}

/// An anti-entropy message's fixed fields: exchange, partition, count.
fn put_aae_head(buf: &mut Vec<u8>, exchange: u64, partition: u32, count: usize) {
    put_u64(buf, exchange);
    put_u32(buf, partition);
    // The frame fits a u32 (checked by `begin`), so its count does too.
    put_u32(buf, count as u32);
}

/// The `frame_len` of `envelope` (add [`LEN_PREFIX`] for the bytes on the
/// wire): what to compare with a receiver's `max_frame` before sending.
pub fn envelope_frame_len(envelope: &Envelope) -> u64 {
    let body = match &envelope.message {
        Message::Replicate {
            write, hint_for, ..
        } => {
            let hint = if hint_for.is_some() { 4 } else { 0 };
            8 + field_len(write.key().len()) + entry_ref_len(write.entry()) + 1 + hint
        }
        Message::ReplicateAck { held, .. } => 8 + 1 + if held.is_some() { 12 } else { 0 },
        Message::Read { key, .. } => 8 + field_len(key.len()),
        Message::ReadReply { entry, .. } => 8 + 1 + entry.as_ref().map_or(0, entry_len),
        Message::Heartbeat => 0,
        Message::AaeBranches { branches, .. } => 16 + 8 * branches.len() as u64,
        Message::AaeLeaves { leaves, .. } => 16 + 10 * leaves.len() as u64,
        Message::AaeKeysWanted { segments, .. } => 16 + 2 * segments.len() as u64,
        Message::AaeKeys { keys, .. } => {
            16 + keys
                .iter()
                .map(|(key, _)| field_len(key.len()) + 12)
                .sum::<u64>()
        }
        Message::Flush { .. } => 20,
        Message::FlushAck { .. } => 8,
        Message::Scan { pattern, .. } => 20 + field_len(pattern.len()),
        Message::CounterAdd { key, .. } => 8 + field_len(key.len()) + 1 + 8,
        Message::CounterAdded { result, .. } => 8 + 1 + result.as_ref().map_or(0, entry_len),
        Message::ScanReply { next, keys, .. } => {
            8 + 1
                + if next.is_some() { 8 } else { 0 }
                + 8
                + 4
                + keys.iter().map(|key| field_len(key.len())).sum::<u64>()
        }
    };
    1 + 4 + 8 + body
}

/// The frame type of `message`.
pub fn message_type(message: &Message) -> u8 {
    match message {
        Message::Replicate { .. } => REPLICATE,
        Message::ReplicateAck { .. } => REPLICATE_ACK,
        Message::Read { .. } => READ,
        Message::ReadReply { .. } => READ_REPLY,
        Message::Heartbeat => HEARTBEAT,
        Message::AaeBranches { .. } => AAE_BRANCHES,
        Message::AaeLeaves { .. } => AAE_LEAVES,
        Message::AaeKeysWanted { .. } => AAE_KEYS_WANTED,
        Message::AaeKeys { .. } => AAE_KEYS,
        Message::Flush { .. } => FLUSH,
        Message::FlushAck { .. } => FLUSH_ACK,
        Message::Scan { .. } => SCAN,
        Message::ScanReply { .. } => SCAN_REPLY,
        Message::CounterAdd { .. } => COUNTER_ADD,
        Message::CounterAdded { .. } => COUNTER_ADDED,
    }
}

/// Bytes of a length-prefixed field.
fn field_len(len: usize) -> u64 {
    4 + len as u64
}

fn entry_len(entry: &Entry) -> u64 {
    entry_ref_len(entry.as_ref())
}

fn entry_ref_len(entry: EntryRef<'_>) -> u64 {
    let expiry = match (entry.value, entry.expires_at) {
        (Some(_), Some(_)) => 8,
        _ => 0,
    };
    8 + 4 + 1 + expiry + entry.value.map_or(0, |v| field_len(v.len()))
}

/// Checks `len` fits the prefix and writes the prefix and type byte; returns
/// where the frame starts.
fn begin(buf: &mut Vec<u8>, len: u64, kind: u8) -> Result<usize, FrameError> {
    let Ok(prefix) = u32::try_from(len) else {
        return Err(FrameError::TooLarge {
            len,
            max: u64::from(u32::MAX),
        });
    };
    let start = buf.len();
    // `len` fits a u32, and the frame will be materialised anyway.
    buf.reserve(LEN_PREFIX + prefix as usize);
    put_u32(buf, prefix);
    buf.push(kind);
    Ok(start)
}

fn finish(buf: &[u8], start: usize, len: u64) -> usize {
    let written = buf.len() - start;
    debug_assert_eq!(
        written as u64,
        LEN_PREFIX as u64 + len,
        "frame length mismatch"
    );
    written
}

fn put_u16(buf: &mut Vec<u8>, v: u16) {
    buf.extend_from_slice(&v.to_le_bytes());
}

fn put_u32(buf: &mut Vec<u8>, v: u32) {
    buf.extend_from_slice(&v.to_le_bytes());
}

fn put_u64(buf: &mut Vec<u8>, v: u64) {
    buf.extend_from_slice(&v.to_le_bytes());
}

/// A u32 length and the bytes. Only called once [`begin`] has checked that
/// the whole frame, hence this field, fits in a u32.
fn put_bytes(buf: &mut Vec<u8>, bytes: &[u8]) {
    put_u32(buf, bytes.len() as u32);
    buf.extend_from_slice(bytes);
}

fn put_entry(buf: &mut Vec<u8>, entry: &Entry) {
    put_entry_ref(buf, entry.as_ref())
}

fn put_entry_ref(buf: &mut Vec<u8>, entry: EntryRef<'_>) {
    put_u64(buf, entry.version.timestamp.0);
    put_u32(buf, entry.version.node_id.0);
    let counter = entry.counter;
    match (entry.value, entry.expires_at) {
        (Some(value), None) => {
            buf.push(if counter { ENTRY_COUNTER } else { ENTRY_VALUE });
            put_bytes(buf, value);
        }
        (Some(value), Some(at)) => {
            buf.push(if counter {
                ENTRY_EXPIRING_COUNTER
            } else {
                ENTRY_EXPIRING
            });
            put_u64(buf, at);
            put_bytes(buf, value);
        }
        (None, _) => buf.push(ENTRY_TOMBSTONE),
    }
}

mod decode;

pub use decode::{
    check_frame, decode_challenge, decode_envelope, decode_hello, decode_hello_reply, decode_proof,
};
