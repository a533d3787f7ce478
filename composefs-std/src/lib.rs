//! `composefs-std`: composefs on Linux, on top of `composefs-format`.
//!
//! - [`verity`]: fs-verity digests of files at the speed of SHA-256 (in parallel within
//!   one file), the enable/measure ioctls, and `measure_file`.
//! - [`store`]: the content-addressed object store (`<store>/<2 hex>/<62 hex>`).
//! - [`mmap`] (feature `mmap`): read-only maps of image files for the zero-copy reader.
//! - [`mount`]: mounting images (EROFS + overlayfs, new mount API with fallbacks), after a
//!   safety check of the image.
//!
//! `unsafe` appears only in the ioctl calls of [`verity`], in [`mmap`], and in the loop
//! device and `mount_setattr` calls of [`mount`].
#![deny(unsafe_code)]

#[cfg(feature = "mmap")]
pub mod mmap;
pub mod mount;
pub mod store;
pub mod verity;
