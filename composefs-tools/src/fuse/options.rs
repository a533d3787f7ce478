//! The `-o` mount options of composefs-fuse: parsing and validation.
//!
//! Options are comma-separated, as for `mount -o`; a `\` makes the next character literal
//! (`\,` for a comma inside a path, `\\` for a backslash), as in `mount.composefs`. The
//! option may be given several times; later values replace earlier ones.

use std::fmt;
use std::num::NonZeroUsize;
use std::path::PathBuf;

/// Upper bound on FUSE worker threads, whatever `threads=` asks.
pub const MAX_THREADS: usize = 64;

/// What the user asked for, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// `source=`: the composefs image file.
    pub source: PathBuf,
    /// `basedir=`: object store directories searched in order, from a `:`-separated list.
    pub basedirs: Vec<PathBuf>,
    /// `noacl`: hide POSIX ACL xattrs.
    pub noacl: bool,
    /// `verity`: refuse to open an external file unless its backing object has the
    /// fs-verity digest its metacopy xattr records (overlayfs `verity=require`).
    pub verity: bool,
    /// `check`: run the whole-image structural check before mounting and refuse an image
    /// with any problem.
    pub check: bool,
    /// `allow_other`: let users other than the mounting one access the mount.
    pub allow_other: bool,
    /// `dev`: honour device nodes (FUSE mounts default to `nodev`).
    pub dev: bool,
    /// `suid`: honour set-user-id and set-group-id bits (FUSE mounts default to `nosuid`).
    pub suid: bool,
    /// `noreaddirplus`: never answer directory reads with attributes (plain `readdir`
    /// only); for comparison and debugging.
    pub noreaddirplus: bool,
    /// `nopassthrough`: read external files through the server even where the kernel
    /// could read the objects directly (FUSE passthrough); for comparison and debugging.
    pub nopassthrough: bool,
    /// `threads=N`: FUSE worker threads (default: the CPU count, at most 4).
    pub threads: NonZeroUsize,
}

/// A malformed or unsupported option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OptionsError {
    /// No `source=` was given.
    MissingSource,
    /// An option this tool does not know.
    Unknown(String),
    /// An option that needs a value was given without one, or with an empty one.
    MissingValue(&'static str),
    /// `basedir=` has an empty entry (`a::b`, a leading or trailing `:`).
    EmptyBasedir,
    /// `threads=` is not a number in `1..=MAX_THREADS`.
    Threads(String),
    /// `rw` was asked for: composefs mounts are read-only.
    ReadWrite,
    /// The option string ends with a lone `\`.
    TrailingBackslash,
}

impl fmt::Display for OptionsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingSource => f.write_str("missing option source=IMAGE"),
            Self::Unknown(o) => write!(f, "unknown option '{o}'"),
            Self::MissingValue(o) => write!(f, "option '{o}' needs a non-empty value"),
            Self::EmptyBasedir => f.write_str("basedir= has an empty directory in its list"),
            Self::Threads(v) => write!(f, "threads={v}: expected a number from 1 to {MAX_THREADS}"),
            Self::ReadWrite => f.write_str("composefs mounts are read-only; 'rw' is refused"),
            Self::TrailingBackslash => f.write_str("option string ends with a lone '\\'"),
        }
    }
}

impl std::error::Error for OptionsError {}

/// Splits an option string at unescaped commas, removing the escapes. Empty items (from
/// `a,,b` or a trailing comma) are dropped.
///
/// # Errors
/// [`OptionsError::TrailingBackslash`].
pub fn split_options(text: &str) -> Result<Vec<String>, OptionsError> {
    let mut items = Vec::new();
    let mut current = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => current.push(chars.next().ok_or(OptionsError::TrailingBackslash)?),
            ',' => items.push(std::mem::take(&mut current)),
            c => current.push(c),
        }
    }
    items.push(current);
    items.retain(|s| !s.is_empty());
    Ok(items)
}

/// The default worker thread count: the CPUs this process may use, at most 4 (the
/// server mostly copies from memory; more threads only help while objects are verified).
#[must_use]
pub fn default_threads() -> NonZeroUsize {
    let cpus = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
    NonZeroUsize::new(cpus.min(4)).unwrap_or(NonZeroUsize::MIN)
}

