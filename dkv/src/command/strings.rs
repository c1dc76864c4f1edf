//! Redis's string and bit operations as pure functions over byte strings:
//! ranges with negative indexes, `SETRANGE`/`SETBIT` edits, bit counts and
//! positions, the longest common subsequence, and Redis's strict integer
//! parsing. No state, no IO: the programs in [`super::program`] call them
//! once they have read the values.

/// The largest string `SETRANGE`, `SETBIT` and `APPEND` may produce
/// (Redis's `proto-max-bulk-len` default, 512 MiB).
pub(crate) const MAX_STRING_LEN: u64 = 512 << 20;

#[cfg(test)]
use crate::counter::format_f64;
pub(crate) use crate::counter::{parse_f64, parse_i64};

/// The byte range `[start, end]` (inclusive, negative from the end) of a
/// string of `len` bytes, clamped as Redis's `GETRANGE` clamps it, or
/// `None` when it selects nothing.
pub(crate) fn byte_range(len: usize, start: i64, end: i64) -> Option<(usize, usize)> {
    if len == 0 || (start < 0 && end < 0 && start > end) {
        return None;
    }
    let len = len as i64;
    let clamp = |i: i64| if i < 0 { (len + i).max(0) } else { i };
    let (start, end) = (clamp(start), clamp(end).min(len - 1));
    if start > end || start >= len {
        return None;
    }
    Some((start as usize, end as usize))
}

/// `value` with `bytes` written at `offset`, zero-padded as needed.
pub(crate) fn set_range(value: &[u8], offset: usize, bytes: &[u8]) -> Vec<u8> {
    let mut out = value.to_vec();
    let end = offset + bytes.len();
    if out.len() < end {
        out.resize(end, 0);
    }
    out[offset..end].copy_from_slice(bytes);
    out
}

/// The bit at `offset` (bit 0 is the most significant bit of byte 0).
pub(crate) fn get_bit(value: &[u8], offset: u64) -> bool {
    let byte = (offset / 8) as usize;
    let mask = 0x80u8 >> (offset % 8);
    value.get(byte).is_some_and(|b| b & mask != 0)
}

/// `value` with the bit at `offset` set to `bit` (grown with zero bytes),
/// and the bit it had.
pub(crate) fn set_bit(value: &[u8], offset: u64, bit: bool) -> (Vec<u8>, bool) {
    let byte = (offset / 8) as usize;
    let mask = 0x80u8 >> (offset % 8);
    let mut out = value.to_vec();
    if out.len() <= byte {
        out.resize(byte + 1, 0);
    }
    let old = out[byte] & mask != 0;
    if bit {
        out[byte] |= mask;
    } else {
        out[byte] &= !mask;
    }
    (out, old)
}

/// Whether a range counts bytes or bits (`BITCOUNT`/`BITPOS ... BYTE|BIT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BitUnit {
    /// Byte indexes (the default).
    Byte,
    /// Bit indexes.
    Bit,
}

/// The bit range `[first, last]` (inclusive) a `start`/`end` pair selects
/// in a string of `len` bytes, in `unit`s; `None` when empty.
fn bit_range(len: usize, start: i64, end: i64, unit: BitUnit) -> Option<(u64, u64)> {
    let total = match unit {
        BitUnit::Byte => len,
        BitUnit::Bit => len * 8,
    };
    let (first, last) = byte_range(total, start, end)?;
    Some(match unit {
        BitUnit::Byte => (first as u64 * 8, last as u64 * 8 + 7),
        BitUnit::Bit => (first as u64, last as u64),
    })
}

