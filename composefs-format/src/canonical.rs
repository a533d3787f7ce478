//! Canonical-image verification: is an image sound, and is it exactly the image its own
//! content produces (SPEC.md 5.3)?
//!
//! A runtime that receives an untrusted image can ask this before the kernel sees it:
//! [`verify`] runs the structural [`check`], reads the image back into a
//! tree, rebuilds the image from that tree with the writer at the format version stored in
//! the header, and requires the rebuilt bytes to equal the original byte for byte. The
//! rebuild is compared while it is emitted, so no second copy of the image is held.

use alloc::vec::Vec;
use core::fmt;

use crate::check;
use crate::error::Error;
use crate::from_image::image_to_tree;
use crate::image::Image;
use crate::sink::Sink;
use crate::tree::{NodeId, Tree};
use crate::write::{self, EmitError, Options, Origin, Region, Structure, WriteError};

/// Where a rebuilt image first differs from the original.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// First byte offset that differs (or where one image ends).
    pub offset: u64,
    /// The structure of the rebuilt image that holds that byte.
    pub region: Region,
    /// Path of the tree node the structure belongs to, when it belongs to one.
    pub path: Option<Vec<u8>>,
    /// Size of the original image.
    pub image_len: u64,
    /// Size of the rebuilt image.
    pub rebuilt_len: u64,
}

/// Why an image is not canonical.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CanonicalError {
    /// The structural check found problems; `first` is the first of `count`.
    NotSound {
        /// The first problem.
        first: Error,
        /// How many were found (capped by the checker).
        count: usize,
    },
    /// The image could not be read back into a tree.
    Read(Error),
    /// The tree read from the image cannot be written.
    Rebuild(WriteError),
    /// The rebuilt image differs.
    Differs(Mismatch),
}

impl fmt::Display for CanonicalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotSound { first, count } => {
                write!(
                    f,
                    "structural check failed ({count} problems), first: {first}"
                )
            }
            Self::Read(e) => write!(f, "cannot read the image back into a tree: {e}"),
            Self::Rebuild(e) => write!(f, "cannot rebuild the image from its tree: {e}"),
            Self::Differs(m) => {
                write!(
                    f,
                    "not canonical: first difference at byte {} in {}",
                    m.offset,
                    DisplayStructure(&m.region.structure)
                )?;
                if let Some(path) = &m.path {
                    f.write_str(" of ")?;
                    crate::error::write_escaped(f, path)?;
                }
                write!(f, " (bytes {}..{})", m.region.start, m.region.end)?;
                if m.image_len != m.rebuilt_len {
                    write!(
                        f,
                        "; image is {} bytes, rebuilt {} bytes",
                        m.image_len, m.rebuilt_len
                    )?;
                }
                Ok(())
            }
        }
    }
}

impl core::error::Error for CanonicalError {}

/// Names a [`Structure`] for users.
struct DisplayStructure<'a>(&'a Structure);

impl fmt::Display for DisplayStructure<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inode = |f: &mut fmt::Formatter<'_>, what: &str, info: &write::InodeInfo| {
            write!(f, "{what} of inode nid {} (ino {}", info.nid, info.ino)?;
            if let Origin::RootStub(n) = info.origin {
                write!(f, ", root whiteout stub {n:02x}")?;
            }
            f.write_str(")")
        };
        match self.0 {
            Structure::Header => f.write_str("the composefs header"),
            Structure::HeaderPadding => f.write_str("the padding after the composefs header"),
            Structure::Superblock => f.write_str("the superblock"),
            Structure::InodePadding(i) => inode(f, "the padding before", i),
            Structure::Inode(i) => inode(f, "the inode structure", i),
            Structure::Xattrs(i) => inode(f, "the xattr area", i),
            Structure::Tail(i) => inode(f, "the inline data", i),
            Structure::InodesEndPadding => f.write_str("the padding after the last inode"),
            Structure::SharedXattr { index } => write!(f, "shared xattr {index}"),
            Structure::DataPadding => f.write_str("the padding before the data blocks"),
            Structure::DataBlock { inode: i, block } => {
                write!(f, "data block {block} ")?;
                inode(f, "", i)
            }
            Structure::PastEnd => f.write_str("the end of the image"),
        }
    }
}

/// What a sound, canonical image holds, as [`verify`] found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Canonical {
    /// The format version in the header (the rebuild used it as min = max).
    pub format_version: u32,
    /// Number of inodes written, the root stubs included.
    pub inodes: usize,
}

