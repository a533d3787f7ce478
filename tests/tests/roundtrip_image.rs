//! Round trips through the writer: image -> tree -> image, and image -> dump (primary
//! hard-link entries printed in full) -> tree -> image, rebuilt at the format version in
//! the image's header, give the same bytes for every upstream asset, for 330 random
//! dumps, and for a tree 2,200 levels deep (which the reference reader crashes on), on a
//! thread with a small stack. The upstream assets also round trip through the dump that
//! `composefs-info dump` prints (the first entry of a hard link in full), as the
//! reference test suite checks.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use composefs_conformance::{gen_dump, upstream_assets};
use composefs_format::dumpfile::{self, HardlinkStyle, ParseOptions, PrintOptions};
use composefs_format::from_image::image_to_tree;
use composefs_format::image::Image;
use composefs_format::tree::Tree;
use composefs_format::write::{write_image, Options};

fn parse(dump: &[u8], strict: bool) -> Tree {
    let options = if strict {
        ParseOptions::strict()
    } else {
        ParseOptions::lenient()
    };
    dumpfile::parse_bytes(dump, options)
        .unwrap_or_else(|e| panic!("dump does not parse: {e}"))
        .tree
}

fn write(tree: &Tree, options: &Options) -> Vec<u8> {
    let mut image = Vec::new();
    write_image(tree, options, &mut image).unwrap_or_else(|e| panic!("{e}"));
    image
}

fn print(tree: &Tree, hardlinks: HardlinkStyle) -> Vec<u8> {
    let options = PrintOptions {
        hardlinks,
        ..PrintOptions::default()
    };
    let mut out = Vec::new();
    dumpfile::print_dump(tree, &options, &mut out).expect("print");
    out
}

/// Checks both round trips of `image`; with `first_in_walk`, also the dump style of
/// `composefs-info dump`.
fn assert_round_trips(label: &str, image: &[u8], first_in_walk: bool) {
    let read = image_to_tree(&Image::open(image).expect("open")).expect("read");
    let options = Options {
        min_version: read.format_version,
        max_version: read.format_version,
    };
    assert!(
        write(&read.tree, &options) == image,
        "{label}: through the tree"
    );
    let mut styles = vec![HardlinkStyle::Primary];
    if first_in_walk {
        styles.push(HardlinkStyle::FirstInWalk);
    }
    for style in styles {
        let text = print(&read.tree, style);
        assert!(
            write(&parse(&text, true), &options) == image,
            "{label}: through the dump ({style:?})"
        );
    }
}

#[test]
fn upstream_assets_round_trip() {
    let mut checked = 0;
    for asset in upstream_assets() {
        if asset.should_fail
            || ["bigfile-xattr.dump", "honggfuzz-bigfile-with-acl.dump"]
                .contains(&asset.name.as_str())
        {
            continue;
        }
        let options = asset.version.map_or_else(Options::default, |v| Options {
            min_version: v,
            max_version: v,
        });
        let image = write(&parse(&asset.dump(), asset.strict), &options);
        assert_round_trips(&asset.name, &image, true);
        checked += 1;
    }
    assert_eq!(checked, 12);
}

#[test]
fn random_dumps_round_trip() {
    // The 300 dumps of `writer_reference.rs` (four sizes, two thirds with whiteouts), whose
    // images are byte-identical to the reference's, each written with the default
    // versions, version 0 only and version 1: 900 images.
    let jobs: Vec<(u64, usize, bool)> = (0..300u64)
        .map(|seed| (seed, [5, 40, 200, 1000][(seed % 4) as usize], seed % 3 != 0))
        .collect();
    let settings = [(0, 1), (0, 0), (1, 1)];
    let next = AtomicUsize::new(0);
    let checked = AtomicUsize::new(0);
    let missing_python = Mutex::new(false);
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| {
                while let Some(&(seed, entries, whiteouts)) =
                    jobs.get(next.fetch_add(1, Ordering::Relaxed))
                {
                    let Some(dump) = gen_dump(seed, entries, whiteouts) else {
                        *missing_python.lock().unwrap_or_else(|e| e.into_inner()) = true;
                        return;
                    };
                    let tree = parse(&dump, true);
                    for (min, max) in settings {
                        let options = Options {
                            min_version: min,
                            max_version: max,
                        };
                        let image = write(&tree, &options);
                        let label = format!("seed {seed} entries {entries} versions {min}..{max}");
                        assert_round_trips(&label, &image, false);
                        checked.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
    });
    if *missing_python.lock().unwrap_or_else(|e| e.into_inner()) {
        return;
    }
    assert_eq!(checked.load(Ordering::Relaxed), 900);
}

/// A chain of `depth` directories, each holding a file, a symlink, and a hard link to the
/// file one level up, as a dump.
fn deep_dump(depth: usize) -> Vec<u8> {
    let mut text = String::from("/ 4096 40755 2 0 0 0 0.0 - - -\n");
    let mut path = String::new();
    for level in 0..depth {
        let parent = path.clone();
        path.push_str(&format!("/d{}", level % 10));
        text.push_str(&format!("{path} 4096 40755 2 0 0 0 0.0 - - -\n"));
        let nlink = if level + 1 < depth { 2 } else { 1 };
        text.push_str(&format!("{path}/f 1 100644 {nlink} 0 0 0 0.0 - x -\n"));
        if level > 0 {
            text.push_str(&format!("{path}/l 0 @100644 2 0 0 0 0.0 {parent}/f - -\n"));
        }
        text.push_str(&format!("{path}/s 4 120777 1 0 0 0 0.0 ../f - -\n"));
    }
    text.into_bytes()
}

#[test]
fn a_tree_2200_levels_deep_round_trips_on_a_small_stack() {
    let handle = std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(|| {
            let image = write(&parse(&deep_dump(2200), true), &Options::default());
            // The walk reaches each hard link (`dN/l`, below `dN`'s subdirectory) before
            // its primary entry (`../f`), so only the primary style round trips.
            assert_round_trips("2200 levels", &image, false);
            image.len()
        })
        .expect("spawn");
    // At least the three inodes of each level.
    assert!(handle.join().expect("no stack overflow") > 2200 * 3 * 32);
}
