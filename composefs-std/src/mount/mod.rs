//! Mounting composefs images: EROFS for the metadata, overlayfs on top for the file data
//! (SPEC.md 9.4).
//!
//! [`mount_image`] does what `mount.composefs` does, in this order:
//!
//! 1. With [`MountOptions::digest`], the image file must have fs-verity with exactly that
//!    digest (`FS_IOC_MEASURE_VERITY`).
//! 2. The safety check ([`ImageCheck`], on by default): the image bytes pass the
//!    structural check (and optionally the canonical check) before the kernel sees them.
//!    A file without fs-verity is first copied into a sealed memfd, so the kernel mounts
//!    exactly the bytes that were checked, whatever happens to the file afterwards
//!    ([`MountOptions::snapshot`]).
//! 3. EROFS is mounted read-only from the image file itself (`source=/proc/self/fd/N`), or
//!    from a read-only loop device when the kernel has no file-backed mounts (`ENOTBLK`)
//!    or the image is the in-memory copy, with `noacl` unless the header has the ACL
//!    flag; optionally idmapped.
//! 4. overlayfs is mounted on the target with `metacopy=on`, `redirect_dir=on`, the EROFS
//!    mount as the one lower layer and each basedir as a data-only layer, trying the newest
//!    kernel interface first ([`LayerMode`]).
//! 5. The EROFS mount is dropped: it lives on only inside the overlay. In the default
//!    [`LayerMode::Fds`] it is never attached anywhere, so no temporary directory exists.

mod erofs;
mod error;
mod fscontext;
mod idmap;
mod loopdev;
mod overlay;
mod prepare;
mod scratch;

use std::fs::File;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use composefs_format::verity::DIGEST_SIZE;

use crate::verity::{self, FsVerityError};
pub use error::{MountError, Step};

/// The overlay source name shown in `/proc/self/mountinfo`.
pub const MOUNT_SOURCE: &str = "composefs";

/// What to verify in the image before the kernel sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ImageCheck {
    /// Nothing beyond the composefs header magic (what the reference does).
    None,
    /// The structural check of SPEC.md 3.6: every inode, directory, xattr and extent
    /// reachable from the root is well formed and consistent. Linear in the image size.
    #[default]
    Structure,
    /// The structural check, and the image must be exactly what our writer produces for
    /// the tree it holds (the canonical check), so no unusual layout reaches the kernel.
    Canonical,
}

/// overlayfs `verity=` policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Verity {
    /// No `verity=` option: file digests in the image are not enforced.
    #[default]
    Off,
    /// `verity=require`: every regular file must carry a digest and its object must have
    /// fs-verity with that digest, else opening it fails.
    Require,
    /// `verity=require` when the kernel knows the option, else nothing.
    Try,
}

/// Where EROFS reads the image from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErofsSource {
    /// A file-backed mount of the image file (recent kernels; older ones answer
    /// `ENOTBLK`).
    File,
    /// A read-only loop device with 4096-byte blocks over the image file, cleared
    /// automatically when the mount goes away.
    LoopDevice,
}

/// How the layers are handed to overlayfs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerMode {
    /// New mount API, layers given as file descriptors (`FSCONFIG_SET_FD` on `lowerdir+`,
    /// `datadir+`, `upperdir`, `workdir`), the EROFS mount staying detached. Needs no
    /// temporary mount point; needs a recent kernel (works on 6.18).
    Fds,
    /// New mount API, layers given as paths (`lowerdir+`, `datadir+`). The EROFS mount is
    /// attached on a temporary directory for the duration of the overlay mount.
    Paths,
    /// `mount(2)` with `lowerdir=EROFS::DIR1::DIR2` (data-only layers), through a
    /// temporary directory.
    LegacyDataOnly,
    /// `mount(2)` with `lowerdir=EROFS:DIR1:DIR2`: the basedirs become ordinary lower
    /// layers, hidden under the image root's opaque flag and its 256 `00`..`ff`
    /// whiteouts. For kernels without data-only layers.
    LegacyLower,
}

