//! Byte search eight bytes at a time (SWAR), without `unsafe` or `std`: the line and NUL
//! scans touch every input byte, so they decide the parser's speed on large dumps.

const LOW_BITS: u64 = 0x0101_0101_0101_0101;
const HIGH_BITS: u64 = 0x8080_8080_8080_8080;

/// Nonzero iff some byte of `word` is zero; the lowest flagged byte is the first zero byte
/// (borrows only travel towards higher bytes, so false flags sit above a true one).
fn zero_byte_flags(word: u64) -> u64 {
    word.wrapping_sub(LOW_BITS) & !word & HIGH_BITS
}

/// Position of the first `needle` in `haystack`.
pub(crate) fn find_byte(haystack: &[u8], needle: u8) -> Option<usize> {
    let pattern = LOW_BITS.wrapping_mul(u64::from(needle));
    let mut chunks = haystack.chunks_exact(8);
    let mut base = 0usize;
    for chunk in &mut chunks {
        let bytes: [u8; 8] = chunk.try_into().unwrap_or_default();
        let flags = zero_byte_flags(u64::from_le_bytes(bytes) ^ pattern);
        if flags != 0 {
            let within = usize::try_from(flags.trailing_zeros() >> 3).unwrap_or(0);
            return Some(base.wrapping_add(within));
        }
        base = base.wrapping_add(8);
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| b == needle)
        .map(|i| base.wrapping_add(i))
}

/// Position of the first byte of `haystack` that is `a` or `b`.
pub(crate) fn find_either(haystack: &[u8], a: u8, b: u8) -> Option<usize> {
    let pattern_a = LOW_BITS.wrapping_mul(u64::from(a));
    let pattern_b = LOW_BITS.wrapping_mul(u64::from(b));
    let mut chunks = haystack.chunks_exact(8);
    let mut base = 0usize;
    for chunk in &mut chunks {
        let bytes: [u8; 8] = chunk.try_into().unwrap_or_default();
        let word = u64::from_le_bytes(bytes);
        let flags = zero_byte_flags(word ^ pattern_a) | zero_byte_flags(word ^ pattern_b);
        if flags != 0 {
            let within = usize::try_from(flags.trailing_zeros() >> 3).unwrap_or(0);
            return Some(base.wrapping_add(within));
        }
        base = base.wrapping_add(8);
    }
    chunks
        .remainder()
        .iter()
        .position(|&c| c == a || c == b)
        .map(|i| base.wrapping_add(i))
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
mod tests {
    use super::{find_byte, find_either};
    use alloc::vec;

    #[test]
    fn finds_the_first_occurrence_at_every_offset() {
        for len in 0..40 {
            for at in 0..len {
                let mut hay = vec![b'a'; len];
                hay[at] = b'\n';
                if at + 3 < len {
                    hay[at + 3] = b'\n';
                }
                assert_eq!(find_byte(&hay, b'\n'), Some(at), "len {len} at {at}");
            }
            assert_eq!(find_byte(&vec![b'a'; len], b'\n'), None);
        }
        // Bytes just above and below the needle, and 0x80 patterns, never match falsely.
        let hay = [
            0x0bu8,
            0x09,
            0x8a,
            0x0a ^ 0x80,
            0x01,
            0x00,
            0xff,
            0x0b,
            0x0a,
        ];
        assert_eq!(find_byte(&hay, 0x0a), Some(8));
        assert_eq!(find_byte(&hay, 0x00), Some(5));
        assert_eq!(
            find_byte(&[0x01, 0x00, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01], 0),
            Some(1)
        );
        assert_eq!(find_byte(&[0x00; 8], 0), Some(0));
        for at in 0..20 {
            let mut hay = vec![b'x'; 20];
            hay[at] = 0;
            hay[19] = b'\n';
            assert_eq!(find_either(&hay, b'\n', 0), Some(at));
        }
        assert_eq!(find_either(b"abcdefghijklmnop\n", b'\n', 0), Some(16));
        assert_eq!(find_either(b"abcdefghijk", b'\n', 0), None);
    }
}
