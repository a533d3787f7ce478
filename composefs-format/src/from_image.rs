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
//! For a device, FIFO or socket stored in extended form for no other reason, the size is
//! read as 2^32: the image does not store it (such inodes hold `i_size` 0, so
//! `composefs-info` shows 0), but only a size above `u32::MAX` explains the form.
//!
//! The traversal is breadth-first with an explicit queue and a visited set, so hostile
//! images cost bounded time and memory; any structural error is returned, not skipped.

use alloc::collections::BTreeMap;
use alloc::vec;
use alloc::vec::Vec;

use crate::error::{Error, ErrorKind, Limit, Result, ShortName};
use crate::image::Image;
use crate::inode::Inode;
use crate::limits::MAX_CHECK_ENTRIES;
use crate::ondisk::{DataLayout, FileType, S_IFCHR};
use crate::overlay::{
    self, parse_metacopy, Metacopy, OPAQUE_WHITEOUTS_VALUE, OVERLAY_PREFIX, XATTR_ESCAPED_OPAQUE,
    XATTR_ESCAPED_WHITEOUT, XATTR_ESCAPED_WHITEOUTS, XATTR_METACOPY, XATTR_REDIRECT,
    XATTR_USER_OPAQUE, XATTR_USER_WHITEOUT, XATTR_USER_WHITEOUTS,
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
    /// The file type the dirent records; checked against the inode below.
    file_type: FileType,
}

/// A whiteout stub the writer added (a character device 0:0): it takes an inode slot, so
/// it counts when primary entries are chosen, but it is not part of the tree.
struct Stub {
    /// Its position among all entries of the walk.
    at: usize,
    nid: u64,
}

