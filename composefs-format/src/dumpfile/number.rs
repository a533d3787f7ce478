//! The numeric fields of a dumpfile line, MTIME, and DIGEST (SPEC.md section 6.3).
//!
//! Numbers are plain digit strings: no sign (except MTIME seconds), no spaces, no prefix,
//! and they must fit their field; the reference's `strtoull` is laxer (see SPEC.md
//! section 10).

use super::error::ParseErrorKind;
use crate::tree::Mtime;

/// Parses an unsigned number of the given radix (8 or 10).
///
/// # Errors
/// [`ParseErrorKind::EmptyNumber`], [`ParseErrorKind::NotANumber`], or
/// [`ParseErrorKind::NumberTooLarge`] past `u64::MAX`.
pub(crate) fn parse_u64(text: &[u8], radix: u32) -> Result<u64, ParseErrorKind> {
    if text.is_empty() {
        return Err(ParseErrorKind::EmptyNumber);
    }
    let mut value: u64 = 0;
    for &c in text {
        let digit = u64::from(c.wrapping_sub(b'0'));
        if digit >= u64::from(radix) {
            return Err(ParseErrorKind::NotANumber { radix });
        }
        value = value
            .checked_mul(u64::from(radix))
            .and_then(|v| v.checked_add(digit))
            .ok_or(ParseErrorKind::NumberTooLarge { max: u64::MAX })?;
    }
    Ok(value)
}

/// Parses an unsigned number that must fit in 32 bits.
///
/// # Errors
/// As [`parse_u64`], and [`ParseErrorKind::NumberTooLarge`] past `u32::MAX`.
pub(crate) fn parse_u32(text: &[u8], radix: u32) -> Result<u32, ParseErrorKind> {
    let max = u64::from(u32::MAX);
    let value = parse_u64(text, radix).map_err(|e| match e {
        ParseErrorKind::NumberTooLarge { .. } => ParseErrorKind::NumberTooLarge { max },
        other => other,
    })?;
    u32::try_from(value).map_err(|_| ParseErrorKind::NumberTooLarge { max })
}

/// Parses MTIME: `SECONDS.NANOSECONDS`, seconds optionally negative, nanoseconds below
/// 10^9.
///
/// # Errors
/// A missing `.`, malformed numbers, seconds outside `i64`, or nanoseconds of 10^9 or
/// more.
pub(crate) fn parse_mtime(text: &[u8]) -> Result<Mtime, ParseErrorKind> {
    let dot = text
        .iter()
        .position(|&b| b == b'.')
        .ok_or(ParseErrorKind::MissingDot)?;
    let (sec_text, nsec_text) = text.split_at(dot);
    let nsec_text = nsec_text.get(1..).unwrap_or_default();
    let sec = match sec_text.split_first() {
        Some((b'-', digits)) => {
            let magnitude = parse_u64(digits, 10).map_err(|e| match e {
                ParseErrorKind::NumberTooLarge { .. } => ParseErrorKind::SecondsOutOfRange,
                ParseErrorKind::EmptyNumber => ParseErrorKind::NotANumber { radix: 10 },
                other => other,
            })?;
            0i64.checked_sub_unsigned(magnitude)
                .ok_or(ParseErrorKind::SecondsOutOfRange)?
        }
        _ => {
            let value = parse_u64(sec_text, 10).map_err(|e| match e {
                ParseErrorKind::NumberTooLarge { .. } => ParseErrorKind::SecondsOutOfRange,
                other => other,
            })?;
            i64::try_from(value).map_err(|_| ParseErrorKind::SecondsOutOfRange)?
        }
    };
    let nsec = parse_u64(nsec_text, 10)?;
    let nsec = u32::try_from(nsec)
        .ok()
        .filter(|&n| n < 1_000_000_000)
        .ok_or(ParseErrorKind::NanosecondsOutOfRange { nsec })?;
    Ok(Mtime { sec, nsec })
}

