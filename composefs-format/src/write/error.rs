//! What can stop the writer: [`WriteError`] from planning, [`EmitError`] from writing.

use crate::tree::{NodeId, Tree, TreeError};

/// Why a tree cannot be written as an image. Carries the node concerned, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteError {
    node: Option<NodeId>,
    kind: WriteErrorKind,
}

impl WriteError {
    pub(super) fn at(node: NodeId, kind: WriteErrorKind) -> Self {
        Self {
            node: Some(node),
            kind,
        }
    }

    pub(super) fn image(kind: WriteErrorKind) -> Self {
        Self { node: None, kind }
    }

    /// The node the error is about, when it is about one.
    #[must_use]
    pub fn node(&self) -> Option<NodeId> {
        self.node
    }

    /// What is wrong.
    #[must_use]
    pub fn kind(&self) -> WriteErrorKind {
        self.kind
    }
}

impl core::fmt::Display for WriteError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        if let Some(node) = self.node {
            write!(f, "node {}: ", node.index())?;
        }
        if let Some(field) = self.kind.field() {
            write!(f, "{field}: ")?;
        }
        write!(f, "{}", self.kind)
    }
}

impl core::error::Error for WriteError {}

/// The precise reason of a [`WriteError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WriteErrorKind {
    /// The tree breaks one of its own invariants.
    #[error("invalid tree: {0}")]
    Tree(TreeError),
    /// A format version outside 0..=1 was asked for.
    #[error("unsupported format version (min {min}, max {max}; the highest is 1)")]
    UnsupportedVersion {
        /// Requested minimum.
        min: u32,
        /// Requested maximum.
        max: u32,
    },
    /// Inline content longer than the 5000 bytes an inode may carry.
    #[error("{len} bytes of inline content exceed the maximum of 5000")]
    ContentTooLarge {
        /// Content length.
        len: usize,
    },
    /// Inline content whose length is not the file size.
    #[error("{len} bytes of inline content for a file of size {size}")]
    ContentSizeMismatch {
        /// Content length.
        len: usize,
        /// The node's size.
        size: u64,
    },
    /// A symlink with no target or an empty one.
    #[error("a symlink needs a non-empty target")]
    SymlinkTargetEmpty,
    /// A symlink target longer than 4095 bytes.
    #[error("symlink target of {len} bytes exceeds the maximum of 4095")]
    SymlinkTargetTooLong {
        /// Target length.
        len: usize,
    },
    /// A symlink target or backing path containing a NUL byte.
    #[error("contains a NUL byte")]
    PayloadNul,
    /// A backing path that is not a relative path of non-empty components other than `.`
    /// and `..`: overlayfs would resolve its redirect outside the object store.
    #[error("backing path is not a plain relative path (byte {at})")]
    PayloadNotRelative {
        /// Offset of the first offending byte in the path.
        at: usize,
    },
    /// A regular file's backing path longer than 4095 bytes.
    #[error("backing path of {len} bytes exceeds the maximum of 4095")]
    PayloadTooLong {
        /// Path length.
        len: usize,
    },
    /// An xattr with an empty name.
    #[error("xattr {}: empty name", .index.saturating_add(1))]
    XattrNameEmpty {
        /// Position of the xattr in the node's list, from 0 (messages count from 1).
        index: usize,
    },
    /// An xattr name longer than 255 bytes.
    #[error("xattr {}: name of {len} bytes exceeds the maximum of 255", .index.saturating_add(1))]
    XattrNameTooLong {
        /// Position of the xattr in the node's list, from 0 (messages count from 1).
        index: usize,
        /// Name length.
        len: usize,
    },
    /// An xattr name containing a NUL byte.
    #[error("xattr {}: name contains a NUL byte", .index.saturating_add(1))]
    XattrNameNul {
        /// Position of the xattr in the node's list, from 0 (messages count from 1).
        index: usize,
    },
    /// An xattr value longer than 65535 bytes.
    #[error("xattr {}: value of {len} bytes exceeds the maximum of 65535", .index.saturating_add(1))]
    XattrValueTooLong {
        /// Position of the xattr in the node's list, from 0 (messages count from 1).
        index: usize,
        /// Value length.
        len: usize,
    },
    /// Two xattrs with the same name on one node.
    #[error("xattr {}: duplicate name", .index.saturating_add(1))]
    XattrDuplicate {
        /// Position of the second one in the node's list, from 0 (messages count from 1).
        index: usize,
    },
    /// The xattrs of one inode need more room than `i_xattr_icount` can describe.
    #[error("{size} bytes of xattrs do not fit one inode")]
    XattrAreaTooLarge {
        /// Size of the xattr area.
        size: u64,
    },
    /// A regular file so large that its chunk map needs more than 1024 entries.
    #[error("a file of {size} bytes needs {chunks} chunks, more than 1024")]
    FileTooLarge {
        /// File size.
        size: u64,
        /// Chunks it would need.
        chunks: u64,
    },
    /// A chunk map that does not fit in the block after the inode and its xattrs. The
    /// reference moves it out of line, which EROFS cannot read; we refuse.
    #[error("the {chunks}-entry chunk map of this file cannot be stored inline after its xattrs")]
    ChunkMapNotInline {
        /// Chunk map entries.
        chunks: u64,
    },
    /// A non-directory with a link count of 0: to the kernel, a deleted inode.
    #[error("a link count of 0 (only deleted files have no links)")]
    ZeroLinks,
    /// More subdirectories than a link count can hold.
    #[error("too many subdirectories")]
    TooManySubdirectories,
    /// More inodes than `i_ino` can number.
    #[error("too many inodes")]
    TooManyInodes,
    /// The root inode landed beyond the 16-bit `root_nid` field.
    #[error("root nid {nid} does not fit in 16 bits")]
    RootNidTooLarge {
        /// The root's nid.
        nid: u64,
    },
    /// The image would exceed 2^32 blocks, or a shared xattr id would not fit 32 bits.
    #[error("the image would exceed 2^32 blocks")]
    ImageTooLarge,
}

