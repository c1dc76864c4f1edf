//! Hashing and checksums, from the well-kept crates rather than by hand.
//!
//! * [`murmur3_x64_128`] is MurmurHash3 x64 128-bit (Austin Appleby's
//!   reference `MurmurHash3_x64_128`), through the `murmur3` crate. The ring
//!   places tokens and keys with [`ring_position`]: seed 0, low 64 bits (the
//!   reference's first output word), so placement is identical on every
//!   platform and in every language binding.
//! * [`crc32`] is CRC-32/ISO-HDLC (the zlib/Ethernet CRC) through
//!   `crc32fast`; the WAL and snapshot formats checksum their records with it.
//! * [`IdMap`] is a `HashMap` for the integer ids a node makes itself
//!   (request sequence numbers, partition numbers): one multiply per word
//!   instead of SipHash. Never for keys a client or a peer chooses, which
//!   could be picked to collide.

/// MurmurHash3 x64 128-bit of `bytes` with `seed`.
///
/// The result packs the reference implementation's two output words as
/// `(h2 << 64) | h1`, so `result as u64` is `h1`.
pub fn murmur3_x64_128(bytes: &[u8], seed: u32) -> u128 {
    let mut reader = bytes;
    // Reading from a byte slice cannot fail; the crate's signature is generic
    // over `io::Read`, hence the `Result`.
    match murmur3::murmur3_x64_128(&mut reader, seed) {
        Ok(hash) => hash,
        Err(_) => unreachable!("reading from a byte slice never fails"),
    }
}

/// A key's or token's position on the 64-bit ring: MurmurHash3 x64-128,
/// seed 0, low 64 bits.
pub fn ring_position(bytes: &[u8]) -> u64 {
    KeyHash::of(bytes).ring_position()
}

/// A key's MurmurHash3 x64-128 under seed 0, computed once for both things
/// that place the key: the ring, by the low 64 bits
/// ([`KeyHash::ring_position`]), and anti-entropy's leaf, by the high 64
/// ([`KeyHash::high`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyHash(u128);

impl KeyHash {
    /// The hash of `key`.
    pub fn of(key: &[u8]) -> KeyHash {
        KeyHash(murmur3_x64_128(key, 0))
    }

    /// Where the key sits on the ring: [`ring_position`] of it.
    pub fn ring_position(self) -> u64 {
        self.0 as u64
    }

    /// The high 64 bits (the reference's second output word).
    pub fn high(self) -> u64 {
        (self.0 >> 64) as u64
    }

    /// Both words, low first.
    pub fn words(self) -> (u64, u64) {
        (self.ring_position(), self.high())
    }
}

/// CRC-32 (ISO-HDLC, as zlib computes it) of `bytes`.
pub fn crc32(bytes: &[u8]) -> u32 {
    crc32fast::hash(bytes)
}

/// An incremental CRC-32 over several slices, equal to [`crc32`] of their
/// concatenation.
#[derive(Default)]
pub struct Crc32(crc32fast::Hasher);

impl Crc32 {
    /// A fresh checksum.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `bytes` to the checksum.
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// The checksum of everything added.
    pub fn finish(self) -> u32 {
        self.0.finalize()
    }
}

/// A hasher for ids this node assigns: each word is mixed in with a
/// rotate, an xor and a multiply by an odd constant (the "Fx" hash of
/// Firefox and rustc). Fast, and weak against chosen input: see [`IdMap`].
#[derive(Debug, Default, Clone, Copy)]
pub struct IdHasher(u64);

const ID_HASH_MULTIPLIER: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl IdHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(ID_HASH_MULTIPLIER);
    }
}

