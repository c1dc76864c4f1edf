//! The WAL record codec: pure functions, no IO.
//!
//! A record on disk is (all integers little-endian; `docs/wal-format.md`):
//!
//! | bytes          | field                                         |
//! |----------------|-----------------------------------------------|
//! | 0..4           | `payload_len`, u32                            |
//! | 4..8           | CRC-32 (ISO-HDLC) of the payload, u32         |
//! | 8..8+len       | payload                                       |
//!
//! and the payload is:
//!
//! | bytes          | field                                         |
//! |----------------|-----------------------------------------------|
//! | 0..8           | lsn, u64                                      |
//! | 8              | kind: 0 = value, 1 = tombstone, 2 = value     |
//! |                | with an expiry, 3 = a counter's state, 4 = a  |
//! |                | counter's state with an expiry                |
//! | 9..17          | version timestamp, u64                        |
//! | 17..21         | version node id, u32                          |
//! | 21..25         | `key_len`, u32                                |
//! | 25..33         | kinds 2 and 4 only: expiry, unix ms, u64      |
//! | then key_len   | key                                           |
//! | rest           | value (must be empty for a tombstone)         |
//!
//! Kind 2 is record format 2, kinds 3 and 4 format 3; a log written before
//! them holds only the older kinds and reads unchanged.
//!
//! Invariants: [`encode_into`] refuses payloads over [`MAX_PAYLOAD_LEN`], so
//! everything it writes [`decode`]s back to the same record; decoding is
//! check-then-parse (header, length bound, completeness, CRC, then fields)
//! and never panics or allocates more than the checked length on any input.

use super::{Lsn, WalRecord};
use crate::engine::EntryRef;
use crate::hash::crc32;
use crate::version::{NodeId, Timestamp, Version};

/// Bytes of the record header: payload length and CRC.
pub const HEADER_LEN: usize = 8;
/// Bytes of the payload's fixed fields, before the key.
pub const PAYLOAD_FIXED_LEN: usize = 25;
/// The largest payload a record may carry (1 GiB): room for a key and a
/// value each of the largest bulk a client may send
/// ([`crate::resp::Limits::MAX_BULK_LEN_CEILING`]), so the WAL never
/// refuses what the protocol accepted. Recovery treats a longer length
/// field as damage, and checks every length against the file's size before
/// reading it.
pub const MAX_PAYLOAD_LEN: usize = 1 << 30;

const KIND_VALUE: u8 = 0;
const KIND_TOMBSTONE: u8 = 1;
const KIND_EXPIRING: u8 = 2;
const KIND_COUNTER: u8 = 3;
const KIND_EXPIRING_COUNTER: u8 = 4;
/// Bytes of the expiry a kind-2 record carries after the fixed fields.
const EXPIRY_LEN: usize = 8;

/// A record whose payload would exceed [`MAX_PAYLOAD_LEN`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("WAL record payload of {len} bytes exceeds the limit of {max} bytes")]
pub struct TooLarge {
    /// The payload length the record would need.
    pub len: u64,
    /// [`MAX_PAYLOAD_LEN`].
    pub max: u64,
}

