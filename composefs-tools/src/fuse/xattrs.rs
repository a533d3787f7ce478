//! The xattrs a user sees, as overlayfs shows them for a composefs mount.
//!
//! Overlayfs hides every `trusted.overlay.*` xattr of its layers (those are its own
//! metadata: metacopy, redirect, the root's opaque flag) except escaped ones: a stored
//! `trusted.overlay.overlay.X` is shown as `trusted.overlay.X`. The whiteout markers a
//! composefs writer stores escaped therefore show up unescaped, as "xwhiteouts" for a
//! further overlay stacked on the mount, exactly as on a kernel mount. `user.overlay.*`
//! xattrs are shown as stored. With `noacl`, POSIX ACL xattrs are hidden too.

use composefs_format::inode::Inode;
use composefs_format::overlay::{escaped_suffix, is_internal, OVERLAY_PREFIX};
use composefs_format::xattr::Xattr;
use composefs_format::Error;

/// Name of the POSIX access ACL xattr.
const ACL_ACCESS: &[u8] = b"system.posix_acl_access";
/// Name of the POSIX default ACL xattr.
const ACL_DEFAULT: &[u8] = b"system.posix_acl_default";
/// The namespace only privileged callers may read or list.
const TRUSTED_PREFIX: &[u8] = b"trusted.";

/// Which xattrs to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XattrView {
    /// Hide POSIX ACL xattrs (`noacl`).
    pub noacl: bool,
    /// List `trusted.*` names. The kernel lists them only to callers with
    /// `CAP_SYS_ADMIN`; FUSE cannot see capabilities, so the server lists them to uid 0.
    pub list_trusted: bool,
}

impl XattrView {
    /// The name under which a stored xattr is shown, or `None` when it is hidden.
    fn visible(&self, x: &Xattr<'_>) -> Option<Vec<u8>> {
        let name = if let Some(suffix) = escaped_suffix(x) {
            [OVERLAY_PREFIX, suffix].concat()
        } else if is_internal(x) {
            return None;
        } else {
            [x.prefix(), x.suffix()].concat()
        };
        let hidden = (self.noacl && (name == ACL_ACCESS || name == ACL_DEFAULT))
            || (!self.list_trusted && name.starts_with(TRUSTED_PREFIX));
        (!hidden).then_some(name)
    }

    /// Every visible name, each followed by a NUL, as `listxattr(2)` returns them.
    ///
    /// # Errors
    /// A malformed xattr area.
    pub fn list(&self, inode: &Inode<'_>) -> Result<Vec<u8>, Error> {
        let mut out = Vec::new();
        for x in inode.xattrs()?.iter() {
            if let Some(name) = self.visible(&x?) {
                out.extend_from_slice(&name);
                out.push(0);
            }
        }
        Ok(out)
    }

