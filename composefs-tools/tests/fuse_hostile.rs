//! Hostile images never crash composefs-fuse: each corruption of the committed
//! `hostile-base` image (one per hardening-catalogue class that survives opening the
//! image, plus seeded random byte mutations) is mounted and every operation is exercised
//! on every reachable entry; failures are EIO and logged, the server is still alive
//! afterwards and unmounts cleanly. Images broken in the header, superblock or root are
//! refused at start with a message, as is any corrupted image with `check`. Needs root and
//! /dev/fuse; skips visibly elsewhere.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::cast_possible_truncation,
    missing_docs
)]

mod fuse_support;

use std::path::{Path, PathBuf};

use composefs_conformance::read_data;
use composefs_format::image::Image;
use fuse_support::{fuse_available, FuseMount, Rng};

fn base() -> Vec<u8> {
    read_data("images/hostile-base.img.gz")
}

/// Offsets in the base image, found with the reader.
struct Map(Vec<u8>);

impl Map {
    fn image(&self) -> Image<'_> {
        Image::open(&self.0).unwrap()
    }
    fn inode(&self, path: &str) -> usize {
        self.image().lookup_path(path.as_bytes()).unwrap().offset() as usize
    }
    fn xattr_area(&self, path: &str) -> usize {
        let ino = self.image().lookup_path(path.as_bytes()).unwrap();
        ino.xattr_offset() as usize
    }
    fn xattr(&self, path: &str, name: &str) -> usize {
        let ino = self.image().lookup_path(path.as_bytes()).unwrap();
        let x = ino
            .xattrs()
            .unwrap()
            .find(name.as_bytes())
            .unwrap()
            .unwrap();
        x.offset() as usize
    }
    fn dirent(&self, dir: &str, name: &str) -> usize {
        let d = self
            .image()
            .lookup_path(dir.as_bytes())
            .unwrap()
            .dir()
            .unwrap();
        d.lookup(name.as_bytes()).unwrap().unwrap().offset() as usize
    }
    fn name(&self, dir: &str, name: &str) -> usize {
        let d = self
            .image()
            .lookup_path(dir.as_bytes())
            .unwrap()
            .dir()
            .unwrap();
        let e = d.lookup(name.as_bytes()).unwrap().unwrap();
        e.name().as_ptr() as usize - self.0.as_ptr() as usize
    }
    fn redirect_value(&self, path: &str) -> usize {
        let at = self.xattr(path, "trusted.overlay.redirect");
        // Entry header (4 bytes), then the name suffix "overlay.redirect".
        at + 4 + "overlay.redirect".len()
    }
}

fn put(img: &mut [u8], off: usize, bytes: &[u8]) {
    img[off..off + bytes.len()].copy_from_slice(bytes);
}

type Mutation = fn(&Map, &mut Vec<u8>);

