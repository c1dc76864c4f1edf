//! [`SharedWrite`]: one replicated write's key and entry in a single
//! reference-counted buffer, so that the coordinator's record of a write
//! and the [`Message::Replicate`](crate::peer::Message::Replicate) sent to
//! each replica share one allocation instead of copying the key and value
//! for every target, and a replica decodes a write with one allocation
//! and one copy of the part of the frame that carried it.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use crate::engine::{Entry, EntryRef};
use crate::version::Version;

/// Keys and values up to these many bytes together are joined on the
/// stack before they are copied into their shared buffer.
const SMALL_JOIN: usize = 128;
const LARGE_JOIN: usize = 1024;

/// `key` then `value` in a new shared buffer, if they fit `CAP` bytes.
fn joined_on_stack<const CAP: usize>(key: &[u8], value: &[u8]) -> Option<Arc<[u8]>> {
    let len = key.len() + value.len();
    if len > CAP {
        return None;
    }
    let mut joined = [0u8; CAP];
    joined[..key.len()].copy_from_slice(key);
    joined[key.len()..len].copy_from_slice(value);
    Some(Arc::from(&joined[..len]))
}

/// Where `part` lies within `frame`, if it does.
fn span_in(frame: &[u8], part: &[u8]) -> Option<Range<usize>> {
    let start = (part.as_ptr() as usize).checked_sub(frame.as_ptr() as usize)?;
    let end = start.checked_add(part.len())?;
    (end <= frame.len()).then_some(start..end)
}

/// A key and the entry written to it, immutable and cheap to clone.
///
/// Kept small (no larger than an [`Entry`] and a pointer): every message a
/// node queues is moved a few times on its way out, and a larger
/// [`Message`](crate::peer::Message) costs a copy call per move.
#[derive(Clone)]
pub struct SharedWrite {
    /// The key's bytes first and the value's last, perhaps with the bytes
    /// that lay between them in a frame.
    bytes: Arc<[u8]>,
    key_len: usize,
    /// The value's length (0 for a tombstone).
    value_len: usize,
    version: Version,
    expires_at: Option<u64>,
    live: bool,
    counter: bool,
}

impl SharedWrite {
    /// `entry` written to `key`, copied once.
    pub fn new(key: &[u8], entry: EntryRef<'_>) -> SharedWrite {
        let value = entry.value.unwrap_or_default();
        // Joined first so that the shared buffer is filled by one copy: on
        // the stack (zeroed, so no larger than it must be) for the usual
        // small write, in a Vec past that.
        let bytes = joined_on_stack::<SMALL_JOIN>(key, value)
            .or_else(|| joined_on_stack::<LARGE_JOIN>(key, value))
            .unwrap_or_else(|| {
                let mut joined = Vec::with_capacity(key.len() + value.len());
                joined.extend_from_slice(key);
                joined.extend_from_slice(value);
                Arc::from(joined)
            });
        SharedWrite::of(bytes, key.len(), entry)
    }

    /// `entry` written to `key`, both borrowed from `frame` (a received
    /// message): the frame's bytes from the key to the value are copied
    /// once, which saves joining them. A key or value from elsewhere is
    /// copied as [`SharedWrite::new`] does.
    pub fn within(frame: &[u8], key: &[u8], entry: EntryRef<'_>) -> SharedWrite {
        let Some(key_span) = span_in(frame, key) else {
            return SharedWrite::new(key, entry);
        };
        let end = match entry.value.map(|value| span_in(frame, value)) {
            None => key_span.end,
            Some(Some(value_span)) if value_span.start >= key_span.end => value_span.end,
            Some(_) => return SharedWrite::new(key, entry),
        };
        SharedWrite::of(Arc::from(&frame[key_span.start..end]), key.len(), entry)
    }

    /// `entry` written to the key that `bytes` starts with (`key_len`
    /// long), whose value `bytes` ends with.
    fn of(bytes: Arc<[u8]>, key_len: usize, entry: EntryRef<'_>) -> SharedWrite {
        let value_len = entry.value.map_or(0, <[u8]>::len);
        debug_assert!(key_len + value_len <= bytes.len());
        let write = SharedWrite {
            bytes,
            key_len,
            value_len,
            version: entry.version,
            expires_at: entry.value.and(entry.expires_at),
            live: entry.value.is_some(),
            counter: entry.counter,
        };
        debug_assert_eq!(write.entry().value, entry.value);
        write
    }

