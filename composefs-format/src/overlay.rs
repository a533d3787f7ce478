//! What the overlay xattrs mean in a composefs image: metacopy digests, redirect payloads,
//! and the escaped and internal overlay names (SPEC.md 2.6, 3.5).

use crate::error::{Error, ErrorKind, Result};
use crate::inode::Inode;
use crate::ondisk::{OVL_METACOPY_DIGEST_SHA256, OVL_METACOPY_SIZE};
use crate::xattr::Xattr;

/// Prefix of every overlay xattr the kernel overlayfs interprets.
pub const OVERLAY_PREFIX: &[u8] = b"trusted.overlay.";
/// Prefix of an escaped user xattr: `trusted.overlay.X` is stored as
/// `trusted.overlay.overlay.X`, and overlayfs shows it unescaped.
pub const OVERLAY_ESCAPED_PREFIX: &[u8] = b"trusted.overlay.overlay.";
/// Marks an external regular file; the value is empty or carries the digest.
pub const XATTR_METACOPY: &[u8] = b"trusted.overlay.metacopy";
/// `/` + the backing path of an external regular file in the object store.
pub const XATTR_REDIRECT: &[u8] = b"trusted.overlay.redirect";
/// Set to `y` on the root directory.
pub const XATTR_OPAQUE: &[u8] = b"trusted.overlay.opaque";
/// Escaped whiteout marker on a regular file standing for a character device 0:0.
pub const XATTR_ESCAPED_WHITEOUT: &[u8] = b"trusted.overlay.overlay.whiteout";
/// Escaped marker on a directory holding whiteouts.
pub const XATTR_ESCAPED_WHITEOUTS: &[u8] = b"trusted.overlay.overlay.whiteouts";
/// Escaped opaque marker (`x`) on a directory holding whiteouts (format version 1).
pub const XATTR_ESCAPED_OPAQUE: &[u8] = b"trusted.overlay.overlay.opaque";
/// User-namespace whiteout marker, written next to the escaped one.
pub const XATTR_USER_WHITEOUT: &[u8] = b"user.overlay.whiteout";
/// User-namespace marker of a directory holding whiteouts.
pub const XATTR_USER_WHITEOUTS: &[u8] = b"user.overlay.whiteouts";
/// User-namespace opaque marker (format version 1).
pub const XATTR_USER_OPAQUE: &[u8] = b"user.overlay.opaque";
/// Value of [`XATTR_OPAQUE`] on the root.
pub const OPAQUE_ROOT_VALUE: &[u8] = b"y";
/// Value of the escaped and user opaque markers.
pub const OPAQUE_WHITEOUTS_VALUE: &[u8] = b"x";

/// The overlay metacopy state of an inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metacopy {
    /// No metacopy xattr.
    None,
    /// A metacopy xattr with an empty value: external file, digest unknown.
    NoDigest,
    /// A metacopy xattr with the SHA-256 fs-verity digest of the backing object.
    Digest([u8; 32]),
}

/// Decodes a metacopy value: empty, or exactly `00 24 00 01` followed by a 32-byte digest.
///
/// # Errors
/// [`ErrorKind::Metacopy`] for any other value.
pub fn parse_metacopy(value: &[u8]) -> core::result::Result<Metacopy, ErrorKind> {
    if value.is_empty() {
        return Ok(Metacopy::NoDigest);
    }
    let bad = ErrorKind::Metacopy {
        len: value.len() as u64,
    };
    if value.len() != OVL_METACOPY_SIZE {
        return Err(bad);
    }
    let (head, digest) = value.split_at(4);
    if head != [0, 0x24, 0, OVL_METACOPY_DIGEST_SHA256] {
        return Err(bad);
    }
    let digest: [u8; 32] = digest.try_into().map_err(|_| bad)?;
    Ok(Metacopy::Digest(digest))
}

/// Validates a redirect value and returns its payload (the value without the leading
/// `/`): a relative path of components separated by single `/`, none empty, `.` or `..`.
///
/// # Errors
/// [`ErrorKind::Redirect`] naming the first offending byte.
pub fn parse_redirect(value: &[u8]) -> core::result::Result<&[u8], ErrorKind> {
    let Some(payload) = value.strip_prefix(b"/") else {
        return Err(ErrorKind::Redirect { at: 0 });
    };
    let mut at = 1u64;
    for component in payload.split(|&b| b == b'/') {
        if component.is_empty() || component == b"." || component == b".." || component.contains(&0)
        {
            return Err(ErrorKind::Redirect { at });
        }
        at = at.saturating_add(component.len() as u64).saturating_add(1);
    }
    Ok(payload)
}