/// `BITCOUNT`: set bits in the range (the whole string without one).
pub(crate) fn bit_count(value: &[u8], range: Option<(i64, i64, BitUnit)>) -> u64 {
    let (first, last) = match range {
        None if value.is_empty() => return 0,
        None => (0, value.len() as u64 * 8 - 1),
        Some((start, end, unit)) => match bit_range(value.len(), start, end, unit) {
            Some(bits) => bits,
            None => return 0,
        },
    };
    let mut count = 0;
    let mut bit = first;
    while bit <= last {
        if bit % 8 == 0 && bit + 7 <= last {
            count += u64::from(value[(bit / 8) as usize].count_ones());
            bit += 8;
        } else {
            count += u64::from(get_bit(value, bit));
            bit += 1;
        }
    }
    count
}

/// `BITPOS key bit [start [end [BYTE|BIT]]]`: the first bit equal to
/// `bit` in the range, or -1. Looking for a clear bit with no explicit
/// end finds the first bit past the string when every bit in it is set,
/// as Redis does.
pub(crate) fn bit_pos(
    value: &[u8],
    bit: bool,
    start: Option<i64>,
    end: Option<i64>,
    unit: BitUnit,
) -> i64 {
    if value.is_empty() {
        return if bit { -1 } else { 0 };
    }
    let explicit_end = end.is_some();
    let start = start.unwrap_or(0);
    let end = end.unwrap_or(match unit {
        BitUnit::Byte => value.len() as i64 - 1,
        BitUnit::Bit => value.len() as i64 * 8 - 1,
    });
    let Some((first, last)) = bit_range(value.len(), start, end, unit) else {
        return -1;
    };
    for offset in first..=last {
        if get_bit(value, offset) == bit {
            return offset as i64;
        }
    }
    if !bit && !explicit_end {
        return (last + 1) as i64;
    }
    -1
}

/// One match of `LCS ... IDX`: the ranges in each string (inclusive) and
/// its length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LcsMatch {
    pub a: (usize, usize),
    pub b: (usize, usize),
    pub len: usize,
}

