//! Differential tests: our writer against the reference mkcomposefs, byte for byte, on
//! random dumps from `tools/gen-dump.py` and on very deep trees.

mod writer_support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use composefs_conformance::{gen_dump, reference_tool, skip};
use writer_support::{
    assert_sound, dump, first_difference, fsck, our_image, reference_image, Line,
};

/// The three version settings of the reference test suite: default, v0 only, v1.
const SETTINGS: [(&[&str], u32, u32); 3] = [
    (&[], 0, 1),
    (&["--min-version=0", "--max-version=0"], 0, 0),
    (&["--min-version=1"], 1, 0),
];

/// Compares ours and the reference's image of `dump` under every setting; with `check`,
/// also runs fsck.erofs on our default image. Returns the number of images compared.
fn compare(tool: &std::path::Path, label: &str, dump: &[u8], check: bool) -> usize {
    for (args, min, max) in SETTINGS {
        let theirs = reference_image(tool, dump, args, false)
            .unwrap_or_else(|e| panic!("{label} {args:?}: reference failed: {e}"));
        let ours = our_image(dump, min, max).unwrap_or_else(|e| panic!("{label} {args:?}: {e}"));
        if ours != theirs {
            let path =
                std::env::temp_dir().join(format!("writer-diff-{}.dump", label.replace(' ', "-")));
            let _ = std::fs::write(&path, dump);
            panic!(
                "{label} {args:?} ({}): {}",
                path.display(),
                first_difference(dump, min, max, &ours, &theirs)
            );
        }
        assert_sound(&ours, label);
        if check && args.is_empty() {
            if let Some(result) = fsck(&ours) {
                result.unwrap_or_else(|e| panic!("{label}: fsck.erofs: {e}"));
            }
        }
    }
    SETTINGS.len()
}

#[test]
fn random_dumps_match_the_reference() {
    let Some(tool) = reference_tool("mkcomposefs") else {
        return skip("reference mkcomposefs not installed");
    };
    // 300 dumps: four sizes, two thirds with whiteouts.
    let jobs: Vec<(u64, usize, bool)> = (0..300u64)
        .map(|seed| (seed, [5, 40, 200, 1000][(seed % 4) as usize], seed % 3 != 0))
        .collect();
    let next = AtomicUsize::new(0);
    let compared = AtomicUsize::new(0);
    let missing_python = Mutex::new(false);
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                while let Some(&(seed, entries, whiteouts)) =
                    jobs.get(next.fetch_add(1, Ordering::Relaxed))
                {
                    let Some(dump) = gen_dump(seed, entries, whiteouts) else {
                        *missing_python.lock().unwrap() = true;
                        return;
                    };
                    let label = format!("seed {seed} entries {entries} whiteouts {whiteouts}");
                    compared.fetch_add(compare(&tool, &label, &dump, true), Ordering::Relaxed);
                }
            });
        }
    });
    if *missing_python.lock().unwrap() {
        return;
    }
    assert_eq!(compared.load(Ordering::Relaxed), 900);
}

/// A chain of `depth` directories, each with a file and a symlink.
fn deep_dump(depth: usize) -> Vec<u8> {
    let mut lines = vec![Line::dir(b"/")];
    let mut path = Vec::new();
    for level in 0..depth {
        path.extend_from_slice(format!("/d{}", level % 7).as_bytes());
        lines.push(Line::dir(&path));
        lines.push(Line::file(&[&path[..], b"/f"].concat(), level as u64));
        lines.push(Line::symlink(&[&path[..], b"/s"].concat(), b"../f"));
    }
    dump(&lines)
}

#[test]
fn deep_trees_match_the_reference() {
    let Some(tool) = reference_tool("mkcomposefs") else {
        return skip("reference mkcomposefs not installed");
    };
    // fsck.erofs 1.5 recurses per level and crashes on much deeper trees.
    compare(&tool, "500 levels", &deep_dump(500), true);
    compare(&tool, "2500 levels", &deep_dump(2500), false);
}
