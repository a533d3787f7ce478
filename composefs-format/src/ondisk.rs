//! Raw on-disk structures and constants of a composefs image (SPEC.md section 2).
//!
//! Everything here is plain layout: `#[repr(C)]` structs made only of bytes and
//! alignment-1 little-endian integers, so that a struct can be viewed in place over any
//! byte slice without copying and without `unsafe`. Nothing here validates anything;
//! decoding of modes, formats and flags happens in [`FileType`], [`DataLayout`] and the
//! reader views, against explicit masks of what is supported.
//!
//! Names follow the EROFS (`erofs_fs.h`) and composefs (`lcfs-erofs.h`) definitions.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// Little-endian `u16` with alignment 1.
pub type Le16 = zerocopy::byteorder::little_endian::U16;
/// Little-endian `u32` with alignment 1.
pub type Le32 = zerocopy::byteorder::little_endian::U32;
/// Little-endian `u64` with alignment 1.
pub type Le64 = zerocopy::byteorder::little_endian::U64;

// ---------------------------------------------------------------------------------------
// composefs header
// ---------------------------------------------------------------------------------------

/// Magic number of the composefs header at offset 0.
pub const COMPOSEFS_MAGIC: u32 = 0xd078_629a;
/// The only composefs header (container) version: this is not the format version.
pub const COMPOSEFS_HEADER_VERSION: u32 = 1;
/// Header flag: some inode carries a `system.posix_acl_access` or `..._default` xattr.
pub const COMPOSEFS_FLAGS_HAS_ACL: u32 = 1 << 0;
/// Every header flag we know of.
pub const COMPOSEFS_FLAGS_SUPPORTED: u32 = COMPOSEFS_FLAGS_HAS_ACL;
/// Highest composefs format version (`composefs_version`) defined: 1.
pub const COMPOSEFS_VERSION_MAX: u32 = 1;

/// The 32-byte composefs header at offset 0 of the image (SPEC.md 2.1).
///
/// The kernel never reads below offset 1024, which is why it fits before the superblock.
#[derive(Debug, Clone, Copy, Default, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct ComposefsHeader {
    /// [`COMPOSEFS_MAGIC`].
    pub magic: Le32,
    /// [`COMPOSEFS_HEADER_VERSION`].
    pub version: Le32,
    /// `COMPOSEFS_FLAGS_*`.
    pub flags: Le32,
    /// Format version actually used by the writer: 0 or 1.
    pub composefs_version: Le32,

    /// Zero.
    pub unused: [Le32; 4],
}

// ---------------------------------------------------------------------------------------
// EROFS superblock
// ---------------------------------------------------------------------------------------

/// Byte offset of the EROFS superblock.
pub const EROFS_SUPER_OFFSET: u64 = 1024;
/// Magic number of the EROFS superblock.
pub const EROFS_SUPER_MAGIC_V1: u32 = 0xE0F5_E1E2;

/// Compat feature: the superblock carries a crc32c checksum.
pub const EROFS_FEATURE_COMPAT_SB_CHKSUM: u32 = 0x0000_0001;
/// Compat feature: extended inodes carry their own mtime.
pub const EROFS_FEATURE_COMPAT_MTIME: u32 = 0x0000_0002;
/// Compat feature: xattr ibody headers carry a name (bloom) filter.
pub const EROFS_FEATURE_COMPAT_XATTR_FILTER: u32 = 0x0000_0004;
/// Compat features a composefs reader understands.
pub const EROFS_FEATURE_COMPAT_SUPPORTED: u32 =
    EROFS_FEATURE_COMPAT_SB_CHKSUM | EROFS_FEATURE_COMPAT_MTIME | EROFS_FEATURE_COMPAT_XATTR_FILTER;
/// Compat features the composefs writer sets.
pub const COMPOSEFS_FEATURE_COMPAT: u32 =
    EROFS_FEATURE_COMPAT_MTIME | EROFS_FEATURE_COMPAT_XATTR_FILTER;

