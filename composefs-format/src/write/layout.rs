//! [`Layout`]: every offset, nid and block of an image, decided before a byte is written.

use alloc::vec::Vec;

use super::shared::SharedTable;
use super::xattrs::XattrRef;
use crate::ondisk::{EROFS_BLKSIZ, EROFS_ISLOTBITS};
use crate::tree::{Mtime, NodeId, Tree};

/// Where an inode of the image comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A node of the tree.
    Node(NodeId),
    /// One of the whiteout stubs `00`..`ff` the writer adds to the root, by number.
    RootStub(u8),
}

/// What an inode stores after its xattrs and in data blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Body {
    /// Directory entries.
    Directory,
    /// Inline file content.
    Inline,
    /// A chunk map of `chunks` holes; the data lives in the object store.
    External {
        /// Number of chunk map entries (at most 1024).
        chunks: u16,
    },
    /// The symlink target.
    Symlink,
    /// Nothing.
    Empty,
}

/// The plan of one inode (about 100 bytes: an image may have millions).
#[derive(Debug, Clone, Copy)]
pub(super) struct InodePlan {
    /// Byte offset of the inode (a multiple of 32; nid = pos / 32).
    pub(super) pos: u64,
    /// `i_size`.
    pub(super) size: u64,
    pub(super) mtime: Mtime,
    pub(super) origin: Origin,
    /// Breadth-first index of the parent directory (the root's is 0).
    pub(super) parent: u32,
    pub(super) nlink: u32,
    pub(super) uid: u32,
    pub(super) gid: u32,
    /// `i_u` (rdev or chunk format) for an inode without data blocks; one with blocks
    /// stores its first block there, which [`Layout::first_block`] gives.
    pub(super) i_u: u32,
    /// Range of the inode's xattrs in [`Layout::xattrs`].
    pub(super) xattrs: (u32, u32),
    /// Size of the xattr area (0 without xattrs).
    pub(super) xattr_size: u32,
    pub(super) name_filter: u32,
    /// Bytes stored inline after the xattrs (at most 4096).
    pub(super) tail: u32,
    /// Data blocks.
    pub(super) blocks: u32,
    /// Data blocks of all inodes before this one.
    pub(super) blocks_before: u32,
    pub(super) body: Body,
    /// `i_mode`: the mode as stored, truncated to 16 bits.
    pub(super) mode: u16,
    pub(super) shared_count: u8,
    /// Every condition for a compact inode holds except possibly the mtime.
    pub(super) compact_fits: bool,
    /// The inode is written in the 32-byte compact form.
    pub(super) compact: bool,
}

impl InodePlan {
    pub(super) fn new(origin: Origin, parent: u32) -> Self {
        Self {
            pos: 0,
            size: 0,
            mtime: Mtime::default(),
            origin,
            parent,
            nlink: 0,
            uid: 0,
            gid: 0,
            i_u: 0,
            xattrs: (0, 0),
            xattr_size: 0,
            name_filter: 0,
            tail: 0,
            blocks: 0,
            blocks_before: 0,
            body: Body::Empty,
            mode: 0,
            shared_count: 0,
            compact_fits: false,
            compact: false,
        }
    }

    /// Size of the inode structure.
    pub(super) fn inode_size(&self) -> u64 {
        if self.compact {
            32
        } else {
            64
        }
    }

    /// End of the inode, its xattrs and its tail.
    pub(super) fn end(&self) -> u64 {
        self.pos
            .saturating_add(self.inode_size())
            .saturating_add(u64::from(self.xattr_size))
            .saturating_add(u64::from(self.tail))
    }

    /// `i_xattr_icount`: 0 without xattrs, else the area's 4-byte units after the first
    /// 12 bytes, plus one.
    pub(super) fn xattr_icount(&self) -> u64 {
        match u64::from(self.xattr_size) {
            0 => 0,
            size => (size.saturating_sub(12) / 4).saturating_add(1),
        }
    }

    pub(super) fn nid(&self) -> u64 {
        self.pos >> EROFS_ISLOTBITS
    }
}

