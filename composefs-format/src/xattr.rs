//! Xattr views: the ibody header, shared then inline entries, lookup into caller buffers,
//! and the name filter (SPEC.md 2.4, 3.3).

use crate::bytes;
use crate::error::{Error, ErrorKind, Result};
use crate::image::Image;
use crate::inode::Inode;
use crate::ondisk::{
    XattrEntry, XattrIbodyHeader, EROFS_XATTR_FILTER_BITS, EROFS_XATTR_FILTER_DEFAULT,
    EROFS_XATTR_FILTER_SEED, EROFS_XATTR_INDEX_NONE, EROFS_XATTR_INDEX_POSIX_ACL_ACCESS,
    EROFS_XATTR_INDEX_POSIX_ACL_DEFAULT, EROFS_XATTR_INDEX_SECURITY, EROFS_XATTR_INDEX_TRUSTED,
    EROFS_XATTR_INDEX_USER, XATTR_ENTRY_SIZE, XATTR_IBODY_HEADER_SIZE, XATTR_PREFIXES,
};
use crate::xxh32::xxh32;

/// The name prefix of an xattr name index, or `None` for an index composefs does not use
/// (5 `lustre.`, long prefixes, undefined values).
#[must_use]
pub fn prefix_of(index: u8) -> Option<&'static [u8]> {
    match index {
        EROFS_XATTR_INDEX_NONE => Some(b""),
        EROFS_XATTR_INDEX_USER => Some(b"user."),
        EROFS_XATTR_INDEX_POSIX_ACL_ACCESS => Some(b"system.posix_acl_access"),
        EROFS_XATTR_INDEX_POSIX_ACL_DEFAULT => Some(b"system.posix_acl_default"),
        EROFS_XATTR_INDEX_TRUSTED => Some(b"trusted."),
        EROFS_XATTR_INDEX_SECURITY => Some(b"security."),
        _ => None,
    }
}

/// Splits a full xattr name the way the writer encodes it: `(index, suffix)`, the first
/// matching prefix of [`XATTR_PREFIXES`] winning, else index 0 and the whole name.
#[must_use]
pub fn split_name(name: &[u8]) -> (u8, &[u8]) {
    for (index, prefix) in XATTR_PREFIXES {
        if let Some(suffix) = name.strip_prefix(prefix) {
            return (index, suffix);
        }
    }
    (EROFS_XATTR_INDEX_NONE, name)
}

/// The name filter bit of an xattr: `xxh32(suffix, SEED + index) % 32`.
#[must_use]
pub fn filter_bit(index: u8, suffix: &[u8]) -> u32 {
    xxh32(
        suffix,
        EROFS_XATTR_FILTER_SEED.wrapping_add(u32::from(index)),
    ) % EROFS_XATTR_FILTER_BITS
}

/// One xattr, borrowed from the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Xattr<'a> {
    index: u8,
    suffix: &'a [u8],
    value: &'a [u8],
    shared_id: Option<u32>,
    offset: u64,
}

impl<'a> Xattr<'a> {
    /// The name index (0, 1, 2, 3, 4 or 6).
    #[must_use]
    pub fn index(&self) -> u8 {
        self.index
    }

