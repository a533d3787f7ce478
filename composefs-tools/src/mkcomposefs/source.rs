//! Where `mkcomposefs` gets its tree: a dump file (or stdin), or a directory scanned with
//! `composefs_std::scan` (whose file contents go into the `--digest-store` when given).

use std::fmt;
use std::fs::File;
use std::io::{self, BufReader};
use std::path::{Path, PathBuf};

use composefs_format::dumpfile::{self, ParseOptions, Parsed, ReadError};
use composefs_format::tree::{NodeId, Tree};
use composefs_std::scan::{self, XattrMode};
use composefs_std::store::Store;

use super::Failure;

/// Read buffer for dump files: large reads, few syscalls.
const READ_BUFFER: usize = 256 * 1024;

/// The SOURCE argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A composefs-dump(5) file (`--from-file`).
    Dump(PathBuf),
    /// The dump on standard input (`--from-file -`).
    Stdin,
    /// A directory to scan.
    Directory(PathBuf, ScanOptions),
}

/// How to scan a directory source (the reference's directory-mode flags).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanOptions {
    /// `--digest-store`: copy file contents into this object store.
    pub digest_store: Option<PathBuf>,
    /// `--use-epoch`: all mtimes 0.
    pub use_epoch: bool,
    /// `--skip-devices`: leave out character and block devices, whiteouts included.
    pub skip_devices: bool,
    /// `--skip-xattrs`: read no xattrs.
    pub skip_xattrs: bool,
    /// `--user-xattrs`: read only `user.*` xattrs.
    pub user_xattrs: bool,
    /// `--threads`: workers for digests and copies (default: the CPUs available).
    pub threads: Option<std::num::NonZeroUsize>,
    /// `--hardlinks`: keep hard links as hard links (not in the reference).
    pub hardlinks: bool,
}

impl ScanOptions {
    /// The scanner's options.
    ///
    /// # Errors
    /// `--skip-xattrs` together with `--user-xattrs`.
    pub fn scan_options(&self) -> Result<scan::ScanOptions, Failure> {
        let xattrs = match (self.skip_xattrs, self.user_xattrs) {
            (true, true) => {
                return Err(Failure::Plain(
                    "--skip-xattrs and --user-xattrs cannot be combined".into(),
                ))
            }
            (true, false) => XattrMode::Skip,
            (false, true) => XattrMode::User,
            (false, false) => XattrMode::All,
        };
        Ok(scan::ScanOptions {
            xattrs,
            skip_devices: self.skip_devices,
            use_epoch: self.use_epoch,
            hardlinks: self.hardlinks,
            threads: self.threads.unwrap_or_else(scan::default_threads),
        })
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Dump(p) | Self::Directory(p, _) => write!(f, "{}", p.display()),
            Self::Stdin => write!(f, "<stdin>"),
        }
    }
}

/// A loaded tree, with the dump line of each node when it came from a dump.
#[derive(Debug)]
pub struct Loaded {
    /// The tree.
    pub tree: Tree,
    /// Line of each node, by node index (empty when not from a dump).
    lines: Vec<u64>,
}

impl Loaded {
    /// The dump line node `id` came from.
    #[must_use]
    pub fn line_of(&self, id: NodeId) -> Option<u64> {
        self.lines.get(id.index()).copied()
    }

    /// The path of node `id` in the tree (its primary entry), for messages.
    #[must_use]
    pub fn path_of(&self, id: NodeId) -> Option<Vec<u8>> {
        let mut found = None;
        let _ = self.tree.walk(|path, entry, node| {
            if node == id && entry.is_none_or(|e| !e.hardlink) {
                found = Some(path.to_vec());
                return Err(());
            }
            Ok(())
        });
        found
    }
}

impl From<Parsed> for Loaded {
    fn from(p: Parsed) -> Self {
        Self {
            tree: p.tree,
            lines: p.lines,
        }
    }
}

impl Source {
    /// Reads the tree.
    ///
    /// # Errors
    /// The file cannot be read, the dump is invalid (`FILE:LINE: FIELD: message`), or
    /// scanning the directory failed (the message names the path and the operation).
    pub fn load(&self, strict: bool) -> Result<Loaded, Failure> {
        let options = if strict {
            ParseOptions::strict()
        } else {
            ParseOptions::lenient()
        };
        let parsed = match self {
            Self::Stdin => dumpfile::parse_reader(io::stdin().lock(), options),
            Self::Dump(path) => {
                let file = File::open(path)
                    .map_err(|e| Failure::Plain(format!("cannot open {}: {e}", path.display())))?;
                dumpfile::parse_reader(BufReader::with_capacity(READ_BUFFER, file), options)
            }
            Self::Directory(path, options) => return scan_directory(path, options),
        };
        parsed.map(Loaded::from).map_err(|e| match e {
            ReadError::Io(e) => Failure::Plain(format!("cannot read {self}: {e}")),
            ReadError::Parse(e) if e.line == 0 => Failure::Located(format!("{self}: {e}")),
            ReadError::Parse(e) => Failure::Located(format!("{self}:{e}")),
        })
    }
}

/// Scans a directory source, filling the store when one is given.
fn scan_directory(path: &Path, options: &ScanOptions) -> Result<Loaded, Failure> {
    let scan_options = options.scan_options()?;
    let store = match &options.digest_store {
        Some(dir) => Some(Store::create(dir).map_err(|e| Failure::Plain(e.to_string()))?),
        None => None,
    };
    let tree = scan::scan(path, &scan_options, store.as_ref())
        .map_err(|e| Failure::Plain(e.to_string()))?;
    Ok(Loaded {
        tree,
        lines: Vec::new(),
    })
}
