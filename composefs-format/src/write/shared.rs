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
///
/// Equal pairs are found by sorting on a 64-bit hash first (comparing bytes only within
/// equal hashes), so the cost is one pass over the bytes plus an integer sort; only the
/// shared pairs are then sorted by their bytes.
pub(super) fn build(xattrs: &mut [XattrRef<'_>]) -> Result<SharedTable, WriteError> {
    let too_many = || WriteError::image(WriteErrorKind::ImageTooLarge);
    let count = u32::try_from(xattrs.len()).map_err(|_| too_many())?;
    let all: &[XattrRef<'_>] = xattrs;
    let get = |i: u32| all.get(to_usize(i));
    let mut order: Vec<(u64, u32)> = (0..count)
        .zip(all)
        .map(|(i, x)| (pair_hash(x), i))
        .collect();
    order.sort_unstable_by(|a, b| {
        a.0.cmp(&b.0).then_with(|| match (get(a.1), get(b.1)) {
            (Some(x), Some(y)) => x.cmp_pair(y),
            _ => Ordering::Equal,
        })
    });

    // Runs of equal pairs; keep those of two or more.
    let mut runs: Vec<&[(u64, u32)]> = Vec::new();
    let mut rest: &[(u64, u32)] = &order;
    while let Some(&(hash, first)) = rest.first() {
        let same = |&(h, i): &(u64, u32)| {
            h == hash
                && match (get(first), get(i)) {
                    (Some(x), Some(y)) => x.cmp_pair(y) == Ordering::Equal,
                    _ => false,
                }
        };
        let len = rest.iter().take_while(|e| same(e)).count().max(1);
        let (run, after) = rest.split_at_checked(len).unwrap_or((rest, &[]));
        if run.len() > 1 {
            runs.push(run);
        }
        rest = after;
    }
    // The table holds them in descending order.
    let first_of = |run: &[(u64, u32)]| run.first().and_then(|&(_, i)| get(i));
    runs.sort_unstable_by(|a, b| match (first_of(a), first_of(b)) {
        (Some(x), Some(y)) => y.cmp_pair(x),
        _ => Ordering::Equal,
    });

    let mut table = SharedTable::default();
    let mut members: Vec<(u32, u32)> = Vec::new();
    for (index, run) in (0u32..).zip(&runs) {
        let Some(&(_, first)) = run.first() else {
            continue;
        };
        let size = get(first).map_or(0, XattrRef::entry_size);
        table.entries.push(SharedEntry {
            xattr: first,
            offset: table.size,
        });
        table.size = table.size.checked_add(size).ok_or_else(too_many)?;
        members.extend(run.iter().map(|&(_, i)| (i, index)));
    }
    if u32::try_from(runs.len()).is_err() {
        return Err(too_many());
    }
    for (member, index) in members {
        if let Some(x) = xattrs.get_mut(to_usize(member)) {
            x.shared = index;
        }
    }
    Ok(table)
}

fn to_usize(i: u32) -> usize {
    usize::try_from(i).unwrap_or(usize::MAX)
}

/// A hash of the bytes of name and value, independent of how each is split in pieces.
fn pair_hash(x: &XattrRef<'_>) -> u64 {
    let mut h = StreamHash::default();
    for piece in x.key.pieces() {
        h.feed(piece);
    }
    h.end_field();
    for piece in x.value.pieces() {
        h.feed(piece);
    }
    h.end_field();
    h.state
}

/// A fast non-cryptographic hash over a byte stream, 8 bytes at a time.
#[derive(Debug, Default)]
struct StreamHash {
    state: u64,
    word: u64,
    filled: u32,
    len: u64,
}

impl StreamHash {
    fn mix(&mut self, word: u64) {
        self.state = (self.state ^ word)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .rotate_left(31);
    }

    fn push_byte(&mut self, byte: u8) {
        self.word |= u64::from(byte) << (self.filled.wrapping_mul(8) & 63);
        self.filled = self.filled.wrapping_add(1);
        if self.filled == 8 {
            let word = core::mem::take(&mut self.word);
            self.mix(word);
            self.filled = 0;
        }
    }

    fn feed(&mut self, bytes: &[u8]) {
        self.len = self
            .len
            .wrapping_add(u64::try_from(bytes.len()).unwrap_or(0));
        let mut rest = bytes;
        while self.filled != 0 {
            let Some((&byte, tail)) = rest.split_first() else {
                return;
            };
            self.push_byte(byte);
            rest = tail;
        }
        let mut words = rest.chunks_exact(8);
        for word in &mut words {
            let mut le = [0u8; 8];
            le.copy_from_slice(word);
            self.mix(u64::from_le_bytes(le));
        }
        for &byte in words.remainder() {
            self.push_byte(byte);
        }
    }

    /// Ends one field, so that moving bytes between name and value changes the hash.
    fn end_field(&mut self) {
        let word = core::mem::take(&mut self.word);
        self.mix(word);
        let len = core::mem::take(&mut self.len);
        self.mix(len);
        self.filled = 0;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::super::split::Split;
    use super::*;

    fn x<'a>(key: Split<'a>, value: Split<'a>) -> XattrRef<'a> {
        XattrRef {
            key,
            value,
            shared: super::super::xattrs::INLINE,
        }
    }

    #[test]
    fn hash_ignores_how_bytes_are_split() {
        let whole = x(
            Split::whole(b"trusted.overlay.overlay.whiteout"),
            Split::whole(b"0123456789abcdefXY"),
        );
        let split = x(
            Split::pair(b"trusted.overlay.", b"overlay.whiteout"),
            Split::pair(b"0123456789a", b"bcdefXY"),
        );
        assert_eq!(pair_hash(&whole), pair_hash(&split));
        let moved = x(
            Split::whole(b"trusted.overlay.overlay.whiteout0"),
            Split::whole(b"123456789abcdefXY"),
        );
        assert_ne!(pair_hash(&whole), pair_hash(&moved));
    }

    #[test]
    fn table_holds_pairs_used_twice_in_descending_order() {
        // user.b=1 twice, user.a=zz, user.a=y, user.a=x each twice, user.c=q once.
        let pairs: [(&[u8], &[u8]); 9] = [
            (b"user.a", b"x"),
            (b"user.a", b"y"),
            (b"user.b", b"1"),
            (b"user.a", b"zz"),
            (b"user.c", b"q"),
            (b"user.a", b"zz"),
            (b"user.b", b"1"),
            (b"user.a", b"y"),
            (b"user.a", b"x"),
        ];
        let mut xattrs: Vec<XattrRef<'_>> = pairs
            .iter()
            .map(|&(k, v)| x(Split::whole(k), Split::whole(v)))
            .collect();
        let table = build(&mut xattrs).unwrap();
        let order: Vec<(&[u8], &[u8])> = table
            .entries
            .iter()
            .map(|e| pairs[usize::try_from(e.xattr).unwrap()])
            .collect();
        assert_eq!(
            order,
            [
                (&b"user.b"[..], &b"1"[..]),
                (b"user.a", b"zz"),
                (b"user.a", b"y"),
                (b"user.a", b"x")
            ]
        );
        // Entry sizes: 4 + suffix + value, padded to 4.
        let offsets: Vec<u64> = table.entries.iter().map(|e| e.offset).collect();
        assert_eq!(offsets, [0, 8, 16, 24]);
        assert_eq!(table.size, 32);
        assert_eq!(xattrs[4].shared, super::super::xattrs::INLINE);
        assert_eq!(xattrs[2].shared, 0);
        assert_eq!(xattrs[0].shared, 3);
    }
}
