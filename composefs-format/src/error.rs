//! The one error type of the image reader and checker: `Copy`, allocation-free, with
//! numeric context (SPEC.md section 3).
//!
//! An [`Error`] is an [`ErrorKind`] (what is wrong, with the offending values) plus, when
//! known, the nid of the inode concerned and the absolute byte offset in the image.
//! [`Error::class`] maps every error to an [`ErrorClass`], from which kernel or FUSE glue
//! picks an errno; the crate itself never names errno numbers.

use core::fmt;

use crate::ondisk::FileType;

/// The broad class of an error, for choosing an errno.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorClass {
    /// The image holds an impossible value (`EFSCORRUPTED` / `EUCLEAN`).
    Corrupted,
    /// The image is valid EROFS but uses something composefs does not (`EOPNOTSUPP`).
    Unsupported,
    /// The caller's buffer is too small (`ERANGE`).
    BufferTooSmall,
    /// A name longer than 255 bytes was asked for (`ENAMETOOLONG`).
    NameTooLong,
    /// A safety limit of this implementation was reached (the image may be valid).
    LimitExceeded,
    /// The thing asked for does not exist (`ENOENT`, or `ENODATA` for an xattr).
    NotFound,
    /// The operation does not apply to this inode, e.g. reading a directory as a symlink
    /// (`ENOTDIR`, `EINVAL`).
    WrongType,
}

/// A safety limit of the checker (see [`crate::limits`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Limit {
    /// [`crate::limits::MAX_CHECK_DEPTH`].
    Depth,
    /// [`crate::limits::MAX_CHECK_ENTRIES`].
    Entries,
}