/// Incompat feature: zero padding for compressed data (never in composefs).
pub const EROFS_FEATURE_INCOMPAT_ZERO_PADDING: u32 = 0x0000_0001;
/// Incompat feature: compression configs / big pclusters (never in composefs).
pub const EROFS_FEATURE_INCOMPAT_COMPR_CFGS: u32 = 0x0000_0002;
/// Incompat feature: chunk-based files. composefs uses chunk-based inodes without setting it.
pub const EROFS_FEATURE_INCOMPAT_CHUNKED_FILE: u32 = 0x0000_0004;
/// Incompat feature: device table (never in composefs).
pub const EROFS_FEATURE_INCOMPAT_DEVICE_TABLE: u32 = 0x0000_0008;
/// Incompat feature: tail packing of compressed files (never in composefs).
pub const EROFS_FEATURE_INCOMPAT_ZTAILPACKING: u32 = 0x0000_0010;
/// Incompat feature: fragments / dedupe (never in composefs).
pub const EROFS_FEATURE_INCOMPAT_FRAGMENTS: u32 = 0x0000_0020;
/// Incompat feature: long xattr name prefixes (never in composefs).
pub const EROFS_FEATURE_INCOMPAT_XATTR_PREFIXES: u32 = 0x0000_0040;
/// Incompat features a composefs reader accepts: the reference writes 0, and a
/// chunk-based composefs image may honestly advertise `CHUNKED_FILE`.
pub const EROFS_FEATURE_INCOMPAT_SUPPORTED: u32 = EROFS_FEATURE_INCOMPAT_CHUNKED_FILE;

/// The 128-byte EROFS superblock at byte 1024 (SPEC.md 2.2).
#[derive(Debug, Clone, Copy, Default, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct Superblock {
    /// [`EROFS_SUPER_MAGIC_V1`].
    pub magic: Le32,
    /// crc32c of the superblock block, only meaningful with `SB_CHKSUM`.
    pub checksum: Le32,
    /// `EROFS_FEATURE_COMPAT_*`.
    pub feature_compat: Le32,
    /// log2 of the block size; 12 in composefs.
    pub blkszbits: u8,
    /// Number of 16-byte superblock extension slots.
    pub sb_extslots: u8,
    /// nid of the root directory.
    pub root_nid: Le16,
    /// Number of inodes (statistics only).
    pub inos: Le64,

    /// Time base: mtime seconds of compact inodes (two's complement of an `i64`).
    pub build_time: Le64,
    /// Time base: mtime nanoseconds of compact inodes.
    pub build_time_nsec: Le32,
    /// Image size in blocks (statistics only, not a bound).
    pub blocks: Le32,

    /// Block of nid 0; 0 in composefs, so a nid is a byte offset / 32 from the file start.
    pub meta_blkaddr: Le32,
    /// Block that shared xattr ids are relative to.
    pub xattr_blkaddr: Le32,
    /// Filesystem UUID; zero in composefs.
    pub uuid: [u8; 16],

    /// Volume label; zero in composefs.
    pub volume_name: [u8; 16],

    /// `EROFS_FEATURE_INCOMPAT_*`.
    pub feature_incompat: Le32,
    /// `available_compr_algs` / `lz4_max_distance`.
    pub u1: Le16,
    /// Number of extra devices.
    pub extra_devices: Le16,
    /// Device table slot offset.
    pub devt_slotoff: Le16,
    /// log2 of directory block size minus block size; must be 0.
    pub dirblkbits: u8,
    /// Number of long xattr name prefixes.
    pub xattr_prefix_count: u8,
    /// Start of the long prefix table, in 4-byte units.
    pub xattr_prefix_start: Le32,

    /// nid of the packed inode.
    pub packed_nid: Le64,
    /// Non-zero disables the xattr name filter.
    pub xattr_filter_reserved: u8,
    /// Zero.
    pub reserved2: [u8; 23],
}

