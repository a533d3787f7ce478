//! The fs-verity ioctls: `FS_IOC_ENABLE_VERITY` and `FS_IOC_MEASURE_VERITY`, always with
//! SHA-256, 4096-byte blocks and no salt (SPEC.md 8.1).
//!
//! Its `unsafe` is two ioctl calls, each on a `#[repr(C)]` argument laid out as in
//! `<linux/fsverity.h>`.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::AsFd;

use composefs_format::verity::{BLOCK_SIZE, DIGEST_SIZE, HASH_ALG_SHA256};
use rustix::io::Errno;
use rustix::ioctl::{ioctl, opcode, Opcode, Setter, Updater};

/// Why an fs-verity ioctl failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FsVerityError {
    /// The kernel or the filesystem has no fs-verity (`ENOTTY`, `EOPNOTSUPP`).
    #[error("fs-verity is not supported by this kernel or filesystem ({0})")]
    Unsupported(Errno),
    /// The file is open for writing somewhere (`ETXTBSY`), so verity cannot be enabled.
    #[error("the file is open for writing, fs-verity cannot be enabled")]
    OpenForWrite,
    /// fs-verity is already enabled on the file (`EEXIST`).
    #[error("fs-verity is already enabled on the file")]
    AlreadyEnabled,
    /// The kernel measured the file with another algorithm than SHA-256.
    #[error(
        "fs-verity digest uses algorithm {algorithm} with {size} bytes, expected SHA-256 (1, 32)"
    )]
    UnexpectedAlgorithm {
        /// `digest_algorithm` reported by the kernel.
        algorithm: u16,
        /// `digest_size` reported by the kernel.
        size: u16,
    },
    /// Any other failure.
    #[error(transparent)]
    Io(#[from] io::Error),
}

impl From<FsVerityError> for io::Error {
    fn from(e: FsVerityError) -> Self {
        match e {
            FsVerityError::Io(e) => e,
            FsVerityError::Unsupported(errno) => io::Error::from(errno),
            FsVerityError::OpenForWrite => io::Error::from(Errno::TXTBSY),
            FsVerityError::AlreadyEnabled => io::Error::from(Errno::EXIST),
            FsVerityError::UnexpectedAlgorithm { .. } => io::Error::from(Errno::ILSEQ),
        }
    }
}

/// Maps an errno of either ioctl to its typed error.
fn classify(errno: Errno) -> FsVerityError {
    match errno {
        Errno::NOTTY | Errno::OPNOTSUPP => FsVerityError::Unsupported(errno),
        Errno::TXTBSY => FsVerityError::OpenForWrite,
        Errno::EXIST => FsVerityError::AlreadyEnabled,
        other => FsVerityError::Io(other.into()),
    }
}

/// `struct fsverity_enable_arg`.
#[repr(C)]
struct EnableArg {
    version: u32,
    hash_algorithm: u32,
    block_size: u32,
    salt_size: u32,
    salt_ptr: u64,
    sig_size: u32,
    reserved1: u32,
    sig_ptr: u64,
    reserved2: [u64; 11],
}

/// The fixed head of `struct fsverity_digest`; the ioctl number encodes its size.
#[repr(C)]
struct DigestHead {
    digest_algorithm: u16,
    digest_size: u16,
}

/// `struct fsverity_digest` with room for the largest digest (SHA-512).
#[repr(C)]
struct DigestBuf {
    digest_algorithm: u16,
    digest_size: u16,
    digest: [u8; 64],
}

/// `_IOW('f', 133, struct fsverity_enable_arg)`.
const FS_IOC_ENABLE_VERITY: Opcode = opcode::write::<EnableArg>(b'f', 133);
/// `_IOWR('f', 134, struct fsverity_digest)`.
const FS_IOC_MEASURE_VERITY: Opcode = opcode::read_write::<DigestHead>(b'f', 134);

