//! composefs-fuse never serves a file from outside its basedirs: redirects with `..`,
//! absolute redirects and redirects through a symlink inside the store are refused with
//! EIO (hardening catalogue row 40; the C composefs-fuse served such files). Needs root and
//! /dev/fuse; skips visibly elsewhere.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod fuse_support;

use std::path::Path;

use composefs_format::check::check_bytes;
use composefs_format::ErrorKind;
use fuse_support::{build_image, fuse_available, FuseMount};

/// Replaces the one occurrence of `from` in `img` by `to` (same length), so only an xattr
/// value changes and the name filter stays consistent.
fn patch(img: &mut [u8], from: &[u8], to: &[u8]) {
    assert_eq!(from.len(), to.len());
    let at: Vec<usize> = img
        .windows(from.len())
        .enumerate()
        .filter(|(_, w)| *w == from)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(at.len(), 1, "{}", String::from_utf8_lossy(from));
    img[at[0]..at[0] + to.len()].copy_from_slice(to);
}

fn read(path: &Path) -> std::io::Result<Vec<u8>> {
    std::fs::read(path)
}

#[test]
fn redirects_out_of_the_store_are_refused() {
    if !fuse_available("fuse redirects") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let store = t.join("store");
    std::fs::create_dir_all(store.join("ok")).unwrap();
    std::fs::create_dir_all(store.join("ab")).unwrap();
    std::fs::write(store.join("ok/obj"), b"GOOD!\n").unwrap();
    std::fs::write(t.join("secret"), b"SECRET").unwrap();
    std::os::unix::fs::symlink("..", store.join("ln")).unwrap();
    std::os::unix::fs::symlink("../../secret", store.join("ab/fin")).unwrap();
    // The absolute path of the secret, and a relative payload of the same length.
    let abs = t.join("secret").display().to_string();
    let abs_placeholder = format!("x{}", &abs[1..]);
    let dump = format!(
        "/ 0 40755 2 0 0 0 0.0 - - -\n\
         /absolute 6 100644 1 0 0 0 0.0 {abs_placeholder} - -\n\
         /dotdot 6 100644 1 0 0 0 0.0 aa/secret - -\n\
         /finalsym 6 100644 1 0 0 0 0.0 ab/fin - -\n\
         /good 6 100644 1 0 0 0 0.0 ok/obj - -\n\
         /middotdot 6 100644 1 0 0 0 0.0 ok/bb/cc/secret - -\n\
         /viasym 6 100644 1 0 0 0 0.0 ln/secret - -\n"
    );
    let image = t.join("image.cfs");
    build_image(dump.as_bytes(), &image);
    let mut img = std::fs::read(&image).unwrap();
    patch(&mut img, b"/aa/secret", b"/../secret");
    patch(&mut img, b"/ok/bb/cc/secret", b"/ok/../../secret");
    patch(
        &mut img,
        format!("/{abs_placeholder}").as_bytes(),
        format!("/{abs}").as_bytes(),
    );
    std::fs::write(&image, &img).unwrap();
    // The check sees exactly the three patched redirects, and nothing else (the name
    // filters still match).
    let report = check_bytes(&img);
    let problems: Vec<_> = report.problems().iter().map(|p| p.error.kind()).collect();
    assert_eq!(problems.len(), 3, "{problems:?}");
    assert!(problems
        .iter()
        .all(|k| matches!(k, ErrorKind::Redirect { .. })));

    let mut mnt = FuseMount::start(
        &format!("source={},basedir={}", image.display(), store.display()),
        &t.join("mnt"),
    );
    assert_eq!(read(&mnt.dir.join("good")).unwrap(), b"GOOD!\n");
    for name in ["dotdot", "middotdot", "absolute", "viasym", "finalsym"] {
        let path = mnt.dir.join(name);
        // Listed and stat-able like any file: only its content is refused.
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 6, "{name}");
        let err = read(&path).expect_err(name);
        assert_eq!(err.raw_os_error(), Some(5), "{name}: {err}");
    }
    let log = mnt.log();
    for what in [
        "overlay redirect is malformed",
        "refused",
        "not a regular file",
    ] {
        assert!(log.contains(what), "log lacks '{what}':\n{log}");
    }
    assert!(!log.contains("SECRET"));
    assert!(mnt.alive());
    assert!(mnt.unmount().success());
}
