//! Depth: the scanner walks trees far deeper than `PATH_MAX` and than its descriptor budget
//! on a small stack. This process runs with a soft limit of 128 open files, so a walk that
//! kept one descriptor per level would fail.

use std::num::NonZeroUsize;
use std::os::fd::OwnedFd;

use composefs_std::scan::{scan, ScanOptions};
use composefs_std::store::Store;
use rustix::fs::{Mode, OFlags};
use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};

const FD_LIMIT: u64 = 128;

/// The tests run one at a time: one counts this process's open descriptors.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn limit_descriptors() {
    let hard = getrlimit(Resource::Nofile).maximum;
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(FD_LIMIT),
            maximum: hard,
        },
    )
    .unwrap();
}

fn mkdir_in(parent: &OwnedFd, name: &str) -> OwnedFd {
    rustix::fs::mkdirat(parent, name, Mode::from(0o755)).unwrap();
    rustix::fs::openat(
        parent,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .unwrap()
}

fn file_in(parent: &OwnedFd, name: &str, data: &[u8]) {
    let fd = rustix::fs::openat(
        parent,
        name,
        OFlags::WRONLY | OFlags::CREATE | OFlags::CLOEXEC,
        Mode::from(0o644),
    )
    .unwrap();
    rustix::io::write(&fd, data).unwrap();
}

fn open_dir(path: &std::path::Path) -> OwnedFd {
    rustix::fs::open(path, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()).unwrap()
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// A chain of 3000 directories (a path of 6000 bytes) with a file at the bottom, scanned
/// on a thread with a 128 KiB stack.
#[test]
fn a_chain_deeper_than_path_max_on_a_small_stack() {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    limit_descriptors();
    let dir = tempfile::tempdir().unwrap();
    let mut fd = open_dir(dir.path());
    for _ in 0..3000 {
        fd = mkdir_in(&fd, "d");
    }
    file_in(&fd, "bottom", &[42; 100]);
    drop(fd);
    let src = dir.path().to_owned();
    let tree = std::thread::Builder::new()
        .stack_size(128 * 1024)
        .spawn(move || {
            let options = ScanOptions {
                threads: NonZeroUsize::new(2).unwrap(),
                ..ScanOptions::default()
            };
            scan(&src, &options, None)
        })
        .unwrap()
        .join()
        .unwrap()
        .unwrap();
    assert_eq!(tree.len(), 3002);
    let bottom = "/d".repeat(3000) + "/bottom";
    let id = tree.lookup_path(bottom.as_bytes()).unwrap();
    assert_eq!(
        tree.get(id).unwrap().digest,
        Some(composefs_format::verity::digest(&[42; 100]))
    );
}

/// 300 levels, each with a deep branch and three leaf directories: leaves left to visit
/// on every level would need 300 descriptors; the walk closes and reopens them instead,
/// stores every file, and leaks no descriptor.
#[test]
fn a_comb_deeper_than_the_descriptor_budget() {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    limit_descriptors();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir(&src).unwrap();
    let mut fd = open_dir(&src);
    for level in 0..300u32 {
        for leaf in ["b1", "b2", "b3"] {
            let leaf_fd = mkdir_in(&fd, leaf);
            file_in(&leaf_fd, "f", format!("{leaf} at level {level}, long enough to be stored externally in the object store").as_bytes());
        }
        file_in(&fd, "c", b"small");
        fd = mkdir_in(&fd, "a");
    }
    drop(fd);
    let before = open_fds();
    let store = Store::create(dir.path().join("store")).unwrap();
    let options = ScanOptions {
        threads: NonZeroUsize::new(3).unwrap(),
        ..ScanOptions::default()
    };
    let tree = scan(&src, &options, Some(&store)).unwrap();
    drop(store);
    assert_eq!(open_fds(), before, "descriptors leaked");
    tree.validate().unwrap();
    // Per level: a, b1..b3, their files, c.
    assert_eq!(tree.len(), 1 + 300 * 8);
    let deepest = "/a".repeat(299) + "/b2/f";
    let id = tree.lookup_path(deepest.as_bytes()).unwrap();
    let expected = composefs_format::verity::digest(
        b"b2 at level 299, long enough to be stored externally in the object store",
    );
    assert_eq!(tree.get(id).unwrap().digest, Some(expected));
    let store = Store::open(dir.path().join("store")).unwrap();
    let report = store.verify().unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!(report.valid, 900);
}
