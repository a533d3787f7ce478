//! `composefs-dump SRC DEST`: read an image back into its tree and write that tree again
//! at the format version in the image's header (SPEC.md 9.2).
//!
//! The source must pass the structural check; the result is written to a temporary file
//! next to DEST and renamed over it only once complete, so DEST is never left partial.

use std::io::{self, Write};
use std::path::Path;

use composefs_format::check::check_bytes;
use composefs_format::write::{self, EmitError, Options};

use super::image::{map, read_tree};
use super::{quoted, EXIT_CORRUPTED, EXIT_ERROR, EXIT_OK};
use crate::mkcomposefs::{Failure, Target};

/// Writes `composefs-dump: MESSAGE` to `err`.
fn complain(err: &mut dyn Write, message: impl std::fmt::Display) -> io::Result<()> {
    writeln!(err, "composefs-dump: {message}")
}

/// The message of an output failure, without mkcomposefs's program name.
fn output_message(failure: Failure) -> String {
    match failure {
        Failure::Located(m) | Failure::Plain(m) => m,
    }
}

/// Rewrites the image at `src` into `dest`. Returns the exit status: 0 written, 1 the
/// source is unsound or its tree cannot be written, 2 an I/O error.
///
/// # Errors
/// Only when writing to `err` fails.
pub fn run(src: &Path, dest: &Path, err: &mut dyn Write) -> io::Result<u8> {
    let bytes = match map(src) {
        Ok(bytes) => bytes,
        Err(e) => {
            complain(err, e)?;
            return Ok(EXIT_ERROR);
        }
    };
    let report = check_bytes(&bytes);
    if let Some(first) = report.problems().first() {
        let more = report.problems().len().saturating_sub(1);
        complain(
            err,
            format_args!(
                "{} is not a sound image: {}{}",
                quoted(src),
                first.error,
                if more > 0 {
                    format!(" (and {more} more problems; see composefs-info fsck)")
                } else {
                    String::new()
                }
            ),
        )?;
        return Ok(EXIT_CORRUPTED);
    }
    let read = match read_tree(src, &bytes) {
        Ok(read) => read,
        Err(e) => {
            complain(err, &e)?;
            return Ok(e.status());
        }
    };
    drop(bytes);
    let options = Options {
        min_version: read.format_version,
        max_version: read.format_version,
    };
    let layout = match write::plan(&read.tree, &options) {
        Ok(layout) => layout,
        Err(e) => {
            complain(err, format_args!("cannot rewrite {}: {e}", quoted(src)))?;
            return Ok(EXIT_CORRUPTED);
        }
    };
    let target = Target::File(dest.to_path_buf());
    let mut output = match target.open(false) {
        Ok(output) => output,
        Err(f) => {
            complain(err, output_message(f))?;
            return Ok(EXIT_ERROR);
        }
    };
    if let Err(e) = layout.emit(&mut output) {
        let message = match e {
            EmitError::Sink(e) => format!("cannot write {}: {e}", quoted(dest)),
            e @ EmitError::Inconsistent { .. } => e.to_string(),
        };
        complain(err, message)?;
        return Ok(EXIT_ERROR);
    }
    if let Err(f) = output.finish() {
        complain(err, output_message(f))?;
        return Ok(EXIT_ERROR);
    }
    Ok(EXIT_OK)
}
