//! Planning (SPEC.md 4.2 to 4.8): the breadth-first inode order, every inode's fields and
//! xattrs, the shared xattr table, inode placement with its padding rules, and data block
//! addresses. Nothing here writes bytes, and nothing copies the tree.

use alloc::vec;
use alloc::vec::Vec;

use super::dirents::{Child, Children, DirSizer};
use super::error::{WriteError, WriteErrorKind};
use super::layout::{Body, InodePlan, Layout, Origin};
use super::names::{POSIX_ACL_ACCESS, POSIX_ACL_DEFAULT, ROOT_STUB_COUNT};
use super::shared::{self, SharedTable};
use super::xattrs::{self, Context, XattrRef, INLINE};
use super::{version, Options};
use crate::limits::{
    MAX_CHUNKS, MAX_CHUNK_BITS, MAX_INLINE_CONTENT, MAX_PAYLOAD_LEN, MAX_ROOT_NID,
    MAX_SHARED_XATTRS_PER_INODE, MAX_SYMLINK_LEN,
};
use crate::ondisk::{
    FileType, EROFS_BLKSIZ, EROFS_BLKSZBITS, EROFS_BLOCK_MAP_ENTRY_SIZE, EROFS_SLOTSIZE, S_IFCHR,
    S_IFMT, S_IFREG, XATTR_IBODY_HEADER_SIZE,
};
use crate::tree::{Node, NodeId, Tree, TreeError};

/// No inode (a root stub whose name the root already uses).
const NONE: u32 = u32::MAX;
/// Where the first inode may start: right after the superblock.
const INODES_START: u64 = 1152;
/// Largest `u16` value, for the compact inode's 16-bit fields.
const U16_MAX: u32 = 0xFFFF;

/// Plans the image of `tree`.
pub(super) fn plan<'t>(tree: &'t Tree, options: &Options) -> Result<Layout<'t>, WriteError> {
    tree.validate()
        .map_err(|e| WriteError::from_tree(tree, e))?;
    let version = version::select(tree, options)?;
    let mut layout = Layout {
        tree,
        version,
        has_acl: false,
        build_time: tree.root().mtime,
        inodes: Vec::new(),
        node_inode: vec![NONE; tree.len()],
        stub_inode: [NONE; ROOT_STUB_COUNT],
        xattrs: Vec::new(),
        shared: SharedTable::default(),
        inodes_end: 0,
        data_start: 0,
        blocks: 0,
    };
    let hashes = walk(&mut layout)?;
    layout.shared = shared::build(&mut layout.xattrs, &hashes)?;
    drop(hashes);
    place(&mut layout)?;
    Ok(layout)
}

/// Breadth-first walk: orders the inodes and fills in everything that does not depend on
/// the other inodes (sizes, modes, links, xattrs and their name filters), plus the image's
/// minimum mtime and ACL flag. Returns the [`shared::pair_hash`] of every xattr.
fn walk(layout: &mut Layout<'_>) -> Result<Vec<u64>, WriteError> {
    let tree = layout.tree;
    let total = tree
        .len()
        .checked_add(ROOT_STUB_COUNT)
        .filter(|&n| u32::try_from(n).is_ok());
    let total = total.ok_or(WriteError::image(WriteErrorKind::TooManyInodes))?;
    layout.inodes.reserve_exact(total);
    // Images have up to about two xattrs per node (metacopy and redirect). Capacity that is
    // never written costs no memory, while growing a vector copies it.
    let expected = tree.len().saturating_mul(2);
    layout.xattrs.reserve(expected);
    let mut hashes: Vec<u64> = Vec::with_capacity(expected);
    layout
        .inodes
        .push(InodePlan::new(Origin::Node(NodeId::ROOT), 0));
    if let Some(slot) = layout.node_inode.first_mut() {
        *slot = 0;
    }
    let mut ino = 0usize;
    while let Some(&pending) = layout.inodes.get(ino) {
        let this =
            u32::try_from(ino).map_err(|_| WriteError::image(WriteErrorKind::TooManyInodes))?;
        let start = u32::try_from(layout.xattrs.len())
            .map_err(|_| WriteError::image(WriteErrorKind::ImageTooLarge))?;
        let planned = match pending.origin {
            Origin::Node(id) => plan_node(layout, &mut hashes, id, this, pending)?,
            Origin::RootStub(_) => plan_stub(layout, &mut hashes, pending),
        };
        let end = u32::try_from(layout.xattrs.len())
            .map_err(|_| WriteError::image(WriteErrorKind::ImageTooLarge))?;
        layout.build_time = layout.build_time.min(planned.mtime);
        if let Some(slot) = layout.inodes.get_mut(ino) {
            *slot = InodePlan {
                xattrs: (start, end),
                ..planned
            };
        }
        ino = ino.saturating_add(1);
    }
    Ok(hashes)
}