/// Why a byte string is not a valid record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Fewer than [`HEADER_LEN`] bytes.
    #[error("incomplete record header: {available} of {HEADER_LEN} bytes")]
    IncompleteHeader {
        /// Bytes present.
        available: usize,
    },
    /// The length field is over [`MAX_PAYLOAD_LEN`].
    #[error("record length {len} exceeds the limit of {max} bytes")]
    TooLarge {
        /// The length field.
        len: u64,
        /// [`MAX_PAYLOAD_LEN`].
        max: u64,
    },
    /// The payload runs past the end of the input.
    #[error("incomplete record payload: {available} of {len} bytes")]
    IncompletePayload {
        /// The length field.
        len: u64,
        /// Payload bytes present.
        available: u64,
    },
    /// The payload does not match its checksum.
    #[error("record CRC mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    BadCrc {
        /// The CRC in the header.
        stored: u32,
        /// The CRC of the payload read.
        computed: u32,
    },
    /// The payload is shorter than its fixed fields.
    #[error("record payload of {len} bytes is shorter than its {PAYLOAD_FIXED_LEN} fixed bytes")]
    PayloadTooShort {
        /// The payload length.
        len: usize,
    },
    /// The kind byte is not 0 (value), 1 (tombstone) or 2 (expiring value).
    #[error("unknown record kind {0}")]
    BadKind(u8),
    /// `key_len` runs past the payload.
    #[error("key length {key_len} runs past the {available} bytes after the fixed fields")]
    BadKeyLen {
        /// The key length field.
        key_len: u64,
        /// Payload bytes after the fixed fields.
        available: usize,
    },
    /// A tombstone with value bytes.
    #[error("tombstone record carries {0} value bytes")]
    TombstoneWithValue(usize),
}

impl DecodeError {
    /// Whether the input simply ended early (a torn write), as opposed to
    /// bytes that are present but wrong.
    pub fn is_incomplete(&self) -> bool {
        matches!(
            self,
            DecodeError::IncompleteHeader { .. } | DecodeError::IncompletePayload { .. }
        )
    }
}

/// The payload length of a record of `entry` under a `key_len`-byte key,
/// if within the limit.
pub fn payload_len(key_len: usize, entry: EntryRef<'_>) -> Result<usize, TooLarge> {
    let fixed = PAYLOAD_FIXED_LEN + expiry_len(entry);
    let value_len = entry.value.map_or(0, <[u8]>::len);
    let len = fixed
        .checked_add(key_len)
        .and_then(|len| len.checked_add(value_len));
    match len {
        Some(len) if len <= MAX_PAYLOAD_LEN => Ok(len),
        _ => Err(TooLarge {
            len: (fixed as u64)
                .saturating_add(key_len as u64)
                .saturating_add(value_len as u64),
            max: MAX_PAYLOAD_LEN as u64,
        }),
    }
}

/// The encoded length, header included, of such a record.
pub fn encoded_len(key_len: usize, entry: EntryRef<'_>) -> Result<usize, TooLarge> {
    payload_len(key_len, entry).map(|len| len + HEADER_LEN)
}

fn expiry_len(entry: EntryRef<'_>) -> usize {
    match (entry.value, entry.expires_at) {
        (Some(_), Some(_)) => EXPIRY_LEN,
        _ => 0,
    }
}

/// Appends one encoded record to `buf`; returns the bytes appended. On error
/// `buf` is unchanged.
pub fn encode_into(
    buf: &mut Vec<u8>,
    lsn: Lsn,
    key: &[u8],
    entry: EntryRef<'_>,
) -> Result<usize, TooLarge> {
    let len = payload_len(key.len(), entry)?;
    let version = entry.version;
    let start = buf.len();
    buf.reserve(HEADER_LEN + len);
    // `len <= MAX_PAYLOAD_LEN` and `key.len() < len`, so both fit in a u32.
    buf.extend_from_slice(&(len as u32).to_le_bytes());
    buf.extend_from_slice(&[0; 4]); // CRC, patched below
    buf.extend_from_slice(&lsn.0.to_le_bytes());
    let expires_at = entry.value.and(entry.expires_at);
    buf.push(match (entry.value, expires_at, entry.counter) {
        (None, _, _) => KIND_TOMBSTONE,
        (Some(_), None, false) => KIND_VALUE,
        (Some(_), Some(_), false) => KIND_EXPIRING,
        (Some(_), None, true) => KIND_COUNTER,
        (Some(_), Some(_), true) => KIND_EXPIRING_COUNTER,
    });
    buf.extend_from_slice(&version.timestamp.0.to_le_bytes());
    buf.extend_from_slice(&version.node_id.0.to_le_bytes());
    buf.extend_from_slice(&(key.len() as u32).to_le_bytes());
    if let Some(at) = expires_at {
        buf.extend_from_slice(&at.to_le_bytes());
    }
    buf.extend_from_slice(key);
    if let Some(value) = entry.value {
        buf.extend_from_slice(value);
    }
    let crc = crc32(&buf[start + HEADER_LEN..]);
    buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    Ok(HEADER_LEN + len)
}

