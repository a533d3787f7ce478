//! Reading an image back into a [`Tree`], undoing what the writer did (SPEC.md 5.2).
//!
//! The writer adds things the input tree never had: `.` and `..`, the 256 whiteout stubs
//! and `trusted.overlay.opaque=y` on the root, metacopy and redirect xattrs on external
//! files, escaping of `trusted.overlay.*` names, and the conversion of whiteouts into
//! marked regular files. [`image_to_tree`] removes each of them again, so that writing the
//! resulting tree at the image's format version reproduces an image the writer made byte
//! for byte. Where several trees would give the same image, it picks one, as SPEC.md 5.2
//! describes; where it has a choice it follows what the reference `composefs-info` reads,
//! so that the dump printed from the tree matches the reference's.
//!
//! Two things the image does not store are inferred from where the writer put them: which
//! entry of a hard-linked node is its primary one (from the inode order, with the root's
//! whiteout stubs counted in their places), and, for a device, FIFO or socket stored in
//! extended form for no other reason, a size above `u32::MAX` (read as 2^32; such inodes
//! store `i_size` 0, so `composefs-info` shows 0).
//!
//! The traversal is breadth-first with an explicit queue and a visited set, so hostile
//! images cost bounded time and memory; any structural error is returned, not skipped.

use alloc::collections::{btree_map, BTreeMap};
use alloc::vec;
use alloc::vec::Vec;

use crate::error::{Error, ErrorKind, Limit, Result};
use crate::image::Image;
use crate::inode::Inode;
use crate::limits::MAX_CHECK_ENTRIES;
use crate::ondisk::{DataLayout, FileType, S_IFCHR};
use crate::overlay::{
    self, Metacopy, OPAQUE_WHITEOUTS_VALUE, OVERLAY_ESCAPED_PREFIX, OVERLAY_PREFIX,
    XATTR_ESCAPED_OPAQUE, XATTR_ESCAPED_WHITEOUT, XATTR_ESCAPED_WHITEOUTS, XATTR_USER_OPAQUE,
    XATTR_USER_WHITEOUT, XATTR_USER_WHITEOUTS,
};
use crate::tree::{Mtime, Node, NodeId, Tree, Xattr};
use crate::xattr::Xattr as RawXattr;

/// An image read back into a tree.
#[derive(Debug, Clone)]
pub struct ImageTree {
    /// The tree the image describes.
    pub tree: Tree,
    /// The nid each node was read from, indexed by [`NodeId::index`].
    pub nids: Vec<u64>,
    /// The format version stored in the image header: rebuild with min = max = this.
    pub format_version: u32,
}

/// One directory entry met during the walk, in the writer's breadth-first order.
struct Found<'a> {
    /// Index of the parent directory in the directory queue.
    parent: usize,
    name: &'a [u8],
    nid: u64,
    /// A whiteout stub (character device 0:0): not part of the tree, but its inode takes
    /// its place in the writer's order like any other.
    stub: bool,
}

