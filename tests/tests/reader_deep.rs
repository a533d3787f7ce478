//! Valid but extreme images (catalogue rows 42 and 43): 10,000 nested directories checked
//! on a thread with a 64 KiB stack, and 500,000 entries.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, missing_docs)]

mod reader_support;

use composefs_conformance::{reference_tool, skip};
use composefs_format::check::check_bytes;
use composefs_format::image::Image;
use reader_support::{deep_chain_dump, deep_chain_image, reference_build, wide_dump};

const DEPTH: usize = 10_000;

/// Runs `f` on a thread with a 64 KiB stack.
fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(64 * 1024)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap()
}

fn deepest_path() -> Vec<u8> {
    b"/d".repeat(DEPTH)
}

#[test]
fn hand_built_deep_chain_passes_check_on_a_small_stack() {
    let img = deep_chain_image(DEPTH);
    let (sound, stats, nid) = on_small_stack(move || {
        let report = check_bytes(&img);
        let image = Image::open(&img).unwrap();
        let deepest = image.lookup_path(&deepest_path()).unwrap();
        (report.is_sound(), report.stats(), deepest.nid())
    });
    assert!(sound);
    assert_eq!(stats.directories, DEPTH as u64 + 1);
    assert!(nid > 36);
}

#[test]
fn problem_paths_render_at_depth_without_recursion() {
    let mut img = deep_chain_image(DEPTH);
    // Break the deepest directory's link count; the problem's path has 10,000 components.
    let image = Image::open(&img).unwrap();
    let off = (image.lookup_path(&deepest_path()).unwrap().nid() * 32) as usize;
    img[off + 6] = 9;
    let path = on_small_stack(move || {
        let report = check_bytes(&img);
        assert_eq!(report.problems().len(), 1);
        report.path(&report.problems()[0])
    });
    assert_eq!(path, deepest_path());
}

#[test]
fn reference_built_deep_chain_passes_check_on_a_small_stack() {
    let Some(mk) = reference_tool("mkcomposefs") else {
        return skip("reference mkcomposefs not installed");
    };
    let dir = tempfile::tempdir().unwrap();
    let (img, _) = reference_build(&mk, None, &deep_chain_dump(DEPTH), &[], dir.path(), "deep");
    let sound = on_small_stack(move || {
        let report = check_bytes(&img);
        let image = Image::open(&img).unwrap();
        image.lookup_path(&deepest_path()).unwrap();
        report.is_sound()
    });
    assert!(sound);
}

#[test]
fn reference_built_image_with_500k_entries_passes_check() {
    let Some(mk) = reference_tool("mkcomposefs") else {
        return skip("reference mkcomposefs not installed");
    };
    let dir = tempfile::tempdir().unwrap();
    let (img, _) = reference_build(&mk, None, &wide_dump(500, 1000), &[], dir.path(), "wide");
    let report = check_bytes(&img);
    assert!(
        report.is_sound(),
        "{:?}",
        &report.problems()[..report.problems().len().min(5)]
    );
    // 500,000 files, 500 directories, and the 256 root whiteout stubs, plus "." and "..".
    assert!(report.stats().entries >= 500_000 + 500 + 256);
    assert_eq!(report.stats().directories, 501);
}
