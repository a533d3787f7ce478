//! `mkcomposefs`: build a composefs image from a composefs-dump(5) file, byte for byte as
//! the reference mkcomposefs 1.0.8 does.

use std::ffi::OsString;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use composefs_format::write::Options;
use composefs_tools::mkcomposefs::{self, Request, ScanOptions, Source, Target};

/// Build a composefs image.
///
/// SOURCE is a dump file with --from-file (`-` reads standard input); IMAGE is the image
/// to write (`-` writes standard output, refused if it is a terminal). The image is written
/// to a temporary file in IMAGE's directory and renamed into place only when complete.
/// Set CFS_PARSE_STRICT (to anything) for strict dump parsing.
#[derive(Debug, Parser)]
#[command(name = "mkcomposefs", version, about, long_about)]
struct Args {
    /// The source is a dump file, not a directory.
    #[arg(long)]
    from_file: bool,
    /// Print the fs-verity digest of the image (lowercase hex) on standard output.
    #[arg(long)]
    print_digest: bool,
    /// Print the digest of the image but do not write it; give no IMAGE.
    #[arg(long)]
    print_digest_only: bool,
    /// Lowest format version (0 or 1). Default 0.
    #[arg(long, value_name = "N")]
    min_version: Option<u32>,
    /// Highest format version (0 or 1). Default 1, or 0 when --min-version is given.
    #[arg(long, value_name = "N")]
    max_version: Option<u32>,
    /// Store content files in this directory (directory sources only).
    #[arg(long, value_name = "PATH")]
    digest_store: Option<PathBuf>,
    /// Make all mtimes zero (directory sources only).
    #[arg(long)]
    use_epoch: bool,
    /// Do not store device nodes (directory sources only).
    #[arg(long)]
    skip_devices: bool,
    /// Do not store xattrs (directory sources only).
    #[arg(long)]
    skip_xattrs: bool,
    /// Only store user.* xattrs (directory sources only).
    #[arg(long)]
    user_xattrs: bool,
    /// Threads for digests and copies (directory sources only).
    #[arg(long, value_name = "N")]
    threads: Option<NonZeroUsize>,
    /// Dump file (with --from-file; `-` for standard input) or directory.
    #[arg(value_name = "SOURCE")]
    source: OsString,
    /// Image to write; `-` for standard output.
    #[arg(value_name = "IMAGE")]
    image: Option<OsString>,
}

/// Exit status of every failure, as the reference.
const EXIT_FAILURE: u8 = 1;

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(e) => {
            // --help and --version succeed; usage errors exit 1 like the reference.
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(EXIT_FAILURE)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let request = match request(args) {
        Ok(request) => request,
        Err(message) => {
            eprintln!("mkcomposefs: {message}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    match mkcomposefs::run(&request) {
        Ok(built) => {
            if let Some(digest) = built.digest {
                println!("{}", mkcomposefs::hex(&digest));
            }
            // The process ends here: the OS reclaims the tree faster than freeing it.
            std::mem::forget(built.tree);
            ExitCode::SUCCESS
        }
        Err(failure) => {
            eprintln!("{failure}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

/// Checks the arguments against each other and turns them into a [`Request`].
fn request(args: Args) -> Result<Request, String> {
    if args.source.is_empty() {
        return Err("empty SOURCE path".into());
    }
    let target = match (&args.image, args.print_digest_only) {
        (Some(_), true) => return Err("IMAGE cannot be given with --print-digest-only".into()),
        (None, true) => Target::Discard,
        (None, false) => return Err("no IMAGE given (or use --print-digest-only)".into()),
        (Some(image), false) if image == "-" => Target::Stdout,
        (Some(image), false) => Target::File(PathBuf::from(image)),
    };
    // Like the reference: when either version is given, the other defaults to 0.
    let options = match (args.min_version, args.max_version) {
        (None, None) => Options::default(),
        (min, max) => Options {
            min_version: min.unwrap_or(0),
            max_version: max.unwrap_or(0),
        },
    };
    for (flag, v) in [
        ("--min-version", options.min_version),
        ("--max-version", options.max_version),
    ] {
        if v > 1 {
            return Err(format!("{flag}={v}: the format versions are 0 and 1"));
        }
    }
    let source = if args.from_file {
        if args.source == "-" {
            Source::Stdin
        } else {
            Source::Dump(PathBuf::from(&args.source))
        }
    } else {
        let scan = ScanOptions {
            digest_store: args.digest_store,
            use_epoch: args.use_epoch,
            skip_devices: args.skip_devices,
            skip_xattrs: args.skip_xattrs,
            user_xattrs: args.user_xattrs,
            threads: args.threads,
        };
        Source::Directory(PathBuf::from(&args.source), scan)
    };
    Ok(Request {
        source,
        target,
        options,
        digest: args.print_digest || args.print_digest_only,
        strict: std::env::var_os("CFS_PARSE_STRICT").is_some(),
    })
}
