//! The shared xattr table (SPEC.md 4.4): every (name, value) pair used by more than one
//! inode is stored once, after the inodes, and referenced by id.

use alloc::vec;
use alloc::vec::Vec;
use core::cmp::Ordering;

use super::error::{WriteError, WriteErrorKind};
use super::xattrs::XattrRef;
use super::xattrs::INLINE;

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

/// One slot of the counting table: the high half of a pair's hash and the pair's first
/// xattr (or [`EMPTY`]). Eight bytes, so that the table stays small and cache-friendly.
#[derive(Debug, Clone, Copy)]
struct Slot {
    tag: u32,
    first: u32,
}

/// Marks an unused [`Slot`].
const EMPTY: u32 = u32::MAX;

/// Finds the pairs used more than once, lays out the table in descending (name, value
/// length, value) order, and marks every use of a shared pair with its table index in
/// [`XattrRef::shared`]. Whether an inode actually refers to the table is decided later
/// (at most 128 references per inode).
///
/// Equal pairs are counted in an open-addressing table keyed by a 64-bit hash of the bytes;
/// bytes are compared only between pairs with equal hashes. Only the shared pairs are then
/// sorted by their bytes. `hashes[i]` is the [`pair_hash`] of `xattrs[i]`.
pub(super) fn build(
    xattrs: &mut [XattrRef<'_>],
    hashes: &[u64],
) -> Result<SharedTable, WriteError> {
    let too_many = || WriteError::image(WriteErrorKind::ImageTooLarge);
    let count = u32::try_from(xattrs.len()).map_err(|_| too_many())?;
    // At most three quarters full, so probe chains stay short (and always end); small
    // enough to stay in cache.
    let capacity = xattrs
        .len()
        .saturating_add(xattrs.len() / 3)
        .max(16)
        .checked_next_power_of_two();
    let capacity = capacity.ok_or_else(too_many)?;
    let mask = u64::try_from(capacity.saturating_sub(1)).map_err(|_| too_many())?;
    let mut slots = vec![
        Slot {
            tag: 0,
            first: EMPTY
        };
        capacity
    ];
    // For every xattr, the first xattr with the same pair; and how many share it.
    let mut first_of: Vec<u32> = Vec::with_capacity(xattrs.len());
    let mut uses: Vec<u32> = vec![0; xattrs.len()];

    let all: &[XattrRef<'_>] = xattrs;
    if hashes.len() != xattrs.len() {
        return Err(too_many());
    }
    for ((i, x), &h) in (0u32..count).zip(all).zip(hashes) {
        let tag = u32::try_from(h >> 32).unwrap_or_default();
        let mut at = h & mask;
        let mut first = None;
        for _ in 0..capacity {
            let Some(slot) = slots.get_mut(to_usize_u64(at)) else {
                break;
            };
            if slot.first == EMPTY {
                *slot = Slot { tag, first: i };
                first = Some(i);
                break;
            }
            let same = slot.tag == tag
                && all
                    .get(to_usize(slot.first))
                    .is_some_and(|y| y.cmp_pair(x) == Ordering::Equal);
            if same {
                first = Some(slot.first);
                break;
            }
            at = at.wrapping_add(1) & mask;
        }
        let first = first.ok_or_else(too_many)?;
        if let Some(n) = uses.get_mut(to_usize(first)) {
            *n = n.saturating_add(1);
        }
        first_of.push(first);
    }
    drop(slots);

    // The pairs used twice or more, in descending order.
    let mut shared: Vec<u32> = (0u32..)
        .zip(&uses)
        .filter(|(_, &n)| n > 1)
        .map(|(first, _)| first)
        .collect();
    shared.sort_unstable_by(
        |&a, &b| match (all.get(to_usize(a)), all.get(to_usize(b))) {
            (Some(x), Some(y)) => y.cmp_pair(x),
            _ => Ordering::Equal,
        },
    );

    // Reuse `uses` to map a pair's first xattr to its table index.
    uses.fill(INLINE);
    let mut table = SharedTable::default();
    for (index, &first) in (0u32..).zip(&shared) {
        if let Some(slot) = uses.get_mut(to_usize(first)) {
            *slot = index;
        }
        let size = all.get(to_usize(first)).map_or(0, XattrRef::entry_size);
        table.entries.push(SharedEntry {
            xattr: first,
            offset: table.size,
        });
        table.size = table.size.checked_add(size).ok_or_else(too_many)?;
    }
    for (x, &first) in xattrs.iter_mut().zip(&first_of) {
        x.shared = uses.get(to_usize(first)).copied().unwrap_or(INLINE);
    }
    Ok(table)
}

fn to_usize_u64(i: u64) -> usize {
    usize::try_from(i).unwrap_or(usize::MAX)
}

fn to_usize(i: u32) -> usize {
    usize::try_from(i).unwrap_or(usize::MAX)
}

/// A hash of the bytes of name and value, independent of how each is split in pieces.
pub(super) fn pair_hash(x: &XattrRef<'_>) -> u64 {
    let mut h = StreamHash::default();
    for piece in x.key().pieces() {
        h.feed(piece);
    }
    h.end_field();
    for piece in x.value().pieces() {
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
    use super::super::xattrs::Head;
    use super::*;

    fn x<'a>(key: &'a [u8], value: &'a [u8]) -> XattrRef<'a> {
        XattrRef::new(Head::None, key, Head::None, value)
    }

    #[test]
    fn hash_ignores_how_bytes_are_split() {
        let whole = x(b"trusted.overlay.overlay.whiteout", b"/0123456789abcdefXY");
        let split = XattrRef::new(
            Head::Escaped,
            b"whiteout",
            Head::Slash,
            b"0123456789abcdefXY",
        );
        assert_eq!(pair_hash(&whole), pair_hash(&split));
        assert_eq!(whole.cmp_pair(&split), Ordering::Equal);
        let moved = x(b"trusted.overlay.overlay.whiteout/", b"0123456789abcdefXY");
        assert_ne!(pair_hash(&whole), pair_hash(&moved));
    }

    #[test]
    fn table_holds_pairs_used_twice_in_descending_order() {
        // With the real hash, and with every hash colliding.
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
        for hash in [pair_hash, |_: &XattrRef<'_>| 7] {
            let mut xattrs: Vec<XattrRef<'_>> = pairs.iter().map(|&(k, v)| x(k, v)).collect();
            let hashes: Vec<u64> = xattrs.iter().map(hash).collect();
            let table = build(&mut xattrs, &hashes).unwrap();
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
}
