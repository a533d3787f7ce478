//! fs-verity digests of byte slices, readers and files. Whole blocks are hashed several
//! at a time on the fastest engine the CPU has (see `blocks`).

use std::fs::File;
use std::io::{self, Read};
use std::num::NonZeroUsize;
use std::os::unix::fs::FileExt;

use composefs_format::verity::{FsVerityHasher, DIGEST_SIZE};

use super::blocks;
use super::parallel::{self, Source};

/// Read size for streams and file tails: large enough to make system calls rare, small
/// enough to stay in the L2 cache while it is hashed (measured: 64 KiB to 4 MiB reads are
/// within 2 % of each other on a page-cached file; see BENCHMARKS.md).
pub const READ_BUFFER_SIZE: usize = 256 * 1024;

/// The fs-verity digest of `data`, hashed on up to `threads` threads.
#[must_use]
pub fn digest_bytes(data: &[u8], threads: NonZeroUsize) -> [u8; DIGEST_SIZE] {
    let size = u64::try_from(data.len()).unwrap_or(u64::MAX);
    // Hashing a slice cannot fail: it reads no file and is shorter than 2^64 bytes.
    parallel::digest(Source::Bytes(data), size, threads.get())
        .unwrap_or_else(|_| composefs_format::verity::digest(data))
}

/// The fs-verity digest of everything `reader` delivers until end of stream. Short reads
/// and `EINTR` are handled; chunk sizes do not matter (a pipe delivering 3 x 5000 bytes is
/// fine).
///
/// # Errors
/// A read error other than `EINTR`, or a stream longer than 2^64 - 1 bytes.
pub fn digest_reader(mut reader: impl Read) -> io::Result<[u8; DIGEST_SIZE]> {
    let mut buf = vec![0u8; READ_BUFFER_SIZE];
    let mut hasher = FsVerityHasher::new();
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        blocks::update(&mut hasher, buf.get(..n).unwrap_or_default()).map_err(io::Error::other)?;
    }
    Ok(hasher.finalize())
}

/// The fs-verity digest of a file's content, computed in userspace (the kernel is not
/// asked; see [`super::measure_file`] for that).
///
/// A regular file is read from offset 0 with `pread`, whatever its file position, on up to
/// `threads` threads, until end of file. Anything else (pipe, character device, socket) is
/// read as a stream from its current position.
///
/// # Errors
/// `fstat` or read errors; an `UnexpectedEof` error when the file shrinks while it is being
/// hashed.
pub fn digest_file(file: &File, threads: NonZeroUsize) -> io::Result<[u8; DIGEST_SIZE]> {
    let meta = file.metadata()?;
    if !meta.file_type().is_file() {
        return digest_reader(file);
    }
    parallel::digest(Source::File(file), meta.len(), threads.get())
}

/// Hashes `file` from `offset` until end of file, reading into `buf`.
pub(crate) fn update_from_file(
    hasher: &mut FsVerityHasher,
    file: &File,
    mut offset: u64,
    buf: &mut [u8],
) -> io::Result<()> {
    loop {
        let n = match file.read_at(buf, offset) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        blocks::update(hasher, buf.get(..n).unwrap_or_default()).map_err(io::Error::other)?;
        offset = offset.saturating_add(n as u64);
    }
}
