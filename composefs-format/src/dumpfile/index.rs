//! Name lookup while a tree is being parsed: directories stay sorted while entries arrive
//! in order, and large directories that receive entries out of order switch to a search
//! tree, so that no input order makes parsing quadratic. A cursor remembers the directories
//! along the previous path, which makes parent lookup O(path length) for dumps in
//! depth-first order.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::cmp::Ordering;

use crate::tree::{NodeId, Tree, TreeError};

/// Directories smaller than this take out-of-order names by sorted insertion; larger ones
/// switch to a search tree, since each sorted insertion moves half the entries.
const SORTED_INSERT_MAX: usize = 64;

/// What a name in a directory refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Slot {
    /// The node (a placeholder for a hard link not resolved yet).
    pub(crate) node: NodeId,
    /// Whether the entry is a hard link.
    pub(crate) hardlink: bool,
}

/// The entry already exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InsertError {
    /// The name is taken.
    Exists,
    /// The tree refused the entry.
    Tree(TreeError),
}

/// Per-directory lookup structures for the directories whose children are out of order.
#[derive(Debug, Default)]
pub(crate) struct DirIndex {
    unsorted: BTreeMap<NodeId, BTreeMap<Vec<u8>, Slot>>,
}

impl DirIndex {
    /// Whether some directory's children need sorting before the tree is handed out.
    pub(crate) fn needs_sort(&self) -> bool {
        !self.unsorted.is_empty()
    }

    /// The entry `name` of directory `dir`.
    pub(crate) fn lookup(&self, tree: &Tree, dir: NodeId, name: &[u8]) -> Option<Slot> {
        if let Some(map) = self.unsorted.get(&dir) {
            return map.get(name).copied();
        }
        let entry = tree.get(dir)?.child(name)?;
        Some(Slot {
            node: entry.node,
            hardlink: entry.hardlink,
        })
    }

    /// Adds `name` to directory `dir`.
    pub(crate) fn insert(
        &mut self,
        tree: &mut Tree,
        dir: NodeId,
        name: &[u8],
        slot: Slot,
    ) -> Result<(), InsertError> {
        if let Some(map) = self.unsorted.get_mut(&dir) {
            if map.contains_key(name) {
                return Err(InsertError::Exists);
            }
            map.insert(name.to_vec(), slot);
            return tree
                .push_child(dir, name.to_vec(), slot.node, slot.hardlink)
                .map_err(InsertError::Tree);
        }
        let children = tree
            .get(dir)
            .map(|d| d.children.as_slice())
            .unwrap_or_default();
        let order = children
            .last()
            .map_or(Ordering::Less, |last| last.name.as_slice().cmp(name));
        match order {
            Ordering::Less => tree
                .push_child(dir, name.to_vec(), slot.node, slot.hardlink)
                .map_err(InsertError::Tree),
            Ordering::Equal => Err(InsertError::Exists),
            Ordering::Greater if children.len() < SORTED_INSERT_MAX => {
                if children
                    .binary_search_by(|e| e.name.as_slice().cmp(name))
                    .is_ok()
                {
                    return Err(InsertError::Exists);
                }
                tree.insert_child(dir, name.to_vec(), slot.node, slot.hardlink)
                    .map_err(InsertError::Tree)
            }
            Ordering::Greater => {
                let mut map: BTreeMap<Vec<u8>, Slot> = children
                    .iter()
                    .map(|e| {
                        (
                            e.name.clone(),
                            Slot {
                                node: e.node,
                                hardlink: e.hardlink,
                            },
                        )
                    })
                    .collect();
                if map.contains_key(name) {
                    return Err(InsertError::Exists);
                }
                map.insert(name.to_vec(), slot);
                self.unsorted.insert(dir, map);
                tree.push_child(dir, name.to_vec(), slot.node, slot.hardlink)
                    .map_err(InsertError::Tree)
            }
        }
    }
}

/// Why the parent of a path cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ParentError {
    /// The directory at this absolute path does not exist.
    Missing(Vec<u8>),
    /// The entry at this absolute path is not a directory (or is a hard link).
    NotDirectory(Vec<u8>),
}

/// A decoded, validated path: `text[start..]` is `name/name/.../name`, and `ends` holds the
/// end offset (in `text`) of every component.
#[derive(Debug, Default)]
pub(crate) struct SplitPath {
    /// The decoded PATH field.
    pub(crate) text: Vec<u8>,
    /// Offset of the first component (leading slashes skipped).
    pub(crate) start: usize,
    /// End offset of each component.
    pub(crate) ends: Vec<usize>,
}

