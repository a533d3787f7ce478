//! Mounting images in the running kernel with `composefs_std::mount`: the mounted tree
//! against the directory it was made from (every layer mode and EROFS source), missing
//! objects, upper layers, cleanup, the safety check, `digest=`, idmapped mounts, and
//! interoperability with the reference tools. Needs root, erofs and overlayfs; skips
//! visibly otherwise.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

mod kernel_support;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use composefs_conformance::kernel::{
    mounts_under, skip_without_mounts, snapshot, Entry, MountGuard,
};
use composefs_conformance::{read_data, reference_tool, skip};
use composefs_format::tree::Tree;
use composefs_std::mount::{
    mount, ErofsSource, ImageCheck, LayerMode, MountError, MountOptions, Mounted, Verity,
};
use composefs_std::store::Store;
use kernel_support::{
    as_mounted, assert_same_view, link_groups, make_source_tree, scan, tree_link_groups,
    write_image, READ_LIMIT,
};

/// A generated source directory, its object store and its image.
struct Fixture {
    dir: tempfile::TempDir,
    source: PathBuf,
    store: PathBuf,
    image: PathBuf,
    tree: Tree,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("source");
        std::fs::create_dir(&source).unwrap();
        make_source_tree(&source);
        let store = dir.path().join("objects");
        let tree = scan(&source, &Store::create(&store).unwrap());
        let image = dir.path().join("image.cfs");
        write_image(&tree, &image);
        Self {
            dir,
            source,
            store,
            image,
            tree,
        }
    }

    /// A new empty directory in the fixture.
    fn new_dir(&self, name: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::create_dir(&p).unwrap();
        p
    }

    fn options(&self) -> MountOptions {
        MountOptions::new([&self.store]).scratch_dir(self.dir.path())
    }

    /// What the mount must show: the source, with whiteouts as composefs stores them.
    fn expected(&self) -> BTreeMap<PathBuf, Entry> {
        let mut view = snapshot(&self.source, READ_LIMIT);
        as_mounted(&mut view, 1);
        view
    }
}

#[test]
fn mounted_tree_matches_the_source_in_every_mode() {
    if skip_without_mounts("mounted_tree_matches_the_source_in_every_mode") {
        return;
    }
    let fx = Fixture::new();
    let expected = fx.expected();
    let source_links = tree_link_groups(&fx.tree);
    assert_eq!(
        source_links.len(),
        2,
        "the fixture has two hard-linked files"
    );
    let mut cases: Vec<(String, MountOptions)> = Vec::new();
    cases.push(("defaults".into(), fx.options()));
    for mode in LayerMode::ALL {
        for source in [ErofsSource::File, ErofsSource::LoopDevice] {
            cases.push((
                format!("{mode:?} from {source:?}, file itself"),
                fx.options()
                    .layer_mode(mode)
                    .erofs_source(source)
                    .snapshot(false),
            ));
        }
        cases.push((
            format!("{mode:?}, checked copy"),
            fx.options().layer_mode(mode),
        ));
    }
    for (i, (what, options)) in cases.into_iter().enumerate() {
        let target = MountGuard::new(fx.new_dir(&format!("mnt{i}")));
        let done =
            mount(&fx.image, target.path(), &options).unwrap_or_else(|e| panic!("{what}: {e}"));
        let actual = snapshot(target.path(), READ_LIMIT);
        assert_same_view(&what, &expected, &actual);
        let links: std::collections::BTreeSet<Vec<PathBuf>> = link_groups(target.path(), &actual);
        assert_eq!(links, source_links, "{what}: hard links");
        if what == "defaults" {
            assert_eq!(
                done,
                Mounted {
                    source: ErofsSource::LoopDevice,
                    layers: LayerMode::Fds,
                    check: ImageCheck::Structure,
                    snapshot: true,
                },
                "a checked image without fs-verity is mounted from its sealed copy"
            );
        }
    }
}