impl LayerMode {
    /// Every mode, newest interface first: the order tried when none is forced.
    pub const ALL: [Self; 4] = [
        Self::Fds,
        Self::Paths,
        Self::LegacyDataOnly,
        Self::LegacyLower,
    ];

    /// Whether this mode uses the new mount API for overlayfs.
    #[must_use]
    pub fn is_new_api(self) -> bool {
        matches!(self, Self::Fds | Self::Paths)
    }
}

/// How to mount an image. Built with [`MountOptions::new`] and the setters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountOptions {
    basedirs: Vec<PathBuf>,
    digest: Option<[u8; DIGEST_SIZE]>,
    verity: Verity,
    upper: Option<(PathBuf, PathBuf)>,
    idmap: Option<PathBuf>,
    read_only: bool,
    check: ImageCheck,
    source: Option<ErofsSource>,
    layers: Option<LayerMode>,
    scratch_dir: Option<PathBuf>,
    snapshot: bool,
}

impl MountOptions {
    /// Options for the object directories `basedirs` (searched in order; at least one is
    /// needed), with everything else at its default: no digest, no verity, read-only
    /// overlay without upper layer, structural check on, automatic EROFS source and layer
    /// mode.
    #[must_use]
    pub fn new(basedirs: impl IntoIterator<Item = impl Into<PathBuf>>) -> Self {
        Self {
            basedirs: basedirs.into_iter().map(Into::into).collect(),
            digest: None,
            verity: Verity::Off,
            upper: None,
            idmap: None,
            read_only: false,
            check: ImageCheck::default(),
            source: None,
            layers: None,
            scratch_dir: None,
            snapshot: true,
        }
    }

    /// The image file must have fs-verity with this digest. Implies [`Verity::Require`]
    /// (as in the reference): a pinned image whose files were not checked would pin
    /// nothing.
    #[must_use]
    pub fn digest(mut self, digest: [u8; DIGEST_SIZE]) -> Self {
        self.digest = Some(digest);
        self
    }

    /// The overlayfs `verity=` policy.
    #[must_use]
    pub fn verity(mut self, verity: Verity) -> Self {
        self.verity = verity;
        self
    }

    /// A writable upper layer and its work directory (same filesystem, both needed).
    #[must_use]
    pub fn upper(mut self, upperdir: impl Into<PathBuf>, workdir: impl Into<PathBuf>) -> Self {
        self.upper = Some((upperdir.into(), workdir.into()));
        self
    }

    /// Idmap the EROFS mount with the user namespace at `userns` (e.g.
    /// `/proc/PID/ns/user`): file owners in the image are mapped through it.
    #[must_use]
    pub fn idmap(mut self, userns: impl Into<PathBuf>) -> Self {
        self.idmap = Some(userns.into());
        self
    }

    /// Make the overlay mount read-only (`MOUNT_ATTR_RDONLY` / `MS_RDONLY`). Without an
    /// upper layer the overlay cannot be written anyway.
    #[must_use]
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }

    /// What to verify before mounting (default [`ImageCheck::Structure`]).
    #[must_use]
    pub fn check(mut self, check: ImageCheck) -> Self {
        self.check = check;
        self
    }

    /// Whether a checked image whose file has no fs-verity is mounted from a sealed
    /// in-memory copy (default `true`). The copy makes the check hold for as long as the
    /// mount exists: EROFS reads the image lazily, so writes to the file after the check
    /// would otherwise reach the kernel unchecked. The copy costs memory of the image's
    /// size and needs a loop device. With `false` the file itself is mounted, which is
    /// safe only if nobody can write it.
    #[must_use]
    pub fn snapshot(mut self, snapshot: bool) -> Self {
        self.snapshot = snapshot;
        self
    }

    /// Force where EROFS reads from; by default a file-backed mount, and a loop device
    /// when the kernel answers `ENOTBLK`.
    #[must_use]
    pub fn erofs_source(mut self, source: ErofsSource) -> Self {
        self.source = Some(source);
        self
    }

    /// Force one layer mode; by default every mode of [`LayerMode::ALL`] is tried in
    /// turn while the kernel says it does not know the interface (`EINVAL`, `ENOSYS`).
    #[must_use]
    pub fn layer_mode(mut self, mode: LayerMode) -> Self {
        self.layers = Some(mode);
        self
    }

    /// Where the temporary mount point of the path-based modes is made (default
    /// `$TMPDIR`, else `/tmp`). It is removed before [`mount_image`] returns.
    #[must_use]
    pub fn scratch_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.scratch_dir = Some(dir.into());
        self
    }

    /// The object directories.
    #[must_use]
    pub fn basedirs(&self) -> &[PathBuf] {
        &self.basedirs
    }

    /// The overlay `verity=` policy in effect, after [`MountOptions::digest`] implied
    /// [`Verity::Require`].
    #[must_use]
    pub fn effective_verity(&self) -> Verity {
        if self.digest.is_some() {
            Verity::Require
        } else {
            self.verity
        }
    }
}