/// (catalogue row, what, mutation): each leaves the header, superblock and root valid,
/// so the server starts and meets the corruption while serving.
fn cases() -> Vec<(u32, &'static str, Mutation)> {
    vec![
        (11, "unknown i_format bit on /dir", |m, i| {
            let o = m.inode("/dir");
            i[o] |= 0x20;
        }),
        (13, "bogus S_IFMT on /plain", |m, i| {
            let o = m.inode("/plain");
            put(i, o + 4, &0o170_644u16.to_le_bytes());
        }),
        (14, "huge directory size on /dir", |m, i| {
            let o = m.inode("/dir");
            put(i, o + 8, &0xFFFF_FF00u32.to_le_bytes());
        }),
        (15, "inline tail crossing its block on /inline", |m, i| {
            let o = m.inode("/inline");
            put(i, o + 8, &3000u32.to_le_bytes());
        }),
        (16, "FLAT_PLAIN block past the end on /plain", |m, i| {
            let o = m.inode("/plain");
            put(i, o + 16, &0x00FF_FFFFu32.to_le_bytes());
        }),
        (17, "symlink of size 0", |m, i| {
            let o = m.inode("/link");
            put(i, o + 8, &0u32.to_le_bytes());
        }),
        (17, "symlink longer than PATH_MAX", |m, i| {
            let o = m.inode("/longlink");
            put(i, o + 8, &5000u32.to_le_bytes());
        }),
        (19, "unknown chunk format bits on /ext", |m, i| {
            let o = m.inode("/ext");
            put(i, o + 16, &0x00F0u16.to_le_bytes());
        }),
        (22, "first nameoff 0 in /dir", |m, i| {
            let o = m.dirent("/dir", "entry-000-nnnnnnnnnnnnnnnnnnnnnnnnnnnnnn");
            let first = o - o % 4096;
            put(i, first + 8, &0u16.to_le_bytes());
        }),
        (23, "trailing nameoff 0xFFFF in the root", |m, i| {
            let o = m.dirent("/", "whiteout");
            put(i, o + 8, &0xFFFFu16.to_le_bytes());
        }),
        (25, "a '/' inside a name in /dir", |m, i| {
            let o = m.name("/dir", "entry-100-nnnnnnnnnnnnnnnnnnnnnnnnnnnnnn");
            i[o + 3] = b'/';
        }),
        (28, "a directory containing the root", |m, i| {
            let o = m.dirent("/dir/sub", "leaf");
            let root = m.image().root_nid();
            put(i, o, &root.to_le_bytes());
        }),
        (28, "a directory containing itself", |m, i| {
            let o = m.dirent("/dir/sub", "leaf");
            let sub = m.inode("/dir/sub") as u64 / 32;
            put(i, o, &sub.to_le_bytes());
        }),
        (30, "dirent type directory for a fifo", |m, i| {
            let o = m.dirent("/", "fifo");
            i[o + 10] = 2;
        }),
        (32, "huge dirent nid", |m, i| {
            let o = m.dirent("/", "inline");
            put(i, o, &(u64::MAX / 32).to_le_bytes());
        }),
        (32, "dirent nid 1 (FUSE's root inode number)", |m, i| {
            let o = m.dirent("/", "inline");
            put(i, o, &1u64.to_le_bytes());
        }),
        (32, "dirent nid in the middle of an inode", |m, i| {
            let o = m.dirent("/", "inline");
            let nid = m.inode("/plain") as u64 / 32 + 1;
            put(i, o, &nid.to_le_bytes());
        }),
        (33, "huge xattr icount on /ext", |m, i| {
            let o = m.inode("/ext");
            put(i, o + 2, &0xFFFFu16.to_le_bytes());
        }),
        (34, "xattr icount 1 on /inline", |m, i| {
            let o = m.inode("/inline");
            put(i, o + 2, &1u16.to_le_bytes());
        }),
        (
            35,
            "shared count larger than the xattr area on /ext",
            |m, i| {
                let o = m.xattr_area("/ext");
                i[o + 4] = 200;
            },
        ),
        (36, "shared xattr id past the end on /ext", |m, i| {
            let o = m.xattr_area("/ext");
            put(i, o + 12, &0x1000_0000u32.to_le_bytes());
        }),
        (37, "xattr name length past the area on /inline", |m, i| {
            let o = m.xattr("/inline", "user.inline");
            i[o] = 255;
        }),
        (38, "unknown xattr name index on /inline", |m, i| {
            let o = m.xattr("/inline", "user.inline");
            i[o + 1] = 9;
        }),
        (40, "redirect with '..' on /ext", |m, i| {
            let o = m.redirect_value("/ext");
            put(i, o, b"/../");
        }),
        (41, "metacopy of 35 bytes on /ext", |m, i| {
            let o = m.xattr("/ext", "trusted.overlay.metacopy");
            put(i, o + 2, &35u16.to_le_bytes());
        }),
    ]
}

