//! The xattrs each inode gets (SPEC.md 4.3), and their on-disk encoding (SPEC.md 2.4).
//!
//! Nothing is copied: every name and value is a [`Split`] over the tree's bytes and static
//! strings. Per inode, the list is built as the reference builds it on its copy of the
//! tree: the node's own xattrs with `trusted.overlay.*` escaped, then the overlay xattrs
//! the writer sets (each replacing an existing xattr of the same name), then sorted by
//! name.

use alloc::vec::Vec;
use core::cmp::Ordering;

use super::error::{WriteError, WriteErrorKind};
use super::names::{METACOPY_HEADER, SECURITY_SELINUX};
use super::shared::pair_hash;
use super::split::Split;
use crate::limits::{MAX_XATTR_NAME_LEN, MAX_XATTR_VALUE_LEN};
use crate::ondisk::{
    FileType, XattrEntry, EROFS_XATTR_FILTER_DEFAULT, EROFS_XATTR_FILTER_SEED, XATTR_ENTRY_SIZE,
    XATTR_PREFIXES,
};
use crate::overlay::{
    OPAQUE_ROOT_VALUE, OPAQUE_WHITEOUTS_VALUE, OVERLAY_ESCAPED_PREFIX, OVERLAY_PREFIX,
    XATTR_ESCAPED_OPAQUE, XATTR_ESCAPED_WHITEOUT, XATTR_ESCAPED_WHITEOUTS, XATTR_METACOPY,
    XATTR_OPAQUE, XATTR_REDIRECT, XATTR_USER_OPAQUE, XATTR_USER_WHITEOUT, XATTR_USER_WHITEOUTS,
};
use crate::sink::Sink;
use crate::tree::{Node, NodeId};
use crate::xxh32::xxh32;

/// Marks an xattr stored in the inode rather than referenced from the shared table.
pub(super) const INLINE: u32 = u32::MAX;

/// The static first piece of a name or value the writer builds; the rest is borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Head {
    /// Nothing: the borrowed bytes are the whole name or value.
    None,
    /// `trusted.overlay.overlay.`: an escaped user name.
    Escaped,
    /// `/`: a redirect.
    Slash,
    /// The 4-byte header of a metacopy value with a digest.
    Metacopy,
}

impl Head {
    fn bytes(self) -> &'static [u8] {
        match self {
            Self::None => b"",
            Self::Escaped => OVERLAY_ESCAPED_PREFIX,
            Self::Slash => b"/",
            Self::Metacopy => &METACOPY_HEADER,
        }
    }
}

/// One xattr of one planned inode: name and value, each a static [`Head`] followed by
/// borrowed bytes, and the name's prefix index (40 bytes in all, for the hundreds of
/// thousands an image may have).
#[derive(Debug, Clone, Copy)]
pub(super) struct XattrRef<'t> {
    key_tail: &'t [u8],
    value_tail: &'t [u8],
    /// Index in the shared table when the inode refers to the shared copy, else [`INLINE`].
    pub(super) shared: u32,
    key_head: Head,
    value_head: Head,
    /// The name index (`e_name_index`).
    index: u8,
    /// Length of the name prefix the index stands for.
    prefix_len: u8,
}

impl<'t> XattrRef<'t> {
    /// The xattr `key_head ++ key = value_head ++ value`.
    pub(super) fn new(key_head: Head, key: &'t [u8], value_head: Head, value: &'t [u8]) -> Self {
        let full = Split::pair(key_head.bytes(), key);
        let (index, prefix_len) = XATTR_PREFIXES
            .iter()
            .find(|(_, prefix)| full.starts_with(prefix))
            .map_or((0, 0), |&(index, prefix)| (index, prefix.len()));
        Self {
            key_tail: key,
            value_tail: value,
            shared: INLINE,
            key_head,
            value_head,
            index,
            // Prefixes are at most 24 bytes.
            prefix_len: u8::try_from(prefix_len).unwrap_or_default(),
        }
    }

