//! Inode views: one compact or extended inode, validated when built (SPEC.md 2.3, 2.7,
//! 3.2).

use crate::bytes;
use crate::dir::Dir;
use crate::error::{Error, ErrorKind, Result};
use crate::image::Image;
use crate::limits::MAX_SYMLINK_LEN;
use crate::ondisk::{
    CompactInode, DataLayout, ExtendedInode, FileType, EROFS_BLKSIZ, EROFS_BLKSZBITS,
    EROFS_BLOCK_MAP_ENTRY_SIZE, EROFS_CHUNK_FORMAT_ALL, EROFS_CHUNK_FORMAT_BLKBITS_MASK,
    EROFS_CHUNK_FORMAT_INDEXES, EROFS_I_ALL, EROFS_I_DATALAYOUT_BIT, EROFS_I_DATALAYOUT_MASK,
    EROFS_I_VERSION_MASK, EROFS_NULL_ADDR, EROFS_SLOTSIZE, EROFS_SUPER_OFFSET,
    XATTR_IBODY_HEADER_SIZE,
};
use crate::xattr::Xattrs;

/// First byte where an inode may start: right after the superblock (nid 36).
pub const FIRST_INODE_OFFSET: u64 = EROFS_SUPER_OFFSET + 128;

/// A modification time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp {
    /// Seconds since the epoch (may be negative).
    pub sec: i64,
    /// Nanoseconds.
    pub nsec: u32,
}

/// A validated inode (SPEC.md 3.2).
///
/// Building one checks: the nid lands at or after byte 1152 (checked `u64` math); the
/// inode, its xattr area and its inline part lie inside the image; `i_format` has no bit
/// beyond version and layout; the layout is one composefs uses and is allowed for the
/// file type; the mode names a file type; the size suits the type; an inline tail or
/// chunk map does not cross a block; the chunk format is known, the chunk count at most
/// 1024 and every chunk a hole; out-of-line blocks lie inside the image, after the
/// metadata. The inode and its xattrs may straddle a block boundary.
#[derive(Debug, Clone, Copy)]
pub struct Inode<'a> {
    image: Image<'a>,
    nid: u64,
    offset: u64,
    extended: bool,
    i_format: u16,
    mode: u16,
    file_type: FileType,
    layout: DataLayout,
    nlink: u32,
    size: u64,
    i_u: u32,
    ino: u32,
    uid: u32,
    gid: u32,
    mtime: Timestamp,
    xattr_isize: u64,
    inline_len: u64,
    blocks: u64,
    reserved: Option<(&'static str, u64)>,
}

/// The bytes of a file stored in the image: full blocks, then an inline tail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataParts<'a> {
    /// Bytes stored in out-of-line blocks (at most the file size).
    pub blocks: &'a [u8],
    /// Bytes stored inline after the inode and its xattrs.
    pub tail: &'a [u8],
}

