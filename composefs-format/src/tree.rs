//! The in-memory tree: what a composefs image describes, independent of its bytes
//! (SPEC.md section 5).
//!
//! A [`Tree`] is an arena of [`Node`]s addressed by [`NodeId`]; the root is
//! [`NodeId::ROOT`]. A directory lists its children as [`Entry`]s sorted by name bytes.
//! A node reachable under several names is a hard link: exactly one entry is its *primary*
//! entry (`hardlink == false`), which decides where the writer places the inode; every other
//! entry has `hardlink == true`. Directories are never hard links.
//!
//! The tree stores fields exactly as given (the mode with all its bits, the size of a
//! symlink as written in a dump, the payload string); the writer derives what goes on disk.
//! Parsers and scanners build it, the writer and the printer consume it, and the image
//! reader rebuilds it from an image.

use alloc::vec;
use alloc::vec::Vec;
use core::cmp::Ordering;

use crate::ondisk::{FileType, EROFS_NAME_LEN};

/// Index of a node in its [`Tree`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(u32);

impl NodeId {
    /// The root directory of every tree.
    pub const ROOT: Self = Self(0);

    /// Position of the node in the arena.
    #[must_use]
    pub fn index(self) -> usize {
        // usize is at least 32 bits on every target this crate supports.
        usize::try_from(self.0).unwrap_or(usize::MAX)
    }
}

/// Modification time: seconds since the epoch (may be negative) and nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Mtime {
    /// Seconds.
    pub sec: i64,
    /// Nanoseconds, below 10^9 in a valid tree.
    pub nsec: u32,
}

/// One extended attribute: full name and value, both arbitrary bytes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Xattr {
    /// Full name, e.g. `user.foo`.
    pub key: Vec<u8>,
    /// Value.
    pub value: Vec<u8>,
}

/// One name in a directory.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Entry {
    /// The name: 1..=255 bytes, no `/` or NUL, not `.` or `..`.
    pub name: Vec<u8>,
    /// The node it names.
    pub node: NodeId,
    /// `false` for the node's primary entry, `true` for every further name of it.
    pub hardlink: bool,
}

/// One inode of the tree.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Node {
    /// `st_mode` exactly as given, file type bits included (the image keeps 16 bits).
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Link count as given. The writer recomputes it for directories.
    pub nlink: u32,
    /// Device number of character and block devices; 0 elsewhere. A character device with
    /// rdev 0 is an overlay whiteout.
    pub rdev: u32,
    /// Modification time.
    pub mtime: Mtime,
    /// Size in bytes as given. The writer uses it for regular files; it derives the size
    /// of directories and symlinks itself.
    pub size: u64,
    /// Symlink target, or for a regular file the backing path in the object store
    /// (written as the overlay redirect `/` + payload).
    pub payload: Option<Vec<u8>>,
    /// Inline content of a regular file; its length equals `size`.
    pub content: Option<Vec<u8>>,
    /// fs-verity digest of the backing object of an external regular file.
    pub digest: Option<[u8; 32]>,
    /// Extended attributes with unique keys, in the order they were set.
    pub xattrs: Vec<Xattr>,
    /// Children of a directory, sorted by name bytes, names unique. Empty otherwise.
    pub children: Vec<Entry>,
}

impl Node {
    /// A node with the given mode and every other field zero or empty.
    #[must_use]
    pub fn with_mode(mode: u32) -> Self {
        Self {
            mode,
            ..Self::default()
        }
    }

    /// The file type of the mode, or `None` if the mode names no valid type.
    #[must_use]
    pub fn file_type(&self) -> Option<FileType> {
        FileType::from_mode(self.mode)
    }

    /// Whether the mode says directory.
    #[must_use]
    pub fn is_dir(&self) -> bool {
        self.file_type() == Some(FileType::Directory)
    }

    /// Whether this is an overlay whiteout: a character device with rdev 0.
    #[must_use]
    pub fn is_whiteout(&self) -> bool {
        self.file_type() == Some(FileType::CharDevice) && self.rdev == 0
    }