/// Encodes `record` into a fresh buffer.
pub fn encode(record: &WalRecord) -> Result<Vec<u8>, TooLarge> {
    let mut buf = Vec::new();
    encode_into(&mut buf, record.lsn, &record.key, record.entry())?;
    Ok(buf)
}

/// Reads a header: `(payload_len, crc)`, the length already checked against
/// [`MAX_PAYLOAD_LEN`].
pub fn decode_header(bytes: &[u8]) -> Result<(usize, u32), DecodeError> {
    let Some(header) = bytes.get(..HEADER_LEN) else {
        return Err(DecodeError::IncompleteHeader {
            available: bytes.len(),
        });
    };
    let len = u32_at(header, 0);
    if len as usize > MAX_PAYLOAD_LEN {
        return Err(DecodeError::TooLarge {
            len: u64::from(len),
            max: MAX_PAYLOAD_LEN as u64,
        });
    }
    Ok((len as usize, u32_at(header, 4)))
}

/// Decodes the record at the start of `bytes`; returns it and its encoded
/// length.
pub fn decode(bytes: &[u8]) -> Result<(WalRecord, usize), DecodeError> {
    let (len, stored) = decode_header(bytes)?;
    let rest = &bytes[HEADER_LEN..];
    let Some(payload) = rest.get(..len) else {
        return Err(DecodeError::IncompletePayload {
            len: len as u64,
            available: rest.len() as u64,
        });
    };
    check_crc(payload, stored)?;
    Ok((decode_payload(payload)?, HEADER_LEN + len))
}

/// Checks `payload` against the CRC stored in its header.
pub fn check_crc(payload: &[u8], stored: u32) -> Result<(), DecodeError> {
    let computed = crc32(payload);
    if computed == stored {
        Ok(())
    } else {
        Err(DecodeError::BadCrc { stored, computed })
    }
}

/// Decodes a payload whose CRC has been checked.
pub fn decode_payload(payload: &[u8]) -> Result<WalRecord, DecodeError> {
    if payload.len() < PAYLOAD_FIXED_LEN {
        return Err(DecodeError::PayloadTooShort { len: payload.len() });
    }
    let lsn = Lsn(u64_at(payload, 0));
    let kind = payload[8];
    let timestamp = Timestamp(u64_at(payload, 9));
    let node_id = NodeId(u32_at(payload, 17));
    let key_len = u32_at(payload, 21) as usize;
    let mut rest = &payload[PAYLOAD_FIXED_LEN..];
    let mut expires_at = None;
    if kind == KIND_EXPIRING || kind == KIND_EXPIRING_COUNTER {
        let Some((at, after)) = rest.split_first_chunk::<EXPIRY_LEN>() else {
            return Err(DecodeError::PayloadTooShort { len: payload.len() });
        };
        expires_at = Some(u64::from_le_bytes(*at));
        rest = after;
    }
    if key_len > rest.len() {
        return Err(DecodeError::BadKeyLen {
            key_len: key_len as u64,
            available: rest.len(),
        });
    }
    let (key, value) = rest.split_at(key_len);
    let value = match kind {
        KIND_VALUE | KIND_EXPIRING | KIND_COUNTER | KIND_EXPIRING_COUNTER => Some(value.to_vec()),
        KIND_TOMBSTONE if value.is_empty() => None,
        KIND_TOMBSTONE => return Err(DecodeError::TombstoneWithValue(value.len())),
        other => return Err(DecodeError::BadKind(other)),
    };
    Ok(WalRecord {
        lsn,
        key: key.to_vec(),
        version: Version::new(timestamp, node_id),
        value,
        expires_at,
        counter: kind == KIND_COUNTER || kind == KIND_EXPIRING_COUNTER,
    })
}