impl<'a> Inode<'a> {
    pub(crate) fn new(image: Image<'a>, nid: u64) -> Result<Self> {
        let at = |kind: ErrorKind| Error::at_nid(kind, nid);
        let offset = bytes::mul(nid, EROFS_SLOTSIZE).map_err(at)?;
        if offset < FIRST_INODE_OFFSET {
            return Err(at(ErrorKind::NidTooSmall { nid }).with_offset(offset));
        }
        let data = image.bytes();
        let located = |kind: ErrorKind| Error::at_nid(kind, nid).with_offset(offset);
        let compact: &CompactInode = bytes::view(data, offset).map_err(located)?;
        let i_format = compact.i_format.get();
        if i_format & !EROFS_I_ALL != 0 {
            return Err(located(ErrorKind::InodeFormat { i_format }));
        }
        let layout = DataLayout::from_i_format(i_format)
            .map_err(|layout| located(ErrorKind::DataLayout { layout }))?;
        let extended = i_format & EROFS_I_VERSION_MASK != 0;
        let xattr_icount = compact.i_xattr_icount.get();
        let mode = compact.i_mode.get();
        let file_type = FileType::from_mode(u32::from(mode))
            .ok_or_else(|| located(ErrorKind::InodeMode { mode }))?;
        let mut inode = if extended {
            let ext: &ExtendedInode = bytes::view(data, offset).map_err(located)?;
            let size = ext.i_size.get();
            if size > i64::MAX as u64 {
                return Err(located(ErrorKind::NegativeSize { size }));
            }
            let reserved = if ext.i_reserved.get() != 0 {
                Some(("i_reserved", u64::from(ext.i_reserved.get())))
            } else if ext.i_reserved2 != [0; 16] {
                Some(("i_reserved2", 1))
            } else {
                None
            };
            Self {
                image,
                nid,
                offset,
                extended,
                i_format,
                mode,
                file_type,
                layout,
                nlink: ext.i_nlink.get(),
                size,
                i_u: ext.i_u.get(),
                ino: ext.i_ino.get(),
                uid: ext.i_uid.get(),
                gid: ext.i_gid.get(),
                mtime: Timestamp {
                    sec: i64::from_le_bytes(ext.i_mtime.get().to_le_bytes()),
                    nsec: ext.i_mtime_nsec.get(),
                },
                xattr_isize: 0,
                inline_len: 0,
                blocks: 0,
                reserved,
            }
        } else {
            let reserved = if compact.i_reserved.get() != 0 {
                Some(("i_reserved", u64::from(compact.i_reserved.get())))
            } else if compact.i_reserved2.get() != 0 {
                Some(("i_reserved2", u64::from(compact.i_reserved2.get())))
            } else {
                None
            };
            Self {
                image,
                nid,
                offset,
                extended,
                i_format,
                mode,
                file_type,
                layout,
                nlink: u32::from(compact.i_nlink.get()),
                size: u64::from(compact.i_size.get()),
                i_u: compact.i_u.get(),
                ino: compact.i_ino.get(),
                uid: u32::from(compact.i_uid.get()),
                gid: u32::from(compact.i_gid.get()),
                mtime: image.build_time(),
                xattr_isize: 0,
                inline_len: 0,
                blocks: 0,
                reserved,
            }
        };
        inode.xattr_isize = match xattr_icount {
            0 => 0,
            1 => return Err(located(ErrorKind::XattrIcountOne)),
            n => XATTR_IBODY_HEADER_SIZE
                .wrapping_add(4u64.wrapping_mul(u64::from(n).wrapping_sub(1))),
        };
        inode.check_layout_and_size().map_err(located)?;
        inode.check_placement()?;
        Ok(inode)
    }

    /// Layout allowed for the type, size rules, and the split into blocks and inline part.
    fn check_layout_and_size(&mut self) -> core::result::Result<(), ErrorKind> {
        let ft = self.file_type;
        let size = self.size;
        let raw_layout = (self.i_format >> EROFS_I_DATALAYOUT_BIT) & EROFS_I_DATALAYOUT_MASK;
        let layout_ok = match ft {
            FileType::Regular => true,
            FileType::Directory | FileType::Symlink => self.layout != DataLayout::ChunkBased,
            _ => self.layout == DataLayout::FlatPlain,
        };
        if !layout_ok {
            return Err(ErrorKind::LayoutForType {
                layout: raw_layout,
                file_type: ft,
            });
        }
        let size_ok = match ft {
            FileType::Regular => true,
            FileType::Directory => size > 0,
            FileType::Symlink => size > 0 && size <= MAX_SYMLINK_LEN as u64,
            _ => size == 0,
        };
        if !size_ok {
            return Err(ErrorKind::SizeForType {
                size,
                file_type: ft,
            });
        }
        match self.layout {
            DataLayout::FlatPlain => self.blocks = bytes::blocks_for(size),
            DataLayout::FlatInline => {
                let nblk = bytes::blocks_for(size);
                self.blocks = nblk.saturating_sub(1);
                self.inline_len = size.wrapping_sub(self.blocks.wrapping_mul(EROFS_BLKSIZ));
            }
            DataLayout::ChunkBased => {
                let [lo, hi0, hi1, hi2] = self.i_u.to_le_bytes();
                let format = u16::from_le_bytes([lo, hi0]);
                if format & !EROFS_CHUNK_FORMAT_ALL != 0 || format & EROFS_CHUNK_FORMAT_INDEXES != 0
                {
                    return Err(ErrorKind::ChunkFormat { format });
                }
                let chunk_bits = u32::from(EROFS_BLKSZBITS)
                    .wrapping_add(u32::from(format & EROFS_CHUNK_FORMAT_BLKBITS_MASK));
                let chunks = size.div_ceil(1u64 << chunk_bits);
                if chunks > crate::limits::MAX_CHUNKS {
                    return Err(ErrorKind::TooManyChunks { chunks });
                }
                self.inline_len = chunks.wrapping_mul(EROFS_BLOCK_MAP_ENTRY_SIZE);
                let high = u16::from_le_bytes([hi1, hi2]);
                if high != 0 && self.reserved.is_none() {
                    self.reserved = Some(("i_u chunk reserved", u64::from(high)));
                }
            }
        }
        Ok(())
    }