    /// The value of the xattr named `key`, if set.
    #[must_use]
    pub fn xattr(&self, key: &[u8]) -> Option<&[u8]> {
        self.xattrs
            .iter()
            .find(|x| x.key == key)
            .map(|x| x.value.as_slice())
    }

    /// Sets an xattr, replacing the value of an existing key in place (last one wins).
    pub fn set_xattr(&mut self, key: Vec<u8>, value: Vec<u8>) {
        match self.xattrs.iter_mut().find(|x| x.key == key) {
            Some(x) => x.value = value,
            None => self.xattrs.push(Xattr { key, value }),
        }
    }

    /// Removes the xattr named `key`; returns its value if it was set.
    pub fn remove_xattr(&mut self, key: &[u8]) -> Option<Vec<u8>> {
        let at = self.xattrs.iter().position(|x| x.key == key)?;
        Some(self.xattrs.remove(at).value)
    }

    /// Finds the child entry named `name` by binary search.
    #[must_use]
    pub fn child(&self, name: &[u8]) -> Option<&Entry> {
        self.children
            .binary_search_by(|e| e.name.as_slice().cmp(name))
            .ok()
            .and_then(|at| self.children.get(at))
    }
}

/// What is wrong with a tree, or with an attempt to change one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TreeError {
    /// A [`NodeId`] that does not belong to this tree.
    #[error("node {0} does not exist")]
    NoSuchNode(u32),
    /// The tree would exceed 2^32 nodes.
    #[error("too many nodes")]
    TooManyNodes,
    /// A mode whose file type bits name no file type.
    #[error("node {node}: invalid mode {mode:o}")]
    InvalidMode {
        /// The node.
        node: u32,
        /// Its mode.
        mode: u32,
    },
    /// The root is not a directory.
    #[error("the root is not a directory")]
    RootNotDirectory,
    /// Children were added to something that is not a directory.
    #[error("node {0} is not a directory but has children")]
    NotADirectory(u32),
    /// A name that is empty, longer than 255 bytes, `.` or `..`, or contains `/` or NUL.
    #[error("directory node {parent}: invalid name: {reason}")]
    InvalidName {
        /// The directory.
        parent: u32,
        /// What is wrong.
        reason: NameError,
    },
    /// Two children with the same name, or children out of order.
    #[error("directory node {parent}: duplicate or unsorted name")]
    DuplicateName {
        /// The directory.
        parent: u32,
    },
    /// A directory named by a hard link entry, or by more than one entry.
    #[error("node {0}: a directory cannot be hard linked")]
    HardlinkedDirectory(u32),
    /// A node with no primary entry, more than one, or a primary entry on the root.
    #[error("node {0}: needs exactly one primary (non-hardlink) entry")]
    PrimaryEntry(u32),
    /// A node not reachable from the root.
    #[error("node {0} is not reachable from the root")]
    Unreachable(u32),
}

/// Why a name is not a valid directory entry name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Zero bytes.
    #[error("empty name")]
    Empty,
    /// More than 255 bytes.
    #[error("name longer than 255 bytes")]
    TooLong,
    /// `.` or `..`.
    #[error("'.' or '..'")]
    Dot,
    /// Contains `/`.
    #[error("name contains '/'")]
    Slash,
    /// Contains a NUL byte.
    #[error("name contains NUL")]
    Nul,
}

/// Checks that `name` can be a directory entry name.
///
/// # Errors
/// The first rule `name` breaks.
pub fn check_name(name: &[u8]) -> Result<(), NameError> {
    if name.is_empty() {
        Err(NameError::Empty)
    } else if name.len() > EROFS_NAME_LEN {
        Err(NameError::TooLong)
    } else if name == b"." || name == b".." {
        Err(NameError::Dot)
    } else if name.contains(&b'/') {
        Err(NameError::Slash)
    } else if name.contains(&0) {
        Err(NameError::Nul)
    } else {
        Ok(())
    }
}