// ---------------------------------------------------------------------------------------
// Inodes
// ---------------------------------------------------------------------------------------

/// Block size of every composefs image: 4096 bytes.
pub const EROFS_BLKSIZ: u64 = 4096;
/// log2 of [`EROFS_BLKSIZ`].
pub const EROFS_BLKSZBITS: u8 = 12;
/// log2 of the inode slot size: nid = byte offset >> 5.
pub const EROFS_ISLOTBITS: u32 = 5;
/// Inode slot size in bytes.
pub const EROFS_SLOTSIZE: u64 = 1 << EROFS_ISLOTBITS;
/// Block address meaning "hole" / "no block".
pub const EROFS_NULL_ADDR: u32 = 0xFFFF_FFFF;
/// Longest name in a directory entry.
pub const EROFS_NAME_LEN: usize = 255;

/// `i_format` bit 0: the inode is extended (64 bytes) rather than compact (32 bytes).
pub const EROFS_I_VERSION_MASK: u16 = 0x1;
/// `i_format` bits 1..=3: the data layout.
pub const EROFS_I_DATALAYOUT_MASK: u16 = 0x7;
/// Shift of the data layout inside `i_format`.
pub const EROFS_I_DATALAYOUT_BIT: u16 = 1;
/// Every `i_format` bit of the classic format. Bit 4 has newer meanings
/// (`NLINK_1`, `DOT_OMITTED`) that composefs never uses, so it is rejected.
pub const EROFS_I_ALL: u16 = 0xF;

/// Data layout: data in consecutive blocks from `i_u`.
pub const EROFS_INODE_FLAT_PLAIN: u16 = 0;
/// Data layout: compressed, full indexes (never in composefs).
pub const EROFS_INODE_COMPRESSED_FULL: u16 = 1;
/// Data layout: blocks plus an inline tail after the inode and xattrs.
pub const EROFS_INODE_FLAT_INLINE: u16 = 2;
/// Data layout: compressed, compact indexes (never in composefs).
pub const EROFS_INODE_COMPRESSED_COMPACT: u16 = 3;
/// Data layout: chunk map right after the xattrs.
pub const EROFS_INODE_CHUNK_BASED: u16 = 4;

/// Chunk format bits 0..=4: chunkbits minus blkszbits.
pub const EROFS_CHUNK_FORMAT_BLKBITS_MASK: u16 = 0x001F;
/// Chunk format bit: 8-byte chunk indexes instead of 4-byte block addresses.
pub const EROFS_CHUNK_FORMAT_INDEXES: u16 = 0x0020;
/// Every chunk format bit of the classic format.
pub const EROFS_CHUNK_FORMAT_ALL: u16 =
    EROFS_CHUNK_FORMAT_BLKBITS_MASK | EROFS_CHUNK_FORMAT_INDEXES;

/// The 32-byte compact inode (SPEC.md 2.3). Its mtime is the superblock's `build_time`.
#[derive(Debug, Clone, Copy, Default, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct CompactInode {
    /// Version bit and data layout.
    pub i_format: Le16,
    /// Xattr area size: 0, or `(xattr_isize - 12) / 4 + 1`.
    pub i_xattr_icount: Le16,
    /// `st_mode`, truncated to 16 bits.
    pub i_mode: Le16,
    /// Link count.
    pub i_nlink: Le16,
    /// Size in bytes.
    pub i_size: Le32,
    /// Zero.
    pub i_reserved: Le32,

    /// Start block, rdev, or chunk format, depending on type and layout.
    pub i_u: Le32,
    /// Inode number as written (the breadth-first index); the kernel uses the nid.
    pub i_ino: Le32,
    /// Owner.
    pub i_uid: Le16,
    /// Group.
    pub i_gid: Le16,
    /// Zero.
    pub i_reserved2: Le32,
}

