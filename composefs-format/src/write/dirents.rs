//! Directory contents as written (SPEC.md 4.2 and 4.6): the tree's entries merged, in byte
//! order, with `.`, `..` and (in the root) the whiteout stubs `00`..`ff`, then packed into
//! 4096-byte blocks and an optional inline tail.

use alloc::vec::Vec;

use super::names::{stub_name, ROOT_STUB_COUNT};
use crate::ondisk::{EROFS_BLKSIZ, EROFS_DIRENT_SIZE};
use crate::tree::{Entry, Node};

/// One name in a directory as written.
#[derive(Debug, Clone, Copy)]
pub(super) enum Child<'t> {
    /// An entry of the tree.
    Entry(&'t Entry),
    /// `.`: the directory itself.
    Dot,
    /// `..`: the parent (the root's is the root).
    DotDot,
    /// Root whiteout stub number `n`, named by its two hex digits.
    Stub(u8),
}

impl<'t> Child<'t> {
    /// The name.
    pub(super) fn name(&self) -> &'t [u8] {
        match self {
            Self::Entry(e) => &e.name,
            Self::Dot => b".",
            Self::DotDot => b"..",
            Self::Stub(n) => stub_name(*n),
        }
    }

    /// Bytes it takes in a directory block: a dirent and the name.
    pub(super) fn size(&self) -> u64 {
        EROFS_DIRENT_SIZE.saturating_add(u64::try_from(self.name().len()).unwrap_or(u64::MAX))
    }
}

/// The names of a directory as written, in byte order.
#[derive(Debug, Clone)]
pub(super) struct Children<'t> {
    entries: &'t [Entry],
    /// 0: `.` and `..` are still due, 1: only `..`, 2: neither.
    dots: u8,
    /// Next stub to consider; [`ROOT_STUB_COUNT`] when none remain (or not the root).
    stub: usize,
}

impl<'t> Children<'t> {
    /// The names of directory `node`; `is_root` adds the stubs.
    pub(super) fn new(node: &'t Node, is_root: bool) -> Self {
        Self {
            entries: &node.children,
            dots: 0,
            stub: if is_root { 0 } else { ROOT_STUB_COUNT },
        }
    }
}

impl<'t> Iterator for Children<'t> {
    type Item = Child<'t>;

    fn next(&mut self) -> Option<Child<'t>> {
        let entry = self.entries.first();
        let mut stub = self.stub_candidate();
        // A stub is skipped when the root already has a child of that name.
        if let (Some(n), Some(e)) = (stub, entry) {
            if stub_name(n) == e.name.as_slice() {
                self.stub = self.stub.saturating_add(1);
                stub = self.stub_candidate();
            }
        }
        let dot = match self.dots {
            0 => Some(Child::Dot),
            1 => Some(Child::DotDot),
            _ => None,
        };
        let mut best: Option<Child<'t>> = entry.map(Child::Entry);
        for candidate in [dot, stub.map(Child::Stub)].into_iter().flatten() {
            if best.map_or(true, |b| candidate.name() < b.name()) {
                best = Some(candidate);
            }
        }
        match best? {
            Child::Entry(_) => self.entries = self.entries.get(1..).unwrap_or_default(),
            Child::Dot | Child::DotDot => self.dots = self.dots.saturating_add(1),
            Child::Stub(_) => self.stub = self.stub.saturating_add(1),
        }
        best
    }
}

impl Children<'_> {
    fn stub_candidate(&self) -> Option<u8> {
        u8::try_from(self.stub).ok()
    }
}

/// How a directory's entries are stored: full blocks, then an inline tail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct DirSize {
    /// Full (out-of-line) blocks.
    pub(super) blocks: u64,
    /// Bytes of the inline tail (at most 2048).
    pub(super) tail: u64,
}

impl DirSize {
    /// `i_size`: the blocks plus the tail.
    pub(super) fn i_size(&self) -> u64 {
        self.blocks
            .saturating_mul(EROFS_BLKSIZ)
            .saturating_add(self.tail)
    }
}

/// Packs names greedily into blocks, one entry size at a time; the last, partial block
/// stays inline when it holds at most half a block.
#[derive(Debug, Default)]
pub(super) struct DirSizer {
    blocks: u64,
    used: u64,
}

impl DirSizer {
    /// Adds an entry taking `len` bytes.
    pub(super) fn add(&mut self, len: u64) {
        if self.used.saturating_add(len) > EROFS_BLKSIZ {
            self.blocks = self.blocks.saturating_add(1);
            self.used = 0;
        }
        self.used = self.used.saturating_add(len);
    }

