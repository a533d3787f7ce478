//! `composefs-info`: inspect composefs images.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use composefs_tools::info::{self, EXIT_ERROR};

/// Inspect composefs images.
#[derive(Debug, Parser)]
#[command(name = "composefs-info", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check the structure of each image and print every problem found.
    ///
    /// Each problem is printed as `IMAGE: nid N (PATH): PROBLEM`. Exit status: 0 when
    /// every image is sound, 1 when one is corrupted, 2 on usage or I/O errors.
    Fsck {
        /// Images to check.
        #[arg(required = true)]
        images: Vec<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    let status = match cli.command {
        Command::Fsck { images } => {
            info::fsck::run(&images, &mut stdout.lock(), &mut stderr.lock())
        }
    };
    match status {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("composefs-info: {e}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}