/// The complete layout of an image for one tree. Build it with [`super::plan`], write it
/// with [`Layout::emit`].
pub struct Layout<'t> {
    pub(super) tree: &'t Tree,
    pub(super) version: u32,
    pub(super) has_acl: bool,
    pub(super) build_time: Mtime,
    /// Inodes in breadth-first order (the order they are written).
    pub(super) inodes: Vec<InodePlan>,
    /// Breadth-first index of every tree node, by node index.
    pub(super) node_inode: Vec<u32>,
    /// Breadth-first index of every root stub, or `u32::MAX` when the root has a child
    /// with the stub's name.
    pub(super) stub_inode: [u32; 256],
    /// Every inode's xattrs, each inode's sorted by name.
    pub(super) xattrs: Vec<XattrRef<'t>>,
    pub(super) shared: SharedTable,
    /// Where the shared xattr table starts: the end of the last inode, rounded up to 32.
    pub(super) inodes_end: u64,
    /// First data block, as a byte offset.
    pub(super) data_start: u64,
    /// Image size in blocks.
    pub(super) blocks: u64,
}

impl core::fmt::Debug for Layout<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Layout")
            .field("version", &self.version)
            .field("inodes", &self.inodes.len())
            .field("root_nid", &self.root_nid())
            .field("shared_xattrs", &self.shared.entries.len())
            .field("inodes_end", &self.inodes_end)
            .field("data_start", &self.data_start)
            .field("image_size", &self.image_size())
            .finish_non_exhaustive()
    }
}

/// One inode of the image, as [`Layout::describe_offset`] names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InodeInfo {
    /// Breadth-first index, written as `i_ino`.
    pub ino: u32,
    /// nid: byte offset / 32.
    pub nid: u64,
    /// What it was made from.
    pub origin: Origin,
}

/// The structure a byte range of the image belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Structure {
    /// The 32-byte composefs header.
    Header,
    /// Zeros between the header and the superblock.
    HeaderPadding,
    /// The EROFS superblock.
    Superblock,
    /// Zeros before an inode: slot alignment, or the shift that keeps its tail in one
    /// block.
    InodePadding(InodeInfo),
    /// The compact or extended inode structure.
    Inode(InodeInfo),
    /// The inode's xattr area: header, shared ids, inline entries.
    Xattrs(InodeInfo),
    /// The inode's inline tail: directory entries, symlink target, file content or chunk map.
    Tail(InodeInfo),
    /// Zeros between the last inode and the shared xattr table.
    InodesEndPadding,
    /// Entry `index` of the shared xattr table.
    SharedXattr {
        /// Position in the table.
        index: usize,
    },
    /// Zeros between the shared xattr table and the first data block.
    DataPadding,
    /// Block `block` (counted from 0) of an inode's out-of-line data.
    DataBlock {
        /// The inode.
        inode: InodeInfo,
        /// Block within the inode's data.
        block: u64,
    },
    /// Beyond the end of the image.
    PastEnd,
}

/// A byte range of the image and what it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    /// What the range holds.
    pub structure: Structure,
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
}

