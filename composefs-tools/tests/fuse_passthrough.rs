//! composefs-fuse hands external files to the kernel (FUSE passthrough) so that reads go
//! straight to the backing objects, and falls back to reading them itself with
//! `nopassthrough` or where the kernel cannot.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod fuse_support;

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use fuse_support::{fuse_available, FuseMount};

const BIG: usize = 8 << 20;

/// The contents of the source tree's 8 MiB file (`seed` varies them).
fn big_contents(seed: usize) -> Vec<u8> {
    (0..BIG).map(|k| (k * seed + k / 4099) as u8).collect()
}

/// Writes `files` into `t/src` and builds `t/img.cfs` with its objects in `t/store`.
fn build(t: &Path, files: &[(&str, &[u8])]) {
    let src = t.join("src");
    std::fs::create_dir_all(&src).unwrap();
    for (name, data) in files {
        std::fs::write(src.join(name), data).unwrap();
    }
    let status = Command::new(env!("CARGO_BIN_EXE_mkcomposefs"))
        .arg(format!("--digest-store={}", t.join("store").display()))
        .arg(&src)
        .arg(t.join("img.cfs"))
        .status()
        .unwrap();
    assert!(status.success());
}

/// For a test that can run here: a temporary directory holding the image of an 8 MiB
/// file `big` (returned) and a small `small`, and their store.
fn setup(test: &str) -> Option<(tempfile::TempDir, Vec<u8>)> {
    if !fuse_available(test) {
        return None;
    }
    let tmp = tempfile::tempdir().unwrap();
    let big = big_contents(7);
    build(tmp.path(), &[("big", &big), ("small", b"hello\n")]);
    Some((tmp, big))
}

fn options(t: &Path, extra: &str) -> String {
    format!(
        "source={},basedir={}{extra}",
        t.join("img.cfs").display(),
        t.join("store").display()
    )
}

/// Whether the server said it could not use passthrough (then the first test skips).
fn refused(log: &str) -> bool {
    log.contains("no passthrough") || log.contains("passthrough refused")
}

#[test]
fn reads_bypass_the_server_with_passthrough_and_not_without() {
    let Some((tmp, big)) = setup("reads_bypass_the_server_with_passthrough_and_not_without") else {
        return;
    };
    let t = tmp.path();

    let mnt = FuseMount::start(&options(t, ""), &t.join("mnt"));
    let before = mnt.bytes_read();
    let got = std::fs::read(mnt.dir.join("big")).unwrap();
    let read = mnt.bytes_read() - before;
    if refused(&mnt.log()) {
        composefs_conformance::skip(&format!(
            "passthrough: the kernel refused it here: {}",
            mnt.log()
        ));
    } else {
        assert!(got == big, "passthrough read returned other bytes");
        assert!(
            read < (BIG / 8) as u64,
            "the server read {read} bytes for an {BIG}-byte file with passthrough"
        );
    }
    assert_eq!(mnt.unmount().code(), Some(0));

    let mnt = FuseMount::start(&options(t, ",nopassthrough"), &t.join("mnt2"));
    let before = mnt.bytes_read();
    let got = std::fs::read(mnt.dir.join("big")).unwrap();
    let read = mnt.bytes_read() - before;
    assert!(got == big, "read through the server returned other bytes");
    assert!(
        read >= BIG as u64,
        "nopassthrough: the server read only {read} bytes of an {BIG}-byte file"
    );
    assert!(!refused(&mnt.log()), "{}", mnt.log());
    assert_eq!(mnt.unmount().code(), Some(0));
}

/// Several handles of one inode share its passthrough registration; closing them in any
/// order keeps the others readable, and a later open registers the object again.
#[test]
fn handles_of_one_file_share_and_outlive_each_other() {
    let Some((tmp, big)) = setup("handles_of_one_file_share_and_outlive_each_other") else {
        return;
    };
    let t = tmp.path();
    let mut mnt = FuseMount::start(&options(t, ""), &t.join("mnt"));
    let path = mnt.dir.join("big");
    let at = |f: &File, offset: usize| {
        let mut buf = vec![0u8; 4096];
        f.read_exact_at(&mut buf, offset as u64).unwrap();
        assert!(buf[..] == big[offset..offset + 4096], "offset {offset}");
    };
    let a = File::open(&path).unwrap();
    let b = File::open(&path).unwrap();
    at(&a, 0);
    at(&b, BIG - 4096);
    drop(a);
    at(&b, BIG / 2);
    let c = File::open(&path).unwrap();
    drop(b);
    at(&c, 12_345);
    drop(c);
    let mut all = Vec::new();
    File::open(&path).unwrap().read_to_end(&mut all).unwrap();
    assert!(all == big);
    assert_eq!(std::fs::read(mnt.dir.join("small")).unwrap(), b"hello\n");
    assert!(mnt.alive(), "{}", mnt.log());
    assert_eq!(mnt.unmount().code(), Some(0));
}

