//! fs-verity digests of one large input on several threads.
//!
//! The data is cut at multiples of [`GROUP_SIZE`] (512 KiB, the data under one block of the
//! lowest Merkle level). Worker threads take chunks of [`CHUNK_GROUPS`] groups from a shared
//! queue and compute their group hashes; the calling thread feeds them, in order, to one
//! [`FsVerityHasher`], then hashes the tail. Group hashes are collected one window of
//! [`WINDOW_GROUPS`] at a time, so memory stays bounded whatever the size.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::thread;

use composefs_format::verity::{FsVerityHasher, DIGEST_SIZE, GROUP_SIZE};

use super::blocks::{self, hash_group};
use super::digest::{update_from_file, READ_BUFFER_SIZE};

/// Groups per work item: 4 MiB, enough to make the queue cheap and small enough to balance.
const CHUNK_GROUPS: usize = 8;
/// Groups per window: 2 GiB of data, 128 KiB of group hashes.
const WINDOW_GROUPS: usize = 4096;
/// Upper bound on worker threads, whatever the caller asks.
pub const MAX_THREADS: usize = 256;

const GROUP_SIZE_U64: u64 = GROUP_SIZE as u64;

/// Where the groups come from.
#[derive(Clone, Copy)]
pub(crate) enum Source<'a> {
    /// Bytes in memory (or mapped).
    Bytes(&'a [u8]),
    /// A regular file, read with `pread` so that threads share it.
    File(&'a File),
}

impl Source<'_> {
    /// The group starting at data offset `offset`, either borrowed or read into `buf`
    /// (allocated on first use).
    fn group<'b>(
        &'b self,
        offset: u64,
        buf: &'b mut Option<Box<[u8; GROUP_SIZE]>>,
    ) -> io::Result<&'b [u8; GROUP_SIZE]> {
        match self {
            Source::Bytes(data) => usize::try_from(offset)
                .ok()
                .and_then(|start| data.get(start..start.checked_add(GROUP_SIZE)?))
                .and_then(|g| <&[u8; GROUP_SIZE]>::try_from(g).ok())
                .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof)),
            Source::File(file) => {
                let buf = match buf {
                    Some(b) => b,
                    None => buf.insert(group_buffer()?),
                };
                file.read_exact_at(&mut buf[..], offset).map_err(|e| {
                    if e.kind() == io::ErrorKind::UnexpectedEof {
                        io::Error::new(e.kind(), "the file shrank while it was being hashed")
                    } else {
                        e
                    }
                })?;
                Ok(buf)
            }
        }
    }
}

/// A heap buffer for one group (built on the heap: 512 KiB would strain a thread stack).
fn group_buffer() -> io::Result<Box<[u8; GROUP_SIZE]>> {
    vec![0u8; GROUP_SIZE]
        .into_boxed_slice()
        .try_into()
        .map_err(|_| io::Error::other("group buffer of the wrong size"))
}

/// The fs-verity digest of `source`, whose first `size` bytes are hashed in groups on up to
/// `threads` threads. For a file, reading continues after `size` until end of file, so a
/// file that grows is hashed to its new end; one that shrinks is an error.
pub(crate) fn digest(
    source: Source<'_>,
    size: u64,
    threads: usize,
) -> io::Result<[u8; DIGEST_SIZE]> {
    let full_groups = size / GROUP_SIZE_U64;
    let mut hasher = FsVerityHasher::new();
    let mut hashes: Vec<[u8; DIGEST_SIZE]> = Vec::new();
    let mut next: u64 = 0;
    while next < full_groups {
        let count = usize::try_from(full_groups - next)
            .unwrap_or(WINDOW_GROUPS)
            .min(WINDOW_GROUPS);
        hashes.resize(count, [0; DIGEST_SIZE]);
        hash_window(source, next, &mut hashes, threads)?;
        for h in &hashes {
            hasher.update_group_hash(h).map_err(io::Error::other)?;
        }
        next = next.saturating_add(count as u64);
    }
    let tail_start = full_groups.saturating_mul(GROUP_SIZE_U64);
    match source {
        Source::Bytes(data) => {
            let tail = usize::try_from(tail_start)
                .ok()
                .and_then(|t| data.get(t..))
                .unwrap_or_default();
            blocks::update(&mut hasher, tail).map_err(io::Error::other)?;
        }
        Source::File(file) => {
            let mut buf = vec![0u8; READ_BUFFER_SIZE];
            update_from_file(&mut hasher, file, tail_start, &mut buf)?;
        }
    }
    Ok(hasher.finalize())
}

/// Fills `out` with the hashes of the groups starting at group index `first`.
fn hash_window(
    source: Source<'_>,
    first: u64,
    out: &mut [[u8; DIGEST_SIZE]],
    threads: usize,
) -> io::Result<()> {
    let chunks = out.len().div_ceil(CHUNK_GROUPS);
    let helpers = threads.clamp(1, MAX_THREADS).min(chunks).saturating_sub(1);
    let queue = Mutex::new(out.chunks_mut(CHUNK_GROUPS).enumerate());
    let failed = AtomicBool::new(false);
    let work = || -> io::Result<()> {
        let mut buf = None;
        loop {
            if failed.load(Ordering::Relaxed) {
                return Ok(());
            }
            let item = queue.lock().unwrap_or_else(PoisonError::into_inner).next();
            let Some((chunk, slots)) = item else {
                return Ok(());
            };
            for (k, slot) in slots.iter_mut().enumerate() {
                let group = first
                    .saturating_add((chunk.saturating_mul(CHUNK_GROUPS)).saturating_add(k) as u64);
                match source.group(group.saturating_mul(GROUP_SIZE_U64), &mut buf) {
                    Ok(bytes) => *slot = hash_group(bytes),
                    Err(e) => {
                        failed.store(true, Ordering::Relaxed);
                        return Err(e);
                    }
                }
            }
        }
    };
    thread::scope(|scope| {
        // A helper that cannot be spawned just leaves more work for the others.
        let handles: Vec<_> = (0..helpers)
            .filter_map(|_| thread::Builder::new().spawn_scoped(scope, work).ok())
            .collect();
        let mut result = work();
        for h in handles {
            let joined = h
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("a hashing thread panicked")));
            result = result.and(joined);
        }
        result
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file_of(len: usize) -> (Vec<u8>, File) {
        let data: Vec<u8> = (0..len).map(|k| (k % 249) as u8).collect();
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(&data).unwrap();
        (data, f)
    }

    /// The size taken from `fstat` is only where the parallel part stops: a file that grew
    /// after it is hashed to its real end.
    #[test]
    fn a_file_longer_than_its_stat_size_is_hashed_to_the_end() {
        let (data, f) = file_of(3 * GROUP_SIZE + 1000);
        let d = digest(Source::File(&f), GROUP_SIZE as u64, 2).unwrap();
        assert_eq!(d, composefs_format::verity::digest(&data));
    }

    /// A file that is shorter than its `fstat` size by the time a group is read is an
    /// error, not a digest of something else.
    #[test]
    fn a_file_that_shrank_is_an_error() {
        let (_, f) = file_of(GROUP_SIZE + 10);
        let e = digest(Source::File(&f), 4 * GROUP_SIZE as u64, 2).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        assert!(e.to_string().contains("shrank"), "{e}");
    }

    #[test]
    fn absurd_thread_counts_are_capped() {
        let (data, f) = file_of(2 * GROUP_SIZE + 1);
        let d = digest(Source::File(&f), data.len() as u64, usize::MAX).unwrap();
        assert_eq!(d, composefs_format::verity::digest(&data));
    }
}
