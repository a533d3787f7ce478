//! The shared xattr table (SPEC.md 4.6): every (name, value) pair used by more than one
//! inode is stored once, after the inodes, and referenced by id.

use alloc::vec::Vec;
use core::cmp::Ordering;

use super::error::{WriteError, WriteErrorKind};
use super::xattrs::XattrRef;

/// One entry of the shared table.
#[derive(Debug, Clone, Copy)]
pub(super) struct SharedEntry {
    /// An xattr (in the plan's flat list) holding the pair.
    pub(super) xattr: u32,
    /// Byte offset of the entry from the start of the table.
    pub(super) offset: u64,
}

/// The shared table, in on-disk order.
#[derive(Debug, Default)]
pub(super) struct SharedTable {
    /// Entries in table order.
    pub(super) entries: Vec<SharedEntry>,
    /// Total size in bytes.
    pub(super) size: u64,
}

/// Finds the pairs used more than once, lays out the table in descending (name, value
/// length, value) order, and marks every use of a shared pair with its table index in
/// [`XattrRef::shared`]. Whether an inode actually refers to the table is decided later
/// (at most 128 references per inode).
pub(super) fn build(xattrs: &mut [XattrRef<'_>]) -> Result<SharedTable, WriteError> {
    let too_many = || WriteError::image(WriteErrorKind::ImageTooLarge);
    let count = u32::try_from(xattrs.len()).map_err(|_| too_many())?;
    let mut order: Vec<u32> = (0..count).collect();
    {
        let all: &[XattrRef<'_>] = xattrs;
        let pair = |i: u32| all.get(usize::try_from(i).unwrap_or(usize::MAX));
        order.sort_unstable_by(|&a, &b| match (pair(a), pair(b)) {
            (Some(x), Some(y)) => x.cmp_pair(y),
            _ => Ordering::Equal,
        });
    }

    // Runs of equal pairs, in ascending order; keep those of two or more.
    let mut runs: Vec<&[u32]> = Vec::new();
    let mut rest: &[u32] = &order;
    while let Some(&first) = rest.first() {
        let same = |&i: &u32| match (xattrs.get(to_usize(first)), xattrs.get(to_usize(i))) {
            (Some(x), Some(y)) => x.cmp_pair(y) == Ordering::Equal,
            _ => false,
        };
        let len = rest.iter().take_while(|i| same(i)).count().max(1);
        let (run, after) = rest.split_at_checked(len).unwrap_or((rest, &[]));
        if run.len() > 1 {
            runs.push(run);
        }
        rest = after;
    }

    // The table holds them in descending order.
    let mut table = SharedTable::default();
    for (index, run) in runs.iter().rev().enumerate() {
        let index = u32::try_from(index).map_err(|_| too_many())?;
        let Some(&first) = run.first() else { continue };
        let size = xattrs.get(to_usize(first)).map_or(0, XattrRef::entry_size);
        table.entries.push(SharedEntry {
            xattr: first,
            offset: table.size,
        });
        table.size = table.size.checked_add(size).ok_or_else(too_many)?;
        for &member in *run {
            if let Some(x) = xattrs.get_mut(to_usize(member)) {
                x.shared = index;
            }
        }
    }
    Ok(table)
}

fn to_usize(i: u32) -> usize {
    usize::try_from(i).unwrap_or(usize::MAX)
}