/// What went wrong, with the offending values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    // ---- bounds -------------------------------------------------------------------------
    /// A structure extends past the end of the image.
    #[error("{len} bytes at offset {offset} extend past the end of the image ({image_len} bytes)")]
    OutOfBounds {
        /// Start of the read.
        offset: u64,
        /// Length of the read.
        len: u64,
        /// Length of the image.
        image_len: u64,
    },
    /// An offset or size computation overflowed 64 bits.
    #[error("offset computation overflows")]
    Overflow,

    // ---- header and superblock ------------------------------------------------------------
    /// The image is shorter than its first block.
    #[error("image of {len} bytes is shorter than one 4096-byte block")]
    ImageTooSmall {
        /// Image length.
        len: u64,
    },
    /// The image length is not a multiple of the block size.
    #[error("image length {len} is not a multiple of 4096")]
    ImageSizeNotBlockMultiple {
        /// Image length.
        len: u64,
    },
    /// Wrong composefs header magic.
    #[error("bad composefs magic {magic:#010x}")]
    ComposefsMagic {
        /// The value found.
        magic: u32,
    },
    /// Unknown composefs header version.
    #[error("unsupported composefs header version {version}")]
    ComposefsHeaderVersion {
        /// The value found.
        version: u32,
    },
    /// composefs format version above 1.
    #[error("unsupported composefs format version {composefs_version}")]
    ComposefsVersion {
        /// The value found.
        composefs_version: u32,
    },
    /// Unknown composefs header flags.
    #[error("unknown composefs header flags {flags:#x}")]
    ComposefsFlags {
        /// The flags found.
        flags: u32,
    },
    /// Wrong EROFS superblock magic.
    #[error("bad EROFS magic {magic:#010x}")]
    ErofsMagic {
        /// The value found.
        magic: u32,
    },
    /// Block size other than 4096.
    #[error("unsupported block size 2^{blkszbits}")]
    BlockSize {
        /// The value found.
        blkszbits: u8,
    },
    /// Directory block size other than the block size.
    #[error("unsupported dirblkbits {dirblkbits}")]
    DirBlockBits {
        /// The value found.
        dirblkbits: u8,
    },
    /// Superblock extension slots.
    #[error("unsupported superblock extension slots {sb_extslots}")]
    SbExtSlots {
        /// The value found.
        sb_extslots: u8,
    },
    /// Compat features we do not know.
    #[error("unsupported compat features {compat:#x}")]
    CompatFeatures {
        /// The unknown bits.
        compat: u32,
    },
    /// Incompat features we do not support.
    #[error("unsupported incompat features {incompat:#x}")]
    IncompatFeatures {
        /// The unsupported bits.
        incompat: u32,
    },
    /// Superblock checksum mismatch.
    #[error("superblock checksum {stored:#010x}, computed {computed:#010x}")]
    SuperblockChecksum {
        /// Stored value.
        stored: u32,
        /// Computed value.
        computed: u32,
    },
    /// `meta_blkaddr` other than 0.
    #[error("unsupported meta_blkaddr {meta_blkaddr} (composefs uses 0)")]
    MetaBlkaddr {
        /// The value found.
        meta_blkaddr: u32,
    },
    /// The root inode is not a directory.
    #[error("root inode is not a directory (mode {mode:#o})")]
    RootNotDirectory {
        /// Its mode.
        mode: u16,
    },
    /// The composefs header `HAS_ACL` flag disagrees with the xattrs found.
    #[error("header HAS_ACL flag is {flag} but POSIX ACL xattrs are {}", if *.found { "present" } else { "absent" })]
    HasAclMismatch {
        /// The flag.
        flag: bool,
        /// Whether an ACL xattr was found.
        found: bool,
    },

    // ---- inodes -----------------------------------------------------------------------------
    /// A nid whose inode would overlap the header or superblock.
    #[error("nid {nid} points into the header or superblock")]
    NidTooSmall {
        /// The nid.
        nid: u64,
    },
    /// `i_format` bits beyond the classic version and layout bits.
    #[error("unsupported i_format {i_format:#06x}")]
    InodeFormat {
        /// The value found.
        i_format: u16,
    },
    /// A data layout composefs does not use (compressed, or undefined).
    #[error("unsupported data layout {layout}")]
    DataLayout {
        /// The raw layout.
        layout: u16,
    },
    /// A mode whose file type bits name no file type.
    #[error("bogus mode {mode:#o}")]
    InodeMode {
        /// The value found.
        mode: u16,
    },
    /// A data layout not allowed for the file type.
    #[error("data layout {layout} not allowed for a {file_type:?}")]
    LayoutForType {
        /// The raw layout.
        layout: u16,
        /// The file type.
        file_type: FileType,
    },
    /// Negative size in an extended inode.
    #[error("negative size {size:#x}")]
    NegativeSize {
        /// The raw value.
        size: u64,
    },
    /// A size the file type does not allow (devices, FIFOs, sockets: 0; directories: > 0;
    /// symlinks: 1..=4095).
    #[error("size {size} not allowed for a {file_type:?}")]
    SizeForType {
        /// The size.
        size: u64,
        /// The file type.
        file_type: FileType,
    },
    /// The inline tail crosses a block boundary.
    #[error("inline data of {len} bytes at offset {offset} crosses a block boundary")]
    InlineCrossesBlock {
        /// Absolute offset of the tail.
        offset: u64,
        /// Its length.
        len: u64,
    },
    /// Data blocks outside the data area of the image.
    #[error(
        "data blocks {blkaddr}..+{count} outside the data area (starts at block {data_start})"
    )]
    DataBlocks {
        /// First block.
        blkaddr: u32,
        /// Number of blocks.
        count: u64,
        /// First block of the data area the view enforces.
        data_start: u64,
    },
    /// Unknown chunk format bits.
    #[error("unsupported chunk format {format:#06x}")]
    ChunkFormat {
        /// The raw format.
        format: u16,
    },
    /// More chunks than any composefs file needs.
    #[error("{chunks} chunks exceed the maximum of 1024")]
    TooManyChunks {
        /// Chunk count.
        chunks: u64,
    },
    /// A chunk map entry that is not a hole.
    #[error("chunk {index} maps block {blkaddr:#x}, composefs chunks are holes")]
    ChunkNotHole {
        /// Chunk index.
        index: u64,
        /// The entry.
        blkaddr: u32,
    },
    /// Reserved bits of `i_u` (chunk-based) or reserved inode fields are not zero.
    #[error("reserved inode field {field} is {value:#x}")]
    InodeReserved {
        /// Which field.
        field: &'static str,
        /// Its value.
        value: u64,
    },
    /// A NUL byte inside a symlink target.
    #[error("NUL byte at {at} in symlink target")]
    SymlinkNul {
        /// Byte index in the target.
        at: u64,
    },
    /// A non-directory with link count 0.
    #[error("link count 0")]
    ZeroNlink,
    /// A directory link count other than 2 + subdirectories.
    #[error("directory link count {nlink}, expected {expected}")]
    DirNlink {
        /// Stored value.
        nlink: u32,
        /// 2 + number of subdirectories.
        expected: u64,
    },
    /// Two inodes whose extents (inode, xattrs, inline part) overlap.
    #[error("inode extent {start}..{end} overlaps nid {other}")]
    InodeOverlap {
        /// Start of this extent.
        start: u64,
        /// End of this extent.
        end: u64,
        /// The other inode.
        other: u64,
    },
    /// Data blocks of two inodes overlap, or data blocks overlap metadata.
    #[error("data blocks {blkaddr}..+{count} overlap {}", DisplayNid(*.other))]
    DataOverlap {
        /// First block.
        blkaddr: u32,
        /// Number of blocks.
        count: u64,
        /// The other inode, or `None` for the metadata area.
        other: Option<u64>,
    },

    // ---- xattrs -------------------------------------------------------------------------------
    /// `i_xattr_icount` of 1 (a 12-byte xattr area), which EROFS does not support.
    #[error("xattr icount 1 is not supported")]
    XattrIcountOne,
    /// More shared xattr ids than the xattr area holds.
    #[error("{shared_count} shared xattrs do not fit in an xattr area of {xattr_isize} bytes")]
    XattrSharedCount {
        /// Stored count.
        shared_count: u8,
        /// Area size.
        xattr_isize: u64,
    },
    /// An inline xattr entry running past the xattr area.
    #[error("xattr entry at {pos} of {len} bytes runs past the xattr area of {xattr_isize} bytes")]
    XattrEntryBounds {
        /// Position of the entry in the area.
        pos: u64,
        /// Entry size with padding.
        len: u64,
        /// Area size.
        xattr_isize: u64,
    },
    /// An unknown or unsupported xattr name index.
    #[error("unsupported xattr name index {index:#x}")]
    XattrNameIndex {
        /// The index.
        index: u8,
    },
    /// An xattr with an empty full name.
    #[error("xattr with an empty name")]
    XattrEmptyName,
    /// An index-0 xattr name that starts with a prefix the writer would have encoded.
    #[error("xattr name stored whole although its prefix has index {index}")]
    XattrNonCanonicalName {
        /// The index the prefix has.
        index: u8,
    },
    /// Two xattrs with the same name on one inode.
    #[error("duplicate xattr name")]
    XattrDuplicate,
    /// The name filter disagrees with the xattrs present.
    #[error("xattr name filter {stored:#010x}, expected {computed:#010x}")]
    XattrNameFilter {
        /// Stored filter.
        stored: u32,
        /// Filter computed from the names.
        computed: u32,
    },
    /// Non-zero reserved bytes in the xattr ibody header.
    #[error("reserved bytes of the xattr header are not zero")]
    XattrReserved,
    /// A shared xattr table entry above the inode area.
    #[error("shared xattr id {id} at offset {offset} lies inside the inode area")]
    SharedXattrInInodes {
        /// The id.
        id: u32,
        /// Absolute offset.
        offset: u64,
    },

    // ---- overlay xattrs ----------------------------------------------------------------------------
    /// A metacopy value neither empty nor the 36-byte SHA-256 form.
    #[error("overlay metacopy value of {len} bytes is malformed")]
    Metacopy {
        /// Length of the value.
        len: u64,
    },
    /// A redirect not of the form `/` + relative path without `.`, `..` or empty components.
    #[error("overlay redirect is malformed (byte {at})")]
    Redirect {
        /// Offset of the first offending byte in the value.
        at: u64,
    },
    /// An overlay xattr on an inode that must not carry it, or an unknown unescaped one.
    #[error("unexpected overlay xattr trusted.overlay.{}", DisplayBytes(.suffix))]
    OverlayXattr {
        /// The part of the name after `trusted.overlay.` (truncated to 24 bytes).
        suffix: ShortName,
    },
    /// A chunk-based (external) regular file without a metacopy xattr.
    #[error("external file without an overlay metacopy xattr")]
    MissingMetacopy,

    // ---- directories ----------------------------------------------------------------------------
    /// The first `nameoff` of a directory block is impossible.
    #[error("block {block}: first nameoff {nameoff} is invalid")]
    DirentNameOff0 {
        /// Directory block index.
        block: u64,
        /// The value found.
        nameoff: u16,
    },
    /// A `nameoff` out of order or past the block.
    #[error("dirent {index}: nameoff {nameoff} is invalid")]
    DirentNameOff {
        /// Index of the dirent in its block.
        index: u64,
        /// The value found.
        nameoff: u16,
    },
    /// A name length outside 1..=255.
    #[error("dirent {index}: name length {len}")]
    DirentNameLen {
        /// Index of the dirent in its block.
        index: u64,
        /// The length.
        len: u64,
    },
    /// A name containing `/` or NUL.
    #[error("dirent {index}: name contains a '/' or NUL byte")]
    DirentNameByte {
        /// Index of the dirent in its block.
        index: u64,
    },
    /// An invalid dirent file type.
    #[error("dirent {index}: file type {file_type} is invalid")]
    DirentFileType {
        /// Index of the dirent in its block.
        index: u64,
        /// The value found.
        file_type: u8,
    },
    /// Non-zero bytes after the last name of a directory block.
    #[error("block {block}: garbage after the last name")]
    DirBlockPadding {
        /// Directory block index.
        block: u64,
    },
    /// Names not in strictly increasing byte order.
    #[error("entry {}: names out of order", DisplayBytes(.name))]
    DirentOrder {
        /// The entry that sorts before its predecessor.
        name: ShortName,
    },
    /// The same name twice in a directory.
    #[error("duplicate entry {}", DisplayBytes(.name))]
    DirentDuplicate {
        /// The name.
        name: ShortName,
    },
    /// The dirent file type differs from the inode's type.
    #[error("entry {}: dirent type {dirent:?} but inode type {inode:?}", DisplayBytes(.name))]
    DirentTypeMismatch {
        /// The name.
        name: ShortName,
        /// Type in the dirent.
        dirent: FileType,
        /// Type of the inode.
        inode: FileType,
    },
    /// A missing, repeated or misdirected `.` or `..`.
    #[error("entry {} points at nid {target}, expected nid {expected}", DisplayBytes(.name))]
    DotTarget {
        /// `.` or `..`.
        name: ShortName,
        /// Where it points.
        target: u64,
        /// Where it should point.
        expected: u64,
    },
    /// `.` or `..` missing or repeated.
    #[error("{count} entries named {}", DisplayBytes(.name))]
    DotCount {
        /// `.` or `..`.
        name: ShortName,
        /// How many there are.
        count: u64,
    },
    /// A directory reachable under more than one name (hard link, alias or cycle).
    #[error("directory nid {nid} is reachable twice (entry {})", DisplayBytes(.name))]
    DirectoryLinkedTwice {
        /// The directory.
        nid: u64,
        /// The second name.
        name: ShortName,
    },

    // ---- API -------------------------------------------------------------------------------------
    /// The caller's buffer is too small.
    #[error("buffer of {len} bytes too small, {needed} needed")]
    BufferTooSmall {
        /// Bytes needed.
        needed: u64,
        /// Bytes given.
        len: u64,
    },
    /// A name longer than 255 bytes.
    #[error("name of {len} bytes is too long")]
    NameTooLong {
        /// Its length.
        len: u64,
    },
    /// No such xattr.
    #[error("no such xattr")]
    XattrNotFound,
    /// No such path.
    #[error("no such file or directory")]
    PathNotFound,
    /// The inode has the wrong type for the operation.
    #[error("a {file_type:?} is not a {expected:?}")]
    WrongType {
        /// Its type.
        file_type: FileType,
        /// The type the operation needs.
        expected: FileType,
    },
    /// A checker limit was reached.
    #[error("limit exceeded: {limit:?}")]
    LimitExceeded {
        /// Which limit.
        limit: Limit,
    },
}