/// What [`mount_image`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mounted {
    /// Where EROFS read the image from.
    pub source: ErofsSource,
    /// How the layers reached overlayfs.
    pub layers: LayerMode,
    /// The check the image passed.
    pub check: ImageCheck,
    /// Whether the kernel mounted a sealed in-memory copy of the image (made because the
    /// image was checked and its file has no fs-verity), rather than the file itself.
    pub snapshot: bool,
}

/// Parses a digest given as exactly 64 hexadecimal digits (either case).
///
/// # Errors
/// [`MountError::InvalidDigest`] naming the length or the first bad character.
pub fn parse_digest(text: &str) -> Result<[u8; DIGEST_SIZE], MountError> {
    let invalid = |reason: String| MountError::InvalidDigest {
        text: text.to_owned(),
        reason,
    };
    if text.len() != 2 * DIGEST_SIZE {
        return Err(invalid(format!(
            "expected {} hexadecimal digits, got {} characters",
            2 * DIGEST_SIZE,
            text.chars().count()
        )));
    }
    if let Some((at, c)) = text.char_indices().find(|(_, c)| !c.is_ascii_hexdigit()) {
        return Err(invalid(format!(
            "{c:?} at position {at} is not a hexadecimal digit"
        )));
    }
    verity::from_hex(&text.to_ascii_lowercase())
        .ok_or_else(|| invalid("not a hexadecimal digest".to_owned()))
}

/// Opens the image at `image` read-only and mounts it on `target` (see
/// [`mount_image`]).
///
/// # Errors
/// [`MountError::OpenImage`], or any error of [`mount_image`].
pub fn mount(
    image: impl AsRef<Path>,
    target: impl AsRef<Path>,
    options: &MountOptions,
) -> Result<Mounted, MountError> {
    let path = image.as_ref();
    let file = File::open(path).map_err(|source| MountError::OpenImage {
        path: path.to_owned(),
        source,
    })?;
    mount_image(&file, target.as_ref(), options)
}

/// Mounts the composefs image open as `image` on `target`: the steps of the module
/// documentation. Nothing is left behind on failure: no mount, no loop device, no
/// temporary directory.
///
/// # Errors
/// - [`MountError::NoBasedir`] without object directories;
/// - for [`MountOptions::digest`]: [`MountError::VerityUnsupported`],
///   [`MountError::NoVerity`], [`MountError::WrongVerity`];
/// - [`MountError::NotComposefs`], [`MountError::CheckFailed`],
///   [`MountError::NotCanonical`] when the image is refused before mounting;
/// - [`MountError::Io`] or [`MountError::Kernel`] (with the step, the errno and the
///   kernel's own messages) when a system call fails.
pub fn mount_image(
    image: &File,
    target: &Path,
    options: &MountOptions,
) -> Result<Mounted, MountError> {
    if options.basedirs.is_empty() {
        return Err(MountError::NoBasedir);
    }
    let verity_digest = match options.digest {
        Some(expected) => Some(verify_image_digest(image, &expected)?),
        None => None,
    };
    let prepared = prepare::prepare(
        image,
        options.check,
        verity_digest.is_some() || !options.snapshot,
    )?;
    let userns = options
        .idmap
        .as_deref()
        .map(idmap::open_userns)
        .transpose()?;
    let erofs = erofs::mount(
        erofs::Source {
            image: prepared.file.as_fd(),
            in_memory: prepared.snapshot,
            has_acl: prepared.has_acl,
        },
        options.source,
        userns.as_ref().map(AsFd::as_fd),
        options.scratch_dir.as_deref(),
    )?;
    let source = erofs.source();
    let layers = overlay::mount(erofs, options, target)?;
    Ok(Mounted {
        source,
        layers,
        check: options.check,
        snapshot: prepared.snapshot,
    })
}