    /// The value of the xattr shown as `name`, or `None` when there is none (or it is
    /// hidden).
    ///
    /// # Errors
    /// A malformed xattr area.
    pub fn get<'a>(&self, inode: &Inode<'a>, name: &[u8]) -> Result<Option<&'a [u8]>, Error> {
        if self.noacl && (name == ACL_ACCESS || name == ACL_DEFAULT) {
            return Ok(None);
        }
        // A visible `trusted.overlay.X` is stored escaped; nothing else is renamed.
        let stored = match name.strip_prefix(OVERLAY_PREFIX) {
            Some(rest) => [OVERLAY_PREFIX, b"overlay.", rest].concat(),
            None => name.to_vec(),
        };
        Ok(inode.xattrs()?.find(&stored)?.map(|x| x.value()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use composefs_conformance::read_data;
    use composefs_format::image::Image;

    const ROOT: XattrView = XattrView {
        noacl: false,
        list_trusted: true,
    };

    fn names(list: &[u8]) -> Vec<String> {
        list.split(|&b| b == 0)
            .filter(|n| !n.is_empty())
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .collect()
    }

    fn listed(img: &[u8], path: &str, view: XattrView) -> Vec<String> {
        let image = Image::open(img).unwrap_or_else(|e| panic!("{e}"));
        let inode = image
            .lookup_path(path.as_bytes())
            .unwrap_or_else(|e| panic!("{e}"));
        let mut n = names(&view.list(&inode).unwrap_or_else(|e| panic!("{e}")));
        n.sort();
        n
    }

    fn got(img: &[u8], path: &str, view: XattrView, name: &str) -> Option<Vec<u8>> {
        let image = Image::open(img).unwrap_or_else(|e| panic!("{e}"));
        let inode = image
            .lookup_path(path.as_bytes())
            .unwrap_or_else(|e| panic!("{e}"));
        view.get(&inode, name.as_bytes())
            .unwrap_or_else(|e| panic!("{e}"))
            .map(<[u8]>::to_vec)
    }

    /// The names a kernel overlay mount of `special_v1` lists (a v1 image whose root
    /// holds a whiteout): escaped names unescaped, the root's `opaque=y` hidden.
    #[test]
    fn escaped_names_are_unescaped_and_internal_ones_hidden() {
        let img = read_data("images/special_v1.img.gz");
        assert_eq!(
            listed(&img, "/", ROOT),
            [
                "trusted.foo1",
                "trusted.overlay.opaque",
                "trusted.overlay.whiteouts",
                "user.foo2",
                "user.overlay.opaque",
                "user.overlay.whiteouts",
            ]
        );
        assert_eq!(
            got(&img, "/", ROOT, "trusted.overlay.opaque").as_deref(),
            Some(&b"x"[..])
        );
        assert_eq!(
            listed(&img, "/whiteout", ROOT),
            [
                "trusted.foo",
                "trusted.overlay.whiteout",
                "user.overlay.whiteout"
            ]
        );
        assert_eq!(
            listed(&img, "/escaped-xattr", ROOT),
            [
                "trusted.overlay.redirect",
                "user.foo",
                "user.overlay.redirect"
            ]
        );
        assert_eq!(
            got(&img, "/escaped-xattr", ROOT, "trusted.overlay.redirect").as_deref(),
            Some(&b"/foo\n"[..])
        );
        // The stored (escaped) name is not visible under its own name.
        assert_eq!(
            got(
                &img,
                "/escaped-xattr",
                ROOT,
                "trusted.overlay.overlay.redirect"
            ),
            None
        );
    }

    #[test]
    fn metacopy_and_redirect_are_hidden() {
        let img = read_data("images/hostile-base.img.gz");
        let listed = listed(&img, "/ext", ROOT);
        assert!(listed
            .iter()
            .all(|n| !n.contains("metacopy") && !n.contains("redirect")));
        assert!(listed.contains(&"user.shared".to_owned()), "{listed:?}");
        assert_eq!(got(&img, "/ext", ROOT, "trusted.overlay.metacopy"), None);
        assert_eq!(got(&img, "/ext", ROOT, "trusted.overlay.redirect"), None);
    }

    #[test]
    fn noacl_hides_acls_and_non_root_callers_do_not_list_trusted() {
        let img = read_data("images/hostile-base.img.gz");
        assert_eq!(listed(&img, "/acl", ROOT), ["system.posix_acl_access"]);
        let noacl = XattrView {
            noacl: true,
            ..ROOT
        };
        assert!(listed(&img, "/acl", noacl).is_empty());
        assert_eq!(got(&img, "/acl", noacl, "system.posix_acl_access"), None);
        assert!(got(&img, "/acl", ROOT, "system.posix_acl_access").is_some());

        let img = read_data("images/special_v1.img.gz");
        let user = XattrView {
            noacl: false,
            list_trusted: false,
        };
        assert_eq!(
            listed(&img, "/", user),
            ["user.foo2", "user.overlay.opaque", "user.overlay.whiteouts"]
        );
    }
}