    /// The full name.
    pub(super) fn key(&self) -> Split<'t> {
        Split::pair(self.key_head.bytes(), self.key_tail)
    }

    /// The value.
    pub(super) fn value(&self) -> Split<'t> {
        Split::pair(self.value_head.bytes(), self.value_tail)
    }

    /// Order of the (name, value) pairs used to find equal pairs: name, then value
    /// length, then value bytes.
    pub(super) fn cmp_pair(&self, other: &Self) -> Ordering {
        self.key()
            .cmp_bytes(&other.key())
            .then_with(|| self.value().len().cmp(&other.value().len()))
            .then_with(|| self.value().cmp_bytes(&other.value()))
    }

    /// The name index and the name suffix stored after it.
    pub(super) fn name_index(&self) -> (u8, Split<'t>) {
        (self.index, self.key().skip(usize::from(self.prefix_len)))
    }

    /// Length of the name suffix.
    fn suffix_len(&self) -> usize {
        self.key()
            .len()
            .saturating_sub(usize::from(self.prefix_len))
    }

    /// Size of the encoded entry: 4-byte header, suffix and value, padded to 4 bytes.
    pub(super) fn entry_size(&self) -> u64 {
        let raw = widen(self.suffix_len()).saturating_add(widen(self.value().len()));
        round_up4(raw.saturating_add(XATTR_ENTRY_SIZE))
    }

    /// Writes the encoded entry.
    pub(super) fn write<S: Sink + ?Sized>(&self, sink: &mut S) -> Result<(), S::Error> {
        let (index, suffix) = self.name_index();
        // Lengths were validated while planning (suffix <= 255, value <= 65535).
        let entry = XattrEntry {
            e_name_len: u8::try_from(suffix.len()).unwrap_or(u8::MAX),
            e_name_index: index,
            e_value_size: u16::try_from(self.value().len()).unwrap_or(u16::MAX).into(),
        };
        sink.write_all(zerocopy::IntoBytes::as_bytes(&entry))?;
        for piece in suffix.pieces().into_iter().chain(self.value().pieces()) {
            sink.write_all(piece)?;
        }
        let raw = widen(suffix.len()).saturating_add(widen(self.value().len()));
        sink.write_zeros(round_up4(raw).saturating_sub(raw))
    }
}

