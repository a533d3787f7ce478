//! The directory scanner: what it records for each kind of file, the flags, xattr limits,
//! hard links, the object store, sparse files and error messages. Byte identity with the
//! reference is tested in `composefs-tools/tests/mkcomposefs_dir.rs`.

use std::fs;
use std::io::Write;
use std::num::NonZeroUsize;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, MetadataExt};
use std::path::{Path, PathBuf};

use composefs_format::ondisk::{S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG};
use composefs_format::tree::{Mtime, Node, NodeId, Tree};
use composefs_std::scan::{scan, ScanError, ScanOptions, XattrMode, XattrProblem};
use composefs_std::store::{object_path, Store};
use composefs_std::verity;
use rustix::fs::{FileType, Mode, Timespec, Timestamps, XattrFlags, CWD};

fn options() -> ScanOptions {
    ScanOptions {
        threads: NonZeroUsize::new(2).unwrap(),
        ..ScanOptions::default()
    }
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|k| (k as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn write(path: &Path, data: &[u8]) {
    fs::File::create(path).unwrap().write_all(data).unwrap();
}

fn set_mtime(path: &Path, sec: i64, nsec: i64) {
    let t = Timespec {
        tv_sec: sec,
        tv_nsec: nsec,
    };
    let times = Timestamps {
        last_access: t,
        last_modification: t,
    };
    rustix::fs::utimensat(CWD, path, &times, rustix::fs::AtFlags::SYMLINK_NOFOLLOW).unwrap();
}

fn setxattr(path: &Path, name: &str, value: &[u8]) -> rustix::io::Result<()> {
    rustix::fs::lsetxattr(path, name, value, XattrFlags::empty())
}

fn node<'t>(tree: &'t Tree, path: &str) -> &'t Node {
    let id = tree
        .lookup_path(path.as_bytes())
        .unwrap_or_else(|| panic!("{path} not in the tree"));
    tree.get(id).unwrap()
}