/// Checks that `bytes` is a sound image that the writer reproduces byte for byte from the
/// tree it describes.
///
/// # Errors
/// [`CanonicalError`]: the first structural problem, a read or rebuild failure, or the
/// first differing byte with the structure that holds it.
pub fn verify(bytes: &[u8]) -> Result<Canonical, CanonicalError> {
    let report = check::check_bytes(bytes);
    if let Some(first) = report.problems().first() {
        return Err(CanonicalError::NotSound {
            first: first.error,
            count: report.problems().len(),
        });
    }
    let image = Image::open(bytes).map_err(CanonicalError::Read)?;
    let read = image_to_tree(&image).map_err(CanonicalError::Read)?;
    let options = Options {
        min_version: read.format_version,
        max_version: read.format_version,
    };
    let layout = write::plan(&read.tree, &options).map_err(CanonicalError::Rebuild)?;
    let mut compare = CompareSink {
        expected: bytes,
        pos: 0,
    };
    let diverged = match layout.emit(&mut compare) {
        Ok(()) if compare.pos == image.len() => None,
        Ok(()) => Some(compare.pos),
        Err(EmitError::Sink(Diverged(offset))) => Some(offset),
        Err(EmitError::Inconsistent { offset }) => Some(offset),
    };
    match diverged {
        None => Ok(Canonical {
            format_version: layout.version(),
            inodes: layout.inode_count(),
        }),
        Some(offset) => {
            let region = layout.describe_offset(offset);
            let path = node_of(&region.structure).and_then(|id| path_of(&read.tree, id));
            Err(CanonicalError::Differs(Mismatch {
                offset,
                region,
                path,
                image_len: image.len(),
                rebuilt_len: layout.image_size(),
            }))
        }
    }
}

/// The tree node a structure belongs to.
fn node_of(structure: &Structure) -> Option<NodeId> {
    let info = match structure {
        Structure::InodePadding(i)
        | Structure::Inode(i)
        | Structure::Xattrs(i)
        | Structure::Tail(i)
        | Structure::DataBlock { inode: i, .. } => i,
        _ => return None,
    };
    match info.origin {
        Origin::Node(id) => Some(id),
        Origin::RootStub(_) => None,
    }
}

/// The path of `id`'s primary entry.
fn path_of(tree: &Tree, id: NodeId) -> Option<Vec<u8>> {
    let mut found = None;
    let _ = tree.walk(|path, entry, node| {
        if node == id && entry.map_or(true, |e| !e.hardlink) {
            found = Some(path.to_vec());
            return Err(());
        }
        Ok(())
    });
    found
}

/// The offset where the rebuilt image first differs.
#[derive(Debug, Clone, Copy)]
struct Diverged(u64);

/// A sink that compares what is written with the original image and stops at the first
/// difference.
struct CompareSink<'a> {
    expected: &'a [u8],
    pos: u64,
}