/// The little-endian u32 at `at`; callers have checked the bounds.
fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut word = [0; 4];
    word.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(word)
}

/// The little-endian u64 at `at`; callers have checked the bounds.
fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(word)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn record(lsn: u64, key: &[u8], value: Option<&[u8]>) -> WalRecord {
        WalRecord {
            lsn: Lsn(lsn),
            key: key.to_vec(),
            version: Version::new(Timestamp(0x0102_0304_0506_0708), NodeId(9)),
            value: value.map(<[u8]>::to_vec),
            expires_at: None,
            counter: false,
        }
    }

    #[test]
    fn an_expiring_value_is_kind_two_with_its_expiry_before_the_key() {
        let expiring = WalRecord {
            expires_at: Some(1_800_000_000_000),
            ..record(4, b"k", Some(b"v"))
        };
        let bytes = encode(&expiring).unwrap();
        let payload: Vec<u8> = [
            &4u64.to_le_bytes()[..],
            &[2],
            &0x0102_0304_0506_0708u64.to_le_bytes(),
            &9u32.to_le_bytes(),
            &1u32.to_le_bytes(),
            &1_800_000_000_000u64.to_le_bytes(),
            b"k",
            b"v",
        ]
        .concat();
        assert_eq!(&bytes[8..], &payload[..]);
        assert_eq!(decode(&bytes).unwrap().0, expiring);
        // Cut inside the expiry: refused, not misread.
        let mut short = payload[..30].to_vec();
        let mut cut = (short.len() as u32).to_le_bytes().to_vec();
        cut.extend_from_slice(&crc32(&short).to_le_bytes());
        cut.append(&mut short);
        assert!(matches!(
            decode(&cut),
            Err(DecodeError::PayloadTooShort { .. })
        ));
        // A tombstone never carries one.
        let tomb = WalRecord {
            expires_at: Some(5),
            ..record(5, b"k", None)
        };
        assert_eq!(decode(&encode(&tomb).unwrap()).unwrap().0.expires_at, None);
    }

    #[test]
    fn golden_bytes() {
        let bytes = encode(&record(1, b"k", Some(b"v"))).unwrap();
        let payload: Vec<u8> = [
            &1u64.to_le_bytes()[..],
            &[0],
            &0x0102_0304_0506_0708u64.to_le_bytes(),
            &9u32.to_le_bytes(),
            &1u32.to_le_bytes(),
            b"k",
            b"v",
        ]
        .concat();
        assert_eq!(&bytes[..4], &27u32.to_le_bytes());
        assert_eq!(&bytes[4..8], &crc32(&payload).to_le_bytes());
        assert_eq!(&bytes[8..], &payload[..]);
        // The example in docs/wal-format.md.
        assert_eq!(&bytes[4..8], &[0x5a, 0x70, 0xd6, 0xa2]);
    }

    #[test]
    fn tombstone_and_empty_value_differ() {
        let tomb = encode(&record(2, b"key", None)).unwrap();
        let empty = encode(&record(2, b"key", Some(b""))).unwrap();
        assert_eq!(tomb.len(), empty.len());
        assert_eq!(decode(&tomb).unwrap().0.value, None);
        assert_eq!(decode(&empty).unwrap().0.value, Some(Vec::new()));
    }

    #[test]
    fn rejects_each_kind_of_damage() {
        let good = encode(&record(3, b"key", Some(b"value"))).unwrap();
        assert!(matches!(
            decode(&good[..5]),
            Err(DecodeError::IncompleteHeader { available: 5 })
        ));
        let cut = decode(&good[..good.len() - 1]).unwrap_err();
        assert!(cut.is_incomplete());
        let mut flipped = good.clone();
        flipped[20] ^= 0xFF;
        assert!(matches!(decode(&flipped), Err(DecodeError::BadCrc { .. })));
        let mut huge = good.clone();
        huge[3] = 0xFF;
        assert!(matches!(decode(&huge), Err(DecodeError::TooLarge { .. })));

        // Valid CRC over bad fields: re-checksum after editing the payload.
        let reseal = |mut bytes: Vec<u8>| {
            let crc = crc32(&bytes[HEADER_LEN..]);
            bytes[4..8].copy_from_slice(&crc.to_le_bytes());
            bytes
        };
        let mut kind = good.clone();
        kind[HEADER_LEN + 8] = 7;
        assert_eq!(decode(&reseal(kind)), Err(DecodeError::BadKind(7)));
        let mut key_len = good.clone();
        key_len[HEADER_LEN + 21] = 200;
        assert!(matches!(
            decode(&reseal(key_len)),
            Err(DecodeError::BadKeyLen { .. })
        ));
        let mut tomb = good.clone();
        tomb[HEADER_LEN + 8] = KIND_TOMBSTONE;
        assert_eq!(
            decode(&reseal(tomb)),
            Err(DecodeError::TombstoneWithValue(5))
        );
        // Eight zero bytes: length 0, and CRC-32 of nothing is 0.
        assert_eq!(
            decode(&[0; 8]),
            Err(DecodeError::PayloadTooShort { len: 0 })
        );
    }

    #[test]
    fn refuses_oversized_records_without_touching_the_buffer() {
        let mut buf = vec![1, 2, 3];
        let value = vec![0; MAX_PAYLOAD_LEN];
        let err = encode_into(
            &mut buf,
            Lsn(1),
            b"k",
            EntryRef::value(Version::default(), &value),
        );
        assert!(err.is_err());
        assert_eq!(buf, [1, 2, 3]);
        let fits = vec![0; MAX_PAYLOAD_LEN - PAYLOAD_FIXED_LEN - 1];
        let entry = EntryRef::value(Version::default(), &fits);
        assert_eq!(encoded_len(1, entry), Ok(HEADER_LEN + MAX_PAYLOAD_LEN));
        let expiring = EntryRef::new(Version::default(), Some(&fits), Some(1));
        assert!(encoded_len(1, expiring).is_err());
        assert!(encoded_len(usize::MAX, EntryRef::value(Version::default(), b"x")).is_err());
    }

    fn arb_record() -> impl Strategy<Value = WalRecord> {
        (
            any::<u64>(),
            proptest::collection::vec(any::<u8>(), 0..40),
            any::<u64>(),
            any::<u32>(),
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..200)),
            proptest::option::of(any::<u64>()),
            any::<bool>(),
        )
            .prop_map(
                |(lsn, key, ts, node, value, expires_at, counter)| WalRecord {
                    lsn: Lsn(lsn),
                    key,
                    version: Version::new(Timestamp(ts), NodeId(node)),
                    expires_at: value.as_ref().and(expires_at),
                    counter: value.is_some() && counter,
                    value,
                },
            )
    }

    proptest! {
        #[test]
        fn decode_inverts_encode(record in arb_record(), trailing in proptest::collection::vec(any::<u8>(), 0..16)) {
            let mut bytes = encode(&record).unwrap();
            let len = bytes.len();
            let entry = EntryRef::new(record.version, record.value.as_deref(), record.expires_at);
            prop_assert_eq!(len, encoded_len(record.key.len(), entry).unwrap());
            bytes.extend_from_slice(&trailing);
            prop_assert_eq!(decode(&bytes), Ok((record, len)));
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
            let _ = decode(&bytes);
            let _ = decode_payload(&bytes);
        }

        #[test]
        fn any_single_flip_is_detected(record in arb_record(), at in any::<prop::sample::Index>(), bit in 0u8..8) {
            let mut bytes = encode(&record).unwrap();
            let at = at.index(bytes.len());
            bytes[at] ^= 1 << bit;
            prop_assert!(decode(&bytes).is_err());
        }
    }
}
