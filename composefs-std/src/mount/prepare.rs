//! Before the kernel sees an image: the header, the safety check, and the sealed copy
//! that makes the check hold for what is mounted.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::FileExt;

use composefs_format::check::{check_bytes, Report};
use composefs_format::image::Image;
use composefs_format::ondisk::{COMPOSEFS_FLAGS_HAS_ACL, COMPOSEFS_MAGIC};
use rustix::fs::{fcntl_add_seals, memfd_create, MemfdFlags, SealFlags};

use super::{ImageCheck, MountError};
use crate::verity;

/// Problems quoted in [`MountError::CheckFailed`].
const QUOTED_PROBLEMS: usize = 8;
/// Bytes copied per read when snapshotting.
const COPY_CHUNK: usize = 1 << 20;

/// The image as it will be handed to EROFS.
#[derive(Debug)]
pub(crate) struct Prepared<'a> {
    /// The file to mount: the caller's, or the sealed copy.
    pub(crate) file: ImageFile<'a>,
    /// The header's ACL flag (EROFS is mounted `noacl` without it).
    pub(crate) has_acl: bool,
    /// Whether `file` is a sealed copy.
    pub(crate) snapshot: bool,
}

/// The caller's image file or our sealed copy of it.
#[derive(Debug)]
pub(crate) enum ImageFile<'a> {
    /// The image file itself.
    Original(&'a File),
    /// A memfd holding a copy, sealed against any change.
    Sealed(File),
}

impl AsFd for ImageFile<'_> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Self::Original(f) => f.as_fd(),
            Self::Sealed(f) => f.as_fd(),
        }
    }
}

/// Reads the header, and runs `check`. A checked image is mounted from a sealed copy
/// unless `keep_file` (the file is known to have fs-verity, or the caller declined the
/// copy) or the file turns out to have fs-verity, which makes it immutable.
pub(crate) fn prepare(
    image: &File,
    check: ImageCheck,
    keep_file: bool,
) -> Result<Prepared<'_>, MountError> {
    if check == ImageCheck::None {
        let has_acl = read_header_acl(image)?;
        return Ok(Prepared {
            file: ImageFile::Original(image),
            has_acl,
            snapshot: false,
        });
    }
    let keep_file = keep_file || matches!(verity::measure_verity(image), Ok(Some(_)));
    let file = if keep_file {
        ImageFile::Original(image)
    } else {
        ImageFile::Sealed(snapshot(image)?)
    };
    let has_acl = match &file {
        ImageFile::Original(f) => check_file(f, check)?,
        ImageFile::Sealed(f) => check_file(f, check)?,
    };
    Ok(Prepared {
        snapshot: matches!(file, ImageFile::Sealed(_)),
        file,
        has_acl,
    })
}

/// The reference's only test: a composefs header magic. Returns the ACL flag.
fn read_header_acl(image: &File) -> Result<bool, MountError> {
    let mut header = [0u8; 12];
    let mut got = 0;
    while got < header.len() {
        let rest = header.get_mut(got..).unwrap_or_default();
        match image.read_at(rest, got as u64) {
            Ok(0) => {
                return Err(MountError::NotComposefs {
                    reason: format!("the file has {got} bytes, less than a composefs header"),
                })
            }
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(source) => {
                return Err(MountError::Io {
                    what: "reading the image header",
                    source,
                })
            }
        }
    }
    let word = |i: usize| {
        let mut w = [0u8; 4];
        w.copy_from_slice(header.get(i..i + 4).unwrap_or(&[0; 4]));
        u32::from_le_bytes(w)
    };
    let magic = word(0);
    if magic != COMPOSEFS_MAGIC {
        return Err(MountError::NotComposefs {
            reason: format!("header magic is {magic:#010x}, not {COMPOSEFS_MAGIC:#010x}"),
        });
    }
    Ok(word(8) & COMPOSEFS_FLAGS_HAS_ACL != 0)
}

/// Copies `image` into a memfd and seals it against writes, growth and shrinking.
fn snapshot(image: &File) -> Result<File, MountError> {
    let io = |what| move |source| MountError::Io { what, source };
    let fd = memfd_create(
        "composefs-image",
        MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING,
    )
    .map_err(|e| io("creating the in-memory copy of the image")(e.into()))?;
    let mut copy = File::from(fd);
    let mut buf = vec![0u8; COPY_CHUNK];
    let mut offset = 0u64;
    loop {
        let n = match image.read_at(&mut buf, offset) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io("reading the image")(e)),
        };
        copy.write_all(buf.get(..n).unwrap_or_default())
            .map_err(io("copying the image to memory"))?;
        offset = offset.saturating_add(n as u64);
    }
    fcntl_add_seals(
        &copy,
        SealFlags::SHRINK | SealFlags::GROW | SealFlags::WRITE | SealFlags::SEAL,
    )
    .map_err(|e| io("sealing the in-memory copy of the image")(e.into()))?;
    Ok(copy)
}