#[test]
fn mount_table_shows_the_layers_of_each_mode() {
    if skip_without_mounts("mount_table_shows_the_layers_of_each_mode") {
        return;
    }
    let fx = Fixture::new();
    let store = fx.store.display().to_string();
    for (mode, lower) in [
        (LayerMode::Fds, "lowerdir+=/,datadir+="),
        (LayerMode::Paths, "lowerdir+=/"),
        (LayerMode::LegacyDataOnly, "lowerdir=/"),
        (LayerMode::LegacyLower, "lowerdir=/"),
    ] {
        let target = MountGuard::new(fx.new_dir(&format!("mnt-{mode:?}")));
        mount(&fx.image, target.path(), &fx.options().layer_mode(mode)).unwrap();
        let table = mounts_under(fx.dir.path());
        assert_eq!(
            table.len(),
            1,
            "{mode:?}: only the overlay is mounted: {table:?}"
        );
        let m = &table[0];
        assert_eq!(
            (m.fstype.as_str(), m.source.as_str()),
            ("overlay", "composefs")
        );
        assert!(m.super_options.contains("redirect_dir=on"), "{m:?}");
        assert!(m.super_options.contains("metacopy=on"), "{m:?}");
        assert!(m.super_options.contains(lower), "{mode:?}: {m:?}");
        let data = match mode {
            LayerMode::Fds | LayerMode::Paths => format!("datadir+={store}"),
            LayerMode::LegacyDataOnly => format!("::{store}"),
            LayerMode::LegacyLower => format!(":{store}"),
        };
        assert!(m.super_options.contains(&data), "{mode:?}: {m:?}");
    }
}

/// A file whose object is missing from every basedir fails cleanly and alone. With
/// data-only layers (every mode but the last) the metadata comes from the image, so
/// `stat` works, and opening fails with `ENOENT` (overlayfs looks the data up lazily,
/// at open, and logs "lazy lowerdata lookup failed"). With ordinary lower layers the
/// lookup itself fails with `EIO`. Either way no data is returned and the rest of the
/// tree stays readable.
#[test]
fn missing_object_fails_cleanly() {
    if skip_without_mounts("missing_object_fails_cleanly") {
        return;
    }
    let fx = Fixture::new();
    let empty_store = fx.new_dir("empty-store");
    let enoent = rustix::io::Errno::NOENT.raw_os_error();
    let eio = rustix::io::Errno::IO.raw_os_error();
    for mode in LayerMode::ALL {
        let target = MountGuard::new(fx.new_dir(&format!("mnt-{mode:?}")));
        mount(
            &fx.image,
            target.path(),
            &MountOptions::new([&empty_store])
                .scratch_dir(fx.dir.path())
                .layer_mode(mode),
        )
        .unwrap();
        for file in ["big", "sub/deep/er/nested", "link-a"] {
            let path = target.path().join(file);
            let err = std::fs::read(&path).unwrap_err();
            if mode == LayerMode::LegacyLower {
                assert_eq!(err.raw_os_error(), Some(eio), "{mode:?} {file}: {err}");
                let err = std::fs::symlink_metadata(&path).unwrap_err();
                assert_eq!(err.raw_os_error(), Some(eio), "{mode:?} {file}: {err}");
            } else {
                assert_eq!(err.raw_os_error(), Some(enoent), "{mode:?} {file}: {err}");
                let meta = std::fs::symlink_metadata(&path).unwrap();
                let want = std::fs::symlink_metadata(fx.source.join(file)).unwrap();
                assert_eq!(meta.len(), want.len(), "{mode:?} {file}");
            }
        }
        // Inline and empty files need no object; directories list.
        assert_eq!(
            std::fs::read(target.path().join("small-linked")).unwrap(),
            b"tiny"
        );
        assert!(std::fs::read(target.path().join("empty"))
            .unwrap()
            .is_empty());
        assert_eq!(
            std::fs::read_dir(target.path().join("sub/deep/er"))
                .unwrap()
                .count(),
            1,
            "{mode:?}"
        );
    }
}

