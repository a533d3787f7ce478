//! The `KEY=VALUE` xattrs after the eleven fields (SPEC.md section 6.4).

use alloc::vec;
use alloc::vec::Vec;

use super::error::ParseErrorKind;
use super::escape::unescape_owned;
use super::find::find_byte;
use crate::limits::{
    MAX_DUMP_XATTR_TEXT, MAX_XATTR_BUDGET, MAX_XATTR_NAME_LEN, MAX_XATTR_VALUE_LEN,
};
use crate::tree::Xattr;

/// Budget cost of the xattr header, paid once by an inode with xattrs.
const HEADER_COST: usize = 12;

/// Budget cost of one xattr besides its key and value.
const ENTRY_COST: usize = 7;

/// Budget cost of one xattr.
fn cost(x: &Xattr) -> usize {
    ENTRY_COST
        .saturating_add(x.key.len())
        .saturating_add(x.value.len())
}

/// Parses the xattr text of a line: space-separated `KEY=VALUE` items, each split at its
/// first `=` and then unescaped. A later item with the same key replaces the value in
/// place. After every item the xattrs set so far must fit the per-inode budget.
///
/// # Errors
/// The text is too long, an item has no `=`, an escape is malformed, a key is empty, too
/// long or holds NUL, a value is too long, or the budget is exceeded.
pub(crate) fn parse_xattrs(text: &[u8]) -> Result<Vec<Xattr>, ParseErrorKind> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    if text.len() > MAX_DUMP_XATTR_TEXT {
        return Err(ParseErrorKind::XattrTextTooLong { len: text.len() });
    }
    let mut items: Vec<Xattr> = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let index = items.len().saturating_add(1);
        let (item, tail) = match find_byte(rest, b' ') {
            Some(at) => (
                rest.get(..at).unwrap_or_default(),
                rest.get(at.saturating_add(1)..),
            ),
            None => (rest, None),
        };
        rest = tail.unwrap_or_default();
        let eq = find_byte(item, b'=').ok_or(ParseErrorKind::XattrMissingEquals { index })?;
        let key =
            unescape_owned(item.get(..eq).unwrap_or_default()).map_err(ParseErrorKind::Escape)?;
        let value = unescape_owned(item.get(eq.saturating_add(1)..).unwrap_or_default())
            .map_err(ParseErrorKind::Escape)?;
        if key.is_empty() {
            return Err(ParseErrorKind::XattrKeyEmpty { index });
        }
        if key.len() > MAX_XATTR_NAME_LEN {
            return Err(ParseErrorKind::XattrKeyTooLong {
                index,
                len: key.len(),
            });
        }
        if key.contains(&0) {
            return Err(ParseErrorKind::XattrKeyNul { index });
        }
        if value.len() > MAX_XATTR_VALUE_LEN {
            return Err(ParseErrorKind::XattrValueTooLong {
                index,
                len: value.len(),
            });
        }
        items.push(Xattr { key, value });
    }
    merge(items)
}

/// Applies the items in order (last value wins, first position kept), checking the budget
/// after each one. O(n log n) in the number of items.
fn merge(items: Vec<Xattr>) -> Result<Vec<Xattr>, ParseErrorKind> {
    // earlier[i]: the previous item with the same key.
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by(|&a, &b| {
        let key = |i: usize| items.get(i).map(|x| x.key.as_slice());
        key(a).cmp(&key(b)).then(a.cmp(&b))
    });
    let mut earlier: Vec<Option<usize>> = vec![None; items.len()];
    for pair in order.windows(2) {
        if let [a, b] = *pair {
            let same = items.get(a).map(|x| &x.key) == items.get(b).map(|x| &x.key);
            if let (true, Some(slot)) = (same, earlier.get_mut(b)) {
                *slot = Some(a);
            }
        }
    }
    let mut used = 0usize;
    // slot[i]: position of item i's key in the result.
    let mut slot: Vec<usize> = Vec::with_capacity(items.len());
    let mut distinct = 0usize;
    for (i, (x, before)) in items.iter().zip(&earlier).enumerate() {
        match before {
            Some(b) => {
                used = used.saturating_sub(items.get(*b).map_or(0, cost));
                slot.push(slot.get(*b).copied().unwrap_or(0));
            }
            None => {
                slot.push(distinct);
                distinct = distinct.saturating_add(1);
            }
        }
        used = used.saturating_add(cost(x));
        let needed = used.saturating_add(HEADER_COST);
        if needed > MAX_XATTR_BUDGET {
            return Err(ParseErrorKind::XattrBudget {
                index: i.saturating_add(1),
                needed,
            });
        }
    }
    let mut out: Vec<Xattr> = Vec::with_capacity(distinct);
    for (x, (&at, before)) in items.into_iter().zip(slot.iter().zip(&earlier)) {
        match (before, out.get_mut(at)) {
            (Some(_), Some(existing)) => existing.value = x.value,
            _ => out.push(x),
        }
    }
    Ok(out)
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]
mod tests {
    use super::*;
    use alloc::vec;
    use ParseErrorKind as K;