/// Requires fs-verity on `image` with digest `expected`; returns it.
fn verify_image_digest(
    image: &File,
    expected: &[u8; DIGEST_SIZE],
) -> Result<[u8; DIGEST_SIZE], MountError> {
    match verity::measure_verity(image) {
        Ok(Some(actual)) if actual == *expected => Ok(actual),
        Ok(Some(actual)) => Err(MountError::WrongVerity {
            expected: *expected,
            actual,
        }),
        Ok(None) => Err(MountError::NoVerity),
        Err(FsVerityError::Unsupported(errno)) => Err(MountError::VerityUnsupported(errno)),
        Err(e) => Err(MountError::MeasureVerity(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_must_be_64_hex_digits() {
        let hex = "0123456789abcdefABCDEF0123456789abcdef0123456789abcdef0123456789";
        let d = parse_digest(hex).unwrap();
        assert_eq!(d[0], 0x01);
        assert_eq!(d[7], 0xef);
        assert_eq!(d[8], 0xab);
        assert_eq!(d[31], 0x89);
        for (text, want) in [
            ("", "expected 64 hexadecimal digits, got 0 characters"),
            ("00", "expected 64 hexadecimal digits, got 2 characters"),
            (&hex[..63], "got 63 characters"),
            (&format!("{hex}0"), "got 65 characters"),
        ] {
            let e = parse_digest(text).unwrap_err().to_string();
            assert!(e.contains(want), "{text}: {e}");
        }
        let bad = format!("{}g", &hex[..63]);
        let e = parse_digest(&bad).unwrap_err().to_string();
        assert!(e.contains("'g' at position 63"), "{e}");
        let wide = format!("é{}", &hex[..62]);
        assert!(parse_digest(&wide).is_err());
    }

    #[test]
    fn digest_implies_verity_require() {
        let o = MountOptions::new(["/x"]);
        assert_eq!(o.effective_verity(), Verity::Off);
        let o = o.verity(Verity::Try);
        assert_eq!(o.effective_verity(), Verity::Try);
        assert_eq!(o.digest([0; 32]).effective_verity(), Verity::Require);
    }

    #[test]
    fn no_basedir_is_refused_before_anything_else() {
        let f = File::open("/dev/null").unwrap();
        let e = mount_image(
            &f,
            Path::new("/nonexistent"),
            &MountOptions::new(Vec::<PathBuf>::new()),
        )
        .unwrap_err();
        assert!(matches!(e, MountError::NoBasedir), "{e}");
    }

    #[test]
    fn digest_on_a_file_without_verity_names_the_cause() {
        let f = tempfile::NamedTempFile::new().unwrap();
        let e = mount_image(
            f.as_file(),
            Path::new("/nonexistent"),
            &MountOptions::new(["/x"]).digest([7; 32]),
        )
        .unwrap_err();
        // This kernel or filesystem may or may not have fs-verity; both answers are named.
        let text = e.to_string();
        assert!(
            matches!(e, MountError::VerityUnsupported(_) | MountError::NoVerity),
            "{text}"
        );
        assert!(
            text.contains("fs-verity is not supported by this kernel or filesystem")
                || text == "image has no fs-verity",
            "{text}"
        );
    }
}
