//! Backing objects: the files in the object store(s) that external regular files redirect
//! to, opened safely, optionally verified against their fs-verity digest, and cached.
//!
//! - The redirect must be `/` followed by a relative path without empty, `.` or `..`
//!   components ([`composefs_format::overlay::parse_redirect`]).
//! - It is resolved with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)` relative to each
//!   basedir in turn, so neither the path nor a symlink inside the store can lead out of
//!   the store. The object is first opened `O_PATH` and must be a regular file before it
//!   is opened for reading, so a FIFO or device in the store is never opened.
//! - Its size must equal the size recorded in the image.
//! - With `verity`, its fs-verity digest (the kernel's measurement when the file has
//!   fs-verity, else one computed here, in parallel for large files) must equal the
//!   metacopy digest; a file without a digest is refused, as overlayfs `verity=require`
//!   does. Verified objects are remembered by identity (device, inode, size, mtime and
//!   ctime), so an object that is replaced or rewritten is verified again.
//! - Open objects are cached per nid (at most [`OPEN_CACHE_SIZE`]), so a file opened
//!   again is not resolved and verified again.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::fs::File;
use std::io;
use std::num::NonZeroUsize;
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use composefs_format::inode::Inode;
use composefs_format::overlay::Metacopy;
use composefs_std::verity::{digest_file, measure_verity, to_hex, FsVerityError, DIGEST_SIZE};
use rustix::fs::{openat2, Mode, OFlags, ResolveFlags};

/// How many open backing objects are kept for reuse.
pub const OPEN_CACHE_SIZE: usize = 256;
/// How many verified object identities are remembered.
pub const VERIFIED_CACHE_SIZE: usize = 16_384;

/// Why a backing object could not be served.
#[derive(Debug)]
pub enum ObjectError {
    /// The image could not be read (bad xattrs, a malformed metacopy or redirect).
    Image(composefs_format::Error),
    /// The file is external but has no redirect.
    NoRedirect,
    /// No basedir was given.
    NoBasedir,
    /// No basedir holds the object.
    NotFound(Vec<u8>),
    /// Resolving the object failed for another reason than absence (`ELOOP` for a symlink,
    /// `EXDEV` for an escape, ...).
    Resolve {
        /// The basedir.
        basedir: PathBuf,
        /// The redirect payload.
        payload: Vec<u8>,
        /// The error.
        error: io::Error,
    },
    /// The object is not a regular file.
    NotRegular(Vec<u8>),
    /// The object's size differs from the image's.
    Size {
        /// Size in the image.
        expected: u64,
        /// Size of the object.
        actual: u64,
    },
    /// `verity` is on and the file has no digest.
    NoDigest,
    /// The object's fs-verity digest differs from the metacopy digest.
    Digest {
        /// Digest in the image.
        expected: [u8; DIGEST_SIZE],
        /// Digest of the object.
        actual: [u8; DIGEST_SIZE],
    },
    /// Reading or measuring the object failed.
    Io(io::Error),
}

