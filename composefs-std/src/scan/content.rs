//! The content of regular files: read inline (at most 64 bytes), or hashed for the
//! fs-verity digest and, with a store, copied into it in the same read.
//!
//! Every file is read once. A file that fits the read buffer is read whole, hashed, and
//! written to the store only when its object is missing. A larger one streams through an
//! [`ObjectWriter`] (hashed and written piece by piece). Where the store's filesystem can
//! reflink the source, the object is a reflink and the private clone is hashed instead.
//! Sparse files are read region by region (`SEEK_DATA`/`SEEK_HOLE`): holes are hashed as
//! zeros without being read, and stay holes in the object. Without a store, files of
//! 64 MiB or more are hashed on all threads.
//!
//! The size recorded by the walk is checked: a file that turns out shorter or longer when
//! read is an error, never an image whose size and digest disagree.

use std::fs::File;
use std::io;
use std::num::NonZeroUsize;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use composefs_format::limits::DIR_MODE_INLINE_MAX;
use composefs_format::tree::{NodeId, Tree, Xattr};
use composefs_format::verity::FsVerityHasher;
use rustix::fs::SeekFrom;
use rustix::io::Errno;

use super::xattrs::{Target, XattrReader};
use super::{ScanError, ScanOptions, XattrMode};
use crate::store::{self, Batch, CloneOutcome, ObjectWriter};
use crate::verity::{self, DIGEST_SIZE};

/// Read buffer per thread; files smaller than this are read whole.
const BUFFER_SIZE: usize = 1 << 20;
/// Without a store, files at least this large are hashed on all threads.
const PARALLEL_MIN: u64 = 64 << 20;

/// A regular file with content, opened by the walk.
#[derive(Debug)]
pub(crate) struct Job {
    /// Its node.
    pub node: NodeId,
    /// The open file, checked to be the one examined.
    pub file: File,
    /// Its path, for messages.
    pub path: PathBuf,
    /// Its size when examined.
    pub size: u64,
    /// Whether it may have holes.
    pub sparse: bool,
}

/// What a job found out about its file.
#[derive(Debug)]
pub(crate) struct Outcome {
    node: NodeId,
    xattrs: Vec<Xattr>,
    data: Data,
}

#[derive(Debug)]
enum Data {
    Inline(Vec<u8>),
    External([u8; DIGEST_SIZE]),
}

impl Outcome {
    /// Records the outcome in the file's node.
    pub(crate) fn apply(self, tree: &mut Tree) {
        let Some(node) = tree.get_mut(self.node) else {
            return;
        };
        node.xattrs = self.xattrs;
        match self.data {
            Data::Inline(content) => node.content = Some(content),
            Data::External(digest) => {
                node.payload = Some(store::object_path(&digest).into_bytes());
                node.digest = Some(digest);
            }
        }
    }
}

/// What all workers share.
#[derive(Debug)]
pub(crate) struct Content<'b, 's> {
    xattrs: XattrMode,
    threads: NonZeroUsize,
    batch: Option<&'b Batch<'s>>,
    /// Whether reflinking into the store is still worth trying.
    reflink: AtomicBool,
}

impl<'b, 's> Content<'b, 's> {
    pub(crate) fn new(options: &ScanOptions, batch: Option<&'b Batch<'s>>) -> Self {
        Self {
            xattrs: options.xattrs,
            threads: options.threads,
            batch,
            reflink: AtomicBool::new(true),
        }
    }
}

/// One thread's buffers.
#[derive(Debug)]
pub(crate) struct Worker<'c, 's> {
    content: &'c Content<'c, 's>,
    buf: Vec<u8>,
    xattrs: XattrReader,
}

impl<'c, 's> Worker<'c, 's> {
    pub(crate) fn new(content: &'c Content<'c, 's>) -> Self {
        Self {
            content,
            buf: vec![0; BUFFER_SIZE],
            xattrs: XattrReader::new(),
        }
    }