fn widen(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

fn round_up4(n: u64) -> u64 {
    n.saturating_add(3) & !3
}

/// The name filter of an inode: bit `xxh32(suffix, SEED + index) % 32` is cleared for
/// every xattr it has; all other bits stay set.
pub(super) fn name_filter(xattrs: &[XattrRef<'_>]) -> u32 {
    let mut present = 0u32;
    let mut buf = [0u8; MAX_XATTR_NAME_LEN];
    for x in xattrs {
        let (index, suffix) = x.name_index();
        // A suffix is at most 255 bytes (checked while planning), so it always fits.
        let bytes = suffix.contiguous(&mut buf).unwrap_or(&[]);
        let hash = xxh32(
            bytes,
            EROFS_XATTR_FILTER_SEED.wrapping_add(u32::from(index)),
        );
        present |= 1u32 << (hash & 31);
    }
    EROFS_XATTR_FILTER_DEFAULT & !present
}

/// What the writer needs to know about an inode's place in the tree to add its xattrs.
#[derive(Debug, Clone, Copy)]
pub(super) struct Context {
    /// The format version being written.
    pub(super) version: u32,
    /// The inode is the root.
    pub(super) is_root: bool,
    /// The inode is a directory whose primary children include a whiteout.
    pub(super) has_whiteout_child: bool,
}

/// Appends the xattrs of tree node `id` to `out`, sorted by name, and their
/// [`pair_hash`]es to `hashes`; returns the inode's name filter. Everything that needs the
/// bytes of names and values is computed here, while they are in cache.
pub(super) fn collect_node<'t>(
    id: NodeId,
    node: &'t Node,
    cx: Context,
    out: &mut Vec<XattrRef<'t>>,
    hashes: &mut Vec<u64>,
) -> Result<u32, WriteError> {
    let start = out.len();
    for (index, x) in node.xattrs.iter().enumerate() {
        check_xattr(id, index, &x.key, &x.value)?;
        let (head, key) = escaped(&x.key);
        out.push(XattrRef::new(head, key, Head::None, &x.value));
    }
    let mut own = Own { out, start };

    let regular = node.file_type() == Some(FileType::Regular);
    if regular && node.size > 0 && node.content.is_none() {
        match &node.digest {
            Some(digest) => own.set(XATTR_METACOPY, Head::Metacopy, digest),
            None => own.set(XATTR_METACOPY, Head::None, b""),
        }
        if let Some(payload) = node.payload.as_deref().filter(|p| !p.is_empty()) {
            own.set(XATTR_REDIRECT, Head::Slash, payload);
        }
    }
    if node.is_whiteout() {
        own.set(XATTR_ESCAPED_WHITEOUT, Head::None, b"");
        own.set(XATTR_USER_WHITEOUT, Head::None, b"");
    }
    if cx.has_whiteout_child {
        own.set(XATTR_ESCAPED_WHITEOUTS, Head::None, b"");
        own.set(XATTR_USER_WHITEOUTS, Head::None, b"");
        if cx.version >= 1 {
            own.set(XATTR_ESCAPED_OPAQUE, Head::None, OPAQUE_WHITEOUTS_VALUE);
            own.set(XATTR_USER_OPAQUE, Head::None, OPAQUE_WHITEOUTS_VALUE);
        }
    }
    if cx.is_root {
        own.set(XATTR_OPAQUE, Head::None, OPAQUE_ROOT_VALUE);
    }

    let list = out.get_mut(start..).unwrap_or_default();
    list.sort_unstable_by(|a, b| a.key().cmp_bytes(&b.key()));
    if let Some(dup) = list.windows(2).find_map(|w| match w {
        [a, b] if a.key().eq_bytes(&b.key()) => Some(*b),
        _ => None,
    }) {
        // Only the node's own list can hold a duplicate: the writer's names replace.
        let index = node.xattrs.iter().rposition(|x| {
            let (head, rest) = escaped(&x.key);
            Split::pair(head.bytes(), rest).eq_bytes(&dup.key())
        });
        let index = index.unwrap_or_default();
        return Err(WriteError::at(id, WriteErrorKind::XattrDuplicate { index }));
    }
    hashes.extend(list.iter().map(pair_hash));
    Ok(name_filter(list))
}

/// Appends the xattrs of a root stub (the root's SELinux label, if it has one) and their
/// hashes; returns the stub's name filter.
pub(super) fn collect_stub<'t>(
    root: &'t Node,
    out: &mut Vec<XattrRef<'t>>,
    hashes: &mut Vec<u64>,
) -> u32 {
    let Some(label) = root.xattr(SECURITY_SELINUX) else {
        return name_filter(&[]);
    };
    let x = XattrRef::new(Head::None, SECURITY_SELINUX, Head::None, label);
    out.push(x);
    hashes.push(pair_hash(&x));
    name_filter(&[x])
}

/// The xattrs of one node while the writer adds its own: `out[start..]`.
struct Own<'l, 't> {
    out: &'l mut Vec<XattrRef<'t>>,
    start: usize,
}

impl<'t> Own<'_, 't> {
    /// Sets `key` to `head ++ value`, replacing the value of an xattr with that name.
    fn set(&mut self, key: &'static [u8], head: Head, value: &'t [u8]) {
        let name = Split::whole(key);
        let own = self.out.get_mut(self.start..).unwrap_or_default();
        match own.iter_mut().find(|x| x.key().eq_bytes(&name)) {
            Some(x) => {
                x.value_head = head;
                x.value_tail = value;
            }
            None => self.out.push(XattrRef::new(Head::None, key, head, value)),
        }
    }
}

/// A user xattr name as stored: `trusted.overlay.X` becomes `trusted.overlay.overlay.X`,
/// which overlayfs presents as the original name.
fn escaped(key: &[u8]) -> (Head, &[u8]) {
    match key.strip_prefix(OVERLAY_PREFIX) {
        Some(rest) => (Head::Escaped, rest),
        None => (Head::None, key),
    }
}

fn check_xattr(id: NodeId, index: usize, key: &[u8], value: &[u8]) -> Result<(), WriteError> {
    let kind = if key.is_empty() {
        WriteErrorKind::XattrNameEmpty { index }
    } else if key.len() > MAX_XATTR_NAME_LEN {
        WriteErrorKind::XattrNameTooLong {
            index,
            len: key.len(),
        }
    } else if key.contains(&0) {
        WriteErrorKind::XattrNameNul { index }
    } else if value.len() > MAX_XATTR_VALUE_LEN {
        WriteErrorKind::XattrValueTooLong {
            index,
            len: value.len(),
        }
    } else {
        return Ok(());
    };
    Err(WriteError::at(id, kind))
}
