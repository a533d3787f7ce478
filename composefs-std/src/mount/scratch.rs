//! The temporary mount point of the path-based layer modes: a fresh directory that holds
//! the EROFS mount while overlayfs resolves it, then is detached and removed.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use rustix::fs::{mkdir, Mode};
use rustix::io::Errno;
use rustix::mount::{move_mount, unmount, MoveMountFlags, UnmountFlags};

use super::MountError;

/// Names already taken in this process.
static COUNTER: AtomicU64 = AtomicU64::new(0);
/// Names tried before giving up (each collision means someone made that exact name).
const ATTEMPTS: u32 = 64;

/// A directory `<parent>/.composefs.<pid>.<n>.<nanoseconds>` (mode 0700), with
/// possibly a mount on it. Dropping it detaches the mount and removes the directory.
#[derive(Debug)]
pub(crate) struct Scratch {
    path: PathBuf,
    mounted: bool,
}

impl Scratch {
    /// Makes a new directory in `parent` (default `$TMPDIR`, else `/tmp`).
    pub(crate) fn create(parent: Option<&Path>) -> Result<Self, MountError> {
        let parent = parent.map_or_else(std::env::temp_dir, Path::to_path_buf);
        let mut last = Errno::EXIST;
        for _ in 0..ATTEMPTS {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos());
            let path = parent.join(format!(".composefs.{}.{n}.{nanos:08x}", std::process::id()));
            match mkdir(&path, Mode::RWXU) {
                Ok(()) => {
                    return Ok(Self {
                        path,
                        mounted: false,
                    })
                }
                Err(Errno::EXIST) => last = Errno::EXIST,
                Err(e) => {
                    last = e;
                    break;
                }
            }
        }
        Err(MountError::kernel(
            format!("mkdir of a temporary mount point in {}", parent.display()),
            last,
            Vec::new(),
        ))
    }

    /// The directory.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Attaches the detached mount `mount` here, and closes its descriptor (an open
    /// descriptor of a mount keeps it busy).
    pub(crate) fn attach(&mut self, mount: OwnedFd) -> Result<(), MountError> {
        move_mount(
            &mount,
            "",
            rustix::fs::CWD,
            &self.path,
            MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
        )
        .map_err(|e| {
            MountError::kernel(
                format!("erofs: move_mount to {}", self.path.display()),
                e,
                Vec::new(),
            )
        })?;
        drop(mount);
        self.mounted = true;
        Ok(())
    }

    /// Records that a mount was made here by other means (`mount(2)`).
    pub(crate) fn set_mounted(&mut self) {
        self.mounted = true;
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if self.mounted {
            // Lazily: an overlay made from it keeps its own reference to the mount.
            let _ = unmount(&self.path, UnmountFlags::DETACH);
        }
        let _ = std::fs::remove_dir(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_are_private_unique_and_removed() {
        let parent = tempfile::tempdir().unwrap();
        let a = Scratch::create(Some(parent.path())).unwrap();
        let b = Scratch::create(Some(parent.path())).unwrap();
        assert_ne!(a.path(), b.path());
        assert!(a.path().starts_with(parent.path()));
        let meta = std::fs::metadata(a.path()).unwrap();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777,
            0o700
        );
        let (pa, pb) = (a.path().to_owned(), b.path().to_owned());
        drop(a);
        drop(b);
        assert!(!pa.exists() && !pb.exists());
        assert_eq!(std::fs::read_dir(parent.path()).unwrap().count(), 0);
    }

    #[test]
    fn missing_parent_is_an_error_naming_it() {
        let e = Scratch::create(Some(Path::new("/nonexistent/parent"))).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/parent"), "{e}");
        assert_eq!(e.errno(), Some(Errno::NOENT));
    }
}
