//! `composefs-fuse`: a read-only FUSE server for composefs images, built on the same
//! hardened reader as every other tool.
//!
//! What a user sees matches a kernel mount of the image (EROFS under overlayfs with the
//! object stores as data-only layers): names, types, modes, owners, times, sizes, link
//! counts, inode numbers (the nids), symlink targets, file contents and the xattrs
//! overlayfs shows. The modules:
//! - [`options`]: the `-o` mount options;
//! - [`inodes`]: inode numbers and attributes;
//! - [`xattrs`]: the overlay view of xattrs;
//! - [`objects`]: safe resolution, verification and caching of backing objects;
//! - [`ops`]: the FUSE operations.

pub mod inodes;
pub mod objects;
pub mod ops;
pub mod options;
pub mod xattrs;

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use composefs_format::check::check;
use composefs_format::image::Image;
use composefs_std::mmap::MappedFile;
use fuser::{Config, MountOption};
use nix::sys::signal::{SigSet, Signal};

use objects::Objects;
use ops::{ComposefsFs, Serving};
use options::Options;

/// How many check problems are printed when `check` refuses an image.
const SHOWN_PROBLEMS: usize = 20;

/// Why the server could not start, or stopped with an error.
#[derive(Debug)]
pub enum RunError {
    /// The image file could not be opened or mapped.
    Open(PathBuf, io::Error),
    /// The header, superblock or root inode is invalid.
    Image(PathBuf, composefs_format::Error),
    /// `check` found problems (the first ones, as printable lines).
    Check(PathBuf, Vec<String>),
    /// A basedir could not be opened.
    Basedir(io::Error),
    /// Mounting failed, or the FUSE session ended with an error.
    Mount(PathBuf, io::Error),
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Open(p, e) => write!(f, "{}: {e}", p.display()),
            Self::Image(p, e) => write!(f, "{}: not a valid composefs image: {e}", p.display()),
            Self::Check(p, problems) => {
                write!(f, "{}: the image check failed:", p.display())?;
                for line in problems {
                    write!(f, "\n  {line}")?;
                }
                Ok(())
            }
            Self::Basedir(e) => write!(f, "{e}"),
            Self::Mount(p, e) => write!(f, "{}: {e}", p.display()),
        }
    }
}

impl std::error::Error for RunError {}

/// Maps and validates the image, then serves it at `mountpoint` until it is unmounted.
///
/// The mapping lives as long as the process: the server borrows the image for its whole
/// run, and the process ends when the session does.
///
/// # Errors
/// A [`RunError`] naming the image, basedir or mountpoint at fault.
pub fn run(options: &Options, mountpoint: &Path) -> Result<(), RunError> {
    let source = &options.source;
    let map = MappedFile::open(source).map_err(|e| RunError::Open(source.clone(), e))?;
    let bytes: &'static [u8] = Box::leak(Box::new(map)).bytes();
    let image = Image::open(bytes).map_err(|e| RunError::Image(source.clone(), e))?;
    if options.check {
        let report = check(&image);
        if !report.is_sound() {
            let problems = report
                .problems()
                .iter()
                .take(SHOWN_PROBLEMS)
                .map(|p| {
                    let path = report.path(p);
                    format!("{}: {}", String::from_utf8_lossy(&path), p.error)
                })
                .collect();
            return Err(RunError::Check(source.clone(), problems));
        }
    }
    let objects = Objects::new(&options.basedirs, options.verity, options.threads)
        .map_err(RunError::Basedir)?;
    // As a kernel mount: ACL xattrs exist only when the header says the image has some.
    let noacl = options.noacl || !image.has_acl();
    let serving = Serving {
        noacl,
        readdirplus: !options.noreaddirplus,
        passthrough: !options.nopassthrough,
    };
    let fs = ComposefsFs::new(image, objects, serving);
    let mut config = Config::default();
    config.mount_options = vec![
        MountOption::FSName(source.display().to_string()),
        MountOption::Subtype("composefs".into()),
        MountOption::RO,
        MountOption::DefaultPermissions,
    ];
    if options.allow_other {
        config
            .mount_options
            .push(MountOption::CUSTOM("allow_other".into()));
    }
    if options.dev {
        config.mount_options.push(MountOption::Dev);
    }
    if options.suid {
        config.mount_options.push(MountOption::Suid);
    }
    config.n_threads = Some(options.threads.get());
    config.clone_fd = true;
    // Block the termination signals in every thread, and let one thread wait for them
    // and unmount: the session then ends as if `umount` had been run, and no dead mount
    // is left behind.
    let signals = termination_signals();
    signals
        .thread_block()
        .map_err(|e| RunError::Mount(mountpoint.into(), e.into()))?;
    let mut session = fuser::Session::new(fs, mountpoint, &config)
        .map_err(|e| RunError::Mount(mountpoint.into(), e))?;
    let mut unmounter = session.unmount_callable();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            if let Ok(signal) = signals.wait() {
                eprintln!("composefs-fuse: {signal}, unmounting");
                if let Err(e) = unmounter.unmount() {
                    eprintln!("composefs-fuse: unmount failed: {e}");
                }
            }
        })
        .map_err(|e| RunError::Mount(mountpoint.into(), e))?;
    session
        .run()
        .map_err(|e| RunError::Mount(mountpoint.into(), e))
}

/// SIGINT, SIGTERM and SIGHUP.
fn termination_signals() -> SigSet {
    let mut set = SigSet::empty();
    for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        set.add(s);
    }
    set
}