    /// The key written.
    pub fn key(&self) -> &[u8] {
        &self.bytes[..self.key_len]
    }

    /// The entry written, borrowed.
    pub fn entry(&self) -> EntryRef<'_> {
        let value_at = self.bytes.len() - self.value_len;
        EntryRef {
            version: self.version,
            value: self.live.then(|| &self.bytes[value_at..]),
            expires_at: self.expires_at,
            counter: self.counter,
        }
    }

    /// The entry's version.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The entry, copied out.
    pub fn to_entry(&self) -> Entry {
        self.entry().to_owned()
    }
}

impl PartialEq for SharedWrite {
    fn eq(&self, other: &SharedWrite) -> bool {
        self.key() == other.key() && self.entry() == other.entry()
    }
}

impl Eq for SharedWrite {}

impl fmt::Debug for SharedWrite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedWrite")
            .field("key", &self.key())
            .field("entry", &self.entry())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::version::{NodeId, Timestamp};

    fn version() -> Version {
        Version::new(Timestamp(42), NodeId(3))
    }

    #[test]
    fn gives_back_the_key_and_entry_it_was_made_of() {
        let cases = [
            EntryRef::value(version(), b"value"),
            EntryRef::value(version(), b""),
            EntryRef::tombstone(version()),
            EntryRef::new(version(), Some(b"soon gone"), Some(1_000)),
            EntryRef::counter(version(), b"\x01\x02", Some(7)),
        ];
        for key in [&b""[..], b"k", b"a longer key of some bytes"] {
            for entry in cases {
                let write = SharedWrite::new(key, entry);
                assert_eq!(write.key(), key);
                assert_eq!(write.entry(), entry);
                assert_eq!(write.to_entry(), entry.to_owned());
                assert_eq!(write.version(), version());
                assert_eq!(write.clone(), write);
            }
        }
    }

    #[test]
    fn writes_of_every_size_are_whole() {
        let key: Vec<u8> = (0..LARGE_JOIN).map(|i| i as u8).collect();
        let value = vec![0xcd; 3 * LARGE_JOIN];
        let sizes = [
            (SMALL_JOIN, 1),
            (1, SMALL_JOIN),
            (SMALL_JOIN, SMALL_JOIN),
            (LARGE_JOIN - 1, 1),
            (LARGE_JOIN, 3 * LARGE_JOIN),
        ];
        for (key, value) in sizes.map(|(k, v)| (&key[..k], &value[..v])) {
            let write = SharedWrite::new(key, EntryRef::value(version(), value));
            assert_eq!(write.key(), key);
            assert_eq!(write.entry().value, Some(value));
        }
    }

    #[test]
    fn a_write_within_a_frame_is_the_write_copied() {
        let frame = b"..key..value..";
        let (key, value) = (&frame[2..5], &frame[7..12]);
        let entries = [
            EntryRef::new(version(), Some(value), Some(9)),
            EntryRef::value(version(), &frame[7..7]),
            EntryRef::tombstone(version()),
        ];
        for entry in entries {
            let within = SharedWrite::within(frame, key, entry);
            assert_eq!(within, SharedWrite::new(key, entry));
            assert_eq!((within.key(), within.entry()), (key, entry));
        }
        // Parts from elsewhere are copied, not trusted to lie inside.
        let elsewhere = b"another key".to_vec();
        let entry = EntryRef::value(version(), b"a value from elsewhere");
        for (k, e) in [
            (&elsewhere[..], entries[0]),
            (key, entry),
            (&frame[..], entry),
        ] {
            let within = SharedWrite::within(&frame[1..], k, e);
            assert_eq!((within.key(), within.entry()), (k, e));
        }
    }

    #[test]
    fn stays_small() {
        let entry = std::mem::size_of::<Entry>();
        assert!(std::mem::size_of::<SharedWrite>() <= entry + 8);
    }

    #[test]
    fn a_tombstone_keeps_no_expiry() {
        let mut tombstone = EntryRef::tombstone(version());
        tombstone.expires_at = Some(5);
        assert_eq!(SharedWrite::new(b"k", tombstone).entry().expires_at, None);
    }

    #[test]
    fn an_empty_value_is_not_a_tombstone() {
        let write = SharedWrite::new(b"k", EntryRef::value(version(), b""));
        assert_eq!(write.entry().value, Some(&b""[..]));
        assert_ne!(
            write,
            SharedWrite::new(b"k", EntryRef::tombstone(version()))
        );
    }
}
