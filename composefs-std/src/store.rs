//! The content-addressed object store of `mkcomposefs --digest-store` (SPEC.md 8.2).
//!
//! An object is a regular file, mode 0644, named after the fs-verity digest of its content:
//! `<store>/<first 2 hex digits>/<other 62 hex digits>`, lowercase, with no `objects/`
//! component. An image's regular files point at these relative paths.
//!
//! Writing never exposes a partial object under its final name, even if the process is
//! killed at any point: the content goes to a temporary file (an anonymous `O_TMPFILE`, or a
//! named `.tmp-*` file in the store root when the filesystem has no `O_TMPFILE`), which is
//! made 0644, fsynced, given fs-verity when the filesystem supports it, and only then linked
//! under its final name. `link` never replaces: when two writers race, the first one wins
//! and the other discards its identical copy, so existing objects are never rewritten.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::num::NonZeroUsize;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use composefs_format::verity::FsVerityHasher;
use rustix::fs::{AtFlags, FlockOperation, Mode, OFlags, CWD};
use rustix::io::Errno;

use crate::verity::{self, FsVerityError, DIGEST_SIZE, READ_BUFFER_SIZE};

mod staged;

pub(crate) use staged::hash_zeros;
pub use staged::{Batch, CloneOutcome, ObjectWriter, StagedObject};

/// Prefix of named temporary files in the store root.
pub const TEMP_PREFIX: &str = ".tmp-";

/// Mode of objects and of the `<2 hex>` directories.
const OBJECT_MODE: u32 = 0o644;
const DIR_MODE: u32 = 0o755;
/// Attempts at `FS_IOC_ENABLE_VERITY` while a forked child still holds a writable copy of
/// the temporary file's descriptor (`ETXTBSY`), with this pause between them.
const ENABLE_RETRIES: u32 = 3;
const ENABLE_RETRY_PAUSE: Duration = Duration::from_millis(2);

/// How temporary files are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TempFiles {
    /// `O_TMPFILE`: the file has no name until it is complete, so a crash leaves nothing
    /// behind. Needs `/proc/self/fd` to link it; the store falls back to [`Named`] when
    /// the filesystem refuses `O_TMPFILE`.
    ///
    /// [`Named`]: TempFiles::Named
    Anonymous,
    /// `<store>/.tmp-<pid>-<n>-<nanoseconds>`, held under a shared `flock` while in use.
    /// A writer killed mid-write leaves one behind, which
    /// [`Store::remove_stale_temporaries`] deletes.
    Named,
}

/// What went wrong in the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A system call failed on `path`.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done (`open`, `link`, ...).
        op: &'static str,
        /// The file or directory concerned.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The source file changed between hashing it and copying it, so the copy does not
    /// match its name; nothing was stored.
    #[error(
        "{}: the source changed while it was copied (digest {} before, {} after); nothing stored",
        object.display(), verity::to_hex(before), verity::to_hex(after)
    )]
    SourceChanged {
        /// The object that would have been written.
        object: PathBuf,
        /// Digest of the source when first hashed.
        before: [u8; DIGEST_SIZE],
        /// Digest of the copy.
        after: [u8; DIGEST_SIZE],
    },
    /// An object's name is taken by something that is not a regular file.
    #[error("{}: exists but is not a regular file", path.display())]
    NotRegular {
        /// The object path.
        path: PathBuf,
    },
}

/// The state of one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectStatus {
    /// Present, and its content has the digest of its name.
    Valid,
    /// No such object.
    Missing,
    /// Present, but its content has another digest.
    Mismatch {
        /// The digest of the content.
        actual: [u8; DIGEST_SIZE],
    },
    /// The name exists but is not a regular file.
    NotRegular,
}

/// One problem found by [`Store::verify`].
#[derive(Debug)]
pub struct Problem {
    /// The offending path.
    pub path: PathBuf,
    /// What is wrong with it.
    pub kind: ProblemKind,
}