/// The 64-byte extended inode (SPEC.md 2.3). It may straddle a block boundary.
#[derive(Debug, Clone, Copy, Default, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct ExtendedInode {
    /// Version bit and data layout.
    pub i_format: Le16,
    /// Xattr area size: 0, or `(xattr_isize - 12) / 4 + 1`.
    pub i_xattr_icount: Le16,
    /// `st_mode`, truncated to 16 bits.
    pub i_mode: Le16,
    /// Zero.
    pub i_reserved: Le16,
    /// Size in bytes.
    pub i_size: Le64,

    /// Start block, rdev, or chunk format, depending on type and layout.
    pub i_u: Le32,
    /// Inode number as written (the breadth-first index); the kernel uses the nid.
    pub i_ino: Le32,
    /// Owner.
    pub i_uid: Le32,
    /// Group.
    pub i_gid: Le32,

    /// Modification time, seconds (two's complement of an `i64`).
    pub i_mtime: Le64,
    /// Modification time, nanoseconds.
    pub i_mtime_nsec: Le32,
    /// Link count.
    pub i_nlink: Le32,

    /// Zero.
    pub i_reserved2: [u8; 16],
}

// ---------------------------------------------------------------------------------------
// Xattrs
// ---------------------------------------------------------------------------------------

/// Xattr name index: the full name is stored, with no prefix.
pub const EROFS_XATTR_INDEX_NONE: u8 = 0;
/// Xattr name index: `user.`.
pub const EROFS_XATTR_INDEX_USER: u8 = 1;
/// Xattr name index: `system.posix_acl_access` (empty suffix).
pub const EROFS_XATTR_INDEX_POSIX_ACL_ACCESS: u8 = 2;
/// Xattr name index: `system.posix_acl_default` (empty suffix).
pub const EROFS_XATTR_INDEX_POSIX_ACL_DEFAULT: u8 = 3;
/// Xattr name index: `trusted.`.
pub const EROFS_XATTR_INDEX_TRUSTED: u8 = 4;
/// Xattr name index: `lustre.` (never written by composefs; no kernel handler).
pub const EROFS_XATTR_INDEX_LUSTRE: u8 = 5;
/// Xattr name index: `security.`.
pub const EROFS_XATTR_INDEX_SECURITY: u8 = 6;
/// Xattr name index bit: long prefix from the prefix table (never in composefs).
pub const EROFS_XATTR_LONG_PREFIX: u8 = 0x80;

/// The name prefixes the composefs writer maps to an index, in the order it tries them.
/// The first match wins; anything else is stored whole with index 0.
pub const XATTR_PREFIXES: [(u8, &[u8]); 5] = [
    (EROFS_XATTR_INDEX_USER, b"user."),
    (
        EROFS_XATTR_INDEX_POSIX_ACL_ACCESS,
        b"system.posix_acl_access",
    ),
    (
        EROFS_XATTR_INDEX_POSIX_ACL_DEFAULT,
        b"system.posix_acl_default",
    ),
    (EROFS_XATTR_INDEX_TRUSTED, b"trusted."),
    (EROFS_XATTR_INDEX_SECURITY, b"security."),
];

/// Number of bits in the xattr name filter.
pub const EROFS_XATTR_FILTER_BITS: u32 = 32;
/// Name filter value with no xattr present (every bit set means "absent").
pub const EROFS_XATTR_FILTER_DEFAULT: u32 = 0xFFFF_FFFF;
/// Seed of the name filter hash; the prefix index is added to it.
pub const EROFS_XATTR_FILTER_SEED: u32 = 0x25BB_E08F;

/// Size of [`XattrIbodyHeader`].
pub const XATTR_IBODY_HEADER_SIZE: u64 = 12;
/// Size of [`XattrEntry`]; entries are padded to this alignment.
pub const XATTR_ENTRY_SIZE: u64 = 4;

