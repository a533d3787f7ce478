//! Writing a planned image (SPEC.md 4.6 to 4.8): one pass, front to back, straight into a
//! sink.

use alloc::vec::Vec;
use zerocopy::IntoBytes;

use super::dirents::{Child, Children, Groups};
use super::error::EmitError;
use super::layout::{Body, InodePlan, Layout, Origin};
use super::xattrs::INLINE;
use crate::ondisk::{
    CompactInode, ComposefsHeader, Dirent, ExtendedInode, FileType, Superblock, XattrIbodyHeader,
    COMPOSEFS_FEATURE_COMPAT, COMPOSEFS_FLAGS_HAS_ACL, COMPOSEFS_HEADER_VERSION, COMPOSEFS_MAGIC,
    EROFS_BLKSIZ, EROFS_BLKSZBITS, EROFS_DIRENT_SIZE, EROFS_INODE_CHUNK_BASED,
    EROFS_INODE_FLAT_INLINE, EROFS_INODE_FLAT_PLAIN, EROFS_I_DATALAYOUT_BIT, EROFS_NULL_ADDR,
    EROFS_SUPER_MAGIC_V1, EROFS_SUPER_OFFSET,
};
use crate::sink::Sink;
use crate::tree::NodeId;

/// A sink that counts what goes through it, so that every structure can be checked to
/// start where the layout put it.
struct Counted<'s, S: ?Sized> {
    sink: &'s mut S,
    at: u64,
}

impl<S: Sink + ?Sized> Counted<'_, S> {
    fn bytes(&mut self, bytes: &[u8]) -> Result<(), EmitError<S::Error>> {
        self.write_all(bytes).map_err(EmitError::Sink)
    }

    fn zeros(&mut self, count: u64) -> Result<(), EmitError<S::Error>> {
        self.write_zeros(count).map_err(EmitError::Sink)
    }

    /// Pads with zeros up to `offset`; an error if already past it.
    fn pad_to(&mut self, offset: u64) -> Result<(), EmitError<S::Error>> {
        let gap = offset
            .checked_sub(self.at)
            .ok_or(EmitError::Inconsistent { offset: self.at })?;
        self.zeros(gap)
    }

    /// Checks that exactly `offset` bytes have been written.
    fn expect(&self, offset: u64) -> Result<(), EmitError<S::Error>> {
        if self.at == offset {
            Ok(())
        } else {
            Err(EmitError::Inconsistent { offset: self.at })
        }
    }
}

impl<S: Sink + ?Sized> Sink for Counted<'_, S> {
    type Error = S::Error;

    fn write_all(&mut self, bytes: &[u8]) -> Result<(), S::Error> {
        self.sink.write_all(bytes)?;
        self.at = self
            .at
            .saturating_add(u64::try_from(bytes.len()).unwrap_or(u64::MAX));
        Ok(())
    }

    fn write_zeros(&mut self, count: u64) -> Result<(), S::Error> {
        self.sink.write_zeros(count)?;
        self.at = self.at.saturating_add(count);
        Ok(())
    }
}