/// Reads `image` into a tree.
///
/// # Errors
/// Any structural error met on the way (the same errors the reader views report), a
/// dirent whose type is not its inode's, a directory reachable twice, or the entry limit
/// of [`MAX_CHECK_ENTRIES`].
pub fn image_to_tree(image: &Image<'_>) -> Result<ImageTree> {
    let root = image.root()?;
    let Walk {
        dirs,
        dir_entries,
        found,
        stubs,
    } = walk(image, root)?;
    let primary = {
        let slots = Slots::new(&found, &stubs);
        let all = choose_primaries(&slots);
        // Keep the choices of the entries, dropping those of the stubs.
        let mut stub_at = stubs.iter().map(|s| s.at).peekable();
        let mut primary = Vec::with_capacity(found.len());
        for (i, choice) in all.into_iter().enumerate() {
            if stub_at.next_if_eq(&i).is_none() {
                primary.push(choice);
            }
        }
        primary
    };
    let slots = Slots::new(&found, &[]);

    // Nodes in first-seen order: the root, then each distinct nid as its entries appear.
    let mut node_of_slot: Vec<Option<NodeId>> = vec![None; slots.distinct.len()];
    let mut nids = Vec::with_capacity(slots.distinct.len().saturating_add(1));
    nids.push(root.nid());
    let mut entry_node: Vec<NodeId> = Vec::with_capacity(found.len());
    let mut tree = Tree::new(Node::default());
    tree.reserve(slots.distinct.len());
    for (f, &slot) in found.iter().zip(&slots.of_entry) {
        let id = node_of_slot.get_mut(slot_index(slot)).ok_or_else(limit)?;
        let id = match id {
            Some(id) => *id,
            None => {
                let node = tree.add(Node::default()).map_err(|_| limit())?;
                nids.push(f.nid);
                *id = Some(node);
                node
            }
        };
        entry_node.push(id);
    }

    // Non-directories, each read once through its primary entry. A whiteout is stored as
    // a marked regular file in a marked directory; it turns back into a character device,
    // and the markers of its directory are dropped below.
    let version = image.format_version();
    let mut types: Vec<Option<FileType>> = vec![None; tree.len()];
    let mut holds_whiteouts = vec![false; dirs.len()];
    for ((f, &is_primary), &id) in found.iter().zip(&primary).zip(&entry_node) {
        if !is_primary || f.file_type == FileType::Directory {
            continue;
        }
        let inode = image.inode(f.nid)?;
        let parent = dirs.get(f.parent).ok_or_else(limit)?;
        let whiteout = is_converted_whiteout(&inode, parent, version)?;
        if whiteout {
            if let Some(flag) = holds_whiteouts.get_mut(f.parent) {
                *flag = true;
            }
        }
        *tree.node_mut(id).map_err(|_| limit())? = read_node(&inode, whiteout, false)?;
        if let Some(t) = types.get_mut(id.index()) {
            *t = Some(inode.file_type());
        }
    }
    // Directories, from the inodes the walk read.
    for (k, dir) in dirs.iter().enumerate() {
        let id = match k.checked_sub(1) {
            None => NodeId::ROOT,
            Some(i) => {
                let entry = *dir_entries.get(i).ok_or_else(limit)?;
                *entry_node.get(entry).ok_or_else(limit)?
            }
        };
        let holds = holds_whiteouts.get(k).copied().unwrap_or(false);
        *tree.node_mut(id).map_err(|_| limit())? = read_node(dir, false, holds)?;
        if let Some(t) = types.get_mut(id.index()) {
            *t = Some(FileType::Directory);
        }
    }

    // Entries, already in name order within each directory; every dirent's type must be
    // its inode's.
    let mut dir_node: Vec<NodeId> = Vec::with_capacity(dirs.len());
    dir_node.push(NodeId::ROOT);
    for &entry in &dir_entries {
        dir_node.push(*entry_node.get(entry).ok_or_else(limit)?);
    }
    for ((f, &is_primary), &child) in found.iter().zip(&primary).zip(&entry_node) {
        let inode_type = types.get(child.index()).copied().flatten();
        if inode_type != Some(f.file_type) {
            let parent = dirs.get(f.parent).ok_or_else(limit)?;
            return Err(Error::at_nid(
                ErrorKind::DirentTypeMismatch {
                    name: ShortName::new(f.name),
                    dirent: f.file_type,
                    inode: match inode_type {
                        Some(t) => t,
                        None => image.inode(f.nid)?.file_type(),
                    },
                },
                parent.nid(),
            ));
        }
        let parent = *dir_node.get(f.parent).ok_or_else(limit)?;
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

fn slot_index(slot: u32) -> usize {
    usize::try_from(slot).unwrap_or(usize::MAX)
}

/// What [`walk`] found.
struct Walk<'a> {
    /// The directory queue, root first.
    dirs: Vec<Inode<'a>>,
    /// For `dirs[k + 1]`, the index in `found` of the entry naming it.
    dir_entries: Vec<usize>,
    /// Every entry but `.`, `..` and whiteout stubs.
    found: Vec<Found<'a>>,
    /// The whiteout stubs, in walk order.
    stubs: Vec<Stub>,
}

/// Breadth-first walk over directories, as the writer orders inodes: the directory queue
/// and every entry but `.`, `..` and whiteout stubs, each directory's entries in stored
/// (name) order, and the whiteout stubs apart. Only directories and character devices are
/// read here.
fn walk<'a>(image: &Image<'a>, root: Inode<'a>) -> Result<Walk<'a>> {
    let mut visited: BTreeMap<u64, ()> = BTreeMap::new();
    visited.insert(root.nid(), ());
    let mut dirs = vec![root];
    let mut dir_entries = Vec::new();
    let mut found = Vec::new();
    let mut stubs = Vec::new();
    let mut next = 0usize;
    while let Some(dir) = dirs.get(next).copied() {
        let mut previous: Option<&[u8]> = None;
        for dirent in dir.dir()?.entries() {
            let dirent = dirent?;
            let name = dirent.name();
            // The tree keeps names sorted and unique, as a sound image stores them.
            if let Some(prev) = previous {
                match prev.cmp(name) {
                    core::cmp::Ordering::Less => {}
                    core::cmp::Ordering::Equal => {
                        return Err(Error::at_nid(
                            ErrorKind::DirentDuplicate {
                                name: ShortName::new(name),
                            },
                            dir.nid(),
                        ))
                    }
                    core::cmp::Ordering::Greater => {
                        return Err(Error::at_nid(
                            ErrorKind::DirentOrder {
                                name: ShortName::new(name),
                            },
                            dir.nid(),
                        ))
                    }
                }
            }
            previous = Some(name);
            if name == b"." || name == b".." {
                continue;
            }
            if found.len().saturating_add(stubs.len())
                >= usize::try_from(MAX_CHECK_ENTRIES).unwrap_or(usize::MAX)
            {
                return Err(limit());
            }
            let file_type = dirent.file_type();
            match file_type {
                FileType::CharDevice => {
                    // A character device 0:0 can only be one of the writer's whiteout
                    // stubs: user whiteouts are stored converted into regular files.
                    let child = image.inode(dirent.nid())?;
                    if child.file_type() == FileType::CharDevice && child.rdev() == 0 {
                        stubs.push(Stub {
                            at: found.len().saturating_add(stubs.len()),
                            nid: child.nid(),
                        });
                        continue;
                    }
                }
                FileType::Directory => {
                    let child = image.inode(dirent.nid())?;
                    if child.file_type() != FileType::Directory {
                        return Err(Error::at_nid(
                            ErrorKind::DirentTypeMismatch {
                                name: ShortName::new(name),
                                dirent: file_type,
                                inode: child.file_type(),
                            },
                            dir.nid(),
                        ));
                    }
                    if visited.insert(child.nid(), ()).is_some() {
                        return Err(Error::at_nid(
                            ErrorKind::DirectoryLinkedTwice {
                                nid: child.nid(),
                                name: ShortName::new(name),
                            },
                            dir.nid(),
                        ));
                    }
                    dirs.push(child);
                    dir_entries.push(found.len());
                }
                _ => {}
            }
            found.push(Found {
                parent: next,
                name,
                nid: dirent.nid(),
                file_type,
            });
        }
        next = next.saturating_add(1);
    }
    Ok(Walk {
        dirs,
        dir_entries,
        found,
        stubs,
    })
}

/// The distinct nids of the entries, sorted, with how many entries name each, and for
/// every entry the index of its nid among them. With `stubs`, the stubs are entries too,
/// at their positions in the walk.
struct Slots {
    distinct: Vec<u64>,
    counts: Vec<u32>,
    of_entry: Vec<u32>,
}

impl Slots {
    fn new(found: &[Found<'_>], stubs: &[Stub]) -> Self {
        let total = found.len().saturating_add(stubs.len());
        let mut nids: Vec<u64> = Vec::with_capacity(total);
        let mut stub_iter = stubs.iter().peekable();
        let mut found_iter = found.iter();
        while nids.len() < total {
            let at = nids.len();
            match stub_iter.next_if(|s| s.at == at) {
                Some(stub) => nids.push(stub.nid),
                None => match found_iter.next() {
                    Some(f) => nids.push(f.nid),
                    None => break,
                },
            }
        }
        let mut order: Vec<(u64, u32)> = nids.iter().copied().zip(0u32..).collect();
        order.sort_unstable();
        let mut distinct: Vec<u64> = Vec::new();
        let mut counts: Vec<u32> = Vec::new();
        let mut of_entry = vec![0u32; nids.len()];
        for (nid, entry) in order {
            match (distinct.last(), counts.last_mut()) {
                (Some(&last), Some(count)) if last == nid => *count = count.saturating_add(1),
                _ => {
                    distinct.push(nid);
                    counts.push(1);
                }
            }
            let slot = u32::try_from(distinct.len().saturating_sub(1)).unwrap_or(u32::MAX);
            if let Some(s) = of_entry.get_mut(slot_index(entry)) {
                *s = slot;
            }
        }
        Self {
            distinct,
            counts,
            of_entry,
        }
    }
}

/// Decides, for every entry of `slots` (the whiteout stubs included), whether it is its
/// node's primary entry.
///
/// The writer gives inodes increasing nids in the breadth-first order of their primary
/// entries. So, walking the entries in that order, an entry whose nid is the smallest nid
/// not yet placed is a primary one. (If a hard link to that node comes first with no
/// primary entry between the two, choosing it places the node at the same position, so
/// the image is the same. The stubs take inode slots too, which is why they must be
/// counted: a stub between the two is such a primary entry.) For images no writer made, the last entry of a node not yet
/// placed becomes its primary, so every node gets exactly one.
fn choose_primaries(slots: &Slots) -> Vec<bool> {
    let mut remaining = slots.counts.clone();
    let mut placed = vec![false; slots.distinct.len()];
    let mut smallest = 0usize;
    let mut primary = Vec::with_capacity(slots.of_entry.len());
    for &slot in &slots.of_entry {
        let at = slot_index(slot);
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
        // External: the payload and digest come from the overlay xattrs, read below.
        FileType::Regular if inode.layout() == DataLayout::ChunkBased => {}
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
    let external = inode.file_type() == FileType::Regular
        && !whiteout
        && inode.layout() == DataLayout::ChunkBased;
    let (mut redirect_seen, mut metacopy_seen) = (false, false);
    let located = |x: &RawXattr<'_>| {
        let (nid, offset) = (inode.nid(), x.offset());
        move |kind| Error::at_nid(kind, nid).with_offset(offset)
    };
    let xattrs = inode.xattrs()?;
    let mut inline = Vec::new();
    let mut shared = Vec::new();
    for x in xattrs.iter() {
        let x = x?;
        if overlay::is_internal(&x) {
            // Unescaped overlay xattrs are the writer's own: metacopy and redirect on
            // external files (the first of each counts, as for `Xattrs::find`), opaque on
            // the root. Nothing else can carry one.
            if external && !redirect_seen && x.name_eq(XATTR_REDIRECT) {
                redirect_seen = true;
                let payload = overlay::parse_redirect(x.value()).map_err(located(&x))?;
                node.payload = Some(payload.to_vec());
            } else if external && !metacopy_seen && x.name_eq(XATTR_METACOPY) {
                metacopy_seen = true;
                if let Metacopy::Digest(d) = parse_metacopy(x.value()).map_err(located(&x))? {
                    node.digest = Some(d);
                }
            }
            continue;
        }
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

/// The xattr of the input tree that `x` (not an unescaped overlay xattr) stands for, or
/// `None` if the writer made it.
fn user_xattr(x: &RawXattr<'_>, whiteout: bool, holds_whiteouts: bool) -> Option<Xattr> {
    let generated = (whiteout
        && (x.name_eq(XATTR_ESCAPED_WHITEOUT) || x.name_eq(XATTR_USER_WHITEOUT)))
        || (holds_whiteouts
            && (x.name_eq(XATTR_ESCAPED_WHITEOUTS) || x.name_eq(XATTR_USER_WHITEOUTS)));
    if generated {
        return None;
    }
    let key = match overlay::escaped_suffix(x) {
        Some(suffix) => {
            let mut key = Vec::with_capacity(OVERLAY_PREFIX.len().saturating_add(suffix.len()));
            key.extend_from_slice(OVERLAY_PREFIX);
            key.extend_from_slice(suffix);
            key
        }
        None => {
            let mut full = vec![0u8; x.name_len()];
            x.write_name(&mut full).ok()?;
            full
        }
    };
    Some(Xattr {
        key,
        value: x.value().to_vec(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::ondisk::{S_IFDIR, S_IFREG};
    use crate::write::{write_image, Options};

    fn node(mode: u32, nlink: u32) -> Node {
        Node {
            nlink,
            ..Node::with_mode(mode)
        }
    }

    /// The writer places a hard-linked node at its primary entry; here the root's whiteout
    /// stubs `3b`..`40` sort between a hard link (`3a-link`) and the primary (`40-file`),
    /// so the two positions differ and only counting the stubs finds the primary.
    #[test]
    fn stubs_between_a_hard_link_and_its_primary_are_counted() {
        let mut tree = Tree::new(node(S_IFDIR | 0o755, 2));
        let f = tree
            .add(Node {
                size: 3,
                content: Some(b"abc".to_vec()),
                ..node(S_IFREG | 0o644, 2)
            })
            .unwrap();
        tree.insert_child(NodeId::ROOT, b"3a-link".to_vec(), f, true)
            .unwrap();
        tree.insert_child(NodeId::ROOT, b"40-file".to_vec(), f, false)
            .unwrap();
        let mut image = Vec::new();
        write_image(&tree, &Options::default(), &mut image).unwrap();
        let read = image_to_tree(&Image::open(&image).unwrap()).unwrap();
        let flags: Vec<(&[u8], bool)> = read
            .tree
            .root()
            .children
            .iter()
            .map(|e| (e.name.as_slice(), e.hardlink))
            .collect();
        assert_eq!(flags, [(&b"3a-link"[..], true), (&b"40-file"[..], false)]);
        let mut again = Vec::new();
        write_image(&read.tree, &Options::default(), &mut again).unwrap();
        assert!(again == image);
    }
}