#[test]
fn upper_layer_makes_the_mount_writable() {
    if skip_without_mounts("upper_layer_makes_the_mount_writable") {
        return;
    }
    let fx = Fixture::new();
    // Paths with the characters each interface must escape: `,` and `:` (option and
    // layer separators) and `\`.
    let odd = r"a,b:c\d";
    let store = fx.dir.path().join(format!("objects {odd}"));
    std::os::unix::fs::symlink(&fx.store, &store).unwrap();
    for mode in LayerMode::ALL {
        let upper = fx.new_dir(&format!("upper-{mode:?} {odd}"));
        let work = fx.new_dir(&format!("work-{mode:?} {odd}"));
        let target = MountGuard::new(fx.new_dir(&format!("mnt-{mode:?}")));
        mount(
            &fx.image,
            target.path(),
            &MountOptions::new([&store])
                .scratch_dir(fx.dir.path())
                .layer_mode(mode)
                .upper(&upper, &work),
        )
        .unwrap_or_else(|e| panic!("{mode:?}: {e}"));
        assert_eq!(
            std::fs::read(target.path().join("ext4097")).unwrap(),
            std::fs::read(fx.source.join("ext4097")).unwrap(),
            "{mode:?}: objects found through the odd basedir"
        );
        let t = target.path();
        std::fs::write(t.join("new-file"), b"written").unwrap();
        std::fs::write(t.join("ext4097"), b"replaced").unwrap();
        std::fs::remove_file(t.join("sym")).unwrap();
        assert_eq!(std::fs::read(upper.join("new-file")).unwrap(), b"written");
        assert_eq!(std::fs::read(upper.join("ext4097")).unwrap(), b"replaced");
        let meta = std::fs::symlink_metadata(upper.join("sym")).unwrap();
        assert!(
            std::os::unix::fs::FileTypeExt::is_char_device(&meta.file_type()),
            "{mode:?}: a deletion leaves a whiteout in the upper layer"
        );
        assert!(!t.join("sym").exists());
        // The image and the store are untouched.
        assert!(fx.source.join("sym").symlink_metadata().is_ok());
    }
    // Read-only with an upper layer: writes fail.
    let upper = fx.new_dir("upper-ro");
    let work = fx.new_dir("work-ro");
    let target = MountGuard::new(fx.new_dir("mnt-ro"));
    mount(
        &fx.image,
        target.path(),
        &fx.options().upper(&upper, &work).read_only(true),
    )
    .unwrap();
    let err = std::fs::write(target.path().join("new-file"), b"x").unwrap_err();
    assert_eq!(
        err.raw_os_error(),
        Some(rustix::io::Errno::ROFS.raw_os_error())
    );
}

/// Loop devices whose backing file is `backing` (by its reported path).
fn loop_devices_backed_by(backing: &str) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/sys/block").unwrap() {
        let p = e.unwrap().path();
        if let Ok(b) = std::fs::read_to_string(p.join("loop/backing_file")) {
            if b.trim() == backing {
                out.push(p.display().to_string());
            }
        }
    }
    out
}