    /// The prefix the index stands for (empty for index 0).
    #[must_use]
    pub fn prefix(&self) -> &'static [u8] {
        prefix_of(self.index).unwrap_or(b"")
    }

    /// The stored part of the name, after the prefix.
    #[must_use]
    pub fn suffix(&self) -> &'a [u8] {
        self.suffix
    }

    /// The value.
    #[must_use]
    pub fn value(&self) -> &'a [u8] {
        self.value
    }

    /// The shared xattr id, for a shared entry.
    #[must_use]
    pub fn shared_id(&self) -> Option<u32> {
        self.shared_id
    }

    /// Absolute offset of the entry header.
    #[must_use]
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Length of the full name (prefix + suffix).
    #[must_use]
    pub fn name_len(&self) -> usize {
        self.prefix().len().saturating_add(self.suffix.len())
    }

    /// Whether the full name equals `name`.
    #[must_use]
    pub fn name_eq(&self, name: &[u8]) -> bool {
        name.strip_prefix(self.prefix()) == Some(self.suffix)
    }

    /// Whether the full name starts with `prefix`.
    #[must_use]
    pub fn name_starts_with(&self, prefix: &[u8]) -> bool {
        let p = self.prefix();
        if prefix.len() <= p.len() {
            p.starts_with(prefix)
        } else {
            prefix
                .strip_prefix(p)
                .is_some_and(|rest| self.suffix.starts_with(rest))
        }
    }

    /// Writes the full name into `out` and returns its length.
    ///
    /// # Errors
    /// [`ErrorKind::BufferTooSmall`] when `out` is shorter than the name.
    pub fn write_name(&self, out: &mut [u8]) -> Result<usize> {
        let p = self.prefix();
        let n = self.name_len();
        let len = out.len() as u64;
        let dst = out
            .get_mut(..n)
            .ok_or(Error::new(ErrorKind::BufferTooSmall {
                needed: n as u64,
                len,
            }))?;
        let (a, b) = dst.split_at_mut(p.len());
        a.copy_from_slice(p);
        b.copy_from_slice(self.suffix);
        Ok(n)
    }

    /// The name filter bit of this xattr.
    #[must_use]
    pub fn filter_bit(&self) -> u32 {
        filter_bit(self.index, self.suffix)
    }
}

/// The xattrs of one inode: a validated ibody header, then shared ids and inline entries.
#[derive(Debug, Clone, Copy)]
pub struct Xattrs<'a> {
    image: Image<'a>,
    nid: u64,
    area: &'a [u8],
    area_offset: u64,
    shared_count: u8,
    name_filter: u32,
    reserved_ok: bool,
}

impl<'a> Xattrs<'a> {
    pub(crate) fn new(inode: &Inode<'a>) -> Result<Self> {
        let image = inode.image();
        let nid = inode.nid();
        let area_offset = inode.xattr_offset();
        let isize = inode.xattr_size();
        let area = image
            .slice(area_offset, isize)
            .map_err(|e| e.with_nid(nid))?;
        if isize == 0 {
            return Ok(Self {
                image,
                nid,
                area,
                area_offset,
                shared_count: 0,
                name_filter: EROFS_XATTR_FILTER_DEFAULT,
                reserved_ok: true,
            });
        }
        let header: &XattrIbodyHeader =
            bytes::view(area, 0).map_err(|k| Error::at_nid(k, nid).with_offset(area_offset))?;
        let shared_count = header.h_shared_count;
        let needed =
            XATTR_IBODY_HEADER_SIZE.wrapping_add(4u64.wrapping_mul(u64::from(shared_count)));
        if needed > isize {
            return Err(Error::at_nid(
                ErrorKind::XattrSharedCount {
                    shared_count,
                    xattr_isize: isize,
                },
                nid,
            )
            .with_offset(area_offset));
        }
        Ok(Self {
            image,
            nid,
            area,
            area_offset,
            shared_count,
            name_filter: header.h_name_filter.get(),
            reserved_ok: header.h_reserved2 == [0; 7],
        })
    }

    /// Number of shared xattr references.
    #[must_use]
    pub fn shared_count(&self) -> u8 {
        self.shared_count
    }

    /// The stored name filter (all ones when there is no xattr area).
    #[must_use]
    pub fn name_filter(&self) -> u32 {
        self.name_filter
    }

    /// Whether the reserved bytes of the ibody header are zero.
    #[must_use]
    pub fn reserved_is_zero(&self) -> bool {
        self.reserved_ok
    }

    /// Size of the xattr area in bytes.
    #[must_use]
    pub fn area_size(&self) -> u64 {
        self.area.len() as u64
    }