impl fmt::Display for ObjectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |p: &[u8]| String::from_utf8_lossy(p).into_owned();
        match self {
            Self::Image(e) => write!(f, "{e}"),
            Self::NoRedirect => f.write_str("external file without trusted.overlay.redirect"),
            Self::NoBasedir => f.write_str("external file, but no basedir= was given"),
            Self::NotFound(p) => write!(f, "backing object {} not found in any basedir", show(p)),
            Self::Resolve {
                basedir,
                payload,
                error,
            } => write!(
                f,
                "backing object {} refused in {}: {error}",
                show(payload),
                basedir.display()
            ),
            Self::NotRegular(p) => write!(f, "backing object {} is not a regular file", show(p)),
            Self::Size { expected, actual } => write!(
                f,
                "backing object has {actual} bytes, the image says {expected}"
            ),
            Self::NoDigest => f.write_str("verity required, but the file has no digest"),
            Self::Digest { expected, actual } => write!(
                f,
                "backing object has fs-verity digest {}, the image says {}",
                to_hex(actual),
                to_hex(expected)
            ),
            Self::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ObjectError {}

impl From<composefs_format::Error> for ObjectError {
    fn from(e: composefs_format::Error) -> Self {
        Self::Image(e)
    }
}

/// What identifies one version of an object file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Identity {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Identity {
    fn of(meta: &std::fs::Metadata) -> Self {
        Self {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }
}

/// A bounded map that forgets its oldest entries first.
#[derive(Debug)]
struct Bounded<K, V> {
    map: HashMap<K, V>,
    order: VecDeque<K>,
    capacity: usize,
}

impl<K: Copy + Eq + std::hash::Hash, V: Clone> Bounded<K, V> {
    fn new(capacity: usize) -> Self {
        Self {
            map: HashMap::new(),
            order: VecDeque::new(),
            capacity,
        }
    }

    fn get(&self, key: &K) -> Option<V> {
        self.map.get(key).cloned()
    }

    fn insert(&mut self, key: K, value: V) {
        if self.map.insert(key, value).is_none() {
            self.order.push_back(key);
        }
        while self.map.len() > self.capacity {
            match self.order.pop_front() {
                Some(old) => {
                    self.map.remove(&old);
                }
                None => break,
            }
        }
    }
}

/// The object store(s) of a mount.
#[derive(Debug)]
pub struct Objects {
    basedirs: Vec<(PathBuf, OwnedFd)>,
    verity: bool,
    threads: NonZeroUsize,
    open: Mutex<Bounded<u64, Arc<File>>>,
    verified: Mutex<Bounded<Identity, [u8; DIGEST_SIZE]>>,
}

impl Objects {
    /// Opens the basedirs (directories, followed if they are symlinks themselves: they are
    /// trusted configuration, unlike the image).
    ///
    /// # Errors
    /// A basedir that cannot be opened as a directory.
    pub fn new(basedirs: &[PathBuf], verity: bool, threads: NonZeroUsize) -> io::Result<Self> {
        let mut dirs = Vec::new();
        for dir in basedirs {
            let fd = rustix::fs::open(
                dir.as_path(),
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| {
                io::Error::new(
                    io::Error::from(e).kind(),
                    format!("basedir {}: {e}", dir.display()),
                )
            })?;
            dirs.push((dir.clone(), fd));
        }
        Ok(Self {
            basedirs: dirs,
            verity,
            threads,
            open: Mutex::new(Bounded::new(OPEN_CACHE_SIZE)),
            verified: Mutex::new(Bounded::new(VERIFIED_CACHE_SIZE)),
        })
    }

    /// The backing object of the external regular file `inode`, ready for reading.
    ///
    /// # Errors
    /// Any [`ObjectError`]: the file is then refused (EIO).
    pub fn open(&self, inode: &Inode<'_>) -> Result<Arc<File>, ObjectError> {
        let metacopy = inode.metacopy()?;
        let expected = match metacopy {
            Metacopy::Digest(d) => Some(d),
            Metacopy::None | Metacopy::NoDigest => None,
        };
        if self.verity && expected.is_none() {
            return Err(ObjectError::NoDigest);
        }
        let cached = self
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&inode.nid());
        if let Some(file) = cached {
            // Re-check the identity: a file rewritten in place is verified again.
            self.check(&file, inode.size(), expected)?;
            return Ok(file);
        }
        let payload = inode.redirect()?.ok_or(ObjectError::NoRedirect)?;
        let file = Arc::new(self.resolve(payload)?);
        self.check(&file, inode.size(), expected)?;
        self.open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(inode.nid(), Arc::clone(&file));
        Ok(file)
    }

    /// Opens `payload` below the first basedir that has it.
    fn resolve(&self, payload: &[u8]) -> Result<File, ObjectError> {
        if self.basedirs.is_empty() {
            return Err(ObjectError::NoBasedir);
        }
        let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS;
        for (path, dir) in &self.basedirs {
            let refused = |error: io::Error| ObjectError::Resolve {
                basedir: path.clone(),
                payload: payload.to_vec(),
                error,
            };
            let handle = match openat2(
                dir,
                payload,
                OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
                resolve,
            ) {
                Ok(fd) => File::from(fd),
                Err(rustix::io::Errno::NOENT) => continue,
                Err(e) => return Err(refused(e.into())),
            };
            let before = handle.metadata().map_err(ObjectError::Io)?;
            if !before.file_type().is_file() {
                return Err(ObjectError::NotRegular(payload.to_vec()));
            }
            let file = openat2(
                dir,
                payload,
                OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NOCTTY | OFlags::CLOEXEC,
                Mode::empty(),
                resolve,
            )
            .map(File::from)
            .map_err(|e| refused(e.into()))?;
            let after = file.metadata().map_err(ObjectError::Io)?;
            if (after.dev(), after.ino()) != (before.dev(), before.ino()) {
                // Replaced between the two opens: refuse rather than trust the newcomer.
                return Err(refused(io::Error::other("object replaced while opening")));
            }
            return Ok(file);
        }
        Err(ObjectError::NotFound(payload.to_vec()))
    }

    /// Checks the size, and with `verity` the digest, of an open object.
    fn check(
        &self,
        file: &File,
        size: u64,
        expected: Option<[u8; DIGEST_SIZE]>,
    ) -> Result<(), ObjectError> {
        let meta = file.metadata().map_err(ObjectError::Io)?;
        if meta.size() != size {
            return Err(ObjectError::Size {
                expected: size,
                actual: meta.size(),
            });
        }
        let Some(expected) = expected.filter(|_| self.verity) else {
            return Ok(());
        };
        let identity = Identity::of(&meta);
        let known = self
            .verified
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&identity);
        let actual = match known {
            Some(d) => d,
            None => {
                let d = self.measure(file)?;
                self.verified
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(identity, d);
                d
            }
        };
        if actual != expected {
            return Err(ObjectError::Digest { expected, actual });
        }
        Ok(())
    }

    /// The fs-verity digest of `file`: the kernel's when the file has fs-verity (the
    /// kernel then also checks every read), else computed here.
    fn measure(&self, file: &File) -> Result<[u8; DIGEST_SIZE], ObjectError> {
        match measure_verity(file) {
            Ok(Some(d)) => Ok(d),
            Ok(None) | Err(FsVerityError::Unsupported(_)) => {
                digest_file(file, self.threads).map_err(ObjectError::Io)
            }
            Err(e) => Err(ObjectError::Io(e.into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_map_forgets_the_oldest_first() {
        let mut m = Bounded::new(2);
        m.insert(1, 'a');
        m.insert(2, 'b');
        m.insert(1, 'c');
        assert_eq!(m.get(&1), Some('c'));
        m.insert(3, 'd');
        assert_eq!(m.get(&1), None);
        assert_eq!(m.get(&2), Some('b'));
        assert_eq!(m.get(&3), Some('d'));
        assert_eq!(m.map.len(), 2);
    }

    fn objects(dirs: &[&std::path::Path]) -> Objects {
        let dirs: Vec<PathBuf> = dirs.iter().map(|d| d.to_path_buf()).collect();
        Objects::new(&dirs, false, NonZeroUsize::MIN).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn resolves_in_basedir_order_and_never_leaves_the_store() {
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        for d in [&a, &b, &a.join("ab"), &b.join("ab"), &b.join("cd")] {
            std::fs::create_dir(d).unwrap_or_else(|e| panic!("{e}"));
        }
        std::fs::write(b.join("ab/obj"), b"in b").unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(tmp.path().join("secret"), b"outside").unwrap_or_else(|e| panic!("{e}"));
        std::os::unix::fs::symlink("../../secret", b.join("ab/link"))
            .unwrap_or_else(|e| panic!("{e}"));
        std::os::unix::fs::symlink("..", b.join("cd/up")).unwrap_or_else(|e| panic!("{e}"));
        rustix::fs::mknodat(
            rustix::fs::CWD,
            b.join("ab/fifo").as_path(),
            rustix::fs::FileType::Fifo,
            Mode::from_raw_mode(0o644),
            0,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let objs = objects(&[&a, &b]);

        let f = objs.resolve(b"ab/obj").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            std::fs::read_to_string(format!(
                "/proc/self/fd/{}",
                std::os::fd::AsRawFd::as_raw_fd(&f)
            ))
            .unwrap_or_default(),
            "in b"
        );
        assert!(matches!(
            objs.resolve(b"ab/none"),
            Err(ObjectError::NotFound(_))
        ));
        assert!(matches!(
            objs.resolve(b"ab/fifo"),
            Err(ObjectError::NotRegular(_))
        ));
        // A symlink as the last component is opened as itself (O_PATH|O_NOFOLLOW) and
        // refused as not a regular file; one in the middle stops the resolution.
        assert!(matches!(
            objs.resolve(b"ab/link"),
            Err(ObjectError::NotRegular(_))
        ));
        for bad in [&b"cd/up/secret"[..], b"../secret", b"/etc/passwd"] {
            match objs.resolve(bad) {
                Err(ObjectError::Resolve { .. }) => {}
                other => panic!("{}: {other:?}", String::from_utf8_lossy(bad)),
            }
        }
        assert!(matches!(
            objects(&[]).resolve(b"ab/obj"),
            Err(ObjectError::NoBasedir)
        ));
    }
}