impl WriteErrorKind {
    /// The composefs-dump(5) field the error is about (`SIZE`, `PAYLOAD`, `XATTR`...), so
    /// that a tool can point at it; `None` for errors about the whole image.
    #[must_use]
    pub fn field(&self) -> Option<&'static str> {
        match self {
            Self::Tree(TreeError::InvalidMode { .. } | TreeError::HardlinkedDirectory(_)) => {
                Some("MODE")
            }
            Self::Tree(TreeError::InvalidName { .. } | TreeError::DuplicateName { .. }) => {
                Some("PATH")
            }
            Self::ContentTooLarge { .. } | Self::ContentSizeMismatch { .. } => Some("CONTENT"),
            Self::SymlinkTargetEmpty
            | Self::SymlinkTargetTooLong { .. }
            | Self::PayloadNul
            | Self::PayloadNotRelative { .. }
            | Self::PayloadTooLong { .. } => Some("PAYLOAD"),
            Self::XattrNameEmpty { .. }
            | Self::XattrNameTooLong { .. }
            | Self::XattrNameNul { .. }
            | Self::XattrValueTooLong { .. }
            | Self::XattrDuplicate { .. }
            | Self::XattrAreaTooLarge { .. } => Some("XATTR"),
            Self::FileTooLarge { .. } | Self::ChunkMapNotInline { .. } => Some("SIZE"),
            Self::TooManySubdirectories | Self::ZeroLinks => Some("NLINK"),
            _ => None,
        }
    }
}

impl WriteError {
    /// Wraps a tree invariant violation, naming the node it is about.
    pub(super) fn from_tree(tree: &Tree, e: TreeError) -> Self {
        let raw = match e {
            TreeError::InvalidMode { node, .. }
            | TreeError::NotADirectory(node)
            | TreeError::HardlinkedDirectory(node)
            | TreeError::PrimaryEntry(node)
            | TreeError::Unreachable(node)
            | TreeError::InvalidName { parent: node, .. }
            | TreeError::DuplicateName { parent: node } => Some(node),
            TreeError::RootNotDirectory => Some(0),
            _ => None,
        };
        // TreeError carries raw indices; find the id by position (error path only).
        let node = raw
            .and_then(|raw| usize::try_from(raw).ok())
            .and_then(|at| tree.iter().nth(at))
            .map(|(id, _)| id);
        Self {
            node,
            kind: WriteErrorKind::Tree(e),
        }
    }
}

/// Why writing a planned image stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EmitError<E> {
    /// The sink failed.
    #[error("write failed: {0}")]
    Sink(E),
    /// The bytes written disagree with the plan at this offset: a bug in the writer.
    #[error("internal error: output diverged from the layout at byte {offset}")]
    Inconsistent {
        /// Offset where it was noticed.
        offset: u64,
    },
}