    /// Reads the xattrs and the content of the job's file.
    pub(crate) fn process(&mut self, job: Job) -> Result<Outcome, ScanError> {
        let xattrs = self
            .xattrs
            .read(
                Target::Fd(std::os::fd::AsFd::as_fd(&job.file)),
                self.content.xattrs,
            )
            .map_err(|e| e.at(job.path.clone()))?;
        let data = if job.size <= DIR_MODE_INLINE_MAX {
            Data::Inline(self.read_whole(&job)?.to_vec())
        } else {
            Data::External(match self.content.batch {
                Some(batch) => self.store(&job, batch)?,
                None => self.hash(&job)?,
            })
        };
        Ok(Outcome {
            node: job.node,
            xattrs,
            data,
        })
    }

    /// The digest of the file, without a store.
    fn hash(&mut self, job: &Job) -> Result<[u8; DIGEST_SIZE], ScanError> {
        if !job.sparse && fits(job.size, &self.buf) {
            return Ok(verity::digest_bytes(
                self.read_whole(job)?,
                NonZeroUsize::MIN,
            ));
        }
        if !job.sparse && job.size >= PARALLEL_MIN && self.content.threads.get() > 1 {
            let digest = verity::digest_file(&job.file, self.content.threads)
                .map_err(|e| read_error(job, e))?;
            let now = job.file.metadata().map_err(|e| ScanError::Io {
                op: "stat",
                path: job.path.clone(),
                source: e,
            })?;
            if now.len() != job.size {
                return Err(changed(job, "size"));
            }
            return Ok(digest);
        }
        let mut hasher = FsVerityHasher::new();
        self.feed(job, &mut hasher)?;
        Ok(hasher.finalize())
    }

    /// The digest of the file, whose content is added to the store unless present.
    fn store(&mut self, job: &Job, batch: &Batch<'_>) -> Result<[u8; DIGEST_SIZE], ScanError> {
        let mut writer = None;
        if self.content.reflink.load(Ordering::Relaxed) {
            let fresh = batch.store().object_writer()?;
            let threads = if job.size >= PARALLEL_MIN {
                self.content.threads
            } else {
                NonZeroUsize::MIN
            };
            match fresh.clone_from(&job.file, threads)? {
                CloneOutcome::Cloned(staged) => {
                    if staged.size() != job.size {
                        return Err(changed(job, "size"));
                    }
                    let digest = *staged.digest();
                    batch.add(staged)?;
                    return Ok(digest);
                }
                CloneOutcome::Unsupported(w) => {
                    self.content.reflink.store(false, Ordering::Relaxed);
                    writer = Some(*w);
                }
            }
        }
        if !job.sparse && fits(job.size, &self.buf) {
            let data = read_whole(job, &mut self.buf)?;
            return Ok(batch.add_bytes(data)?);
        }
        let mut writer = match writer {
            Some(w) => w,
            None => batch.store().object_writer()?,
        };
        self.feed(job, &mut writer)?;
        let staged = writer.finish()?;
        let digest = *staged.digest();
        batch.add(staged)?;
        Ok(digest)
    }

    fn read_whole(&mut self, job: &Job) -> Result<&[u8], ScanError> {
        read_whole(job, &mut self.buf)
    }

    /// Streams the whole file into `sink`, holes as zeros, and checks its size.
    fn feed(&mut self, job: &Job, sink: &mut dyn Sink) -> Result<(), ScanError> {
        let size = job.size;
        let mut pos = 0u64;
        while pos < size {
            let (data, hole) = if job.sparse {
                data_region(job, pos)?
            } else {
                (pos, size)
            };
            if data > pos {
                sink.zeros(data - pos)?;
                pos = data;
            }
            while pos < hole {
                let want = usize::try_from(hole - pos)
                    .unwrap_or(usize::MAX)
                    .min(self.buf.len());
                let chunk = self.buf.get_mut(..want).unwrap_or_default();
                let n = pread(job, chunk, pos)?;
                if n == 0 {
                    return Err(changed(job, "shorter than when examined"));
                }
                sink.data(chunk.get(..n).unwrap_or_default())?;
                pos = pos.saturating_add(n as u64);
            }
        }
        // Nothing may follow the size examined...
        let probe = self.buf.get_mut(..1).unwrap_or_default();
        if pread(job, probe, size)? != 0 {
            return Err(changed(job, "longer than when examined"));
        }
        // ...and a file read through holes must not have shrunk into one.
        if job.sparse {
            let now = job.file.metadata().map_err(|e| ScanError::Io {
                op: "stat",
                path: job.path.clone(),
                source: e,
            })?;
            if now.len() != size {
                return Err(changed(job, "size"));
            }
        }
        Ok(())
    }
}