    /// Every xattr: shared ones first, in stored order, then inline ones. The iterator
    /// stops after the first error.
    #[must_use]
    pub fn iter(&self) -> XattrIter<'a> {
        XattrIter {
            xattrs: *self,
            next_shared: 0,
            pos: 0,
            done: false,
        }
    }

    /// The xattr named `name`, if present. The name filter is not consulted, so a lying
    /// filter cannot hide an xattr (the checker reports such a filter).
    ///
    /// # Errors
    /// The first malformed entry met before the name is found.
    pub fn find(&self, name: &[u8]) -> Result<Option<Xattr<'a>>> {
        for x in self.iter() {
            let x = x?;
            if x.name_eq(name) {
                return Ok(Some(x));
            }
        }
        Ok(None)
    }

    /// Copies the value of `name` into `out` and returns its length. An empty `out` only
    /// asks for the length, as `getxattr(2)` with size 0 does.
    ///
    /// # Errors
    /// [`ErrorKind::XattrNotFound`], [`ErrorKind::BufferTooSmall`] with the size needed,
    /// or a malformed entry.
    pub fn get(&self, name: &[u8], out: &mut [u8]) -> Result<usize> {
        let x = self
            .find(name)?
            .ok_or(Error::at_nid(ErrorKind::XattrNotFound, self.nid))?;
        let v = x.value();
        if out.is_empty() {
            return Ok(v.len());
        }
        let len = out.len() as u64;
        let dst = out.get_mut(..v.len()).ok_or(Error::at_nid(
            ErrorKind::BufferTooSmall {
                needed: v.len() as u64,
                len,
            },
            self.nid,
        ))?;
        dst.copy_from_slice(v);
        Ok(v.len())
    }

    /// Writes every full name, each followed by a NUL, into `out` and returns the total
    /// length, as `listxattr(2)`; an empty `out` only asks for the length.
    ///
    /// # Errors
    /// [`ErrorKind::BufferTooSmall`] with the size needed, or a malformed entry.
    pub fn list(&self, out: &mut [u8]) -> Result<usize> {
        let mut needed = 0usize;
        for x in self.iter() {
            needed = needed.saturating_add(x?.name_len()).saturating_add(1);
        }
        if out.is_empty() {
            return Ok(needed);
        }
        if out.len() < needed {
            return Err(Error::at_nid(
                ErrorKind::BufferTooSmall {
                    needed: needed as u64,
                    len: out.len() as u64,
                },
                self.nid,
            ));
        }
        let mut at = 0usize;
        for x in self.iter() {
            let x = x?;
            let n = x.write_name(out.get_mut(at..).unwrap_or(&mut []))?;
            at = at.saturating_add(n);
            if let Some(b) = out.get_mut(at) {
                *b = 0;
            }
            at = at.saturating_add(1);
        }
        Ok(needed)
    }

    /// The filter the entries call for: every bit set except those of present names.
    ///
    /// # Errors
    /// A malformed entry.
    pub fn computed_filter(&self) -> Result<u32> {
        let mut filter = EROFS_XATTR_FILTER_DEFAULT;
        for x in self.iter() {
            filter &= !(1u32 << x?.filter_bit());
        }
        Ok(filter)
    }

    /// Checks the stored name filter against the entries (only meaningful when
    /// [`Image::xattr_filter_enabled`] and the inode has an xattr area).
    ///
    /// # Errors
    /// [`ErrorKind::XattrNameFilter`] on a mismatch, or a malformed entry.
    pub fn verify_filter(&self) -> Result<()> {
        if self.area.is_empty() {
            return Ok(());
        }
        let computed = self.computed_filter()?;
        if computed != self.name_filter {
            return Err(Error::at_nid(
                ErrorKind::XattrNameFilter {
                    stored: self.name_filter,
                    computed,
                },
                self.nid,
            )
            .with_offset(self.area_offset));
        }
        Ok(())
    }

    fn entry_at(
        &self,
        data: &'a [u8],
        offset: u64,
        limit: u64,
    ) -> core::result::Result<(Xattr<'a>, u64), ErrorKind> {
        let header: &XattrEntry = bytes::view(data, offset)?;
        let name_len = u64::from(header.e_name_len);
        let value_len = u64::from(header.e_value_size.get());
        let body = XATTR_ENTRY_SIZE
            .wrapping_add(name_len)
            .wrapping_add(value_len);
        let padded = body
            .div_ceil(XATTR_ENTRY_SIZE)
            .wrapping_mul(XATTR_ENTRY_SIZE);
        if offset.checked_add(padded).map_or(true, |end| end > limit) {
            return Err(ErrorKind::XattrEntryBounds {
                pos: offset,
                len: padded,
                xattr_isize: limit,
            });
        }
        let index = header.e_name_index;
        if prefix_of(index).is_none() {
            return Err(ErrorKind::XattrNameIndex { index });
        }
        let name_off = offset.wrapping_add(XATTR_ENTRY_SIZE);
        let suffix = bytes::slice(data, name_off, name_len)?;
        let value = bytes::slice(data, name_off.wrapping_add(name_len), value_len)?;
        if index == EROFS_XATTR_INDEX_NONE && suffix.is_empty() {
            return Err(ErrorKind::XattrEmptyName);
        }
        Ok((
            Xattr {
                index,
                suffix,
                value,
                shared_id: None,
                offset,
            },
            padded,
        ))
    }
}