impl SplitPath {
    /// Component `k`.
    fn component(&self, k: usize) -> &[u8] {
        let begin = match k.checked_sub(1) {
            Some(prev) => self
                .ends
                .get(prev)
                .map_or(self.text.len(), |e| e.saturating_add(1)),
            None => self.start,
        };
        let end = self.ends.get(k).copied().unwrap_or(begin);
        self.text.get(begin..end).unwrap_or_default()
    }

    /// The last component (the entry's name).
    pub(crate) fn name(&self) -> &[u8] {
        self.component(self.ends.len().saturating_sub(1))
    }

    /// `/` followed by components `0..=k`.
    fn prefix(&self, k: usize) -> Vec<u8> {
        let end = self.ends.get(k).copied().unwrap_or(self.text.len());
        let mut out = Vec::with_capacity(end.saturating_sub(self.start).saturating_add(1));
        out.push(b'/');
        out.extend_from_slice(self.text.get(self.start..end).unwrap_or_default());
        out
    }
}

/// The directories along the previous path: component `k` of `path` is the directory
/// `dirs[k]`, or `None` when that entry cannot be a parent.
#[derive(Debug, Default)]
pub(crate) struct Cursor {
    path: SplitPath,
    dirs: Vec<Option<NodeId>>,
    /// Scratch for the next `dirs`.
    next_dirs: Vec<Option<NodeId>>,
}

impl Cursor {
    /// Forgets the previous path (after the root line).
    pub(crate) fn reset(&mut self) {
        self.path.text.clear();
        self.path.start = 0;
        self.path.ends.clear();
        self.dirs.clear();
    }

    /// Finds the parent directory of `path`, reusing the directories of the previous path
    /// for the components both share, and looking the others up in `index`.
    ///
    /// # Errors
    /// The first ancestor that does not exist or is not a directory.
    pub(crate) fn parent(
        &mut self,
        tree: &Tree,
        index: &DirIndex,
        path: &SplitPath,
    ) -> Result<NodeId, ParentError> {
        let parents = path.ends.len().saturating_sub(1);
        let mut depth = 0;
        // Fast path for siblings and children of the previous entry: the previous path
        // starts with this one's parent path, followed by a slash or nothing.
        let parent_end = match parents.checked_sub(1) {
            Some(last) => path.ends.get(last).copied().unwrap_or(0),
            None => path.start,
        };
        let parent = path.text.get(path.start..parent_end).unwrap_or_default();
        let old = self.path.text.get(self.path.start..).unwrap_or_default();
        if parents > 0
            && self.dirs.len() >= parents
            && old.starts_with(parent)
            && matches!(old.get(parent.len()), None | Some(b'/'))
        {
            depth = parents;
        }
        while depth < parents
            && depth < self.dirs.len()
            && path.component(depth) == self.path.component(depth)
        {
            depth = depth.saturating_add(1);
        }
        self.next_dirs.clear();
        self.next_dirs.extend(self.dirs.iter().take(depth).copied());
        let mut at = match depth.checked_sub(1) {
            Some(last) => self.dirs.get(last).copied().flatten(),
            None => Some(NodeId::ROOT),
        };
        for k in depth..parents {
            let Some(dir) = at else {
                return Err(ParentError::NotDirectory(path.prefix(k.saturating_sub(1))));
            };
            let Some(slot) = index.lookup(tree, dir, path.component(k)) else {
                return Err(ParentError::Missing(path.prefix(k)));
            };
            let is_dir = tree.get(slot.node).is_some_and(|n| n.is_dir());
            at = (!slot.hardlink && is_dir).then_some(slot.node);
            self.next_dirs.push(at);
        }
        at.ok_or_else(|| ParentError::NotDirectory(path.prefix(parents.saturating_sub(1))))
    }

