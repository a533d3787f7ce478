//! `composefs-format`: the composefs image format, without `std`, without `unsafe`, and for
//! reading without an allocator.
//!
//! A composefs image is an EROFS filesystem image holding only metadata. Its regular files
//! point, through overlayfs `trusted.overlay.metacopy` and `trusted.overlay.redirect`
//! xattrs, into a content-addressed object store keyed by fs-verity digest. SPEC.md in the
//! repository is the normative description of every byte; this crate implements it.
//!
//! # Layers
//! - [`ondisk`]: raw `#[repr(C)]` structures and constants; no logic.
//! - Reading (no allocation): [`image::Image`] validates the header and superblock, and
//!   hands out views ([`inode`], [`xattr`], [`dir`], [`overlay`]) that validate their own
//!   shape when built and borrow the image bytes. Errors are one `Copy` type, [`Error`].
//! - [`verity`]: the fs-verity digest (SHA-256, 4 KiB blocks), streaming, no allocation.
//! - With feature `alloc`: the [`tree`] model, the [`dumpfile`] parser and printer, the
//!   structural [`check`] walker, [`from_image`] (image to tree), the byte-exact
//!   [writer](mod@write), and the [`canonical`] check (rebuild and compare).
//!
//! # Features
//! - `alloc`: everything that needs a heap (above).
//! - `std` (default): `std::io` conveniences; implies `alloc`.
#![no_std]
#![forbid(unsafe_code)]
#![deny(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::unreachable,
    clippy::todo,
    clippy::unimplemented
)]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(any(feature = "std", test))]
extern crate std;

pub mod ondisk;

mod bytes;
pub mod dir;
pub mod error;
pub mod image;
pub mod inode;
pub mod limits;
pub mod overlay;
pub mod sink;
pub mod verity;
pub mod xattr;
pub mod xxh32;

#[cfg(feature = "alloc")]
pub mod canonical;
#[cfg(feature = "alloc")]
pub mod check;
#[cfg(feature = "alloc")]
pub mod dumpfile;
#[cfg(feature = "alloc")]
pub mod from_image;
#[cfg(feature = "alloc")]
pub mod tree;
#[cfg(feature = "alloc")]
pub mod write;

pub use error::Error;
pub use error::{ErrorClass, ErrorKind};