/// Iterator over the xattrs of an inode; fused after the first error.
#[derive(Debug, Clone)]
pub struct XattrIter<'a> {
    xattrs: Xattrs<'a>,
    next_shared: u8,
    pos: u64,
    done: bool,
}

impl<'a> XattrIter<'a> {
    fn step(&mut self) -> Result<Option<Xattr<'a>>> {
        let x = &self.xattrs;
        let nid = x.nid;
        if self.next_shared < x.shared_count {
            let id_pos = XATTR_IBODY_HEADER_SIZE
                .wrapping_add(4u64.wrapping_mul(u64::from(self.next_shared)));
            self.next_shared = self.next_shared.wrapping_add(1);
            let id = bytes::le32(x.area, id_pos).map_err(|k| {
                Error::at_nid(k, nid).with_offset(x.area_offset.wrapping_add(id_pos))
            })?;
            let base = bytes::blk_to_off(x.image.xattr_blkaddr());
            let offset = bytes::add(base, u64::from(id).wrapping_mul(4))
                .map_err(|k| Error::at_nid(k, nid))?;
            let data = x.image.bytes();
            let (mut entry, _) = x
                .entry_at(data, offset, data.len() as u64)
                .map_err(|k| Error::at_nid(k, nid).with_offset(offset))?;
            entry.shared_id = Some(id);
            return Ok(Some(entry));
        }
        if self.pos == 0 {
            self.pos =
                XATTR_IBODY_HEADER_SIZE.wrapping_add(4u64.wrapping_mul(u64::from(x.shared_count)));
        }
        let limit = x.area.len() as u64;
        if x.area.is_empty() || self.pos >= limit {
            return Ok(None);
        }
        let pos = self.pos;
        let (mut entry, len) = x
            .entry_at(x.area, pos, limit)
            .map_err(|k| Error::at_nid(k, nid).with_offset(x.area_offset.wrapping_add(pos)))?;
        entry.offset = x.area_offset.wrapping_add(pos);
        self.pos = pos.wrapping_add(len);
        Ok(Some(entry))
    }
}

impl<'a> Iterator for XattrIter<'a> {
    type Item = Result<Xattr<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let r = self.step();
        match r {
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
            Ok(Some(x)) => Some(Ok(x)),
        }
    }
}

impl core::iter::FusedIterator for XattrIter<'_> {}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation
)]
mod tests {
    use super::*;
    use crate::inode::tests::small_image;
    use alloc::vec::Vec;

    /// The small image with two xattrs on the file at nid 40: one shared `user.a=1`
    /// (table at block 1) and one inline `trusted.overlay.metacopy=""`.
    fn image_with_xattrs() -> Vec<u8> {
        let mut img = small_image();
        // File inode: xattr_icount for 12 + 4 (one shared id) + 8 (inline entry "overlay.metacopy" is 16 bytes) ...
        // Inline entry: 4 + 16 name + 0 value = 20 bytes, so area = 12 + 4 + 20 = 36, icount = 7.
        img[1282..1284].copy_from_slice(&7u16.to_le_bytes());
        let area = 1312;
        let mut filter = u32::MAX;
        filter &= !(1 << filter_bit(1, b"a"));
        filter &= !(1 << filter_bit(4, b"overlay.metacopy"));
        img[area..area + 4].copy_from_slice(&filter.to_le_bytes());
        img[area + 4] = 1;
        img[area + 12..area + 16].copy_from_slice(&0u32.to_le_bytes());
        img[area + 16] = 16;
        img[area + 17] = 4;
        img[area + 20..area + 36].copy_from_slice(b"overlay.metacopy");
        img[area + 36..area + 41].copy_from_slice(b"hello");
        // Shared table at block 1 (xattr_blkaddr = 1), id 0: user.a = "1".
        img[1024 + 44..1024 + 48].copy_from_slice(&1u32.to_le_bytes());
        img[4096] = 1;
        img[4097] = 1;
        img[4098..4100].copy_from_slice(&1u16.to_le_bytes());
        img[4100] = b'a';
        img[4101] = b'1';
        img
    }

