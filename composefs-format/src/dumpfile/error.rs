//! Parse errors: which line, which field, and what was wrong.

use alloc::vec::Vec;
use core::fmt;

use super::escape::{EscapeError, Escaped};
use crate::limits::{
    MAX_CHUNKS, MAX_DUMP_XATTR_TEXT, MAX_INLINE_CONTENT, MAX_NAME_LEN, MAX_PAYLOAD_LEN,
    MAX_XATTR_BUDGET, MAX_XATTR_NAME_LEN, MAX_XATTR_VALUE_LEN,
};
use crate::tree::TreeError;

/// The part of a dumpfile line an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    /// The whole line (empty, embedded NUL, missing newline, too long).
    Line,
    /// The whole file (no entries at all).
    File,
    /// PATH.
    Path,
    /// SIZE.
    Size,
    /// MODE.
    Mode,
    /// NLINK.
    Nlink,
    /// UID.
    Uid,
    /// GID.
    Gid,
    /// RDEV.
    Rdev,
    /// MTIME.
    Mtime,
    /// PAYLOAD (symlink target, backing path, or hard link target).
    Payload,
    /// CONTENT.
    Content,
    /// DIGEST.
    Digest,
    /// The `KEY=VALUE` xattrs after the eleven fields.
    Xattr,
}

impl Field {
    /// The field's name as in composefs-dump(5), e.g. `MTIME`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Line => "line",
            Self::File => "file",
            Self::Path => "PATH",
            Self::Size => "SIZE",
            Self::Mode => "MODE",
            Self::Nlink => "NLINK",
            Self::Uid => "UID",
            Self::Gid => "GID",
            Self::Rdev => "RDEV",
            Self::Mtime => "MTIME",
            Self::Payload => "PAYLOAD",
            Self::Content => "CONTENT",
            Self::Digest => "DIGEST",
            Self::Xattr => "XATTR",
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Displays a radix as the kind of number it reads.
fn radix_name(radix: u32) -> &'static str {
    if radix == 8 {
        "an octal"
    } else {
        "a decimal"
    }
}

