//! `composefs-info measure-file FILE...`: the fs-verity digest of each file, the kernel's
//! when the file has fs-verity enabled, else computed in userspace (SPEC.md 8.1, 9.1).

use std::fs::File;
use std::io::{self, Write};
use std::num::NonZeroUsize;
use std::path::Path;

use composefs_std::verity::{measure_file, to_hex};

use super::{complain, quoted, EXIT_ERROR, EXIT_OK};

/// Prints one lowercase hex digest per file, in order. Stops at the first file that
/// cannot be opened or measured, with a message naming it.
///
/// # Errors
/// Only when writing to `out` or `err` fails.
pub fn run(files: &[impl AsRef<Path>], out: &mut dyn Write, err: &mut dyn Write) -> io::Result<u8> {
    let threads = std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN);
    for path in files {
        let path = path.as_ref();
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) => {
                complain(err, format_args!("Failed to open {}: {e}", quoted(path)))?;
                return Ok(EXIT_ERROR);
            }
        };
        match measure_file(&file, threads) {
            Ok(digest) => writeln!(out, "{}", to_hex(&digest))?,
            Err(e) => {
                complain(err, format_args!("failed to measure {}: {e}", quoted(path)))?;
                return Ok(EXIT_ERROR);
            }
        }
    }
    out.flush()?;
    Ok(EXIT_OK)
}
