//! `composefs-dump`: rewrite a composefs image through its tree.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use composefs_tools::info::{rewrite, EXIT_ERROR};

/// Rewrite a composefs image: read SRC back into the tree it describes and write that
/// tree to DEST at the format version in SRC's header.
///
/// SRC must pass the structural check (composefs-info fsck). DEST is written to a
/// temporary file in its directory and renamed into place only when complete. For an
/// image that mkcomposefs wrote, DEST is byte for byte SRC. Exit status: 0 written, 1 SRC
/// is unsound or cannot be rewritten, 2 a usage or I/O error.
#[derive(Debug, Parser)]
#[command(name = "composefs-dump", version, about, long_about)]
struct Args {
    /// The image to read.
    #[arg(value_name = "SRC")]
    src: PathBuf,
    /// The image to write.
    #[arg(value_name = "DEST")]
    dest: PathBuf,
}

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_ERROR } else { 0 });
        }
    };
    match rewrite::run(&args.src, &args.dest, &mut std::io::stderr().lock()) {
        Ok(code) => ExitCode::from(code),
        Err(_) => ExitCode::from(EXIT_ERROR),
    }
}