impl std::hash::Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
    }

    fn write_u8(&mut self, n: u8) {
        self.add(u64::from(n));
    }

    fn write_u16(&mut self, n: u16) {
        self.add(u64::from(n));
    }

    fn write_u32(&mut self, n: u32) {
        self.add(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    fn finish(&self) -> u64 {
        // hashbrown takes its control bits from the top of the hash: fold
        // the well-mixed high half into the low one as well.
        self.0 ^ (self.0 >> 32)
    }
}

/// A `HashMap` keyed by ids this node assigns itself (see [`IdHasher`]).
pub type IdMap<K, V> = std::collections::HashMap<K, V, std::hash::BuildHasherDefault<IdHasher>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequential_ids_spread_over_an_id_map() {
        let mut map: IdMap<u64, u64> = IdMap::default();
        for id in 0..10_000u64 {
            map.insert(id, id * 2);
        }
        assert!((0..10_000u64).all(|id| map.get(&id) == Some(&(id * 2))));
        assert!(map.remove(&17).is_some() && !map.contains_key(&17));
        // Consecutive ids land in different buckets of a small table.
        let buckets: std::collections::BTreeSet<u64> = (0..64u64)
            .map(|id| {
                use std::hash::{BuildHasher, BuildHasherDefault};
                BuildHasherDefault::<IdHasher>::default().hash_one(id) & 63
            })
            .collect();
        assert!(buckets.len() > 32, "{} of 64 buckets used", buckets.len());
    }

    /// `(input, seed, h1, h2)` from the reference C implementation
    /// (smhasher's `MurmurHash3_x64_128`, as wrapped by Python's `mmh3`).
    const MURMUR3_VECTORS: &[(&[u8], u32, u64, u64)] = &[
        (b"", 0, 0, 0),
        (b"", 1, 0x4610abe56eff5cb5, 0x51622daa78f83583),
        (b"hello", 0, 0xcbd8a7b341bd9b02, 0x5b1e906a48ae1d19),
        (b"hello", 42, 0xc4b8b3c960af6f08, 0x2334b875b0efbc7a),
        (
            b"The quick brown fox jumps over the lazy dog",
            0,
            0xe34bbc7bbc071b6c,
            0x7a433ca9c49a9347,
        ),
        // 15, 16 and 17 bytes: either side of the 16-byte block boundary.
        (
            b"0123456789abcde",
            0,
            0xa62dd5f6c0bf2351,
            0x4fccf50c7c544cf0,
        ),
        (
            b"0123456789abcdef",
            0,
            0x4be06d94cf4ad1a7,
            0x87c35b5c63a708da,
        ),
        (
            b"0123456789abcdef0",
            0,
            0xeb24ae8785a5c075,
            0x73fb68b3313128ca,
        ),
        (
            b"0123456789abcdef0",
            0x9747b28c,
            0x993262a7b6af8d70,
            0xc738cec6e32ab89c,
        ),
        (
            b"0123456789abcdef0123456789abcdef",
            0,
            0x4f3a26b5d6197cba,
            0x10b5291efa740ca2,
        ),
    ];

    #[test]
    fn murmur3_matches_reference_vectors() {
        for &(input, seed, h1, h2) in MURMUR3_VECTORS {
            let hash = murmur3_x64_128(input, seed);
            assert_eq!(hash as u64, h1, "h1 of {input:?} seed {seed:#x}");
            assert_eq!((hash >> 64) as u64, h2, "h2 of {input:?} seed {seed:#x}");
        }
    }

    #[test]
    fn ring_position_is_low_word_with_seed_zero() {
        assert_eq!(ring_position(b"hello"), 0xcbd8a7b341bd9b02);
        assert_eq!(ring_position(b""), 0);
    }

    #[test]
    fn crc32_matches_reference_vectors() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
        assert_eq!(
            crc32(b"The quick brown fox jumps over the lazy dog"),
            0x414F_A339
        );
    }

    #[test]
    fn incremental_crc_equals_whole() {
        let mut crc = Crc32::new();
        crc.update(b"1234");
        crc.update(b"");
        crc.update(b"56789");
        assert_eq!(crc.finish(), 0xCBF4_3926);
    }
}
