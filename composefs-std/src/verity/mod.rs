//! fs-verity on Linux: fast userspace digests of files, readers and memory (in parallel
//! within one file), the `FS_IOC_ENABLE_VERITY` / `FS_IOC_MEASURE_VERITY` ioctls, and
//! [`measure_file`], which asks the kernel first and hashes in userspace when it cannot
//! answer (SPEC.md 8.1).
//!
//! The algorithm itself lives in [`composefs_format::verity`] (no_std).

mod blocks;
mod digest;
mod ioctl;
mod parallel;
#[cfg(target_arch = "x86_64")]
mod sha256;
#[cfg(target_arch = "x86_64")]
mod sha_avx512;
#[cfg(target_arch = "x86_64")]
mod sha_ni;

use std::fs::File;
use std::num::NonZeroUsize;

pub use composefs_format::verity::DIGEST_SIZE;
pub use digest::{digest_bytes, digest_file, digest_reader, READ_BUFFER_SIZE};
pub use ioctl::{enable_verity, measure_verity, FsVerityError};
pub use parallel::MAX_THREADS;

pub(crate) use blocks::update;

/// The fs-verity digest of `file`, as `composefs-info measure-file` prints it: the kernel's
/// digest when the file has fs-verity enabled, else one computed in userspace (when the
/// kernel or filesystem has no fs-verity, or the file has none; for pipes too, where the
/// ioctl fails with `ENOTTY`). The userspace digest of an empty file is the correct
/// all-zero-root one (SPEC.md section 10).
///
/// # Errors
/// An I/O error while reading, a kernel digest that is not SHA-256
/// ([`FsVerityError::UnexpectedAlgorithm`]), or another ioctl failure.
pub fn measure_file(
    file: &File,
    threads: NonZeroUsize,
) -> Result<[u8; DIGEST_SIZE], FsVerityError> {
    match measure_verity(file) {
        Ok(Some(digest)) => Ok(digest),
        Ok(None) | Err(FsVerityError::Unsupported(_)) => Ok(digest_file(file, threads)?),
        Err(e) => Err(e),
    }
}

/// Lowercase hex of a digest, as in object names and dump files.
#[must_use]
pub fn to_hex(digest: &[u8; DIGEST_SIZE]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(2 * DIGEST_SIZE);
    for b in digest {
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 15)]));
    }
    s
}

/// Parses 64 lowercase hex digits (the only spelling object names use).
#[must_use]
pub fn from_hex(text: &str) -> Option<[u8; DIGEST_SIZE]> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        }
    }
    let bytes = text.as_bytes();
    if bytes.len() != 2 * DIGEST_SIZE {
        return None;
    }
    let mut out = [0u8; DIGEST_SIZE];
    for (o, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        let [hi, lo] = pair else { return None };
        *o = (nibble(*hi)? << 4) | nibble(*lo)?;
    }
    Some(out)
}
