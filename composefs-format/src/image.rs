//! The image: header and superblock validation, and the entry point to every view
//! (SPEC.md 2.1, 2.2, 3.1).

use crate::bytes;
use crate::dir::Dirent;
use crate::error::{Error, ErrorKind, Result};
use crate::inode::{Inode, Timestamp};
use crate::ondisk::{
    ComposefsHeader, Superblock, COMPOSEFS_FLAGS_HAS_ACL, COMPOSEFS_FLAGS_SUPPORTED,
    COMPOSEFS_HEADER_VERSION, COMPOSEFS_MAGIC, COMPOSEFS_VERSION_MAX, EROFS_BLKSIZ,
    EROFS_BLKSZBITS, EROFS_FEATURE_COMPAT_SB_CHKSUM, EROFS_FEATURE_COMPAT_SUPPORTED,
    EROFS_FEATURE_COMPAT_XATTR_FILTER, EROFS_FEATURE_INCOMPAT_SUPPORTED, EROFS_SUPER_MAGIC_V1,
    EROFS_SUPER_OFFSET,
};

/// A validated composefs image over any byte slice (a memory map, a `Vec`, a static).
///
/// [`Image::open`] checks the header and superblock eagerly. Everything else is checked
/// lazily by the views when they are built ([`Image::inode`], [`Inode::dir`],
/// [`Inode::xattrs`], ...), so opening is O(1) and a walk pays only for what it visits.
/// The whole-tree rules (order, links, overlaps) are the job of [`crate::check`].
#[derive(Clone, Copy)]
pub struct Image<'a> {
    data: &'a [u8],
    header: &'a ComposefsHeader,
    sb: &'a Superblock,
}

impl core::fmt::Debug for Image<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Image")
            .field("len", &self.data.len())
            .field("root_nid", &self.root_nid())
            .finish_non_exhaustive()
    }
}

impl<'a> Image<'a> {
    /// Validates the composefs header and the EROFS superblock, and that the root inode
    /// is a directory.
    ///
    /// Checked here: image at least one block; header magic, header version 1,
    /// `composefs_version <= 1`, known header flags; EROFS magic, `blkszbits == 12`,
    /// `dirblkbits == 0`, `sb_extslots == 0`, compat and incompat features within what
    /// composefs supports, the superblock crc32c when `SB_CHKSUM` is set,
    /// `meta_blkaddr == 0`; the root inode valid and a directory.
    ///
    /// # Errors
    /// The first rule the image breaks.
    pub fn open(data: &'a [u8]) -> Result<Self> {
        let len = data.len() as u64;
        if len < EROFS_BLKSIZ {
            return Err(ErrorKind::ImageTooSmall { len }.into());
        }
        let header: &ComposefsHeader = bytes::view(data, 0)?;
        let magic = header.magic.get();
        if magic != COMPOSEFS_MAGIC {
            return Err(Error::new(ErrorKind::ComposefsMagic { magic }).with_offset(0));
        }
        let version = header.version.get();
        if version != COMPOSEFS_HEADER_VERSION {
            return Err(Error::new(ErrorKind::ComposefsHeaderVersion { version }).with_offset(4));
        }
        let flags = header.flags.get();
        if flags & !COMPOSEFS_FLAGS_SUPPORTED != 0 {
            return Err(Error::new(ErrorKind::ComposefsFlags { flags }).with_offset(8));
        }
        let composefs_version = header.composefs_version.get();
        if composefs_version > COMPOSEFS_VERSION_MAX {
            return Err(
                Error::new(ErrorKind::ComposefsVersion { composefs_version }).with_offset(12),
            );
        }

        let sb: &Superblock = bytes::view(data, EROFS_SUPER_OFFSET)?;
        let at = |rel: u64, kind: ErrorKind| {
            Error::new(kind).with_offset(EROFS_SUPER_OFFSET.wrapping_add(rel))
        };
        let magic = sb.magic.get();
        if magic != EROFS_SUPER_MAGIC_V1 {
            return Err(at(0, ErrorKind::ErofsMagic { magic }));
        }
        if sb.blkszbits != EROFS_BLKSZBITS {
            return Err(at(
                12,
                ErrorKind::BlockSize {
                    blkszbits: sb.blkszbits,
                },
            ));
        }
        if sb.sb_extslots != 0 {
            return Err(at(
                13,
                ErrorKind::SbExtSlots {
                    sb_extslots: sb.sb_extslots,
                },
            ));
        }
        if sb.dirblkbits != 0 {
            return Err(at(
                90,
                ErrorKind::DirBlockBits {
                    dirblkbits: sb.dirblkbits,
                },
            ));
        }
        let compat = sb.feature_compat.get();
        if compat & !EROFS_FEATURE_COMPAT_SUPPORTED != 0 {
            return Err(at(
                8,
                ErrorKind::CompatFeatures {
                    compat: compat & !EROFS_FEATURE_COMPAT_SUPPORTED,
                },
            ));
        }
        let incompat = sb.feature_incompat.get();
        if incompat & !EROFS_FEATURE_INCOMPAT_SUPPORTED != 0 {
            return Err(at(
                80,
                ErrorKind::IncompatFeatures {
                    incompat: incompat & !EROFS_FEATURE_INCOMPAT_SUPPORTED,
                },
            ));
        }
        if compat & EROFS_FEATURE_COMPAT_SB_CHKSUM != 0 {
            let stored = sb.checksum.get();
            let computed = superblock_checksum(data)?;
            if stored != computed {
                return Err(at(4, ErrorKind::SuperblockChecksum { stored, computed }));
            }
        }
        let meta_blkaddr = sb.meta_blkaddr.get();
        if meta_blkaddr != 0 {
            return Err(at(40, ErrorKind::MetaBlkaddr { meta_blkaddr }));
        }

        let image = Self { data, header, sb };
        let root = image.root()?;
        if !root.is_dir() {
            return Err(Error::at_nid(
                ErrorKind::RootNotDirectory { mode: root.mode() },
                root.nid(),
            ));
        }
        Ok(image)
    }