/// What is wrong with a path in the store.
#[derive(Debug)]
#[non_exhaustive]
pub enum ProblemKind {
    /// An object whose content does not have the digest of its name.
    Mismatch {
        /// The digest of the content.
        actual: [u8; DIGEST_SIZE],
    },
    /// An object name that is not a regular file.
    NotRegular,
    /// A name that does not belong to the layout (not `<2 hex>/<62 hex>`, lowercase).
    Stray,
    /// A leftover named temporary file (a writer is running, or was killed).
    Temporary,
    /// The object could not be read.
    Unreadable(io::Error),
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let path = self.path.display();
        match &self.kind {
            ProblemKind::Mismatch { actual } => write!(
                f,
                "{path}: content has fs-verity digest {}, not the one in its name",
                verity::to_hex(actual)
            ),
            ProblemKind::NotRegular => write!(f, "{path}: object is not a regular file"),
            ProblemKind::Stray => write!(f, "{path}: not an object name (<2 hex>/<62 hex>)"),
            ProblemKind::Temporary => write!(f, "{path}: leftover temporary file"),
            ProblemKind::Unreadable(e) => write!(f, "{path}: cannot be read: {e}"),
        }
    }
}

/// What [`Store::verify`] found.
#[derive(Debug, Default)]
pub struct VerifyReport {
    /// Objects whose content matches their name.
    pub valid: u64,
    /// Everything else, sorted by path.
    pub problems: Vec<Problem>,
}

/// `xx/<62 hex>`: an object's path relative to the store root (the payload an image
/// stores for it).
#[must_use]
pub fn object_path(digest: &[u8; DIGEST_SIZE]) -> String {
    let mut hex = verity::to_hex(digest);
    hex.insert(2, '/');
    hex
}

/// An open object store.
#[derive(Debug)]
pub struct Store {
    root: PathBuf,
    dir: OwnedFd,
    threads: NonZeroUsize,
    anonymous_temps: AtomicBool,
}

/// Counter that keeps named temporaries of one process apart.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

fn io_error<'p>(op: &'static str, path: &'p Path) -> impl FnOnce(io::Error) -> StoreError + 'p {
    move |source| StoreError::Io {
        op,
        path: path.to_owned(),
        source,
    }
}

fn errno_error<'p>(op: &'static str, path: &'p Path) -> impl FnOnce(Errno) -> StoreError + 'p {
    move |e| StoreError::Io {
        op,
        path: path.to_owned(),
        source: e.into(),
    }
}

