//! Directory scanning: a directory tree in, the composefs [`Tree`] that the reference
//! `mkcomposefs SOURCEDIR` 1.0.8 builds from it out, with the file contents optionally
//! copied into an object [`Store`] (SPEC.md 9.3).
//!
//! The walk (`walk`) runs on the calling thread with an explicit stack, holding a bounded
//! number of directory descriptors, and reads every entry relative to its directory's
//! descriptor without following symlinks. Each regular file with content is opened by
//! the walk, checked to be the file it examined, and handed to a pool of workers
//! (`content`): small files are read inline, larger ones hashed (and stored) in one read.
//! What the reference records (`lstat` fields with link count 1, xattrs, symlink targets,
//! inline contents of at most 64 bytes, digests and `xx/<62 hex>` backing paths) is
//! described in SPEC.md 9.3.

mod content;
mod hardlinks;
mod pool;
mod walk;
mod xattrs;

use std::io;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};

use composefs_format::tree::{Tree, TreeError};

use crate::store::{Store, StoreError};

/// Which xattrs to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum XattrMode {
    /// Every xattr the filesystem lists (the default).
    #[default]
    All,
    /// Only `user.*` (`--user-xattrs`).
    User,
    /// None (`--skip-xattrs`).
    Skip,
}

/// How to scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanOptions {
    /// Which xattrs to read.
    pub xattrs: XattrMode,
    /// Leave out character and block devices, overlay whiteouts (0:0) included.
    pub skip_devices: bool,
    /// Give every inode mtime 0 instead of its own.
    pub use_epoch: bool,
    /// Keep hard links (same device and inode number) as one inode with several names;
    /// the first name in sorted depth-first order is its primary entry. Off, as in the
    /// reference: every name is an inode of its own with link count 1.
    pub hardlinks: bool,
    /// Threads reading, hashing and storing file contents, the calling thread included.
    pub threads: NonZeroUsize,
}

impl Default for ScanOptions {
    fn default() -> Self {
        Self {
            xattrs: XattrMode::All,
            skip_devices: false,
            use_epoch: false,
            hardlinks: false,
            threads: default_threads(),
        }
    }
}

/// The number of CPUs this process may run on (`sched_getaffinity`), as the reference's
/// default for `--threads`; 1 when it cannot be read.
#[must_use]
pub fn default_threads() -> NonZeroUsize {
    rustix::thread::sched_getaffinity(None)
        .ok()
        .and_then(|set| usize::try_from(set.count()).ok())
        .and_then(NonZeroUsize::new)
        .unwrap_or(NonZeroUsize::MIN)
}

/// Why an xattr cannot be recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum XattrProblem {
    /// The value is longer than 65535 bytes.
    #[error("value of {len} bytes is longer than 65535")]
    ValueTooLong {
        /// Its length (at least 65536).
        len: usize,
    },
    /// The name is empty or longer than 255 bytes.
    #[error("name of {len} bytes is not 1 to 255 bytes long")]
    BadName {
        /// Its length.
        len: usize,
    },
    /// The xattrs of the file together exceed the budget of the format (SPEC.md 6.4).
    #[error("the xattrs need {needed} bytes, more than 32767")]
    Budget {
        /// Bytes needed.
        needed: usize,
    },
}

/// What went wrong while scanning. Every variant names the path concerned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScanError {
    /// A system call failed.
    #[error("{}: {op}: {source}", path.display())]
    Io {
        /// What was being done (`open`, `stat`, `list xattrs of`, ...).
        op: &'static str,
        /// The file concerned.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The source is not a directory (symlinks are not followed).
    #[error("{}: not a directory", path.display())]
    NotADirectory {
        /// The source.
        path: PathBuf,
    },
    /// An xattr that the image cannot hold.
    #[error("{}: xattr {}: {problem}", path.display(), name.escape_ascii())]
    Xattr {
        /// The file.
        path: PathBuf,
        /// The xattr name (empty for a budget problem).
        name: Vec<u8>,
        /// What is wrong.
        problem: XattrProblem,
    },
    /// A file changed between being examined and being read, so its size, type or
    /// identity no longer match.
    #[error("{}: changed while it was scanned ({what})", path.display())]
    Changed {
        /// The file.
        path: PathBuf,
        /// What was found to differ.
        what: &'static str,
    },
    /// A device number that does not fit 32 bits.
    #[error("{}: device number {rdev:#x} does not fit 32 bits", path.display())]
    DeviceNumber {
        /// The device node.
        path: PathBuf,
        /// Its `st_rdev`.
        rdev: u64,
    },
    /// The tree refused an entry.
    #[error("{}: {source}", path.display())]
    Tree {
        /// The entry.
        path: PathBuf,
        /// Why.
        #[source]
        source: TreeError,
    },
    /// The object store is the source or inside it: it would be scanned while it is
    /// being filled.
    #[error("{}: is the object store; it must not be inside the source", path.display())]
    StoreInSource {
        /// The store's path inside the source.
        path: PathBuf,
    },
    /// Writing to the object store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Scans the directory `source` into a tree. With a `store`, the content of every file
/// stored externally (more than 64 bytes) is copied into it; the objects are published,
/// and the store's filesystem synced, before this returns.
///
/// # Errors
/// The first [`ScanError`] met; the scan stops then. Objects published before the error
/// stay in the store (they are complete and correctly named).
pub fn scan(
    source: &Path,
    options: &ScanOptions,
    store: Option<&Store>,
) -> Result<Tree, ScanError> {
    let store_id = match store {
        Some(store) => Some(walk::file_id(&rustix::fs::stat(store.root()).map_err(
            |e| ScanError::Io {
                op: "stat",
                path: store.root().to_owned(),
                source: e.into(),
            },
        )?)),
        None => None,
    };
    let batch = store.map(Store::batch);
    let budget = Budget::from_limit();
    let (walked, outcomes) = {
        let content = content::Content::new(options, batch.as_ref());
        pool::run(options.threads, budget.queued_files, &content, |emitter| {
            let setup = walk::Setup {
                max_open_dirs: budget.open_dirs,
                store: store_id,
            };
            walk::walk(source, options, setup, emitter)
        })?
    };
    let mut tree = walked.tree;
    for outcome in outcomes {
        outcome.apply(&mut tree);
    }
    if options.hardlinks {
        hardlinks::choose_primaries(&mut tree);
    }
    if let (Some(batch), Some(store)) = (batch, store) {
        batch.finish()?;
        store.sync()?;
    }
    Ok(tree)
}

/// How many descriptors the walk and the job queue may hold, from the soft limit on open
/// files (a store batch takes another quarter, see `Store::batch`).
#[derive(Debug, Clone, Copy)]
struct Budget {
    /// Directory descriptors held by the walk: an eighth, 4 to 64.
    open_dirs: usize,
    /// Opened files waiting for a worker: a quarter, 4 to 1024 (and 64 per thread).
    queued_files: usize,
}

impl Budget {
    fn from_limit() -> Self {
        let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile)
            .current
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(1024);
        Self {
            open_dirs: (limit / 8).clamp(4, 64),
            queued_files: (limit / 4).clamp(4, 1024),
        }
    }
}
