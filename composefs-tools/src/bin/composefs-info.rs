//! `composefs-info`: inspect composefs images; a drop-in for the reference tool.

use std::ffi::OsString;
use std::io::{self, Write};
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use composefs_tools::info::fsck::{self, FsckOptions, ObjectCheck};
use composefs_tools::info::listing::{self, Listing};
use composefs_tools::info::{basedir::Basedir, measure, objects, Filter, EXIT_ERROR};

/// Inspect composefs images.
///
/// Exit status: 0 success, 1 an image is corrupted (or fails a check), 2 a usage or I/O
/// error. Messages name the file concerned. --basedir and --filter may be given before or
/// after the command.
#[derive(Debug, Parser)]
#[command(name = "composefs-info", version, about, long_about)]
struct Cli {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    command: Command,
}

/// The options that may come before the command name (the reference's `getopt` takes
/// them anywhere); each command takes those it uses after its name too.
#[derive(Debug, Clone, Default, Args)]
struct Common {
    #[command(flatten)]
    basedir: BasedirArg,
    #[command(flatten)]
    filter: FilterArg,
}

/// `--basedir`.
#[derive(Debug, Clone, Default, Args)]
struct BasedirArg {
    /// Base directory of the backing files (the object store), for missing-objects and
    /// fsck. Paths are looked up without leaving it.
    #[arg(long, value_name = "PATH")]
    basedir: Option<PathBuf>,
}

/// `--filter`.
#[derive(Debug, Clone, Default, Args)]
struct FilterArg {
    /// Only consider this top-level entry of each image (and what is below it); may be
    /// repeated. NAME is a single name: a `/` is an error. For ls, dump, objects and
    /// missing-objects.
    #[arg(long, value_name = "NAME")]
    filter: Vec<OsString>,
}

impl Common {
    /// The options given before the command, then those after it (a later --basedir
    /// wins, filters add up).
    fn merge(self, after: Self) -> Self {
        let mut filter = self.filter.filter;
        filter.extend(after.filter.filter);
        Self {
            basedir: BasedirArg {
                basedir: after.basedir.basedir.or(self.basedir.basedir),
            },
            filter: FilterArg { filter },
        }
    }
}

