//! The fixed names the writer adds to a tree besides the overlay xattrs of
//! [`crate::overlay`] (SPEC.md 4.2 and 4.3): the names of the 256 root whiteout stubs, the
//! root label they copy, and the xattrs that mark POSIX ACLs.

/// The root's SELinux label, copied onto every root stub.
pub(super) const SECURITY_SELINUX: &[u8] = b"security.selinux";
/// An xattr that makes the image set the header's `HAS_ACL` flag.
pub(super) const POSIX_ACL_ACCESS: &[u8] = b"system.posix_acl_access";
/// The other xattr that makes the image set the header's `HAS_ACL` flag.
pub(super) const POSIX_ACL_DEFAULT: &[u8] = b"system.posix_acl_default";

/// Header of a 36-byte metacopy value: version 0, length 36, flags 0, SHA-256.
pub(super) const METACOPY_HEADER: [u8; 4] = [0, 36, 0, crate::ondisk::OVL_METACOPY_DIGEST_SHA256];
const _: () = assert!(crate::ondisk::OVL_METACOPY_SIZE == 36);

/// Number of whiteout stubs the writer adds to the root: `00` to `ff`.
pub(super) const ROOT_STUB_COUNT: usize = 256;

/// The names `00`..`ff` (lowercase hex). Numeric order is also byte order.
pub(super) static ROOT_STUB_NAMES: [[u8; 2]; ROOT_STUB_COUNT] = stub_names();

const fn stub_names() -> [[u8; 2]; ROOT_STUB_COUNT] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut names = [[0u8; 2]; ROOT_STUB_COUNT];
    let mut i = 0;
    while i < ROOT_STUB_COUNT {
        #[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
        {
            names[i] = [HEX[i >> 4], HEX[i & 15]];
            i += 1;
        }
    }
    names
}

/// The name of root stub `i`.
pub(super) fn stub_name(i: u8) -> &'static [u8] {
    ROOT_STUB_NAMES
        .get(usize::from(i))
        .map_or(&[], |n| n.as_slice())
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn stub_names_are_lowercase_hex_in_byte_order() {
        assert_eq!(stub_name(0), b"00");
        assert_eq!(stub_name(0x0a), b"0a");
        assert_eq!(stub_name(0xff), b"ff");
        assert!(ROOT_STUB_NAMES.windows(2).all(|w| w[0] < w[1]));
    }
}
