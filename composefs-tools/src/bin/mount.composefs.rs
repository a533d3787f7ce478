//! `mount.composefs`: mount a composefs image, standalone or as a mount(8) helper.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use composefs_tools::mount::{describe, run, EXIT_FAILURE, OPTIONS_HELP};

/// Mount a composefs image: EROFS for the metadata, overlayfs on top for the file data
/// found in the object directories.
///
/// Examples:
///   mount.composefs -o basedir=/composefs/objects image.cfs /mnt/image
///   mount -t composefs -o basedir=/composefs/objects image.cfs /mnt/image
#[derive(Debug, Parser)]
#[command(
    name = "mount.composefs",
    version,
    about,
    verbatim_doc_comment,
    after_help = OPTIONS_HELP
)]
struct Cli {
    /// Filesystem type; only `composefs` is accepted.
    #[arg(short = 't', value_name = "TYPE")]
    fstype: Option<String>,
    /// Mount options (may be repeated; joined with commas).
    #[arg(short = 'o', value_name = "OPTS")]
    options: Vec<String>,
    /// Print how the image was mounted.
    #[arg(short = 'v')]
    verbose: bool,
    /// Accepted from mount(8) and ignored: nothing is written to /etc/mtab.
    #[arg(short = 'n', hide = true)]
    no_mtab: bool,
    /// The image file.
    image: PathBuf,
    /// Where to mount it.
    mountpoint: PathBuf,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(EXIT_FAILURE)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    if let Some(t) = cli.fstype.as_deref().filter(|t| *t != "composefs") {
        eprintln!("mount.composefs: unsupported filesystem type '{t}' (only composefs)");
        return ExitCode::from(EXIT_FAILURE);
    }
    match run(&cli.image, &cli.mountpoint, &cli.options.join(",")) {
        Ok(done) => {
            if cli.verbose {
                println!("{}", describe(&cli.image, &cli.mountpoint, &done));
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("mount.composefs: {e}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}