impl ErrorKind {
    /// The class of this error kind.
    #[must_use]
    pub const fn class(&self) -> ErrorClass {
        match self {
            Self::ComposefsHeaderVersion { .. }
            | Self::ComposefsVersion { .. }
            | Self::BlockSize { .. }
            | Self::DirBlockBits { .. }
            | Self::SbExtSlots { .. }
            | Self::CompatFeatures { .. }
            | Self::IncompatFeatures { .. }
            | Self::MetaBlkaddr { .. }
            | Self::InodeFormat { .. }
            | Self::DataLayout { .. }
            | Self::ChunkFormat { .. }
            | Self::XattrIcountOne
            | Self::XattrNameIndex { .. } => ErrorClass::Unsupported,
            Self::BufferTooSmall { .. } => ErrorClass::BufferTooSmall,
            Self::NameTooLong { .. } => ErrorClass::NameTooLong,
            Self::LimitExceeded { .. } => ErrorClass::LimitExceeded,
            Self::XattrNotFound | Self::PathNotFound => ErrorClass::NotFound,
            Self::WrongType { .. } => ErrorClass::WrongType,
            _ => ErrorClass::Corrupted,
        }
    }
}

/// Up to 24 bytes of a name, kept inline so that errors stay `Copy` and allocation-free.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ShortName {
    bytes: [u8; 24],
    len: u8,
    truncated: bool,
}

