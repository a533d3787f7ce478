//! Objects whose content arrives piece by piece and is hashed on its way into the store,
//! and batches that make many such objects durable with one `syncfs` (SPEC.md 8.2,
//! "Staged objects and batches").
//!
//! [`Store::add_file`] reads a source twice (hash, then copy and hash the copy). An
//! [`ObjectWriter`] reads it once: the caller hands over the bytes it read, which are
//! hashed and written to a temporary file, so the object's content is by construction
//! what was hashed. Runs of zeros can be passed as holes, which are hashed without being
//! read or written. On filesystems with reflinks, [`ObjectWriter::clone_from`] shares the
//! source's blocks and hashes the private clone instead.
//!
//! A finished writer is a [`StagedObject`]: complete, mode 0644, not yet durable and
//! without a name. A [`Batch`] collects staged objects and publishes them together:
//! one `syncfs` of the store's filesystem makes all their contents durable, then each is
//! linked under its name exactly as [`Store::add_file`] does after its per-object
//! `fsync`. An object name still appears only after its content is durable.

use std::collections::HashSet;
use std::fs::File;
use std::io;
use std::num::NonZeroUsize;
use std::os::unix::fs::FileExt;
use std::sync::{Condvar, Mutex, OnceLock, PoisonError};

use composefs_format::verity::{hash_group, FsVerityHasher, VerityError, GROUP_SIZE};
use rustix::fs::Mode;
use rustix::io::Errno;
use rustix::process::{getrlimit, Resource};

use super::{errno_error, io_error, Store, StoreError, Temp, OBJECT_MODE};
use crate::verity::{self, DIGEST_SIZE};

/// Most objects a batch holds before it is published; each holds one open descriptor.
const MAX_BATCH_OBJECTS: usize = 1024;
/// Fewest objects a batch may hold, whatever the descriptor limit.
const MIN_BATCH_OBJECTS: usize = 16;
/// Bytes of content after which a batch is published, whatever its object count: bounds
/// the dirty data one `syncfs` waits for.
const MAX_BATCH_BYTES: u64 = 256 << 20;

const GROUP_SIZE_U64: u64 = GROUP_SIZE as u64;
/// Source of zero bytes for the partial groups of a hole.
static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];

/// The group hash of [`GROUP_SIZE`] zero bytes, computed once.
fn zero_group_hash() -> &'static [u8; DIGEST_SIZE] {
    static HASH: OnceLock<[u8; DIGEST_SIZE]> = OnceLock::new();
    HASH.get_or_init(|| {
        let zeros = vec![0u8; GROUP_SIZE];
        <&[u8; GROUP_SIZE]>::try_from(zeros.as_slice()).map_or([0; DIGEST_SIZE], hash_group)
    })
}

/// Feeds `len` zero bytes to `hasher`: whole groups at group boundaries by their known
/// hash, without touching memory, the rest from a zero buffer.
///
/// # Errors
/// [`VerityError::TooLarge`] past 2^64 - 1 bytes.
pub(crate) fn hash_zeros(hasher: &mut FsVerityHasher, len: u64) -> Result<(), VerityError> {
    let mut left = len;
    while left > 0 {
        let into_group = hasher.data_size() % GROUP_SIZE_U64;
        if into_group == 0 && left >= GROUP_SIZE_U64 {
            hasher.update_group_hash(zero_group_hash())?;
            left -= GROUP_SIZE_U64;
            continue;
        }
        let to_boundary = GROUP_SIZE_U64 - into_group;
        let n = left.min(to_boundary).min(ZEROS.len() as u64);
        verity::update(
            hasher,
            ZEROS
                .get(..usize::try_from(n).unwrap_or(0))
                .unwrap_or_default(),
        )?;
        left -= n;
    }
    Ok(())
}

/// Asks the kernel to start writing `file` back now (`POSIX_FADV_DONTNEED` starts
/// asynchronous writeback of its dirty pages), so that the disk works while more objects
/// are hashed and the batch's `syncfs` has less left to wait for. Only a hint: failure is
/// ignored.
fn start_writeback(file: &File) {
    let _ = rustix::fs::fadvise(file, 0, None, rustix::fs::Advice::DontNeed);
}

