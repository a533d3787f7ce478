//! Hard link resolution after the last line (SPEC.md section 6.5): targets may come later
//! in the file, a link to a link resolves to the final node, and self links, cycles,
//! missing targets and directory targets are errors.

use alloc::vec;
use alloc::vec::Vec;

use super::error::{Field, ParseError, ParseErrorKind};
use crate::tree::{NodeId, Tree};

/// A hard link line waiting for its target.
#[derive(Debug)]
pub(crate) struct Fixup {
    /// Its line.
    pub(crate) line: u64,
    /// The directory holding the link entry.
    pub(crate) parent: NodeId,
    /// The link entry's name.
    pub(crate) name: Vec<u8>,
    /// The decoded target path (PAYLOAD).
    pub(crate) target: Vec<u8>,
}

/// Where a target path leads.
enum Found {
    /// A node named by a primary entry.
    Node(NodeId),
    /// Another hard link entry: the index of its fixup.
    Link(usize),
    /// Nothing.
    Missing,
}

/// Looks `target` up from the root. Empty components are skipped (`a//b` is `a/b`, and
/// `/` or an empty path is the root); `.` and `..` are ordinary names that never exist.
/// The path does not pass through hard link entries.
fn lookup(tree: &Tree, by_entry: &[usize], fixups: &[Fixup], target: &[u8]) -> Found {
    let mut at = NodeId::ROOT;
    let mut names = target
        .split(|&b| b == b'/')
        .filter(|c| !c.is_empty())
        .peekable();
    while let Some(name) = names.next() {
        let Some(entry) = tree.get(at).and_then(|n| n.child(name)) else {
            return Found::Missing;
        };
        if !entry.hardlink {
            at = entry.node;
            continue;
        }
        if names.peek().is_some() {
            return Found::Missing;
        }
        let key = (at, name);
        let found = by_entry.binary_search_by(|&i| {
            fixups.get(i).map_or(core::cmp::Ordering::Greater, |f| {
                (f.parent, f.name.as_slice()).cmp(&key)
            })
        });
        return match found.ok().and_then(|k| by_entry.get(k)) {
            Some(&i) => Found::Link(i),
            None => Found::Missing,
        };
    }
    Found::Node(at)
}

/// Points every hard link entry of `tree` at its final target.
///
/// # Errors
/// The first fixup (in line order) whose chain ends nowhere, at itself, in a cycle, or at
/// a directory.
pub(crate) fn resolve(tree: &mut Tree, fixups: &[Fixup]) -> Result<(), ParseError> {
    if fixups.is_empty() {
        return Ok(());
    }
    let mut by_entry: Vec<usize> = (0..fixups.len()).collect();
    by_entry.sort_unstable_by(|&a, &b| {
        let key = |i: usize| fixups.get(i).map(|f| (f.parent, f.name.as_slice()));
        key(a).cmp(&key(b))
    });
    let mut resolved: Vec<Option<NodeId>> = vec![None; fixups.len()];
    // `visit[i] == start + 1` while fixup `i` is on the chain that starts at `start`.
    let mut visit: Vec<usize> = vec![0; fixups.len()];
    let mut chain: Vec<usize> = Vec::new();
    for start in 0..fixups.len() {
        chain.clear();
        let mut at = start;
        let node = loop {
            if let Some(node) = resolved.get(at).copied().flatten() {
                break node;
            }
            let Some(fixup) = fixups.get(at) else {
                break NodeId::ROOT;
            };
            let fail = |kind| Err(ParseError::new(fixup.line, Field::Payload, kind));
            let mark = start.saturating_add(1);
            if visit.get(at) == Some(&mark) {
                return fail(ParseErrorKind::HardlinkCycle {
                    target: fixup.target.clone(),
                });
            }
            if let Some(v) = visit.get_mut(at) {
                *v = mark;
            }
            chain.push(at);
            match lookup(tree, &by_entry, fixups, &fixup.target) {
                Found::Missing => {
                    return fail(ParseErrorKind::HardlinkTargetMissing {
                        target: fixup.target.clone(),
                    })
                }
                Found::Link(next) if next == at => return fail(ParseErrorKind::HardlinkToItself),
                Found::Link(next) => at = next,
                Found::Node(node) => {
                    if tree.get(node).is_some_and(|n| n.is_dir()) {
                        return fail(ParseErrorKind::HardlinkToDirectory {
                            target: fixup.target.clone(),
                        });
                    }
                    break node;
                }
            }
        };
        for &i in &chain {
            if let Some(r) = resolved.get_mut(i) {
                *r = Some(node);
            }
        }
    }
    for (fixup, node) in fixups.iter().zip(resolved) {
        let entry = tree.get_mut(fixup.parent).and_then(|dir| {
            let at = dir
                .children
                .binary_search_by(|e| e.name.cmp(&fixup.name))
                .ok()?;
            dir.children.get_mut(at)
        });
        if let (Some(entry), Some(node)) = (entry, node) {
            entry.node = node;
        }
    }
    Ok(())
}