/// An arena of nodes with a directory root at [`NodeId::ROOT`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tree {
    nodes: Vec<Node>,
}

impl Tree {
    /// A tree holding only `root`.
    #[must_use]
    pub fn new(root: Node) -> Self {
        Self { nodes: vec![root] }
    }

    /// Number of nodes, the root included.
    #[must_use]
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Always false: a tree has at least its root.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Reserves room for `additional` more nodes.
    pub fn reserve(&mut self, additional: usize) {
        self.nodes.reserve(additional);
    }

    /// The node `id`.
    #[must_use]
    pub fn get(&self, id: NodeId) -> Option<&Node> {
        self.nodes.get(id.index())
    }

    /// The node `id`, mutably.
    pub fn get_mut(&mut self, id: NodeId) -> Option<&mut Node> {
        self.nodes.get_mut(id.index())
    }

    /// The node `id`.
    ///
    /// # Errors
    /// [`TreeError::NoSuchNode`] when `id` does not belong to this tree.
    pub fn node(&self, id: NodeId) -> Result<&Node, TreeError> {
        self.get(id).ok_or(TreeError::NoSuchNode(id.0))
    }

    /// The node `id`, mutably.
    ///
    /// # Errors
    /// [`TreeError::NoSuchNode`] when `id` does not belong to this tree.
    pub fn node_mut(&mut self, id: NodeId) -> Result<&mut Node, TreeError> {
        self.nodes
            .get_mut(id.index())
            .ok_or(TreeError::NoSuchNode(id.0))
    }

    /// The root directory.
    #[must_use]
    pub fn root(&self) -> &Node {
        // The arena is never empty; fall back to a static empty node to stay panic-free.
        static EMPTY: Node = Node {
            mode: 0,
            uid: 0,
            gid: 0,
            nlink: 0,
            rdev: 0,
            mtime: Mtime { sec: 0, nsec: 0 },
            size: 0,
            payload: None,
            content: None,
            digest: None,
            xattrs: Vec::new(),
            children: Vec::new(),
        };
        self.nodes.first().unwrap_or(&EMPTY)
    }