/// The longest common subsequence of `a` and `b`, and its matching ranges
/// from the end backwards, as Redis's `LCS` reports them. Quadratic in
/// time and memory, as Redis's: the caller bounds the inputs.
pub(crate) fn lcs(a: &[u8], b: &[u8]) -> (Vec<u8>, Vec<LcsMatch>) {
    let (n, m) = (a.len(), b.len());
    let width = m + 1;
    let mut table = vec![0u32; (n + 1) * width];
    for i in 1..=n {
        for j in 1..=m {
            table[i * width + j] = if a[i - 1] == b[j - 1] {
                table[(i - 1) * width + j - 1] + 1
            } else {
                table[(i - 1) * width + j].max(table[i * width + j - 1])
            };
        }
    }
    let mut common = Vec::with_capacity(table[n * width + m] as usize);
    let mut matches: Vec<LcsMatch> = Vec::new();
    let mut current: Option<LcsMatch> = None;
    let (mut i, mut j) = (n, m);
    while i > 0 && j > 0 {
        if a[i - 1] == b[j - 1] {
            common.push(a[i - 1]);
            let (ai, bj) = (i - 1, j - 1);
            current = match current {
                Some(run) if run.a.0 == ai + 1 && run.b.0 == bj + 1 => Some(LcsMatch {
                    a: (ai, run.a.1),
                    b: (bj, run.b.1),
                    len: run.len + 1,
                }),
                other => {
                    matches.extend(other);
                    Some(LcsMatch {
                        a: (ai, ai),
                        b: (bj, bj),
                        len: 1,
                    })
                }
            };
            i -= 1;
            j -= 1;
        } else if table[(i - 1) * width + j] > table[i * width + j - 1] {
            i -= 1;
        } else {
            j -= 1;
        }
    }
    matches.extend(current);
    common.reverse();
    (common, matches)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_parse_as_redis_parses_them() {
        assert_eq!(parse_i64(b"0"), Some(0));
        assert_eq!(parse_i64(b"-12"), Some(-12));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [
            &b""[..],
            b"-",
            b"+1",
            b"01",
            b" 1",
            b"1 ",
            b"1.0",
            b"-0",
            b"9223372036854775808",
            b"abc",
        ] {
            assert_eq!(parse_i64(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn floats_parse_and_print_as_incrbyfloat_does() {
        assert_eq!(parse_f64(b"10.5"), Some(10.5));
        assert_eq!(parse_f64(b"5.0e3"), Some(5000.0));
        assert_eq!(parse_f64(b" 1"), None);
        assert_eq!(parse_f64(b"+inf"), Some(f64::INFINITY));
        assert_eq!(parse_f64(b"nan"), None);
        assert_eq!(format_f64(10.5 + 0.1), "10.6");
        assert_eq!(format_f64(5000.0), "5000");
        assert_eq!(format_f64(-0.0), "0");
    }

    #[test]
    fn ranges_follow_getrange() {
        let s = b"Hello World";
        let pick = |a, b| byte_range(s.len(), a, b).map(|(x, y)| &s[x..=y]);
        assert_eq!(pick(0, 3), Some(&b"Hell"[..]));
        assert_eq!(pick(-3, -1), Some(&b"rld"[..]));
        assert_eq!(pick(0, -1), Some(&s[..]));
        assert_eq!(pick(10, 100), Some(&b"d"[..]));
        assert_eq!(pick(5, 3), None);
        assert_eq!(pick(-1, -5), None);
        assert_eq!(pick(100, 200), None);
        assert_eq!(byte_range(0, 0, -1), None);
    }

    #[test]
    fn edits_and_bits() {
        assert_eq!(set_range(b"Hello World", 6, b"Redis"), b"Hello Redis");
        assert_eq!(set_range(b"", 3, b"x"), b"\0\0\0x");
        let (v, old) = set_bit(b"", 7, true);
        assert_eq!((v.as_slice(), old), (&[1u8][..], false));
        let (v, old) = set_bit(&v, 7, false);
        assert_eq!((v.as_slice(), old), (&[0u8][..], true));
        assert!(get_bit(b"\x80", 0) && !get_bit(b"\x80", 1) && !get_bit(b"", 100));
        assert_eq!(bit_count(b"foobar", None), 26);
        assert_eq!(bit_count(b"foobar", Some((0, 0, BitUnit::Byte))), 4);
        assert_eq!(bit_count(b"foobar", Some((1, 1, BitUnit::Byte))), 6);
        assert_eq!(bit_count(b"foobar", Some((5, 30, BitUnit::Bit))), 17);
        assert_eq!(
            bit_pos(b"\xff\xf0\x00", false, None, None, BitUnit::Byte),
            12
        );
        assert_eq!(
            bit_pos(b"\x00\xff\xf0", true, Some(0), None, BitUnit::Byte),
            8
        );
        assert_eq!(
            bit_pos(b"\x00\xff\xf0", true, Some(2), None, BitUnit::Byte),
            16
        );
        assert_eq!(
            bit_pos(b"\x00\x00\x00", true, None, None, BitUnit::Byte),
            -1
        );
        assert_eq!(bit_pos(b"\xff\xff", false, None, None, BitUnit::Byte), 16);
        assert_eq!(
            bit_pos(b"\xff\xff", false, Some(0), Some(-1), BitUnit::Byte),
            -1
        );
        assert_eq!(bit_pos(b"", false, None, None, BitUnit::Byte), 0);
    }

    #[test]
    fn lcs_finds_the_subsequence_and_its_matches() {
        let (common, matches) = lcs(b"ohmytext", b"mynewtext");
        assert_eq!(common, b"mytext");
        assert_eq!(
            matches,
            vec![
                LcsMatch {
                    a: (4, 7),
                    b: (5, 8),
                    len: 4
                },
                LcsMatch {
                    a: (2, 3),
                    b: (0, 1),
                    len: 2
                },
            ]
        );
        assert_eq!(lcs(b"", b"abc").0, b"");
    }
}