fn paths(tree: &Tree) -> Vec<String> {
    let mut out = Vec::new();
    tree.walk(|p, _, _| {
        out.push(String::from_utf8_lossy(p).into_owned());
        Ok::<(), ()>(())
    })
    .unwrap();
    out
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// A small tree of every kind of file, with known times.
fn every_kind(root: &Path) {
    fs::create_dir(root.join("dir")).unwrap();
    write(&root.join("empty"), b"");
    write(&root.join("small"), &pattern(64, 1));
    write(&root.join("large"), &pattern(65, 2));
    write(&root.join("dir/big"), &pattern(300_000, 3));
    symlink("large", root.join("link")).unwrap();
    rustix::fs::mknodat(CWD, root.join("fifo"), FileType::Fifo, Mode::from(0o640), 0).unwrap();
    if is_root() {
        let dev = rustix::fs::makedev(1, 3);
        rustix::fs::mknodat(
            CWD,
            root.join("null"),
            FileType::CharacterDevice,
            Mode::from(0o600),
            dev,
        )
        .unwrap();
        rustix::fs::mknodat(
            CWD,
            root.join("wh"),
            FileType::CharacterDevice,
            Mode::from(0o600),
            0,
        )
        .unwrap();
    }
    for (k, name) in [
        "empty", "small", "large", "dir/big", "link", "fifo", "dir", "",
    ]
    .iter()
    .enumerate()
    {
        set_mtime(
            &root.join(name),
            1_600_000_000 + k as i64,
            123_456_789 + k as i64,
        );
    }
}

#[test]
fn records_lstat_fields_link_count_one_and_contents() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    fs::create_dir(&src).unwrap();
    every_kind(&src);
    let tree = scan(&src, &options(), None).unwrap();
    tree.validate().unwrap();

    let root = tree.root();
    assert_eq!(root.mode & S_IFMT, S_IFDIR);
    assert_eq!(
        root.mtime,
        Mtime {
            sec: 1_600_000_007,
            nsec: 123_456_796
        }
    );

    let empty = node(&tree, "/empty");
    let lstat_mode = fs::symlink_metadata(src.join("empty")).unwrap().mode();
    assert_eq!((empty.mode, empty.size, empty.nlink), (lstat_mode, 0, 1));
    assert_eq!(empty.mode & S_IFMT, S_IFREG);
    assert_eq!(
        (&empty.content, &empty.payload, &empty.digest),
        (&None, &None, &None)
    );
    assert_eq!(
        empty.mtime,
        Mtime {
            sec: 1_600_000_000,
            nsec: 123_456_789
        }
    );

    let small = node(&tree, "/small");
    assert_eq!(
        small.content.as_deref(),
        Some(&pattern(64, 1)[..]),
        "64 bytes are inline"
    );
    assert_eq!((&small.payload, &small.digest), (&None, &None));

    let large = node(&tree, "/large");
    let digest = composefs_format::verity::digest(&pattern(65, 2));
    assert_eq!(large.content, None, "65 bytes are external");
    assert_eq!(large.digest, Some(digest));
    assert_eq!(
        large.payload.as_deref(),
        Some(object_path(&digest).as_bytes())
    );
    assert_eq!(large.size, 65);

    let big = node(&tree, "/dir/big");
    assert_eq!(
        big.digest,
        Some(composefs_format::verity::digest(&pattern(300_000, 3)))
    );
    assert_eq!(
        big.mtime,
        Mtime {
            sec: 1_600_000_003,
            nsec: 123_456_792
        }
    );

    let link = node(&tree, "/link");
    assert_eq!(link.mode & S_IFMT, S_IFLNK);
    assert_eq!(link.payload.as_deref(), Some(&b"large"[..]));
    assert_eq!(
        link.mtime,
        Mtime {
            sec: 1_600_000_004,
            nsec: 123_456_793
        }
    );

    let fifo = node(&tree, "/fifo");
    assert_eq!((fifo.mode & S_IFMT, fifo.rdev), (S_IFIFO, 0));

    if is_root() {
        let null = node(&tree, "/null");
        assert_eq!(null.mode & S_IFMT, S_IFCHR);
        assert_eq!(null.rdev, 0x103);
        assert!(node(&tree, "/wh").is_whiteout());
    }
    for (_, n) in tree.iter() {
        assert_eq!(n.nlink, 1, "every link count is 1");
        assert_eq!(n.uid, rustix::process::geteuid().as_raw());
    }
    // The same tree again, on one thread: the same result.
    let again = scan(
        &src,
        &ScanOptions {
            threads: NonZeroUsize::MIN,
            ..options()
        },
        None,
    )
    .unwrap();
    assert_eq!(again, tree);
}

#[test]
fn use_epoch_and_skip_devices() {
    let dir = tempfile::tempdir().unwrap();
    every_kind(dir.path());
    let epoch = scan(
        dir.path(),
        &ScanOptions {
            use_epoch: true,
            ..options()
        },
        None,
    )
    .unwrap();
    assert!(epoch.iter().all(|(_, n)| n.mtime == Mtime::default()));

    let skipped = scan(
        dir.path(),
        &ScanOptions {
            skip_devices: true,
            ..options()
        },
        None,
    )
    .unwrap();
    let names = paths(&skipped);
    assert!(names.contains(&"/fifo".to_owned()), "FIFOs are not devices");
    assert!(
        !names.iter().any(|p| p == "/null" || p == "/wh"),
        "{names:?}"
    );
    let all = paths(&scan(dir.path(), &options(), None).unwrap());
    let devices = if is_root() { 2 } else { 0 };
    assert_eq!(all.len(), names.len() + devices);
}

#[test]
fn xattr_modes_select_names() {
    if !is_root() {
        return composefs_skip("trusted.* xattrs need root");
    }
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("f");
    write(&f, b"x");
    setxattr(&f, "user.a", b"1").unwrap();
    setxattr(&f, "trusted.b", b"2").unwrap();
    setxattr(&f, "trusted.overlay.c", b"3").unwrap();
    setxattr(dir.path(), "user.d", b"4").unwrap();
    symlink("f", dir.path().join("l")).unwrap();
    setxattr(&dir.path().join("l"), "trusted.e", b"5").unwrap();
    let keys = |mode| {
        let tree = scan(
            dir.path(),
            &ScanOptions {
                xattrs: mode,
                ..options()
            },
            None,
        )
        .unwrap();
        let mut out: Vec<String> = Vec::new();
        for path in ["/", "/f", "/l"] {
            let n = node(&tree, path);
            let mut ks: Vec<String> = n
                .xattrs
                .iter()
                .map(|x| {
                    format!(
                        "{path}:{}={}",
                        String::from_utf8_lossy(&x.key),
                        String::from_utf8_lossy(&x.value)
                    )
                })
                .collect();
            ks.sort();
            out.extend(ks);
        }
        out
    };
    assert_eq!(
        keys(XattrMode::All),
        [
            "/:user.d=4",
            "/f:trusted.b=2",
            "/f:trusted.overlay.c=3",
            "/f:user.a=1",
            "/l:trusted.e=5"
        ]
    );
    assert_eq!(keys(XattrMode::User), ["/:user.d=4", "/f:user.a=1"]);
    assert!(keys(XattrMode::Skip).is_empty());
}

