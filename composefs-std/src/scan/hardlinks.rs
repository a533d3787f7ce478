//! `--hardlinks`: which name of a multiply linked file is its primary entry.
//!
//! The walk gives a file met under several names one node, named first by whichever
//! entry the directory listings produced first; the others are hard link entries. Listing
//! order is arbitrary, so the primary entry is chosen again here, deterministically: the
//! first entry met in depth-first pre-order with children sorted by name (the order of a
//! dump, SPEC.md 6.5).

use composefs_format::tree::{NodeId, Tree};

/// Makes the first entry (in sorted depth-first order) of every node with more than one
/// name its primary entry, and every other entry a hard link. Children must be sorted.
pub(crate) fn choose_primaries(tree: &mut Tree) {
    let mut linked = vec![false; tree.len()];
    let mut any = false;
    for (id, node) in tree.iter() {
        if node.nlink > 1 && !node.is_dir() {
            if let Some(flag) = linked.get_mut(id.index()) {
                *flag = true;
                any = true;
            }
        }
    }
    if !any {
        return;
    }
    let mut seen = vec![false; tree.len()];
    // (directory, index of its next child)
    let mut stack: Vec<(NodeId, usize)> = vec![(NodeId::ROOT, 0)];
    while let Some(top) = stack.last_mut() {
        let (dir, at) = *top;
        top.1 = at.saturating_add(1);
        let Some(entry) = tree.get(dir).and_then(|d| d.children.get(at)) else {
            stack.pop();
            continue;
        };
        let (child, hardlink) = (entry.node, entry.hardlink);
        let is_dir = tree.get(child).is_some_and(|n| n.is_dir());
        if linked.get(child.index()).copied().unwrap_or(false) {
            let first = seen.get(child.index()).is_some_and(|s| !s);
            if let Some(s) = seen.get_mut(child.index()) {
                *s = true;
            }
            if let Some(e) = tree.get_mut(dir).and_then(|d| d.children.get_mut(at)) {
                e.hardlink = !first;
            }
        } else if is_dir && !hardlink {
            stack.push((child, 0));
        }
    }
}
