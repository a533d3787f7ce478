//! composefs-fuse with `verity`: an object whose fs-verity digest differs from the image's
//! (same size, one byte changed) is refused with EIO, as is a file without a digest; a
//! correct object is served; an object rewritten in place after it was verified is
//! verified again. Without `verity` the same files are served. Needs root and /dev/fuse;
//! skips visibly elsewhere.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod fuse_support;

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use composefs_std::store::object_path;
use fuse_support::{build_image, dump, fuse_available, Entry, FuseMount, Kind, Rng};

fn eio(path: &Path) {
    let err = std::fs::read(path).expect_err(&path.display().to_string());
    assert_eq!(err.raw_os_error(), Some(5), "{}: {err}", path.display());
}

/// Flips one byte of a file in place (same size, same inode).
fn corrupt(path: &Path, at: u64) {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut b = [0u8];
    f.read_exact_at(&mut b, at).unwrap();
    f.write_all_at(&[b[0] ^ 0x5a], at).unwrap();
}

fn object(store: &Path, data: &[u8]) -> PathBuf {
    store.join(object_path(&composefs_format::verity::digest(data)))
}

#[test]
fn verity_refuses_wrong_and_missing_digests() {
    if !fuse_available("fuse verity") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let mut rng = Rng::new(11);
    let good = rng.bytes(1_048_576 + 3);
    let bad = rng.bytes(70_000);
    let rewritten = rng.bytes(5000);
    let nodigest = rng.bytes(4097);
    let tree = vec![
        Entry::new(b"/", Kind::Dir),
        Entry::new(
            b"/good",
            Kind::External {
                data: good.clone(),
                digest: true,
            },
        ),
        Entry::new(
            b"/bad",
            Kind::External {
                data: bad.clone(),
                digest: true,
            },
        ),
        Entry::new(
            b"/rewritten",
            Kind::External {
                data: rewritten.clone(),
                digest: true,
            },
        ),
        Entry::new(
            b"/nodigest",
            Kind::External {
                data: nodigest.clone(),
                digest: false,
            },
        ),
        Entry::new(b"/inline", Kind::Inline(b"in the image".to_vec())),
    ];
    let image = tmp.path().join("image.cfs");
    build_image(&dump(&tree, &store), &image);
    corrupt(&object(&store, &bad), 65_537);
    let opts = format!("source={},basedir={}", image.display(), store.display());

    // Without verity the corrupted object is served as it is, and so is the file
    // without a digest.
    let plain = FuseMount::start(&opts, &tmp.path().join("plain"));
    let served = std::fs::read(plain.dir.join("bad")).unwrap();
    assert_eq!(served.len(), bad.len());
    assert_ne!(served, bad);
    assert_eq!(std::fs::read(plain.dir.join("nodigest")).unwrap(), nodigest);
    assert!(plain.unmount().success());

    let mut mnt = FuseMount::start(&format!("{opts},verity"), &tmp.path().join("verity"));
    assert_eq!(std::fs::read(mnt.dir.join("good")).unwrap(), good);
    assert_eq!(
        std::fs::read(mnt.dir.join("inline")).unwrap(),
        b"in the image"
    );
    eio(&mnt.dir.join("bad"));
    eio(&mnt.dir.join("nodigest"));
    // Verified once, then rewritten in place: the next open measures it again.
    assert_eq!(std::fs::read(mnt.dir.join("rewritten")).unwrap(), rewritten);
    assert_eq!(std::fs::read(mnt.dir.join("rewritten")).unwrap(), rewritten);
    corrupt(&object(&store, &rewritten), 0);
    eio(&mnt.dir.join("rewritten"));
    // A corrupted object stays refused on every open, and a good one stays served.
    eio(&mnt.dir.join("bad"));
    assert_eq!(std::fs::read(mnt.dir.join("good")).unwrap(), good);

    let log = mnt.log();
    assert!(log.contains("fs-verity digest"), "{log}");
    assert!(log.contains("has no digest"), "{log}");
    assert!(mnt.alive());
    assert!(mnt.unmount().success());
}
