//! Looking up backing files beneath a base directory (`--basedir`), never outside it.
//!
//! A payload is resolved with `openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)`, so
//! neither `..` nor a symlink inside the store can lead out of it; on kernels without
//! `openat2` each component is opened in turn with `O_NOFOLLOW`, which refuses symlinks
//! altogether. Files are first opened as paths (`O_PATH`), so looking up a FIFO or a
//! device never blocks or has side effects; only regular files are opened for reading.

use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

/// An open base directory.
#[derive(Debug)]
pub struct Basedir {
    path: PathBuf,
    dir: OwnedFd,
}

/// What a payload names beneath the base directory.
#[derive(Debug)]
pub enum Lookup {
    /// A regular file.
    Regular(OwnedFd),
    /// Something else (a directory, device, FIFO, socket or, without `openat2`, a
    /// symlink).
    NotRegular,
    /// Nothing.
    Missing,
    /// Resolving the path would leave the base directory.
    Escapes,
    /// The lookup failed otherwise.
    Error(io::Error),
}

impl Basedir {
    /// Opens the directory at `path` (following symlinks, as any command-line path).
    ///
    /// # Errors
    /// When `path` cannot be opened as a directory.
    pub fn open(path: &Path) -> io::Result<Self> {
        let dir = rustix::fs::open(
            path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Self {
            path: path.to_path_buf(),
            dir,
        })
    }