/// Reads `image` into a tree.
///
/// # Errors
/// Any structural error met on the way (the same errors the reader views report), a
/// directory reachable twice, or the entry limit of [`MAX_CHECK_ENTRIES`].
pub fn image_to_tree(image: &Image<'_>) -> Result<ImageTree> {
    let root = image.root()?;
    let (dirs, walked) = walk(image, root)?;
    // Primaries are chosen with the stubs in place: their inodes sit between the others
    // (a node whose entries fall on both sides of `00`..`ff` in the root must keep the
    // position its primary entry gave it). Then the stubs are dropped.
    let chosen = choose_primaries(&walked);
    let (found, primary): (Vec<Found<'_>>, Vec<bool>) = walked
        .into_iter()
        .zip(chosen)
        .filter(|(f, _)| !f.stub)
        .unzip();

    // Nodes in first-seen order: the root, then each distinct nid as its entries appear.
    let mut node_of: BTreeMap<u64, NodeId> = BTreeMap::new();
    let mut nids = vec![root.nid()];
    node_of.insert(root.nid(), NodeId::ROOT);
    let mut tree = Tree::new(Node::default());
    let mut dir_node = Vec::with_capacity(dirs.len());
    dir_node.push(NodeId::ROOT);
    for f in &found {
        if let btree_map::Entry::Vacant(slot) = node_of.entry(f.nid) {
            slot.insert(tree.add(Node::default()).map_err(|_| limit())?);
            nids.push(f.nid);
        }
    }
    // Directory queue index -> node, for attaching children (directories are never links).
    for dir in dirs.iter().skip(1) {
        dir_node.push(*node_of.get(&dir.nid()).ok_or_else(limit)?);
    }

    // Which directories hold (primary entries of) whiteouts: their markers are the
    // writer's, and the whiteouts themselves turn back into character devices.
    let version = image.format_version();
    let mut whiteout_nids: BTreeMap<u64, ()> = BTreeMap::new();
    let mut dirs_with_whiteouts = vec![false; dirs.len()];
    for (f, &is_primary) in found.iter().zip(&primary) {
        let parent = dirs.get(f.parent).ok_or_else(limit)?;
        if is_primary && is_converted_whiteout(&image.inode(f.nid)?, parent, version)? {
            whiteout_nids.insert(f.nid, ());
            if let Some(flag) = dirs_with_whiteouts.get_mut(f.parent) {
                *flag = true;
            }
        }
    }

    // Fill every node from its inode.
    let dir_flags: BTreeMap<u64, bool> = dirs
        .iter()
        .zip(&dirs_with_whiteouts)
        .map(|(d, &w)| (d.nid(), w))
        .collect();
    for (&nid, &id) in &node_of {
        let inode = image.inode(nid)?;
        let node = read_node(
            &inode,
            whiteout_nids.contains_key(&nid),
            dir_flags.get(&nid).copied().unwrap_or(false),
        )?;
        *tree.node_mut(id).map_err(|_| limit())? = node;
    }

    // Entries, already in name order within each directory.
    for (f, &is_primary) in found.iter().zip(&primary) {
        let parent = *dir_node.get(f.parent).ok_or_else(limit)?;
        let child = *node_of.get(&f.nid).ok_or_else(limit)?;
        // Names were checked (1..=255 bytes, no '/' or NUL, sorted, unique) during the walk.
        tree.push_child(parent, f.name.to_vec(), child, !is_primary)
            .map_err(|_| limit())?;
    }
    Ok(ImageTree {
        tree,
        nids,
        format_version: version,
    })
}

fn limit() -> Error {
    Error::new(ErrorKind::LimitExceeded {
        limit: Limit::Entries,
    })
}

/// Breadth-first walk over directories, as the writer orders inodes: returns the directory
/// queue (root first) and every entry but `.` and `..` (whiteout stubs marked), each
/// directory's entries in stored (name) order.
fn walk<'a>(image: &Image<'a>, root: Inode<'a>) -> Result<(Vec<Inode<'a>>, Vec<Found<'a>>)> {
    let mut visited: BTreeMap<u64, ()> = BTreeMap::new();
    visited.insert(root.nid(), ());
    let mut dirs = vec![root];
    let mut found = Vec::new();
    let mut next = 0usize;
    while let Some(dir) = dirs.get(next).copied() {
        let mut previous: Option<&[u8]> = None;
        for dirent in dir.dir()?.entries() {
            let dirent = dirent?;
            let name = dirent.name();
            // The tree keeps names sorted and unique, as a sound image stores them.
            if let Some(prev) = previous {
                let short = crate::error::ShortName::new(name);
                match prev.cmp(name) {
                    core::cmp::Ordering::Less => {}
                    core::cmp::Ordering::Equal => {
                        return Err(Error::at_nid(
                            ErrorKind::DirentDuplicate { name: short },
                            dir.nid(),
                        ))
                    }
                    core::cmp::Ordering::Greater => {
                        return Err(Error::at_nid(
                            ErrorKind::DirentOrder { name: short },
                            dir.nid(),
                        ))
                    }
                }
            }
            previous = Some(name);
            if name == b"." || name == b".." {
                continue;
            }
            if found.len() >= usize::try_from(MAX_CHECK_ENTRIES).unwrap_or(usize::MAX) {
                return Err(limit());
            }
            let child = image.inode(dirent.nid())?;
            // A character device 0:0 can only be one of the writer's whiteout stubs: user
            // whiteouts are stored converted into regular files.
            let stub = child.file_type() == FileType::CharDevice && child.rdev() == 0;
            if child.file_type() == FileType::Directory {
                if visited.insert(child.nid(), ()).is_some() {
                    return Err(Error::at_nid(
                        ErrorKind::DirectoryLinkedTwice {
                            nid: child.nid(),
                            name: crate::error::ShortName::new(name),
                        },
                        dir.nid(),
                    ));
                }
                dirs.push(child);
            }
            found.push(Found {
                parent: next,
                name,
                nid: child.nid(),
                stub,
            });
        }
        next = next.saturating_add(1);
    }
    Ok((dirs, found))
}