impl Store {
    /// Opens an existing store directory.
    ///
    /// # Errors
    /// [`StoreError::Io`] when `path` cannot be opened as a directory.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let root = path.as_ref().to_owned();
        let dir = rustix::fs::open(
            &root,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(errno_error("open store", &root))?;
        let threads = std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN);
        Ok(Self {
            root,
            dir,
            threads,
            anonymous_temps: AtomicBool::new(proc_fd_available()),
        })
    }

    /// Creates the store directory (and its parents, mode 0755) if needed, then opens it.
    ///
    /// # Errors
    /// [`StoreError::Io`] when it cannot be created or opened.
    pub fn create(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let root = path.as_ref();
        fs::create_dir_all(root).map_err(io_error("create store", root))?;
        Self::open(root)
    }

    /// Uses up to `threads` threads to hash one large file (default: the available
    /// parallelism).
    #[must_use]
    pub fn with_threads(mut self, threads: NonZeroUsize) -> Self {
        self.threads = threads;
        self
    }

    /// Chooses how temporary files are made (default: [`TempFiles::Anonymous`] when
    /// `/proc/self/fd` exists, which linking an anonymous file needs; without it, named
    /// temporaries are used whatever is asked).
    #[must_use]
    pub fn with_temp_files(self, temp_files: TempFiles) -> Self {
        let anonymous = temp_files == TempFiles::Anonymous && proc_fd_available();
        self.anonymous_temps.store(anonymous, Ordering::Relaxed);
        self
    }

    /// The store directory.
    #[must_use]
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The absolute path the object `digest` has (or would have).
    #[must_use]
    pub fn path_of(&self, digest: &[u8; DIGEST_SIZE]) -> PathBuf {
        self.root.join(object_path(digest))
    }

    /// Whether the object `digest` exists. Its content is not checked (see
    /// [`verify_object`](Self::verify_object)).
    ///
    /// # Errors
    /// [`StoreError::NotRegular`] when the name is taken by something else than a regular
    /// file; [`StoreError::Io`] when it cannot be examined.
    pub fn contains(&self, digest: &[u8; DIGEST_SIZE]) -> Result<bool, StoreError> {
        match rustix::fs::statat(&self.dir, object_path(digest), AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) if rustix::fs::FileType::from_raw_mode(st.st_mode).is_file() => Ok(true),
            Ok(_) => Err(StoreError::NotRegular {
                path: self.path_of(digest),
            }),
            Err(Errno::NOENT) => Ok(false),
            Err(e) => Err(errno_error("stat", &self.path_of(digest))(e)),
        }
    }

    /// Stores `data` and returns its digest.
    ///
    /// # Errors
    /// [`StoreError`] when the object cannot be written.
    pub fn add_bytes(&self, data: &[u8]) -> Result<[u8; DIGEST_SIZE], StoreError> {
        let digest = verity::digest_bytes(data, self.threads);
        if self.contains(&digest)? {
            return Ok(digest);
        }
        let temp = self.temp_file()?;
        let path = self.path_of(&digest);
        (&temp.file)
            .write_all(data)
            .map_err(io_error("write", &path))?;
        self.publish(temp, &digest)?;
        Ok(digest)
    }

    /// Stores everything `reader` delivers until end of stream and returns its digest. The
    /// content is hashed while it is copied, so any source works (pipes included).
    ///
    /// # Errors
    /// [`StoreError`] when reading fails or the object cannot be written.
    pub fn add_reader(&self, mut reader: impl Read) -> Result<[u8; DIGEST_SIZE], StoreError> {
        let temp = self.temp_file()?;
        let temp_path = temp.display_path(self);
        let mut hasher = FsVerityHasher::new();
        let mut buf = vec![0u8; READ_BUFFER_SIZE];
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io_error("read source for", &temp_path)(e)),
            };
            let chunk = buf.get(..n).unwrap_or_default();
            verity::update(&mut hasher, chunk)
                .map_err(|e| io_error("hash", &temp_path)(io::Error::other(e)))?;
            (&temp.file)
                .write_all(chunk)
                .map_err(io_error("write", &temp_path))?;
        }
        let digest = hasher.finalize();
        if self.contains(&digest)? {
            return Ok(digest);
        }
        self.publish(temp, &digest)?;
        Ok(digest)
    }

    /// Stores the content of `file` and returns its digest. A regular file is hashed first
    /// (from offset 0, in parallel) and copied only when the object is missing, by reflink
    /// (`FICLONE`), else `copy_file_range`, else read and write; the copy is hashed again
    /// and refused if the source changed meanwhile. Anything else is read as a stream with
    /// [`add_reader`](Self::add_reader).
    ///
    /// # Errors
    /// [`StoreError::SourceChanged`] when the source changed during the copy; other
    /// [`StoreError`]s when reading or writing fails.
    pub fn add_file(&self, file: &File) -> Result<[u8; DIGEST_SIZE], StoreError> {
        let meta = file
            .metadata()
            .map_err(io_error("stat source for", &self.root))?;
        if !meta.file_type().is_file() {
            return self.add_reader(file);
        }
        let digest = verity::digest_file(file, self.threads)
            .map_err(io_error("hash source for", &self.root))?;
        if self.contains(&digest)? {
            return Ok(digest);
        }
        let path = self.path_of(&digest);
        let temp = self.temp_file()?;
        copy_file(file, &temp.file).map_err(io_error("copy source to", &path))?;
        let copied = verity::digest_file(&temp.file, self.threads)
            .map_err(io_error("hash copy of", &path))?;
        if copied != digest {
            return Err(StoreError::SourceChanged {
                object: path,
                before: digest,
                after: copied,
            });
        }
        self.publish(temp, &digest)?;
        Ok(digest)
    }

    /// Opens the file at `path` and stores it with [`add_file`](Self::add_file).
    ///
    /// # Errors
    /// As [`add_file`](Self::add_file), or when `path` cannot be opened.
    pub fn add_path(&self, path: impl AsRef<Path>) -> Result<[u8; DIGEST_SIZE], StoreError> {
        let path = path.as_ref();
        let file = File::open(path).map_err(io_error("open", path))?;
        self.add_file(&file)
    }

    /// Checks one object against its name. An object with fs-verity enabled is measured by
    /// the kernel (which verifies every later read), any other is hashed.
    ///
    /// # Errors
    /// [`StoreError::Io`] when the object exists but cannot be read.
    pub fn verify_object(&self, digest: &[u8; DIGEST_SIZE]) -> Result<ObjectStatus, StoreError> {
        let path = self.path_of(digest);
        match self.contains(digest) {
            Ok(true) => {}
            Ok(false) => return Ok(ObjectStatus::Missing),
            Err(StoreError::NotRegular { .. }) => return Ok(ObjectStatus::NotRegular),
            Err(e) => return Err(e),
        }
        let actual = measure_object(&path).map_err(io_error("hash", &path))?;
        Ok(if actual == *digest {
            ObjectStatus::Valid
        } else {
            ObjectStatus::Mismatch { actual }
        })
    }

    /// Checks every file in the store: each object against its name (on several threads),
    /// and every other name as stray. Reports every problem rather than stopping at the
    /// first.
    ///
    /// # Errors
    /// [`StoreError::Io`] only when a directory of the store cannot be listed.
    pub fn verify(&self) -> Result<VerifyReport, StoreError> {
        let mut problems = Vec::new();
        let mut objects = Vec::new();
        self.list(&mut objects, &mut problems)?;
        let queue = Mutex::new(objects.into_iter());
        let found = Mutex::new(problems);
        let valid = AtomicU64::new(0);
        let worker = || loop {
            let next = queue.lock().unwrap_or_else(PoisonError::into_inner).next();
            let Some((path, expected)) = next else {
                return;
            };
            let kind = match measure_object(&path) {
                Ok(actual) if actual == expected => {
                    valid.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                Ok(actual) => ProblemKind::Mismatch { actual },
                Err(e) => ProblemKind::Unreadable(e),
            };
            found
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(Problem { path, kind });
        };
        std::thread::scope(|scope| {
            let helpers: Vec<_> = (1..self.threads.get().min(verity::MAX_THREADS))
                .filter_map(|_| std::thread::Builder::new().spawn_scoped(scope, worker).ok())
                .collect();
            worker();
            for h in helpers {
                // The worker does not panic; a panic would only lose its last object,
                // which then counts neither as valid nor as a problem.
                let _ = h.join();
            }
        });
        let mut problems = found.into_inner().unwrap_or_else(PoisonError::into_inner);
        problems.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(VerifyReport {
            valid: valid.into_inner(),
            problems,
        })
    }

    /// Deletes named temporary files that no live writer holds (left by writers that were
    /// killed) and returns how many were deleted.
    ///
    /// # Errors
    /// [`StoreError::Io`] when the store root cannot be listed or a temporary cannot be
    /// deleted.
    pub fn remove_stale_temporaries(&self) -> Result<usize, StoreError> {
        let mut removed = 0;
        for entry in fs::read_dir(&self.root).map_err(io_error("list", &self.root))? {
            let entry = entry.map_err(io_error("list", &self.root))?;
            let name = entry.file_name();
            let Some(name) = name.to_str().filter(|n| n.starts_with(TEMP_PREFIX)) else {
                continue;
            };
            let path = entry.path();
            let fd = match rustix::fs::openat(
                &self.dir,
                name,
                OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
                Mode::empty(),
            ) {
                Ok(fd) => fd,
                Err(Errno::NOENT) => continue,
                Err(e) => return Err(errno_error("open", &path)(e)),
            };
            // A live writer holds a shared lock until the object is published.
            if rustix::fs::flock(&fd, FlockOperation::NonBlockingLockExclusive).is_err() {
                continue;
            }
            match rustix::fs::unlinkat(&self.dir, name, AtFlags::empty()) {
                Ok(()) => removed += 1,
                Err(Errno::NOENT) => {}
                Err(e) => return Err(errno_error("remove", &path)(e)),
            }
        }
        Ok(removed)
    }

    /// Flushes the store's filesystem (`syncfs`), making the names of new objects durable.
    /// Object contents are already fsynced before they get their names.
    ///
    /// # Errors
    /// [`StoreError::Io`] when `syncfs` fails.
    pub fn sync(&self) -> Result<(), StoreError> {
        rustix::fs::syncfs(&self.dir).map_err(errno_error("syncfs", &self.root))
    }

    /// Lists the objects to hash (with the digest their name claims) and reports every
    /// other name.
    fn list(
        &self,
        objects: &mut Vec<(PathBuf, [u8; DIGEST_SIZE])>,
        problems: &mut Vec<Problem>,
    ) -> Result<(), StoreError> {
        for entry in fs::read_dir(&self.root).map_err(io_error("list", &self.root))? {
            let entry = entry.map_err(io_error("list", &self.root))?;
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_str().unwrap_or_default();
            let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
            let prefix = is_dir && name.len() == 2 && name.bytes().all(is_lower_hex);
            if !prefix {
                let kind = if name.starts_with(TEMP_PREFIX) {
                    ProblemKind::Temporary
                } else {
                    ProblemKind::Stray
                };
                problems.push(Problem { path, kind });
                continue;
            }
            for object in fs::read_dir(&path).map_err(io_error("list", &path))? {
                let object = object.map_err(io_error("list", &path))?;
                let object_path = object.path();
                let rest = object.file_name();
                let digest = rest
                    .to_str()
                    .and_then(|rest| verity::from_hex(&format!("{name}{rest}")));
                let Some(digest) = digest else {
                    problems.push(Problem {
                        path: object_path,
                        kind: ProblemKind::Stray,
                    });
                    continue;
                };
                if object.file_type().is_ok_and(|t| t.is_file()) {
                    objects.push((object_path, digest));
                } else {
                    problems.push(Problem {
                        path: object_path,
                        kind: ProblemKind::NotRegular,
                    });
                }
            }
        }
        Ok(())
    }

    /// A new, empty temporary file in the store, open for reading and writing.
    fn temp_file(&self) -> Result<Temp<'_>, StoreError> {
        if self.anonymous_temps.load(Ordering::Relaxed) {
            match rustix::fs::openat(
                &self.dir,
                ".",
                OFlags::TMPFILE | OFlags::RDWR | OFlags::CLOEXEC,
                Mode::from_raw_mode(OBJECT_MODE),
            ) {
                Ok(fd) => {
                    return Ok(Temp {
                        file: File::from(fd),
                        name: None,
                    })
                }
                // Filesystems without O_TMPFILE, and kernels that see O_DIRECTORY only.
                Err(Errno::OPNOTSUPP | Errno::ISDIR | Errno::INVAL | Errno::NOENT) => {
                    self.anonymous_temps.store(false, Ordering::Relaxed);
                }
                Err(e) => return Err(errno_error("create temporary file in", &self.root)(e)),
            }
        }
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let mut attempt = 0;
        loop {
            let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
            let name = format!("{TEMP_PREFIX}{}-{n}-{nanos}", std::process::id());
            match rustix::fs::openat(
                &self.dir,
                &name,
                OFlags::CREATE | OFlags::EXCL | OFlags::RDWR | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(OBJECT_MODE),
            ) {
                Ok(fd) => {
                    let temp = Temp {
                        file: File::from(fd),
                        name: Some(TempName { store: self, name }),
                    };
                    rustix::fs::flock(&temp.file, FlockOperation::LockShared)
                        .map_err(errno_error("lock", &temp.display_path(self)))?;
                    return Ok(temp);
                }
                // A name left by an earlier process with the same pid.
                Err(Errno::EXIST) if attempt < 16 => attempt += 1,
                Err(e) => return Err(errno_error("create", &self.root.join(name))(e)),
            }
        }
    }

    /// Makes a complete temporary file the object `digest`: mode 0644, fsync, fs-verity if
    /// available, then a link under the final name (never replacing one).
    fn publish(&self, temp: Temp<'_>, digest: &[u8; DIGEST_SIZE]) -> Result<(), StoreError> {
        let path = self.path_of(digest);
        rustix::fs::fchmod(&temp.file, Mode::from_raw_mode(OBJECT_MODE))
            .map_err(errno_error("chmod", &path))?;
        temp.file.sync_all().map_err(io_error("fsync", &path))?;
        self.link_durable(temp, digest)
    }

    /// Second half of [`publish`](Self::publish), for a temporary file whose mode is set
    /// and whose content is already durable: fs-verity if available, then the link.
    fn link_durable(&self, temp: Temp<'_>, digest: &[u8; DIGEST_SIZE]) -> Result<(), StoreError> {
        let path = self.path_of(digest);
        let Temp {
            file: writable,
            name,
        } = temp;
        let name = name.as_ref().map(|n| n.name.as_str());
        // fs-verity needs a read-only descriptor and no writable one open anywhere.
        let proc_path = format!("/proc/self/fd/{}", writable.as_raw_fd());
        let read_only = match name {
            None => rustix::fs::open(&proc_path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()),
            Some(name) => rustix::fs::openat(
                &self.dir,
                name,
                OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            ),
        }
        .map_err(errno_error("reopen temporary file for", &path))?;
        if name.is_some() {
            rustix::fs::flock(&read_only, FlockOperation::LockShared)
                .map_err(errno_error("lock", &path))?;
        }
        drop(writable);
        enable_verity_if_supported(&read_only);

        let prefix = path.parent().unwrap_or(&self.root);
        let dir_name = object_path(digest);
        let (dir_name, _) = dir_name.split_at(2);
        match rustix::fs::mkdirat(&self.dir, dir_name, Mode::from_raw_mode(DIR_MODE)) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(e) => return Err(errno_error("create", prefix)(e)),
        }
        let linked = match name {
            None => rustix::fs::linkat(
                CWD,
                format!("/proc/self/fd/{}", read_only.as_raw_fd()),
                &self.dir,
                object_path(digest),
                AtFlags::SYMLINK_FOLLOW,
            ),
            Some(name) => rustix::fs::linkat(
                &self.dir,
                name,
                &self.dir,
                object_path(digest),
                AtFlags::empty(),
            ),
        };
        match linked {
            Ok(()) => Ok(()),
            // Another writer stored the same content first; keep theirs.
            Err(Errno::EXIST) => self.contains(digest).map(|_| ()),
            Err(e) => Err(errno_error("link", &path)(e)),
        }
        // The name guard drops here: a named temporary is unlinked, its content lives on
        // under the object name.
    }
}

