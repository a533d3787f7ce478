//! `mount.composefs` from the command line: usage, option errors (no mount needed), and
//! real mounts of a committed image (root only; skipped visibly elsewhere).
#![allow(clippy::unwrap_used, clippy::indexing_slicing, missing_docs)]

use std::path::Path;
use std::process::{Command, Output};

use composefs_conformance::kernel::{mounts_under, skip_without_mounts, MountGuard};
use composefs_conformance::read_data;

fn tool() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mount-composefs"))
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs the tool with `-o opts` on a nonexistent image, for errors found before any
/// file is opened.
fn with_options(opts: &str) -> Output {
    tool()
        .args(["-o", opts, "/nonexistent/image.cfs", "/nonexistent/mnt"])
        .output()
        .unwrap()
}

#[test]
fn help_lists_every_option_and_exits_0() {
    let out = tool().arg("--help").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    for opt in [
        "basedir=",
        "digest=",
        "verity",
        "tryverity",
        "upperdir=",
        "workdir=",
        "idmap=",
        "ro | rw",
        "check=",
        "nosnapshot",
        "-t <TYPE>",
        "-o <OPTS>",
    ] {
        assert!(text.contains(opt), "--help lacks {opt}:\n{text}");
    }
}

#[test]
fn usage_errors_exit_1() {
    let out = tool().output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("<IMAGE>"), "{}", stderr(&out));
    let out = tool()
        .args(["-t", "ext4", "-o", "basedir=/o", "a", "b"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("unsupported filesystem type 'ext4'"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn option_errors_name_the_option_and_exit_1() {
    for (opts, want) in [
        ("basedir=/o,foo", "unknown option foo"),
        (
            "basedir=/o::/p",
            "path 2 of the ':'-separated list is empty",
        ),
        ("ro", "no basedir= given"),
        ("basedir=/o,upperdir=/u", "upperdir= needs workdir= as well"),
        ("basedir=/o,workdir=/w", "workdir= needs upperdir= as well"),
        (
            "basedir=/o,digest=abcd",
            "expected 64 hexadecimal digits, got 4",
        ),
        (
            "basedir=/o,check=maybe",
            "check=maybe: expected none, structure or canonical",
        ),
        ("basedir=/o,verity=1", "option verity takes no value"),
    ] {
        let out = with_options(opts);
        assert_eq!(out.status.code(), Some(1), "{opts}");
        let err = stderr(&out);
        assert!(err.starts_with("mount.composefs: "), "{opts}: {err}");
        assert!(err.contains(want), "{opts}: {err}");
    }
}

#[test]
fn missing_image_is_named() {
    let out = with_options("basedir=/o");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("cannot open image /nonexistent/image.cfs"),
        "{}",
        stderr(&out)
    );
}

struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new(image: &[u8]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("image.cfs"), image).unwrap();
        std::fs::create_dir(dir.path().join("objects")).unwrap();
        std::fs::create_dir(dir.path().join("mnt")).unwrap();
        Self { dir }
    }

    fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }
}

#[test]
fn mounts_as_a_mount_helper_would_call_it() {
    if skip_without_mounts("mounts_as_a_mount_helper_would_call_it") {
        return;
    }
    let s = Setup::new(&read_data("images/hostile-base.img.gz"));
    let mnt = MountGuard::new(s.path("mnt"));
    // mount(8) passes the positionals first, then the options.
    let out = tool()
        .arg(s.path("image.cfs"))
        .arg(mnt.path())
        .args(["-v", "-t", "composefs", "-o", "ro"])
        .arg("-o")
        .arg(format!("basedir={}", s.path("objects").display()))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let said = String::from_utf8(out.stdout).unwrap();
    assert!(said.starts_with("mounted "), "{said}");
    assert!(said.contains("check structure"), "{said}");
    assert!(mnt.path().join("fifo").symlink_metadata().is_ok());
    let table = mounts_under(s.dir.path());
    assert_eq!(table.len(), 1, "{table:?}");
    assert!(table[0].mount_options.starts_with("ro"), "{table:?}");
}

#[test]
fn corrupted_image_is_refused_with_the_problem() {
    if skip_without_mounts("corrupted_image_is_refused_with_the_problem") {
        return;
    }
    let mut img = read_data("images/hostile-base.img.gz");
    let nid = composefs_format::image::Image::open(&img)
        .unwrap()
        .lookup_path(b"/fifo")
        .unwrap()
        .nid();
    img[(nid * 32) as usize + 6] = 0;
    let s = Setup::new(&img);
    let _mnt = MountGuard::new(s.path("mnt"));
    let run = |extra: &str| {
        tool()
            .arg("-o")
            .arg(format!("basedir={}{extra}", s.path("objects").display()))
            .arg(s.path("image.cfs"))
            .arg(s.path("mnt"))
            .output()
            .unwrap()
    };
    let out = run("");
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("image refused by the structural check (1 problem): nid "),
        "{err}"
    );
    assert!(err.contains("(/fifo): link count 0"), "{err}");
    assert!(mounts_under(s.dir.path()).is_empty());
    // The reference's behaviour, on request: the kernel takes this image.
    let out = run(",check=none");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(mounts_under(s.dir.path()).len(), 1);
}

#[test]
fn digest_without_fs_verity_says_so() {
    if skip_without_mounts("digest_without_fs_verity_says_so") {
        return;
    }
    let s = Setup::new(&read_data("images/hostile-base.img.gz"));
    let _mnt = MountGuard::new(s.path("mnt"));
    let file = std::fs::File::open(s.path("image.cfs")).unwrap();
    let want = match composefs_std::verity::measure_verity(&file) {
        Err(composefs_std::verity::FsVerityError::Unsupported(_)) => {
            "fs-verity is not supported by this kernel or filesystem"
        }
        Ok(None) => "image has no fs-verity",
        other => panic!("unexpected fs-verity state of a fresh file: {other:?}"),
    };
    let out = tool()
        .arg("-o")
        .arg(format!(
            "basedir={},digest={}",
            s.path("objects").display(),
            "12".repeat(32)
        ))
        .arg(s.path("image.cfs"))
        .arg(s.path("mnt"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains(want), "{err}");
    assert!(mounts_under(Path::new(s.dir.path())).is_empty());
}