/// The 12-byte header that starts an inode's xattr area (SPEC.md 2.4).
#[derive(Debug, Clone, Copy, Default, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct XattrIbodyHeader {
    /// Bloom filter: bit `xxh32(suffix, SEED + index) % 32` is clear if the name is present.
    pub h_name_filter: Le32,
    /// Number of shared xattr ids (4 bytes each) that follow the header.
    pub h_shared_count: u8,
    /// Zero.
    pub h_reserved2: [u8; 7],
}

/// The 4-byte header of one xattr entry, followed by the name suffix, the value and zero
/// padding to 4 bytes (SPEC.md 2.4).
#[derive(Debug, Clone, Copy, Default, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct XattrEntry {
    /// Length of the name suffix.
    pub e_name_len: u8,
    /// `EROFS_XATTR_INDEX_*`.
    pub e_name_index: u8,
    /// Length of the value.
    pub e_value_size: Le16,
}

// ---------------------------------------------------------------------------------------
// Directories
// ---------------------------------------------------------------------------------------

/// Size of [`Dirent`].
pub const EROFS_DIRENT_SIZE: u64 = 12;

/// Dirent file type: unknown.
pub const EROFS_FT_UNKNOWN: u8 = 0;
/// Dirent file type: regular file.
pub const EROFS_FT_REG_FILE: u8 = 1;
/// Dirent file type: directory.
pub const EROFS_FT_DIR: u8 = 2;
/// Dirent file type: character device.
pub const EROFS_FT_CHRDEV: u8 = 3;
/// Dirent file type: block device.
pub const EROFS_FT_BLKDEV: u8 = 4;
/// Dirent file type: FIFO.
pub const EROFS_FT_FIFO: u8 = 5;
/// Dirent file type: socket.
pub const EROFS_FT_SOCK: u8 = 6;
/// Dirent file type: symbolic link.
pub const EROFS_FT_SYMLINK: u8 = 7;

/// One 12-byte directory entry (SPEC.md 2.5). A block holds `n` of them, then the names.
#[derive(Debug, Clone, Copy, Default, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct Dirent {
    /// nid of the target inode.
    pub nid: Le64,
    /// Offset of the name from the start of the block (or inline tail).
    pub nameoff: Le16,
    /// `EROFS_FT_*`.
    pub file_type: u8,
    /// Zero.
    pub reserved: u8,
}

// ---------------------------------------------------------------------------------------
// Chunk-based files
// ---------------------------------------------------------------------------------------

/// Size of one entry of a chunk map without `EROFS_CHUNK_FORMAT_INDEXES`: a block address.
pub const EROFS_BLOCK_MAP_ENTRY_SIZE: u64 = 4;

/// An 8-byte chunk index, used only with `EROFS_CHUNK_FORMAT_INDEXES` (never by composefs,
/// which writes 4-byte [`EROFS_NULL_ADDR`] block-map entries).
#[derive(Debug, Clone, Copy, Default, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct ChunkIndex {
    /// High 16 bits of the start block.
    pub startblk_hi: Le16,
    /// Device id.
    pub device_id: Le16,
    /// Low 32 bits of the start block.
    pub startblk_lo: Le32,
}

// ---------------------------------------------------------------------------------------
// Overlay metacopy
// ---------------------------------------------------------------------------------------

/// Hash algorithm id of SHA-256 in an overlay metacopy value.
pub const OVL_METACOPY_DIGEST_SHA256: u8 = 1;
/// Size of a metacopy value that carries a SHA-256 fs-verity digest.
pub const OVL_METACOPY_SIZE: usize = 36;

/// The value of `trusted.overlay.metacopy` when a digest is known (SPEC.md 2.6).
/// An empty value means "metacopy, digest unknown".
#[derive(Debug, Clone, Copy, Default, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct OverlayMetacopy {
    /// Format version: 0.
    pub version: u8,
    /// Length of this value: 36.
    pub len: u8,
    /// Flags: 0.
    pub flags: u8,
    /// [`OVL_METACOPY_DIGEST_SHA256`].
    pub digest_algo: u8,
    /// fs-verity digest of the backing object.
    pub digest: [u8; 32],
}