    /// The path given to [`Basedir::open`].
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Looks up `payload`, a relative path (leading slashes are ignored, as the
    /// reference does).
    #[must_use]
    pub fn lookup(&self, payload: &[u8]) -> Lookup {
        let relative = trim_leading_slashes(payload);
        let fd = match open_beneath(&self.dir, relative, OFlags::PATH) {
            Ok(fd) => fd,
            Err(Errno::NOENT | Errno::NOTDIR) => return Lookup::Missing,
            Err(Errno::XDEV) => return Lookup::Escapes,
            Err(e) => return Lookup::Error(e.into()),
        };
        match rustix::fs::fstat(&fd) {
            Ok(st) if FileType::from_raw_mode(st.st_mode).is_file() => Lookup::Regular(fd),
            Ok(_) => Lookup::NotRegular,
            Err(e) => Lookup::Error(e.into()),
        }
    }

    /// Opens `payload` for reading when it is a regular file.
    ///
    /// # Errors
    /// What the lookup found instead of a regular file, or why opening it failed.
    pub fn open_regular(&self, payload: &[u8]) -> Result<File, Lookup> {
        match self.lookup(payload) {
            Lookup::Regular(_) => {}
            other => return Err(other),
        }
        let relative = trim_leading_slashes(payload);
        // O_NONBLOCK: should the name have been replaced by a FIFO since the lookup, the
        // open does not wait for a writer; the type is checked again below.
        let fd = open_beneath(
            &self.dir,
            relative,
            OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY,
        )
        .map_err(|e| Lookup::Error(e.into()))?;
        match rustix::fs::fstat(&fd) {
            Ok(st) if FileType::from_raw_mode(st.st_mode).is_file() => Ok(File::from(fd)),
            Ok(_) => Err(Lookup::NotRegular),
            Err(e) => Err(Lookup::Error(e.into())),
        }
    }
}

fn trim_leading_slashes(payload: &[u8]) -> &[u8] {
    let start = payload
        .iter()
        .position(|&b| b != b'/')
        .unwrap_or(payload.len());
    payload.get(start..).unwrap_or_default()
}

/// Opens `relative` beneath `dir` with `flags` (plus `O_CLOEXEC`).
fn open_beneath(dir: &OwnedFd, relative: &[u8], flags: OFlags) -> Result<OwnedFd, Errno> {
    let path = Path::new(OsStr::from_bytes(relative));
    match rustix::fs::openat2(
        dir,
        path,
        flags | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS,
    ) {
        Err(Errno::NOSYS) => open_components(dir, relative, flags),
        other => other,
    }
}

/// The fallback of [`open_beneath`]: opens each component with `O_NOFOLLOW`, so no
/// symlink is followed; `..` and `.` components are refused (`EXDEV`), empty ones
/// skipped.
fn open_components(dir: &OwnedFd, relative: &[u8], flags: OFlags) -> Result<OwnedFd, Errno> {
    let components: Vec<&[u8]> = relative
        .split(|&b| b == b'/')
        .filter(|c| !c.is_empty())
        .collect();
    if components.iter().any(|&c| c == b".." || c == b".") {
        return Err(Errno::XDEV);
    }
    let Some((last, parents)) = components.split_last() else {
        return Err(Errno::NOENT);
    };
    let mut at: Option<OwnedFd> = None;
    for name in parents {
        let base = at.as_ref().unwrap_or(dir);
        let next = rustix::fs::openat(
            base,
            Path::new(OsStr::from_bytes(name)),
            OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        at = Some(next);
    }
    let base = at.as_ref().unwrap_or(dir);
    rustix::fs::openat(
        base,
        Path::new(OsStr::from_bytes(last)),
        flags | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::unix::fs::symlink;

    /// A store with `ab/obj`, a directory `ab/dir`, a symlink `ab/in` to `obj`, a symlink
    /// `ab/out` leaving the store, and a FIFO `ab/fifo`.
    fn store() -> (tempfile::TempDir, Basedir) {
        let top = tempfile::tempdir().unwrap();
        std::fs::write(top.path().join("secret"), b"outside").unwrap();
        let store = top.path().join("store");
        std::fs::create_dir_all(store.join("ab/dir")).unwrap();
        std::fs::write(store.join("ab/obj"), b"object").unwrap();
        symlink("obj", store.join("ab/in")).unwrap();
        symlink("../../secret", store.join("ab/out")).unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            store.join("ab/fifo").as_path(),
            FileType::Fifo,
            Mode::from_raw_mode(0o644),
            0,
        )
        .unwrap();
        let basedir = Basedir::open(&store).unwrap();
        (top, basedir)
    }

    #[test]
    fn lookups_stay_beneath_the_base_directory() {
        let (_top, b) = store();
        assert!(matches!(b.lookup(b"ab/obj"), Lookup::Regular(_)));
        assert!(matches!(b.lookup(b"/ab/obj"), Lookup::Regular(_)));
        assert!(matches!(b.lookup(b"ab/in"), Lookup::Regular(_)));
        assert!(matches!(b.lookup(b"ab/dir"), Lookup::NotRegular));
        assert!(matches!(b.lookup(b"ab/fifo"), Lookup::NotRegular));
        assert!(matches!(b.lookup(b"ab/none"), Lookup::Missing));
        assert!(matches!(b.lookup(b"ab/obj/x"), Lookup::Missing));
        assert!(matches!(b.lookup(b"../secret"), Lookup::Escapes));
        assert!(matches!(b.lookup(b"ab/out"), Lookup::Escapes));
        let mut text = String::new();
        b.open_regular(b"ab/in")
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "object");
        assert!(matches!(
            b.open_regular(b"ab/fifo"),
            Err(Lookup::NotRegular)
        ));
        assert!(matches!(b.open_regular(b"ab/none"), Err(Lookup::Missing)));
    }

    #[test]
    fn the_fallback_follows_no_symlink_and_no_dot_dot() {
        let (_top, b) = store();
        assert!(open_components(&b.dir, b"ab//obj", OFlags::PATH).is_ok());
        assert_eq!(
            open_components(&b.dir, b"ab/none", OFlags::PATH).err(),
            Some(Errno::NOENT)
        );
        assert_eq!(
            open_components(&b.dir, b"ab/../ab/obj", OFlags::PATH).err(),
            Some(Errno::XDEV)
        );
        // O_PATH | O_NOFOLLOW opens the symlink itself, never its target.
        let fd = open_components(&b.dir, b"ab/out", OFlags::PATH).unwrap();
        let st = rustix::fs::fstat(&fd).unwrap();
        assert_eq!(FileType::from_raw_mode(st.st_mode), FileType::Symlink);
        assert!(open_components(&b.dir, b"ab/out", OFlags::RDONLY).is_err());
        assert_eq!(
            open_components(&b.dir, b"", OFlags::PATH).err(),
            Some(Errno::NOENT)
        );
    }
}