/// Where file content goes: a hasher, or an object being written.
trait Sink {
    fn data(&mut self, bytes: &[u8]) -> Result<(), ScanError>;
    fn zeros(&mut self, len: u64) -> Result<(), ScanError>;
}

impl Sink for FsVerityHasher {
    fn data(&mut self, bytes: &[u8]) -> Result<(), ScanError> {
        verity::update(self, bytes).map_err(too_large)
    }

    fn zeros(&mut self, len: u64) -> Result<(), ScanError> {
        store::hash_zeros(self, len).map_err(too_large)
    }
}

impl Sink for ObjectWriter<'_> {
    fn data(&mut self, bytes: &[u8]) -> Result<(), ScanError> {
        Ok(self.write(bytes)?)
    }

    fn zeros(&mut self, len: u64) -> Result<(), ScanError> {
        Ok(self.write_zeros(len)?)
    }
}

/// Whether a file of `size` bytes is read whole: one byte more must fit, to see growth.
fn fits(size: u64, buf: &[u8]) -> bool {
    usize::try_from(size).is_ok_and(|s| s < buf.len())
}

/// Reads all of a file that fits `buf`, checking that it has exactly the size examined.
fn read_whole<'b>(job: &Job, buf: &'b mut [u8]) -> Result<&'b [u8], ScanError> {
    let size = usize::try_from(job.size).unwrap_or(usize::MAX);
    // Ask for one byte more than expected: getting it means the file grew.
    let end = size.saturating_add(1).min(buf.len());
    let mut got = 0usize;
    while got < end {
        let chunk = buf.get_mut(got..end).unwrap_or_default();
        let n = pread(job, chunk, got as u64)?;
        if n == 0 {
            break;
        }
        got = got.saturating_add(n);
        // A short read of a regular file ends at its end.
        if got == size {
            break;
        }
    }
    if got < size {
        return Err(changed(job, "shorter than when examined"));
    }
    if got > size {
        return Err(changed(job, "longer than when examined"));
    }
    Ok(buf.get(..size).unwrap_or_default())
}

/// The next data region at or after `pos`: `(start, end)`, both capped at the size; a
/// hole up to the size when there is no more data.
fn data_region(job: &Job, pos: u64) -> Result<(u64, u64), ScanError> {
    let seek = |whence| match rustix::fs::seek(&job.file, whence) {
        Ok(at) => Ok(Some(at.min(job.size))),
        Err(Errno::NXIO) => Ok(None),
        Err(e) => Err(ScanError::Io {
            op: "seek in",
            path: job.path.clone(),
            source: e.into(),
        }),
    };
    let Some(data) = seek(SeekFrom::Data(pos))? else {
        return Ok((job.size, job.size));
    };
    let hole = seek(SeekFrom::Hole(data))?.unwrap_or(job.size);
    Ok((data, hole))
}

fn pread(job: &Job, buf: &mut [u8], offset: u64) -> Result<usize, ScanError> {
    loop {
        match job.file.read_at(buf, offset) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(read_error(job, e)),
        }
    }
}

fn read_error(job: &Job, e: io::Error) -> ScanError {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        return changed(job, "shorter than when examined");
    }
    ScanError::Io {
        op: "read",
        path: job.path.clone(),
        source: e,
    }
}

fn changed(job: &Job, what: &'static str) -> ScanError {
    ScanError::Changed {
        path: job.path.clone(),
        what,
    }
}

