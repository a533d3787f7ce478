//! Helpers for tests that mount images in the running kernel: when to skip, guards that
//! always unmount, the mount table, and snapshots of mounted trees to compare.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use rustix::io::Errno;
use rustix::mount::{unmount, UnmountFlags};

/// Why kernel mounts cannot be tested here, or `None` when they can: the tests must run
/// as root, the kernel must have erofs and overlay, and mounting must be permitted.
#[must_use]
pub fn mount_unavailable() -> Option<String> {
    if !rustix::process::geteuid().is_root() {
        return Some("kernel mount tests need root".into());
    }
    let fs = std::fs::read_to_string("/proc/filesystems").unwrap_or_default();
    for needed in ["erofs", "overlay"] {
        if !fs
            .lines()
            .any(|l| l.split_whitespace().last() == Some(needed))
        {
            return Some(format!("the kernel has no {needed} (/proc/filesystems)"));
        }
    }
    for fstype in ["erofs", "overlay"] {
        if let Err(e) = rustix::mount::fsopen(fstype, rustix::mount::FsOpenFlags::FSOPEN_CLOEXEC) {
            return Some(format!(
                "mounting {fstype} is not permitted here (fsopen: {e})"
            ));
        }
    }
    None
}

/// Skips (returns `true` after a visible message) when kernel mounts are unavailable.
#[must_use]
pub fn skip_without_mounts(test: &str) -> bool {
    match mount_unavailable() {
        Some(reason) => {
            crate::skip(&format!("{test}: {reason}"));
            true
        }
        None => false,
    }
}

/// A mount point that is lazily unmounted (as often as something is mounted on it) when
/// the guard drops, so a failing test leaves nothing mounted.
#[derive(Debug)]
pub struct MountGuard {
    path: PathBuf,
}

impl MountGuard {
    /// Guards `path` (mounted already, or about to be).
    #[must_use]
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// The mount point.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for MountGuard {
    fn drop(&mut self) {
        for _ in 0..16 {
            match unmount(&self.path, UnmountFlags::DETACH) {
                Ok(()) => {}
                Err(Errno::INVAL | Errno::NOENT) => break,
                Err(_) => break,
            }
        }
    }
}

/// One line of `/proc/self/mountinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountInfo {
    /// The mount point (unescaped).
    pub mount_point: PathBuf,
    /// The filesystem type.
    pub fstype: String,
    /// The mount source.
    pub source: String,
    /// The superblock options.
    pub super_options: String,
    /// The per-mount options (`ro`, `rw`, ...).
    pub mount_options: String,
}

/// Undoes the octal escapes (`\040`) of mountinfo fields.
fn unescape_mountinfo(field: &str) -> Vec<u8> {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        if let (b'\\', Some(d)) = (b[i], octal) {
            out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
            i += 4;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// The current mount table of this process.
#[must_use]
pub fn mountinfo() -> Vec<MountInfo> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let l: Vec<&str> = left.split(' ').collect();
            let r: Vec<&str> = right.split(' ').collect();
            Some(MountInfo {
                mount_point: PathBuf::from(OsStr::from_bytes(&unescape_mountinfo(l.get(4)?))),
                mount_options: (*l.get(5)?).to_owned(),
                fstype: (*r.first()?).to_owned(),
                source: String::from_utf8_lossy(&unescape_mountinfo(r.get(1)?)).into_owned(),
                super_options: r.get(2).map(|s| (*s).to_owned()).unwrap_or_default(),
            })
        })
        .collect()
}

/// Mounts at or below `dir`.
#[must_use]
pub fn mounts_under(dir: &Path) -> Vec<MountInfo> {
    mountinfo()
        .into_iter()
        .filter(|m| m.mount_point.starts_with(dir))
        .collect()
}