/// Exercises every operation on every entry reachable from `root` (bounded), and returns
/// how many operations failed with EIO. Any other failure than EIO, ENOENT, ENOTDIR,
/// ELOOP or ENODATA fails the test.
fn exercise(root: &Path) -> usize {
    let allowed = [5, 2, 20, 40, 61, 36];
    let mut eio = 0;
    let mut note = |r: std::io::Result<()>, what: &str| {
        if let Err(e) = r {
            let code = e.raw_os_error().unwrap_or(0);
            assert!(allowed.contains(&code), "{what}: unexpected error {e}");
            if code == 5 {
                eio += 1;
            }
        }
    };
    let mut stack: Vec<(PathBuf, usize)> = vec![(root.to_owned(), 0)];
    let mut seen = 0;
    while let Some((path, depth)) = stack.pop() {
        seen += 1;
        if seen > 3000 {
            break;
        }
        let what = path.display().to_string();
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) => {
                note(Err(e), &what);
                continue;
            }
        };
        note(
            rustix::fs::llistxattr(&path, &mut vec![0u8; 65_536])
                .map(drop)
                .map_err(Into::into),
            &what,
        );
        for name in [
            "user.inline",
            "user.shared",
            "trusted.overlay.x",
            "security.selinux",
        ] {
            note(
                rustix::fs::lgetxattr(&path, name, &mut vec![0u8; 65_536])
                    .map(drop)
                    .map_err(Into::into),
                &what,
            );
        }
        let ft = meta.file_type();
        if ft.is_symlink() {
            note(std::fs::read_link(&path).map(drop), &what);
        } else if ft.is_file() {
            note(std::fs::read(&path).map(drop), &what);
        } else if ft.is_dir() && depth < 8 {
            match std::fs::read_dir(&path) {
                Ok(entries) => {
                    for e in entries {
                        match e {
                            Ok(e) => stack.push((e.path(), depth + 1)),
                            Err(e) => note(Err(e), &what),
                        }
                    }
                }
                Err(e) => note(Err(e), &what),
            }
        }
    }
    eio
}

fn serve(img: &[u8], tmp: &Path, label: &str) {
    let image = tmp.join("image.cfs");
    std::fs::write(&image, img).unwrap();
    let store = tmp.join("store");
    std::fs::create_dir_all(&store).unwrap();
    let opts = format!("source={},basedir={}", image.display(), store.display());
    match FuseMount::try_start(&opts, &tmp.join("mnt")) {
        Ok(mut mnt) => {
            let eio = exercise(&mnt.dir);
            let log = mnt.log();
            assert!(!log.contains("panicked"), "{label}: {log}");
            assert!(mnt.alive(), "{label}: the server died: {log}");
            assert!(
                eio == 0 || log.contains("composefs-fuse:"),
                "{label}: {eio} EIO results but nothing logged"
            );
            let status = mnt.unmount();
            assert!(status.success(), "{label}: exit {status}: {log}");
        }
        Err((status, log)) => {
            // Refused at start: a message and exit status 1, never a crash.
            assert_eq!(status.code(), Some(1), "{label}: {log}");
            assert!(
                log.contains("not a valid composefs image"),
                "{label}: {log}"
            );
            assert!(!log.contains("panicked"), "{label}: {log}");
        }
    }
}

#[test]
fn catalogue_corruptions_become_eio_and_the_server_survives() {
    if !fuse_available("fuse hostile images") {
        return;
    }
    let map = Map(base());
    let tmp = tempfile::tempdir().unwrap();
    for (k, (row, what, mutate)) in cases().into_iter().enumerate() {
        let mut img = map.0.clone();
        mutate(&map, &mut img);
        assert_ne!(img, map.0, "row {row}: {what}: no change");
        let dir = tmp.path().join(format!("case{k}"));
        std::fs::create_dir_all(&dir).unwrap();
        let image = dir.join("image.cfs");
        std::fs::write(&image, &img).unwrap();
        // Every case must start (the corruption is below the root) and hit EIO somewhere.
        let opts = format!("source={}", image.display());
        let mut mnt = FuseMount::start(&opts, &dir.join("mnt"));
        let eio = exercise(&mnt.dir);
        let log = mnt.log();
        assert!(eio > 0, "row {row}: {what}: no EIO; log:\n{log}");
        assert!(
            log.contains("composefs-fuse:"),
            "row {row}: {what}: nothing logged"
        );
        assert!(!log.contains("panicked"), "row {row}: {what}: {log}");
        assert!(mnt.alive(), "row {row}: {what}: the server died: {log}");
        assert!(mnt.unmount().success(), "row {row}: {what}: {log}");
    }
}

