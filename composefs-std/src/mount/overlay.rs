//! The overlay mount on the target: `source=composefs`, `metacopy=on`,
//! `redirect_dir=on`, the EROFS mount as the only lower layer, each basedir as a
//! data-only layer, optional `verity=require` and upper/work directories. The layer modes
//! of [`LayerMode`] are tried newest first while the kernel says it does not know one.

use std::ffi::{CString, OsStr};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{open, Mode, OFlags, CWD};
use rustix::io::Errno;
use rustix::mount::{move_mount, MountAttrFlags, MountFlags, MoveMountFlags};

use super::erofs::ErofsMount;
use super::fscontext::FsContext;
use super::{LayerMode, MountError, MountOptions, Verity, MOUNT_SOURCE};

/// How one attempt ended, when it did not succeed.
enum Attempt {
    /// The kernel does not know this interface: try the next mode.
    Unsupported(MountError),
    /// overlayfs is not on the new mount API at all: skip to the legacy modes.
    LegacyOnly(MountError),
    /// A real failure: stop.
    Failed(MountError),
}

impl From<MountError> for Attempt {
    fn from(e: MountError) -> Self {
        Self::Failed(e)
    }
}

/// `EINVAL` (and `ENOSYS`) mean "unknown interface" for the calls that introduce one.
fn unsupported_if_einval(e: MountError) -> Attempt {
    match e.errno() {
        Some(Errno::INVAL | Errno::NOSYS) => Attempt::Unsupported(e),
        _ => Attempt::Failed(e),
    }
}

/// Mounts the overlay on `target`; returns the mode that worked. `erofs` is dropped on
/// return, so its temporary mount point (if any) is gone by then.
pub(crate) fn mount(
    mut erofs: ErofsMount,
    options: &MountOptions,
    target: &Path,
) -> Result<LayerMode, MountError> {
    let modes: &[LayerMode] = match &options.layers {
        Some(mode) => std::slice::from_ref(mode),
        None => &LayerMode::ALL,
    };
    let forced = options.layers.is_some();
    let mut new_api = true;
    let mut last = None;
    for &mode in modes {
        if mode.is_new_api() && !new_api {
            continue;
        }
        let attempt = match mode {
            LayerMode::Fds => match erofs.detached() {
                Some(lower) => by_fds(lower, options, target),
                // EROFS came from mount(2): the new API is not available.
                None => continue,
            },
            LayerMode::Paths => match erofs.path(options.scratch_dir.as_deref()) {
                Ok(lower) => by_paths(lower, options, target),
                Err(e) => Err(Attempt::Failed(e)),
            },
            LayerMode::LegacyDataOnly | LayerMode::LegacyLower => {
                match erofs.path(options.scratch_dir.as_deref()) {
                    Ok(lower) => legacy(lower, options, target, mode),
                    Err(e) => Err(Attempt::Failed(e)),
                }
            }
        };
        match attempt {
            Ok(()) => return Ok(mode),
            Err(Attempt::LegacyOnly(e)) if !forced => {
                new_api = false;
                last = Some(e);
            }
            Err(Attempt::Unsupported(e)) if !forced => last = Some(e),
            Err(Attempt::Unsupported(e) | Attempt::LegacyOnly(e) | Attempt::Failed(e)) => {
                return Err(e)
            }
        }
    }
    Err(last.unwrap_or_else(|| {
        MountError::kernel(
            "overlay: no layer mode is possible without the new mount API",
            Errno::NOSYS,
            Vec::new(),
        )
    }))
}