/// Whether `/proc/self/fd` exists, through which an `O_TMPFILE` file gets linked.
fn proc_fd_available() -> bool {
    Path::new("/proc/self/fd").is_dir()
}

fn is_lower_hex(b: u8) -> bool {
    b.is_ascii_digit() || (b'a'..=b'f').contains(&b)
}

/// Enables fs-verity, retrying while a forked child still holds a copy of the writable
/// descriptor. Every failure is ignored, as the reference does: an object is valid
/// without fs-verity, which many filesystems do not offer.
fn enable_verity_if_supported(fd: &OwnedFd) {
    for _ in 0..ENABLE_RETRIES {
        match verity::enable_verity(fd) {
            Err(FsVerityError::OpenForWrite) => std::thread::sleep(ENABLE_RETRY_PAUSE),
            _ => return,
        }
    }
}

/// The digest of the object at `path`: the kernel's when fs-verity is enabled, else
/// computed on one thread (objects are verified in parallel with each other).
fn measure_object(path: &Path) -> io::Result<[u8; DIGEST_SIZE]> {
    let fd = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let file = File::from(fd);
    Ok(verity::measure_file(&file, NonZeroUsize::MIN)?)
}

/// Copies all of `src` (a regular file) into the empty `dst`: reflink, else
/// `copy_file_range`, else `pread`/`write`.
fn copy_file(src: &File, dst: &File) -> io::Result<()> {
    if rustix::fs::ioctl_ficlone(dst, src).is_ok() {
        return Ok(());
    }
    let mut copied: u64 = 0;
    loop {
        let mut off_in = copied;
        let mut off_out = copied;
        match rustix::fs::copy_file_range(src, Some(&mut off_in), dst, Some(&mut off_out), 1 << 30)
        {
            Ok(0) => return Ok(()),
            Ok(n) => copied = copied.saturating_add(n as u64),
            Err(Errno::INTR) => {}
            // Not offered here (cross-filesystem on old kernels, special filesystems):
            // copy the rest by hand.
            Err(_) => break,
        }
    }
    let mut buf = vec![0u8; READ_BUFFER_SIZE];
    loop {
        let n = match src.read_at(&mut buf, copied) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        dst.write_all_at(buf.get(..n).unwrap_or_default(), copied)?;
        copied = copied.saturating_add(n as u64);
    }
}

/// A temporary file being filled.
#[derive(Debug)]
struct Temp<'s> {
    file: File,
    name: Option<TempName<'s>>,
}

/// The name of a named temporary file, unlinked when dropped: by then the file is either
/// abandoned or linked under its object name.
#[derive(Debug)]
struct TempName<'s> {
    store: &'s Store,
    name: String,
}

impl Temp<'_> {
    /// A path for messages: the store root for an anonymous file.
    fn display_path(&self, store: &Store) -> PathBuf {
        match &self.name {
            Some(n) => store.root.join(&n.name),
            None => store.root.clone(),
        }
    }
}

impl Drop for TempName<'_> {
    fn drop(&mut self) {
        // Best effort: a leftover is reported by `verify` and removed by
        // `remove_stale_temporaries`.
        let _ = rustix::fs::unlinkat(&self.store.dir, self.name.as_str(), AtFlags::empty());
    }
}