    fn x(k: &[u8], v: &[u8]) -> Xattr {
        Xattr {
            key: k.to_vec(),
            value: v.to_vec(),
        }
    }

    #[test]
    fn items_split_at_the_first_equals_and_unescape() {
        assert_eq!(parse_xattrs(b""), Ok(vec![]));
        assert_eq!(
            parse_xattrs(b"user.a=1 trusted.b\\x3dc=d=e security.x= user.\\x20=\\n"),
            Ok(vec![
                x(b"user.a", b"1"),
                x(b"trusted.b=c", b"d=e"),
                x(b"security.x", b""),
                x(b"user. ", b"\n"),
            ])
        );
        // A single trailing space ends the list; a double space is an empty item.
        assert_eq!(parse_xattrs(b"user.a=1 "), Ok(vec![x(b"user.a", b"1")]));
        assert_eq!(
            parse_xattrs(b"user.a=1  user.b=2"),
            Err(K::XattrMissingEquals { index: 2 })
        );
        // `user.` with an empty name is accepted, as by the reference.
        assert_eq!(parse_xattrs(b"user.=x"), Ok(vec![x(b"user.", b"x")]));
    }

    #[test]
    fn malformed_items_are_rejected_with_their_position() {
        let long_key = [b'k'; 256];
        let mut text = b"user.a=1 ".to_vec();
        text.extend_from_slice(&long_key);
        text.extend_from_slice(b"=v");
        let table: Vec<(Vec<u8>, K)> = vec![
            (b"novalue".to_vec(), K::XattrMissingEquals { index: 1 }),
            (b"=somevalue".to_vec(), K::XattrKeyEmpty { index: 1 }),
            (b"user.a=1 \\x00=v".to_vec(), K::XattrKeyNul { index: 2 }),
            (
                b"us\\er.a=1".to_vec(),
                K::Escape(super::super::escape::EscapeError::Unknown(b'e')),
            ),
            (text, K::XattrKeyTooLong { index: 2, len: 256 }),
            (vec![b'a'; 65536], K::XattrTextTooLong { len: 65536 }),
        ];
        for (text, want) in table {
            assert_eq!(parse_xattrs(&text), Err(want));
        }
        assert_eq!(
            parse_xattrs(&[b'k'; 255].iter().chain(b"=v").copied().collect::<Vec<_>>())
                .map(|v| v.len()),
            Ok(1)
        );
    }

    #[test]
    fn duplicates_replace_in_place_and_the_budget_follows_the_live_set() {
        assert_eq!(
            parse_xattrs(b"user.a=1 user.b=2 user.a=3"),
            Ok(vec![x(b"user.a", b"3"), x(b"user.b", b"2")])
        );
        // 12 + 7 + len("user.a") + value: exactly 32767 fits, one more byte does not.
        let fits = 32767 - 12 - 7 - 6;
        let line = |n: usize| [&b"user.a="[..], &vec![b'v'; n]].concat();
        assert_eq!(
            parse_xattrs(&line(fits)).map(|v| v[0].value.len()),
            Ok(fits)
        );
        assert_eq!(
            parse_xattrs(&line(fits + 1)),
            Err(K::XattrBudget {
                index: 1,
                needed: 32768
            })
        );
        // Replacing a value frees its old cost first.
        let mut text = line(fits);
        text.extend_from_slice(b" ");
        text.extend_from_slice(&line(fits));
        assert_eq!(parse_xattrs(&text).map(|v| v.len()), Ok(1));
        let mut text = line(fits);
        text.extend_from_slice(b" user.b=");
        assert_eq!(
            parse_xattrs(&text),
            Err(K::XattrBudget {
                index: 2,
                needed: 32767 + 13
            })
        );
    }
}