/// Waits up to 2 s for `cond` (loop devices clear asynchronously).
fn eventually(cond: impl Fn() -> bool) -> bool {
    for _ in 0..40 {
        if cond() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    cond()
}

#[test]
fn nothing_is_left_behind() {
    if skip_without_mounts("nothing_is_left_behind") {
        return;
    }
    let fx = Fixture::new();
    let image = fx.image.display().to_string();
    for mode in LayerMode::ALL {
        for source in [ErofsSource::File, ErofsSource::LoopDevice] {
            let what = format!("{mode:?} from {source:?}");
            let scratch = fx.new_dir(&format!("scratch-{mode:?}-{source:?}"));
            let target = fx.new_dir(&format!("mnt-{mode:?}-{source:?}"));
            let guard = MountGuard::new(&target);
            mount(
                &fx.image,
                &target,
                &MountOptions::new([&fx.store])
                    .layer_mode(mode)
                    .erofs_source(source)
                    .snapshot(false)
                    .scratch_dir(&scratch),
            )
            .unwrap_or_else(|e| panic!("{what}: {e}"));
            // While mounted: one overlay, no EROFS mount anywhere in our tree, and the
            // temporary mount point (if one was used) is gone.
            let table = mounts_under(fx.dir.path());
            assert_eq!(table.len(), 1, "{what}: {table:?}");
            assert_eq!(table[0].mount_point, target, "{what}");
            assert!(
                !composefs_conformance::kernel::mountinfo()
                    .iter()
                    .any(|m| m.fstype == "erofs" && m.mount_point.starts_with(&scratch)),
                "{what}: the EROFS mount stayed attached"
            );
            assert_eq!(
                std::fs::read_dir(&scratch).unwrap().count(),
                0,
                "{what}: temporary directory left behind"
            );
            let loops = loop_devices_backed_by(&image);
            assert_eq!(
                loops.len(),
                usize::from(source == ErofsSource::LoopDevice),
                "{what}"
            );
            // A plain unmount works (nothing holds the mount busy) and frees everything.
            rustix::mount::unmount(&target, rustix::mount::UnmountFlags::empty())
                .unwrap_or_else(|e| panic!("{what}: umount: {e}"));
            drop(guard);
            assert!(mounts_under(fx.dir.path()).is_empty(), "{what}");
            assert!(
                eventually(|| loop_devices_backed_by(&image).is_empty()),
                "{what}: loop device not cleared"
            );
        }
    }
    // A failing mount leaves nothing either: the overlay step fails after EROFS was
    // mounted (and, in the path modes, attached on a temporary directory).
    for mode in LayerMode::ALL {
        let scratch = fx.new_dir(&format!("scratch-fail-{mode:?}"));
        let target = fx.new_dir(&format!("mnt-fail-{mode:?}"));
        let _guard = MountGuard::new(&target);
        let e = mount(
            &fx.image,
            &target,
            &MountOptions::new([fx.dir.path().join("no-such-store")])
                .layer_mode(mode)
                .erofs_source(ErofsSource::LoopDevice)
                .snapshot(false)
                .scratch_dir(&scratch),
        )
        .unwrap_err();
        assert!(e.errno().is_some(), "{mode:?}: {e}");
        assert!(mounts_under(fx.dir.path()).is_empty(), "{mode:?}");
        assert_eq!(std::fs::read_dir(&scratch).unwrap().count(), 0, "{mode:?}");
        assert!(
            eventually(|| loop_devices_backed_by(&image).is_empty()),
            "{mode:?}: loop device not cleared after a failure"
        );
    }
}

#[test]
fn missing_basedir_error_names_it() {
    if skip_without_mounts("missing_basedir_error_names_it") {
        return;
    }
    let fx = Fixture::new();
    let target = MountGuard::new(fx.new_dir("mnt"));
    let missing = fx.dir.path().join("no-such-store");
    let e = mount(&fx.image, target.path(), &MountOptions::new([&missing])).unwrap_err();
    let text = e.to_string();
    assert!(text.contains("no-such-store"), "{text}");
    assert_eq!(e.errno(), Some(rustix::io::Errno::NOENT), "{text}");
}

/// Corruptions of the hostile-suite base image that the kernel mounts anyway
/// (hardening catalogue rows 18, 9 and 10), with what the structural check says.
fn corrupted_images() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let base = read_data("images/hostile-base.img.gz");
    let sb = 1024;
    let mut nlink0 = base.clone();
    let nid = composefs_format::image::Image::open(&base)
        .unwrap()
        .lookup_path(b"/fifo")
        .unwrap()
        .nid();
    nlink0[(nid * 32) as usize + 6] = 0;
    let mut xattrs_gone = base.clone();
    xattrs_gone[sb + 44..sb + 48].copy_from_slice(&0x00FF_FFFFu32.to_le_bytes());
    let mut truncated = base.clone();
    truncated.truncate(3 * 4096);
    vec![
        ("link count 0 (row 18)", nlink0, "(/fifo): link count 0"),
        (
            "xattr_blkaddr past the end (row 9)",
            xattrs_gone,
            "outside the data area (starts at block 16777215)",
        ),
        (
            "truncated (row 10)",
            truncated,
            "outside the data area (starts at block 7)",
        ),
    ]
}

#[test]
fn safety_check_refuses_corrupted_images_the_kernel_would_mount() {
    if skip_without_mounts("safety_check_refuses_corrupted_images_the_kernel_would_mount") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("objects");
    std::fs::create_dir(&store).unwrap();
    let target = dir.path().join("mnt");
    std::fs::create_dir(&target).unwrap();
    let _guard = MountGuard::new(&target);
    for (what, bytes, says) in corrupted_images() {
        let image = dir.path().join("corrupted.cfs");
        std::fs::write(&image, &bytes).unwrap();
        // The kernel itself takes it: the refusals below are ours alone.
        mount(
            &image,
            &target,
            &MountOptions::new([&store]).check(ImageCheck::None),
        )
        .unwrap_or_else(|e| panic!("{what}: the kernel refused it too: {e}"));
        rustix::mount::unmount(&target, rustix::mount::UnmountFlags::empty()).unwrap();
        for check in [ImageCheck::Structure, ImageCheck::Canonical] {
            let e = mount(&image, &target, &MountOptions::new([&store]).check(check)).unwrap_err();
            match &e {
                MountError::CheckFailed { problems, total } => {
                    assert!(*total >= 1 && !problems.is_empty(), "{what}: {e}");
                    assert!(e.to_string().contains(says), "{what}: {e}");
                }
                other => panic!("{what}, {check:?}: expected a check failure, got {other}"),
            }
            assert!(
                mounts_under(dir.path()).is_empty(),
                "{what}, {check:?}: nothing mounted"
            );
        }
    }
}

