//! `Image::open` on arbitrary bytes, then a bounded walk through every public accessor of
//! the reader (see `composefs_fuzz::walk`).
//!
//! Errors are fine; panics, hangs and unbounded allocation are bugs.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    composefs_fuzz::walk::walk_bytes(data, false);
});