fn composefs_skip(reason: &str) {
    eprintln!("SKIPPED: {reason}");
}

/// A directory on tmpfs, whose xattrs are not limited to one block as on ext4.
fn tmpfs_dir() -> Option<tempfile::TempDir> {
    let dir = tempfile::tempdir_in("/dev/shm").ok()?;
    let probe = dir.path().join("probe");
    write(&probe, b"");
    setxattr(&probe, "trusted.probe", &[0; 40_000]).ok()?;
    fs::remove_file(probe).ok()?;
    Some(dir)
}

#[test]
fn xattr_limits_are_enforced_with_the_path() {
    let Some(dir) = (if is_root() { tmpfs_dir() } else { None }) else {
        return composefs_skip("needs root and a tmpfs at /dev/shm with large trusted.* xattrs");
    };
    let root = dir.path();
    let f = root.join("big value");
    write(&f, b"x");
    setxattr(&f, "trusted.v", &[7; 65535]).unwrap();
    // 12 + 7 + 9 + 65535 is over the budget of 32767.
    match scan(root, &options(), None) {
        Err(ScanError::Xattr {
            path,
            problem: XattrProblem::Budget { needed },
            ..
        }) => {
            assert_eq!(path, f);
            assert_eq!(needed, 12 + 7 + 9 + 65535);
        }
        other => panic!("{other:?}"),
    }
    setxattr(&f, "trusted.v", &[7; 65536]).unwrap();
    match scan(root, &options(), None) {
        Err(
            e @ ScanError::Xattr {
                problem: XattrProblem::ValueTooLong { .. },
                ..
            },
        ) => {
            let text = e.to_string();
            assert!(
                text.contains("big value") && text.contains("trusted.v"),
                "{text}"
            );
        }
        other => panic!("{other:?}"),
    }
    // Exactly at the budget: accepted.
    let budget = 32767 - 12 - 7 - "trusted.v".len();
    setxattr(&f, "trusted.v", &vec![7; budget]).unwrap();
    let tree = scan(root, &options(), None).unwrap();
    assert_eq!(node(&tree, "/big value").xattrs[0].value.len(), budget);
    setxattr(&f, "user.one.more", b"").unwrap();
    assert!(matches!(
        scan(root, &options(), None),
        Err(ScanError::Xattr {
            problem: XattrProblem::Budget { .. },
            ..
        })
    ));
    // Only what is kept counts: with --user-xattrs the big trusted value is not read.
    let user = scan(
        root,
        &ScanOptions {
            xattrs: XattrMode::User,
            ..options()
        },
        None,
    )
    .unwrap();
    assert_eq!(node(&user, "/big value").xattrs.len(), 1);
}

