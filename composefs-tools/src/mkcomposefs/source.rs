//! Where `mkcomposefs` gets its tree: a dump file (or stdin) today; a directory scan is
//! the other [`Source`] and is not supported yet.

use std::fmt;
use std::fs::File;
use std::io::{self, BufReader};
use std::path::PathBuf;

use composefs_format::dumpfile::{self, ParseOptions, Parsed, ReadError};
use composefs_format::tree::{NodeId, Tree};

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
    /// The file cannot be read, the dump is invalid (`FILE:LINE: FIELD: message`), or the
    /// source is a directory, which is not supported yet.
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
            Self::Directory(path, _) => {
                return Err(Failure::Plain(format!(
                    "{}: building from a directory is not supported yet; give a dump file \
                     with --from-file",
                    path.display()
                )))
            }
        };
        parsed.map(Loaded::from).map_err(|e| match e {
            ReadError::Io(e) => Failure::Plain(format!("cannot read {self}: {e}")),
            ReadError::Parse(e) if e.line == 0 => Failure::Located(format!("{self}: {e}")),
            ReadError::Parse(e) => Failure::Located(format!("{self}:{e}")),
        })
    }
}
