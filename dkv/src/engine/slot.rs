//! One stored entry packed into a single heap allocation.
//!
//! A [`Slot`] is a `Box<[u8]>` laid out as
//!
//! | bytes            | field                                              |
//! |------------------|----------------------------------------------------|
//! | 0..8             | timestamp, u64 little-endian                       |
//! | 8..12            | node id, u32 little-endian                         |
//! | 12..16           | key length, u32 LE; bit 31 set for a tombstone     |
//! | 16..16+key_len   | key                                                |
//! | rest             | value (empty for a tombstone)                      |
//!
//! One allocation per key and a 16-byte table slot is what keeps a 16-byte
//! key with a 64-byte value near 150 bytes resident, below Redis's ~173.

use crate::version::{NodeId, Timestamp, Version};

const HEADER: usize = 16;
const TOMBSTONE_BIT: u32 = 1 << 31;

/// The largest key a slot can hold (the tombstone bit bounds it).
pub const MAX_KEY_LEN: usize = (TOMBSTONE_BIT - 1) as usize;

/// An entry's key, version and value in one allocation.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Slot(Box<[u8]>);

impl Slot {
    /// Packs an entry. `key.len()` must be at most [`MAX_KEY_LEN`]; the
    /// engine checks before calling.
    pub(crate) fn new(key: &[u8], version: Version, value: Option<&[u8]>) -> Slot {
        let value_bytes = value.unwrap_or(&[]);
        let mut data = Vec::with_capacity(HEADER + key.len() + value_bytes.len());
        write_header(&mut data, key.len(), version, value.is_none());
        data.extend_from_slice(key);
        data.extend_from_slice(value_bytes);
        Slot(data.into_boxed_slice())
    }

    /// Replaces the version and value, reusing the allocation when the size
    /// is unchanged (the common overwrite of a fixed-size value).
    pub(crate) fn overwrite(&mut self, version: Version, value: Option<&[u8]>) {
        let value_bytes = value.unwrap_or(&[]);
        let key_len = self.key().len();
        if self.0.len() == HEADER + key_len + value_bytes.len() {
            let mut header = Vec::with_capacity(HEADER);
            write_header(&mut header, key_len, version, value.is_none());
            self.0[..HEADER].copy_from_slice(&header);
            self.0[HEADER + key_len..].copy_from_slice(value_bytes);
        } else {
            *self = Slot::new(self.key(), version, value);
        }
    }

    fn key_len_field(&self) -> u32 {
        u32::from_le_bytes([self.0[12], self.0[13], self.0[14], self.0[15]])
    }

    pub(crate) fn key(&self) -> &[u8] {
        let len = (self.key_len_field() & !TOMBSTONE_BIT) as usize;
        &self.0[HEADER..HEADER + len]
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

    /// The value, or `None` for a tombstone.
    pub(crate) fn value(&self) -> Option<&[u8]> {
        if self.is_tombstone() {
            None
        } else {
            Some(&self.0[HEADER + self.key().len()..])
        }
    }

    /// Heap bytes of this entry's allocation (not counting allocator
    /// overhead).
    pub(crate) fn heap_bytes(&self) -> usize {
        self.0.len()
    }
}

fn write_header(out: &mut Vec<u8>, key_len: usize, version: Version, tombstone: bool) {
    let mut key_len_field = key_len as u32;
    if tombstone {
        key_len_field |= TOMBSTONE_BIT;
    }
    out.extend_from_slice(&version.timestamp.0.to_le_bytes());
    out.extend_from_slice(&version.node_id.0.to_le_bytes());
    out.extend_from_slice(&key_len_field.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(ts: u64, node: u32) -> Version {
        Version::new(Timestamp(ts), NodeId(node))
    }

    #[test]
    fn packs_and_unpacks_a_value() {
        let slot = Slot::new(b"key", version(7, 3), Some(b"value"));
        assert_eq!(slot.key(), b"key");
        assert_eq!(slot.value(), Some(&b"value"[..]));
        assert_eq!(slot.version(), version(7, 3));
        assert!(!slot.is_tombstone());
    }

    #[test]
    fn empty_value_is_not_a_tombstone() {
        let slot = Slot::new(b"k", version(1, 1), Some(b""));
        assert_eq!(slot.value(), Some(&b""[..]));
        let tomb = Slot::new(b"k", version(1, 1), None);
        assert_eq!(tomb.value(), None);
        assert_eq!(tomb.key(), b"k");
    }

    #[test]
    fn overwrite_in_place_and_resized() {
        let mut slot = Slot::new(b"key", version(1, 1), Some(b"aaaa"));
        slot.overwrite(version(2, 2), Some(b"bbbb"));
        assert_eq!(slot.value(), Some(&b"bbbb"[..]));
        assert_eq!(slot.version(), version(2, 2));
        slot.overwrite(version(3, 1), None);
        assert_eq!(slot.value(), None);
        assert_eq!(slot.key(), b"key");
        slot.overwrite(version(4, 1), Some(b"a much longer value"));
        assert_eq!(slot.value(), Some(&b"a much longer value"[..]));
        assert_eq!(slot.key(), b"key");
    }
}