#[test]
fn hard_links_are_separate_inodes_unless_asked() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    fs::create_dir_all(root.join("a/b")).unwrap();
    write(&root.join("z"), &pattern(1000, 9));
    fs::hard_link(root.join("z"), root.join("a/b/y")).unwrap();
    fs::hard_link(root.join("z"), root.join("a/x")).unwrap();
    write(&root.join("single"), b"one name");

    let plain = scan(root, &options(), None).unwrap();
    plain.validate().unwrap();
    let ids: Vec<NodeId> = ["/z", "/a/b/y", "/a/x"]
        .iter()
        .map(|p| plain.lookup_path(p.as_bytes()).unwrap())
        .collect();
    assert!(ids[0] != ids[1] && ids[1] != ids[2] && ids[0] != ids[2]);
    assert!(plain.iter().all(|(_, n)| n.nlink == 1));

    let linked = scan(
        root,
        &ScanOptions {
            hardlinks: true,
            ..options()
        },
        None,
    )
    .unwrap();
    linked.validate().unwrap();
    let id = linked.lookup_path(b"/z").unwrap();
    assert_eq!(linked.lookup_path(b"/a/b/y"), Some(id));
    assert_eq!(linked.lookup_path(b"/a/x"), Some(id));
    assert_eq!(linked.get(id).unwrap().nlink, 3);
    assert_eq!(node(&linked, "/single").nlink, 1);
    // The primary entry is the first in sorted depth-first order: /a/b/y.
    let mut primary = Vec::new();
    linked
        .walk(|p, e, n| {
            if n == id && e.is_some_and(|e| !e.hardlink) {
                primary.push(p.to_vec());
            }
            Ok::<(), ()>(())
        })
        .unwrap();
    assert_eq!(primary, [b"/a/b/y".to_vec()]);
    assert_eq!(linked.len(), plain.len() - 2);
}

#[test]
fn the_store_gets_every_external_file_once() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    fs::create_dir_all(src.join("d")).unwrap();
    write(&src.join("a"), &pattern(5000, 1));
    write(&src.join("d/a-again"), &pattern(5000, 1));
    write(&src.join("b"), &pattern(3 << 20, 2));
    write(&src.join("inline"), &pattern(64, 3));
    write(&src.join("empty"), b"");
    let store = Store::create(dir.path().join("store")).unwrap();
    let tree = scan(&src, &options(), Some(&store)).unwrap();
    let report = store.verify().unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!(report.valid, 2);
    for path in ["/a", "/d/a-again", "/b"] {
        let digest = node(&tree, path).digest.unwrap();
        let object = store.path_of(&digest);
        assert_eq!(fs::metadata(&object).unwrap().mode() & 0o7777, 0o644);
        assert_eq!(
            verity::digest_file(&fs::File::open(object).unwrap(), NonZeroUsize::MIN).unwrap(),
            digest
        );
    }
    // A second scan finds everything stored and changes nothing.
    let again = scan(&src, &options(), Some(&store)).unwrap();
    assert_eq!(again, tree);
    assert_eq!(store.verify().unwrap().valid, 2);
}

/// Bytes this process has read so far through `read`-like system calls (`rchar` of
/// `/proc/self/io`, all threads).
fn bytes_read() -> u64 {
    let io = fs::read_to_string("/proc/self/io").unwrap();
    io.lines()
        .find_map(|l| l.strip_prefix("rchar: "))
        .unwrap()
        .parse()
        .unwrap()
}

/// A 4 GiB + 1 byte file with one extent of data: its holes are neither read nor
/// written, so it is hashed at once and its object stays sparse.
#[test]
fn a_sparse_multi_gib_file_is_hashed_and_stored_sparse() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    fs::create_dir(&src).unwrap();
    let path = src.join("sparse");
    let f = fs::File::create(&path).unwrap();
    f.set_len((4 << 30) + 1).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&f, &pattern(10_000, 5), 1 << 30).unwrap();
    drop(f);
    let expected = verity::digest_file(
        &fs::File::open(&path).unwrap(),
        NonZeroUsize::new(2).unwrap(),
    )
    .unwrap();

    let before = bytes_read();
    let tree = scan(&src, &options(), None).unwrap();
    assert_eq!(node(&tree, "/sparse").digest, Some(expected));
    assert_eq!(node(&tree, "/sparse").size, (4 << 30) + 1);
    let store = Store::create(dir.path().join("store")).unwrap();
    let stored = scan(&src, &options(), Some(&store)).unwrap();
    // Reading the holes would add 2 x 4 GiB; other tests of this process read far less
    // than 1 GiB meanwhile.
    let read = bytes_read() - before;
    assert!(read < 1 << 30, "holes were read: {read} bytes");
    assert_eq!(stored, tree);
    let object = fs::metadata(store.path_of(&expected)).unwrap();
    assert_eq!(object.len(), (4 << 30) + 1);
    assert!(object.blocks() * 512 < 1 << 20, "the object is not sparse");
}

