//! Every dump the parser accepts and the writer writes gives a canonical image. The first
//! input byte chooses the mode (bit 0: strict) and the format versions (bits 1-2: default,
//! 0 only, 1 only, default); the rest is the dump.
//!
//! Errors are fine; panics, hangs and unbounded allocation are bugs.
#![no_main]

use composefs_format::canonical;
use composefs_format::dumpfile::{parse_bytes, ParseOptions};
use composefs_format::write::Options;
use composefs_fuzz::write_tree;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&control, dump)) = data.split_first() else {
        return;
    };
    let mode = if control & 1 != 0 {
        ParseOptions::strict()
    } else {
        ParseOptions::lenient()
    };
    let options = match (control >> 1) & 3 {
        1 => Options {
            min_version: 0,
            max_version: 0,
        },
        2 => Options {
            min_version: 1,
            max_version: 1,
        },
        _ => Options::default(),
    };
    let Ok(parsed) = parse_bytes(dump, mode) else {
        return;
    };
    let Ok(image) = write_tree(&parsed.tree, &options) else {
        return;
    };
    if let Err(e) = canonical::verify(&image) {
        panic!("image of an accepted dump is not canonical: {e}");
    }
});
