//! Regressions found by the fuzz targets (fuzz/, FUZZING.md). Each fixture under
//! `tests/data/fuzz/` is the smallest dump that shows the bug (the fuzzers' own inputs are
//! bytes their tree builder interprets, meaningless here); `tests/data/fuzz/README.md`
//! names the target and artifact each came from. Where the reference tools are installed,
//! each test also checks that the reference `mkcomposefs` writes the same image, so the
//! behaviour asserted is the reference's.

use composefs_conformance::{read_data, reference_tool, skip};
use composefs_format::canonical::{verify, CanonicalError};
use composefs_format::check::check_bytes;
use composefs_format::dumpfile::{parse_bytes, ParseOptions};
use composefs_format::from_image::image_to_tree;
use composefs_format::image::Image;
use composefs_format::ondisk::{FileType, COMPOSEFS_FLAGS_HAS_ACL};
use composefs_format::tree::Tree;
use composefs_format::write::{write_image, Options};
use composefs_format::ErrorKind;

fn tree_of(fixture: &str) -> Tree {
    let dump = read_data(&format!("fuzz/{fixture}"));
    parse_bytes(&dump, ParseOptions::strict())
        .unwrap_or_else(|e| panic!("{fixture}: {e}"))
        .tree
}

fn write(tree: &Tree) -> Vec<u8> {
    let mut image = Vec::new();
    write_image(tree, &Options::default(), &mut image).expect("fixture writes");
    image
}

/// The reference's image of the fixture, when the reference tools are installed.
fn reference_image(fixture: &str) -> Option<Vec<u8>> {
    let Some(mkcomposefs) = reference_tool("mkcomposefs") else {
        skip("reference mkcomposefs not installed: differential half skipped");
        return None;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path().join("in.dump");
    std::fs::write(&src, read_data(&format!("fuzz/{fixture}"))).expect("write dump");
    let out = dir.path().join("out.img");
    let status = std::process::Command::new(mkcomposefs)
        .arg("--from-file")
        .arg(&src)
        .arg(&out)
        .status()
        .expect("run mkcomposefs");
    assert!(status.success(), "{fixture}: reference mkcomposefs failed");
    Some(std::fs::read(&out).expect("read reference image"))
}

/// write_roundtrip and mutate_image: the check reported `HasAclMismatch { flag: false,
/// found: true }` on the writer's image of a tree with `system.posix_acl_accessX` (stored
/// under the ACL name index 2 with a suffix). The writers set `HAS_ACL` only for the exact
/// ACL names; the check now counts only those.
#[test]
fn acl_index_with_a_suffix_is_no_acl() {
    let fixture = "acl-name-with-suffix.dump";
    let image = write(&tree_of(fixture));
    let opened = Image::open(&image).expect("opens");
    assert!(
        !opened.has_acl(),
        "the writer sets HAS_ACL for exact names only"
    );
    let report = check_bytes(&image);
    assert!(report.is_sound(), "{:?}", report.problems());
    verify(&image).expect("the writer's image is canonical");

    // The rule still bites: the flag set without an exact ACL name is a mismatch.
    let mut flagged = image.clone();
    flagged[8..12].copy_from_slice(&COMPOSEFS_FLAGS_HAS_ACL.to_le_bytes());
    let kinds: Vec<ErrorKind> = check_bytes(&flagged)
        .problems()
        .iter()
        .map(|p| p.error.kind())
        .collect();
    assert_eq!(
        kinds,
        [ErrorKind::HasAclMismatch {
            flag: true,
            found: false
        }]
    );

    if let Some(reference) = reference_image(fixture) {
        assert_eq!(reference, image, "the reference writes the same image");
    }
}

/// write_roundtrip: `image_to_tree` chose hard-link primaries without counting the root's
/// whiteout stubs `00`..`ff`, so for a node whose primary entry (`/zz`) sorts after the
/// stubs and whose hard link (`/0`) sorts before them, it made `/0` primary; the node then
/// moved before the stubs on rewrite and `canonical::verify` rejected the writer's own
/// image with `CanonicalError::Differs` at that inode.
#[test]
fn hard_link_primary_after_the_root_stubs_keeps_its_place() {
    let fixture = "hardlink-across-root-stubs.dump";
    let tree = tree_of(fixture);
    let image = write(&tree);
    let result = verify(&image);
    assert!(
        !matches!(result, Err(CanonicalError::Differs(_))),
        "the writer's image rebuilds identically: {result:?}"
    );
    result.expect("canonical");

    let read = image_to_tree(&Image::open(&image).expect("opens")).expect("reads");
    let root = read.tree.root();
    let entry = |name: &[u8]| root.child(name).expect("entry").clone();
    let (zero, zz) = (entry(b"0"), entry(b"zz"));
    assert_eq!(zero.node, zz.node, "one node, two names");
    assert!(
        !zz.hardlink && zero.hardlink,
        "the primary is the entry after the stubs"
    );
    let mut rewritten = Vec::new();
    write_image(
        &read.tree,
        &Options {
            min_version: read.format_version,
            max_version: read.format_version,
        },
        &mut rewritten,
    )
    .expect("rewrites");
    assert!(
        rewritten == image,
        "the tree read back writes the same image"
    );

    if let Some(reference) = reference_image(fixture) {
        assert_eq!(reference, image, "the reference writes the same image");
    }
}

/// dump_canonical: a FIFO whose dump size is above `u32::MAX` is stored as an extended
/// inode with `i_size` 0 (SPEC.md 4.7, as the reference does). Reading it back as size 0
/// made the rebuild compact, and `canonical::verify` rejected the writer's own image with
/// `CanonicalError::Differs` in that inode. Such nodes now read back with size 2^32.
#[test]
fn special_files_with_huge_sizes_stay_extended() {
    let fixture = "special-file-huge-size.dump";
    let image = write(&tree_of(fixture));
    let result = verify(&image);
    assert!(
        !matches!(result, Err(CanonicalError::Differs(_))),
        "the writer's image rebuilds identically: {result:?}"
    );
    result.expect("canonical");

    let opened = Image::open(&image).expect("opens");
    let read = image_to_tree(&opened).expect("reads");
    for (name, file_type, size) in [
        (&b"fifo"[..], FileType::Fifo, 1u64 << 32),
        (b"blk", FileType::BlockDevice, 1 << 32),
        // Fits 32 bits: compact, and nothing to infer.
        (b"sock", FileType::Socket, 0),
    ] {
        let inode = opened.lookup_path(&[b"/", name].concat()).expect("present");
        assert_eq!(inode.file_type(), file_type);
        assert_eq!(inode.size(), 0, "special files store i_size 0");
        assert_eq!(inode.is_extended(), size != 0);
        let node = read
            .tree
            .get(read.tree.root().child(name).expect("entry").node)
            .expect("node");
        assert_eq!(node.size, size, "{}", String::from_utf8_lossy(name));
    }

    if let Some(reference) = reference_image(fixture) {
        assert_eq!(reference, image, "the reference writes the same image");
    }
}