/// Fills in the inode of tree node `id` (breadth-first index `this`); for a directory,
/// also queues its primary children.
fn plan_node<'t>(
    layout: &mut Layout<'t>,
    hashes: &mut Vec<u64>,
    id: NodeId,
    this: u32,
    mut inode: InodePlan,
) -> Result<InodePlan, WriteError> {
    let tree = layout.tree;
    let node = tree.node(id).map_err(|e| WriteError::from_tree(tree, e))?;
    let file_type = node.file_type().ok_or_else(|| {
        let raw = u32::try_from(id.index()).unwrap_or(u32::MAX);
        WriteError::from_tree(
            tree,
            TreeError::InvalidMode {
                node: raw,
                mode: node.mode,
            },
        )
    })?;
    let is_root = id == NodeId::ROOT;
    let fail = |kind| WriteError::at(id, kind);

    inode.uid = node.uid;
    inode.gid = node.gid;
    inode.mtime = node.mtime;
    inode.nlink = node.nlink;
    inode.mode = low16(node.mode);
    // The size the reference's compact-form test looks at.
    let mut stat_size = node.size;
    let mut has_whiteout_child = false;

    match file_type {
        FileType::Directory => {
            let mut subdirs = 0u32;
            let mut sizer = DirSizer::default();
            for child in Children::new(node, is_root) {
                sizer.add(child.size());
                let origin = match child {
                    Child::Entry(e) if !e.hardlink => {
                        let target = tree
                            .node(e.node)
                            .map_err(|e| WriteError::from_tree(tree, e))?;
                        if target.is_dir() {
                            subdirs = subdirs
                                .checked_add(1)
                                .ok_or(fail(WriteErrorKind::TooManySubdirectories))?;
                        }
                        has_whiteout_child |= target.is_whiteout();
                        Origin::Node(e.node)
                    }
                    Child::Stub(n) => Origin::RootStub(n),
                    Child::Entry(_) | Child::Dot | Child::DotDot => continue,
                };
                let child_ino = u32::try_from(layout.inodes.len())
                    .map_err(|_| WriteError::image(WriteErrorKind::TooManyInodes))?;
                let slot = match origin {
                    Origin::Node(child) => layout.node_inode.get_mut(child.index()),
                    Origin::RootStub(n) => layout.stub_inode.get_mut(usize::from(n)),
                };
                if let Some(slot) = slot {
                    *slot = child_ino;
                }
                layout.inodes.push(InodePlan::new(origin, this));
            }
            let size = sizer.finish();
            inode.body = Body::Directory;
            inode.nlink = subdirs
                .checked_add(2)
                .ok_or(fail(WriteErrorKind::TooManySubdirectories))?;
            inode.size = size.i_size();
            inode.blocks = narrow(size.blocks, fail)?;
            inode.tail = narrow(size.tail, fail)?;
            stat_size = inode.size;
        }
        FileType::Regular => {
            check_payload(id, node)?;
            plan_regular(id, node, &mut inode)?;
        }
        FileType::Symlink => {
            let target = symlink_target(id, node)?;
            inode.body = Body::Symlink;
            inode.size = u64::try_from(target.len()).unwrap_or(u64::MAX);
            inode.tail = narrow(inode.size, fail)?;
            stat_size = inode.size;
        }
        FileType::CharDevice if node.is_whiteout() => {
            // A whiteout becomes an empty regular file marked by xattrs.
            inode.mode = low16(S_IFREG | (node.mode & !S_IFMT));
            stat_size = 0;
        }
        FileType::CharDevice | FileType::BlockDevice => inode.i_u = node.rdev,
        FileType::Fifo | FileType::Socket => {}
    }
    if inode.nlink == 0 {
        return Err(fail(WriteErrorKind::ZeroLinks));
    }
    inode.compact_fits = inode.nlink <= U16_MAX
        && inode.uid <= U16_MAX
        && inode.gid <= U16_MAX
        && stat_size <= u64::from(u32::MAX);

    let cx = Context {
        version: layout.version,
        is_root,
        has_whiteout_child,
    };
    inode.name_filter = xattrs::collect_node(id, node, cx, &mut layout.xattrs, hashes)?;
    layout.has_acl |= node
        .xattrs
        .iter()
        .any(|x| x.key == POSIX_ACL_ACCESS || x.key == POSIX_ACL_DEFAULT);
    Ok(inode)
}

