//! Read-only memory maps of image files, for the zero-copy reader.
#![allow(unsafe_code)]

use std::fs::File;
use std::io;
use std::ops::Deref;
use std::path::Path;

/// A file's bytes, mapped read-only. An empty file has no mapping (the kernel refuses
/// zero-length maps) and reads as an empty slice.
///
/// The mapping is private and read-only, but it shows changes that others make to the
/// file while it is mapped, and truncating the file makes accesses past the new end raise
/// `SIGBUS`. Map only files that nobody modifies: images in a store, or files with
/// fs-verity enabled (which are immutable).
#[derive(Debug)]
pub struct MappedFile {
    map: Option<memmap2::Mmap>,
}

impl MappedFile {
    /// Opens and maps the file at `path`.
    ///
    /// # Errors
    /// The `open`, `fstat` or `mmap` error.
    pub fn open(path: impl AsRef<Path>) -> io::Result<Self> {
        Self::map(&File::open(path)?)
    }

    /// Maps the whole of `file`, which must be open for reading. The mapping stays valid
    /// after `file` is closed.
    ///
    /// # Errors
    /// The `fstat` or `mmap` error.
    pub fn map(file: &File) -> io::Result<Self> {
        if file.metadata()?.len() == 0 {
            return Ok(Self { map: None });
        }
        // SAFETY: memmap2 maps the file read-only, so this process never writes through the
        // mapping. Another process changing or truncating the file would break the `&[u8]`
        // guarantee (or raise SIGBUS); the type documents that only files nobody modifies
        // may be mapped.
        let map = unsafe { memmap2::Mmap::map(file)? };
        Ok(Self { map: Some(map) })
    }

    /// The mapped bytes.
    #[must_use]
    pub fn bytes(&self) -> &[u8] {
        self.map.as_deref().unwrap_or_default()
    }
}

impl Deref for MappedFile {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.bytes()
    }
}

impl AsRef<[u8]> for MappedFile {
    fn as_ref(&self) -> &[u8] {
        self.bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn empty_file_maps_to_empty_slice() {
        let f = tempfile::NamedTempFile::new().unwrap();
        let m = MappedFile::open(f.path()).unwrap();
        assert!(m.bytes().is_empty());
    }

    #[test]
    fn maps_contents_and_outlives_the_file_handle() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(b"composefs").unwrap();
        let m = MappedFile::map(&File::open(f.path()).unwrap()).unwrap();
        assert_eq!(&*m, b"composefs");
        assert_eq!(m.as_ref().len(), 9);
    }

    #[test]
    fn missing_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let e = MappedFile::open(dir.path().join("absent")).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
    }
}
