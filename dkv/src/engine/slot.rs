//! One stored entry packed into a single heap allocation.
//!
//! A [`Slot`] is a `Box<[u8]>` laid out as
//!
//! | bytes            | field                                              |
//! |------------------|----------------------------------------------------|
//! | 0..8             | timestamp, u64 little-endian                       |
//! | 8..12            | node id, u32 little-endian                         |
//! | 12..16           | key length, u32 LE; bit 31 set for a tombstone,    |
//! |                  | bit 30 set when an expiry follows, bit 29 when the |
//! |                  | value is a counter's state                         |
//! | 16..24           | expiry, unix ms u64 LE (only with bit 30)          |
//! | then key_len     | key                                                |
//! | rest             | value (empty for a tombstone)                      |
//!
//! One allocation per key and a 16-byte table slot is what keeps a 16-byte
//! key with a 64-byte value near 150 bytes resident, below Redis's ~173; a
//! key without an expiry pays nothing for the feature.

use super::EntryRef;
use crate::version::{NodeId, Timestamp, Version};

const HEADER: usize = 16;
const EXPIRY_LEN: usize = 8;
const TOMBSTONE_BIT: u32 = 1 << 31;
const EXPIRY_BIT: u32 = 1 << 30;
const COUNTER_BIT: u32 = 1 << 29;
const FLAG_BITS: u32 = TOMBSTONE_BIT | EXPIRY_BIT | COUNTER_BIT;

/// The largest key a slot can hold (the flag bits bound it).
pub const MAX_KEY_LEN: usize = (COUNTER_BIT - 1) as usize;

/// An entry's key, version and value in one allocation.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Slot(Box<[u8]>);

impl Slot {
    /// Packs an entry. `key.len()` must be at most [`MAX_KEY_LEN`]; the
    /// engine checks before calling.
    pub(crate) fn new(key: &[u8], entry: EntryRef<'_>) -> Slot {
        let value_bytes = entry.value.unwrap_or(&[]);
        let mut data = Vec::with_capacity(packed_len(key.len(), entry));
        let (header, header_len) = header(key.len(), entry);
        data.extend_from_slice(&header[..header_len]);
        data.extend_from_slice(key);
        data.extend_from_slice(value_bytes);
        debug_assert_eq!(data.len(), packed_len(key.len(), entry));
        Slot(data.into_boxed_slice())
    }

    /// Replaces the version, expiry and value, reusing the allocation when
    /// the size is unchanged (the common overwrite of a fixed-size value).
    pub(crate) fn overwrite(&mut self, entry: EntryRef<'_>) {
        let key_len = self.key().len();
        if self.0.len() == packed_len(key_len, entry) && self.has_expiry() == has_expiry(entry) {
            let (header, header_len) = header(key_len, entry);
            let value_at = header_len + key_len;
            self.0[..header_len].copy_from_slice(&header[..header_len]);
            self.0[value_at..].copy_from_slice(entry.value.unwrap_or(&[]));
        } else {
            *self = Slot::new(self.key(), entry);
        }
    }

    fn key_len_field(&self) -> u32 {
        u32::from_le_bytes([self.0[12], self.0[13], self.0[14], self.0[15]])
    }

    fn has_expiry(&self) -> bool {
        self.key_len_field() & EXPIRY_BIT != 0
    }

    fn key_start(&self) -> usize {
        if self.has_expiry() {
            HEADER + EXPIRY_LEN
        } else {
            HEADER
        }
    }

    pub(crate) fn key(&self) -> &[u8] {
        let len = (self.key_len_field() & !FLAG_BITS) as usize;
        let start = self.key_start();
        &self.0[start..start + len]
    }

    pub(crate) fn is_tombstone(&self) -> bool {
        self.key_len_field() & TOMBSTONE_BIT != 0
    }

    pub(crate) fn version(&self) -> Version {
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&self.0[0..8]);
        let node = u32::from_le_bytes([self.0[8], self.0[9], self.0[10], self.0[11]]);
        Version::new(Timestamp(u64::from_le_bytes(ts)), NodeId(node))
    }

    /// When the value expires (unix ms), if it does.
    pub(crate) fn expires_at(&self) -> Option<u64> {
        self.has_expiry().then(|| {
            let mut at = [0u8; 8];
            at.copy_from_slice(&self.0[HEADER..HEADER + EXPIRY_LEN]);
            u64::from_le_bytes(at)
        })
    }

    /// The value, or `None` for a tombstone.
    pub(crate) fn value(&self) -> Option<&[u8]> {
        if self.is_tombstone() {
            None
        } else {
            Some(&self.0[self.key_start() + self.key().len()..])
        }
    }

    /// The entry, borrowed.
    pub(crate) fn entry(&self) -> EntryRef<'_> {
        EntryRef {
            version: self.version(),
            value: self.value(),
            expires_at: self.expires_at(),
            counter: self.key_len_field() & COUNTER_BIT != 0,
        }
    }

    /// [`EntryRef::state_digest`] of this entry, without unpacking it
    /// unless it is a counter.
    pub(crate) fn state_digest(&self) -> u64 {
        if self.key_len_field() & COUNTER_BIT == 0 {
            return 0;
        }
        self.entry().state_digest()
    }

    /// Heap bytes of this entry's allocation (not counting allocator
    /// overhead).
    pub(crate) fn heap_bytes(&self) -> usize {
        self.0.len()
    }
}