/// Sizes a regular file: inline content, external (a chunk map), or empty.
fn plan_regular(id: NodeId, node: &Node, inode: &mut InodePlan) -> Result<(), WriteError> {
    let fail = |kind| WriteError::at(id, kind);
    inode.size = node.size;
    if let Some(content) = &node.content {
        if content.len() > MAX_INLINE_CONTENT {
            return Err(fail(WriteErrorKind::ContentTooLarge { len: content.len() }));
        }
        if u64::try_from(content.len()).ok() != Some(node.size) {
            return Err(fail(WriteErrorKind::ContentSizeMismatch {
                len: content.len(),
                size: node.size,
            }));
        }
        if node.size > 0 {
            // At most 5000 bytes: one block and a tail.
            let (mut blocks, mut tail) = (node.size / EROFS_BLKSIZ, node.size % EROFS_BLKSIZ);
            if tail > EROFS_BLKSIZ / 2 {
                blocks = blocks.saturating_add(1);
                tail = 0;
            }
            inode.body = Body::Inline;
            inode.blocks = narrow(blocks, fail)?;
            inode.tail = narrow(tail, fail)?;
        }
        return Ok(());
    }
    if node.size == 0 {
        return Ok(());
    }
    let (chunk_bits, chunks) = chunking(node.size);
    if chunks > MAX_CHUNKS {
        return Err(fail(WriteErrorKind::FileTooLarge {
            size: node.size,
            chunks,
        }));
    }
    inode.body = Body::External {
        chunks: u16::try_from(chunks).map_err(|_| fail(WriteErrorKind::ImageTooLarge))?,
    };
    inode.tail = narrow(chunks.saturating_mul(EROFS_BLOCK_MAP_ENTRY_SIZE), fail)?;
    inode.i_u = chunk_bits.saturating_sub(u32::from(EROFS_BLKSZBITS));
    Ok(())
}

/// `value` as a `u32` field of the plan; [`WriteErrorKind::ImageTooLarge`] if it does
/// not fit (only possible for absurdly large directories).
fn narrow(value: u64, fail: impl Fn(WriteErrorKind) -> WriteError) -> Result<u32, WriteError> {
    u32::try_from(value).map_err(|_| fail(WriteErrorKind::ImageTooLarge))
}

/// Chunk size exponent and chunk count of an external file of `size` (> 0) bytes: the
/// smallest power of two of at least a block that covers the file, capped at 2^43.
pub(super) fn chunking(size: u64) -> (u32, u64) {
    let bits = u64::BITS
        .saturating_sub(size.saturating_sub(1).leading_zeros())
        .clamp(u32::from(EROFS_BLKSZBITS), MAX_CHUNK_BITS);
    let chunk = 1u64 << bits;
    (bits, size.div_ceil(chunk))
}

/// Checks a regular file's backing path: at most 4095 bytes without NUL and, when it
/// becomes a redirect (external files), components separated by single `/`, none empty,
/// `.` or `..`.
fn check_payload(id: NodeId, node: &Node) -> Result<(), WriteError> {
    let Some(payload) = &node.payload else {
        return Ok(());
    };
    let fail = |kind| Err(WriteError::at(id, kind));
    if payload.len() > MAX_PAYLOAD_LEN {
        return fail(WriteErrorKind::PayloadTooLong { len: payload.len() });
    }
    if payload.contains(&0) {
        return fail(WriteErrorKind::PayloadNul);
    }
    let redirected = node.size > 0 && node.content.is_none() && !payload.is_empty();
    if redirected {
        let mut at = 0usize;
        for component in payload.split(|&b| b == b'/') {
            if component.is_empty() || component == b"." || component == b".." {
                return fail(WriteErrorKind::PayloadNotRelative { at });
            }
            at = at.saturating_add(component.len()).saturating_add(1);
        }
    }
    Ok(())
}

fn symlink_target(id: NodeId, node: &Node) -> Result<&[u8], WriteError> {
    let target = node.payload.as_deref().unwrap_or_default();
    let kind = if target.is_empty() {
        WriteErrorKind::SymlinkTargetEmpty
    } else if target.len() > MAX_SYMLINK_LEN {
        WriteErrorKind::SymlinkTargetTooLong { len: target.len() }
    } else if target.contains(&0) {
        WriteErrorKind::PayloadNul
    } else {
        return Ok(target);
    };
    Err(WriteError::at(id, kind))
}