/// Parses every `-o` argument, in order.
///
/// # Errors
/// The first [`OptionsError`] met; a missing `source=` once all are read.
pub fn parse<S: AsRef<str>>(args: &[S]) -> Result<Options, OptionsError> {
    let mut source = None;
    let mut basedirs = Vec::new();
    let mut options = Options {
        source: PathBuf::new(),
        basedirs: Vec::new(),
        noacl: false,
        verity: false,
        check: false,
        allow_other: false,
        dev: false,
        suid: false,
        noreaddirplus: false,
        nopassthrough: false,
        threads: default_threads(),
    };
    for arg in args {
        for item in split_options(arg.as_ref())? {
            let (key, value) = match item.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (item.as_str(), None),
            };
            let need = |name: &'static str| match value {
                Some(v) if !v.is_empty() => Ok(v),
                _ => Err(OptionsError::MissingValue(name)),
            };
            match (key, value) {
                ("source", _) => source = Some(PathBuf::from(need("source")?)),
                ("basedir", _) => {
                    let list = need("basedir")?;
                    if list.split(':').any(str::is_empty) {
                        return Err(OptionsError::EmptyBasedir);
                    }
                    basedirs = list.split(':').map(PathBuf::from).collect();
                }
                ("threads", _) => {
                    let v = need("threads")?;
                    options.threads = v
                        .parse::<NonZeroUsize>()
                        .ok()
                        .filter(|n| n.get() <= MAX_THREADS)
                        .ok_or_else(|| OptionsError::Threads(v.to_owned()))?;
                }
                ("noacl", None) => options.noacl = true,
                ("verity", None) => options.verity = true,
                ("check", None) => options.check = true,
                ("allow_other", None) => options.allow_other = true,
                ("dev", None) => options.dev = true,
                ("suid", None) => options.suid = true,
                ("noreaddirplus", None) => options.noreaddirplus = true,
                ("nopassthrough", None) => options.nopassthrough = true,
                ("ro", None) => {}
                ("rw", None) => return Err(OptionsError::ReadWrite),
                _ => return Err(OptionsError::Unknown(item.clone())),
            }
        }
    }
    options.source = source.ok_or(OptionsError::MissingSource)?;
    options.basedirs = basedirs;
    Ok(options)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_options() {
        let o = parse(&[
            "source=/i.img,basedir=/a:/b,noacl,verity,ro",
            "check,threads=3,noreaddirplus,nopassthrough,dev,suid,allow_other",
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(o.source, PathBuf::from("/i.img"));
        assert_eq!(o.basedirs, [PathBuf::from("/a"), PathBuf::from("/b")]);
        assert!(o.noacl && o.verity && o.check && o.noreaddirplus && o.nopassthrough);
        assert!(o.dev && o.suid && o.allow_other);
        assert_eq!(o.threads.get(), 3);
        let o = parse(&["source=x"]).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            o.basedirs.is_empty() && !o.noacl && !o.verity && !o.dev && !o.suid && !o.nopassthrough
        );
    }

    #[test]
    fn escapes_keep_commas_and_backslashes_in_values() {
        assert_eq!(
            split_options(r"source=/a\,b,basedir=c\\d,,").unwrap_or_default(),
            ["source=/a,b", r"basedir=c\d"]
        );
        let o = parse(&[r"source=/img\,1"]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(o.source, PathBuf::from("/img,1"));
        assert_eq!(split_options("a\\"), Err(OptionsError::TrailingBackslash));
    }

    #[test]
    fn rejects_bad_options() {
        let err = |s: &str| parse(&[s]).err();
        assert_eq!(err("basedir=/a"), Some(OptionsError::MissingSource));
        assert_eq!(err("source="), Some(OptionsError::MissingValue("source")));
        assert_eq!(err("source"), Some(OptionsError::MissingValue("source")));
        assert_eq!(
            err("source=i,basedir=a::b"),
            Some(OptionsError::EmptyBasedir)
        );
        assert_eq!(err("source=i,basedir=a:"), Some(OptionsError::EmptyBasedir));
        assert_eq!(err("source=i,rw"), Some(OptionsError::ReadWrite));
        assert_eq!(
            err("source=i,verity=1"),
            Some(OptionsError::Unknown("verity=1".into()))
        );
        assert_eq!(
            err("source=i,upperdir=/u"),
            Some(OptionsError::Unknown("upperdir=/u".into()))
        );
        assert_eq!(
            err("source=i,threads=0"),
            Some(OptionsError::Threads("0".into()))
        );
        assert_eq!(
            err("source=i,threads=65"),
            Some(OptionsError::Threads("65".into()))
        );
    }
}