/// A byte of the reserved area after the composefs header changed: every reader ignores
/// it, so the image is sound and the kernel mounts it, but our writer never makes it.
#[test]
fn canonical_check_refuses_an_image_our_writer_would_not_make() {
    if skip_without_mounts("canonical_check_refuses_an_image_our_writer_would_not_make") {
        return;
    }
    let fx = Fixture::new();
    let mut img = std::fs::read(&fx.image).unwrap();
    img[100] = 0x5a;
    let odd = fx.dir.path().join("odd.cfs");
    std::fs::write(&odd, &img).unwrap();
    let target = MountGuard::new(fx.new_dir("mnt"));
    let e = mount(
        &odd,
        target.path(),
        &fx.options().check(ImageCheck::Canonical),
    )
    .unwrap_err();
    assert!(matches!(e, MountError::NotCanonical(_)), "{e}");
    assert_eq!(
        e.to_string(),
        "image refused by the canonical check: not canonical: first difference at byte 100 \
         in the padding after the composefs header (bytes 32..1024)"
    );
    assert!(mounts_under(fx.dir.path()).is_empty());
    // The structural check (and the kernel) take it; the unmodified image is canonical.
    let done = mount(&odd, target.path(), &fx.options()).unwrap();
    assert_eq!(done.check, ImageCheck::Structure);
    rustix::mount::unmount(target.path(), rustix::mount::UnmountFlags::empty()).unwrap();
    let done = mount(
        &fx.image,
        target.path(),
        &fx.options().check(ImageCheck::Canonical),
    )
    .unwrap();
    assert_eq!(done.check, ImageCheck::Canonical);
}

#[test]
fn digest_option_needs_fs_verity_with_that_digest() {
    if skip_without_mounts("digest_option_needs_fs_verity_with_that_digest") {
        return;
    }
    let fx = Fixture::new();
    let target = MountGuard::new(fx.new_dir("mnt"));
    let digest = [0x5a; 32];
    let file = std::fs::File::open(&fx.image).unwrap();
    match composefs_std::verity::measure_verity(&file) {
        Err(composefs_std::verity::FsVerityError::Unsupported(_)) => {
            let e = mount(&fx.image, target.path(), &fx.options().digest(digest)).unwrap_err();
            assert!(matches!(e, MountError::VerityUnsupported(_)), "{e}");
            assert!(
                e.to_string()
                    .starts_with("fs-verity is not supported by this kernel or filesystem"),
                "{e}"
            );
        }
        Ok(None) => {
            let e = mount(&fx.image, target.path(), &fx.options().digest(digest)).unwrap_err();
            assert_eq!(e.to_string(), "image has no fs-verity");
            drop(file);
            composefs_std::verity::enable_verity(std::fs::File::open(&fx.image).unwrap()).unwrap();
            let actual =
                composefs_std::verity::measure_verity(std::fs::File::open(&fx.image).unwrap())
                    .unwrap()
                    .unwrap();
            let e = mount(&fx.image, target.path(), &fx.options().digest(digest)).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!(
                    "image has wrong fs-verity digest: expected {}, got {}",
                    "5a".repeat(32),
                    composefs_std::verity::to_hex(&actual)
                )
            );
            // A digest that differs only in its last byte is still wrong.
            let mut near = actual;
            near[31] ^= 1;
            assert!(mount(&fx.image, target.path(), &fx.options().digest(near)).is_err());
            let done = mount(&fx.image, target.path(), &fx.options().digest(actual)).unwrap();
            assert!(
                !done.snapshot,
                "an image with fs-verity is mounted directly"
            );
        }
        other => panic!("unexpected fs-verity state: {other:?}"),
    }
    assert!(mounts_under(fx.dir.path()).len() <= 1);
}

#[test]
fn verity_require_is_passed_to_overlayfs() {
    if skip_without_mounts("verity_require_is_passed_to_overlayfs") {
        return;
    }
    let fx = Fixture::new();
    for (verity, shown) in [
        (Verity::Require, true),
        (Verity::Try, true),
        (Verity::Off, false),
    ] {
        let target = MountGuard::new(fx.new_dir(&format!("mnt-{verity:?}")));
        mount(&fx.image, target.path(), &fx.options().verity(verity)).unwrap();
        let table = mounts_under(target.path());
        assert_eq!(
            table[0].super_options.contains("verity=require"),
            shown,
            "{verity:?}: {table:?}"
        );
    }
}

/// A user namespace (held by a `sleep` child) mapping uids 0..65536 to 100000.. and
/// gids 0..65536 to 200000.., and its path.
struct Userns(std::process::Child);

