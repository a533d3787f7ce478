//! `composefs-info` subcommands, one module each; the binary only parses arguments and
//! dispatches here.

pub mod fsck;

/// Exit status: everything is fine.
pub const EXIT_OK: u8 = 0;
/// Exit status: an image is corrupted (or breaks a limit).
pub const EXIT_CORRUPTED: u8 = 1;
/// Exit status: usage or I/O error.
pub const EXIT_ERROR: u8 = 2;
