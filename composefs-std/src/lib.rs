//! `composefs-std`: composefs on Linux, on top of `composefs-format`.
//!
//! - [`verity`]: fast fs-verity digests of files (sixteen blocks at once on AVX-512 or two
//!   on the x86 SHA extensions, and in parallel within one file), the enable/measure
//!   ioctls, and `measure_file`.
//! - [`store`]: the content-addressed object store (`<store>/<2 hex>/<62 hex>`).
//! - [`scan`]: a directory tree into a composefs tree, as `mkcomposefs SOURCEDIR` does,
//!   with contents copied into a store.
//! - [`mmap`] (feature `mmap`): read-only maps of image files for the zero-copy reader.
//! - [`mount`]: mounting images (EROFS + overlayfs, new mount API with fallbacks), after a
//!   safety check of the image.
//!
//! `unsafe` appears only in [`verity`] (the two ioctl calls; entering the code compiled for
//! AVX-512 or the SHA extensions after a run-time check of the CPU; two transmutes between
//! byte arrays and vectors), in [`mmap`], and in the loop device and `mount_setattr` calls
//! of [`mount`].
#![deny(unsafe_code)]

#[cfg(feature = "mmap")]
pub mod mmap;
pub mod mount;
pub mod scan;
pub mod store;
pub mod verity;