impl Sink for CompareSink<'_> {
    type Error = Diverged;

    fn write_all(&mut self, bytes: &[u8]) -> Result<(), Diverged> {
        let start = usize::try_from(self.pos).map_err(|_| Diverged(self.pos))?;
        let have = self.expected.get(start..).unwrap_or_default();
        let same = have.iter().zip(bytes).take_while(|(a, b)| a == b).count();
        let same_u64 = u64::try_from(same).unwrap_or(u64::MAX);
        if same < bytes.len() {
            return Err(Diverged(self.pos.saturating_add(same_u64)));
        }
        self.pos = self.pos.saturating_add(same_u64);
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;
    use crate::ondisk::{S_IFCHR, S_IFDIR, S_IFLNK, S_IFREG};
    use crate::tree::{Mtime, Node};
    use alloc::vec;

    /// A tree with the writer's corner cases: a hard link whose primary entry comes after
    /// the link in the walk, a whiteout, escaped overlay xattrs, shared xattrs, inline and
    /// external files, a symlink.
    fn node(mode: u32) -> Node {
        Node {
            nlink: 1,
            ..Node::with_mode(mode)
        }
    }

    fn sample() -> Tree {
        let mut root = node(S_IFDIR | 0o755);
        root.set_xattr(b"user.root".to_vec(), b"1".to_vec());
        let mut t = Tree::new(root);
        let d = t.add(node(S_IFDIR | 0o700)).unwrap();
        let mut f = node(S_IFREG | 0o644);
        f.size = 100_000;
        f.nlink = 2;
        f.payload = Some(b"ab/cdef".to_vec());
        f.digest = Some([7; 32]);
        f.set_xattr(b"trusted.overlay.foo".to_vec(), b"bar".to_vec());
        f.set_xattr(b"user.shared".to_vec(), b"v".to_vec());
        let f = t.add(f).unwrap();
        let mut g = node(S_IFREG | 0o600);
        g.size = 5;
        g.content = Some(b"hello".to_vec());
        g.mtime = Mtime { sec: -5, nsec: 3 };
        g.set_xattr(b"user.shared".to_vec(), b"v".to_vec());
        let g = t.add(g).unwrap();
        let w = t.add(node(S_IFCHR | 0o644)).unwrap();
        let mut s = node(S_IFLNK | 0o777);
        s.payload = Some(b"target".to_vec());
        let s = t.add(s).unwrap();
        t.insert_child(NodeId::ROOT, b"d".to_vec(), d, false)
            .unwrap();
        t.insert_child(d, b"m".to_vec(), g, false).unwrap();
        t.insert_child(d, b"z".to_vec(), f, false).unwrap();
        t.insert_child(d, b"a".to_vec(), f, true).unwrap();
        t.insert_child(d, b"w".to_vec(), w, false).unwrap();
        t.insert_child(NodeId::ROOT, b"s".to_vec(), s, false)
            .unwrap();
        t
    }

    fn image_of(tree: &Tree, options: &Options) -> Vec<u8> {
        let mut out = Vec::new();
        write::write_image(tree, options, &mut out).unwrap();
        out
    }

    #[test]
    fn images_we_write_are_canonical_at_both_versions() {
        let tree = sample();
        for (min, max, expect) in [(0, 1, 1), (0, 0, 0), (1, 1, 1)] {
            let options = Options {
                min_version: min,
                max_version: max,
            };
            let image = image_of(&tree, &options);
            let found = verify(&image).unwrap();
            assert_eq!(found.format_version, expect);
            // Reading back and writing again gives the same bytes.
            let read = image_to_tree(&Image::open(&image).unwrap()).unwrap();
            assert_eq!(image_of(&read.tree, &options), image);
        }
    }

    #[test]
    fn a_changed_inode_number_is_reported_at_its_inode() {
        let tree = sample();
        let mut image = image_of(&tree, &Options::default());
        let layout = write::plan(&tree, &Options::default()).unwrap();
        let root_nid = layout.root_nid();
        // i_ino of the root inode is at byte 20 of a compact or extended inode.
        let at = usize::try_from(root_nid * 32 + 20).unwrap();
        image[at] ^= 0x40;
        match verify(&image) {
            Err(CanonicalError::Differs(m)) => {
                assert_eq!(m.offset, root_nid * 32 + 20);
                assert!(matches!(m.region.structure, Structure::Inode(_)));
                assert_eq!(m.path.as_deref(), Some(&b"/"[..]));
            }
            other => panic!("expected a difference, got {other:?}"),
        }
    }

    #[test]
    fn a_corrupt_image_fails_the_structural_check_first() {
        let mut image = image_of(&sample(), &Options::default());
        image[1024] ^= 1; // EROFS magic
        assert!(matches!(
            verify(&image),
            Err(CanonicalError::NotSound { .. })
        ));
        assert!(matches!(verify(&[]), Err(CanonicalError::NotSound { .. })));
    }

    #[test]
    fn hard_link_primary_is_recovered_from_the_layout() {
        let tree = sample();
        let image = image_of(&tree, &Options::default());
        let read = image_to_tree(&Image::open(&image).unwrap()).unwrap();
        let d = read.tree.lookup_path(b"/d").unwrap();
        let dir = read.tree.node(d).unwrap();
        let flags: Vec<(&[u8], bool)> = dir
            .children
            .iter()
            .map(|e| (e.name.as_slice(), e.hardlink))
            .collect();
        assert_eq!(
            flags,
            vec![
                (&b"a"[..], true),
                (&b"m"[..], false),
                (&b"w"[..], false),
                (&b"z"[..], false)
            ]
        );
        let w = read.tree.lookup_path(b"/d/w").unwrap();
        assert!(read.tree.node(w).unwrap().is_whiteout());
        let z = read
            .tree
            .node(read.tree.lookup_path(b"/d/z").unwrap())
            .unwrap();
        assert_eq!(z.xattr(b"trusted.overlay.foo"), Some(&b"bar"[..]));
        assert_eq!(z.payload.as_deref(), Some(&b"ab/cdef"[..]));
        assert_eq!(z.digest, Some([7; 32]));
    }
}
