//! Looking up backing files beneath a base directory (`--basedir`), never outside it.
//!
//! A payload is resolved with `openat2(RESOLVE_BENEATH)`, so neither `..` nor a symlink
//! inside the store can lead out of it. Two rules exist: [`Resolve::Beneath`] follows
//! symlinks that stay inside (what `missing-objects` asks, like the reference's `fstatat`),
//! [`Resolve::AsOverlay`] follows none and crosses no mount point, as overlayfs resolves a
//! redirect in a data-only layer (what `fsck` checks, since that is what will be opened).
//! On kernels without `openat2` each component is opened in turn with `O_NOFOLLOW`, which
//! follows no symlink under either rule. Files are first opened as paths (`O_PATH`), so
//! looking up a FIFO or a device never blocks or has side effects; only regular files are
//! opened for reading.

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

/// How a payload is resolved beneath the base directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolve {
    /// Symlinks are followed as long as they stay beneath the base directory.
    Beneath,
    /// No symlink is followed and no mount point crossed, as overlayfs looks up a redirect
    /// in a data-only layer (`LOOKUP_BENEATH | LOOKUP_NO_SYMLINKS | LOOKUP_NO_XDEV`).
    AsOverlay,
}

impl Resolve {
    fn flags(self) -> ResolveFlags {
        match self {
            Self::Beneath => ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS,
            Self::AsOverlay => {
                ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_XDEV
            }
        }
    }
}

/// What a payload names beneath the base directory.
#[derive(Debug)]
pub enum Lookup {
    /// A regular file.
    Regular(OwnedFd),
    /// Something else: a directory, device, FIFO or socket.
    NotRegular,
    /// A symlink (or a path through one) that the rule does not follow.
    Symlink,
    /// Nothing.
    Missing,
    /// Resolving the path would leave the base directory (or, with
    /// [`Resolve::AsOverlay`], cross a mount point).
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
    /// reference does), under `rule`.
    #[must_use]
    pub fn lookup(&self, payload: &[u8], rule: Resolve) -> Lookup {
        let relative = trim_leading_slashes(payload);
        let fd = match open_beneath(&self.dir, relative, OFlags::PATH, rule) {
            Ok(fd) => fd,
            Err(e) => return failed(e),
        };
        match rustix::fs::fstat(&fd).map(|st| FileType::from_raw_mode(st.st_mode)) {
            Ok(FileType::RegularFile) => Lookup::Regular(fd),
            Ok(FileType::Symlink) => Lookup::Symlink,
            Ok(_) => Lookup::NotRegular,
            Err(e) => Lookup::Error(e.into()),
        }
    }

    /// Opens `payload` for reading when it is a regular file.
    ///
    /// # Errors
    /// What the lookup found instead of a regular file, or why opening it failed.
    pub fn open_regular(&self, payload: &[u8], rule: Resolve) -> Result<File, Lookup> {
        match self.lookup(payload, rule) {
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
            rule,
        )
        .map_err(failed)?;
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

/// What a failed resolution means.
fn failed(e: Errno) -> Lookup {
    match e {
        Errno::NOENT | Errno::NOTDIR => Lookup::Missing,
        Errno::XDEV => Lookup::Escapes,
        Errno::LOOP => Lookup::Symlink,
        e => Lookup::Error(e.into()),
    }
}

/// Opens `relative` beneath `dir` with `flags` (plus `O_CLOEXEC`) under `rule`.
fn open_beneath(
    dir: &OwnedFd,
    relative: &[u8],
    flags: OFlags,
    rule: Resolve,
) -> Result<OwnedFd, Errno> {
    let path = Path::new(OsStr::from_bytes(relative));
    match rustix::fs::openat2(
        dir,
        path,
        flags | OFlags::CLOEXEC,
        Mode::empty(),
        rule.flags(),
    ) {
        Err(Errno::NOSYS) => open_components(dir, relative, flags),
        other => other,
    }
}

/// The fallback of [`open_beneath`]: opens each component with `O_NOFOLLOW`, so no
/// symlink is followed (a symlink as the last component is opened as itself when `flags`
/// has `O_PATH`); `..` and `.` components are refused (`EXDEV`), empty ones skipped.
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
    /// `ab/out` leaving the store, a FIFO `ab/fifo`, and a symlink `link` to `ab`.
    fn store() -> (tempfile::TempDir, Basedir) {
        let top = tempfile::tempdir().unwrap();
        std::fs::write(top.path().join("secret"), b"outside").unwrap();
        let store = top.path().join("store");
        std::fs::create_dir_all(store.join("ab/dir")).unwrap();
        std::fs::write(store.join("ab/obj"), b"object").unwrap();
        symlink("obj", store.join("ab/in")).unwrap();
        symlink("../../secret", store.join("ab/out")).unwrap();
        symlink("ab", store.join("link")).unwrap();
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
        for rule in [Resolve::Beneath, Resolve::AsOverlay] {
            assert!(matches!(b.lookup(b"ab/obj", rule), Lookup::Regular(_)));
            assert!(matches!(b.lookup(b"/ab/obj", rule), Lookup::Regular(_)));
            assert!(matches!(b.lookup(b"ab/dir", rule), Lookup::NotRegular));
            assert!(matches!(b.lookup(b"ab/fifo", rule), Lookup::NotRegular));
            assert!(matches!(b.lookup(b"ab/none", rule), Lookup::Missing));
            assert!(matches!(b.lookup(b"ab/obj/x", rule), Lookup::Missing));
            assert!(matches!(b.lookup(b"../secret", rule), Lookup::Escapes));
            assert!(matches!(
                b.open_regular(b"ab/fifo", rule),
                Err(Lookup::NotRegular)
            ));
            assert!(matches!(
                b.open_regular(b"ab/none", rule),
                Err(Lookup::Missing)
            ));
        }
        // Symlinks inside the store: followed beneath, refused as overlayfs refuses them.
        assert!(matches!(
            b.lookup(b"ab/in", Resolve::Beneath),
            Lookup::Regular(_)
        ));
        assert!(matches!(
            b.lookup(b"link/obj", Resolve::Beneath),
            Lookup::Regular(_)
        ));
        assert!(matches!(
            b.lookup(b"ab/out", Resolve::Beneath),
            Lookup::Escapes
        ));
        assert!(matches!(
            b.lookup(b"ab/in", Resolve::AsOverlay),
            Lookup::Symlink
        ));
        assert!(matches!(
            b.lookup(b"link/obj", Resolve::AsOverlay),
            Lookup::Symlink
        ));
        assert!(matches!(
            b.lookup(b"ab/out", Resolve::AsOverlay),
            Lookup::Symlink
        ));
        let mut text = String::new();
        b.open_regular(b"ab/in", Resolve::Beneath)
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "object");
        assert!(matches!(
            b.open_regular(b"ab/in", Resolve::AsOverlay),
            Err(Lookup::Symlink)
        ));
    }

    #[test]
    fn the_fallback_follows_no_symlink_and_no_dot_dot() {
        let (_top, b) = store();
        assert!(open_components(&b.dir, b"ab//obj", OFlags::PATH).is_ok());
        assert!(open_components(&b.dir, b"link/obj", OFlags::PATH).is_err());
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
