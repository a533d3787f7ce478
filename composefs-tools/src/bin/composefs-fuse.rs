//! `composefs-fuse`: mount a composefs image with FUSE, read-only, in the foreground.

// The help text below is plain text for clap, not Markdown: `[:DIR2]` is not a link.
#![allow(rustdoc::broken_intra_doc_links)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use composefs_tools::fuse::{self, options};

/// Mount a composefs image with FUSE (read-only, in the foreground until unmounted).
///
/// Mount options (comma-separated; `\,` is a literal comma):
///   source=IMAGE        the composefs image (required)
///   basedir=DIR[:DIR2]  object stores that external files redirect into, searched in order
///   verity              refuse files whose backing object lacks the fs-verity digest
///                       recorded in the image, and files with no digest
///   noacl               hide POSIX ACL xattrs
///   check               check the whole image first and refuse it if anything is wrong
///   allow_other         let other users access the mount
///   dev, suid           honour device nodes and set-id bits (FUSE defaults: nodev, nosuid)
///   noreaddirplus       plain directory reads only (for comparison and debugging)
///   nopassthrough       read external files through the server, not by kernel
///                       passthrough to the objects (for comparison and debugging)
///   threads=N           FUSE worker threads (default: CPUs, at most 4)
///   ro                  accepted (the mount is always read-only)
///
/// Unmount with `umount MOUNTPOINT`, or stop the server with SIGINT, SIGTERM or SIGHUP,
/// which unmount too.
#[derive(Debug, Parser)]
#[command(name = "composefs-fuse", version, verbatim_doc_comment)]
struct Cli {
    /// Mount options (may be repeated).
    #[arg(short = 'o', value_name = "OPTIONS", required = true)]
    options: Vec<String>,
    /// Accepted for compatibility: the server always runs in the foreground.
    #[arg(short = 'f')]
    foreground: bool,
    /// Where to mount.
    mountpoint: PathBuf,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let options = match options::parse(&cli.options) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("composefs-fuse: {e}");
            return ExitCode::from(2);
        }
    };
    match fuse::run(&options, &cli.mountpoint) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("composefs-fuse: {e}");
            ExitCode::FAILURE
        }
    }
}
