//! Escaping of dumpfile fields (SPEC.md section 6.2).
//!
//! Decoding accepts `\\`, `\n`, `\r`, `\t` and `\xHH` (either case). Encoding writes the
//! four named escapes, `\xhh` (lowercase) for every byte outside the printable ASCII range
//! (the space included unless the style keeps it), `\x3d` for `=` in xattr keys and values,
//! and `\x2d` for a field that is exactly `-` where `-` means "none".

use alloc::vec::Vec;
use core::fmt;

/// Why an escaped field could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EscapeError {
    /// A `\` at the very end of the field.
    #[error("'\\' at the end of the field")]
    TrailingBackslash,
    /// `\x` followed by fewer than two characters.
    #[error("'\\x' needs two hex digits")]
    TruncatedHex,
    /// `\x` followed by something that is not two hex digits.
    #[error("'\\x' followed by a non-hex digit")]
    InvalidHex,
    /// A `\` followed by a character that names no escape.
    #[error("unknown escape '\\{}'", Byte(*.0))]
    Unknown(u8),
}

/// Value of every byte as a hex digit, or `0xff` when it is not one.
// Evaluated at compile time: an out-of-range index or overflow would fail the build.
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
const HEX_VALUES: [u8; 256] = {
    let mut table = [0xffu8; 256];
    let mut c = 0u8;
    loop {
        table[c as usize] = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            _ => 0xff,
        };
        if c == 255 {
            break;
        }
        c += 1;
    }
    table
};

/// The value of one hex digit.
pub(crate) fn hex_value(c: u8) -> Option<u8> {
    HEX_VALUES
        .get(usize::from(c))
        .copied()
        .filter(|&v| v != 0xff)
}

/// Appends the decoded form of `field` to `out`.
///
/// # Errors
/// The first malformed escape.
pub(crate) fn unescape_into(field: &[u8], out: &mut Vec<u8>) -> Result<(), EscapeError> {
    out.reserve(field.len());
    let mut rest = field;
    while let Some(at) = super::find::find_byte(rest, b'\\') {
        let (plain, tail) = rest.split_at(at);
        out.extend_from_slice(plain);
        let (decoded, used) = match tail {
            [_, b'\\', ..] => (b'\\', 2),
            [_, b'n', ..] => (b'\n', 2),
            [_, b'r', ..] => (b'\r', 2),
            [_, b't', ..] => (b'\t', 2),
            [_, b'x', hi, lo, ..] => match (hex_value(*hi), hex_value(*lo)) {
                (Some(hi), Some(lo)) => ((hi << 4) | lo, 4),
                _ => return Err(EscapeError::InvalidHex),
            },
            [_, b'x', ..] => return Err(EscapeError::TruncatedHex),
            [_, other, ..] => return Err(EscapeError::Unknown(*other)),
            _ => return Err(EscapeError::TrailingBackslash),
        };
        out.push(decoded);
        rest = tail.get(used..).unwrap_or_default();
    }
    out.extend_from_slice(rest);
    Ok(())
}

/// The decoded form of `field`: `field` itself when it holds no escape, otherwise the
/// decoding, written into `scratch` (cleared first).
///
/// # Errors
/// The first malformed escape.
pub(crate) fn unescape<'a>(
    field: &'a [u8],
    scratch: &'a mut Vec<u8>,
) -> Result<&'a [u8], EscapeError> {
    if !field.contains(&b'\\') {
        return Ok(field);
    }
    scratch.clear();
    unescape_into(field, scratch)?;
    Ok(scratch)
}

/// The decoded form of `field` as a new vector.
///
/// # Errors
/// The first malformed escape.
pub(crate) fn unescape_owned(field: &[u8]) -> Result<Vec<u8>, EscapeError> {
    if !field.contains(&b'\\') {
        return Ok(field.to_vec());
    }
    let mut out = Vec::new();
    unescape_into(field, &mut out)?;
    Ok(out)
}

/// How a field is escaped when printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Style {
    /// Keep spaces raw (the `ls` path column).
    pub(crate) space_raw: bool,
    /// Escape `=` (xattr keys and values).
    pub(crate) equals: bool,
    /// Escape a field that is exactly `-` (optional fields, where `-` means none).
    pub(crate) lone_dash: bool,
}

impl Style {
    /// PATH, and payloads in `ls` output.
    pub(crate) const PLAIN: Self = Self {
        space_raw: false,
        equals: false,
        lone_dash: false,
    };
    /// PAYLOAD and CONTENT.
    pub(crate) const OPTIONAL: Self = Self {
        space_raw: false,
        equals: false,
        lone_dash: true,
    };
    /// Xattr keys and values.
    pub(crate) const XATTR: Self = Self {
        space_raw: false,
        equals: true,
        lone_dash: false,
    };
    /// The path column of `ls`.
    pub(crate) const LS_PATH: Self = Self {
        space_raw: true,
        equals: false,
        lone_dash: false,
    };
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends `\xhh` for `b`.
fn push_hex(out: &mut Vec<u8>, b: u8) {
    let hi = HEX.get(usize::from(b >> 4)).copied().unwrap_or(b'0');
    let lo = HEX.get(usize::from(b & 0xf)).copied().unwrap_or(b'0');
    out.extend_from_slice(&[b'\\', b'x', hi, lo]);
}

/// Whether `b` is printed as itself (before the named escapes are considered).
fn is_raw(b: u8, style: Style) -> bool {
    match b {
        b'=' => !style.equals,
        b' ' => style.space_raw,
        0x21..=0x7e => b != b'\\',
        _ => false,
    }
}

/// Appends the escaped form of `bytes` to `out`.
pub(crate) fn escape_into(bytes: &[u8], style: Style, out: &mut Vec<u8>) {
    if style.lone_dash && bytes == b"-" {
        out.extend_from_slice(b"\\x2d");
        return;
    }
    let mut rest = bytes;
    loop {
        let run = rest
            .iter()
            .position(|&b| !is_raw(b, style))
            .unwrap_or(rest.len());
        let (plain, tail) = rest.split_at(run);
        out.extend_from_slice(plain);
        let Some((&b, tail)) = tail.split_first() else {
            return;
        };
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            _ => push_hex(out, b),
        }
        rest = tail;
    }
}