    /// The size of the entries added.
    pub(super) fn finish(self) -> DirSize {
        if self.used > EROFS_BLKSIZ / 2 {
            DirSize {
                blocks: self.blocks.saturating_add(1),
                tail: 0,
            }
        } else {
            DirSize {
                blocks: self.blocks,
                tail: self.used,
            }
        }
    }
}

/// The size of a directory with these entries.
#[cfg(test)]
pub(super) fn dir_size(children: Children<'_>) -> DirSize {
    let mut sizer = DirSizer::default();
    for child in children {
        sizer.add(child.size());
    }
    sizer.finish()
}

/// Cuts the names into the groups [`dir_size`] counted: each fills one block, the last
/// may be the inline tail.
#[derive(Debug)]
pub(super) struct Groups<'t> {
    children: Children<'t>,
    pending: Option<Child<'t>>,
}

impl<'t> Groups<'t> {
    /// Groups of `children`.
    pub(super) fn new(children: Children<'t>) -> Self {
        Self {
            children,
            pending: None,
        }
    }

    /// Replaces `out` with the next group; false when there is none.
    pub(super) fn next_into(&mut self, out: &mut Vec<Child<'t>>) -> bool {
        out.clear();
        let mut used = 0u64;
        while let Some(child) = self.pending.take().or_else(|| self.children.next()) {
            let len = child.size();
            if used.saturating_add(len) > EROFS_BLKSIZ && !out.is_empty() {
                self.pending = Some(child);
                break;
            }
            used = used.saturating_add(len);
            out.push(child);
        }
        !out.is_empty()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::ondisk::{S_IFDIR, S_IFREG};
    use crate::tree::{NodeId, Tree};
    use alloc::vec;

    fn tree_with(names: &[&[u8]]) -> Tree {
        let mut t = Tree::new(Node::with_mode(S_IFDIR | 0o755));
        for name in names {
            let f = t.add(Node::with_mode(S_IFREG | 0o644)).unwrap();
            t.insert_child(NodeId::ROOT, name.to_vec(), f, false)
                .unwrap();
        }
        t
    }

    fn names(c: Children<'_>) -> Vec<Vec<u8>> {
        c.map(|c| c.name().to_vec()).collect()
    }

    #[test]
    fn dots_sort_among_names_in_byte_order() {
        let t = tree_with(&[b"-x", b"!a", b"a", b".a"]);
        let got = names(Children::new(t.root(), false));
        let want: Vec<Vec<u8>> = [&b"!a"[..], b"-x", b".", b"..", b".a", b"a"]
            .iter()
            .map(|n| n.to_vec())
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn root_gets_stubs_except_names_it_has() {
        let t = tree_with(&[b"00", b"0a", b"zz", b"1"]);
        let got = names(Children::new(t.root(), true));
        assert_eq!(got.len(), 2 + 4 + 256 - 2);
        assert_eq!(
            &got[..5],
            &[
                b".".to_vec(),
                b"..".to_vec(),
                b"00".to_vec(),
                b"01".to_vec(),
                b"02".to_vec()
            ]
        );
        assert!(got.windows(2).all(|w| w[0] < w[1]), "sorted and unique");
        assert!(got.contains(&b"1".to_vec()) && got.contains(&b"ff".to_vec()));
    }

    #[test]
    fn tail_is_inline_only_up_to_half_a_block() {
        // "." and ".." take 13 + 14 = 27 bytes; each 255-byte name takes 267.
        let long: Vec<Vec<u8>> = (0..20u8).map(|i| vec![b'a' + i; 255]).collect();
        for (count, blocks, tail, groups) in [
            (0usize, 0, 27, vec![27]),
            (7, 0, 27 + 7 * 267, vec![1896]),
            (8, 1, 0, vec![2163]),
            (15, 1, 0, vec![4032]),
            (16, 1, 267, vec![4032, 267]),
            (20, 1, 5 * 267, vec![4032, 5 * 267]),
        ] {
            let refs: Vec<&[u8]> = long[..count].iter().map(Vec::as_slice).collect();
            let t = tree_with(&refs);
            assert_eq!(
                dir_size(Children::new(t.root(), false)),
                DirSize { blocks, tail },
                "{count}"
            );
            let mut split = Groups::new(Children::new(t.root(), false));
            let mut out = Vec::new();
            let mut sizes = Vec::new();
            while split.next_into(&mut out) {
                sizes.push(out.iter().map(Child::size).sum::<u64>());
            }
            assert_eq!(sizes, groups, "{count}");
        }
    }
}
