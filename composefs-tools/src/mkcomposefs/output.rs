//! Where `mkcomposefs` puts the image: a file (through a temporary file renamed into place
//! once complete), stdout, or nowhere (`--print-digest-only`), optionally hashing the bytes
//! on their way for the fs-verity digest.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};

use composefs_format::sink::Sink;
use composefs_format::verity::FsVerityHasher;

use super::Failure;

/// Write buffer: the writer issues many small writes.
const WRITE_BUFFER: usize = 1 << 20;
/// How many temporary names to try before giving up.
const TEMP_ATTEMPTS: u32 = 100;

/// The IMAGE argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A file path.
    File(PathBuf),
    /// Standard output (`-`).
    Stdout,
    /// No image, only its digest (`--print-digest-only`).
    Discard,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(p) => write!(f, "{}", p.display()),
            Self::Stdout => write!(f, "<stdout>"),
            Self::Discard => write!(f, "<none>"),
        }
    }
}

impl Target {
    /// Checks the target before any work: stdout must not be a terminal.
    ///
    /// # Errors
    /// When the image would go to a terminal.
    pub fn check(&self) -> Result<&Self, Failure> {
        if *self == Self::Stdout && io::stdout().is_terminal() {
            return Err(Failure::Plain(
                "stdout is a terminal; refusing to write an image to it".into(),
            ));
        }
        Ok(self)
    }

    /// Opens the output; with `digest`, also hashes what goes through it.
    ///
    /// # Errors
    /// When the temporary file cannot be created.
    pub fn open(&self, digest: bool) -> Result<Output, Failure> {
        let dest = match self {
            Self::File(path) => {
                let (file, temp) = TempFile::create(path).map_err(|e| {
                    Failure::Plain(format!("cannot create {}: {e}", path.display()))
                })?;
                Dest::File(BufWriter::with_capacity(WRITE_BUFFER, file), temp)
            }
            Self::Stdout => Dest::Stdout(BufWriter::with_capacity(WRITE_BUFFER, io::stdout())),
            Self::Discard => Dest::Discard,
        };
        Ok(Output {
            dest,
            hasher: digest.then(FsVerityHasher::new),
            target: self.clone(),
        })
    }
}

/// A temporary file next to the destination, removed unless renamed into place.
#[derive(Debug)]
struct TempFile {
    path: PathBuf,
    dest: PathBuf,
    committed: bool,
}

impl TempFile {
    /// Creates `.NAME.PID.N.tmp` in the destination's directory, with a fresh name.
    fn create(dest: &Path) -> io::Result<(File, Self)> {
        let dir = match dest.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = dest.file_name().ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "the image path names no file")
        })?;
        let pid = std::process::id();
        let mut last = io::Error::new(io::ErrorKind::AlreadyExists, "no free temporary name");
        for n in 0..TEMP_ATTEMPTS {
            let mut temp_name = std::ffi::OsString::from(".");
            temp_name.push(name);
            temp_name.push(format!(".{pid}.{n}.tmp"));
            let path = dir.join(temp_name);
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(file) => {
                    let temp = Self {
                        path,
                        dest: dest.to_path_buf(),
                        committed: false,
                    };
                    return Ok((file, temp));
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = e,
                Err(e) => return Err(e),
            }
        }
        Err(last)
    }

    /// Moves the complete file into place.
    fn commit(mut self) -> io::Result<()> {
        fs::rename(&self.path, &self.dest)?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.path);
        }
    }
}

#[derive(Debug)]
enum Dest {
    File(BufWriter<File>, TempFile),
    Stdout(BufWriter<io::Stdout>),
    Discard,
}

/// The open output: a [`Sink`] for the image writer.
#[derive(Debug)]
pub struct Output {
    dest: Dest,
    hasher: Option<FsVerityHasher>,
    target: Target,
}

impl Sink for Output {
    type Error = io::Error;

    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        if let Some(hasher) = &mut self.hasher {
            hasher.update(bytes).map_err(io::Error::other)?;
        }
        match &mut self.dest {
            Dest::File(w, _) => w.write_all(bytes),
            Dest::Stdout(w) => w.write_all(bytes),
            Dest::Discard => Ok(()),
        }
    }
}

impl Output {
    /// Flushes, moves a file into place, and returns the digest if one was computed.
    ///
    /// # Errors
    /// When flushing or renaming fails; a temporary file is removed then.
    pub fn finish(self) -> Result<Option<[u8; 32]>, Failure> {
        let fail = |e: io::Error| Failure::Plain(format!("cannot write {}: {e}", self.target));
        match self.dest {
            Dest::File(w, temp) => {
                let file = w.into_inner().map_err(|e| fail(e.into_error()))?;
                drop(file);
                temp.commit().map_err(fail)?;
            }
            Dest::Stdout(mut w) => w.flush().map_err(fail)?,
            Dest::Discard => {}
        }
        Ok(self.hasher.map(FsVerityHasher::finalize))
    }
}