/// Fills in a root stub: a character device 0:0 with the root's owner, mtime and SELinux
/// label.
fn plan_stub(layout: &mut Layout<'_>, hashes: &mut Vec<u64>, mut inode: InodePlan) -> InodePlan {
    let root = layout.tree.root();
    inode.mode = low16(S_IFCHR | 0o644);
    inode.nlink = 1;
    inode.uid = root.uid;
    inode.gid = root.gid;
    inode.mtime = root.mtime;
    inode.compact_fits = root.uid <= U16_MAX && root.gid <= U16_MAX;
    inode.name_filter = xattrs::collect_stub(root, &mut layout.xattrs, hashes);
    inode
}

/// Decides each inode's form and xattr area, then places the inodes one after the other
/// from byte 1152, padding so that no inline tail crosses a block boundary.
fn place(layout: &mut Layout<'_>) -> Result<(), WriteError> {
    let build_time = layout.build_time;
    let mut pos = INODES_START;
    let mut blocks = 0u32;
    let Layout { inodes, xattrs, .. } = layout;
    for inode in inodes.iter_mut() {
        let node = match inode.origin {
            Origin::Node(id) => Some(id),
            Origin::RootStub(_) => None,
        };
        let fail = |kind| match node {
            Some(id) => WriteError::at(id, kind),
            None => WriteError::image(kind),
        };
        inode.compact = inode.compact_fits && inode.mtime == build_time;
        let (start, end) = inode.xattrs;
        let own = xattrs
            .get_mut(usize::try_from(start).unwrap_or(0)..usize::try_from(end).unwrap_or(0))
            .unwrap_or_default();
        let (shared_count, xattr_size) = xattr_area(own);
        inode.shared_count = shared_count;
        inode.xattr_size = u32::try_from(xattr_size)
            .map_err(|_| fail(WriteErrorKind::XattrAreaTooLarge { size: xattr_size }))?;
        if u16::try_from(inode.xattr_icount()).is_err() {
            return Err(fail(WriteErrorKind::XattrAreaTooLarge { size: xattr_size }));
        }

        pos = round_up(pos, EROFS_SLOTSIZE);
        let head = inode.inode_size().saturating_add(xattr_size);
        let pad = if inode.body == Body::Symlink {
            symlink_padding(pos, head, inode)
        } else {
            let tail = u64::from(inode.tail);
            tail_padding(pos, head, tail).ok_or_else(|| match inode.body {
                Body::External { chunks } => fail(WriteErrorKind::ChunkMapNotInline {
                    chunks: u64::from(chunks),
                }),
                _ => fail(WriteErrorKind::ImageTooLarge),
            })?
        };
        inode.pos = pos
            .checked_add(pad)
            .ok_or(fail(WriteErrorKind::ImageTooLarge))?;
        let end = inode
            .pos
            .checked_add(head)
            .and_then(|p| p.checked_add(u64::from(inode.tail)));
        pos = end.ok_or(fail(WriteErrorKind::ImageTooLarge))?;
        // Data blocks are given out in the same order.
        inode.blocks_before = blocks;
        blocks = blocks
            .checked_add(inode.blocks)
            .ok_or(fail(WriteErrorKind::ImageTooLarge))?;
    }
    let root_nid = layout.root_nid();
    if root_nid > MAX_ROOT_NID {
        return Err(WriteError::at(
            NodeId::ROOT,
            WriteErrorKind::RootNidTooLarge { nid: root_nid },
        ));
    }
    layout.inodes_end = round_up(pos, EROFS_SLOTSIZE);
    finish(layout, blocks)
}