impl<'t> Layout<'t> {
    /// The tree this layout was planned for.
    #[must_use]
    pub fn tree(&self) -> &'t Tree {
        self.tree
    }

    /// The format version written in the header: 0 or 1.
    #[must_use]
    pub fn version(&self) -> u32 {
        self.version
    }

    /// Size of the image in bytes (always a multiple of 4096).
    #[must_use]
    pub fn image_size(&self) -> u64 {
        self.blocks.saturating_mul(EROFS_BLKSIZ)
    }

    /// Number of inodes, the root stubs included.
    #[must_use]
    pub fn inode_count(&self) -> usize {
        self.inodes.len()
    }

    /// nid of the root directory.
    #[must_use]
    pub fn root_nid(&self) -> u64 {
        self.inodes.first().map_or(0, InodePlan::nid)
    }

    /// nid of the inode written for tree node `id`.
    #[must_use]
    pub fn nid(&self, id: NodeId) -> Option<u64> {
        self.inode_of(id).map(InodePlan::nid)
    }

    /// Whether the header's `HAS_ACL` flag is set.
    #[must_use]
    pub fn has_acl(&self) -> bool {
        self.has_acl
    }

    /// The image's time base (`build_time`): the earliest mtime of all inodes.
    #[must_use]
    pub fn build_time(&self) -> Mtime {
        self.build_time
    }

    /// Every inode in the order written, i.e. by `i_ino`.
    pub fn inodes(&self) -> impl Iterator<Item = InodeInfo> + '_ {
        (0u32..).zip(&self.inodes).map(|(ino, i)| InodeInfo {
            ino,
            nid: i.nid(),
            origin: i.origin,
        })
    }

    /// The first data block of `inode` (meaningful when it has blocks).
    pub(super) fn first_block(&self, inode: &InodePlan) -> u64 {
        (self.data_start / EROFS_BLKSIZ).saturating_add(u64::from(inode.blocks_before))
    }

    pub(super) fn inode_of(&self, id: NodeId) -> Option<&InodePlan> {
        let ino = *self.node_inode.get(id.index())?;
        self.inodes.get(usize::try_from(ino).ok()?)
    }

    pub(super) fn inode_at(&self, ino: u32) -> Option<&InodePlan> {
        self.inodes.get(usize::try_from(ino).ok()?)
    }

    pub(super) fn inode_xattrs(&self, inode: &InodePlan) -> &[XattrRef<'t>] {
        let (start, end) = inode.xattrs;
        let range = usize::try_from(start).unwrap_or(0)..usize::try_from(end).unwrap_or(0);
        self.xattrs.get(range).unwrap_or_default()
    }

    /// Names the structure that holds byte `offset` of the image, with its extent. This is
    /// what explains the first difference between two images.
    #[must_use]
    pub fn describe_offset(&self, offset: u64) -> Region {
        let region = |structure, start, end| Region {
            structure,
            start,
            end,
        };
        let info = |ino: usize, i: &InodePlan| InodeInfo {
            ino: u32::try_from(ino).unwrap_or(u32::MAX),
            nid: i.nid(),
            origin: i.origin,
        };
        if offset < 32 {
            return region(Structure::Header, 0, 32);
        }
        if offset < 1024 {
            return region(Structure::HeaderPadding, 32, 1024);
        }
        if offset < 1152 {
            return region(Structure::Superblock, 1024, 1152);
        }
        if offset < self.inodes_end {
            // The last inode starting at or before the offset, or the padding before the next.
            let next = self.inodes.partition_point(|i| i.pos <= offset);
            if let Some(ino) = next.checked_sub(1) {
                if let Some(i) = self.inodes.get(ino) {
                    let body = i.pos.saturating_add(i.inode_size());
                    let xattrs = body.saturating_add(u64::from(i.xattr_size));
                    if offset < body {
                        return region(Structure::Inode(info(ino, i)), i.pos, body);
                    }
                    if offset < xattrs {
                        return region(Structure::Xattrs(info(ino, i)), body, xattrs);
                    }
                    if offset < i.end() {
                        return region(Structure::Tail(info(ino, i)), xattrs, i.end());
                    }
                }
            }
            let start = next
                .checked_sub(1)
                .and_then(|p| self.inodes.get(p))
                .map_or(1152, InodePlan::end);
            return match self.inodes.get(next) {
                Some(i) => region(Structure::InodePadding(info(next, i)), start, i.pos),
                None => region(Structure::InodesEndPadding, start, self.inodes_end),
            };
        }
        let table_end = self.inodes_end.saturating_add(self.shared.size);
        if offset < table_end {
            let rel = offset.saturating_sub(self.inodes_end);
            let next = self.shared.entries.partition_point(|e| e.offset <= rel);
            let index = next.saturating_sub(1);
            let start = self.shared.entries.get(index).map_or(0, |e| e.offset);
            let end = self
                .shared
                .entries
                .get(next)
                .map_or(self.shared.size, |e| e.offset);
            return region(
                Structure::SharedXattr { index },
                self.inodes_end.saturating_add(start),
                self.inodes_end.saturating_add(end),
            );
        }
        if offset < self.data_start {
            return region(Structure::DataPadding, table_end, self.data_start);
        }
        if offset >= self.image_size() {
            return region(Structure::PastEnd, self.image_size(), u64::MAX);
        }
        let block = offset / EROFS_BLKSIZ;
        let relative = block.saturating_sub(self.data_start / EROFS_BLKSIZ);
        let ino = self.inodes.partition_point(|i| {
            u64::from(i.blocks_before).saturating_add(u64::from(i.blocks)) <= relative
        });
        match self.inodes.get(ino) {
            Some(i) if u64::from(i.blocks_before) <= relative => {
                let start = block.saturating_mul(EROFS_BLKSIZ);
                region(
                    Structure::DataBlock {
                        inode: info(ino, i),
                        block: relative.saturating_sub(u64::from(i.blocks_before)),
                    },
                    start,
                    start.saturating_add(EROFS_BLKSIZ),
                )
            }
            _ => region(Structure::PastEnd, self.image_size(), u64::MAX),
        }
    }
}
