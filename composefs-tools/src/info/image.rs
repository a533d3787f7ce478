//! Opening image files for the `composefs-info` commands: each image is mapped once and
//! read in place (zero copy), then read back into a tree.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use composefs_format::from_image::{image_to_tree, ImageTree};
use composefs_format::image::Image;
use composefs_std::mmap::MappedFile;

use super::{quoted, EXIT_CORRUPTED, EXIT_ERROR};

/// Why an image could not be read.
#[derive(Debug)]
pub enum ImageError {
    /// The file could not be opened or mapped.
    Io {
        /// The image path.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// The image is corrupt or uses something composefs never writes.
    Corrupt {
        /// The image path.
        path: PathBuf,
        /// What is wrong, with the nid and offset when known.
        error: composefs_format::Error,
    },
}

impl ImageError {
    /// The exit status this error calls for: [`EXIT_ERROR`] for I/O, [`EXIT_CORRUPTED`]
    /// for a bad image.
    #[must_use]
    pub fn status(&self) -> u8 {
        match self {
            Self::Io { .. } => EXIT_ERROR,
            Self::Corrupt { .. } => EXIT_CORRUPTED,
        }
    }
}

impl fmt::Display for ImageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io { path, source } => {
                write!(f, "Failed to open {}: {source}", quoted(path))
            }
            Self::Corrupt { path, error } => {
                write!(f, "Failed to load {}: {error}", quoted(path))
            }
        }
    }
}

impl std::error::Error for ImageError {}

/// Opens and maps the image file at `path`.
///
/// # Errors
/// [`ImageError::Io`] when it cannot be opened or mapped.
pub fn map(path: &Path) -> Result<MappedFile, ImageError> {
    MappedFile::open(path).map_err(|source| ImageError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads the image `bytes` (from `path`) back into a tree.
///
/// # Errors
/// [`ImageError::Corrupt`] with the first structural error met on the way.
pub fn read_tree(path: &Path, bytes: &[u8]) -> Result<ImageTree, ImageError> {
    let corrupt = |error| ImageError::Corrupt {
        path: path.to_path_buf(),
        error,
    };
    let image = Image::open(bytes).map_err(corrupt)?;
    image_to_tree(&image).map_err(corrupt)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_file_and_pick_the_status() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("absent.img");
        let e = map(&missing).unwrap_err();
        assert_eq!(e.status(), EXIT_ERROR);
        assert!(e
            .to_string()
            .starts_with(&format!("Failed to open '{}': ", missing.display())));
        let e = read_tree(Path::new("x.img"), &[0u8; 4096]).unwrap_err();
        assert_eq!(e.status(), EXIT_CORRUPTED);
        assert!(e.to_string().starts_with("Failed to load 'x.img': "), "{e}");
    }
}
