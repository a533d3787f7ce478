//! The EROFS mount of the image: read-only, `noacl` unless the image has ACLs, from the
//! file itself or from a loop device, optionally idmapped. It is made detached (new
//! mount API) and attached to a temporary directory only when a path-based layer mode
//! needs a path.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

use rustix::io::Errno;
use rustix::mount::{MountAttrFlags, MountFlags};

use super::fscontext::FsContext;
use super::scratch::Scratch;
use super::{idmap, loopdev, ErofsSource, MountError};

/// The EROFS mount of the image.
#[derive(Debug)]
pub(crate) struct ErofsMount {
    state: State,
    source: ErofsSource,
}

#[derive(Debug)]
enum State {
    /// A detached mount (from `fsmount`), not visible in any mount table.
    Detached(OwnedFd),
    /// Attached on a temporary directory (path-based layer modes, or `mount(2)` when
    /// the new mount API is unavailable).
    Attached(Scratch),
    /// Dropped after a failed attempt to attach it.
    Lost,
}

impl ErofsMount {
    /// Where the image is read from.
    pub(crate) fn source(&self) -> ErofsSource {
        self.source
    }

    /// The detached mount, unless it was attached already.
    pub(crate) fn detached(&self) -> Option<BorrowedFd<'_>> {
        match &self.state {
            State::Detached(fd) => Some(fd.as_fd()),
            State::Attached(_) | State::Lost => None,
        }
    }

    /// A path to the mount, attaching it in a new directory of `scratch_dir` if needed.
    pub(crate) fn path(&mut self, scratch_dir: Option<&Path>) -> Result<&Path, MountError> {
        if let State::Detached(_) = self.state {
            let mut scratch = Scratch::create(scratch_dir)?;
            if let State::Detached(fd) = std::mem::replace(&mut self.state, State::Lost) {
                scratch.attach(fd)?;
            }
            self.state = State::Attached(scratch);
        }
        match &self.state {
            State::Attached(s) => Ok(s.path()),
            State::Detached(_) | State::Lost => Err(MountError::kernel(
                "erofs: the mount was released by an earlier failed attach",
                Errno::NOENT,
                Vec::new(),
            )),
        }
    }
}

/// What EROFS is mounted from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Source<'a> {
    /// The image file, or its sealed in-memory copy.
    pub(crate) image: BorrowedFd<'a>,
    /// Whether `image` is a memfd copy: EROFS refuses a memfd as the file of a
    /// file-backed mount (`ENOTBLK`, measured on Linux 6.18), a loop device serves it.
    pub(crate) in_memory: bool,
    /// The header's ACL flag.
    pub(crate) has_acl: bool,
}

/// Mounts EROFS from `source`. `forced` picks the source; by default the file itself,
/// and a loop device when the kernel has no file-backed mounts (`ENOTBLK`) or the image
/// is an in-memory copy.
pub(crate) fn mount(
    source: Source<'_>,
    forced: Option<ErofsSource>,
    userns: Option<BorrowedFd<'_>>,
    scratch_dir: Option<&Path>,
) -> Result<ErofsMount, MountError> {
    let has_acl = source.has_acl;
    let use_file = match (forced, source.in_memory) {
        (Some(ErofsSource::File), true) => {
            return Err(MountError::kernel(
                "erofs: a file-backed mount of the sealed in-memory copy of the image \
                 (only a loop device can serve it; allow one, or mount without the copy)",
                Errno::NOTBLK,
                Vec::new(),
            ))
        }
        (Some(ErofsSource::LoopDevice), _) | (None, true) => false,
        (Some(ErofsSource::File) | None, false) => true,
    };
    if use_file {
        let file_source = format!("/proc/self/fd/{}", source.image.as_raw_fd());
        match create(&file_source, has_acl, userns, scratch_dir) {
            Ok(state) => {
                return Ok(ErofsMount {
                    state,
                    source: ErofsSource::File,
                })
            }
            Err(e) if forced.is_none() && e.errno() == Some(Errno::NOTBLK) => {}
            Err(e) => return Err(e),
        }
    }
    let device = loopdev::attach(source.image)?;
    let state = create(&device.path.to_string_lossy(), has_acl, userns, scratch_dir)?;
    // The mount holds the device now; with AUTOCLEAR it goes away with the mount.
    drop(device);
    Ok(ErofsMount {
        state,
        source: ErofsSource::LoopDevice,
    })
}