impl ShortName {
    /// Keeps the first 24 bytes of `name`.
    #[must_use]
    pub fn new(name: &[u8]) -> Self {
        let mut bytes = [0u8; 24];
        let n = name.len().min(bytes.len());
        if let (Some(dst), Some(src)) = (bytes.get_mut(..n), name.get(..n)) {
            dst.copy_from_slice(src);
        }
        Self {
            bytes,
            len: u8::try_from(n).unwrap_or(24),
            truncated: name.len() > n,
        }
    }

    /// The bytes kept.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or(&[])
    }

    /// Whether the name was longer than what is kept.
    #[must_use]
    pub fn is_truncated(&self) -> bool {
        self.truncated
    }
}

impl fmt::Debug for ShortName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

impl fmt::Display for ShortName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&DisplayBytes(self), f)
    }
}

/// Shows bytes as text, escaping non-printable bytes as `\xNN`.
struct DisplayBytes<'a>(&'a ShortName);

impl fmt::Display for DisplayBytes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_escaped(f, self.0.as_bytes())?;
        if self.0.truncated {
            f.write_str("...")?;
        }
        Ok(())
    }
}

/// Writes `bytes` with every byte outside printable ASCII (and `\`) as `\xNN`.
///
/// # Errors
/// Whatever the formatter reports.
pub fn write_escaped(f: &mut dyn fmt::Write, bytes: &[u8]) -> fmt::Result {
    for &b in bytes {
        if b.is_ascii_graphic() && b != b'\\' {
            f.write_char(char::from(b))?;
        } else {
            write!(f, "\\x{b:02x}")?;
        }
    }
    Ok(())
}