/// Opens a filesystem context for overlayfs and sets the options every mode shares.
fn overlay_context(label: &'static str, options: &MountOptions) -> Result<FsContext, Attempt> {
    let ctx = FsContext::open("overlay", label).map_err(|e| match e.errno() {
        Some(Errno::NOSYS) => Attempt::LegacyOnly(e),
        _ => Attempt::Failed(e),
    })?;
    if !ctx.validates_keys() {
        return Err(Attempt::LegacyOnly(MountError::kernel(
            format!("{label}: overlayfs accepts unknown keys (no new mount API support)"),
            Errno::NOSYS,
            Vec::new(),
        )));
    }
    ctx.set_string("source", MOUNT_SOURCE)?;
    ctx.set_string("metacopy", "on")?;
    ctx.set_string("redirect_dir", "on")?;
    match options.effective_verity() {
        Verity::Off => {}
        Verity::Require => ctx.set_string("verity", "require")?,
        Verity::Try => {
            ctx.try_set_string("verity", "require");
        }
    }
    Ok(ctx)
}

/// Creates the superblock and moves the new mount onto `target`.
fn finish(
    ctx: &FsContext,
    options: &MountOptions,
    target: &Path,
    create: impl FnOnce(MountError) -> Attempt,
) -> Result<(), Attempt> {
    ctx.create().map_err(create)?;
    let attrs = if options.read_only {
        MountAttrFlags::MOUNT_ATTR_RDONLY
    } else {
        MountAttrFlags::empty()
    };
    let mount = ctx.mount(attrs)?;
    move_mount(
        &mount,
        "",
        CWD,
        target,
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )
    .map_err(|e| {
        Attempt::Failed(MountError::kernel(
            format!("overlay: move_mount to {}", target.display()),
            e,
            Vec::new(),
        ))
    })
}

/// Opens a layer directory for `FSCONFIG_SET_FD`.
fn open_layer(role: &'static str, path: &Path) -> Result<OwnedFd, MountError> {
    open(
        path,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| {
        MountError::kernel(
            format!("overlay: open {role} {}", path.display()),
            e,
            Vec::new(),
        )
    })
}

/// [`LayerMode::Fds`]: every layer as a descriptor; the EROFS mount stays detached.
fn by_fds(lower: BorrowedFd<'_>, options: &MountOptions, target: &Path) -> Result<(), Attempt> {
    let ctx = overlay_context("overlay (fd layers)", options)?;
    ctx.set_fd("lowerdir+", lower, "the EROFS mount")
        .map_err(unsupported_if_einval)?;
    for dir in &options.basedirs {
        let fd = open_layer("basedir", dir)?;
        ctx.set_fd("datadir+", fd.as_fd(), &dir.display().to_string())
            .map_err(unsupported_if_einval)?;
    }
    if let Some((upper, work)) = &options.upper {
        let upper_fd = open_layer("upperdir", upper)?;
        let work_fd = open_layer("workdir", work)?;
        ctx.set_fd("upperdir", upper_fd.as_fd(), &upper.display().to_string())
            .map_err(unsupported_if_einval)?;
        ctx.set_fd("workdir", work_fd.as_fd(), &work.display().to_string())
            .map_err(unsupported_if_einval)?;
    }
    // Older kernels refuse a detached mount as a layer here, at creation.
    finish(&ctx, options, target, unsupported_if_einval)
}

/// [`LayerMode::Paths`]: layers as path strings (`lowerdir+` and `datadir+` take them
/// verbatim; `upperdir` and `workdir` are unescaped by overlayfs, so `\` is escaped).
fn by_paths(lower: &Path, options: &MountOptions, target: &Path) -> Result<(), Attempt> {
    let ctx = overlay_context("overlay (path layers)", options)?;
    ctx.set_path_string("lowerdir+", lower)
        .map_err(unsupported_if_einval)?;
    for dir in &options.basedirs {
        ctx.set_path_string("datadir+", dir)
            .map_err(unsupported_if_einval)?;
    }
    if let Some((upper, work)) = &options.upper {
        ctx.set_path_string(
            "upperdir",
            Path::new(OsStr::from_bytes(&escape(upper, b"\\"))),
        )?;
        ctx.set_path_string(
            "workdir",
            Path::new(OsStr::from_bytes(&escape(work, b"\\"))),
        )?;
    }
    finish(&ctx, options, target, Attempt::Failed)
}

