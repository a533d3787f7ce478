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

/// One xattr of one planned inode.
#[derive(Debug, Clone, Copy)]
pub(super) struct XattrRef<'t> {
    /// Full name.
    pub(super) key: Split<'t>,
    /// Value.
    pub(super) value: Split<'t>,
    /// Index in the shared table when the inode refers to the shared copy, else [`INLINE`].
    pub(super) shared: u32,
}

impl<'t> XattrRef<'t> {
    fn new(key: Split<'t>, value: Split<'t>) -> Self {
        Self {
            key,
            value,
            shared: INLINE,
        }
    }

    /// Order of the (name, value) pairs used to find equal pairs: name, then value
    /// length, then value bytes.
    pub(super) fn cmp_pair(&self, other: &Self) -> Ordering {
        self.key
            .cmp_bytes(&other.key)
            .then_with(|| self.value.len().cmp(&other.value.len()))
            .then_with(|| self.value.cmp_bytes(&other.value))
    }

    /// The name index and the name suffix stored after it.
    pub(super) fn name_index(&self) -> (u8, Split<'t>) {
        for (index, prefix) in XATTR_PREFIXES {
            if self.key.starts_with(prefix) {
                return (index, self.key.skip(prefix.len()));
            }
        }
        (0, self.key)
    }

    /// Size of the encoded entry: 4-byte header, suffix and value, padded to 4 bytes.
    pub(super) fn entry_size(&self) -> u64 {
        let (_, suffix) = self.name_index();
        let raw = widen(suffix.len()).saturating_add(widen(self.value.len()));
        round_up4(raw.saturating_add(XATTR_ENTRY_SIZE))
    }

    /// Writes the encoded entry.
    pub(super) fn write<S: Sink + ?Sized>(&self, sink: &mut S) -> Result<(), S::Error> {
        let (index, suffix) = self.name_index();
        // Lengths were validated while planning (suffix <= 255, value <= 65535).
        let entry = XattrEntry {
            e_name_len: u8::try_from(suffix.len()).unwrap_or(u8::MAX),
            e_name_index: index,
            e_value_size: u16::try_from(self.value.len()).unwrap_or(u16::MAX).into(),
        };
        sink.write_all(zerocopy::IntoBytes::as_bytes(&entry))?;
        for piece in suffix.pieces().into_iter().chain(self.value.pieces()) {
            sink.write_all(piece)?;
        }
        let raw = widen(suffix.len()).saturating_add(widen(self.value.len()));
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

/// Appends the xattrs of tree node `id` to `out`, sorted by name.
pub(super) fn collect_node<'t>(
    id: NodeId,
    node: &'t Node,
    cx: Context,
    out: &mut Vec<XattrRef<'t>>,
) -> Result<(), WriteError> {
    let start = out.len();
    for (index, x) in node.xattrs.iter().enumerate() {
        check_xattr(id, index, &x.key, &x.value)?;
        out.push(XattrRef::new(escaped(&x.key), Split::whole(&x.value)));
    }
    let own = out.get_mut(start..).unwrap_or_default();
    let mut own = Own {
        list: own,
        extra: Vec::new(),
    };

    let regular = node.file_type() == Some(FileType::Regular);
    if regular && node.size > 0 && node.content.is_none() {
        let metacopy = match &node.digest {
            Some(digest) => Split::pair(&METACOPY_HEADER, digest),
            None => Split::default(),
        };
        own.set(XATTR_METACOPY, metacopy);
        if let Some(payload) = node.payload.as_deref().filter(|p| !p.is_empty()) {
            own.set(XATTR_REDIRECT, Split::pair(b"/", payload));
        }
    }
    if node.is_whiteout() {
        own.set(XATTR_ESCAPED_WHITEOUT, Split::default());
        own.set(XATTR_USER_WHITEOUT, Split::default());
    }
    if cx.has_whiteout_child {
        own.set(XATTR_ESCAPED_WHITEOUTS, Split::default());
        own.set(XATTR_USER_WHITEOUTS, Split::default());
        if cx.version >= 1 {
            own.set(XATTR_ESCAPED_OPAQUE, Split::whole(OPAQUE_WHITEOUTS_VALUE));
            own.set(XATTR_USER_OPAQUE, Split::whole(OPAQUE_WHITEOUTS_VALUE));
        }
    }
    if cx.is_root {
        own.set(XATTR_OPAQUE, Split::whole(OPAQUE_ROOT_VALUE));
    }
    let extra = own.extra;
    out.extend(extra);

    let list = out.get_mut(start..).unwrap_or_default();
    list.sort_unstable_by(|a, b| a.key.cmp_bytes(&b.key));
    if let Some(dup) = list.windows(2).find_map(|w| match w {
        [a, b] if a.key.eq_bytes(&b.key) => Some(*b),
        _ => None,
    }) {
        // Only the node's own list can hold a duplicate: the writer's names replace.
        let index = node
            .xattrs
            .iter()
            .rposition(|x| escaped(&x.key).eq_bytes(&dup.key));
        let index = index.unwrap_or_default();
        return Err(WriteError::at(id, WriteErrorKind::XattrDuplicate { index }));
    }
    Ok(())
}

/// Appends the xattrs of a root stub: the root's SELinux label, if it has one.
pub(super) fn collect_stub<'t>(root: &'t Node, out: &mut Vec<XattrRef<'t>>) {
    if let Some(label) = root.xattr(SECURITY_SELINUX) {
        out.push(XattrRef::new(
            Split::whole(SECURITY_SELINUX),
            Split::whole(label),
        ));
    }
}

/// The xattrs of one node while the writer adds its own: the node's (escaped) list, and
/// the new names.
struct Own<'l, 't> {
    list: &'l mut [XattrRef<'t>],
    extra: Vec<XattrRef<'t>>,
}

impl<'t> Own<'_, 't> {
    /// Sets `key` to `value`, replacing the value of an xattr with that name.
    fn set(&mut self, key: &'static [u8], value: Split<'t>) {
        let key = Split::whole(key);
        let existing = self
            .list
            .iter_mut()
            .chain(self.extra.iter_mut())
            .find(|x| x.key.eq_bytes(&key));
        match existing {
            Some(x) => x.value = value,
            None => self.extra.push(XattrRef::new(key, value)),
        }
    }
}

/// A user xattr name as stored: `trusted.overlay.X` becomes `trusted.overlay.overlay.X`,
/// which overlayfs presents as the original name.
fn escaped(key: &[u8]) -> Split<'_> {
    match key.strip_prefix(OVERLAY_PREFIX) {
        Some(rest) => Split::pair(OVERLAY_ESCAPED_PREFIX, rest),
        None => Split::whole(key),
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