    /// Makes `path` (whose parent [`Cursor::parent`] just resolved) the previous path;
    /// `dir` is the node it names when that is a directory. `path` receives the old
    /// buffers for reuse.
    pub(crate) fn advance(&mut self, path: &mut SplitPath, dir: Option<NodeId>) {
        core::mem::swap(&mut self.path, path);
        core::mem::swap(&mut self.dirs, &mut self.next_dirs);
        self.dirs.push(dir);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::ondisk::{S_IFDIR, S_IFREG};
    use crate::tree::Node;

    fn split(p: &[u8]) -> SplitPath {
        let start = p.iter().position(|&b| b != b'/').unwrap_or(p.len());
        let mut ends = Vec::new();
        for (i, &b) in p.iter().enumerate().skip(start) {
            if b == b'/' {
                ends.push(i);
            }
        }
        ends.push(p.len());
        SplitPath {
            text: p.to_vec(),
            start,
            ends,
        }
    }

    #[test]
    fn out_of_order_names_stay_unique_and_findable_in_large_directories() {
        let mut tree = Tree::new(Node::with_mode(S_IFDIR | 0o755));
        let mut index = DirIndex::default();
        let names: Vec<Vec<u8>> = (0..500u32)
            .map(|i| alloc::format!("n{}", (i * 7919) % 500).into_bytes())
            .collect();
        for name in &names {
            let f = tree.add(Node::with_mode(S_IFREG)).unwrap();
            index
                .insert(
                    &mut tree,
                    NodeId::ROOT,
                    name,
                    Slot {
                        node: f,
                        hardlink: false,
                    },
                )
                .unwrap();
        }
        assert!(index.needs_sort());
        for name in &names {
            assert!(index.lookup(&tree, NodeId::ROOT, name).is_some());
            let slot = Slot {
                node: NodeId::ROOT,
                hardlink: true,
            };
            assert_eq!(
                index.insert(&mut tree, NodeId::ROOT, name, slot),
                Err(InsertError::Exists)
            );
        }
        tree.sort_children().unwrap();
        assert_eq!(tree.root().children.len(), 500);
    }

    #[test]
    fn small_directories_stay_sorted() {
        let mut tree = Tree::new(Node::with_mode(S_IFDIR | 0o755));
        let mut index = DirIndex::default();
        for name in [&b"b"[..], b"a", b"c", b"a"] {
            let f = tree.add(Node::with_mode(S_IFREG)).unwrap();
            let r = index.insert(
                &mut tree,
                NodeId::ROOT,
                name,
                Slot {
                    node: f,
                    hardlink: false,
                },
            );
            assert_eq!(r.is_err(), name == b"a" && tree.root().children.len() == 3);
        }
        assert!(!index.needs_sort());
        let names: Vec<&[u8]> = tree
            .root()
            .children
            .iter()
            .map(|e| e.name.as_slice())
            .collect();
        assert_eq!(names, [&b"a"[..], b"b", b"c"]);
    }

    #[test]
    fn cursor_reuses_shared_prefixes_and_reports_the_failing_ancestor() {
        let mut tree = Tree::new(Node::with_mode(S_IFDIR | 0o755));
        let mut index = DirIndex::default();
        let mut cursor = Cursor::default();
        let d = tree.add(Node::with_mode(S_IFDIR | 0o755)).unwrap();
        let f = tree.add(Node::with_mode(S_IFREG)).unwrap();
        let mut p = split(b"/d");
        assert_eq!(cursor.parent(&tree, &index, &p), Ok(NodeId::ROOT));
        index
            .insert(
                &mut tree,
                NodeId::ROOT,
                p.name(),
                Slot {
                    node: d,
                    hardlink: false,
                },
            )
            .unwrap();
        cursor.advance(&mut p, Some(d));
        let mut p = split(b"d/f");
        assert_eq!(cursor.parent(&tree, &index, &p), Ok(d));
        index
            .insert(
                &mut tree,
                d,
                p.name(),
                Slot {
                    node: f,
                    hardlink: false,
                },
            )
            .unwrap();
        cursor.advance(&mut p, None);
        assert_eq!(
            cursor.parent(&tree, &index, &split(b"/d/f/x")),
            Err(ParentError::NotDirectory(b"/d/f".to_vec()))
        );
        assert_eq!(
            cursor.parent(&tree, &index, &split(b"/d/g/x")),
            Err(ParentError::Missing(b"/d/g".to_vec()))
        );
        assert_eq!(
            cursor.parent(&tree, &index, &split(b"/e/x")),
            Err(ParentError::Missing(b"/e".to_vec()))
        );
        // A fresh cursor finds the same parent through the index alone.
        assert_eq!(
            Cursor::default().parent(&tree, &index, &split(b"//d/h")),
            Ok(d)
        );
    }
}