/// Picks which of an inode's xattrs refer to the shared table (those shared, in name
/// order, up to 128) and returns the shared count and the xattr area size.
fn xattr_area(own: &mut [XattrRef<'_>]) -> (u8, u64) {
    if own.is_empty() {
        return (0, 0);
    }
    let mut shared = 0usize;
    let mut inline = 0u64;
    for x in own.iter_mut() {
        if x.shared != INLINE && shared < MAX_SHARED_XATTRS_PER_INODE {
            shared = shared.saturating_add(1);
        } else {
            x.shared = INLINE;
            inline = inline.saturating_add(x.entry_size());
        }
    }
    let ids = u64::try_from(shared).unwrap_or(u64::MAX).saturating_mul(4);
    let size = XATTR_IBODY_HEADER_SIZE
        .saturating_add(ids)
        .saturating_add(inline);
    (u8::try_from(shared).unwrap_or(u8::MAX), size)
}

/// Padding before an inode (other than a symlink) at `pos` whose inode and xattrs take
/// `head` bytes, so that its `tail` does not cross a block boundary: shift by the room
/// left in the block, rounded up to a slot. `None` when even that does not make it fit
/// (only possible for chunk maps of more than 1017 entries).
fn tail_padding(pos: u64, head: u64, tail: u64) -> Option<u64> {
    let room = |at: u64| EROFS_BLKSIZ.saturating_sub(at.saturating_add(head) % EROFS_BLKSIZ);
    let left = room(pos);
    if left >= tail {
        return Some(0);
    }
    let pad = round_up(left, EROFS_SLOTSIZE);
    (room(pos.saturating_add(pad)) >= tail).then_some(pad)
}

/// Padding before a symlink at `pos` whose inode and xattrs take `head` bytes: when inode,
/// xattrs and target would span two blocks, start at the next block. Independently, when
/// they take a whole block or more, the target moves to a data block of its own.
fn symlink_padding(pos: u64, head: u64, inode: &mut InodePlan) -> u64 {
    let total = head.saturating_add(u64::from(inode.tail));
    if total >= EROFS_BLKSIZ {
        inode.blocks = 1;
        inode.tail = 0;
    }
    let last = pos.saturating_add(total).saturating_sub(1);
    if pos / EROFS_BLKSIZ == last / EROFS_BLKSIZ {
        0
    } else {
        round_up(pos, EROFS_BLKSIZ).saturating_sub(pos)
    }
}

/// Puts the shared xattr table after the inodes and the `blocks` data blocks after it,
/// checking that block addresses and shared ids fit 32 bits.
fn finish(layout: &mut Layout<'_>, blocks: u32) -> Result<(), WriteError> {
    let too_large = || WriteError::image(WriteErrorKind::ImageTooLarge);
    let table_end = layout
        .inodes_end
        .checked_add(layout.shared.size)
        .ok_or_else(too_large)?;
    // Shared ids count 4-byte units from the block holding the table's start.
    let last_id = (layout.inodes_end % EROFS_BLKSIZ).saturating_add(layout.shared.size) / 4;
    if u32::try_from(last_id).is_err() {
        return Err(too_large());
    }
    layout.data_start = round_up(table_end, EROFS_BLKSIZ);
    let total = (layout.data_start / EROFS_BLKSIZ).saturating_add(u64::from(blocks));
    if u32::try_from(total).is_err() {
        return Err(too_large());
    }
    layout.blocks = total;
    Ok(())
}

fn round_up(n: u64, to: u64) -> u64 {
    n.div_ceil(to).saturating_mul(to)
}

/// The low 16 bits: what a compact or extended inode keeps of a mode.
fn low16(v: u32) -> u16 {
    let [a, b, _, _] = v.to_le_bytes();
    u16::from_le_bytes([a, b])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunking_matches_the_reference_rule() {
        assert_eq!(chunking(1), (12, 1));
        assert_eq!(chunking(4096), (12, 1));
        assert_eq!(chunking(4097), (13, 1));
        assert_eq!(chunking(1 << 43), (43, 1));
        assert_eq!(chunking((1 << 43) + 1), (43, 2));
        assert_eq!(chunking(1 << 53), (43, 1024));
        assert_eq!(chunking((1 << 53) + 1), (43, 1025));
        assert_eq!(chunking(u64::MAX), (43, 1 << 21));
    }

    #[test]
    fn tail_padding_shifts_to_the_next_block_or_gives_up() {
        // Fits where it is.
        assert_eq!(tail_padding(1152, 32, 100), Some(0));
        // 4096 - (4000 + 64) = 32 bytes left; a 100-byte tail needs a shift of 32.
        assert_eq!(tail_padding(4000, 64, 100), Some(32));
        // 20 bytes left rounds up to a 32-byte shift: the tail then starts 12 bytes in.
        assert_eq!(tail_padding(4032, 44, 100), Some(32));
        // A full 4096-byte chunk map fits only at a block start.
        assert_eq!(tail_padding(4064, 32, 4096), Some(0));
        assert_eq!(tail_padding(4032, 44, 4096), None);
    }
}