    #[test]
    fn iterates_shared_then_inline_and_gets_values() {
        let img = image_with_xattrs();
        let image = Image::open(&img).unwrap();
        let f = image.inode(40).unwrap();
        assert_eq!(f.data_parts().unwrap().tail, b"hello");
        let xs = f.xattrs().unwrap();
        let all: Vec<_> = xs.iter().map(|x| x.unwrap()).collect();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].shared_id(), Some(0));
        assert!(all[0].name_eq(b"user.a"));
        assert_eq!(all[0].value(), b"1");
        assert!(all[1].name_eq(b"trusted.overlay.metacopy"));
        assert!(all[1].name_starts_with(b"trusted.overlay."));
        assert!(all[1].name_starts_with(b"tru"));
        let mut name = [0u8; 64];
        let n = all[1].write_name(&mut name).unwrap();
        assert_eq!(&name[..n], b"trusted.overlay.metacopy");
        assert!(all[1].write_name(&mut name[..5]).is_err());
        let mut v = [0u8; 4];
        assert_eq!(xs.get(b"user.a", &mut v).unwrap(), 1);
        assert_eq!(xs.get(b"user.a", &mut []).unwrap(), 1);
        assert_eq!(
            xs.get(b"user.b", &mut v).unwrap_err().kind(),
            ErrorKind::XattrNotFound
        );
        let mut list = [0u8; 64];
        let n = xs.list(&mut list).unwrap();
        assert_eq!(&list[..n], b"user.a\0trusted.overlay.metacopy\0");
        assert!(matches!(
            xs.list(&mut list[..3]).unwrap_err().kind(),
            ErrorKind::BufferTooSmall { needed: 32, len: 3 }
        ));
        xs.verify_filter().unwrap();
    }

    #[test]
    fn rejects_bad_counts_indexes_bounds_and_filters() {
        let img = image_with_xattrs();
        let kind_of = |m: &[u8]| {
            let image = Image::open(m).unwrap();
            let ino = image.inode(40);
            match ino {
                Err(e) => e.kind(),
                Ok(ino) => match ino.xattrs() {
                    Err(e) => e.kind(),
                    Ok(xs) => match xs.iter().find_map(|x| x.err()) {
                        Some(e) => e.kind(),
                        None => xs.verify_filter().unwrap_err().kind(),
                    },
                },
            }
        };
        let mut m = img.clone();
        m[1312 + 4] = 7;
        assert_eq!(
            kind_of(&m),
            ErrorKind::XattrSharedCount {
                shared_count: 7,
                xattr_isize: 36
            }
        );
        let mut m = img.clone();
        m[1312 + 17] = 5;
        assert_eq!(kind_of(&m), ErrorKind::XattrNameIndex { index: 5 });
        let mut m = img.clone();
        m[1312 + 17] = 0x81;
        assert_eq!(kind_of(&m), ErrorKind::XattrNameIndex { index: 0x81 });
        let mut m = img.clone();
        m[1312 + 16] = 17;
        assert!(matches!(kind_of(&m), ErrorKind::XattrEntryBounds { .. }));
        let mut m = img.clone();
        m[1312 + 12..1312 + 16].copy_from_slice(&0x1000_0000u32.to_le_bytes());
        assert!(matches!(kind_of(&m), ErrorKind::OutOfBounds { .. }));
        let mut m = img.clone();
        m[1312] ^= 0x80;
        assert!(matches!(kind_of(&m), ErrorKind::XattrNameFilter { .. }));
        let mut m = img;
        m[1312 + 16] = 0;
        m[1312 + 17] = 0;
        assert_eq!(kind_of(&m), ErrorKind::XattrEmptyName);
    }

    #[test]
    fn split_name_uses_the_first_matching_prefix() {
        assert_eq!(split_name(b"user.x"), (1, &b"x"[..]));
        assert_eq!(split_name(b"system.posix_acl_access"), (2, &b""[..]));
        assert_eq!(
            split_name(b"trusted.overlay.redirect"),
            (4, &b"overlay.redirect"[..])
        );
        assert_eq!(split_name(b"lustre.lov"), (0, &b"lustre.lov"[..]));
    }
}
