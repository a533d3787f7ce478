//! Images we wrote, mounted by the kernel with nothing of ours in between: plain
//! `mount -t erofs` and `mount -t overlay` commands (`lowerdir+=`, `datadir+=`,
//! `metacopy=on`, `redirect_dir=on`), compared with the tree the dump describes; and
//! the reference's images of the same dumps through our helper. Needs root, erofs,
//! overlayfs and mount(8); skips visibly otherwise.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

mod kernel_support;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::Command;

use composefs_conformance::kernel::{skip_without_mounts, snapshot, MountGuard};
use composefs_conformance::{gen_dump, skip};
use composefs_format::tree::{Node, Tree};
use composefs_std::mount::{mount, ImageCheck, MountOptions};
use kernel_support::{
    as_mounted, assert_same_view, image_from_dump, link_groups, reference_image_from_dump,
    tree_link_groups, tree_view, Rng, READ_LIMIT,
};

const S_IFMT: u32 = 0o170000;
const S_IFREG: u32 = 0o100000;

/// The bytes the test stores as the object of `node` (a function of its payload).
fn object_bytes(node: &Node) -> Vec<u8> {
    let payload = node.payload.as_deref().unwrap_or_default();
    let seed = payload
        .iter()
        .fold(0u64, |h, &b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
    Rng::new(seed).bytes(usize::try_from(node.size).unwrap())
}

/// Writes the object of every external regular file of at most `READ_LIMIT` bytes into
/// `data`, at its payload path; larger files get no object (and are not read).
fn place_objects(tree: &Tree, data: &Path) -> usize {
    let mut placed = 0;
    for (_, node) in tree.iter() {
        let external = node.mode & S_IFMT == S_IFREG && node.content.is_none() && node.size > 0;
        if !external || node.size > READ_LIMIT {
            continue;
        }
        let path = data.join(OsStr::from_bytes(node.payload.as_deref().unwrap()));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, object_bytes(node)).unwrap();
        placed += 1;
    }
    placed
}

/// Runs a command that must succeed.
fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn mount_and_compare(seed: u64, entries: usize, whiteouts: bool) {
    let Some(dump) = gen_dump(seed, entries, whiteouts) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("tree.cfs");
    let (tree, version) = image_from_dump(&dump, &image);
    let stored = u32::from_le_bytes(std::fs::read(&image).unwrap()[12..16].try_into().unwrap());
    assert_eq!(stored, version, "seed {seed}: header format version");

    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let placed = place_objects(&tree, &data);
    assert!(
        placed > 10,
        "seed {seed}: only {placed} objects to read back"
    );

    let lower = dir.path().join("lower");
    let merged = dir.path().join("merged");
    std::fs::create_dir(&lower).unwrap();
    std::fs::create_dir(&merged).unwrap();
    // Dropped in reverse order: the overlay first, then EROFS.
    let lower_guard = MountGuard::new(&lower);
    run(Command::new("mount")
        .args(["-t", "erofs", "-o", "ro"])
        .arg(&image)
        .arg(&lower));
    let merged_guard = MountGuard::new(&merged);
    run(Command::new("mount")
        .args(["-t", "overlay", "composefs", "-o"])
        .arg(format!(
            "ro,lowerdir+={},datadir+={},metacopy=on,redirect_dir=on",
            lower.display(),
            data.display()
        ))
        .arg(&merged));

    compare(&format!("seed {seed}"), &tree, version, &merged);
    drop(merged_guard);
    drop(lower_guard);
}

/// Compares the mounted tree at `merged` with what `tree` must look like there.
fn compare(what: &str, tree: &Tree, version: u32, merged: &Path) {
    let mut expected = tree_view(tree, &|node: &Node| {
        (node.size <= READ_LIMIT).then(|| object_bytes(node))
    });
    as_mounted(&mut expected, version);
    let actual = snapshot(merged, READ_LIMIT);
    assert_same_view(what, &expected, &actual);
    assert_eq!(
        link_groups(merged, &actual),
        tree_link_groups(tree),
        "{what}: hard links"
    );
}

/// Interoperability the other way: images the reference `mkcomposefs --from-file` wrote
/// from the same random dumps, mounted with our helper.
#[test]
fn reference_images_mount_with_our_helper_as_the_dump_says() {
    if skip_without_mounts("reference_images_mount_with_our_helper_as_the_dump_says") {
        return;
    }
    for seed in [11, 12] {
        let Some(dump) = gen_dump(seed, 400, seed % 2 == 0) else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let dump_path = dir.path().join("tree.dump");
        std::fs::write(&dump_path, &dump).unwrap();
        let image = dir.path().join("ref.cfs");
        if !reference_image_from_dump(&dump_path, &image) {
            return;
        }
        let (tree, version) = image_from_dump(&dump, &dir.path().join("ours.cfs"));
        assert_eq!(
            std::fs::read(&image).unwrap(),
            std::fs::read(dir.path().join("ours.cfs")).unwrap(),
            "seed {seed}: our writer and the reference agree byte for byte"
        );
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        place_objects(&tree, &data);
        let merged = MountGuard::new(dir.path().join("merged"));
        std::fs::create_dir(merged.path()).unwrap();
        mount(
            &image,
            merged.path(),
            &MountOptions::new([&data])
                .scratch_dir(dir.path())
                .check(ImageCheck::Canonical),
        )
        .unwrap();
        compare(
            &format!("reference image, seed {seed}"),
            &tree,
            version,
            merged.path(),
        );
    }
}

#[test]
fn images_we_wrote_mount_as_the_tree_we_meant() {
    if skip_without_mounts("images_we_wrote_mount_as_the_tree_we_meant") {
        return;
    }
    if Command::new("mount").arg("--version").output().is_err() {
        return skip("mount(8) not installed");
    }
    for seed in 1..=6 {
        mount_and_compare(seed, 400, seed % 2 == 0);
    }
}

/// The directory that must stay readable when its entries span several blocks: one
/// large random dump.
#[test]
fn a_large_image_we_wrote_mounts_as_the_tree_we_meant() {
    if skip_without_mounts("a_large_image_we_wrote_mounts_as_the_tree_we_meant") {
        return;
    }
    if Command::new("mount").arg("--version").output().is_err() {
        return skip("mount(8) not installed");
    }
    mount_and_compare(100, 3000, true);
}