/// What was wrong. Paths in the context are unescaped bytes; messages show them escaped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseErrorKind {
    /// A raw NUL byte in the line, at this byte offset.
    #[error("NUL byte at offset {offset}")]
    EmbeddedNul {
        /// Offset in the line.
        offset: usize,
    },
    /// A line longer than [`crate::limits::MAX_DUMP_LINE_LEN`].
    #[error("line of {len} bytes or more is longer than {max}", max = crate::limits::MAX_DUMP_LINE_LEN)]
    LineTooLong {
        /// Its length (or the length read before giving up).
        len: usize,
    },
    /// A newline byte inside a line given to [`super::Parser::parse_line`].
    #[error("newline at offset {offset} inside the line")]
    EmbeddedNewline {
        /// Offset in the line.
        offset: usize,
    },
    /// An empty line.
    #[error("empty line")]
    EmptyLine,
    /// Strict mode: the last line does not end with a newline.
    #[error("missing newline at the end of the last line")]
    MissingNewline,
    /// The line is malformed and ends in a raw carriage return: a dump written with CRLF
    /// line endings, whose last field then carries the `\r`.
    #[error("the line ends in a carriage return (CRLF line endings?); dump lines end in a bare newline, and the {field} field is not valid with it")]
    CarriageReturn {
        /// The field that was rejected.
        field: Field,
    },
    /// The input holds no line at all.
    #[error("no entries in the dump")]
    NoEntries,
    /// More entries than a tree can hold.
    #[error("too many entries")]
    TooManyEntries,
    /// A malformed escape.
    #[error("{0}")]
    Escape(EscapeError),
    /// A number field that is empty.
    #[error("empty field, expected a number")]
    EmptyNumber,
    /// A number field with a character that is not a digit.
    #[error("not {} number", radix_name(*.radix))]
    NotANumber {
        /// 8 or 10.
        radix: u32,
    },
    /// A number too large for the field.
    #[error("number larger than {max}")]
    NumberTooLarge {
        /// The largest value the field takes.
        max: u64,
    },
    /// A field that must not contain NUL decodes to one (`\x00`).
    #[error("contains a NUL byte")]
    Nul,
    /// MODE names no file type.
    #[error("invalid file type in mode {mode:o}")]
    InvalidFileType {
        /// The mode.
        mode: u32,
    },
    /// A hard link line (`@` mode) with a directory mode.
    #[error("a directory cannot be a hard link")]
    HardlinkedDirectory,
    /// MTIME without the `.` between seconds and nanoseconds.
    #[error("expected SECONDS.NANOSECONDS")]
    MissingDot,
    /// MTIME seconds outside the 64-bit signed range.
    #[error("seconds outside the 64-bit signed range")]
    SecondsOutOfRange,
    /// MTIME nanoseconds of 10^9 or more.
    #[error("nanoseconds {nsec} not below 1000000000")]
    NanosecondsOutOfRange {
        /// The nanoseconds given.
        nsec: u64,
    },
    /// PATH is empty.
    #[error("empty path")]
    EmptyPath,
    /// An entry other than the root comes before the root.
    #[error("the first entry must be the root directory /")]
    NoRoot,
    /// The root appears twice.
    #[error("the root / appears twice")]
    DuplicateRoot,
    /// The root is not a directory.
    #[error("the root / must be a directory")]
    RootNotDirectory,
    /// An empty path component: `//`, a trailing `/`, or a path of only slashes.
    #[error("empty path component")]
    EmptyComponent,
    /// A `.` or `..` path component.
    #[error("'.' or '..' path component")]
    DotComponent,
    /// A path component longer than 255 bytes.
    #[error("name of {len} bytes is longer than {MAX_NAME_LEN}")]
    NameTooLong {
        /// Its length.
        len: usize,
    },
    /// The parent directory has no entry yet.
    #[error("parent directory {} does not exist", Escaped(.parent))]
    ParentMissing {
        /// The parent's absolute path.
        parent: Vec<u8>,
    },
    /// The parent is not a directory (or is a hard link).
    #[error("parent {} is not a directory", Escaped(.parent))]
    ParentNotDirectory {
        /// The parent's absolute path.
        parent: Vec<u8>,
    },
    /// The path was already given.
    #[error("path already exists")]
    Exists,
    /// A hard link line whose PAYLOAD is `-`.
    #[error("a hard link needs a target path")]
    HardlinkWithoutTarget,
    /// A hard link whose target path names nothing.
    #[error("hard link target {} does not exist", Escaped(.target))]
    HardlinkTargetMissing {
        /// The target path.
        target: Vec<u8>,
    },
    /// A hard link whose target is itself.
    #[error("hard link to itself")]
    HardlinkToItself,
    /// Hard links that lead back to themselves.
    #[error("hard link cycle through {}", Escaped(.target))]
    HardlinkCycle {
        /// The target path that closes the cycle.
        target: Vec<u8>,
    },
    /// A hard link to a directory.
    #[error("hard link target {} is a directory", Escaped(.target))]
    HardlinkToDirectory {
        /// The target path.
        target: Vec<u8>,
    },
    /// A symlink whose target is `-` or empty.
    #[error("a symlink needs a non-empty target")]
    SymlinkWithoutTarget,
    /// A payload of 4096 bytes or more.
    #[error("{len} bytes, longer than {MAX_PAYLOAD_LEN}")]
    PayloadTooLong {
        /// Its length.
        len: usize,
    },
    /// A regular file's backing path that starts with `/`.
    #[error("backing path must be relative to the object store, not absolute")]
    PayloadAbsolute,
    /// A regular file's backing path with an empty, `.` or `..` component.
    #[error("backing path has an empty, '.' or '..' component")]
    PayloadComponent,
    /// CONTENT longer than 5000 bytes.
    #[error("inline content of {len} bytes exceeds {MAX_INLINE_CONTENT}")]
    ContentTooLong {
        /// Its length.
        len: usize,
    },
    /// CONTENT whose length differs from SIZE.
    #[error("content length {len} does not match SIZE {size}")]
    ContentSize {
        /// Decoded content length.
        len: usize,
        /// SIZE.
        size: u64,
    },
    /// Strict mode: a symlink with non-empty content.
    #[error("a symlink cannot have content")]
    SymlinkContent,
    /// Strict mode: a symlink whose SIZE differs from its target length.
    #[error("SIZE {size} does not match the symlink target length {target_len}")]
    SymlinkSize {
        /// SIZE.
        size: u64,
        /// Target length.
        target_len: usize,
    },
    /// An external regular file that needs more chunks than an inode can map.
    #[error("a file of {size} bytes needs {chunks} chunks, more than {MAX_CHUNKS}")]
    TooManyChunks {
        /// SIZE.
        size: u64,
        /// Chunks it needs.
        chunks: u64,
    },
    /// NLINK 0 on something that is not a directory.
    #[error("0 links on a non-directory")]
    ZeroNlink,
    /// Strict mode: a non-zero RDEV on something that is not a device.
    #[error("device number {rdev} on a file that is not a device")]
    RdevOnNonDevice {
        /// RDEV.
        rdev: u32,
    },
    /// DIGEST of the wrong length.
    #[error("expected 64 hex digits, got {len}")]
    DigestLength {
        /// Decoded length.
        len: usize,
    },
    /// DIGEST with a character that is not a hex digit.
    #[error("not a hex digit at offset {offset}")]
    DigestNotHex {
        /// Offset in the decoded digest.
        offset: usize,
    },
    /// The xattr part of the line is too long.
    #[error("xattr text of {len} bytes exceeds {MAX_DUMP_XATTR_TEXT}")]
    XattrTextTooLong {
        /// Its length.
        len: usize,
    },
    /// An xattr without `=`.
    #[error("xattr {index}: missing '='")]
    XattrMissingEquals {
        /// 1-based position of the xattr on the line.
        index: usize,
    },
    /// An xattr with an empty key.
    #[error("xattr {index}: empty key")]
    XattrKeyEmpty {
        /// 1-based position of the xattr on the line.
        index: usize,
    },
    /// An xattr key longer than 255 bytes.
    #[error("xattr {index}: key of {len} bytes is longer than {MAX_XATTR_NAME_LEN}")]
    XattrKeyTooLong {
        /// 1-based position of the xattr on the line.
        index: usize,
        /// Key length.
        len: usize,
    },
    /// An xattr key containing a NUL byte.
    #[error("xattr {index}: key contains a NUL byte")]
    XattrKeyNul {
        /// 1-based position of the xattr on the line.
        index: usize,
    },
    /// An xattr value longer than 65535 bytes.
    #[error("xattr {index}: value of {len} bytes is longer than {MAX_XATTR_VALUE_LEN}")]
    XattrValueTooLong {
        /// 1-based position of the xattr on the line.
        index: usize,
        /// Value length.
        len: usize,
    },
    /// The xattrs of the inode exceed the per-inode budget.
    #[error("xattr {index}: the xattrs need {needed} bytes, more than {MAX_XATTR_BUDGET}")]
    XattrBudget {
        /// 1-based position of the xattr that crossed the budget.
        index: usize,
        /// Budget needed at that point.
        needed: usize,
    },
    /// The tree refused a change; the parser's own checks should have caught it first.
    #[error("{0}")]
    Tree(TreeError),
}