struct DisplayNid(Option<u64>);

impl fmt::Display for DisplayNid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(nid) => write!(f, "nid {nid}"),
            None => f.write_str("the metadata area"),
        }
    }
}

/// A reader or checker error: what went wrong, and where.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    nid: Option<u64>,
    offset: Option<u64>,
}

impl Error {
    /// An error with no location.
    #[must_use]
    pub const fn new(kind: ErrorKind) -> Self {
        Self {
            kind,
            nid: None,
            offset: None,
        }
    }

    /// An error about inode `nid`.
    #[must_use]
    pub const fn at_nid(kind: ErrorKind, nid: u64) -> Self {
        Self {
            kind,
            nid: Some(nid),
            offset: None,
        }
    }

    /// Adds the absolute byte offset where the problem is.
    #[must_use]
    pub const fn with_offset(mut self, offset: u64) -> Self {
        self.offset = Some(offset);
        self
    }

    /// Adds the nid, unless one is already set.
    #[must_use]
    pub const fn with_nid(mut self, nid: u64) -> Self {
        if self.nid.is_none() {
            self.nid = Some(nid);
        }
        self
    }

    /// What went wrong.
    #[must_use]
    pub const fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The inode concerned, when known.
    #[must_use]
    pub const fn nid(&self) -> Option<u64> {
        self.nid
    }

