//! Read-only loop devices over image files, for kernels without file-backed EROFS
//! mounts: `LOOP_CTL_GET_FREE` on `/dev/loop-control`, then `LOOP_CONFIGURE` with
//! 4096-byte blocks, `READ_ONLY`, `AUTOCLEAR` and `DIRECT_IO` (which the kernel drops
//! by itself for files that cannot do direct I/O, such as memfds).
//!
//! With `AUTOCLEAR` the device detaches itself when its last user goes away: the EROFS
//! mount once it is unmounted, or the returned descriptor if the mount never happens.
#![allow(unsafe_code)]

use std::fs::{File, OpenOptions};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::path::PathBuf;

use rustix::io::Errno;
use rustix::ioctl::{ioctl, Ioctl, IoctlOutput, Opcode, Setter};

use super::MountError;

/// `LOOP_CTL_GET_FREE` (`<linux/loop.h>`): returns a free device number.
const LOOP_CTL_GET_FREE: Opcode = 0x4C82;
/// `LOOP_CONFIGURE` (`<linux/loop.h>`): binds a file with all settings at once (5.8+).
const LOOP_CONFIGURE: Opcode = 0x4C0A;
/// `LO_FLAGS_*`.
const LO_FLAGS_READ_ONLY: u32 = 1;
const LO_FLAGS_AUTOCLEAR: u32 = 4;
const LO_FLAGS_DIRECT_IO: u32 = 16;
/// The EROFS block size: the loop device serves whole blocks.
const BLOCK_SIZE: u32 = 4096;
/// Attempts when another process takes the free device first (`EBUSY`).
const ATTEMPTS: u32 = 16;

/// `struct loop_info64`.
#[repr(C)]
struct LoopInfo64 {
    lo_device: u64,
    lo_inode: u64,
    lo_rdevice: u64,
    lo_offset: u64,
    lo_sizelimit: u64,
    lo_number: u32,
    lo_encrypt_type: u32,
    lo_encrypt_key_size: u32,
    lo_flags: u32,
    lo_file_name: [u8; 64],
    lo_crypt_name: [u8; 64],
    lo_encrypt_key: [u8; 32],
    lo_init: [u64; 2],
}

/// `struct loop_config`.
#[repr(C)]
struct LoopConfig {
    fd: u32,
    block_size: u32,
    info: LoopInfo64,
    reserved: [u64; 8],
}

/// `LOOP_CTL_GET_FREE`, whose answer is the ioctl's return value.
struct GetFree;

// SAFETY: LOOP_CTL_GET_FREE takes no argument and touches no user memory; its result is
// the return value, which `output_from_ptr` passes through.
unsafe impl Ioctl for GetFree {
    type Output = IoctlOutput;
    const IS_MUTATING: bool = false;

    fn opcode(&self) -> Opcode {
        LOOP_CTL_GET_FREE
    }

    fn as_ptr(&mut self) -> *mut std::ffi::c_void {
        std::ptr::null_mut()
    }

    unsafe fn output_from_ptr(
        out: IoctlOutput,
        _: *mut std::ffi::c_void,
    ) -> rustix::io::Result<IoctlOutput> {
        Ok(out)
    }
}

/// A configured loop device, open. Dropping it closes the descriptor; the device stays
/// bound only while something (a mount) still uses it.
#[derive(Debug)]
pub(crate) struct LoopDevice {
    /// `/dev/loopN`.
    pub(crate) path: PathBuf,
    _file: File,
}

/// Binds `image` read-only to a free loop device.
pub(crate) fn attach(image: BorrowedFd<'_>) -> Result<LoopDevice, MountError> {
    let control = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/loop-control")
        .map_err(|e| MountError::Io {
            what: "loop: open /dev/loop-control",
            source: e,
        })?;
    let mut last = Errno::BUSY;
    for _ in 0..ATTEMPTS {
        // SAFETY: see `GetFree`; `control` is an open descriptor for the whole call.
        let number = unsafe { ioctl(&control, GetFree) }
            .map_err(|e| MountError::kernel("loop: LOOP_CTL_GET_FREE", e, Vec::new()))?;
        let path = PathBuf::from(format!("/dev/loop{number}"));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| MountError::Io {
                what: "loop: open the free device",
                source: e,
            })?;
        match configure(&file, image) {
            Ok(()) => return Ok(LoopDevice { path, _file: file }),
            // Someone bound this device between GET_FREE and CONFIGURE: ask again.
            Err(Errno::BUSY) => last = Errno::BUSY,
            Err(e) => return Err(MountError::kernel("loop: LOOP_CONFIGURE", e, Vec::new())),
        }
    }
    Err(MountError::kernel("loop: LOOP_CONFIGURE", last, Vec::new()))
}

fn configure(device: &File, image: BorrowedFd<'_>) -> Result<(), Errno> {
    let fd = u32::try_from(image.as_raw_fd()).map_err(|_| Errno::BADF)?;
    let flags = LO_FLAGS_READ_ONLY | LO_FLAGS_AUTOCLEAR | LO_FLAGS_DIRECT_IO;
    let config = LoopConfig {
        fd,
        block_size: BLOCK_SIZE,
        info: LoopInfo64 {
            lo_device: 0,
            lo_inode: 0,
            lo_rdevice: 0,
            lo_offset: 0,
            lo_sizelimit: 0,
            lo_number: 0,
            lo_encrypt_type: 0,
            lo_encrypt_key_size: 0,
            lo_flags: flags,
            lo_file_name: [0; 64],
            lo_crypt_name: [0; 64],
            lo_encrypt_key: [0; 32],
            lo_init: [0; 2],
        },
        reserved: [0; 8],
    };
    // SAFETY: LOOP_CONFIGURE reads one `struct loop_config`, which `LoopConfig` reproduces
    // field for field (304 bytes, checked by a test), and writes no user memory, as
    // `Setter` promises; `device` is an open descriptor for the whole call.
    unsafe { ioctl(device, Setter::<LOOP_CONFIGURE, LoopConfig>::new(config)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abi_matches_linux_loop_h() {
        assert_eq!(std::mem::size_of::<LoopInfo64>(), 232);
        assert_eq!(std::mem::size_of::<LoopConfig>(), 304);
        assert_eq!(std::mem::offset_of!(LoopInfo64, lo_flags), 52);
        assert_eq!(std::mem::offset_of!(LoopConfig, info), 8);
    }
}