/// A dumpfile that cannot be parsed: the 1-based line, the field, and what was wrong.
///
/// Displays as `LINE: FIELD: message` (`LINE: message` for whole-line errors, only the
/// message for whole-file errors); a caller prefixes the file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line number; 0 for whole-file errors.
    pub line: u64,
    /// The field.
    pub field: Field,
    /// What was wrong.
    pub kind: ParseErrorKind,
}

impl ParseError {
    /// An error at `line` in `field`.
    #[must_use]
    pub fn new(line: u64, field: Field, kind: ParseErrorKind) -> Self {
        Self { line, field, kind }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.field {
            Field::File => write!(f, "{}", self.kind),
            Field::Line => write!(f, "{}: {}", self.line, self.kind),
            field => write!(f, "{}: {}: {}", self.line, field, self.kind),
        }
    }
}

impl core::error::Error for ParseError {}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec;

    #[test]
    fn messages_name_line_field_and_problem() {
        let table = [
            (
                ParseError::new(
                    3,
                    Field::Mode,
                    ParseErrorKind::InvalidFileType { mode: 0o644 },
                ),
                "3: MODE: invalid file type in mode 644",
            ),
            (
                ParseError::new(7, Field::Digest, ParseErrorKind::DigestLength { len: 63 }),
                "7: DIGEST: expected 64 hex digits, got 63",
            ),
            (
                ParseError::new(
                    2,
                    Field::Path,
                    ParseErrorKind::ParentMissing {
                        parent: b"/a/b".to_vec(),
                    },
                ),
                "2: PATH: parent directory /a/b does not exist",
            ),
            (
                ParseError::new(
                    2,
                    Field::Path,
                    ParseErrorKind::ParentNotDirectory {
                        parent: vec![b'/', b'a', b' ', 0xff],
                    },
                ),
                "2: PATH: parent /a\\x20\\xff is not a directory",
            ),
            (
                ParseError::new(9, Field::Line, ParseErrorKind::EmptyLine),
                "9: empty line",
            ),
            (
                ParseError::new(0, Field::File, ParseErrorKind::NoEntries),
                "no entries in the dump",
            ),
            (
                ParseError::new(4, Field::Mode, ParseErrorKind::NotANumber { radix: 8 }),
                "4: MODE: not an octal number",
            ),
            (
                ParseError::new(
                    4,
                    Field::Uid,
                    ParseErrorKind::NumberTooLarge { max: 4_294_967_295 },
                ),
                "4: UID: number larger than 4294967295",
            ),
            (
                ParseError::new(
                    5,
                    Field::Xattr,
                    ParseErrorKind::XattrBudget {
                        index: 2,
                        needed: 32768,
                    },
                ),
                "5: XATTR: xattr 2: the xattrs need 32768 bytes, more than 32767",
            ),
            (
                ParseError::new(
                    6,
                    Field::Size,
                    ParseErrorKind::TooManyChunks {
                        size: 9_500_000_000_000_000,
                        chunks: 1080,
                    },
                ),
                "6: SIZE: a file of 9500000000000000 bytes needs 1080 chunks, more than 1024",
            ),
            (
                ParseError::new(
                    1,
                    Field::Path,
                    ParseErrorKind::Escape(EscapeError::InvalidHex),
                ),
                "1: PATH: '\\x' followed by a non-hex digit",
            ),
        ];
        for (err, want) in table {
            assert_eq!(err.to_string(), want);
        }
    }
}