    /// Bounds of the inode extent, the inline part and the out-of-line blocks.
    fn check_placement(&self) -> Result<()> {
        let located = |kind: ErrorKind| Error::at_nid(kind, self.nid).with_offset(self.offset);
        let inline_start = self.inline_offset();
        let end = bytes::add(inline_start, self.inline_len).map_err(located)?;
        bytes::slice(
            self.image.bytes(),
            self.offset,
            end.wrapping_sub(self.offset),
        )
        .map_err(located)?;
        if self.inline_len > 0
            && bytes::blkoff(inline_start).wrapping_add(self.inline_len) > EROFS_BLKSIZ
        {
            return Err(located(ErrorKind::InlineCrossesBlock {
                offset: inline_start,
                len: self.inline_len,
            }));
        }
        if self.layout == DataLayout::ChunkBased {
            let map = self.image.slice(inline_start, self.inline_len)?;
            for (index, entry) in (0u64..).zip(map.chunks_exact(4)) {
                let blkaddr = bytes::le32(entry, 0).map_err(located)?;
                if blkaddr != EROFS_NULL_ADDR {
                    return Err(Error::at_nid(
                        ErrorKind::ChunkNotHole { index, blkaddr },
                        self.nid,
                    )
                    .with_offset(inline_start.wrapping_add(index.wrapping_mul(4))));
                }
            }
        }
        if self.blocks > 0 {
            let data_start = u64::from(self.image.xattr_blkaddr()).max(1);
            let blkaddr = self.i_u;
            let bad = ErrorKind::DataBlocks {
                blkaddr,
                count: self.blocks,
                data_start,
            };
            let end_blk = u64::from(blkaddr)
                .checked_add(self.blocks)
                .ok_or(located(bad))?;
            let end_off = end_blk.checked_mul(EROFS_BLKSIZ).ok_or(located(bad))?;
            if u64::from(blkaddr) < data_start || end_off > self.image.len() {
                return Err(located(bad));
            }
        }
        Ok(())
    }