    /// The image bytes.
    #[must_use]
    pub fn bytes(&self) -> &'a [u8] {
        self.data
    }

    /// Image length in bytes.
    #[must_use]
    pub fn len(&self) -> u64 {
        self.data.len() as u64
    }

    /// Always false: an opened image holds at least one block.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The raw composefs header.
    #[must_use]
    pub fn header(&self) -> &'a ComposefsHeader {
        self.header
    }

    /// The raw EROFS superblock.
    #[must_use]
    pub fn superblock(&self) -> &'a Superblock {
        self.sb
    }

    /// The composefs format version (`composefs_version`): 0 or 1.
    #[must_use]
    pub fn format_version(&self) -> u32 {
        self.header.composefs_version.get()
    }

    /// The composefs header flags.
    #[must_use]
    pub fn flags(&self) -> u32 {
        self.header.flags.get()
    }

    /// Whether the header says some inode carries a POSIX ACL xattr.
    #[must_use]
    pub fn has_acl(&self) -> bool {
        self.flags() & COMPOSEFS_FLAGS_HAS_ACL != 0
    }

    /// The time base of compact inodes (`build_time`, `build_time_nsec`).
    #[must_use]
    pub fn build_time(&self) -> Timestamp {
        Timestamp {
            sec: i64::from_le_bytes(self.sb.build_time.get().to_le_bytes()),
            nsec: self.sb.build_time_nsec.get(),
        }
    }

    /// Number of inodes, as recorded (statistics only).
    #[must_use]
    pub fn inos(&self) -> u64 {
        self.sb.inos.get()
    }

    /// Number of blocks, as recorded (statistics only, not a bound).
    #[must_use]
    pub fn blocks(&self) -> u32 {
        self.sb.blocks.get()
    }

    /// nid of the root directory.
    #[must_use]
    pub fn root_nid(&self) -> u64 {
        u64::from(self.sb.root_nid.get())
    }

    /// Block that shared xattr ids are relative to.
    #[must_use]
    pub fn xattr_blkaddr(&self) -> u32 {
        self.sb.xattr_blkaddr.get()
    }

    /// Whether xattr name filters are present and to be trusted: the `XATTR_FILTER`
    /// compat feature is set and `xattr_filter_reserved` is 0.
    #[must_use]
    pub fn xattr_filter_enabled(&self) -> bool {
        self.sb.feature_compat.get() & EROFS_FEATURE_COMPAT_XATTR_FILTER != 0
            && self.sb.xattr_filter_reserved == 0
    }

    /// The root directory.
    ///
    /// # Errors
    /// As [`Image::inode`].
    pub fn root(&self) -> Result<Inode<'a>> {
        self.inode(self.root_nid())
    }

    /// The inode `nid`, validated (see [`Inode`]).
    ///
    /// # Errors
    /// When the inode is out of bounds or breaks a rule of SPEC.md 3.2.
    pub fn inode(&self, nid: u64) -> Result<Inode<'a>> {
        Inode::new(*self, nid)
    }

    /// Follows `path` from the root through directory entries. Components are separated
    /// by `/`; empty components are ignored. Symlinks are not followed; `.` and `..` are
    /// looked up like any name (they are real entries in a composefs image).
    ///
    /// # Errors
    /// [`ErrorKind::PathNotFound`] when a component is missing, [`ErrorKind::WrongType`]
    /// when a non-final component is not a directory, [`ErrorKind::NameTooLong`], and any
    /// error met on the way.
    pub fn lookup_path(&self, path: &[u8]) -> Result<Inode<'a>> {
        let mut at = self.root()?;
        for name in path.split(|&b| b == b'/').filter(|c| !c.is_empty()) {
            let entry: Dirent<'a> = at
                .dir()?
                .lookup(name)?
                .ok_or(Error::at_nid(ErrorKind::PathNotFound, at.nid()))?;
            at = self.inode(entry.nid())?;
        }
        Ok(at)
    }

    /// `len` bytes at `offset` of the image.
    pub(crate) fn slice(&self, offset: u64, len: u64) -> Result<&'a [u8]> {
        bytes::slice(self.data, offset, len).map_err(Error::new)
    }
}

