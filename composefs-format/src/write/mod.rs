//! The image writer: a [`Tree`] in, the exact bytes the reference `mkcomposefs` 1.0.8
//! writes for it out (SPEC.md section 4).
//!
//! Writing has two steps. [`plan`] validates the tree and decides everything: the
//! breadth-first inode order, each inode's form, xattrs and padding, the shared xattr
//! table, every nid and block address. [`Layout::emit`] then writes the image front to
//! back in one pass into any [`Sink`], so a file can be written directly without holding
//! the image in memory.
//!
//! The tree is never copied or modified. What the reference does on its copy of the tree
//! (escaping `trusted.overlay.*` xattrs, converting whiteouts, adding overlay xattrs,
//! `.` and `..`, the root's opaque flag and the 256 whiteout stubs `00`..`ff` in the root)
//! is applied on the fly, borrowing names and values from the tree.
//!
//! # Modules
//! - `version`: format version selection.
//! - `xattrs`: the xattrs of each inode and their encoding; `shared`: the shared table.
//! - `dirents`: directory contents and their packing into blocks.
//! - `plan` and `layout`: the layout; `emit`: the bytes.

mod dirents;
mod emit;
mod error;
mod layout;
mod names;
mod plan;
mod shared;
mod split;
mod version;
mod xattrs;

#[cfg(test)]
mod tests;

pub use error::{EmitError, WriteError, WriteErrorKind};
pub use layout::{InodeInfo, Layout, Origin, Region, Structure};

use crate::sink::Sink;
use crate::tree::Tree;

/// Writer settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Lowest format version to write (0 or 1). Default 0.
    pub min_version: u32,
    /// Highest format version to write (0 or 1): the writer moves up to it when the tree
    /// holds a whiteout. Default 1.
    pub max_version: u32,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            min_version: 0,
            max_version: 1,
        }
    }
}

/// Plans the image of `tree`: validates it and decides every offset.
///
/// # Errors
/// [`WriteError`] naming the node and the rule it breaks: an invalid tree, a version
/// outside 0..=1, a limit of the format (inline content, symlink target, xattr names and
/// values, file size) or a chunk map that cannot be stored inline.
pub fn plan<'t>(tree: &'t Tree, options: &Options) -> Result<Layout<'t>, WriteError> {
    plan::plan(tree, options)
}

/// Why [`write_image`] failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WriteImageError<E> {
    /// The tree cannot be written.
    #[error(transparent)]
    Plan(#[from] WriteError),
    /// Writing failed.
    #[error(transparent)]
    Emit(EmitError<E>),
}

/// Plans and writes the image of `tree` into `sink`; returns the layout.
///
/// # Errors
/// [`WriteImageError::Plan`] when the tree cannot be written (nothing was written then),
/// [`WriteImageError::Emit`] when the sink fails.
pub fn write_image<'t, S: Sink + ?Sized>(
    tree: &'t Tree,
    options: &Options,
    sink: &mut S,
) -> Result<Layout<'t>, WriteImageError<S::Error>> {
    let layout = plan(tree, options)?;
    layout.emit(sink).map_err(WriteImageError::Emit)?;
    Ok(layout)
}