    /// The image this inode belongs to.
    #[must_use]
    pub fn image(&self) -> Image<'a> {
        self.image
    }

    /// The nid (also the `st_ino` the kernel reports).
    #[must_use]
    pub fn nid(&self) -> u64 {
        self.nid
    }

    /// Absolute byte offset of the inode.
    #[must_use]
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Whether this is a 64-byte extended inode rather than a 32-byte compact one.
    #[must_use]
    pub fn is_extended(&self) -> bool {
        self.extended
    }

    /// Size of the inode structure: 32 or 64 bytes.
    #[must_use]
    pub fn inode_size(&self) -> u64 {
        if self.extended {
            64
        } else {
            32
        }
    }

    /// Size of the xattr area (0, or 12 + 4 * (icount - 1)).
    #[must_use]
    pub fn xattr_size(&self) -> u64 {
        self.xattr_isize
    }

    /// Absolute offset of the xattr area.
    #[must_use]
    pub fn xattr_offset(&self) -> u64 {
        self.offset.wrapping_add(self.inode_size())
    }

    /// Absolute offset of the inline part (tail or chunk map), right after the xattrs.
    #[must_use]
    pub fn inline_offset(&self) -> u64 {
        self.xattr_offset().wrapping_add(self.xattr_isize)
    }

    /// Length of the inline part: the tail of a `FLAT_INLINE` inode, or the chunk map.
    #[must_use]
    pub fn inline_len(&self) -> u64 {
        self.inline_len
    }

    /// End of the inode's extent in the metadata area (inode + xattrs + inline part).
    #[must_use]
    pub fn extent_end(&self) -> u64 {
        self.inline_offset().wrapping_add(self.inline_len)
    }

    /// Raw `i_format`.
    #[must_use]
    pub fn i_format(&self) -> u16 {
        self.i_format
    }

    /// The first non-zero reserved field, if any, as (name, value).
    #[must_use]
    pub fn reserved_field(&self) -> Option<(&'static str, u64)> {
        self.reserved
    }

    /// The file type.
    #[must_use]
    pub fn file_type(&self) -> FileType {
        self.file_type
    }

    /// Whether this is a directory.
    #[must_use]
    pub fn is_dir(&self) -> bool {
        self.file_type == FileType::Directory
    }

    /// `i_mode` as stored (16 bits: type and permissions).
    #[must_use]
    pub fn mode(&self) -> u16 {
        self.mode
    }

    /// Permission bits (`mode & 0o7777`).
    #[must_use]
    pub fn permissions(&self) -> u16 {
        self.mode & 0o7777
    }

    /// Owner.
    #[must_use]
    pub fn uid(&self) -> u32 {
        self.uid
    }

    /// Group.
    #[must_use]
    pub fn gid(&self) -> u32 {
        self.gid
    }

    /// Link count.
    #[must_use]
    pub fn nlink(&self) -> u32 {
        self.nlink
    }

    /// Size in bytes.
    #[must_use]
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Modification time; compact inodes use the superblock's build time.
    #[must_use]
    pub fn mtime(&self) -> Timestamp {
        self.mtime
    }

    /// Device number (raw `i_u`) of a character or block device; 0 for other types.
    #[must_use]
    pub fn rdev(&self) -> u32 {
        match self.file_type {
            FileType::CharDevice | FileType::BlockDevice => self.i_u,
            _ => 0,
        }
    }

    /// `i_ino` as written (the writer's breadth-first index; the kernel uses the nid).
    #[must_use]
    pub fn ino(&self) -> u32 {
        self.ino
    }

    /// Data layout.
    #[must_use]
    pub fn layout(&self) -> DataLayout {
        self.layout
    }

    /// Out-of-line data blocks: `(first block, count)`, or `None`.
    #[must_use]
    pub fn data_blocks(&self) -> Option<(u32, u64)> {
        (self.blocks > 0).then_some((self.i_u, self.blocks))
    }

    /// Whether the file's content lives outside the image (a chunk-based file of holes,
    /// whose data the overlay redirect points at).
    #[must_use]
    pub fn is_external(&self) -> bool {
        self.layout == DataLayout::ChunkBased
    }

    /// The xattrs of this inode.
    ///
    /// # Errors
    /// When the xattr ibody header is inconsistent (see [`Xattrs`]).
    pub fn xattrs(&self) -> Result<Xattrs<'a>> {
        Xattrs::new(self)
    }

    /// This inode as a directory.
    ///
    /// # Errors
    /// [`ErrorKind::WrongType`] when it is not a directory.
    pub fn dir(&self) -> Result<Dir<'a>> {
        self.expect_type(FileType::Directory)?;
        Ok(Dir::new(*self))
    }

    fn expect_type(&self, expected: FileType) -> Result<()> {
        if self.file_type == expected {
            Ok(())
        } else {
            Err(Error::at_nid(
                ErrorKind::WrongType {
                    file_type: self.file_type,
                    expected,
                },
                self.nid,
            ))
        }
    }

    /// The target of a symlink: 1..=4095 bytes with no NUL.
    ///
    /// # Errors
    /// [`ErrorKind::WrongType`] when it is not a symlink, [`ErrorKind::SymlinkNul`].
    pub fn symlink_target(&self) -> Result<&'a [u8]> {
        self.expect_type(FileType::Symlink)?;
        let parts = self.data_parts()?;
        let target = if parts.blocks.is_empty() {
            parts.tail
        } else {
            parts.blocks
        };
        if let Some(at) = target.iter().position(|&b| b == 0) {
            return Err(Error::at_nid(
                ErrorKind::SymlinkNul { at: at as u64 },
                self.nid,
            ));
        }
        Ok(target)
    }

    /// The logical block `index` of a `FLAT_PLAIN` / `FLAT_INLINE` inode's data and its
    /// absolute offset: out-of-line blocks first, the inline tail last. Blocks are 4096
    /// bytes except the last, which holds what remains of the size.
    pub(crate) fn data_block(&self, index: u64) -> Result<(&'a [u8], u64)> {
        let start = bytes::mul(index, EROFS_BLKSIZ).map_err(Error::new)?;
        let len = self.size.saturating_sub(start).min(EROFS_BLKSIZ);
        if index < self.blocks {
            let off = bytes::blk_to_off(self.i_u).wrapping_add(start);
            Ok((self.image.slice(off, len)?, off))
        } else if index == self.blocks && self.inline_len > 0 {
            let off = self.inline_offset();
            Ok((self.image.slice(off, self.inline_len)?, off))
        } else {
            Ok((&[], 0))
        }
    }

    /// Number of logical data blocks (`ceil(size / 4096)`) of a non-chunk-based inode.
    pub(crate) fn logical_blocks(&self) -> u64 {
        match self.layout {
            DataLayout::ChunkBased => 0,
            _ => bytes::blocks_for(self.size),
        }
    }

    /// The bytes of a file, symlink or directory stored in the image. External
    /// (chunk-based) files have none: both parts are empty.
    ///
    /// # Errors
    /// Only if the image changed under the view (the bounds were checked when built).
    pub fn data_parts(&self) -> Result<DataParts<'a>> {
        if self.layout == DataLayout::ChunkBased {
            return Ok(DataParts {
                blocks: &[],
                tail: &[],
            });
        }
        let stored = self.blocks.wrapping_mul(EROFS_BLKSIZ).min(self.size);
        let blocks = if stored > 0 {
            self.image.slice(bytes::blk_to_off(self.i_u), stored)?
        } else {
            &[]
        };
        let tail = self.image.slice(self.inline_offset(), self.inline_len)?;
        Ok(DataParts { blocks, tail })
    }

    /// Copies file bytes from `offset` into `buf`; returns how many (0 at or past the end).
    /// External (chunk-based) files read as zeros, as in EROFS: their content is the
    /// backing object named by the overlay redirect.
    ///
    /// # Errors
    /// As [`Inode::data_parts`].
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize> {
        if offset >= self.size {
            return Ok(0);
        }
        let n = bytes::to_usize(self.size.wrapping_sub(offset)).min(buf.len());
        let out = buf.get_mut(..n).unwrap_or(&mut []);
        if self.is_external() {
            out.fill(0);
            return Ok(n);
        }
        let parts = self.data_parts()?;
        let mut pos = offset;
        let mut done = 0usize;
        for part in [parts.blocks, parts.tail] {
            let plen = part.len() as u64;
            if pos < plen && done < n {
                let src = part.get(bytes::to_usize(pos)..).unwrap_or(&[]);
                let take = src.len().min(n.wrapping_sub(done));
                if let (Some(dst), Some(src)) =
                    (out.get_mut(done..done.wrapping_add(take)), src.get(..take))
                {
                    dst.copy_from_slice(src);
                }
                done = done.wrapping_add(take);
                pos = plen;
            }
            pos = pos.saturating_sub(plen);
        }
        Ok(done)
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation
)]
pub(crate) mod tests {
    //! A tiny hand-built image for the unit tests of the views.
    use super::*;
    use crate::ondisk::*;
    use alloc::vec;
    use alloc::vec::Vec;
    use zerocopy::IntoBytes;

