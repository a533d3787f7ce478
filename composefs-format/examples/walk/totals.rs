//! The walk itself, shared by the `walk` example and the `walk` criterion benchmark.

use composefs_format::image::Image;
use composefs_format::ondisk::FileType;
use composefs_format::Error;

/// What one walk saw; equal walks of one image give equal totals.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    /// Distinct inodes visited.
    pub inodes: u64,
    /// Directory entries, without `.` and `..`.
    pub dirents: u64,
    /// Xattrs, shared and inline, counted per inode.
    pub xattrs: u64,
    /// Bytes of xattr name suffixes and values.
    pub xattr_bytes: u64,
    /// Bytes of symlink targets.
    pub symlink_bytes: u64,
    /// Sum of every inode's size.
    pub sizes: u64,
    /// Sum of mode, uid, gid, nlink and mtime seconds, so that no field read is skipped.
    pub meta: u64,
}

/// Walks `image` from the root, visiting each inode once.
///
/// # Errors
/// The first error any view reports.
pub fn walk(image: &Image<'_>) -> Result<Totals, Error> {
    let mut t = Totals::default();
    // One flag per possible nid: an image of L bytes has at most L / 32 of them.
    let mut seen = vec![false; image.bytes().len() / 32 + 1];
    let root = image.root_nid();
    if let Some(flag) = usize::try_from(root).ok().and_then(|i| seen.get_mut(i)) {
        *flag = true;
    }
    let mut stack = vec![root];
    while let Some(nid) = stack.pop() {
        let inode = image.inode(nid)?;
        t.inodes += 1;
        t.sizes = t.sizes.wrapping_add(inode.size());
        t.meta = t
            .meta
            .wrapping_add(u64::from(inode.mode()))
            .wrapping_add(u64::from(inode.uid()))
            .wrapping_add(u64::from(inode.gid()))
            .wrapping_add(u64::from(inode.nlink()))
            .wrapping_add(inode.mtime().sec as u64);
        for x in inode.xattrs()?.iter() {
            let x = x?;
            t.xattrs += 1;
            t.xattr_bytes += (x.suffix().len() + x.value().len()) as u64;
        }
        match inode.file_type() {
            FileType::Directory => {
                for d in inode.dir()?.entries() {
                    let d = d?;
                    if d.name() == b"." || d.name() == b".." {
                        continue;
                    }
                    t.dirents += 1;
                    let Some(flag) = usize::try_from(d.nid()).ok().and_then(|i| seen.get_mut(i))
                    else {
                        // Past the end of the image: the reader says why.
                        image.inode(d.nid())?;
                        continue;
                    };
                    if !*flag {
                        *flag = true;
                        stack.push(d.nid());
                    }
                }
            }
            FileType::Symlink => t.symlink_bytes += inode.symlink_target()?.len() as u64,
            _ => {}
        }
    }
    Ok(t)
}