/// A new object being written: everything appended is hashed and written to a
/// temporary file in the store.
#[derive(Debug)]
pub struct ObjectWriter<'s> {
    store: &'s Store,
    temp: Temp<'s>,
    hasher: FsVerityHasher,
    /// Bytes appended so far, holes included.
    len: u64,
    /// End of the last bytes actually written (holes after it are not in the file yet).
    written_end: u64,
}

/// A complete object that has no name yet; publish it with a [`Batch`]. Dropping it
/// discards it.
#[derive(Debug)]
pub struct StagedObject<'s> {
    temp: Temp<'s>,
    digest: [u8; DIGEST_SIZE],
    size: u64,
}

/// What [`ObjectWriter::clone_from`] did.
#[derive(Debug)]
pub enum CloneOutcome<'s> {
    /// The source was reflinked and the clone hashed.
    Cloned(StagedObject<'s>),
    /// The filesystem cannot reflink this source into the store (or the writer was not
    /// fresh): the writer is handed back, unchanged, to copy the content by hand.
    Unsupported(Box<ObjectWriter<'s>>),
}

impl Store {
    /// Starts a new object whose content the caller appends.
    ///
    /// # Errors
    /// [`StoreError::Io`] when no temporary file can be created.
    pub fn object_writer(&self) -> Result<ObjectWriter<'_>, StoreError> {
        Ok(ObjectWriter {
            store: self,
            temp: self.temp_file()?,
            hasher: FsVerityHasher::new(),
            len: 0,
            written_end: 0,
        })
    }

    /// A batch publishing staged objects into this store. Its size follows the soft limit
    /// on open descriptors: an eighth of it, between 16 and 1024 objects; at most two
    /// batches' worth of objects (each holding a descriptor) exist at a time.
    #[must_use]
    pub fn batch(&self) -> Batch<'_> {
        let limit = getrlimit(Resource::Nofile)
            .current
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(1024);
        Batch {
            store: self,
            max_objects: (limit / 8).clamp(MIN_BATCH_OBJECTS, MAX_BATCH_OBJECTS),
            state: Mutex::new(BatchState::default()),
            room: Condvar::new(),
        }
    }
}

impl<'s> ObjectWriter<'s> {
    /// Bytes appended so far, holes included.
    #[must_use]
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing was appended yet.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends `data`: hashed, then written to the temporary file.
    ///
    /// # Errors
    /// [`StoreError::Io`] when writing fails or the object would exceed 2^64 - 1 bytes.
    pub fn write(&mut self, data: &[u8]) -> Result<(), StoreError> {
        let path = self.temp.display_path(self.store);
        verity::update(&mut self.hasher, data)
            .map_err(|e| io_error("hash", &path)(io::Error::other(e)))?;
        self.temp
            .file
            .write_all_at(data, self.len)
            .map_err(io_error("write", &path))?;
        self.len = self.len.saturating_add(data.len() as u64);
        self.written_end = self.len;
        Ok(())
    }

    /// Appends `len` zero bytes as a hole: hashed (whole aligned groups by their known
    /// hash, without touching memory) but not written.
    ///
    /// # Errors
    /// [`StoreError::Io`] when the object would exceed 2^64 - 1 bytes.
    pub fn write_zeros(&mut self, len: u64) -> Result<(), StoreError> {
        let path = self.temp.display_path(self.store);
        let too_large = |e| io_error("hash", &path)(io::Error::other(e));
        hash_zeros(&mut self.hasher, len).map_err(too_large)?;
        self.len = self.len.saturating_add(len);
        Ok(())
    }

