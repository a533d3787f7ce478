//! `mount.composefs`: the option string and the mount itself; the binary only reads the
//! command line and dispatches here.

pub mod options;

use std::fmt::Write as _;
use std::path::Path;

use composefs_std::mount::{mount, ErofsSource, ImageCheck, LayerMode, Mounted};

pub use options::{parse, OptionError, ParsedOptions};

/// Exit status on any failure (as the reference).
pub const EXIT_FAILURE: u8 = 1;

/// The option list printed by `--help`.
pub const OPTIONS_HELP: &str = "\
Options (-o, comma-separated; a backslash takes the next character literally, so \\, is a
comma inside a value):
  basedir=PATH[:PATH...]  object directories, searched in order (required)
  digest=DIGEST           the image file must have fs-verity with this digest (64 hex
                          digits); implies verity
  verity                  every file must have a digest and an object with that fs-verity
                          digest (overlayfs verity=require)
  tryverity               verity=require if the kernel knows it
  upperdir=PATH           writable upper layer (needs workdir=)
  workdir=PATH            overlayfs work directory (needs upperdir=)
  idmap=PATH              idmap the image with this user namespace (/proc/PID/ns/user)
  ro | rw                 read-only or read-write overlay (default rw)
  check=LEVEL             what the image must pass before the kernel sees it:
                          structure (default) the structural check of every inode;
                          canonical also byte-identical to what our writer makes of it;
                          none only the header magic (as the reference)
  nosnapshot              mount the checked image file itself even without fs-verity,
                          instead of a sealed in-memory copy (only safe when nobody can
                          write the file)";

/// Parses `options` and mounts `image` on `target`.
///
/// # Errors
/// The option error, or the mount error, as a message naming the cause.
pub fn run(image: &Path, target: &Path, options: &str) -> Result<Mounted, String> {
    let parsed = parse(options).map_err(|e| e.to_string())?;
    let mount_options = parsed.to_mount_options().map_err(|e| e.to_string())?;
    mount(image, target, &mount_options)
        .map_err(|e| format!("failed to mount {}: {e}", image.display()))
}

/// One line saying what [`run`] did, for `-v`.
#[must_use]
pub fn describe(image: &Path, target: &Path, done: &Mounted) -> String {
    let mut s = format!(
        "mounted {} on {}: EROFS from ",
        image.display(),
        target.display()
    );
    s.push_str(match done.source {
        ErofsSource::File => "the image file",
        ErofsSource::LoopDevice => "a loop device",
    });
    s.push_str(match done.layers {
        LayerMode::Fds => ", layers as file descriptors",
        LayerMode::Paths => ", layers as paths",
        LayerMode::LegacyDataOnly => ", legacy mount(2) with data-only layers",
        LayerMode::LegacyLower => ", legacy mount(2) with lower layers",
    });
    let _ = write!(
        s,
        ", check {}",
        match done.check {
            ImageCheck::None => "none",
            ImageCheck::Structure => "structure",
            ImageCheck::Canonical => "canonical",
        }
    );
    if done.snapshot {
        s.push_str(", sealed in-memory copy");
    }
    s
}
