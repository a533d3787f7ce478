//! `composefs_std::mount` on its own: an image written from a small in-memory tree,
//! mounted and read back. Needs root, erofs and overlayfs; skips visibly otherwise (the
//! full kernel suite is `tests/tests/kernel_*.rs`).
#![allow(clippy::unwrap_used, clippy::indexing_slicing, missing_docs)]

use std::path::Path;

use composefs_format::tree::{Mtime, Node, NodeId, Tree};
use composefs_format::write::{write_image, Options};
use composefs_std::mount::{mount, ErofsSource, ImageCheck, LayerMode, MountError, MountOptions};
use composefs_std::store::{object_path, Store};
use rustix::mount::{unmount, UnmountFlags};

fn skip_reason() -> Option<&'static str> {
    if !rustix::process::geteuid().is_root() {
        return Some("needs root");
    }
    let fs = std::fs::read_to_string("/proc/filesystems").unwrap_or_default();
    let has = |name| {
        fs.lines()
            .any(|l| l.split_whitespace().last() == Some(name))
    };
    if !has("erofs") || !has("overlay") {
        return Some("the kernel lacks erofs or overlay");
    }
    None
}

/// Unmounts (lazily) on drop, so a failing test leaves nothing mounted.
struct Unmount<'a>(&'a Path);

impl Drop for Unmount<'_> {
    fn drop(&mut self) {
        let _ = unmount(self.0, UnmountFlags::DETACH);
    }
}

/// `/inline` (inline content), `/external` (its object in `store`), `/dir/gone` (a
/// whiteout).
fn tree(store: &Store) -> Tree {
    let mut root = Node::with_mode(0o40755);
    root.nlink = 2;
    let mut t = Tree::new(root);
    let mut inline = Node::with_mode(0o100644);
    inline.nlink = 1;
    inline.size = 5;
    inline.content = Some(b"hello".to_vec());
    inline.mtime = Mtime {
        sec: 1_700_000_000,
        nsec: 123,
    };
    let id = t.add(inline).unwrap();
    t.insert_child(NodeId::ROOT, b"inline".to_vec(), id, false)
        .unwrap();
    let data = vec![7u8; 10_000];
    let digest = store.add_bytes(&data).unwrap();
    let mut external = Node::with_mode(0o100600);
    external.nlink = 1;
    external.uid = 1234;
    external.size = data.len() as u64;
    external.digest = Some(digest);
    external.payload = Some(object_path(&digest).into_bytes());
    let id = t.add(external).unwrap();
    t.insert_child(NodeId::ROOT, b"external".to_vec(), id, false)
        .unwrap();
    let mut dir = Node::with_mode(0o40700);
    dir.nlink = 2;
    let dir_id = t.add(dir).unwrap();
    t.insert_child(NodeId::ROOT, b"dir".to_vec(), dir_id, false)
        .unwrap();
    let mut gone = Node::with_mode(0o20000);
    gone.nlink = 1;
    let id = t.add(gone).unwrap();
    t.insert_child(dir_id, b"gone".to_vec(), id, false).unwrap();
    t
}

#[test]
fn a_written_image_mounts_and_reads_back() {
    if let Some(why) = skip_reason() {
        eprintln!("SKIPPED: a_written_image_mounts_and_reads_back: {why}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = Store::create(dir.path().join("objects")).unwrap();
    let mut bytes = Vec::new();
    write_image(&tree(&store), &Options::default(), &mut bytes).unwrap();
    let image = dir.path().join("image.cfs");
    std::fs::write(&image, &bytes).unwrap();
    let target = dir.path().join("mnt");
    std::fs::create_dir(&target).unwrap();
    for (check, mode) in [
        (ImageCheck::Canonical, LayerMode::Fds),
        (ImageCheck::Structure, LayerMode::Paths),
        (ImageCheck::None, LayerMode::LegacyDataOnly),
    ] {
        let _guard = Unmount(&target);
        let done = mount(
            &image,
            &target,
            &MountOptions::new([store.root()])
                .check(check)
                .layer_mode(mode)
                .scratch_dir(dir.path()),
        )
        .unwrap();
        assert_eq!(done.layers, mode);
        assert_eq!(done.check, check);
        assert_eq!(done.snapshot, check != ImageCheck::None);
        let want_source = if done.snapshot {
            ErofsSource::LoopDevice
        } else {
            ErofsSource::File
        };
        assert_eq!(done.source, want_source);
        assert_eq!(std::fs::read(target.join("inline")).unwrap(), b"hello");
        assert_eq!(
            std::fs::read(target.join("external")).unwrap(),
            vec![7u8; 10_000]
        );
        let meta = std::fs::symlink_metadata(target.join("dir/gone")).unwrap();
        assert!(
            meta.is_file() && meta.len() == 0,
            "a whiteout shows as an empty file"
        );
        use std::os::unix::fs::MetadataExt;
        assert_eq!(
            std::fs::metadata(target.join("external")).unwrap().uid(),
            1234
        );
        assert_eq!(
            std::fs::metadata(target.join("inline"))
                .unwrap()
                .mtime_nsec(),
            123
        );
        unmount(&target, UnmountFlags::empty()).unwrap();
        // Only the scratch parent's own entries remain: no temporary directory.
        let mut left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, ["image.cfs", "mnt", "objects"], "{mode:?}");
    }
}

#[test]
fn garbage_is_refused_before_mounting() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("garbage.cfs");
    std::fs::write(&image, vec![0u8; 8192]).unwrap();
    let options = MountOptions::new([dir.path()]);
    let e = mount(&image, dir.path(), &options).unwrap_err();
    assert!(matches!(e, MountError::CheckFailed { .. }), "{e}");
    let e = mount(&image, dir.path(), &options.check(ImageCheck::None)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "not a composefs image: header magic is 0x00000000, not 0xd078629a"
    );
    let e = mount(
        dir.path().join("absent"),
        dir.path(),
        &MountOptions::new([dir.path()]),
    )
    .unwrap_err();
    assert!(e.to_string().starts_with("cannot open image "), "{e}");
}
