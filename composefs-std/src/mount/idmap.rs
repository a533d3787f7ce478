//! Idmapped mounts: `mount_setattr(MOUNT_ATTR_IDMAP)` with a user namespace, which rustix
//! does not wrap.
#![allow(unsafe_code)]

use std::fs::File;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

use rustix::io::Errno;

use super::MountError;

/// `MOUNT_ATTR_IDMAP` (`<linux/mount.h>`).
const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;

/// `struct mount_attr` (`MOUNT_ATTR_SIZE_VER0`).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// Opens the user namespace file at `path` (e.g. `/proc/PID/ns/user`).
pub(crate) fn open_userns(path: &Path) -> Result<OwnedFd, MountError> {
    File::open(path)
        .map(OwnedFd::from)
        .map_err(|source| MountError::OpenUserns {
            path: path.to_owned(),
            source,
        })
}

/// Idmaps the detached mount `mount` with the user namespace `userns`.
pub(crate) fn set_idmap(mount: BorrowedFd<'_>, userns: BorrowedFd<'_>) -> Result<(), MountError> {
    let userns_fd = u64::try_from(userns.as_raw_fd()).map_err(|_| {
        MountError::kernel(
            "erofs: mount_setattr MOUNT_ATTR_IDMAP",
            Errno::BADF,
            Vec::new(),
        )
    })?;
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_IDMAP,
        attr_clr: 0,
        propagation: 0,
        userns_fd,
    };
    // SAFETY: mount_setattr(2) reads `size` bytes of `struct mount_attr` from `&attr`,
    // which lives for the whole call and has the kernel's VER0 layout (32 bytes, checked
    // by a test); the path is a NUL-terminated empty string, with AT_EMPTY_PATH making
    // the call act on `mount` itself. No memory is written.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            mount.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH,
            std::ptr::from_ref(&attr),
            std::mem::size_of::<MountAttr>(),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(MountError::kernel(
            "erofs: mount_setattr MOUNT_ATTR_IDMAP",
            Errno::from_io_error(&std::io::Error::last_os_error()).unwrap_or(Errno::IO),
            Vec::new(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abi_matches_linux_mount_h() {
        assert_eq!(std::mem::size_of::<MountAttr>(), 32);
        assert_eq!(std::mem::offset_of!(MountAttr, userns_fd), 24);
    }

    #[test]
    fn missing_namespace_is_named() {
        let e = open_userns(Path::new("/proc/self/ns/nonexistent")).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("cannot open user namespace /proc/self/ns/nonexistent for idmap"),
            "{e}"
        );
    }
}