fn create(
    source: &str,
    has_acl: bool,
    userns: Option<BorrowedFd<'_>>,
    scratch_dir: Option<&Path>,
) -> Result<State, MountError> {
    let ctx = match FsContext::open("erofs", "erofs") {
        Ok(ctx) => ctx,
        Err(e) if e.errno() == Some(Errno::NOSYS) => {
            return legacy(source, has_acl, userns, scratch_dir)
        }
        Err(e) => return Err(e),
    };
    ctx.set_string("source", source)?;
    ctx.set_flag("ro")?;
    if !has_acl {
        ctx.set_flag("noacl")?;
    }
    ctx.create()?;
    let mount = ctx.mount(MountAttrFlags::MOUNT_ATTR_RDONLY)?;
    if let Some(userns) = userns {
        idmap::set_idmap(mount.as_fd(), userns)?;
    }
    Ok(State::Detached(mount))
}

/// `mount(2)` on a temporary directory, for systems that refuse `fsopen` (old kernels,
/// seccomp filters).
fn legacy(
    source: &str,
    has_acl: bool,
    userns: Option<BorrowedFd<'_>>,
    scratch_dir: Option<&Path>,
) -> Result<State, MountError> {
    if userns.is_some() {
        return Err(MountError::kernel(
            "erofs: idmap needs the new mount API (fsopen)",
            Errno::NOSYS,
            Vec::new(),
        ));
    }
    let mut scratch = Scratch::create(scratch_dir)?;
    let data = if has_acl { c"" } else { c"noacl" };
    rustix::mount::mount(source, scratch.path(), "erofs", MountFlags::RDONLY, data)
        .map_err(|e| MountError::kernel(format!("erofs: mount {source}"), e, Vec::new()))?;
    scratch.set_mounted();
    Ok(State::Attached(scratch))
}

#[cfg(test)]
mod tests {
    use super::*;
    use composefs_format::tree::{Node, Tree};
    use composefs_format::write::{write_image, Options};
    use rustix::fs::{memfd_create, MemfdFlags};
    use std::io::Write;

    /// A memfd holding a valid image of an empty tree.
    fn image_in_memfd() -> std::fs::File {
        let mut root = Node::with_mode(0o40755);
        root.nlink = 2;
        let mut bytes = Vec::new();
        write_image(&Tree::new(root), &Options::default(), &mut bytes).unwrap();
        let mut f = std::fs::File::from(memfd_create("test-image", MemfdFlags::CLOEXEC).unwrap());
        f.write_all(&bytes).unwrap();
        f
    }

    fn can_mount() -> bool {
        let ok = rustix::process::geteuid().is_root()
            && std::fs::read_to_string("/proc/filesystems").is_ok_and(|f| f.contains("erofs"))
            && std::path::Path::new("/dev/loop-control").exists();
        if !ok {
            eprintln!("SKIPPED: needs root, erofs and loop devices");
        }
        ok
    }

    #[test]
    fn enotblk_falls_back_to_a_loop_device() {
        if !can_mount() {
            return;
        }
        // EROFS cannot back a mount with a memfd and answers ENOTBLK, like a kernel
        // without file-backed mounts; told it is an ordinary file, `mount` must fall back.
        let f = image_in_memfd();
        let source = Source {
            image: f.as_fd(),
            in_memory: false,
            has_acl: false,
        };
        let m = mount(source, None, None, None).unwrap();
        assert_eq!(m.source(), ErofsSource::LoopDevice);
        assert!(m.detached().is_some());
        // Forced to a file-backed mount, the same answer is an error.
        let e = mount(source, Some(ErofsSource::File), None, None).unwrap_err();
        assert_eq!(e.errno(), Some(Errno::NOTBLK), "{e}");
        // A known in-memory copy never tries the file, and refuses to be forced to.
        let source = Source {
            in_memory: true,
            ..source
        };
        assert_eq!(
            mount(source, None, None, None).unwrap().source(),
            ErofsSource::LoopDevice
        );
        let e = mount(source, Some(ErofsSource::File), None, None).unwrap_err();
        assert!(e.to_string().contains("sealed in-memory copy"), "{e}");
    }

    #[test]
    fn attaching_makes_a_path_and_dropping_removes_it() {
        if !can_mount() {
            return;
        }
        let parent = tempfile::tempdir().unwrap();
        let f = image_in_memfd();
        let source = Source {
            image: f.as_fd(),
            in_memory: true,
            has_acl: false,
        };
        let mut m = mount(source, None, None, Some(parent.path())).unwrap();
        let path = m.path(Some(parent.path())).unwrap().to_owned();
        assert!(path.starts_with(parent.path()));
        assert!(m.detached().is_none());
        // The root of the image is there: `.` and `..` only, plus the 256 hidden stubs
        // that a plain EROFS mount shows as character devices.
        assert_eq!(std::fs::read_dir(&path).unwrap().count(), 256);
        // Asking again gives the same path.
        assert_eq!(m.path(None).unwrap(), path);
        drop(m);
        assert!(!path.exists());
    }
}