/// Runs `check` on the bytes of `file`, which nobody can change; returns the ACL flag.
fn check_file(file: &File, check: ImageCheck) -> Result<bool, MountError> {
    let bytes = ImageBytes::load(file)?;
    let report = check_bytes(&bytes);
    if !report.is_sound() {
        return Err(check_failed(&report));
    }
    let image = Image::open(&bytes).map_err(|e| MountError::NotComposefs {
        reason: e.to_string(),
    })?;
    if check == ImageCheck::Canonical {
        canonical(&bytes)?;
    }
    Ok(image.has_acl())
}

/// The canonical check: the image must be byte for byte what our writer makes of the
/// tree it holds (SPEC.md 5.3).
fn canonical(bytes: &[u8]) -> Result<(), MountError> {
    composefs_format::canonical::verify(bytes)
        .map(drop)
        .map_err(|e| MountError::NotCanonical(e.to_string()))
}

fn check_failed(report: &Report<'_>) -> MountError {
    let problems = report
        .problems()
        .iter()
        .take(QUOTED_PROBLEMS)
        .map(|p| report.describe(p).to_string())
        .collect();
    MountError::CheckFailed {
        problems,
        total: (report.problems().len() as u64).saturating_add(report.dropped()),
    }
}

/// The bytes of an image file that cannot change: mapped, or read.
enum ImageBytes {
    #[cfg(feature = "mmap")]
    Mapped(crate::mmap::MappedFile),
    #[cfg(not(feature = "mmap"))]
    Read(Vec<u8>),
}

impl ImageBytes {
    fn load(file: &File) -> Result<Self, MountError> {
        let err = |source| MountError::Io {
            what: "reading the image for the check",
            source,
        };
        #[cfg(feature = "mmap")]
        {
            crate::mmap::MappedFile::map(file)
                .map(Self::Mapped)
                .map_err(err)
        }
        #[cfg(not(feature = "mmap"))]
        {
            let len = file.metadata().map_err(err)?.len();
            let mut buf = vec![0u8; usize::try_from(len).unwrap_or(usize::MAX)];
            file.read_exact_at(&mut buf, 0).map_err(err)?;
            Ok(Self::Read(buf))
        }
    }
}

impl std::ops::Deref for ImageBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            #[cfg(feature = "mmap")]
            Self::Mapped(m) => m.bytes(),
            #[cfg(not(feature = "mmap"))]
            Self::Read(v) => v,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn temp_with(bytes: &[u8]) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(bytes).unwrap();
        f
    }

    #[test]
    fn header_magic_is_required_even_without_the_check() {
        let f = temp_with(b"\0\0\0\0 definitely not an image");
        let e = prepare(f.as_file(), ImageCheck::None, false).unwrap_err();
        assert_eq!(
            e.to_string(),
            "not a composefs image: header magic is 0x00000000, not 0xd078629a"
        );
        let f = temp_with(&[0x9a, 0x62]);
        let e = prepare(f.as_file(), ImageCheck::None, false).unwrap_err();
        assert!(e.to_string().contains("the file has 2 bytes"), "{e}");
    }

    #[test]
    fn acl_flag_comes_from_the_header() {
        let mut header = Vec::new();
        header.extend_from_slice(&COMPOSEFS_MAGIC.to_le_bytes());
        header.extend_from_slice(&1u32.to_le_bytes());
        header.extend_from_slice(&COMPOSEFS_FLAGS_HAS_ACL.to_le_bytes());
        let f = temp_with(&header);
        assert!(
            prepare(f.as_file(), ImageCheck::None, false)
                .unwrap()
                .has_acl
        );
        header[8] = 0;
        let f = temp_with(&header);
        assert!(
            !prepare(f.as_file(), ImageCheck::None, false)
                .unwrap()
                .has_acl
        );
    }

    #[test]
    fn garbage_fails_the_structural_check() {
        let f = temp_with(&[0u8; 8192]);
        let e = prepare(f.as_file(), ImageCheck::Structure, false).unwrap_err();
        assert!(
            matches!(&e, MountError::CheckFailed { total: 1, .. }),
            "{e}"
        );
        assert!(e.to_string().contains("magic"), "{e}");
    }

    #[test]
    fn snapshot_is_an_identical_sealed_copy() {
        let data: Vec<u8> = (0..3 * COPY_CHUNK + 17).map(|i| (i % 251) as u8).collect();
        let f = temp_with(&data);
        // The caller's offset does not matter.
        let mut file = f.reopen().unwrap();
        let mut skip = [0u8; 5];
        file.read_exact(&mut skip).unwrap();
        let mut copy = snapshot(&file).unwrap();
        let mut back = vec![0u8; data.len() + 1];
        let n = copy.read_at(&mut back, 0).unwrap();
        let n = n + copy.read_at(&mut back[n..], n as u64).unwrap();
        assert_eq!(n, data.len());
        assert!(back[..n] == data[..], "the copy differs");
        assert!(
            copy.write_all(b"x").is_err(),
            "a sealed copy takes no writes"
        );
        assert!(copy.set_len(1).is_err(), "a sealed copy cannot shrink");
        let seals = rustix::fs::fcntl_get_seals(&copy).unwrap();
        assert!(seals
            .contains(SealFlags::WRITE | SealFlags::SHRINK | SealFlags::GROW | SealFlags::SEAL));
    }
}