/// Arguments of the listings.
#[derive(Debug, Args)]
struct Images {
    #[command(flatten)]
    filter: FilterArg,
    /// Images to read, in turn.
    #[arg(required = true, value_name = "IMAGE")]
    images: Vec<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List every entry of each image: the path, then `/` and a TAB for a directory, a TAB
    /// and `-> TARGET` for a symlink, a TAB and `@ BACKING` for a file with a backing
    /// file. A second name of a hard-linked file shows only its path.
    Ls(Images),
    /// Print each image as a composefs-dump(5) file, which mkcomposefs --from-file turns
    /// back into the same image.
    Dump(Images),
    /// Print the backing files (object store paths) that the images' regular files name:
    /// the union over all images, sorted, one per line.
    Objects(Images),
    /// Like objects, but print only the backing files missing from --basedir (required).
    MissingObjects {
        #[command(flatten)]
        basedir: BasedirArg,
        #[command(flatten)]
        filter: FilterArg,
        /// Images to read.
        #[arg(required = true, value_name = "IMAGE")]
        images: Vec<PathBuf>,
    },
    /// Print the fs-verity digest of each file (lowercase hex, one per line): the
    /// kernel's when the file has fs-verity enabled, else computed.
    MeasureFile {
        /// Files to measure.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Check each image and print every problem found.
    ///
    /// Each problem is printed as `IMAGE: nid N (PATH): PROBLEM`, a sound image as
    /// `IMAGE: ok (...)`. With --basedir, every backing file must exist there as a regular
    /// file (looked up without leaving the directory). Exit status: 0 when every image is
    /// sound, 1 when one is corrupted or fails a check, 2 on usage or I/O errors.
    Fsck {
        #[command(flatten)]
        basedir: BasedirArg,
        /// Also require each image to be canonical: exactly the image that its own tree
        /// gives when written again at its format version. The first differing byte is
        /// reported with the structure holding it.
        #[arg(long)]
        canonical: bool,
        /// With --basedir: also check that each backing file has the fs-verity digest
        /// that the image records for it (several files at once).
        #[arg(long)]
        verify_objects: bool,
        /// Images to check.
        #[arg(required = true, value_name = "IMAGE")]
        images: Vec<PathBuf>,
    },
}

impl Command {
    /// The options given after the command name.
    fn common(&self) -> Common {
        match self {
            Self::Ls(i) | Self::Dump(i) | Self::Objects(i) => Common {
                filter: i.filter.clone(),
                ..Common::default()
            },
            Self::MissingObjects {
                basedir, filter, ..
            } => Common {
                basedir: basedir.clone(),
                filter: filter.clone(),
            },
            Self::Fsck { basedir, .. } => Common {
                basedir: basedir.clone(),
                ..Common::default()
            },
            Self::MeasureFile { .. } => Common::default(),
        }
    }
}

/// Runs the command; returns the exit status.
fn run(cli: Cli, out: &mut dyn Write, err: &mut dyn Write) -> io::Result<u8> {
    let usage = |err: &mut dyn Write, message: &str| -> io::Result<u8> {
        writeln!(err, "composefs-info: {message}")?;
        Ok(EXIT_ERROR)
    };
    let common = cli.common.merge(cli.command.common());
    let filter = match Filter::new(&common.filter.filter) {
        Ok(f) => f,
        Err(message) => return usage(err, &message),
    };
    let filtered = matches!(
        cli.command,
        Command::Ls(_) | Command::Dump(_) | Command::Objects(_) | Command::MissingObjects { .. }
    );
    if !filtered && !filter.is_empty() {
        return usage(
            err,
            "--filter applies to ls, dump, objects and missing-objects only",
        );
    }
    let uses_basedir = matches!(
        cli.command,
        Command::MissingObjects { .. } | Command::Fsck { .. }
    );
    if !uses_basedir && common.basedir.basedir.is_some() {
        return usage(err, "--basedir applies to missing-objects and fsck only");
    }
    if matches!(
        cli.command,
        Command::Fsck {
            verify_objects: true,
            ..
        }
    ) && common.basedir.basedir.is_none()
    {
        return usage(err, "--verify-objects needs --basedir=PATH");
    }
    let basedir = match &common.basedir.basedir {
        Some(path) => match fsck::open_basedir(path) {
            Ok(b) => Some(b),
            Err(message) => return usage(err, &message),
        },
        None => None,
    };
    match cli.command {
        Command::Ls(Images { images, .. }) => listing::run(Listing::Ls, &images, &filter, out, err),
        Command::Dump(Images { images, .. }) => {
            listing::run(Listing::Dump, &images, &filter, out, err)
        }
        Command::Objects(Images { images, .. }) => objects::run(&images, &filter, None, out, err),
        Command::MissingObjects { images, .. } => {
            let Some(basedir) = &basedir else {
                return usage(
                    err,
                    "missing-objects needs --basedir=PATH (the object store to look in)",
                );
            };
            objects::run(&images, &filter, Some(basedir), out, err)
        }
        Command::MeasureFile { files, .. } => measure::run(&files, out, err),
        Command::Fsck {
            canonical,
            verify_objects,
            images,
            ..
        } => {
            let threads = std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN);
            let options = FsckOptions {
                canonical,
                objects: basedir.as_ref().map(|basedir: &Basedir| ObjectCheck {
                    basedir,
                    verify: verify_objects,
                    threads,
                }),
            };
            fsck::run(&images, &options, out, err)
        }
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version succeed; usage errors exit 2.
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_ERROR } else { 0 });
        }
    };
    let stdout = io::stdout();
    let stderr = io::stderr();
    let mut out = stdout.lock();
    let status = run(cli, &mut out, &mut stderr.lock()).and_then(|status| {
        out.flush()?;
        Ok(status)
    });
    match status {
        Ok(code) => ExitCode::from(code),
        // A reader that went away (`composefs-info dump IMG | head`) is not an error
        // worth a message.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::from(EXIT_ERROR),
        Err(e) => {
            eprintln!("composefs-info: cannot write output: {e}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}