/// Castagnoli CRC table (reflected polynomial 0x82F63B78), built at compile time.
#[allow(
    clippy::indexing_slicing,
    clippy::cast_possible_truncation,
    reason = "const evaluation: the index is below 256 by the loop bound"
)]
const CRC32C_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0u32;
    while i < 256 {
        let mut c = i;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0x82F6_3B78
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i as usize] = c;
        i += 1;
    }
    table
};

/// Raw crc32c update: no initial or final inversion (the caller chooses them).
#[must_use]
pub fn crc32c_update(mut crc: u32, data: &[u8]) -> u32 {
    for &b in data {
        let [low, ..] = crc.to_le_bytes();
        let idx = usize::from(low ^ b);
        crc = (crc >> 8) ^ CRC32C_TABLE.get(idx).copied().unwrap_or(0);
    }
    crc
}

/// The EROFS superblock checksum of an image: crc32c with seed `!0` and no final
/// inversion, over bytes 1024..4096 with the checksum field taken as zero.
///
/// # Errors
/// When the image is shorter than one block.
pub fn superblock_checksum(data: &[u8]) -> Result<u32> {
    let block = bytes::slice(
        data,
        EROFS_SUPER_OFFSET,
        EROFS_BLKSIZ.wrapping_sub(EROFS_SUPER_OFFSET),
    )?;
    let (head, rest) = block.split_at(4);
    let rest = rest.get(4..).unwrap_or(&[]);
    let crc = crc32c_update(!0, head);
    let crc = crc32c_update(crc, &[0; 4]);
    Ok(crc32c_update(crc, rest))
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation
)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_matches_published_vectors() {
        // The standard CRC-32C check value uses initial and final inversion.
        assert_eq!(!crc32c_update(!0, b"123456789"), 0xE306_9283);
        // The kernel's precomputed seed: crc32c(~0, EROFS magic followed by a zero checksum).
        assert_eq!(
            crc32c_update(!0, &[0xE2, 0xE1, 0xF5, 0xE0, 0, 0, 0, 0]),
            0x5045_B54A
        );
    }

    #[test]
    fn open_rejects_short_and_foreign_images() {
        assert_eq!(
            Image::open(&[0; 100]).unwrap_err(),
            ErrorKind::ImageTooSmall { len: 100 }
        );
        assert_eq!(
            Image::open(&[0; 4096]).unwrap_err(),
            ErrorKind::ComposefsMagic { magic: 0 }
        );
    }
}