#[test]
fn random_mutations_never_crash_the_server() {
    if !fuse_available("fuse random hostile images") {
        return;
    }
    let base = base();
    let root = Image::open(&base).unwrap().root().unwrap();
    let (root_start, root_end) = (root.offset() as usize, root.extent_end() as usize);
    let tmp = tempfile::tempdir().unwrap();
    let mut rng = Rng::new(2024);
    for k in 0..40 {
        let mut img = base.clone();
        for _ in 0..1 + rng.below(12) {
            // Anywhere after the superblock, sparing the root inode on most images.
            let at = 1152 + rng.below(img.len() as u64 - 1152) as usize;
            if (root_start..root_end).contains(&at) && k % 4 != 0 {
                continue;
            }
            img[at] = rng.next() as u8;
        }
        let dir = tmp.path().join(format!("r{k}"));
        std::fs::create_dir_all(&dir).unwrap();
        serve(&img, &dir, &format!("random image {k}"));
    }
}

#[test]
fn broken_headers_and_check_refuse_to_mount() {
    if !fuse_available("fuse refusals") {
        return;
    }
    let map = Map(base());
    let tmp = tempfile::tempdir().unwrap();
    let mut bad = map.0.clone();
    put(&mut bad, 1024, &0u32.to_le_bytes());
    let image = tmp.path().join("bad-magic.cfs");
    std::fs::write(&image, &bad).unwrap();
    let Err((status, log)) = FuseMount::try_start(
        &format!("source={}", image.display()),
        &tmp.path().join("m1"),
    ) else {
        panic!("an image with a bad EROFS magic was mounted");
    };
    assert_eq!(status.code(), Some(1));
    assert!(log.contains("not a valid composefs image"), "{log}");

    // `check` refuses a corruption that plain opening does not see, naming the path.
    let (_, _, mutate) = cases()[1];
    let mut img = map.0.clone();
    mutate(&map, &mut img);
    let image = tmp.path().join("bad-plain.cfs");
    std::fs::write(&image, &img).unwrap();
    let opts = format!("source={},check", image.display());
    let Err((status, log)) = FuseMount::try_start(&opts, &tmp.path().join("m2")) else {
        panic!("check accepted a corrupted image");
    };
    assert_eq!(status.code(), Some(1));
    assert!(
        log.contains("check failed") && log.contains("/plain"),
        "{log}"
    );
    // The valid base image passes the check and mounts.
    let image = tmp.path().join("base.cfs");
    std::fs::write(&image, &map.0).unwrap();
    let mnt = FuseMount::start(
        &format!("source={},check", image.display()),
        &tmp.path().join("m3"),
    );
    assert!(mnt.unmount().success());
}

/// A dirent naming nid 1 is an invalid inode, not FUSE's root inode number.
#[test]
fn a_dirent_naming_nid_1_does_not_alias_the_root() {
    if !fuse_available("fuse nid 1") {
        return;
    }
    let map = Map(base());
    let mut img = map.0.clone();
    put(&mut img, map.dirent("/", "inline"), &1u64.to_le_bytes());
    let tmp = tempfile::tempdir().unwrap();
    let image = tmp.path().join("image.cfs");
    std::fs::write(&image, &img).unwrap();
    let mnt = FuseMount::start(
        &format!("source={}", image.display()),
        &tmp.path().join("m"),
    );
    let err = std::fs::symlink_metadata(mnt.dir.join("inline")).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(5), "{err}");
    let log = mnt.log();
    assert!(
        log.contains("nid 1 points into the header or superblock"),
        "{log}"
    );
    assert!(mnt.unmount().success());
}