/// Parses a DIGEST: exactly 64 hex digits, either case.
///
/// # Errors
/// [`ParseErrorKind::DigestLength`] or [`ParseErrorKind::DigestNotHex`].
pub(crate) fn parse_digest(text: &[u8]) -> Result<[u8; 32], ParseErrorKind> {
    if text.len() != 64 {
        return Err(ParseErrorKind::DigestLength { len: text.len() });
    }
    let mut digest = [0u8; 32];
    for ((byte, pair), at) in digest
        .iter_mut()
        .zip(text.chunks_exact(2))
        .zip((0usize..).step_by(2))
    {
        let (hi, lo) = match pair {
            [hi, lo] => (*hi, *lo),
            _ => return Err(ParseErrorKind::DigestLength { len: text.len() }),
        };
        let hi = super::escape::hex_value(hi).ok_or(ParseErrorKind::DigestNotHex { offset: at })?;
        let lo = super::escape::hex_value(lo).ok_or(ParseErrorKind::DigestNotHex {
            offset: at.saturating_add(1),
        })?;
        *byte = (hi << 4) | lo;
    }
    Ok(digest)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use ParseErrorKind as K;

    #[test]
    fn unsigned_numbers_are_plain_digit_strings() {
        let table: &[(&[u8], u32, Result<u64, K>)] = &[
            (b"0", 10, Ok(0)),
            (b"0042", 10, Ok(42)),
            (b"18446744073709551615", 10, Ok(u64::MAX)),
            (
                b"18446744073709551616",
                10,
                Err(K::NumberTooLarge { max: u64::MAX }),
            ),
            (b"", 10, Err(K::EmptyNumber)),
            (b"+1", 10, Err(K::NotANumber { radix: 10 })),
            (b"-1", 10, Err(K::NotANumber { radix: 10 })),
            (b" 1", 10, Err(K::NotANumber { radix: 10 })),
            (b"1\r", 10, Err(K::NotANumber { radix: 10 })),
            (b"0x10", 10, Err(K::NotANumber { radix: 10 })),
            (b"100644", 8, Ok(0o100644)),
            (b"8", 8, Err(K::NotANumber { radix: 8 })),
        ];
        for (text, radix, want) in table {
            assert_eq!(&parse_u64(text, *radix), want, "{text:?}");
        }
        assert_eq!(parse_u32(b"4294967295", 10), Ok(u32::MAX));
        assert_eq!(
            parse_u32(b"4294967296", 10),
            Err(K::NumberTooLarge { max: 4_294_967_295 })
        );
        assert_eq!(
            parse_u32(b"99999999999999999999", 10),
            Err(K::NumberTooLarge { max: 4_294_967_295 })
        );
        assert_eq!(parse_u32(b"37777777777", 8), Ok(u32::MAX));
        assert_eq!(
            parse_u32(b"40000000000", 8),
            Err(K::NumberTooLarge { max: 4_294_967_295 })
        );
    }

    #[test]
    fn mtime_needs_a_dot_allows_negative_seconds_and_bounds_nanoseconds() {
        let table: &[(&[u8], Result<Mtime, K>)] = &[
            (b"0.0", Ok(Mtime { sec: 0, nsec: 0 })),
            (
                b"1633950376.5",
                Ok(Mtime {
                    sec: 1_633_950_376,
                    nsec: 5,
                }),
            ),
            (
                b"-1.999999999",
                Ok(Mtime {
                    sec: -1,
                    nsec: 999_999_999,
                }),
            ),
            (
                b"-9223372036854775808.0",
                Ok(Mtime {
                    sec: i64::MIN,
                    nsec: 0,
                }),
            ),
            (
                b"9223372036854775807.0",
                Ok(Mtime {
                    sec: i64::MAX,
                    nsec: 0,
                }),
            ),
            (b"9223372036854775808.0", Err(K::SecondsOutOfRange)),
            (b"-9223372036854775809.0", Err(K::SecondsOutOfRange)),
            (b"99999999999999999999999.0", Err(K::SecondsOutOfRange)),
            (b"5", Err(K::MissingDot)),
            (b"5.", Err(K::EmptyNumber)),
            (b".5", Err(K::EmptyNumber)),
            (b"-.5", Err(K::NotANumber { radix: 10 })),
            (
                b"1.1000000000",
                Err(K::NanosecondsOutOfRange {
                    nsec: 1_000_000_000,
                }),
            ),
            (b"1.-1", Err(K::NotANumber { radix: 10 })),
            (b"1.2.3", Err(K::NotANumber { radix: 10 })),
        ];
        for (text, want) in table {
            assert_eq!(&parse_mtime(text), want, "{text:?}");
        }
    }

    #[test]
    fn digest_is_exactly_64_hex_digits() {
        let hex = b"00112233445566778899aabbccddeeffFFEEDDCCBBAA99887766554433221100";
        let d = parse_digest(hex).unwrap();
        assert_eq!(d[0], 0x00);
        assert_eq!(d[1], 0x11);
        assert_eq!(d[16], 0xff);
        assert_eq!(d[31], 0x00);
        assert_eq!(parse_digest(&hex[..63]), Err(K::DigestLength { len: 63 }));
        assert_eq!(parse_digest(b""), Err(K::DigestLength { len: 0 }));
        let mut bad = *hex;
        bad[7] = b'g';
        assert_eq!(parse_digest(&bad), Err(K::DigestNotHex { offset: 7 }));
    }
}
