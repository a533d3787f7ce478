//! The structural check, reading an image back into a tree, and canonical verification on
//! arbitrary bytes. On images the check finds sound, the walk also asserts what sound
//! images promise (every view builds, every listed name is found by lookup) and reading
//! the image back into a tree must succeed.
//!
//! Errors are fine; panics, hangs and unbounded allocation are bugs.
#![no_main]

use composefs_format::canonical;
use composefs_format::check::check_bytes;
use composefs_format::from_image::image_to_tree;
use composefs_format::image::Image;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let report = check_bytes(data);
    for p in report.problems() {
        let _ = (
            report.path(p),
            report.nid_of(p),
            p.error.to_string(),
            p.error.class(),
        );
    }
    let _ = (report.dropped(), report.stats());
    let sound = report.is_sound();
    if sound {
        composefs_fuzz::walk::walk_bytes(data, true);
    }
    if let Ok(image) = Image::open(data) {
        let read = image_to_tree(&image);
        if sound {
            let read = read.unwrap_or_else(|e| panic!("a sound image reads into a tree: {e}"));
            assert_eq!(read.tree.validate(), Ok(()), "the tree read is valid");
            assert_eq!(read.nids.len(), read.tree.len());
        }
    }
    match canonical::verify(data) {
        Ok(c) => {
            assert!(sound, "a canonical image is sound");
            let _ = c;
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