    /// Root directory at nid 36 (compact, inline dirents "." ".." "f" "l"), a regular
    /// inline file "f" at nid 40 with content "hello", a symlink "l" at nid 42 to "f".
    pub(crate) fn small_image() -> Vec<u8> {
        let mut img = vec![0u8; 8192];
        let h = ComposefsHeader {
            magic: COMPOSEFS_MAGIC.into(),
            version: COMPOSEFS_HEADER_VERSION.into(),
            ..Default::default()
        };
        img[..32].copy_from_slice(h.as_bytes());
        let sb = Superblock {
            magic: EROFS_SUPER_MAGIC_V1.into(),
            feature_compat: COMPOSEFS_FEATURE_COMPAT.into(),
            blkszbits: 12,
            root_nid: 36.into(),
            inos: 3.into(),
            blocks: 2.into(),
            xattr_blkaddr: 0.into(),
            ..Default::default()
        };
        img[1024..1152].copy_from_slice(sb.as_bytes());
        // Root dirents: 4 entries, names ".", "..", "f", "l".
        let mut dir = Vec::new();
        for (nid, off, ft) in [(36u64, 48u16, 2u8), (36, 49, 2), (40, 51, 1), (42, 52, 7)] {
            dir.extend_from_slice(
                Dirent {
                    nid: nid.into(),
                    nameoff: off.into(),
                    file_type: ft,
                    reserved: 0,
                }
                .as_bytes(),
            );
        }
        dir.extend_from_slice(b"...fl");
        let root = CompactInode {
            i_format: (EROFS_INODE_FLAT_INLINE << 1).into(),
            i_mode: ((S_IFDIR | 0o755) as u16).into(),
            i_nlink: 2.into(),
            i_size: (dir.len() as u32).into(),
            ..Default::default()
        };
        img[1152..1184].copy_from_slice(root.as_bytes());
        img[1184..1184 + dir.len()].copy_from_slice(&dir);
        let file = CompactInode {
            i_format: (EROFS_INODE_FLAT_INLINE << 1).into(),
            i_mode: ((S_IFREG | 0o644) as u16).into(),
            i_nlink: 1.into(),
            i_size: 5.into(),
            i_ino: 1.into(),
            ..Default::default()
        };
        img[1280..1312].copy_from_slice(file.as_bytes());
        img[1312..1317].copy_from_slice(b"hello");
        let link = CompactInode {
            i_format: (EROFS_INODE_FLAT_INLINE << 1).into(),
            i_mode: ((S_IFLNK | 0o777) as u16).into(),
            i_nlink: 1.into(),
            i_size: 1.into(),
            i_ino: 2.into(),
            ..Default::default()
        };
        img[1344..1376].copy_from_slice(link.as_bytes());
        img[1376] = b'f';
        img
    }