/// For an escaped user xattr `trusted.overlay.overlay.X`, the `X`: prefixing it with
/// [`OVERLAY_PREFIX`] gives the name the user set (`trusted.overlay.X`).
#[must_use]
pub fn escaped_suffix<'a>(x: &Xattr<'a>) -> Option<&'a [u8]> {
    if x.name_starts_with(OVERLAY_ESCAPED_PREFIX) {
        let skip = OVERLAY_ESCAPED_PREFIX
            .len()
            .saturating_sub(x.prefix().len());
        x.suffix().get(skip..)
    } else {
        None
    }
}

/// Whether `x` is an unescaped overlay xattr (`trusted.overlay.*` but not
/// `trusted.overlay.overlay.*`): one the writer adds and overlayfs interprets.
#[must_use]
pub fn is_internal(x: &Xattr<'_>) -> bool {
    x.name_starts_with(OVERLAY_PREFIX) && !x.name_starts_with(OVERLAY_ESCAPED_PREFIX)
}

impl<'a> Inode<'a> {
    /// The overlay metacopy state.
    ///
    /// # Errors
    /// A malformed xattr area or metacopy value.
    pub fn metacopy(&self) -> Result<Metacopy> {
        match self.xattrs()?.find(XATTR_METACOPY)? {
            None => Ok(Metacopy::None),
            Some(x) => parse_metacopy(x.value())
                .map_err(|k| Error::at_nid(k, self.nid()).with_offset(x.offset())),
        }
    }

    /// The redirect payload (the backing path in the object store), if any.
    ///
    /// # Errors
    /// A malformed xattr area or redirect value.
    pub fn redirect(&self) -> Result<Option<&'a [u8]>> {
        match self.xattrs()?.find(XATTR_REDIRECT)? {
            None => Ok(None),
            Some(x) => parse_redirect(x.value())
                .map(Some)
                .map_err(|k| Error::at_nid(k, self.nid()).with_offset(x.offset())),
        }
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation
)]
mod tests {
    use super::*;

    #[test]
    fn metacopy_values() {
        assert_eq!(parse_metacopy(b""), Ok(Metacopy::NoDigest));
        let mut v = [7u8; 36];
        v[..4].copy_from_slice(&[0, 36, 0, 1]);
        assert_eq!(parse_metacopy(&v), Ok(Metacopy::Digest([7; 32])));
        v[3] = 2;
        assert_eq!(parse_metacopy(&v), Err(ErrorKind::Metacopy { len: 36 }));
        assert_eq!(
            parse_metacopy(&v[..35]),
            Err(ErrorKind::Metacopy { len: 35 })
        );
    }

    #[test]
    fn redirect_values() {
        assert_eq!(parse_redirect(b"/ab/cdef"), Ok(&b"ab/cdef"[..]));
        assert_eq!(parse_redirect(b"/12/3456.file"), Ok(&b"12/3456.file"[..]));
        assert_eq!(parse_redirect(b"ab"), Err(ErrorKind::Redirect { at: 0 }));
        assert_eq!(parse_redirect(b"/"), Err(ErrorKind::Redirect { at: 1 }));
        assert_eq!(parse_redirect(b"//a"), Err(ErrorKind::Redirect { at: 1 }));
        assert_eq!(parse_redirect(b"/a//b"), Err(ErrorKind::Redirect { at: 3 }));
        assert_eq!(parse_redirect(b"/a/"), Err(ErrorKind::Redirect { at: 3 }));
        assert_eq!(
            parse_redirect(b"/../../etc/passwd"),
            Err(ErrorKind::Redirect { at: 1 })
        );
        assert_eq!(
            parse_redirect(b"/a/./b"),
            Err(ErrorKind::Redirect { at: 3 })
        );
        assert_eq!(parse_redirect(b"/a\0"), Err(ErrorKind::Redirect { at: 1 }));
    }
}