/// Displays one byte the way the printer would escape it.
struct Byte(u8);

impl fmt::Display for Byte {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Escaped(&[self.0]).fmt(f)
    }
}

/// Displays bytes escaped as in a dumpfile PATH field, so that error messages stay
/// printable and unambiguous whatever the bytes are.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Escaped<'a>(pub(crate) &'a [u8]);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &b in self.0 {
            match b {
                b'\\' => f.write_str("\\\\")?,
                b'\n' => f.write_str("\\n")?,
                b'\r' => f.write_str("\\r")?,
                b'\t' => f.write_str("\\t")?,
                0x21..=0x7e => fmt::Write::write_char(f, char::from(b))?,
                _ => write!(f, "\\x{b:02x}")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    fn esc(bytes: &[u8], style: Style) -> Vec<u8> {
        let mut out = Vec::new();
        escape_into(bytes, style, &mut out);
        out
    }

    #[test]
    fn decodes_every_escape_and_rejects_malformed_ones() {
        type Case<'a> = (&'a [u8], Result<&'a [u8], EscapeError>);
        let table: &[Case<'_>] = &[
            (b"plain", Ok(b"plain")),
            (b"a\\\\b", Ok(b"a\\b")),
            (b"\\n\\r\\t", Ok(b"\n\r\t")),
            (b"\\x41\\x6a\\x6A\\x00\\xff", Ok(b"Ajj\0\xff")),
            (b"\\x2f", Ok(b"/")),
            (b"", Ok(b"")),
            (b"abc\\", Err(EscapeError::TrailingBackslash)),
            (b"\\x4", Err(EscapeError::TruncatedHex)),
            (b"\\x", Err(EscapeError::TruncatedHex)),
            (b"\\xg1", Err(EscapeError::InvalidHex)),
            (b"\\x1g", Err(EscapeError::InvalidHex)),
            (b"\\a", Err(EscapeError::Unknown(b'a'))),
            (b"\\ ", Err(EscapeError::Unknown(b' '))),
        ];
        for (input, want) in table {
            let mut scratch = Vec::new();
            let got = unescape(input, &mut scratch).map(<[u8]>::to_vec);
            assert_eq!(got, want.map(<[u8]>::to_vec), "input {:?}", Escaped(input));
            assert_eq!(unescape_owned(input), want.map(<[u8]>::to_vec));
        }
    }

    #[test]
    fn encodes_like_the_reference_printer() {
        assert_eq!(
            esc(b"a b\\c\nd\re\tf", Style::PLAIN),
            b"a\\x20b\\\\c\\nd\\re\\tf"
        );
        assert_eq!(
            esc(b"\x00\x1f\x7f\x80\xff~!", Style::PLAIN),
            b"\\x00\\x1f\\x7f\\x80\\xff~!"
        );
        assert_eq!(esc(b"k=v", Style::PLAIN), b"k=v");
        assert_eq!(esc(b"k=v", Style::XATTR), b"k\\x3dv");
        assert_eq!(esc(b"-", Style::OPTIONAL), b"\\x2d");
        assert_eq!(esc(b"-", Style::PLAIN), b"-");
        assert_eq!(esc(b"--", Style::OPTIONAL), b"--");
        assert_eq!(esc(b"a b", Style::LS_PATH), b"a b");
        assert_eq!(esc(b"a\tb", Style::LS_PATH), b"a\\tb");
    }

    #[test]
    fn every_byte_round_trips_in_every_style() {
        let all: Vec<u8> = (0..=255u8).collect();
        for style in [Style::PLAIN, Style::OPTIONAL, Style::XATTR] {
            let text = esc(&all, style);
            assert!(!text.contains(&b' ') && !text.contains(&b'\n'));
            assert_eq!(unescape_owned(&text).unwrap(), all);
        }
        assert!(!esc(&all, Style::XATTR).contains(&b'='));
        assert_eq!(unescape_owned(&esc(b"-", Style::OPTIONAL)).unwrap(), b"-");
    }

    #[test]
    fn escaped_display_is_printable() {
        assert_eq!(Escaped(b"/a b\xff\\").to_string(), "/a\\x20b\\xff\\\\");
        assert_eq!(
            EscapeError::Unknown(b'q').to_string(),
            "unknown escape '\\q'"
        );
        assert_eq!(
            EscapeError::Unknown(0).to_string(),
            "unknown escape '\\\\x00'"
        );
    }
}
