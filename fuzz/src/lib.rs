//! Helpers shared by the composefs fuzz targets.
//!
//! - [`walk`]: a bounded walk that drives every public accessor of the reader and checks
//!   the invariants that hold on any input (and the stronger ones of sound images).
//! - [`gen`]: builds a [`Tree`](composefs_format::tree::Tree) from fuzz bytes with
//!   [`arbitrary::Unstructured`], mostly valid, sometimes deliberately not.
//! - [`compare`]: tree equality up to node numbering, hard-link primaries, and the
//!   canonicalisations the writer applies (documented on [`compare::normalize_node`]).
//! - [`sites`]: the fields of a valid image located through the reader's offsets, for
//!   structure-aware mutation.
//! - [`seeds`]: a few small built-in trees for the mutation target.
//!
//! Every assertion in here states a property of the library; a failing one is a bug
//! (errors returned by the library are fine).

pub mod compare;
pub mod gen;
pub mod seeds;
pub mod sites;
pub mod walk;

use composefs_format::tree::Tree;
use composefs_format::write::{self, Options, WriteError};

/// Writes `tree` into a new buffer, checking that the plan's size is what was written.
///
/// # Errors
/// The writer's refusal.
pub fn write_tree(tree: &Tree, options: &Options) -> Result<Vec<u8>, WriteError> {
    let mut out = Vec::new();
    let layout = match write::write_image(tree, options, &mut out) {
        Ok(layout) => layout,
        Err(write::WriteImageError::Plan(e)) => return Err(e),
        Err(write::WriteImageError::Emit(e)) => panic!("writing into a Vec failed: {e:?}"),
    };
    assert_eq!(
        layout.image_size(),
        out.len() as u64,
        "the plan's image size is what emit wrote"
    );
    Ok(out)
}