    /// Completes the object: extends the file over a trailing hole, sets mode 0644 and
    /// computes the digest.
    ///
    /// # Errors
    /// [`StoreError::Io`] when the file cannot be extended or its mode set.
    pub fn finish(self) -> Result<StagedObject<'s>, StoreError> {
        let path = self.temp.display_path(self.store);
        if self.written_end < self.len {
            self.temp
                .file
                .set_len(self.len)
                .map_err(io_error("extend", &path))?;
        }
        rustix::fs::fchmod(&self.temp.file, Mode::from_raw_mode(OBJECT_MODE))
            .map_err(errno_error("chmod", &path))?;
        start_writeback(&self.temp.file);
        Ok(StagedObject {
            temp: self.temp,
            digest: self.hasher.finalize(),
            size: self.len,
        })
    }

    /// Makes the object a reflink of all of `src` (`FICLONE`) and hashes the clone, on up
    /// to `threads` threads. The clone is private to this writer, so the object's content
    /// is what was hashed even if `src` changes meanwhile. Only a fresh writer (nothing
    /// appended) is cloned into.
    ///
    /// # Errors
    /// [`StoreError::Io`] when the clone cannot be read or its mode set. A filesystem
    /// without reflinks between `src` and the store is not an error: the writer comes
    /// back as [`CloneOutcome::Unsupported`].
    pub fn clone_from(
        self,
        src: &File,
        threads: NonZeroUsize,
    ) -> Result<CloneOutcome<'s>, StoreError> {
        if !self.is_empty() {
            return Ok(CloneOutcome::Unsupported(Box::new(self)));
        }
        let path = self.temp.display_path(self.store);
        match rustix::fs::ioctl_ficlone(&self.temp.file, src) {
            Ok(()) => {}
            Err(
                Errno::XDEV
                | Errno::OPNOTSUPP
                | Errno::INVAL
                | Errno::NOTTY
                | Errno::BADF
                | Errno::NOSYS
                | Errno::PERM,
            ) => return Ok(CloneOutcome::Unsupported(Box::new(self))),
            Err(e) => return Err(errno_error("reflink into", &path)(e)),
        }
        rustix::fs::fchmod(&self.temp.file, Mode::from_raw_mode(OBJECT_MODE))
            .map_err(errno_error("chmod", &path))?;
        let digest =
            verity::digest_file(&self.temp.file, threads).map_err(io_error("hash", &path))?;
        let size = self
            .temp
            .file
            .metadata()
            .map_err(io_error("stat", &path))?
            .len();
        Ok(CloneOutcome::Cloned(StagedObject {
            temp: self.temp,
            digest,
            size,
        }))
    }
}

impl StagedObject<'_> {
    /// The fs-verity digest of the content, which will be the object's name.
    #[must_use]
    pub fn digest(&self) -> &[u8; DIGEST_SIZE] {
        &self.digest
    }

    /// The content's size in bytes.
    #[must_use]
    pub fn size(&self) -> u64 {
        self.size
    }
}

/// Staged objects waiting to be published together. Share it between threads by
/// reference; call [`finish`](Self::finish) at the end, or the objects still waiting are
/// discarded.
#[derive(Debug)]
pub struct Batch<'s> {
    store: &'s Store,
    max_objects: usize,
    state: Mutex<BatchState<'s>>,
    /// Signalled when a publication ends and its objects no longer count as held.
    room: Condvar,
}

#[derive(Debug, Default)]
struct BatchState<'s> {
    pending: Vec<StagedObject<'s>>,
    bytes: u64,
    /// Objects waiting or being published.
    held: usize,
    /// Digests known to be in the store, waiting here, or being published.
    known: HashSet<[u8; DIGEST_SIZE]>,
}

