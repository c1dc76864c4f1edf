//! Hashing and checksums, from the well-kept crates rather than by hand.
//!
//! * [`murmur3_x64_128`] is MurmurHash3 x64 128-bit (Austin Appleby's
//!   reference `MurmurHash3_x64_128`), through the `murmur3` crate. The ring
//!   places tokens and keys with [`ring_position`]: seed 0, low 64 bits (the
//!   reference's first output word), so placement is identical on every
//!   platform and in every language binding.
//! * [`crc32`] is CRC-32/ISO-HDLC (the zlib/Ethernet CRC) through
//!   `crc32fast`; the WAL and snapshot formats checksum their records with it.

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
    murmur3_x64_128(bytes, 0) as u64
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

#[cfg(test)]
mod tests {
    use super::*;

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