// ---------------------------------------------------------------------------------------
// Size checks
// ---------------------------------------------------------------------------------------

const _: () = assert!(core::mem::size_of::<ComposefsHeader>() == 32);
const _: () = assert!(core::mem::size_of::<Superblock>() == 128);
const _: () = assert!(core::mem::size_of::<CompactInode>() == 32);
const _: () = assert!(core::mem::size_of::<ExtendedInode>() == 64);
const _: () = assert!(core::mem::size_of::<XattrIbodyHeader>() == 12);
const _: () = assert!(core::mem::size_of::<XattrEntry>() == 4);
const _: () = assert!(core::mem::size_of::<Dirent>() == 12);
const _: () = assert!(core::mem::size_of::<ChunkIndex>() == 8);
const _: () = assert!(core::mem::size_of::<OverlayMetacopy>() == OVL_METACOPY_SIZE);

// ---------------------------------------------------------------------------------------
// Decoded values
// ---------------------------------------------------------------------------------------

/// File type bits of `st_mode`.
pub const S_IFMT: u32 = 0o170000;
/// Socket.
pub const S_IFSOCK: u32 = 0o140000;
/// Symbolic link.
pub const S_IFLNK: u32 = 0o120000;
/// Regular file.
pub const S_IFREG: u32 = 0o100000;
/// Block device.
pub const S_IFBLK: u32 = 0o060000;
/// Directory.
pub const S_IFDIR: u32 = 0o040000;
/// Character device.
pub const S_IFCHR: u32 = 0o020000;
/// FIFO.
pub const S_IFIFO: u32 = 0o010000;

/// The seven file types an image can hold, decoded from `st_mode` or a dirent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FileType {
    /// Regular file.
    Regular,
    /// Directory.
    Directory,
    /// Symbolic link.
    Symlink,
    /// Character device (an overlay whiteout when rdev is 0).
    CharDevice,
    /// Block device.
    BlockDevice,
    /// FIFO.
    Fifo,
    /// Socket.
    Socket,
}

impl FileType {
    /// Decodes the file type bits of a mode; `None` for a type that does not exist.
    #[must_use]
    pub const fn from_mode(mode: u32) -> Option<Self> {
        match mode & S_IFMT {
            S_IFREG => Some(Self::Regular),
            S_IFDIR => Some(Self::Directory),
            S_IFLNK => Some(Self::Symlink),
            S_IFCHR => Some(Self::CharDevice),
            S_IFBLK => Some(Self::BlockDevice),
            S_IFIFO => Some(Self::Fifo),
            S_IFSOCK => Some(Self::Socket),
            _ => None,
        }
    }

    /// The `S_IF*` bits of this type.
    #[must_use]
    pub const fn mode_bits(self) -> u32 {
        match self {
            Self::Regular => S_IFREG,
            Self::Directory => S_IFDIR,
            Self::Symlink => S_IFLNK,
            Self::CharDevice => S_IFCHR,
            Self::BlockDevice => S_IFBLK,
            Self::Fifo => S_IFIFO,
            Self::Socket => S_IFSOCK,
        }
    }

    /// Decodes a dirent `file_type`; `None` for unknown (0) and out-of-range values.
    #[must_use]
    pub const fn from_dirent_type(ft: u8) -> Option<Self> {
        match ft {
            EROFS_FT_REG_FILE => Some(Self::Regular),
            EROFS_FT_DIR => Some(Self::Directory),
            EROFS_FT_CHRDEV => Some(Self::CharDevice),
            EROFS_FT_BLKDEV => Some(Self::BlockDevice),
            EROFS_FT_FIFO => Some(Self::Fifo),
            EROFS_FT_SOCK => Some(Self::Socket),
            EROFS_FT_SYMLINK => Some(Self::Symlink),
            _ => None,
        }
    }