/// Escapes each byte of `special` in `path` with a backslash.
fn escape(path: &Path, special: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for &b in path.as_os_str().as_bytes() {
        if special.contains(&b) {
            out.push(b'\\');
        }
        out.push(b);
    }
    out
}

/// The option string of `mount(2)` for a legacy mode. Every path is escaped for
/// overlayfs (`\`, `,` and `:`).
fn legacy_data(lower: &Path, options: &MountOptions, mode: LayerMode) -> Vec<u8> {
    const SPECIAL: &[u8] = b"\\,:";
    let separator: &[u8] = if mode == LayerMode::LegacyDataOnly {
        b"::"
    } else {
        b":"
    };
    let mut data = b"metacopy=on,redirect_dir=on,lowerdir=".to_vec();
    data.extend_from_slice(&escape(lower, SPECIAL));
    for dir in &options.basedirs {
        data.extend_from_slice(separator);
        data.extend_from_slice(&escape(dir, SPECIAL));
    }
    if let Some((upper, work)) = &options.upper {
        data.extend_from_slice(b",upperdir=");
        data.extend_from_slice(&escape(upper, SPECIAL));
        data.extend_from_slice(b",workdir=");
        data.extend_from_slice(&escape(work, SPECIAL));
    }
    // As in the reference, `Verity::Try` sets nothing here: an unknown option would
    // fail the whole mount with the same EINVAL as every other problem.
    if options.effective_verity() == Verity::Require {
        data.extend_from_slice(b",verity=require");
    }
    data
}

/// [`LayerMode::LegacyDataOnly`] and [`LayerMode::LegacyLower`]: `mount(2)`.
fn legacy(
    lower: &Path,
    options: &MountOptions,
    target: &Path,
    mode: LayerMode,
) -> Result<(), Attempt> {
    let data = CString::new(legacy_data(lower, options, mode)).map_err(|_| {
        Attempt::Failed(MountError::kernel(
            "overlay (legacy): a layer path contains a NUL byte",
            Errno::INVAL,
            Vec::new(),
        ))
    })?;
    let mut flags = MountFlags::empty();
    if options.read_only {
        flags |= MountFlags::RDONLY;
    }
    let label = if mode == LayerMode::LegacyDataOnly {
        // A kernel without data-only layers would log the refusal: the next mode follows.
        flags |= MountFlags::SILENT;
        "overlay (legacy, data-only layers)"
    } else {
        "overlay (legacy, lower layers)"
    };
    let result = rustix::mount::mount(MOUNT_SOURCE, target, "overlay", flags, data.as_c_str());
    result.map_err(|e| {
        let e = MountError::kernel(format!("{label}: mount"), e, Vec::new());
        if mode == LayerMode::LegacyDataOnly {
            unsupported_if_einval(e)
        } else {
            Attempt::Failed(e)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_options_escape_separators_and_mark_data_layers() {
        let o = MountOptions::new(["/objs/a", "/o,b:c\\d"]);
        let data = legacy_data(
            Path::new("/tmp/.composefs.1"),
            &o,
            LayerMode::LegacyDataOnly,
        );
        assert_eq!(
            String::from_utf8(data).unwrap(),
            r"metacopy=on,redirect_dir=on,lowerdir=/tmp/.composefs.1::/objs/a::/o\,b\:c\\d"
        );
        let o = o.upper("/u,p", "/w").digest([0; 32]);
        let data = legacy_data(Path::new("/m"), &o, LayerMode::LegacyLower);
        assert_eq!(
            String::from_utf8(data).unwrap(),
            r"metacopy=on,redirect_dir=on,lowerdir=/m:/objs/a:/o\,b\:c\\d,upperdir=/u\,p,workdir=/w,verity=require"
        );
        let o = MountOptions::new(["/a"]).verity(Verity::Try);
        let data = legacy_data(Path::new("/m"), &o, LayerMode::LegacyLower);
        assert!(!String::from_utf8(data).unwrap().contains("verity"));
    }
}