#[test]
fn a_source_that_is_not_a_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    write(&file, b"x");
    symlink(dir.path(), dir.path().join("link")).unwrap();
    for path in [file, dir.path().join("link")] {
        match scan(&path, &options(), None) {
            Err(ScanError::NotADirectory { path: p }) => assert_eq!(p, path),
            other => panic!("{other:?}"),
        }
    }
    match scan(&dir.path().join("missing"), &options(), None) {
        Err(e @ ScanError::Io { op: "open", .. }) => {
            assert!(e.to_string().contains("missing"), "{e}")
        }
        other => panic!("{other:?}"),
    }
}

/// Names are bytes: anything but `/` and NUL survives, sorted by bytes.
#[test]
fn names_are_kept_as_bytes_and_sorted() {
    let dir = tempfile::tempdir().unwrap();
    let names: [&[u8]; 6] = [b"b", b"a b", b"new\nline", b"x=y\\z", b"\xff\xfe", b"-dash"];
    for name in names {
        write(&dir.path().join(std::ffi::OsStr::from_bytes(name)), b"");
    }
    let tree = scan(dir.path(), &options(), None).unwrap();
    let got: Vec<&[u8]> = tree
        .root()
        .children
        .iter()
        .map(|e| e.name.as_slice())
        .collect();
    let mut want = names.to_vec();
    want.sort();
    assert_eq!(got, want);
}

/// Runs as an unprivileged user (a child process when the tests run as root): a file
/// the scanner cannot open, and a directory it cannot list, are named in the error.
#[test]
fn unreadable_files_and_directories_are_named() {
    const CHILD: &str = "COMPOSEFS_SCAN_TEST_CHILD";
    if let Some(dir) = std::env::var_os(CHILD) {
        return unreadable_child(Path::new(&dir));
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    fs::set_permissions(root, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    if !is_root() {
        return unreadable_child(root);
    }
    let nobody = (
        rustix::fs::Uid::from_raw(65534),
        rustix::fs::Gid::from_raw(65534),
    );
    rustix::fs::chown(root, Some(nobody.0), Some(nobody.1)).unwrap();
    use std::os::unix::process::CommandExt;
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "unreadable_files_and_directories_are_named",
            "--nocapture",
        ])
        .env(CHILD, root)
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    let log =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("1 passed"), "{log}");
}

fn unreadable_child(root: &Path) {
    let src = root.join("src");
    let _ = fs::remove_dir_all(&src);
    fs::create_dir_all(src.join("ok")).unwrap();
    let secret = src.join("ok/secret");
    write(&secret, b"more than nothing");
    fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o000)).unwrap();
    match scan(&src, &options(), None) {
        Err(e @ ScanError::Io { op: "open", .. }) => {
            assert!(
                e.to_string().starts_with(&format!("{}:", secret.display())),
                "{e}"
            );
        }
        other => panic!("{other:?}"),
    }
    // An empty unreadable file is never opened, as in the reference.
    fs::remove_file(&secret).unwrap();
    write(&secret, b"");
    fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o000)).unwrap();
    scan(&src, &options(), None).unwrap();
    let locked = src.join("ok/locked");
    fs::create_dir(&locked).unwrap();
    fs::set_permissions(&locked, std::os::unix::fs::PermissionsExt::from_mode(0o000)).unwrap();
    match scan(&src, &options(), None) {
        Err(ScanError::Io { path, .. }) => assert_eq!(path, PathBuf::from(&locked)),
        other => panic!("{other:?}"),
    }
    fs::set_permissions(&locked, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
}

/// The store is filled while the source is walked, so it must not be inside it.
#[test]
fn a_store_inside_the_source_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    fs::create_dir_all(src.join("sub")).unwrap();
    write(&src.join("sub/f"), &pattern(100, 1));
    let store = Store::create(src.join("sub/store")).unwrap();
    match scan(&src, &options(), Some(&store)) {
        Err(ScanError::StoreInSource { path }) => assert_eq!(path, src.join("sub/store")),
        other => panic!("{other:?}"),
    }
    let store = Store::open(&src).unwrap();
    assert!(matches!(
        scan(&src, &options(), Some(&store)),
        Err(ScanError::StoreInSource { .. })
    ));
    // Next to the source is fine.
    let store = Store::create(dir.path().join("store")).unwrap();
    scan(&src, &options(), Some(&store)).unwrap();
}