/// What a test compares of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// `st_mode` (type and permission bits).
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// `st_size` (regular files and symlinks; 0 for other types).
    pub size: u64,
    /// Modification time, seconds.
    pub mtime: i64,
    /// Modification time, nanoseconds.
    pub mtime_nsec: i64,
    /// Device number of device files.
    pub rdev: u64,
    /// Link count (non-directories only; 0 for directories).
    pub nlink: u64,
    /// Symlink target.
    pub target: Option<Vec<u8>>,
    /// Every xattr `listxattr` shows, with its value or the errno of `getxattr` (the
    /// VFS lists `user.*` xattrs of symlinks and special files but refuses to read them,
    /// with `ENODATA`).
    pub xattrs: BTreeMap<Vec<u8>, Result<Vec<u8>, i32>>,
    /// Regular-file content, when read (see [`snapshot`]).
    pub content: Option<Result<Vec<u8>, i32>>,
}

/// Walks `root` (without following symlinks) and records every entry, keyed by its
/// path relative to `root` (the root itself is the empty path). Regular files up to
/// `read_limit` bytes are read; a read error is kept as its errno.
///
/// # Panics
/// When the walk itself fails (a directory cannot be listed, `lstat` fails).
#[must_use]
pub fn snapshot(root: &Path, read_limit: u64) -> BTreeMap<PathBuf, Entry> {
    let mut out = BTreeMap::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let path = root.join(&rel);
        let meta = std::fs::symlink_metadata(&path)
            .unwrap_or_else(|e| panic!("lstat {}: {e}", path.display()));
        let ft = meta.file_type();
        let target = ft.is_symlink().then(|| {
            std::fs::read_link(&path)
                .unwrap_or_else(|e| panic!("readlink {}: {e}", path.display()))
                .into_os_string()
                .into_vec()
        });
        let content = (ft.is_file() && meta.len() <= read_limit)
            .then(|| std::fs::read(&path).map_err(|e| e.raw_os_error().unwrap_or(-1)));
        let is_dev = ft.is_block_device() || ft.is_char_device();
        out.insert(
            rel.clone(),
            Entry {
                mode: meta.mode(),
                uid: meta.uid(),
                gid: meta.gid(),
                size: if ft.is_file() || ft.is_symlink() {
                    meta.len()
                } else {
                    0
                },
                mtime: meta.mtime(),
                mtime_nsec: meta.mtime_nsec(),
                rdev: if is_dev { meta.rdev() } else { 0 },
                nlink: if ft.is_dir() { 0 } else { meta.nlink() },
                target,
                xattrs: xattrs(&path),
                content,
            },
        );
        if ft.is_dir() {
            let mut names: Vec<_> = std::fs::read_dir(&path)
                .unwrap_or_else(|e| panic!("readdir {}: {e}", path.display()))
                .map(|e| e.unwrap().file_name())
                .collect();
            names.sort();
            for n in names.into_iter().rev() {
                stack.push(rel.join(n));
            }
        }
    }
    out
}

/// Every xattr of `path` (not following a symlink) with its value, or `ENODATA` for
/// one that is listed but cannot be read.
///
/// # Panics
/// When listing or reading fails for another reason.
#[must_use]
pub fn xattrs(path: &Path) -> BTreeMap<Vec<u8>, Result<Vec<u8>, i32>> {
    let mut out = BTreeMap::new();
    let mut names = vec![0u8; 65536];
    let n = match rustix::fs::llistxattr(path, &mut names[..]) {
        Ok(n) => n,
        Err(Errno::OPNOTSUPP) => return out,
        Err(e) => panic!("llistxattr {}: {e}", path.display()),
    };
    for name in names[..n].split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let mut value = vec![0u8; 65536];
        let got = match rustix::fs::lgetxattr(path, name, &mut value[..]) {
            Ok(len) => {
                value.truncate(len);
                Ok(value)
            }
            Err(Errno::NODATA) => Err(Errno::NODATA.raw_os_error()),
            Err(e) => panic!(
                "lgetxattr {} {:?}: {e}",
                path.display(),
                String::from_utf8_lossy(name)
            ),
        };
        out.insert(name.to_vec(), got);
    }
    out
}
