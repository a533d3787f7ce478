//! An arbitrary tree (built from the fuzz bytes) through the writer: a refusal is fine;
//! an image must be sound, pass the full walk, read back into a tree equal to the input up
//! to the writer's canonicalisations (`composefs_fuzz::compare::normalize_node` and
//! `after_whiteout_markers`, hard-link primaries free), give the same bytes when that tree is written again at the image's
//! format version, and verify as canonical.
//!
//! Errors are fine; panics, hangs and unbounded allocation are bugs.
#![no_main]

use arbitrary::Unstructured;
use composefs_format::canonical;
use composefs_format::check::check_bytes;
use composefs_format::from_image::image_to_tree;
use composefs_format::image::Image;
use composefs_format::tree::Tree;
use composefs_format::write::Options;
use composefs_fuzz::compare::{after_whiteout_markers, normalize_node, same_tree, Links};
use composefs_fuzz::{gen, walk, write_tree};
use libfuzzer_sys::fuzz_target;

/// Every directory's link count is 2 plus its subdirectories.
fn assert_dir_nlinks(tree: &Tree) {
    for (id, node) in tree.iter() {
        if node.is_dir() {
            let subdirs = node
                .children
                .iter()
                .filter(|e| tree.get(e.node).is_some_and(|n| n.is_dir()))
                .count();
            assert_eq!(
                node.nlink as usize,
                2 + subdirs,
                "nlink of directory {id:?}"
            );
        }
    }
}

/// Whether some whiteout has more than one entry.
fn has_linked_whiteout(tree: &Tree) -> bool {
    let mut entries = vec![0usize; tree.len()];
    for (_, node) in tree.iter() {
        for e in &node.children {
            if let Some(n) = entries.get_mut(e.node.index()) {
                *n += 1;
            }
        }
    }
    tree.iter()
        .any(|(id, n)| n.is_whiteout() && entries.get(id.index()).is_some_and(|&c| c > 1))
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(tree) = gen::tree(&mut u, 64) else {
        return;
    };
    let Ok(options) = gen::options(&mut u) else {
        return;
    };
    let Ok(image) = write_tree(&tree, &options) else {
        return;
    };
    assert_eq!(
        write_tree(&tree, &options).ok(),
        Some(image.clone()),
        "deterministic"
    );

    let report = check_bytes(&image);
    if !report.is_sound() {
        let first: Vec<String> = report
            .problems()
            .iter()
            .take(5)
            .map(|p| p.error.to_string())
            .collect();
        panic!("the writer made an unsound image: {first:?}");
    }
    walk::walk_bytes(&image, true);

    let opened = Image::open(&image).expect("sound");
    let read = image_to_tree(&opened).unwrap_or_else(|e| panic!("reading back: {e}"));
    // SPEC.md 4.1: `min`, raised to 1 by a whiteout when `max` allows (a `max` below `min`
    // is ignored).
    let whiteout = tree.iter().any(|(_, n)| n.is_whiteout());
    let version = if options.min_version == 0 && options.max_version >= 1 && whiteout {
        1
    } else {
        options.min_version
    };
    assert_eq!(read.format_version, version, "format version");
    let same_version = Options {
        min_version: read.format_version,
        max_version: read.format_version,
    };
    let rewritten =
        write_tree(&read.tree, &same_version).unwrap_or_else(|e| panic!("rewriting: {e}"));
    assert!(
        rewritten == image,
        "the tree read back writes the same image"
    );
    // A hard-linked whiteout is compared by image only: which of its entries is primary
    // decides which directories get the whiteout markers, and when its entries tie for the
    // inode's position the reader may pick another one, reading the node back as an empty
    // file with the markers as its own xattrs (the same image, a different tree).
    if !has_linked_whiteout(&tree) {
        let expected = after_whiteout_markers(&tree, read.format_version);
        if let Err(e) = same_tree(&expected, &read.tree, Links::AnyPrimary, normalize_node) {
            panic!("read tree differs from the input: {e}");
        }
    }
    assert_dir_nlinks(&read.tree);
    if let Err(e) = canonical::verify(&image) {
        panic!("writer output is not canonical: {e}");
    }
});
