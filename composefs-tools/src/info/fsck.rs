//! `composefs-info fsck [--canonical] [--basedir=DIR [--verify-objects]] IMAGE...`: the
//! structural check of each image, optionally the canonical-image check, and optionally
//! the backing files in an object store (SPEC.md 9.1).

use std::io::{self, Write};
use std::path::Path;

use composefs_format::canonical::{self, CanonicalError};
use composefs_format::check::{check_bytes, Report};

use super::basedir::Basedir;
use super::image::{map, read_tree};
use super::{EXIT_CORRUPTED, EXIT_ERROR, EXIT_OK};

mod backing;

pub use backing::ObjectCheck;

/// What to check beyond the structure.
#[derive(Debug, Default)]
pub struct FsckOptions<'a> {
    /// Also require the image to be exactly what the writer makes of its own tree.
    pub canonical: bool,
    /// Also check the backing files of external regular files.
    pub objects: Option<ObjectCheck<'a>>,
}

/// Checks each image and prints its findings to `out`: one line per problem,
/// `IMAGE: nid N (PATH): PROBLEM`, or `IMAGE: ok (...)` for a sound image; I/O errors go
/// to `err`. Returns the exit status: 0 all sound, 1 a problem in some image, 2 an I/O
/// error (which wins over 1).
///
/// # Errors
/// Only when writing to `out` or `err` fails.
pub fn run(
    images: &[impl AsRef<Path>],
    options: &FsckOptions<'_>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> io::Result<u8> {
    let mut status = EXIT_OK;
    for path in images {
        let path = path.as_ref();
        let name = path.display().to_string();
        let bytes = match map(path) {
            Ok(b) => b,
            Err(e) => {
                writeln!(err, "composefs-info: {e}")?;
                status = status.max(EXIT_ERROR);
                continue;
            }
        };
        let sound = if options.canonical {
            check_canonical(&name, &bytes, out)?
        } else {
            check_structure(&name, &bytes, out)?
        };
        if !sound {
            status = status.max(EXIT_CORRUPTED);
            continue;
        }
        if let Some(check) = &options.objects {
            let read = match read_tree(path, &bytes) {
                Ok(read) => read,
                Err(e) => {
                    writeln!(out, "{name}: {e}")?;
                    status = status.max(EXIT_CORRUPTED);
                    continue;
                }
            };
            status = status.max(check.run(&name, &read.tree, out)?);
        }
    }
    Ok(status)
}

/// The structural check alone; prints the `ok` line or every problem. Returns soundness.
fn check_structure(name: &str, bytes: &[u8], out: &mut dyn Write) -> io::Result<bool> {
    let report = check_bytes(bytes);
    if report.is_sound() {
        let s = report.stats();
        writeln!(
            out,
            "{name}: ok ({} inodes, {} directories, {} entries)",
            s.inodes, s.directories, s.entries
        )?;
        return Ok(true);
    }
    print_problems(name, &report, out)?;
    Ok(false)
}

/// The structural check (inside [`canonical::verify`]) and the canonical check. Returns
/// whether both passed.
fn check_canonical(name: &str, bytes: &[u8], out: &mut dyn Write) -> io::Result<bool> {
    match canonical::verify(bytes) {
        Ok(c) => {
            writeln!(
                out,
                "{name}: ok, canonical (format version {}, {} inodes)",
                c.format_version, c.inodes
            )?;
            Ok(true)
        }
        Err(CanonicalError::NotSound { .. }) => {
            // Report every problem, as without --canonical.
            print_problems(name, &check_bytes(bytes), out)?;
            Ok(false)
        }
        Err(e) => {
            writeln!(out, "{name}: {e}")?;
            Ok(false)
        }
    }
}

fn print_problems(name: &str, report: &Report<'_>, out: &mut dyn Write) -> io::Result<()> {
    for p in report.problems() {
        writeln!(out, "{name}: {}", report.describe(p))?;
    }
    if report.dropped() > 0 {
        writeln!(out, "{name}: {} more problems not shown", report.dropped())?;
    }
    Ok(())
}

/// Opens the base directory for the object check.
///
/// # Errors
/// The message to print when it cannot be opened.
pub fn open_basedir(path: &Path) -> Result<Basedir, String> {
    Basedir::open(path).map_err(|e| format!("Can't open basedir '{}': {e}", path.display()))
}