    /// Every node with its id, in arena order.
    pub fn iter(&self) -> impl Iterator<Item = (NodeId, &Node)> + '_ {
        (0u32..).zip(self.nodes.iter()).map(|(i, n)| (NodeId(i), n))
    }

    /// Adds a node that no directory names yet; link it with [`Tree::insert_child`].
    ///
    /// # Errors
    /// [`TreeError::TooManyNodes`] past 2^32 nodes.
    pub fn add(&mut self, node: Node) -> Result<NodeId, TreeError> {
        let id = u32::try_from(self.nodes.len()).map_err(|_| TreeError::TooManyNodes)?;
        self.nodes.push(node);
        Ok(NodeId(id))
    }

    /// Names `child` as `name` in directory `parent`, keeping the children sorted.
    /// Appending in increasing name order costs O(log n); other orders also move entries.
    /// For large directories in random order, prefer [`Tree::push_child`] and
    /// [`Tree::sort_children`].
    ///
    /// # Errors
    /// Unknown ids, a parent that is not a directory, an invalid name, or a name that
    /// already exists in `parent`.
    pub fn insert_child(
        &mut self,
        parent: NodeId,
        name: Vec<u8>,
        child: NodeId,
        hardlink: bool,
    ) -> Result<(), TreeError> {
        let dir = self.dir_for_new_entry(parent, &name, child)?;
        let at = match dir.children.last() {
            Some(last) if last.name.as_slice() < name.as_slice() => dir.children.len(),
            None => 0,
            Some(_) => match dir.children.binary_search_by(|e| e.name.cmp(&name)) {
                Ok(_) => return Err(TreeError::DuplicateName { parent: parent.0 }),
                Err(at) => at,
            },
        };
        dir.children.insert(
            at,
            Entry {
                name,
                node: child,
                hardlink,
            },
        );
        Ok(())
    }

    /// The directory `parent`, once `child` exists and `name` is a valid entry name: the
    /// checks shared by [`Tree::insert_child`] and [`Tree::push_child`].
    fn dir_for_new_entry(
        &mut self,
        parent: NodeId,
        name: &[u8],
        child: NodeId,
    ) -> Result<&mut Node, TreeError> {
        self.node(child)?;
        check_name(name).map_err(|reason| TreeError::InvalidName {
            parent: parent.0,
            reason,
        })?;
        let dir = self.node_mut(parent)?;
        if !dir.is_dir() {
            return Err(TreeError::NotADirectory(parent.0));
        }
        Ok(dir)
    }

    /// Appends an entry without keeping order or checking for duplicates. Lookups in
    /// `parent` are wrong until [`Tree::sort_children`] has run.
    ///
    /// # Errors
    /// Unknown ids, a parent that is not a directory, or an invalid name.
    pub fn push_child(
        &mut self,
        parent: NodeId,
        name: Vec<u8>,
        child: NodeId,
        hardlink: bool,
    ) -> Result<(), TreeError> {
        let dir = self.dir_for_new_entry(parent, &name, child)?;
        dir.children.push(Entry {
            name,
            node: child,
            hardlink,
        });
        Ok(())
    }

    /// Sorts the children of every directory by name.
    ///
    /// # Errors
    /// [`TreeError::DuplicateName`] for the first directory with two equal names.
    pub fn sort_children(&mut self) -> Result<(), TreeError> {
        for (id, node) in (0u32..).zip(self.nodes.iter_mut()) {
            node.children.sort_unstable_by(|a, b| a.name.cmp(&b.name));
            if node.children.windows(2).any(|w| match w {
                [a, b] => a.name == b.name,
                _ => false,
            }) {
                return Err(TreeError::DuplicateName { parent: id });
            }
        }
        Ok(())
    }

    /// Follows `path` (components separated by `/`; leading, trailing and repeated
    /// slashes are ignored) from the root through directory entries.
    #[must_use]
    pub fn lookup_path(&self, path: &[u8]) -> Option<NodeId> {
        let mut at = NodeId::ROOT;
        for name in path.split(|&b| b == b'/').filter(|c| !c.is_empty()) {
            at = self.get(at)?.child(name)?.node;
        }
        Some(at)
    }

    /// Visits every entry depth-first in pre-order, children in name order, starting with
    /// the root (for which `entry` is `None` and the path is `/`). `path` is the absolute
    /// path of the entry. Hard link entries are visited but not descended into, and no
    /// directory is entered twice, so the walk terminates even on a malformed tree. Uses
    /// an explicit stack, never recursion.
    ///
    /// # Errors
    /// The first error `visit` returns.
    pub fn walk<E>(
        &self,
        mut visit: impl FnMut(&[u8], Option<&Entry>, NodeId) -> Result<(), E>,
    ) -> Result<(), E> {
        visit(b"/", None, NodeId::ROOT)?;
        let mut entered = vec![false; self.nodes.len()];
        if let Some(flag) = entered.get_mut(0) {
            *flag = true;
        }
        let mut path: Vec<u8> = Vec::new();
        // (directory, next child index, path length before this directory's name)
        let mut stack: Vec<(NodeId, usize, usize)> = Vec::new();
        stack.push((NodeId::ROOT, 0, 0));
        while let Some(top) = stack.last_mut() {
            let (dir, next, _) = *top;
            let Some(entry) = self.get(dir).and_then(|d| d.children.get(next)) else {
                if let Some((_, _, len)) = stack.pop() {
                    path.truncate(len);
                }
                continue;
            };
            top.1 = next.saturating_add(1);
            let base = path.len();
            path.push(b'/');
            path.extend_from_slice(&entry.name);
            visit(&path, Some(entry), entry.node)?;
            let descend = !entry.hardlink
                && self.get(entry.node).is_some_and(|n| !n.children.is_empty())
                && entered.get(entry.node.index()).is_some_and(|e| !e);
            if descend {
                if let Some(flag) = entered.get_mut(entry.node.index()) {
                    *flag = true;
                }
                stack.push((entry.node, 0, base));
            } else {
                path.truncate(base);
            }
        }
        Ok(())
    }

    /// Checks the invariants the writer relies on: valid modes, a directory root, children
    /// only in directories with valid, sorted, unique names, exactly one primary entry for
    /// every node but the root, no hard-linked directories, and every node reachable.
    ///
    /// # Errors
    /// The first broken invariant.
    pub fn validate(&self) -> Result<(), TreeError> {
        if !self.root().is_dir() {
            return Err(TreeError::RootNotDirectory);
        }
        let mut primaries: Vec<u32> = vec![0; self.nodes.len()];
        let mut named = vec![false; self.nodes.len()];
        for (id, node) in self.iter() {
            if node.file_type().is_none() {
                return Err(TreeError::InvalidMode {
                    node: id.0,
                    mode: node.mode,
                });
            }
            if !node.children.is_empty() && !node.is_dir() {
                return Err(TreeError::NotADirectory(id.0));
            }
            let mut prev: Option<&[u8]> = None;
            for entry in &node.children {
                check_name(&entry.name).map_err(|reason| TreeError::InvalidName {
                    parent: id.0,
                    reason,
                })?;
                if prev.is_some_and(|p| p.cmp(&entry.name) != Ordering::Less) {
                    return Err(TreeError::DuplicateName { parent: id.0 });
                }
                prev = Some(&entry.name);
                let child = self.node(entry.node)?;
                if child.is_dir() && (entry.hardlink || entry.node == NodeId::ROOT) {
                    return Err(TreeError::HardlinkedDirectory(entry.node.0));
                }
                if let Some(n) = named.get_mut(entry.node.index()) {
                    *n = true;
                }
                if !entry.hardlink {
                    if let Some(count) = primaries.get_mut(entry.node.index()) {
                        *count = count.saturating_add(1);
                    }
                }
            }
        }
        for (id, (&count, &is_named)) in (0u32..).zip(primaries.iter().zip(named.iter())) {
            let expected = u32::from(id != 0);
            if count != expected || (id != 0 && !is_named) {
                return Err(TreeError::PrimaryEntry(id));
            }
        }
        // Every node has one primary entry; now make sure following primary entries from
        // the root reaches all of them (this excludes cycles of detached directories).
        let mut reached = vec![false; self.nodes.len()];
        let mut count = 0usize;
        self.walk(|_, entry, id| {
            if entry.map_or(true, |e| !e.hardlink) {
                if let Some(r) = reached.get_mut(id.index()) {
                    if !*r {
                        *r = true;
                        count = count.saturating_add(1);
                    }
                }
            }
            Ok::<(), TreeError>(())
        })?;
        if count != self.nodes.len() {
            let missing = reached.iter().position(|r| !r).unwrap_or(0);
            return Err(TreeError::Unreachable(
                u32::try_from(missing).unwrap_or(u32::MAX),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::ondisk::{S_IFDIR, S_IFREG};

    fn dir() -> Node {
        Node::with_mode(S_IFDIR | 0o755)
    }
    fn file() -> Node {
        Node::with_mode(S_IFREG | 0o644)
    }

    #[test]
    fn insert_keeps_children_sorted_and_rejects_duplicates() {
        let mut t = Tree::new(dir());
        for name in [&b"b"[..], b"a", b"c", b"-x"] {
            let f = t.add(file()).unwrap();
            t.insert_child(NodeId::ROOT, name.to_vec(), f, false)
                .unwrap();
        }
        let names: Vec<&[u8]> = t
            .root()
            .children
            .iter()
            .map(|e| e.name.as_slice())
            .collect();
        assert_eq!(names, vec![&b"-x"[..], b"a", b"b", b"c"]);
        let f = t.add(file()).unwrap();
        assert_eq!(
            t.insert_child(NodeId::ROOT, b"a".to_vec(), f, false),
            Err(TreeError::DuplicateName { parent: 0 })
        );
    }

    #[test]
    fn names_are_checked() {
        let mut t = Tree::new(dir());
        let f = t.add(file()).unwrap();
        for (name, why) in [
            (&b""[..], NameError::Empty),
            (b".", NameError::Dot),
            (b"..", NameError::Dot),
            (b"a/b", NameError::Slash),
            (b"a\0b", NameError::Nul),
        ] {
            assert_eq!(
                t.insert_child(NodeId::ROOT, name.to_vec(), f, false),
                Err(TreeError::InvalidName {
                    parent: 0,
                    reason: why
                })
            );
        }
        assert_eq!(check_name(&[b'x'; 256]), Err(NameError::TooLong));
        assert_eq!(check_name(&[b'x'; 255]), Ok(()));
    }

    #[test]
    fn validate_enforces_primary_entries_and_directory_links() {
        let mut t = Tree::new(dir());
        let d = t.add(dir()).unwrap();
        let f = t.add(file()).unwrap();
        t.insert_child(NodeId::ROOT, b"d".to_vec(), d, false)
            .unwrap();
        t.insert_child(d, b"f".to_vec(), f, false).unwrap();
        t.insert_child(NodeId::ROOT, b"link".to_vec(), f, true)
            .unwrap();
        assert_eq!(t.validate(), Ok(()));

        let mut bad = t.clone();
        bad.insert_child(NodeId::ROOT, b"dlink".to_vec(), d, true)
            .unwrap();
        assert_eq!(bad.validate(), Err(TreeError::HardlinkedDirectory(d.0)));

        let mut bad = t.clone();
        bad.insert_child(NodeId::ROOT, b"second".to_vec(), f, false)
            .unwrap();
        assert_eq!(bad.validate(), Err(TreeError::PrimaryEntry(f.0)));

        let mut bad = t.clone();
        bad.add(file()).unwrap();
        assert_eq!(bad.validate(), Err(TreeError::PrimaryEntry(3)));
    }

    #[test]
    fn walk_is_preorder_with_paths_and_lookup_follows_them() {
        let mut t = Tree::new(dir());
        let d = t.add(dir()).unwrap();
        let f = t.add(file()).unwrap();
        t.insert_child(NodeId::ROOT, b"z".to_vec(), d, false)
            .unwrap();
        t.insert_child(d, b"f".to_vec(), f, false).unwrap();
        t.insert_child(NodeId::ROOT, b"a".to_vec(), f, true)
            .unwrap();
        let mut seen = Vec::new();
        t.walk(|p, _, id| {
            seen.push((p.to_vec(), id));
            Ok::<(), ()>(())
        })
        .unwrap();
        assert_eq!(
            seen,
            vec![
                (b"/".to_vec(), NodeId::ROOT),
                (b"/a".to_vec(), f),
                (b"/z".to_vec(), d),
                (b"/z/f".to_vec(), f),
            ]
        );
        assert_eq!(t.lookup_path(b"/z/f"), Some(f));
        assert_eq!(t.lookup_path(b"z//f/"), Some(f));
        assert_eq!(t.lookup_path(b"/"), Some(NodeId::ROOT));
        assert_eq!(t.lookup_path(b"/nope"), None);
    }

    #[test]
    fn deep_chain_walks_without_recursion() {
        let mut t = Tree::new(dir());
        let mut at = NodeId::ROOT;
        for _ in 0..20_000 {
            let d = t.add(dir()).unwrap();
            t.insert_child(at, b"d".to_vec(), d, false).unwrap();
            at = d;
        }
        let handle = std::thread::Builder::new()
            .stack_size(64 * 1024)
            .spawn(move || t.validate())
            .unwrap();
        assert_eq!(handle.join().unwrap(), Ok(()));
    }
}