impl<'s> Batch<'s> {
    /// The store the batch publishes into.
    #[must_use]
    pub fn store(&self) -> &'s Store {
        self.store
    }

    /// Whether an object with `digest` still has to be written: it is neither in the
    /// store nor added to this batch before.
    ///
    /// # Errors
    /// [`StoreError`] as [`Store::contains`].
    pub fn wants(&self, digest: &[u8; DIGEST_SIZE]) -> Result<bool, StoreError> {
        if self.lock().known.contains(digest) {
            return Ok(false);
        }
        if self.store.contains(digest)? {
            self.lock().known.insert(*digest);
            return Ok(false);
        }
        Ok(true)
    }

    /// Stores `data` unless an object with its digest is already known: the digest is
    /// computed here, and the same bytes are written to a temporary file and staged.
    /// Returns the digest.
    ///
    /// # Errors
    /// [`StoreError`] when writing or a publication fails.
    pub fn add_bytes(&self, data: &[u8]) -> Result<[u8; DIGEST_SIZE], StoreError> {
        let digest = verity::digest_bytes(data, NonZeroUsize::MIN);
        if !self.wants(&digest)? {
            return Ok(digest);
        }
        let temp = self.store.temp_file()?;
        let path = temp.display_path(self.store);
        temp.file
            .write_all_at(data, 0)
            .map_err(io_error("write", &path))?;
        rustix::fs::fchmod(&temp.file, Mode::from_raw_mode(OBJECT_MODE))
            .map_err(errno_error("chmod", &path))?;
        start_writeback(&temp.file);
        self.stage(StagedObject {
            temp,
            digest,
            size: data.len() as u64,
        })?;
        Ok(digest)
    }

    /// Adds a staged object, discarding it when an object with its digest is already
    /// known. Publishes the waiting objects when the batch is full.
    ///
    /// # Errors
    /// [`StoreError`] when a publication fails; the objects of that publication that were
    /// not linked yet are discarded.
    pub fn add(&self, object: StagedObject<'s>) -> Result<(), StoreError> {
        if !self.wants(&object.digest)? {
            return Ok(());
        }
        self.stage(object)
    }

    /// Adds an object that [`wants`](Self::wants) asked for, unless another one with its
    /// digest was added meanwhile; publishes the batch when full.
    fn stage(&self, object: StagedObject<'s>) -> Result<(), StoreError> {
        let full = {
            let mut state = self.lock();
            if !state.known.insert(object.digest) {
                return Ok(());
            }
            // Two batches' worth at most: wait for a publication to end.
            while state.held >= self.max_objects.saturating_mul(2) {
                state = self
                    .room
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            state.held = state.held.saturating_add(1);
            state.bytes = state.bytes.saturating_add(object.size);
            state.pending.push(object);
            if state.pending.len() >= self.max_objects || state.bytes >= MAX_BATCH_BYTES {
                state.bytes = 0;
                std::mem::take(&mut state.pending)
            } else {
                Vec::new()
            }
        };
        self.publish(full)
    }

    /// Publishes the objects still waiting.
    ///
    /// # Errors
    /// As [`add`](Self::add).
    pub fn finish(self) -> Result<(), StoreError> {
        let rest = std::mem::take(&mut self.lock().pending);
        self.publish(rest)
    }

    /// One `syncfs` for all contents, then each object linked under its name.
    fn publish(&self, objects: Vec<StagedObject<'s>>) -> Result<(), StoreError> {
        if objects.is_empty() {
            return Ok(());
        }
        let count = objects.len();
        let result = self.publish_all(objects);
        let mut state = self.lock();
        state.held = state.held.saturating_sub(count);
        drop(state);
        self.room.notify_all();
        result
    }

    fn publish_all(&self, objects: Vec<StagedObject<'s>>) -> Result<(), StoreError> {
        rustix::fs::syncfs(&self.store.dir).map_err(errno_error("syncfs", &self.store.root))?;
        for object in objects {
            self.store.link_durable(object.temp, &object.digest)?;
        }
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BatchState<'s>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::io::Write;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::create(dir.path().join("store")).unwrap();
        (dir, store)
    }

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|k| (k % 251) as u8 + 1).collect()
    }

    #[test]
    fn written_objects_are_named_by_the_digest_of_what_was_written() {
        let (_dir, store) = store();
        let data = pattern(3 * GROUP_SIZE + 77);
        let mut w = store.object_writer().unwrap();
        for piece in data.chunks(100_000) {
            w.write(piece).unwrap();
        }
        assert_eq!(w.len(), data.len() as u64);
        let staged = w.finish().unwrap();
        assert_eq!(*staged.digest(), composefs_format::verity::digest(&data));
        let digest = *staged.digest();
        let batch = store.batch();
        batch.add(staged).unwrap();
        assert!(!store.contains(&digest).unwrap(), "published before finish");
        batch.finish().unwrap();
        assert_eq!(std::fs::read(store.path_of(&digest)).unwrap(), data);
        assert_eq!(
            store.verify_object(&digest).unwrap(),
            super::super::ObjectStatus::Valid
        );
    }

    /// Holes are hashed as zeros, whether they are aligned to groups or not, and leave
    /// the object sparse.
    #[test]
    fn holes_hash_as_zeros_and_stay_holes() {
        let (_dir, store) = store();
        let head = pattern(1000);
        let hole = 5 * GROUP_SIZE as u64 + 123;
        let tail = pattern(10);
        let mut w = store.object_writer().unwrap();
        w.write(&head).unwrap();
        w.write_zeros(hole).unwrap();
        w.write(&tail).unwrap();
        w.write_zeros(2 * GROUP_SIZE as u64).unwrap();
        let staged = w.finish().unwrap();

        let mut full = head.clone();
        full.resize(full.len() + hole as usize, 0);
        full.extend_from_slice(&tail);
        full.resize(full.len() + 2 * GROUP_SIZE, 0);
        assert_eq!(*staged.digest(), composefs_format::verity::digest(&full));
        assert_eq!(staged.size(), full.len() as u64);
        let digest = *staged.digest();
        let batch = store.batch();
        batch.add(staged).unwrap();
        batch.finish().unwrap();
        let path = store.path_of(&digest);
        assert_eq!(std::fs::read(&path).unwrap(), full);
        use std::os::unix::fs::MetadataExt;
        let blocks = std::fs::metadata(&path).unwrap().blocks();
        assert!(blocks * 512 < full.len() as u64 / 2, "object is not sparse");
    }

    #[test]
    fn duplicates_and_existing_objects_are_discarded() {
        let (_dir, store) = store();
        let existing = store.add_bytes(b"already there, and long enough").unwrap();
        let batch = store.batch();
        for _ in 0..3 {
            let mut w = store.object_writer().unwrap();
            w.write(b"already there, and long enough").unwrap();
            let staged = w.finish().unwrap();
            assert!(!batch.wants(staged.digest()).unwrap());
            batch.add(staged).unwrap();
        }
        let mut digests = Vec::new();
        for _ in 0..3 {
            let mut w = store.object_writer().unwrap();
            w.write(b"new content").unwrap();
            let staged = w.finish().unwrap();
            digests.push(*staged.digest());
            batch.add(staged).unwrap();
        }
        batch.finish().unwrap();
        assert!(store.contains(&existing).unwrap());
        assert!(store.contains(&digests[0]).unwrap());
        let report = store.verify().unwrap();
        assert_eq!(report.valid, 2);
        assert!(report.problems.is_empty(), "{:?}", report.problems);
    }

    /// A full batch publishes by itself; what waits at the end is published by `finish`,
    /// and an unfinished batch publishes nothing.
    #[test]
    fn batches_publish_when_full_and_at_finish() {
        let (_dir, store) = store();
        let batch = store.batch();
        let mut digests = Vec::new();
        for k in 0..batch.max_objects + 3 {
            let mut w = store.object_writer().unwrap();
            w.write(format!("object {k}").as_bytes()).unwrap();
            let staged = w.finish().unwrap();
            digests.push(*staged.digest());
            batch.add(staged).unwrap();
        }
        let published = digests
            .iter()
            .filter(|d| store.contains(d).unwrap())
            .count();
        assert_eq!(published, batch.max_objects);
        batch.finish().unwrap();
        assert!(digests.iter().all(|d| store.contains(d).unwrap()));

        let dropped = store.batch();
        let mut w = store.object_writer().unwrap();
        w.write(b"never published").unwrap();
        let staged = w.finish().unwrap();
        let digest = *staged.digest();
        dropped.add(staged).unwrap();
        drop(dropped);
        assert!(!store.contains(&digest).unwrap());
        assert!(store.verify().unwrap().problems.is_empty());
    }

    /// On a filesystem without reflinks the writer comes back unchanged; with them, the
    /// clone is hashed. Either way the object ends up right.
    #[test]
    fn clone_from_falls_back_or_hashes_the_clone() {
        let (dir, store) = store();
        let data = pattern(2 * GROUP_SIZE + 5);
        let src_path = dir.path().join("src");
        std::fs::File::create(&src_path)
            .unwrap()
            .write_all(&data)
            .unwrap();
        let src = File::open(&src_path).unwrap();
        let w = store.object_writer().unwrap();
        let staged = match w.clone_from(&src, NonZeroUsize::MIN).unwrap() {
            CloneOutcome::Cloned(staged) => staged,
            CloneOutcome::Unsupported(mut w) => {
                assert!(w.is_empty());
                w.write(&data).unwrap();
                w.finish().unwrap()
            }
        };
        assert_eq!(*staged.digest(), composefs_format::verity::digest(&data));
        assert_eq!(staged.size(), data.len() as u64);

        let mut used = store.object_writer().unwrap();
        used.write(b"x").unwrap();
        assert!(matches!(
            used.clone_from(&src, NonZeroUsize::MIN).unwrap(),
            CloneOutcome::Unsupported(w) if w.len() == 1
        ));
    }
}
