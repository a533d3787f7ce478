//! `composefs-std`: composefs on Linux, on top of `composefs-format`.
//!
//! - [`verity`]: fs-verity digests of files at the speed of SHA-256 (in parallel within
//!   one file), the enable/measure ioctls, and `measure_file`.
//! - [`store`]: the content-addressed object store (`<store>/<2 hex>/<62 hex>`).
//! - [`scan`]: a directory tree into a composefs tree, as `mkcomposefs SOURCEDIR` does,
//!   with contents copied into a store.
//! - [`mmap`] (feature `mmap`): read-only maps of image files for the zero-copy reader.
//!
//! `unsafe` appears only in the ioctl calls of [`verity`] and in [`mmap`].
#![deny(unsafe_code)]

#[cfg(feature = "mmap")]
pub mod mmap;
pub mod scan;
pub mod store;
pub mod verity;