/// Enables fs-verity on the file open at `fd` (SHA-256, 4096-byte blocks, no salt). The
/// descriptor must be read-only and no writable descriptor of the file may be open.
///
/// # Errors
/// [`FsVerityError::Unsupported`] without fs-verity support, [`FsVerityError::OpenForWrite`],
/// [`FsVerityError::AlreadyEnabled`], or [`FsVerityError::Io`] for anything else.
pub fn enable_verity(fd: impl AsFd) -> Result<(), FsVerityError> {
    let arg = EnableArg {
        version: 1,
        hash_algorithm: u32::from(HASH_ALG_SHA256),
        block_size: BLOCK_SIZE as u32,
        salt_size: 0,
        salt_ptr: 0,
        sig_size: 0,
        reserved1: 0,
        sig_ptr: 0,
        reserved2: [0; 11],
    };
    // SAFETY: FS_IOC_ENABLE_VERITY reads a `struct fsverity_enable_arg`, which `EnableArg`
    // reproduces field for field (128 bytes, checked by a test); the salt and signature
    // pointers are null with zero sizes, so the kernel reads no other memory, and it writes
    // none, which is what `Setter` (a read-only ioctl) promises.
    let ioctl_call = unsafe { Setter::<FS_IOC_ENABLE_VERITY, EnableArg>::new(arg) };
    // SAFETY: see above; `fd` is a valid borrowed descriptor for the whole call.
    unsafe { ioctl(fd, ioctl_call) }.map_err(classify)
}

/// The fs-verity digest the kernel holds for the file open at `fd`, or `None` when the file
/// has no fs-verity (`ENODATA`).
///
/// # Errors
/// [`FsVerityError::Unsupported`] without fs-verity support,
/// [`FsVerityError::UnexpectedAlgorithm`] when the file uses another hash than SHA-256, or
/// [`FsVerityError::Io`].
pub fn measure_verity(fd: impl AsFd) -> Result<Option<[u8; DIGEST_SIZE]>, FsVerityError> {
    let mut buf = DigestBuf {
        digest_algorithm: 0,
        digest_size: 64,
        digest: [0; 64],
    };
    // SAFETY: FS_IOC_MEASURE_VERITY reads `digest_size` from a `struct fsverity_digest` and
    // writes the algorithm, the size and at most `digest_size` (64) digest bytes back;
    // `DigestBuf` has that layout with 64 bytes of room, and `Updater` borrows it mutably
    // for the call.
    let ioctl_call = unsafe { Updater::<FS_IOC_MEASURE_VERITY, DigestBuf>::new(&mut buf) };
    // SAFETY: see above; `fd` is a valid borrowed descriptor for the whole call.
    match unsafe { ioctl(fd, ioctl_call) } {
        Ok(()) => {}
        Err(Errno::NODATA) => return Ok(None),
        Err(e) => return Err(classify(e)),
    }
    let wrong = FsVerityError::UnexpectedAlgorithm {
        algorithm: buf.digest_algorithm,
        size: buf.digest_size,
    };
    if buf.digest_algorithm != u16::from(HASH_ALG_SHA256) {
        return Err(wrong);
    }
    match buf
        .digest
        .get(..DIGEST_SIZE)
        .map(<[u8; DIGEST_SIZE]>::try_from)
    {
        Some(Ok(d)) if usize::from(buf.digest_size) == DIGEST_SIZE => Ok(Some(d)),
        _ => Err(wrong),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abi_matches_linux_fsverity_h() {
        assert_eq!(std::mem::size_of::<EnableArg>(), 128);
        assert_eq!(std::mem::size_of::<DigestHead>(), 4);
        assert_eq!(std::mem::size_of::<DigestBuf>(), 68);
        // The values of the ioctl numbers on x86-64, aarch64 and other asm-generic arches.
        #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
        {
            assert_eq!(FS_IOC_ENABLE_VERITY as u64, 0x4080_6685);
            assert_eq!(FS_IOC_MEASURE_VERITY as u64, 0xc004_6686);
        }
    }

    #[test]
    fn errnos_map_to_typed_errors() {
        assert!(matches!(
            classify(Errno::NOTTY),
            FsVerityError::Unsupported(Errno::NOTTY)
        ));
        assert!(matches!(
            classify(Errno::OPNOTSUPP),
            FsVerityError::Unsupported(Errno::OPNOTSUPP)
        ));
        assert!(matches!(
            classify(Errno::TXTBSY),
            FsVerityError::OpenForWrite
        ));
        assert!(matches!(
            classify(Errno::EXIST),
            FsVerityError::AlreadyEnabled
        ));
        match classify(Errno::NOSPC) {
            FsVerityError::Io(e) => assert_eq!(e.raw_os_error(), Some(Errno::NOSPC.raw_os_error())),
            other => panic!("ENOSPC became {other:?}"),
        }
        let back: io::Error = FsVerityError::OpenForWrite.into();
        assert_eq!(back.raw_os_error(), Some(Errno::TXTBSY.raw_os_error()));
    }
}
