//! `composefs-info fsck IMAGE...`: the structural check of each image.

use std::io::{self, Write};
use std::path::Path;

use composefs_format::check::{check_bytes, Location, Report};
use composefs_format::error::write_escaped;

use super::{EXIT_CORRUPTED, EXIT_ERROR, EXIT_OK};

/// Checks each image and prints one line per problem, `IMAGE: nid N (PATH): PROBLEM`, to
/// `out`, and `IMAGE: ok (...)` for a sound image. I/O errors go to `err`.
/// Returns the exit status: 0 all sound, 1 some image corrupted, 2 an I/O error.
///
/// # Errors
/// Only when writing to `out` or `err` fails.
pub fn run(
    images: &[impl AsRef<Path>],
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> io::Result<u8> {
    let mut status = EXIT_OK;
    for path in images {
        let path = path.as_ref();
        let name = path.display();
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) => {
                writeln!(err, "{name}: {e}")?;
                status = status.max(EXIT_ERROR);
                continue;
            }
        };
        let report = check_bytes(&bytes);
        if report.is_sound() {
            let s = report.stats();
            writeln!(
                out,
                "{name}: ok ({} inodes, {} directories, {} entries)",
                s.inodes, s.directories, s.entries
            )?;
            continue;
        }
        status = status.max(EXIT_CORRUPTED);
        print_problems(&name.to_string(), &report, out)?;
    }
    Ok(status)
}

fn print_problems(name: &str, report: &Report<'_>, out: &mut dyn Write) -> io::Result<()> {
    for p in report.problems() {
        let mut line = String::new();
        line.push_str(name);
        line.push_str(": ");
        if let Some(nid) = report.nid_of(p) {
            line.push_str(&format!("nid {nid} "));
        }
        if p.location != Location::Image {
            line.push('(');
            // Writing to a String cannot fail.
            let _ = write_escaped(&mut line, &report.path(p));
            line.push_str("): ");
        }
        line.push_str(&p.error.kind().to_string());
        if let Some(off) = p.error.offset() {
            line.push_str(&format!(" [offset {off}]"));
        }
        writeln!(out, "{line}")?;
    }
    if report.dropped() > 0 {
        writeln!(out, "{name}: {} more problems not shown", report.dropped())?;
    }
    Ok(())
}