fn too_large(e: composefs_format::verity::VerityError) -> ScanError {
    ScanError::Io {
        op: "hash",
        path: PathBuf::new(),
        source: io::Error::other(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::io::Write;

    use crate::store::Store;

    fn options(threads: usize) -> ScanOptions {
        ScanOptions {
            threads: NonZeroUsize::new(threads).unwrap(),
            ..ScanOptions::default()
        }
    }

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|k| (k * 7 % 253) as u8).collect()
    }

    fn job(data: &[u8], size: u64, sparse: bool) -> Job {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(data).unwrap();
        Job {
            node: NodeId::ROOT,
            file,
            path: PathBuf::from("/src/f"),
            size,
            sparse,
        }
    }

    fn outcome(content: &Content<'_, '_>, job: Job) -> Result<Data, ScanError> {
        Worker::new(content).process(job).map(|o| o.data)
    }

    fn changed_what(r: Result<Data, ScanError>) -> &'static str {
        match r {
            Err(ScanError::Changed { path, what }) => {
                assert_eq!(path, PathBuf::from("/src/f"));
                what
            }
            other => panic!("expected Changed, got {other:?}"),
        }
    }

    /// Sizes that take each reading path: inline, whole file, streamed (several buffers).
    const SIZES: [usize; 3] = [40, 100_000, 2 * BUFFER_SIZE + 17];

    /// A file that is longer or shorter than the walk saw is refused on every path, with
    /// or without a store, sparse reading or not; the right size gives the right digest.
    #[test]
    fn the_size_examined_is_the_size_read() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::create(dir.path().join("store")).unwrap();
        let batch = store.batch();
        for threads in [1, 2] {
            let opts = options(threads);
            for content in [Content::new(&opts, None), Content::new(&opts, Some(&batch))] {
                for len in SIZES {
                    let data = pattern(len);
                    for sparse in [false, true] {
                        let n = len as u64;
                        let what = changed_what(outcome(&content, job(&data, n - 1, sparse)));
                        assert!(what.contains("longer") || what == "size", "{len}: {what}");
                        let what = changed_what(outcome(&content, job(&data, n + 1, sparse)));
                        assert!(what.contains("shorter") || what == "size", "{len}: {what}");
                        match outcome(&content, job(&data, n, sparse)).unwrap() {
                            Data::Inline(bytes) => assert_eq!(bytes, data),
                            Data::External(d) => {
                                assert_eq!(d, composefs_format::verity::digest(&data))
                            }
                        }
                    }
                }
            }
        }
        batch.finish().unwrap();
        let report = store.verify().unwrap();
        assert!(report.problems.is_empty(), "{:?}", report.problems);
        assert_eq!(report.valid, 2, "one object per external size");
    }

    /// Holes are found and hashed as zeros, and the object keeps them as holes.
    #[test]
    fn sparse_files_are_read_by_data_region() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sparse");
        let mut data = vec![0u8; 3 << 20];
        data[1_500_000..1_500_100].copy_from_slice(&pattern(100));
        data[(3 << 20) - 5..].copy_from_slice(b"tail!");
        let f = File::create(&path).unwrap();
        f.write_all_at(&data[1_500_000..1_500_100], 1_500_000)
            .unwrap();
        f.write_all_at(b"tail!", (3 << 20) - 5).unwrap();
        drop(f);
        let store = Store::create(dir.path().join("store")).unwrap();
        let batch = store.batch();
        let opts = options(1);
        for content in [Content::new(&opts, None), Content::new(&opts, Some(&batch))] {
            let j = Job {
                node: NodeId::ROOT,
                file: File::open(&path).unwrap(),
                path: path.clone(),
                size: data.len() as u64,
                sparse: true,
            };
            match outcome(&content, j).unwrap() {
                Data::External(d) => assert_eq!(d, composefs_format::verity::digest(&data)),
                Data::Inline(_) => panic!("inline"),
            }
        }
        batch.finish().unwrap();
        let object = store.path_of(&composefs_format::verity::digest(&data));
        assert_eq!(std::fs::read(&object).unwrap(), data);
        use std::os::unix::fs::MetadataExt;
        assert!(std::fs::metadata(&object).unwrap().blocks() * 512 < 1 << 20);
    }
}
