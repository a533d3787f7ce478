//! [`Split`]: a byte string made of two borrowed pieces.
//!
//! The writer never copies the tree. The names and values it adds are either borrowed from
//! the tree, static, or a static piece followed by a borrowed one: an escaped key is
//! `trusted.overlay.overlay.` + the rest of the user's key, a redirect is `/` + the
//! payload, a metacopy value is a 4-byte header + the digest. A `Split` holds such a
//! pair and compares, hashes and writes as the concatenation.

use core::cmp::Ordering;

/// The concatenation `head ++ tail` of two borrowed byte strings.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Split<'a> {
    head: &'a [u8],
    tail: &'a [u8],
}

impl<'a> Split<'a> {
    /// One piece.
    pub(super) fn whole(bytes: &'a [u8]) -> Self {
        Self {
            head: bytes,
            tail: &[],
        }
    }

    /// Two pieces.
    pub(super) fn pair(head: &'a [u8], tail: &'a [u8]) -> Self {
        Self { head, tail }
    }

    /// Total length.
    pub(super) fn len(&self) -> usize {
        self.head.len().saturating_add(self.tail.len())
    }

    /// The two pieces.
    pub(super) fn pieces(&self) -> [&'a [u8]; 2] {
        [self.head, self.tail]
    }

    /// Whether the concatenation starts with `prefix`.
    pub(super) fn starts_with(&self, prefix: &[u8]) -> bool {
        match prefix.split_at_checked(self.head.len()) {
            // The prefix reaches into the tail.
            Some((in_head, in_tail)) => in_head == self.head && self.tail.starts_with(in_tail),
            None => self.head.starts_with(prefix),
        }
    }

    /// The concatenation without its first `n` bytes (empty if `n` exceeds the length).
    pub(super) fn skip(&self, n: usize) -> Self {
        match self.head.get(n..) {
            Some(head) => Self {
                head,
                tail: self.tail,
            },
            None => {
                let rest = n.saturating_sub(self.head.len());
                Self::whole(self.tail.get(rest..).unwrap_or(&[]))
            }
        }
    }

    /// The concatenation as one slice: borrowed when one piece is empty, else copied into
    /// `buf`. Returns `None` when it does not fit in `buf`.
    pub(super) fn contiguous<'b>(&self, buf: &'b mut [u8]) -> Option<&'b [u8]>
    where
        'a: 'b,
    {
        if self.tail.is_empty() {
            return Some(self.head);
        }
        if self.head.is_empty() {
            return Some(self.tail);
        }
        let out = buf.get_mut(..self.len())?;
        let (a, b) = out.split_at_mut(self.head.len());
        a.copy_from_slice(self.head);
        b.copy_from_slice(self.tail);
        Some(out)
    }

    /// Byte-wise (unsigned, `memcmp`) order of the concatenations.
    pub(super) fn cmp_bytes(&self, other: &Split<'_>) -> Ordering {
        let (mut a, mut a_next) = (self.head, self.tail);
        let (mut b, mut b_next) = (other.head, other.tail);
        loop {
            if a.is_empty() {
                if a_next.is_empty() {
                    return if b.is_empty() && b_next.is_empty() {
                        Ordering::Equal
                    } else {
                        Ordering::Less
                    };
                }
                a = core::mem::take(&mut a_next);
                continue;
            }
            if b.is_empty() {
                if b_next.is_empty() {
                    return Ordering::Greater;
                }
                b = core::mem::take(&mut b_next);
                continue;
            }
            let n = a.len().min(b.len());
            let (a_now, a_rest) = a.split_at(n);
            let (b_now, b_rest) = b.split_at(n);
            match a_now.cmp(b_now) {
                Ordering::Equal => {
                    a = a_rest;
                    b = b_rest;
                }
                unequal => return unequal,
            }
        }
    }

    /// Whether the concatenations are equal.
    pub(super) fn eq_bytes(&self, other: &Split<'_>) -> bool {
        self.len() == other.len() && self.cmp_bytes(other) == Ordering::Equal
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn cat(s: &Split<'_>) -> Vec<u8> {
        s.pieces().concat()
    }

    #[test]
    fn compares_as_concatenation() {
        let cases: [(&[u8], &[u8]); 7] = [
            (b"", b""),
            (b"a", b""),
            (b"", b"a"),
            (b"ab", b"c"),
            (b"a", b"bc"),
            (b"abc", b"d"),
            (b"\xff", b""),
        ];
        for &(h1, t1) in &cases {
            for &(h2, t2) in &cases {
                let (x, y) = (Split::pair(h1, t1), Split::pair(h2, t2));
                assert_eq!(
                    x.cmp_bytes(&y),
                    cat(&x).cmp(&cat(&y)),
                    "{h1:?}{t1:?} vs {h2:?}{t2:?}"
                );
                assert_eq!(x.eq_bytes(&y), cat(&x) == cat(&y));
            }
        }
    }

    #[test]
    fn prefix_skip_and_contiguous_cross_the_seam() {
        let s = Split::pair(b"trusted.", b"overlay.x");
        assert!(s.starts_with(b"trusted.over"));
        assert!(s.starts_with(b"trus"));
        assert!(!s.starts_with(b"trusted.x"));
        assert!(!s.starts_with(b"trusted.overlay.xy"));
        assert_eq!(cat(&s.skip(3)), b"sted.overlay.x");
        assert_eq!(cat(&s.skip(10)), b"erlay.x");
        assert_eq!(cat(&s.skip(100)), b"");
        let mut buf = [0u8; 32];
        assert_eq!(s.contiguous(&mut buf).unwrap(), b"trusted.overlay.x");
        let mut small = [0u8; 4];
        assert_eq!(s.contiguous(&mut small), None);
    }
}