    #[test]
    fn reads_fields_and_content() {
        let img = small_image();
        let image = Image::open(&img).unwrap();
        let root = image.root().unwrap();
        assert!(root.is_dir());
        assert_eq!(root.nid(), 36);
        let f = image.inode(40).unwrap();
        assert_eq!(f.file_type(), FileType::Regular);
        assert_eq!(f.size(), 5);
        assert_eq!(f.permissions(), 0o644);
        assert_eq!(f.data_parts().unwrap().tail, b"hello");
        let mut buf = [0u8; 3];
        assert_eq!(f.read_at(3, &mut buf).unwrap(), 2);
        assert_eq!(&buf[..2], b"lo");
        assert_eq!(f.read_at(5, &mut buf).unwrap(), 0);
        assert_eq!(image.inode(42).unwrap().symlink_target().unwrap(), b"f");
        assert_eq!(
            f.symlink_target().unwrap_err().kind(),
            ErrorKind::WrongType {
                file_type: FileType::Regular,
                expected: FileType::Symlink
            }
        );
    }

    #[test]
    fn rejects_bad_nids_formats_modes_and_sizes() {
        let img = small_image();
        let image = Image::open(&img).unwrap();
        assert_eq!(
            image.inode(35).unwrap_err().kind(),
            ErrorKind::NidTooSmall { nid: 35 }
        );
        assert_eq!(
            image.inode(u64::MAX).unwrap_err().kind(),
            ErrorKind::Overflow
        );
        assert!(matches!(
            image.inode(256).unwrap_err().kind(),
            ErrorKind::OutOfBounds { .. }
        ));

        let patch = |off: usize, bytes: &[u8]| {
            let mut m = img.clone();
            m[off..off + bytes.len()].copy_from_slice(bytes);
            m
        };
        let m = patch(1280, &0x20u16.to_le_bytes());
        assert_eq!(
            Image::open(&m).unwrap().inode(40).unwrap_err().kind(),
            ErrorKind::InodeFormat { i_format: 0x20 }
        );
        let m = patch(1280, &(1u16 << 1).to_le_bytes());
        assert_eq!(
            Image::open(&m).unwrap().inode(40).unwrap_err().kind(),
            ErrorKind::DataLayout { layout: 1 }
        );
        let m = patch(1284, &0o644u16.to_le_bytes());
        assert_eq!(
            Image::open(&m).unwrap().inode(40).unwrap_err().kind(),
            ErrorKind::InodeMode { mode: 0o644 }
        );
        // Symlink of size 0.
        let m = patch(1352, &0u32.to_le_bytes());
        assert_eq!(
            Image::open(&m).unwrap().inode(42).unwrap_err().kind(),
            ErrorKind::SizeForType {
                size: 0,
                file_type: FileType::Symlink
            }
        );
        // Inline file whose tail crosses the block: size 3000 at offset 1312.
        let m = patch(1288, &3000u32.to_le_bytes());
        assert_eq!(
            Image::open(&m).unwrap().inode(40).unwrap_err().kind(),
            ErrorKind::InlineCrossesBlock {
                offset: 1312,
                len: 3000
            }
        );
        // icount 1.
        let m = patch(1282, &1u16.to_le_bytes());
        assert_eq!(
            Image::open(&m).unwrap().inode(40).unwrap_err().kind(),
            ErrorKind::XattrIcountOne
        );
        // FLAT_PLAIN file with a block past the end.
        let mut m = patch(1280, &0u16.to_le_bytes());
        m[1288..1292].copy_from_slice(&5000u32.to_le_bytes());
        m[1296..1300].copy_from_slice(&7u32.to_le_bytes());
        assert!(matches!(
            Image::open(&m).unwrap().inode(40).unwrap_err().kind(),
            ErrorKind::DataBlocks {
                blkaddr: 7,
                count: 2,
                ..
            }
        ));
        // Chunk-based file: one hole is fine, a mapped chunk is not.
        let mut m = patch(1280, &(EROFS_INODE_CHUNK_BASED << 1).to_le_bytes());
        m[1312..1316].copy_from_slice(&u32::MAX.to_le_bytes());
        let f = Image::open(&m).unwrap().inode(40).unwrap();
        assert!(f.is_external());
        assert_eq!(f.inline_len(), 4);
        let mut buf = [1u8; 8];
        assert_eq!(f.read_at(0, &mut buf).unwrap(), 5);
        assert_eq!(&buf[..5], &[0; 5]);
        m[1312..1316].copy_from_slice(&0u32.to_le_bytes());
        assert_eq!(
            Image::open(&m).unwrap().inode(40).unwrap_err().kind(),
            ErrorKind::ChunkNotHole {
                index: 0,
                blkaddr: 0
            }
        );
        m[1296..1298].copy_from_slice(&EROFS_CHUNK_FORMAT_INDEXES.to_le_bytes());
        assert_eq!(
            Image::open(&m).unwrap().inode(40).unwrap_err().kind(),
            ErrorKind::ChunkFormat {
                format: EROFS_CHUNK_FORMAT_INDEXES
            }
        );
        // A device with a non-zero size.
        let mut m = patch(1284, &((S_IFCHR | 0o600) as u16).to_le_bytes());
        m[1280..1282].copy_from_slice(&0u16.to_le_bytes());
        assert_eq!(
            Image::open(&m).unwrap().inode(40).unwrap_err().kind(),
            ErrorKind::SizeForType {
                size: 5,
                file_type: FileType::CharDevice
            }
        );
    }

    #[test]
    fn extended_inode_may_straddle_a_block_but_not_the_image_end() {
        let mut img = small_image();
        // An extended inode in the last slot of the image crosses its end.
        let off = 8192 - 32;
        img[off..off + 2].copy_from_slice(&1u16.to_le_bytes());
        img[off + 4..off + 6].copy_from_slice(&((S_IFREG | 0o644) as u16).to_le_bytes());
        let image = Image::open(&img).unwrap();
        assert!(matches!(
            image.inode(off as u64 / 32).unwrap_err().kind(),
            ErrorKind::OutOfBounds { .. }
        ));
        // The same inode straddling the first block boundary is fine.
        let off = 4096 - 32;
        img[off..off + 2].copy_from_slice(&1u16.to_le_bytes());
        img[off + 4..off + 6].copy_from_slice(&((S_IFREG | 0o644) as u16).to_le_bytes());
        let image = Image::open(&img).unwrap();
        let ino = image.inode(off as u64 / 32).unwrap();
        assert!(ino.is_extended());
        assert_eq!(ino.extent_end(), 4096 + 32);
    }
}
