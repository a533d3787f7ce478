//! `composefs-info` subcommands, one module each; the binary only parses arguments and
//! dispatches here (SPEC.md section 9.1).
//!
//! Every command writes its normal output to `out` and its diagnostics to `err`, and
//! returns the exit status: [`EXIT_OK`], [`EXIT_CORRUPTED`] when an image is unsound, or
//! [`EXIT_ERROR`] for usage and I/O errors. Only a failing `out`/`err` is an `Err`.

pub mod basedir;
pub mod fsck;
pub mod image;
pub mod listing;
pub mod measure;
pub mod objects;
pub mod rewrite;

use std::ffi::OsStr;
use std::io::{self, Write};
use std::path::Path;

/// Exit status: everything is fine.
pub const EXIT_OK: u8 = 0;
/// Exit status: an image is corrupted (or breaks a limit).
pub const EXIT_CORRUPTED: u8 = 1;
/// Exit status: usage or I/O error.
pub const EXIT_ERROR: u8 = 2;

/// The top-level names `--filter` keeps, checked: each is one path component.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    names: Vec<Vec<u8>>,
}

impl Filter {
    /// Builds the filter from the `--filter` values.
    ///
    /// # Errors
    /// The reference's message, `Filter must be a single name: NAME`, for a value holding
    /// a `/`, and a similar one for an empty value (which names nothing).
    pub fn new<I, S>(values: I) -> Result<Self, String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        use std::os::unix::ffi::OsStrExt;
        let mut names = Vec::new();
        for value in values {
            let bytes = value.as_ref().as_bytes();
            if bytes.contains(&b'/') || bytes.is_empty() {
                return Err(format!(
                    "Filter must be a single name: {}",
                    value.as_ref().to_string_lossy()
                ));
            }
            names.push(bytes.to_vec());
        }
        Ok(Self { names })
    }

    /// Whether no filter was given (everything is kept).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The names, as the printers take them.
    #[must_use]
    pub fn names(&self) -> &[Vec<u8>] {
        &self.names
    }
}

/// Writes `composefs-info: MESSAGE` to `err`.
///
/// # Errors
/// When writing to `err` fails.
pub fn complain(err: &mut dyn Write, message: impl std::fmt::Display) -> io::Result<()> {
    writeln!(err, "composefs-info: {message}")
}

/// How a path is shown in messages, in quotes like the reference's.
#[must_use]
pub fn quoted(path: &Path) -> String {
    format!("'{}'", path.display())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn filter_takes_single_names_only() {
        let f = Filter::new(["a", "b c"]).unwrap();
        assert_eq!(f.names(), [b"a".to_vec(), b"b c".to_vec()]);
        assert!(!f.is_empty());
        assert!(Filter::new(Vec::<String>::new()).unwrap().is_empty());
        assert_eq!(
            Filter::new(["ok", "a/b"]).unwrap_err(),
            "Filter must be a single name: a/b"
        );
        assert!(Filter::new([""]).is_err());
    }
}