fn has_expiry(entry: EntryRef<'_>) -> bool {
    entry.value.is_some() && entry.expires_at.is_some()
}

fn packed_len(key_len: usize, entry: EntryRef<'_>) -> usize {
    let expiry = if has_expiry(entry) { EXPIRY_LEN } else { 0 };
    HEADER + expiry + key_len + entry.value.map_or(0, <[u8]>::len)
}

/// An entry's header: the version, the key length with its flags, and the
/// expiry when it has one; `.1` is how many of the bytes are used. A
/// tombstone never keeps an expiry: it is already what an expired value
/// becomes.
fn header(key_len: usize, entry: EntryRef<'_>) -> ([u8; HEADER + EXPIRY_LEN], usize) {
    debug_assert!(key_len <= MAX_KEY_LEN);
    let mut key_len_field = key_len as u32;
    if entry.value.is_none() {
        key_len_field |= TOMBSTONE_BIT;
    }
    if has_expiry(entry) {
        key_len_field |= EXPIRY_BIT;
    }
    if entry.counter && entry.value.is_some() {
        key_len_field |= COUNTER_BIT;
    }
    let mut out = [0u8; HEADER + EXPIRY_LEN];
    out[0..8].copy_from_slice(&entry.version.timestamp.0.to_le_bytes());
    out[8..12].copy_from_slice(&entry.version.node_id.0.to_le_bytes());
    out[12..16].copy_from_slice(&key_len_field.to_le_bytes());
    match (has_expiry(entry), entry.expires_at) {
        (true, Some(at)) => {
            out[16..24].copy_from_slice(&at.to_le_bytes());
            (out, HEADER + EXPIRY_LEN)
        }
        _ => (out, HEADER),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(ts: u64, node: u32) -> Version {
        Version::new(Timestamp(ts), NodeId(node))
    }

    fn value<'a>(version: Version, value: &'a [u8]) -> EntryRef<'a> {
        EntryRef::value(version, value)
    }

    #[test]
    fn an_expiry_costs_eight_bytes_and_only_when_set() {
        let plain = Slot::new(b"key", value(version(7, 3), b"value"));
        let expiring = Slot::new(
            b"key",
            EntryRef {
                expires_at: Some(1_700_000_000_000),
                ..value(version(7, 3), b"value")
            },
        );
        assert_eq!(plain.heap_bytes(), 16 + 3 + 5);
        assert_eq!(expiring.heap_bytes(), plain.heap_bytes() + 8);
        assert_eq!(plain.expires_at(), None);
        assert_eq!(expiring.expires_at(), Some(1_700_000_000_000));
        assert_eq!(expiring.key(), b"key");
        assert_eq!(expiring.value(), Some(&b"value"[..]));
        // Same size, expiry dropped: the layout changes, the data stays.
        let mut slot = expiring.clone();
        slot.overwrite(value(version(8, 1), b"value12345678"));
        assert_eq!((slot.expires_at(), slot.key()), (None, &b"key"[..]));
        assert_eq!(slot.value(), Some(&b"value12345678"[..]));
        // A tombstone keeps no expiry.
        let tomb = Slot::new(
            b"key",
            EntryRef {
                version: version(9, 1),
                value: None,
                expires_at: Some(5),
                counter: false,
            },
        );
        assert_eq!((tomb.expires_at(), tomb.value()), (None, None));
    }

    #[test]
    fn packs_and_unpacks_a_value() {
        let slot = Slot::new(b"key", value(version(7, 3), b"value"));
        assert_eq!(slot.key(), b"key");
        assert_eq!(slot.value(), Some(&b"value"[..]));
        assert_eq!(slot.version(), version(7, 3));
        assert!(!slot.is_tombstone());
    }

    #[test]
    fn empty_value_is_not_a_tombstone() {
        let slot = Slot::new(b"k", value(version(1, 1), b""));
        assert_eq!(slot.value(), Some(&b""[..]));
        let tomb = Slot::new(b"k", EntryRef::tombstone(version(1, 1)));
        assert_eq!(tomb.value(), None);
        assert_eq!(tomb.key(), b"k");
    }

    #[test]
    fn overwrite_in_place_and_resized() {
        let mut slot = Slot::new(b"key", value(version(1, 1), b"aaaa"));
        slot.overwrite(value(version(2, 2), b"bbbb"));
        assert_eq!(slot.value(), Some(&b"bbbb"[..]));
        assert_eq!(slot.version(), version(2, 2));
        slot.overwrite(EntryRef::tombstone(version(3, 1)));
        assert_eq!(slot.value(), None);
        assert_eq!(slot.key(), b"key");
        slot.overwrite(value(version(4, 1), b"a much longer value"));
        assert_eq!(slot.value(), Some(&b"a much longer value"[..]));
        assert_eq!(slot.key(), b"key");
    }
}