    /// The dirent `file_type` of this type.
    #[must_use]
    pub const fn dirent_type(self) -> u8 {
        match self {
            Self::Regular => EROFS_FT_REG_FILE,
            Self::Directory => EROFS_FT_DIR,
            Self::CharDevice => EROFS_FT_CHRDEV,
            Self::BlockDevice => EROFS_FT_BLKDEV,
            Self::Fifo => EROFS_FT_FIFO,
            Self::Socket => EROFS_FT_SOCK,
            Self::Symlink => EROFS_FT_SYMLINK,
        }
    }
}

/// Data layout of an inode, decoded from `i_format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataLayout {
    /// Data in `ceil(size / 4096)` consecutive blocks starting at `i_u`.
    FlatPlain,
    /// Full blocks from `i_u`, then the last partial block inline after the xattrs.
    FlatInline,
    /// A chunk map right after the xattrs; `i_u` holds the chunk format.
    ChunkBased,
}

impl DataLayout {
    /// Decodes the layout bits of `i_format`, or returns the raw layout value when it is a
    /// layout composefs does not support (compressed, or undefined).
    ///
    /// # Errors
    /// The raw 3-bit layout value when it is not one of the three supported layouts.
    pub const fn from_i_format(i_format: u16) -> Result<Self, u16> {
        match (i_format >> EROFS_I_DATALAYOUT_BIT) & EROFS_I_DATALAYOUT_MASK {
            EROFS_INODE_FLAT_PLAIN => Ok(Self::FlatPlain),
            EROFS_INODE_FLAT_INLINE => Ok(Self::FlatInline),
            EROFS_INODE_CHUNK_BASED => Ok(Self::ChunkBased),
            other => Err(other),
        }
    }

    /// The raw layout value, to be shifted into `i_format`.
    #[must_use]
    pub const fn raw(self) -> u16 {
        match self {
            Self::FlatPlain => EROFS_INODE_FLAT_PLAIN,
            Self::FlatInline => EROFS_INODE_FLAT_INLINE,
            Self::ChunkBased => EROFS_INODE_CHUNK_BASED,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_type_round_trips_through_mode_and_dirent() {
        for ft in [
            FileType::Regular,
            FileType::Directory,
            FileType::Symlink,
            FileType::CharDevice,
            FileType::BlockDevice,
            FileType::Fifo,
            FileType::Socket,
        ] {
            assert_eq!(FileType::from_mode(ft.mode_bits() | 0o7777), Some(ft));
            assert_eq!(FileType::from_dirent_type(ft.dirent_type()), Some(ft));
        }
        assert_eq!(FileType::from_mode(0o644), None);
        assert_eq!(FileType::from_mode(0o070000), None);
        assert_eq!(FileType::from_dirent_type(EROFS_FT_UNKNOWN), None);
        assert_eq!(FileType::from_dirent_type(8), None);
    }

    #[test]
    fn data_layout_decodes_only_supported_layouts() {
        assert_eq!(DataLayout::from_i_format(0), Ok(DataLayout::FlatPlain));
        assert_eq!(DataLayout::from_i_format(0b101), Ok(DataLayout::FlatInline));
        assert_eq!(
            DataLayout::from_i_format(0b1000),
            Ok(DataLayout::ChunkBased)
        );
        assert_eq!(DataLayout::from_i_format(0b0010), Err(1));
        assert_eq!(DataLayout::from_i_format(0b0110), Err(3));
        assert_eq!(DataLayout::from_i_format(0b1010), Err(5));
        for layout in [
            DataLayout::FlatPlain,
            DataLayout::FlatInline,
            DataLayout::ChunkBased,
        ] {
            assert_eq!(DataLayout::from_i_format(layout.raw() << 1), Ok(layout));
        }
    }
}
