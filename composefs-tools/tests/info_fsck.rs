//! `composefs-info fsck` from the command line: output format and exit status.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, missing_docs)]

use std::process::Command;

use composefs_conformance::read_data;

fn info() -> Command {
    Command::new(env!("CARGO_BIN_EXE_composefs-info"))
}

#[test]
fn sound_image_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ok.img");
    std::fs::write(&path, read_data("images/hostile-base.img.gz")).unwrap();
    let out = info().arg("fsck").arg(&path).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(": ok ("));
}

#[test]
fn corrupted_image_exits_1_and_names_nid_and_path() {
    let dir = tempfile::tempdir().unwrap();
    let mut img = read_data("images/hostile-base.img.gz");
    let nid = composefs_format::image::Image::open(&img)
        .unwrap()
        .lookup_path(b"/fifo")
        .unwrap()
        .nid();
    let off = (nid * 32) as usize;
    img[off + 6] = 0;
    let path = dir.path().join("bad.img");
    std::fs::write(&path, &img).unwrap();
    let ok = dir.path().join("ok.img");
    std::fs::write(&ok, read_data("images/hostile-base.img.gz")).unwrap();
    let out = info().arg("fsck").arg(&ok).arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    let want = format!(
        "{}: nid {nid} (/fifo): link count 0 [offset {off}]",
        path.display()
    );
    assert!(text.lines().any(|l| l == want), "{text}");
}

#[test]
fn unreadable_image_and_bad_usage_exit_2() {
    let out = info()
        .arg("fsck")
        .arg("/nonexistent/image")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/image"));
    assert_eq!(info().arg("fsck").output().unwrap().status.code(), Some(2));
    assert_eq!(
        info().arg("frobnicate").output().unwrap().status.code(),
        Some(2)
    );
}

#[test]
fn help_describes_fsck() {
    let out = info().arg("--help").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("fsck"));
    let out = info().args(["fsck", "--help"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Exit status"));
}