    /// The absolute byte offset in the image, when known.
    #[must_use]
    pub const fn offset(&self) -> Option<u64> {
        self.offset
    }

    /// The class of this error, for choosing an errno.
    #[must_use]
    pub const fn class(&self) -> ErrorClass {
        self.kind.class()
    }
}

impl From<ErrorKind> for Error {
    fn from(kind: ErrorKind) -> Self {
        Self::new(kind)
    }
}

impl PartialEq<ErrorKind> for Error {
    fn eq(&self, other: &ErrorKind) -> bool {
        self.kind == *other
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.nid, self.offset) {
            (Some(nid), Some(off)) => write!(f, "nid {nid} (offset {off}): ")?,
            (Some(nid), None) => write!(f, "nid {nid}: ")?,
            (None, Some(off)) => write!(f, "offset {off}: ")?,
            (None, None) => {}
        }
        fmt::Display::fmt(&self.kind, f)
    }
}

impl core::error::Error for Error {}

#[cfg(feature = "std")]
impl From<Error> for std::io::Error {
    fn from(e: Error) -> Self {
        use std::io::ErrorKind as K;
        let kind = match e.class() {
            ErrorClass::Corrupted => K::InvalidData,
            ErrorClass::Unsupported => K::Unsupported,
            ErrorClass::NotFound => K::NotFound,
            ErrorClass::WrongType | ErrorClass::BufferTooSmall | ErrorClass::NameTooLong => {
                K::InvalidInput
            }
            ErrorClass::LimitExceeded => K::Other,
        };
        Self::new(kind, e)
    }
}

/// Result with [`Error`].
pub type Result<T> = core::result::Result<T, Error>;

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation
)]
mod tests {
    use super::*;
    use std::string::ToString;

    #[test]
    fn display_names_nid_offset_and_values() {
        let e =
            Error::at_nid(ErrorKind::DirentNameLen { index: 3, len: 0 }, 1234).with_offset(39488);
        assert_eq!(
            e.to_string(),
            "nid 1234 (offset 39488): dirent 3: name length 0"
        );
        let e = Error::new(ErrorKind::DirentOrder {
            name: ShortName::new(b"a\x01b"),
        });
        assert_eq!(e.to_string(), "entry a\\x01b: names out of order");
        let long = ShortName::new(&[b'x'; 40]);
        assert!(long.is_truncated());
        assert_eq!(long.as_bytes().len(), 24);
    }

    #[test]
    fn classes_separate_corrupt_from_unsupported() {
        assert_eq!(
            ErrorKind::InodeMode { mode: 0 }.class(),
            ErrorClass::Corrupted
        );
        assert_eq!(
            ErrorKind::DataLayout { layout: 1 }.class(),
            ErrorClass::Unsupported
        );
        assert_eq!(
            ErrorKind::BufferTooSmall { needed: 4, len: 0 }.class(),
            ErrorClass::BufferTooSmall
        );
        assert_eq!(
            ErrorKind::NameTooLong { len: 256 }.class(),
            ErrorClass::NameTooLong
        );
        assert_eq!(
            ErrorKind::LimitExceeded {
                limit: Limit::Depth
            }
            .class(),
            ErrorClass::LimitExceeded
        );
        let io: std::io::Error = Error::new(ErrorKind::XattrNotFound).into();
        assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
    }
}
