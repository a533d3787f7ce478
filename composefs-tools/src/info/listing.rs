//! `composefs-info ls` and `composefs-info dump`: print each image's tree, as the
//! reference prints it (SPEC.md 6.7, 6.8, 9.1).

use std::io::{self, Write};
use std::path::Path;

use composefs_format::dumpfile::{write_dump, write_ls, HardlinkStyle, PrintOptions};

use super::image::{map, read_tree};
use super::{complain, Filter, EXIT_OK};

/// Which listing to print.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing {
    /// `ls`: paths with a type suffix.
    Ls,
    /// `dump`: composefs-dump(5) lines.
    Dump,
}

/// Prints the listing of each image in turn to `out`. Hard-linked files are printed in
/// full at their first entry in the walk, as the reference does. Stops at the first image
/// that cannot be read, after printing the listings of the images before it.
///
/// # Errors
/// Only when writing to `out` or `err` fails.
pub fn run(
    listing: Listing,
    images: &[impl AsRef<Path>],
    filter: &Filter,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> io::Result<u8> {
    let options = PrintOptions {
        hardlinks: HardlinkStyle::FirstInWalk,
        filter: filter.names().to_vec(),
    };
    for (n, path) in images.iter().enumerate() {
        let path = path.as_ref();
        let read = map(path).and_then(|bytes| read_tree(path, &bytes));
        let read = match read {
            Ok(read) => read,
            Err(e) => {
                complain(err, &e)?;
                return Ok(e.status());
            }
        };
        match listing {
            Listing::Ls => write_ls(&read.tree, &options, &mut *out)?,
            Listing::Dump => write_dump(&read.tree, &options, &mut *out)?,
        }
        if n.saturating_add(1) == images.len() {
            // The process is about to exit: the OS reclaims the last tree faster than
            // freeing its many small allocations one by one.
            std::mem::forget(read);
        }
    }
    Ok(EXIT_OK)
}
