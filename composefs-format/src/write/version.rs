//! Choosing the format version (SPEC.md 4.1).
//!
//! Versions 0 and 1 differ only in how directories holding whiteouts are marked: version 1
//! adds an escaped opaque xattr so that a further overlay stacked on the mounted image
//! sees them as "xwhiteout" directories.

use super::error::{WriteError, WriteErrorKind};
use super::Options;
use crate::ondisk::COMPOSEFS_VERSION_MAX;
use crate::tree::Tree;

/// The version to write: `min`, raised to 1 when `max` allows it and the tree holds a
/// whiteout (a character device with rdev 0). The root stubs the writer adds do not count.
pub(super) fn select(tree: &Tree, options: &Options) -> Result<u32, WriteError> {
    let Options {
        min_version: min,
        max_version: max,
    } = *options;
    if min > COMPOSEFS_VERSION_MAX || max > COMPOSEFS_VERSION_MAX {
        return Err(WriteError::image(WriteErrorKind::UnsupportedVersion {
            min,
            max,
        }));
    }
    if min < 1 && max >= 1 && tree.iter().any(|(_, node)| node.is_whiteout()) {
        return Ok(1);
    }
    Ok(min)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::ondisk::{S_IFCHR, S_IFDIR};
    use crate::tree::{Node, NodeId};
    use alloc::vec;

    fn opts(min: u32, max: u32) -> Options {
        Options {
            min_version: min,
            max_version: max,
        }
    }

    #[test]
    fn whiteouts_raise_the_version_only_when_allowed() {
        let plain = Tree::new(Node::with_mode(S_IFDIR | 0o755));
        let mut with_whiteout = plain.clone();
        let w = with_whiteout.add(Node::with_mode(S_IFCHR | 0o644)).unwrap();
        with_whiteout
            .insert_child(NodeId::ROOT, vec![b'w'], w, false)
            .unwrap();

        assert_eq!(select(&plain, &opts(0, 1)), Ok(0));
        assert_eq!(select(&with_whiteout, &opts(0, 1)), Ok(1));
        assert_eq!(select(&with_whiteout, &opts(0, 0)), Ok(0));
        assert_eq!(select(&plain, &opts(1, 0)), Ok(1));
        assert_eq!(
            select(&plain, &opts(2, 2)).unwrap_err().kind(),
            WriteErrorKind::UnsupportedVersion { min: 2, max: 2 }
        );
        assert!(select(&plain, &opts(0, 2)).is_err());
    }
}