/// Decides, for every entry, whether it is its node's primary entry.
///
/// The writer gives inodes increasing nids in the breadth-first order of their primary
/// entries. So, walking the entries in that order, an entry whose nid is the smallest nid
/// not yet placed is a primary one. (If a hard link to that node comes first with no
/// primary entry between the two, choosing it places the node at the same position, so
/// the image is the same.) For images no writer made, the last entry of a node not yet
/// placed becomes its primary, so every node gets exactly one.
fn choose_primaries(found: &[Found<'_>]) -> Vec<bool> {
    let mut sorted: Vec<u64> = found.iter().map(|f| f.nid).collect();
    sorted.sort_unstable();
    let mut remaining: Vec<u32> = Vec::new();
    let mut distinct: Vec<u64> = Vec::new();
    for nid in sorted {
        match (distinct.last(), remaining.last_mut()) {
            (Some(&last), Some(count)) if last == nid => *count = count.saturating_add(1),
            _ => {
                distinct.push(nid);
                remaining.push(1);
            }
        }
    }
    let mut placed = vec![false; distinct.len()];
    let mut smallest = 0usize;
    let mut primary = Vec::with_capacity(found.len());
    for f in found {
        let Ok(at) = distinct.binary_search(&f.nid) else {
            primary.push(false);
            continue;
        };
        while placed.get(smallest).copied().unwrap_or(false) {
            smallest = smallest.saturating_add(1);
        }
        let left = remaining.get_mut(at).map_or(0, |r| {
            *r = r.saturating_sub(1);
            *r
        });
        let is_placed = placed.get(at).copied().unwrap_or(true);
        let choose = !is_placed && (at == smallest || left == 0);
        if choose {
            if let Some(p) = placed.get_mut(at) {
                *p = true;
            }
        }
        primary.push(choose);
    }
    primary
}

/// Whether `inode` (named in `parent`) is a whiteout the writer converted into a regular
/// file: empty, marked with both whiteout xattrs, in a directory marked as holding
/// whiteouts (and, in format version 1, as opaque).
fn is_converted_whiteout(inode: &Inode<'_>, parent: &Inode<'_>, version: u32) -> Result<bool> {
    if inode.file_type() != FileType::Regular || inode.size() != 0 {
        return Ok(false);
    }
    let xattrs = inode.xattrs()?;
    let marked = |name: &[u8], value: &[u8]| -> Result<bool> {
        Ok(xattrs.find(name)?.is_some_and(|x| x.value() == value))
    };
    if !(marked(XATTR_ESCAPED_WHITEOUT, b"")? && marked(XATTR_USER_WHITEOUT, b"")?) {
        return Ok(false);
    }
    let parent_xattrs = parent.xattrs()?;
    let parent_marked = |name: &[u8], value: &[u8]| -> Result<bool> {
        Ok(parent_xattrs
            .find(name)?
            .is_some_and(|x| x.value() == value))
    };
    let mut ok =
        parent_marked(XATTR_ESCAPED_WHITEOUTS, b"")? && parent_marked(XATTR_USER_WHITEOUTS, b"")?;
    if version >= 1 {
        ok = ok
            && parent_marked(XATTR_ESCAPED_OPAQUE, OPAQUE_WHITEOUTS_VALUE)?
            && parent_marked(XATTR_USER_OPAQUE, OPAQUE_WHITEOUTS_VALUE)?;
    }
    Ok(ok)
}

/// Builds the tree node for `inode`.
fn read_node(inode: &Inode<'_>, whiteout: bool, holds_whiteouts: bool) -> Result<Node> {
    let mtime = inode.mtime();
    let mut node = Node {
        mode: u32::from(inode.mode()),
        uid: inode.uid(),
        gid: inode.gid(),
        nlink: inode.nlink(),
        mtime: Mtime {
            sec: mtime.sec,
            nsec: mtime.nsec,
        },
        size: inode.size(),
        ..Node::default()
    };
    match inode.file_type() {
        FileType::CharDevice | FileType::BlockDevice => {
            node.rdev = inode.rdev();
            node.size = node.size.max(special_size(inode));
        }
        FileType::Fifo | FileType::Socket => node.size = node.size.max(special_size(inode)),
        FileType::Symlink => node.payload = Some(inode.symlink_target()?.to_vec()),
        FileType::Regular if whiteout => {
            node.mode = S_IFCHR | (node.mode & 0o7777);
            node.size = 0;
        }
        FileType::Regular if inode.layout() == DataLayout::ChunkBased => {
            node.payload = inode.redirect()?.map(<[u8]>::to_vec);
            if let Metacopy::Digest(d) = inode.metacopy()? {
                node.digest = Some(d);
            }
        }
        FileType::Regular if inode.size() > 0 => {
            let parts = inode.data_parts()?;
            let mut content =
                Vec::with_capacity(parts.blocks.len().saturating_add(parts.tail.len()));
            content.extend_from_slice(parts.blocks);
            content.extend_from_slice(parts.tail);
            node.content = Some(content);
        }
        _ => {}
    }

    // The reference lists inline xattrs before shared ones; keep its order so printed dumps
    // match, while the writer sorts them anyway.
    let xattrs = inode.xattrs()?;
    let mut inline = Vec::new();
    let mut shared = Vec::new();
    for x in xattrs.iter() {
        let x = x?;
        if let Some(kept) = user_xattr(&x, whiteout, holds_whiteouts) {
            if x.shared_id().is_some() {
                shared.push(kept);
            } else {
                inline.push(kept);
            }
        }
    }
    inline.append(&mut shared);
    node.xattrs = inline;
    Ok(node)
}

/// The size to give a device, FIFO or socket node. Their stored `i_size` is 0, but their
/// size still decides the inode form (SPEC.md 4.7): one stored extended although its mtime,
/// nlink, uid and gid all allow the compact form had a size above `u32::MAX`, and 2^32, the
/// smallest such size, gives the same image. Otherwise 0.
fn special_size(inode: &Inode<'_>) -> u64 {
    let max = u32::from(u16::MAX);
    let compact_otherwise = inode.mtime() == inode.image().build_time()
        && inode.nlink() <= max
        && inode.uid() <= max
        && inode.gid() <= max;
    if inode.is_extended() && compact_otherwise {
        1 << 32
    } else {
        0
    }
}

/// The xattr of the input tree that `x` stands for, or `None` if the writer made it.
fn user_xattr(x: &RawXattr<'_>, whiteout: bool, holds_whiteouts: bool) -> Option<Xattr> {
    let mut full = vec![0u8; x.name_len()];
    x.write_name(&mut full).ok()?;
    let generated = (whiteout && (full == XATTR_ESCAPED_WHITEOUT || full == XATTR_USER_WHITEOUT))
        || (holds_whiteouts && (full == XATTR_ESCAPED_WHITEOUTS || full == XATTR_USER_WHITEOUTS));
    if generated {
        return None;
    }
    if let Some(suffix) = overlay::escaped_suffix(x) {
        let mut key = OVERLAY_PREFIX.to_vec();
        key.extend_from_slice(suffix);
        return Some(Xattr {
            key,
            value: x.value().to_vec(),
        });
    }
    if full.starts_with(OVERLAY_PREFIX) && !full.starts_with(OVERLAY_ESCAPED_PREFIX) {
        // Unescaped overlay xattrs are the writer's own: metacopy and redirect on external
        // files (read above), opaque on the root. Nothing else can carry one.
        return None;
    }
    Some(Xattr {
        key: full,
        value: x.value().to_vec(),
    })
}
