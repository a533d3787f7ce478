//! Every limit of the format and of this implementation, each with its reason
//! (SPEC.md section 7).
//!
//! Format limits come from the reference writer (libcomposefs 1.0.8) and the kernel; an
//! input beyond one is refused, never truncated. Implementation limits bound the work and
//! memory spent on hostile input; they are generous enough for any real image, and an input
//! beyond one is reported as "limit exceeded", not as "corrupt".

/// Longest inline content of a regular file (`LCFS_INLINE_CONTENT_MAX`).
pub const MAX_INLINE_CONTENT: usize = 5000;

/// Largest file that directory mode stores inline instead of in the object store
/// (`LCFS_RECOMMENDED_INLINE_CONTENT_MAX`).
pub const DIR_MODE_INLINE_MAX: u64 = 64;

/// Longest symlink target: `PATH_MAX - 1`.
pub const MAX_SYMLINK_LEN: usize = 4095;

/// Longest regular-file payload (backing path): it must be shorter than `PATH_MAX`.
pub const MAX_PAYLOAD_LEN: usize = 4095;

/// Longest directory entry name.
pub const MAX_NAME_LEN: usize = 255;

/// Longest xattr name, prefix included (`XATTR_NAME_MAX`).
pub const MAX_XATTR_NAME_LEN: usize = 255;

/// Largest xattr value (`XATTR_SIZE_MAX`, also the width of `e_value_size`).
pub const MAX_XATTR_VALUE_LEN: usize = 65535;

/// Budget for the xattrs of one inode: each costs `7 + len(key) + len(value)`, plus 12 for
/// the first, and the sum must not exceed this (`UINT16_MAX / 2` in the reference).
pub const MAX_XATTR_BUDGET: usize = 32767;

/// Longest xattr part of one dumpfile line.
pub const MAX_DUMP_XATTR_TEXT: usize = 65535;

/// Most chunks a chunk-based regular file may need: 1024, so files are below 2^53 bytes.
pub const MAX_CHUNKS: u64 = 1024;

/// Largest chunk size exponent: block bits plus the 5-bit chunk format field allows
/// 12 + 31, but the reference caps the map so that 1024 chunks of 2^43 bytes suffice.
pub const MAX_CHUNK_BITS: u32 = 43;

/// Most shared xattr references the writer puts in one inode; further shared candidates
/// are stored inline (the reference stops at `EROFS_XATTR_LONG_PREFIX`).
pub const MAX_SHARED_XATTRS_PER_INODE: usize = 128;

/// Largest root nid: the superblock stores it in 16 bits.
pub const MAX_ROOT_NID: u64 = 65535;

/// Most problems the structural check records; further ones are only counted. Enough to
/// diagnose any image, small enough to print.
pub const MAX_CHECK_PROBLEMS: usize = 1000;

/// Deepest directory nesting the structural check descends into. A composefs directory
/// costs at least 64 bytes of metadata, so real images stay far below this; valid images
/// with 10,000 levels must pass.
pub const MAX_CHECK_DEPTH: u64 = 1 << 16;

/// Most directory entries the structural check visits (about 30 times the largest real
/// image measured, a 133,576-entry `/usr`); beyond it the check stops with "limit exceeded".
pub const MAX_CHECK_ENTRIES: u64 = 1 << 24;

/// Longest dumpfile line the parser reads, newline excluded. The reference has no such
/// limit. Every field but PATH is bounded (escaped, payload, content, digest and xattrs
/// together stay below 100 KiB), and 4 MiB still allows a PATH more than a million
/// directories deep; the limit bounds the memory a streaming read may use.
pub const MAX_DUMP_LINE_LEN: usize = 4 << 20;
