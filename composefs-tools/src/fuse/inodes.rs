//! The inode table: FUSE inode numbers, and the attributes FUSE reports for an image inode.
//!
//! The table holds no state. An inode number is the nid of the inode in the image, so it
//! is stable across lookups, hard links share it, and nothing needs forgetting. The one
//! exception is the root: FUSE requires inode number 1 for it, and no nid is ever 1 (the
//! first inode slot is nid 36), so the two never collide.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use composefs_format::inode::{Inode, Timestamp};
use composefs_format::ondisk::FileType;
use fuser::{FileAttr, INodeNo};

/// The inode number FUSE reserves for the root directory.
pub const FUSE_ROOT_INO: u64 = 1;

/// Block size reported in `st_blksize` and used for `st_blocks` (the EROFS block size).
const BLOCK_SIZE: u32 = 4096;

/// Maps FUSE inode numbers to nids and back.
#[derive(Debug, Clone, Copy)]
pub struct InodeTable {
    root_nid: u64,
}

impl InodeTable {
    /// The table of an image whose root directory is `root_nid`.
    #[must_use]
    pub fn new(root_nid: u64) -> Self {
        Self { root_nid }
    }

    /// The nid a FUSE inode number names.
    #[must_use]
    pub fn nid(&self, ino: INodeNo) -> u64 {
        if ino.0 == FUSE_ROOT_INO {
            self.root_nid
        } else {
            ino.0
        }
    }

    /// The FUSE inode number of a nid.
    #[must_use]
    pub fn ino(&self, nid: u64) -> INodeNo {
        if nid == self.root_nid {
            INodeNo(FUSE_ROOT_INO)
        } else {
            INodeNo(nid)
        }
    }

    /// The attributes of `inode` as FUSE reports them. They follow what the kernel's EROFS
    /// driver reports: atime and ctime equal the mtime, `st_blocks` counts whole 4 KiB
    /// blocks of the size, `st_blksize` is 4096.
    #[must_use]
    pub fn attr(&self, inode: &Inode<'_>) -> FileAttr {
        let mtime = system_time(inode.mtime());
        let size = inode.size();
        FileAttr {
            ino: self.ino(inode.nid()),
            size,
            blocks: size.div_ceil(u64::from(BLOCK_SIZE)).saturating_mul(8),
            atime: mtime,
            mtime,
            ctime: mtime,
            crtime: mtime,
            kind: kind(inode.file_type()),
            perm: inode.permissions(),
            nlink: inode.nlink(),
            uid: inode.uid(),
            gid: inode.gid(),
            rdev: inode.rdev(),
            blksize: BLOCK_SIZE,
            flags: 0,
        }
    }
}

/// Whether an inode is a real overlay whiteout (a character device 0:0). In a composefs
/// image these are only the 256 stubs the writer adds to the root (user whiteouts are
/// stored escaped, as regular files); overlayfs hides them, and so do we.
#[must_use]
pub fn is_whiteout(inode: &Inode<'_>) -> bool {
    inode.file_type() == FileType::CharDevice && inode.rdev() == 0
}

/// The FUSE file type of an image file type.
#[must_use]
pub fn kind(file_type: FileType) -> fuser::FileType {
    match file_type {
        FileType::Regular => fuser::FileType::RegularFile,
        FileType::Directory => fuser::FileType::Directory,
        FileType::Symlink => fuser::FileType::Symlink,
        FileType::CharDevice => fuser::FileType::CharDevice,
        FileType::BlockDevice => fuser::FileType::BlockDevice,
        FileType::Fifo => fuser::FileType::NamedPipe,
        FileType::Socket => fuser::FileType::Socket,
    }
}

/// A timestamp as a `SystemTime`; nanoseconds beyond a second are clamped, and a time
/// the platform cannot represent becomes the epoch.
#[must_use]
pub fn system_time(t: Timestamp) -> SystemTime {
    let nsec = Duration::from_nanos(u64::from(t.nsec.min(999_999_999)));
    let secs = Duration::from_secs(t.sec.unsigned_abs());
    let whole = if t.sec >= 0 {
        UNIX_EPOCH.checked_add(secs)
    } else {
        UNIX_EPOCH.checked_sub(secs)
    };
    whole
        .and_then(|w| w.checked_add(nsec))
        .unwrap_or(UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_is_one_and_other_nids_are_themselves() {
        let t = InodeTable::new(36);
        assert_eq!(t.ino(36), INodeNo(1));
        assert_eq!(t.nid(INodeNo(1)), 36);
        assert_eq!(t.ino(40), INodeNo(40));
        assert_eq!(t.nid(INodeNo(40)), 40);
    }

    #[test]
    fn timestamps_convert_both_sides_of_the_epoch() {
        let t = |sec, nsec| system_time(Timestamp { sec, nsec });
        assert_eq!(t(0, 0), UNIX_EPOCH);
        assert_eq!(
            t(5, 7),
            UNIX_EPOCH + Duration::from_secs(5) + Duration::from_nanos(7)
        );
        assert_eq!(
            t(-5, 7),
            UNIX_EPOCH - Duration::from_secs(5) + Duration::from_nanos(7)
        );
        assert_eq!(
            t(1, u32::MAX),
            UNIX_EPOCH + Duration::from_secs(1) + Duration::from_nanos(999_999_999)
        );
        // The extremes convert without panicking.
        let _ = t(i64::MAX, 999_999_999);
        let _ = t(i64::MIN, 0);
    }
}