impl Userns {
    fn start() -> Option<Self> {
        let child = Command::new("unshare")
            .args(["--user", "sleep", "600"])
            .spawn()
            .ok()?;
        let ns = Self(child);
        let me = std::fs::read_link("/proc/self/ns/user").ok()?;
        // Wait until the child is inside its own namespace, then map it (as root, from
        // the parent namespace).
        if !eventually(|| std::fs::read_link(ns.path()).is_ok_and(|l| l != me)) {
            return None;
        }
        let pid = ns.0.id();
        std::fs::write(format!("/proc/{pid}/uid_map"), "0 100000 65536\n").ok()?;
        std::fs::write(format!("/proc/{pid}/gid_map"), "0 200000 65536\n").ok()?;
        Some(ns)
    }

    fn path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/{}/ns/user", self.0.id()))
    }
}

impl Drop for Userns {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn idmap_maps_owners_through_the_user_namespace() {
    if skip_without_mounts("idmap_maps_owners_through_the_user_namespace") {
        return;
    }
    let Some(ns) = Userns::start() else {
        return skip("idmap: cannot make a mapped user namespace with `unshare --user`");
    };
    let fx = Fixture::new();
    let target = MountGuard::new(fx.new_dir("mnt"));
    mount(&fx.image, target.path(), &fx.options().idmap(ns.path())).unwrap();
    let meta = |p: &str| std::fs::symlink_metadata(target.path().join(p)).unwrap();
    use std::os::unix::fs::MetadataExt;
    // root:root -> 100000:200000; 1000:1000 -> 101000:201000; outside the map -> 65534.
    assert_eq!(
        (meta("ext65").uid(), meta("ext65").gid()),
        (100_000, 200_000)
    );
    assert_eq!(
        (meta("ext4097").uid(), meta("ext4097").gid()),
        (101_000, 201_000)
    );
    assert_eq!((meta("sym").uid(), meta("sym").gid()), (65534, 65534));
    assert_eq!(meta("").uid(), 100_000);
    // Content still comes through.
    assert_eq!(
        std::fs::read(target.path().join("ext4097")).unwrap(),
        std::fs::read(fx.source.join("ext4097")).unwrap()
    );
}

#[test]
fn reference_mount_helper_mounts_our_images_the_same() {
    if skip_without_mounts("reference_mount_helper_mounts_our_images_the_same") {
        return;
    }
    let Some(tool) = reference_tool("mount.composefs") else {
        return skip("reference mount.composefs not installed");
    };
    let fx = Fixture::new();
    let ours = MountGuard::new(fx.new_dir("ours"));
    mount(&fx.image, ours.path(), &fx.options()).unwrap();
    let theirs = MountGuard::new(fx.new_dir("theirs"));
    let out = Command::new(tool)
        .arg("-o")
        .arg(format!("basedir={}", fx.store.display()))
        .arg(&fx.image)
        .arg(theirs.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected = fx.expected();
    assert_same_view(
        "reference mount.composefs",
        &expected,
        &snapshot(theirs.path(), READ_LIMIT),
    );
    assert_same_view("our mount", &expected, &snapshot(ours.path(), READ_LIMIT));
}

#[test]
fn reference_images_mount_with_our_helper() {
    if skip_without_mounts("reference_images_mount_with_our_helper") {
        return;
    }
    let Some(mk) = reference_tool("mkcomposefs") else {
        return skip("reference mkcomposefs not installed");
    };
    let fx = Fixture::new();
    // Directory mode of the reference: it scans the source and fills its own store.
    let ref_store = fx.new_dir("ref-objects");
    let ref_image = fx.dir.path().join("ref.cfs");
    let out = Command::new(mk)
        .arg(format!("--digest-store={}", ref_store.display()))
        .arg(&fx.source)
        .arg(&ref_image)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let target = MountGuard::new(fx.new_dir("mnt"));
    // Byte-identical writers: the reference's image passes our canonical check.
    mount(
        &ref_image,
        target.path(),
        &MountOptions::new([&ref_store])
            .scratch_dir(fx.dir.path())
            .check(ImageCheck::Canonical),
    )
    .unwrap();
    // The reference's directory mode gives every file its own inode with one link (it
    // does not detect hard links), and inlines small files; all else is the source.
    let mut expected = fx.expected();
    for e in expected.values_mut() {
        if e.nlink > 1 {
            e.nlink = 1;
        }
    }
    assert_same_view(
        "reference image",
        &expected,
        &snapshot(target.path(), READ_LIMIT),
    );
}