/// O_DIRECT passes through as well (beside ordinary handles), so the object's filesystem
/// decides alignment exactly as on a kernel mount: every read gives what the same
/// O_DIRECT read of the source file (on the same filesystem) gives, bytes or error.
#[test]
fn direct_reads_follow_the_backing_filesystem_like_a_kernel_mount() {
    let Some((tmp, big)) = setup("direct_reads_follow_the_backing_filesystem_like_a_kernel_mount")
    else {
        return;
    };
    let t = tmp.path();
    let mnt = FuseMount::start(&options(t, ""), &t.join("mnt"));
    if refused(&mnt.log()) {
        composefs_conformance::skip("O_DIRECT passthrough: the kernel refused passthrough");
        return;
    }
    let direct = |path: &PathBuf| {
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(rustix::fs::OFlags::DIRECT.bits() as i32)
            .open(path)
    };
    let ordinary = File::open(mnt.dir.join("big")).unwrap();
    let fuse = direct(&mnt.dir.join("big")).unwrap();
    let source = direct(&t.join("src/big")).unwrap();
    // Buffers aligned to 4096 bytes: only the offset and length vary.
    let mut fuse_buf = vec![0u8; 4 * 4096];
    let mut source_buf = vec![0u8; 4 * 4096];
    let skip = fuse_buf.as_ptr().align_offset(4096);
    let fb = &mut fuse_buf[skip..skip + 3 * 4096];
    let skip = source_buf.as_ptr().align_offset(4096);
    let sb = &mut source_buf[skip..skip + 3 * 4096];
    for (offset, len) in [(0, 4096), (4096, 8192), (1, 100), (4095, 4096), (8192, 512)] {
        let want = source
            .read_at(&mut sb[..len], offset)
            .map_err(|e| e.raw_os_error());
        let got = fuse
            .read_at(&mut fb[..len], offset)
            .map_err(|e| e.raw_os_error());
        assert_eq!(got, want, "O_DIRECT read of {len} at {offset}");
        if let Ok(n) = got {
            assert_eq!(fb[..n], sb[..n], "O_DIRECT bytes at {offset}");
        }
        if offset == 0 {
            assert!(got.is_ok(), "an aligned O_DIRECT read works");
        }
    }
    let mut buf = vec![0u8; 100];
    ordinary.read_exact_at(&mut buf, 1).unwrap();
    assert!(
        buf[..] == big[1..101],
        "the ordinary handle beside O_DIRECT"
    );
    drop((ordinary, fuse));
    assert_eq!(mnt.unmount().code(), Some(0));
}

/// An object the kernel will not take for passthrough (here: one on an overlayfs, which
/// the server's stacking depth of 1 excludes) is read through the server, the refusal is
/// logged once, and a file already open in passthrough can still be opened again.
#[test]
fn a_refused_object_falls_back_without_breaking_open_files() {
    if !fuse_available("a_refused_object_falls_back_without_breaking_open_files")
        || !fuse_support::kernel_mount_available("a_refused_object_falls_back")
    {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let big = big_contents(13);
    let other: Vec<u8> = (0..300_000usize).map(|k| (k * 5 + 1) as u8).collect();
    build(t, &[("big", &big), ("other", &other)]);
    let store = t.join("store");
    // Move `other`'s object into a directory served through a read-only overlayfs.
    let digest = composefs_std::verity::digest_bytes(&other, std::num::NonZeroUsize::MIN);
    let rel = composefs_std::store::object_path(&digest);
    let lower = t.join("lower");
    std::fs::create_dir_all(lower.join(&rel[..2])).unwrap();
    std::fs::rename(store.join(&rel), lower.join(&rel)).unwrap();
    let (overlay, empty) = (t.join("overlay"), t.join("empty"));
    std::fs::create_dir_all(&overlay).unwrap();
    std::fs::create_dir_all(&empty).unwrap();
    // A read-only overlayfs needs two lower layers.
    let mounted = Command::new("mount")
        .args(["-t", "overlay", "overlay", "-o"])
        .arg(format!(
            "ro,lowerdir={}:{}",
            lower.display(),
            empty.display()
        ))
        .arg(&overlay)
        .status()
        .unwrap();
    assert!(mounted.success());

    let opts = format!(
        "source={},basedir={}:{}",
        t.join("img.cfs").display(),
        store.display(),
        overlay.display()
    );
    let mut mnt = FuseMount::start(&opts, &t.join("mnt"));
    if mnt.log().contains("no passthrough") {
        composefs_conformance::skip("fallback: the kernel offers no passthrough");
    } else {
        let first = File::open(mnt.dir.join("big")).unwrap();
        assert_eq!(std::fs::read(mnt.dir.join("other")).unwrap(), other);
        assert!(mnt.log().contains("passthrough refused"), "{}", mnt.log());
        // `big` is still registered: a second open must pass through again.
        assert_eq!(std::fs::read(mnt.dir.join("big")).unwrap(), big);
        let mut buf = vec![0u8; 4096];
        first.read_exact_at(&mut buf, 4096).unwrap();
        assert!(buf[..] == big[4096..8192]);
        drop(first);
        // New opens go through the server from now on.
        assert_eq!(std::fs::read(mnt.dir.join("big")).unwrap(), big);
        assert_eq!(mnt.log().matches("passthrough refused").count(), 1);
    }
    assert!(mnt.alive(), "{}", mnt.log());
    assert_eq!(mnt.unmount().code(), Some(0));
    assert!(Command::new("umount")
        .arg(&overlay)
        .status()
        .unwrap()
        .success());
}