impl Layout<'_> {
    /// Writes the image, front to back, into `sink`. Nothing is buffered here: give an
    /// unbuffered file a `BufWriter`.
    ///
    /// # Errors
    /// [`EmitError::Sink`] when the sink fails. [`EmitError::Inconsistent`] would mean
    /// a bug in the writer: the output disagreed with the plan.
    pub fn emit<S: Sink + ?Sized>(&self, sink: &mut S) -> Result<(), EmitError<S::Error>> {
        let mut out = Counted { sink, at: 0 };
        self.emit_header(&mut out)?;
        let mut scratch = Vec::new();
        for (ino, inode) in (0u32..).zip(&self.inodes) {
            out.pad_to(inode.pos)?;
            self.emit_inode(&mut out, ino, inode, &mut scratch)?;
            out.expect(inode.end())?;
        }
        out.pad_to(self.inodes_end)?;
        for entry in &self.shared.entries {
            out.expect(self.inodes_end.saturating_add(entry.offset))?;
            let x = self
                .xattrs
                .get(usize::try_from(entry.xattr).unwrap_or(usize::MAX));
            let x = x.ok_or(EmitError::Inconsistent { offset: out.at })?;
            x.write(&mut out).map_err(EmitError::Sink)?;
        }
        out.expect(self.inodes_end.saturating_add(self.shared.size))?;
        out.pad_to(self.data_start)?;
        for inode in &self.inodes {
            out.expect(self.first_block(inode).saturating_mul(EROFS_BLKSIZ))?;
            self.emit_blocks(&mut out, inode, &mut scratch)?;
        }
        out.expect(self.image_size())
    }

    fn emit_header<S: Sink + ?Sized>(
        &self,
        out: &mut Counted<'_, S>,
    ) -> Result<(), EmitError<S::Error>> {
        let header = ComposefsHeader {
            magic: COMPOSEFS_MAGIC.into(),
            version: COMPOSEFS_HEADER_VERSION.into(),
            flags: if self.has_acl {
                COMPOSEFS_FLAGS_HAS_ACL
            } else {
                0
            }
            .into(),
            composefs_version: self.version.into(),
            ..ComposefsHeader::default()
        };
        out.bytes(header.as_bytes())?;
        out.pad_to(EROFS_SUPER_OFFSET)?;
        let inconsistent = diverged(out.at);
        let superblock = Superblock {
            magic: EROFS_SUPER_MAGIC_V1.into(),
            feature_compat: COMPOSEFS_FEATURE_COMPAT.into(),
            blkszbits: EROFS_BLKSZBITS,
            root_nid: u16::try_from(self.root_nid()).map_err(inconsistent)?.into(),
            inos: u64::try_from(self.inodes.len()).unwrap_or(u64::MAX).into(),
            build_time: u64::from_le_bytes(self.build_time.sec.to_le_bytes()).into(),
            build_time_nsec: self.build_time.nsec.into(),
            blocks: u32::try_from(self.blocks).map_err(inconsistent)?.into(),
            meta_blkaddr: 0.into(),
            xattr_blkaddr: u32::try_from(self.inodes_end / EROFS_BLKSIZ)
                .map_err(inconsistent)?
                .into(),
            ..Superblock::default()
        };
        out.bytes(superblock.as_bytes())
    }

    fn emit_inode<'a, S: Sink + ?Sized>(
        &'a self,
        out: &mut Counted<'_, S>,
        ino: u32,
        inode: &InodePlan,
        scratch: &mut Vec<Child<'a>>,
    ) -> Result<(), EmitError<S::Error>> {
        let inconsistent = diverged(out.at);
        let layout = match inode.body {
            Body::External { .. } => EROFS_INODE_CHUNK_BASED,
            _ if inode.tail > 0 => EROFS_INODE_FLAT_INLINE,
            _ => EROFS_INODE_FLAT_PLAIN,
        };
        let i_format = (layout << EROFS_I_DATALAYOUT_BIT) | u16::from(!inode.compact);
        let icount = u16::try_from(inode.xattr_icount()).map_err(inconsistent)?;
        let i_u = if inode.blocks > 0 {
            u32::try_from(self.first_block(inode)).map_err(inconsistent)?
        } else {
            inode.i_u
        };
        if inode.compact {
            let raw = CompactInode {
                i_format: i_format.into(),
                i_xattr_icount: icount.into(),
                i_mode: inode.mode.into(),
                i_nlink: u16::try_from(inode.nlink).map_err(inconsistent)?.into(),
                i_size: u32::try_from(inode.size).map_err(inconsistent)?.into(),
                i_u: i_u.into(),
                i_ino: ino.into(),
                i_uid: u16::try_from(inode.uid).map_err(inconsistent)?.into(),
                i_gid: u16::try_from(inode.gid).map_err(inconsistent)?.into(),
                ..CompactInode::default()
            };
            out.bytes(raw.as_bytes())?;
        } else {
            let raw = ExtendedInode {
                i_format: i_format.into(),
                i_xattr_icount: icount.into(),
                i_mode: inode.mode.into(),
                i_size: inode.size.into(),
                i_u: i_u.into(),
                i_ino: ino.into(),
                i_uid: inode.uid.into(),
                i_gid: inode.gid.into(),
                i_mtime: u64::from_le_bytes(inode.mtime.sec.to_le_bytes()).into(),
                i_mtime_nsec: inode.mtime.nsec.into(),
                i_nlink: inode.nlink.into(),
                ..ExtendedInode::default()
            };
            out.bytes(raw.as_bytes())?;
        }
        self.emit_xattrs(out, inode)?;
        self.emit_tail(out, inode, scratch)
    }

    fn emit_xattrs<S: Sink + ?Sized>(
        &self,
        out: &mut Counted<'_, S>,
        inode: &InodePlan,
    ) -> Result<(), EmitError<S::Error>> {
        if inode.xattr_size == 0 {
            return Ok(());
        }
        let header = XattrIbodyHeader {
            h_name_filter: inode.name_filter.into(),
            h_shared_count: inode.shared_count,
            ..XattrIbodyHeader::default()
        };
        out.bytes(header.as_bytes())?;
        let own = self.inode_xattrs(inode);
        let base = self.inodes_end % EROFS_BLKSIZ;
        for x in own.iter().filter(|x| x.shared != INLINE) {
            let entry = self
                .shared
                .entries
                .get(usize::try_from(x.shared).unwrap_or(usize::MAX));
            let entry = entry.ok_or(EmitError::Inconsistent { offset: out.at })?;
            let id = base.saturating_add(entry.offset) / 4;
            let id = u32::try_from(id).map_err(|_| EmitError::Inconsistent { offset: out.at })?;
            out.bytes(&id.to_le_bytes())?;
        }
        for x in own.iter().filter(|x| x.shared == INLINE) {
            x.write(out).map_err(EmitError::Sink)?;
        }
        Ok(())
    }

    fn emit_tail<'a, S: Sink + ?Sized>(
        &'a self,
        out: &mut Counted<'_, S>,
        inode: &InodePlan,
        scratch: &mut Vec<Child<'a>>,
    ) -> Result<(), EmitError<S::Error>> {
        if inode.tail == 0 {
            return Ok(());
        }
        match inode.body {
            Body::Directory => {
                let mut groups = self.dir_groups(inode);
                let mut last = false;
                for _ in 0..=inode.blocks {
                    last = groups.next_into(scratch);
                }
                if !last {
                    return Err(EmitError::Inconsistent { offset: out.at });
                }
                self.emit_dirents(out, inode, scratch)
            }
            Body::Inline => {
                let content = self.content(inode);
                let from = content
                    .len()
                    .saturating_sub(usize::try_from(inode.tail).unwrap_or(0));
                out.bytes(content.get(from..).unwrap_or_default())
            }
            Body::Symlink => out.bytes(self.payload(inode)),
            Body::External { chunks } => {
                for _ in 0..chunks {
                    out.bytes(&EROFS_NULL_ADDR.to_le_bytes())?;
                }
                Ok(())
            }
            Body::Empty => Err(EmitError::Inconsistent { offset: out.at }),
        }
    }

    fn emit_blocks<'a, S: Sink + ?Sized>(
        &'a self,
        out: &mut Counted<'_, S>,
        inode: &InodePlan,
        scratch: &mut Vec<Child<'a>>,
    ) -> Result<(), EmitError<S::Error>> {
        if inode.blocks == 0 {
            return Ok(());
        }
        let start = out.at;
        match inode.body {
            Body::Directory => {
                let mut groups = self.dir_groups(inode);
                for _ in 0..inode.blocks {
                    if !groups.next_into(scratch) {
                        return Err(EmitError::Inconsistent { offset: out.at });
                    }
                    let block = out.at;
                    self.emit_dirents(out, inode, scratch)?;
                    out.pad_to(block.saturating_add(EROFS_BLKSIZ))?;
                }
            }
            // At most one block: inline content is at most 5000 bytes, a target 4095.
            Body::Inline => {
                let content = self.content(inode);
                out.bytes(content.get(..4096).unwrap_or(content))?;
            }
            Body::Symlink => out.bytes(self.payload(inode))?,
            Body::External { .. } | Body::Empty => {}
        }
        out.pad_to(start.saturating_add(u64::from(inode.blocks).saturating_mul(EROFS_BLKSIZ)))
    }

    /// Writes one block's (or the tail's) dirents, then their names.
    fn emit_dirents<S: Sink + ?Sized>(
        &self,
        out: &mut Counted<'_, S>,
        dir: &InodePlan,
        group: &[Child<'_>],
    ) -> Result<(), EmitError<S::Error>> {
        let inconsistent = diverged(out.at);
        let count = u64::try_from(group.len()).map_err(inconsistent)?;
        let mut nameoff = count.saturating_mul(EROFS_DIRENT_SIZE);
        for child in group {
            let target = self
                .child_inode(dir, child)
                .ok_or(EmitError::Inconsistent { offset: out.at })?;
            let dirent = Dirent {
                nid: target.nid().into(),
                nameoff: u16::try_from(nameoff).map_err(inconsistent)?.into(),
                file_type: file_type(target.mode),
                reserved: 0,
            };
            out.bytes(dirent.as_bytes())?;
            nameoff = nameoff.saturating_add(u64::try_from(child.name().len()).unwrap_or(0));
        }
        for child in group {
            out.bytes(child.name())?;
        }
        Ok(())
    }

    fn dir_groups(&self, inode: &InodePlan) -> Groups<'_> {
        let (node, is_root) = match inode.origin {
            Origin::Node(id) => (self.tree.get(id), id == NodeId::ROOT),
            Origin::RootStub(_) => (None, false),
        };
        let node = node.unwrap_or(self.tree.root());
        Groups::new(Children::new(node, is_root))
    }

    /// The inode a directory entry of `dir` points to.
    fn child_inode<'a>(&'a self, dir: &'a InodePlan, child: &Child<'_>) -> Option<&'a InodePlan> {
        match child {
            Child::Entry(e) => self.inode_of(e.node),
            Child::Dot => Some(dir),
            Child::DotDot => self.inode_at(dir.parent),
            Child::Stub(n) => self.inode_at(*self.stub_inode.get(usize::from(*n))?),
        }
    }

    fn content(&self, inode: &InodePlan) -> &[u8] {
        self.node_of(inode)
            .and_then(|n| n.content.as_deref())
            .unwrap_or_default()
    }

    fn payload(&self, inode: &InodePlan) -> &[u8] {
        self.node_of(inode)
            .and_then(|n| n.payload.as_deref())
            .unwrap_or_default()
    }

    fn node_of(&self, inode: &InodePlan) -> Option<&crate::tree::Node> {
        match inode.origin {
            Origin::Node(id) => self.tree.get(id),
            Origin::RootStub(_) => None,
        }
    }
}

/// The error for a value that contradicts the plan, noticed at byte `at`.
fn diverged<E>(at: u64) -> impl Fn(core::num::TryFromIntError) -> EmitError<E> + Copy {
    move |_| EmitError::Inconsistent { offset: at }
}

/// The dirent file type of a stored mode.
fn file_type(mode: u16) -> u8 {
    FileType::from_mode(u32::from(mode)).map_or(0, FileType::dirent_type)
}
