//! `mkcomposefs SOURCEDIR IMAGE` against the reference: on a tree built here with every
//! kind of file, both write byte-identical images and identical object stores (names,
//! modes and contents), with each flag. Also `--hardlinks` (ours only), a sparse 4 GiB
//! file, images on stdout, and the error cases. Skips visibly without the reference tools;
//! the tree needs root (device nodes, `trusted.*` xattrs, owners), so the differential
//! tests skip without it too.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, FileExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use composefs_conformance::{dir_names, reference_tool, sha256_hex, skip};
use rustix::fs::{AtFlags, FileType, Gid, Mode, Timespec, Timestamps, Uid, XattrFlags, CWD};

fn ours() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mkcomposefs"))
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// The reference mkcomposefs, or a visible skip (also when not root).
fn reference() -> Option<PathBuf> {
    if !is_root() {
        skip("the source tree needs root (device nodes, trusted.* xattrs, owners)");
        return None;
    }
    let tool = reference_tool("mkcomposefs");
    if tool.is_none() {
        skip("reference mkcomposefs not installed");
    }
    tool
}

/// Deterministic bytes.
fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn write(path: &Path, data: &[u8]) {
    fs::File::create(path).unwrap().write_all(data).unwrap();
}

fn xattr(path: &Path, name: &str, value: &[u8]) {
    rustix::fs::lsetxattr(path, name, value, XattrFlags::empty())
        .unwrap_or_else(|e| panic!("{}: {name}: {e}", path.display()));
}

fn mknod(path: &Path, kind: FileType, mode: u32, major: u32, minor: u32) {
    rustix::fs::mknodat(
        CWD,
        path,
        kind,
        Mode::from(mode),
        rustix::fs::makedev(major, minor),
    )
    .unwrap();
}

fn name(bytes: &[u8]) -> &OsStr {
    OsStr::from_bytes(bytes)
}

/// The source tree: files of many sizes (duplicates, zeros, a sparse one), symlinks up to
/// 4095 bytes, xattrs (user, trusted, trusted.overlay to be escaped, shared by many files),
/// a FIFO, devices, a whiteout, names needing escapes, a deep path, a large directory, hard
/// links, odd modes and owners, and nanosecond mtimes everywhere.
fn build_tree(root: &Path) {
    fs::create_dir(root).unwrap();
    let sizes = [0usize, 1, 63, 64, 65, 4095, 4096, 4097, (1 << 20) + 1];
    for (k, size) in sizes.iter().enumerate() {
        write(
            &root.join(format!("size-{size}")),
            &bytes(*size, k as u64 + 1),
        );
    }
    fs::create_dir(root.join("dups")).unwrap();
    for n in 0..3 {
        write(&root.join(format!("dups/copy-{n}")), &bytes(5000, 99));
    }
    write(&root.join("zeros"), &vec![0; 20_000]);
    let sparse = fs::File::create(root.join("sparse")).unwrap();
    sparse.set_len((16 << 20) + 3).unwrap();
    sparse.write_all_at(&bytes(7000, 5), 5 << 20).unwrap();
    drop(sparse);

    symlink("size-1", root.join("link")).unwrap();
    symlink("a".repeat(4095), root.join("link-4095")).unwrap();
    symlink("/etc/passwd", root.join("link-abs")).unwrap();
    symlink("../../elsewhere", root.join("link-up")).unwrap();

    let x = root.join("xattrs");
    fs::create_dir(&x).unwrap();
    write(&x.join("file"), &bytes(100, 7));
    xattr(&x.join("file"), "user.note", b"hello world");
    xattr(&x.join("file"), "trusted.secret", &bytes(300, 8));
    xattr(&x.join("file"), "trusted.overlay.custom", b"escape me");
    xattr(&x.join("file"), "user.overlay.kept", b"as is");
    xattr(&x.join("file"), "user.empty", b"");
    xattr(&x, "trusted.dir", b"on a directory");
    symlink("file", x.join("symlink")).unwrap();
    xattr(&x.join("symlink"), "trusted.on-link", b"1");
    for n in 0..6 {
        let f = x.join(format!("shared-{n}"));
        write(&f, &bytes(10 * n, 20 + n as u64));
        xattr(&f, "user.shared", b"same value everywhere");
        xattr(&f, "trusted.shared", b"also shared");
    }
    xattr(root, "user.root", b"on the root");

    let s = root.join("special");
    fs::create_dir(&s).unwrap();
    mknod(&s.join("fifo"), FileType::Fifo, 0o644, 0, 0);
    mknod(&s.join("null"), FileType::CharacterDevice, 0o666, 1, 3);
    mknod(&s.join("loop"), FileType::BlockDevice, 0o660, 7, 42);
    mknod(
        &s.join("big-dev"),
        FileType::CharacterDevice,
        0o600,
        4000,
        1 << 19,
    );
    let w = root.join("whiteouts");
    fs::create_dir(&w).unwrap();
    mknod(&w.join("gone"), FileType::CharacterDevice, 0o000, 0, 0);
    write(&w.join("kept"), b"kept");

    let n = root.join("names");
    fs::create_dir(&n).unwrap();
    let odd: [&[u8]; 9] = [
        b"with space",
        b"new\nline",
        b"tab\there",
        b"eq=ual",
        b"back\\slash",
        b"high\xff\xfe\x80",
        b"-dash",
        b"!bang",
        b"\x01control",
    ];
    for (k, o) in odd.iter().enumerate() {
        write(&n.join(name(o)), &bytes(k * 30, k as u64));
    }
    write(&n.join("n".repeat(255)), b"longest name");

    let mut deep = root.join("deep");
    for level in 0..60 {
        deep = deep.join(format!("level-{level}"));
    }
    fs::create_dir_all(&deep).unwrap();
    write(&deep.join("bottom"), &bytes(1000, 60));

    let many = root.join("many");
    fs::create_dir(&many).unwrap();
    for k in 0..300 {
        write(
            &many.join(format!("entry-with-a-longer-name-{k:04}")),
            &bytes(k % 90, k as u64),
        );
    }

    let h = root.join("links");
    fs::create_dir_all(h.join("sub")).unwrap();
    write(&h.join("original"), &bytes(1000, 70));
    fs::hard_link(h.join("original"), h.join("sub/second")).unwrap();
    fs::hard_link(h.join("original"), h.join("a-third")).unwrap();
    write(&h.join("small"), b"tiny");
    fs::hard_link(h.join("small"), h.join("sub/small-too")).unwrap();
    symlink("original", h.join("symlink")).unwrap();
    rustix::fs::linkat(
        CWD,
        h.join("symlink"),
        CWD,
        h.join("sub/symlink-link"),
        AtFlags::empty(),
    )
    .unwrap();

    let m = root.join("modes");
    fs::create_dir(&m).unwrap();
    for (file, mode, owner) in [
        ("setuid", 0o4755, (0, 0)),
        ("none", 0o000, (1234, 5678)),
        ("big-owner", 0o640, (70000, 70001)),
    ] {
        let f = m.join(file);
        write(&f, &bytes(80, mode as u64));
        fs::set_permissions(&f, fs::Permissions::from_mode(mode)).unwrap();
        rustix::fs::chown(
            &f,
            Some(Uid::from_raw(owner.0)),
            Some(Gid::from_raw(owner.1)),
        )
        .unwrap();
    }
    fs::create_dir(m.join("sticky")).unwrap();
    fs::set_permissions(m.join("sticky"), fs::Permissions::from_mode(0o1777)).unwrap();
    fs::create_dir(m.join("empty-dir")).unwrap();

    set_times(root);
}

/// Gives every entry its own mtime with nanoseconds (children before their directory).
fn set_times(root: &Path) {
    let mut all = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_dir() {
                stack.push(entry.path());
            }
            all.push(entry.path());
        }
        all.push(dir);
    }
    all.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
    for (k, path) in all.iter().enumerate() {
        let t = Timespec {
            tv_sec: 1_700_000_000 + (k as i64) * 3_601,
            tv_nsec: (k as i64 * 7_919_777) % 1_000_000_000,
        };
        let times = Timestamps {
            last_access: t,
            last_modification: t,
        };
        rustix::fs::utimensat(CWD, path, &times, AtFlags::SYMLINK_NOFOLLOW).unwrap();
    }
}

/// Every file and directory of a store: relative path, mode, and sha256 of the content.
fn store_listing(store: &Path) -> BTreeMap<String, (u32, String)> {
    let mut out = BTreeMap::new();
    if !store.exists() {
        return out;
    }
    let mut stack = vec![store.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = fs::symlink_metadata(&path).unwrap();
            let rel = path
                .strip_prefix(store)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let content = if meta.is_dir() {
                stack.push(path);
                String::new()
            } else {
                sha256_hex(&fs::read(&path).unwrap())
            };
            out.insert(rel, (meta.mode(), content));
        }
    }
    out
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap()
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// What one tool produced.
#[derive(Debug, PartialEq)]
struct Produced {
    image: String,
    stdout: Vec<u8>,
    store: BTreeMap<String, (u32, String)>,
}

fn produce(tool: Command, src: &Path, work: &Path, flags: &[&str], store: bool) -> Produced {
    let _ = fs::remove_dir_all(work);
    fs::create_dir_all(work).unwrap();
    let image = work.join("image.cfs");
    let mut cmd = tool;
    cmd.args(flags);
    if store {
        cmd.arg(format!("--digest-store={}", work.join("store").display()));
    }
    let out = run(cmd.arg(src).arg(&image));
    assert!(out.status.success(), "{flags:?}: {}", text(&out));
    Produced {
        image: sha256_hex(&fs::read(&image).unwrap()),
        stdout: out.stdout,
        store: store_listing(&work.join("store")),
    }
}

/// Runs both tools with `flags` and asserts that they agree.
fn agree(reference: &Path, src: &Path, work: &Path, flags: &[&str]) -> Produced {
    let theirs = produce(Command::new(reference), src, &work.join("ref"), flags, true);
    let ours = produce(ours(), src, &work.join("ours"), flags, true);
    assert_eq!(ours.image, theirs.image, "images differ with {flags:?}");
    assert_eq!(ours.stdout, theirs.stdout, "outputs differ with {flags:?}");
    assert_eq!(ours.store, theirs.store, "stores differ with {flags:?}");
    ours
}

#[test]
fn directory_mode_matches_the_reference_with_every_flag() {
    let Some(reference) = reference() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    build_tree(&src);
    let plain = agree(&reference, &src, &dir.path().join("plain"), &[]);
    // Every object: the external files, deduplicated (three copies are one object).
    assert!(plain.store.len() > 20, "{:?}", plain.store.keys());
    for flags in [
        &["--use-epoch"][..],
        &["--skip-devices"],
        &["--skip-xattrs"],
        &["--user-xattrs"],
        &["--print-digest"],
        &["--min-version=0", "--max-version=0"],
        &[
            "--use-epoch",
            "--skip-devices",
            "--user-xattrs",
            "--print-digest",
        ],
    ] {
        let got = agree(&reference, &src, &dir.path().join("flags"), flags);
        assert_eq!(got.store, plain.store, "{flags:?} stores the same objects");
        if flags.contains(&"--print-digest") {
            assert_eq!(
                got.stdout.len(),
                65,
                "{:?}",
                String::from_utf8_lossy(&got.stdout)
            );
        } else {
            assert_ne!(got.image, plain.image, "{flags:?} changes the image");
        }
    }
    // Thread counts change nothing.
    for threads in ["--threads=1", "--threads=3", "--threads=16"] {
        let got = produce(ours(), &src, &dir.path().join("threads"), &[threads], true);
        assert_eq!(got, plain, "{threads}");
    }
}

#[test]
fn print_digest_only_and_stdout_match_the_reference() {
    let Some(reference) = reference() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    build_tree(&src);
    let digest_only = |tool: &Path| {
        let out = run(Command::new(tool).arg("--print-digest-only").arg(&src));
        assert!(out.status.success(), "{}", text(&out));
        out.stdout
    };
    let ours_bin = PathBuf::from(env!("CARGO_BIN_EXE_mkcomposefs"));
    assert_eq!(digest_only(&ours_bin), digest_only(&reference));
    let to_stdout = |tool: &Path| {
        let out = run(Command::new(tool).arg(&src).arg("-"));
        assert!(out.status.success(), "{}", text(&out));
        out.stdout
    };
    let image = to_stdout(&ours_bin);
    assert!(image.len() > 4096);
    assert_eq!(image, to_stdout(&reference));
}

/// A 4 GiB + 1 byte sparse file: the same image as the reference (which reads and hashes
/// every zero), and with a store an object that stays sparse and has the right digest.
/// That the holes are not read is shown in-process by composefs-std's scan tests.
#[test]
fn a_sparse_4_gib_file_matches_the_reference() {
    let Some(reference) = reference() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    fs::create_dir(&src).unwrap();
    let f = fs::File::create(src.join("huge")).unwrap();
    f.set_len((4 << 30) + 1).unwrap();
    f.write_all_at(&bytes(100_000, 3), (3 << 30) - 50_000)
        .unwrap();
    f.write_all_at(b"L", 4 << 30).unwrap();
    drop(f);
    write(&src.join("small"), b"small");
    let theirs = produce(
        Command::new(&reference),
        &src,
        &dir.path().join("ref"),
        &["--print-digest"],
        false,
    );
    let ours = produce(
        ours(),
        &src,
        &dir.path().join("ours"),
        &["--print-digest"],
        true,
    );
    assert_eq!(ours.image, theirs.image);
    assert_eq!(ours.stdout, theirs.stdout);
    assert_eq!(
        ours.store.len(),
        2,
        "one object and its directory: {:?}",
        ours.store
    );
    let object = ours.store.keys().find(|k| k.contains('/')).unwrap();
    let path = dir.path().join("ours/store").join(object);
    let meta = fs::metadata(&path).unwrap();
    assert_eq!(meta.len(), (4 << 30) + 1);
    assert!(meta.blocks() * 512 < 16 << 20, "the object is not sparse");
    let digest = composefs_std::verity::digest_file(
        &fs::File::open(&path).unwrap(),
        std::num::NonZeroUsize::new(2).unwrap(),
    )
    .unwrap();
    assert_eq!(
        object.replace('/', ""),
        composefs_std::verity::to_hex(&digest)
    );
}

/// `--hardlinks` keeps the links of the tree: a sound image, in which the reference's
/// `composefs-info dump` shows hard links, and which the reference rebuilds byte for byte
/// from that dump.
#[test]
fn hardlinks_option_shares_inodes() {
    let Some(reference) = reference() else {
        return;
    };
    let Some(info) = reference_tool("composefs-info") else {
        return skip("reference composefs-info not installed");
    };
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    build_tree(&src);
    let image = dir.path().join("links.cfs");
    let out = run(ours().arg("--hardlinks").arg(&src).arg(&image));
    assert!(out.status.success(), "{}", text(&out));
    let bytes = fs::read(&image).unwrap();
    let report = composefs_format::check::check_bytes(&bytes);
    assert!(report.is_sound(), "{:?}", report.problems());

    let dump = run(Command::new(&info).arg("dump").arg(&image));
    assert!(dump.status.success(), "{}", text(&dump));
    let dump_text = String::from_utf8_lossy(&dump.stdout).into_owned();
    assert_eq!(
        hard_link_paths(&dump_text),
        [
            "/links/original",
            "/links/sub/second",
            "/links/sub/small-too",
            "/links/symlink"
        ],
        "hard link entries: the first name in sorted depth-first order is the primary"
    );
    let primary = dump_text
        .lines()
        .find(|l| l.starts_with("/links/a-third "))
        .unwrap();
    assert_eq!(primary.split(' ').nth(3), Some("3"), "{primary}");

    let dump_file = dir.path().join("links.dump");
    fs::write(&dump_file, &dump.stdout).unwrap();
    let rebuilt = dir.path().join("rebuilt.cfs");
    let out = run(Command::new(&reference)
        .arg("--from-file")
        .arg(&dump_file)
        .arg(&rebuilt));
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(fs::read(&rebuilt).unwrap(), bytes);

    // Without the flag the same tree has no hard links at all.
    let plain = dir.path().join("plain.cfs");
    assert!(run(ours().arg(&src).arg(&plain)).status.success());
    let dump = run(Command::new(&info).arg("dump").arg(&plain));
    let plain_dump = String::from_utf8_lossy(&dump.stdout).into_owned();
    assert!(hard_link_paths(&plain_dump).is_empty());
}

/// The paths of the hard link lines of a dump (MODE starts with `@`).
fn hard_link_paths(dump: &str) -> Vec<&str> {
    dump.lines()
        .filter(|l| l.split(' ').nth(2).is_some_and(|m| m.starts_with('@')))
        .map(|l| l.split(' ').next().unwrap_or_default())
        .collect()
}

#[test]
fn usage_errors_fail_like_the_reference_and_leave_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    fs::create_dir(&src).unwrap();
    write(&src.join("f"), b"content");
    let file = src.join("f");
    let out_dir = dir.path().join("out");
    fs::create_dir(&out_dir).unwrap();
    let image = out_dir.join("image.cfs");
    let cases: [(&[&str], &Path, &str); 3] = [
        (
            &["--skip-xattrs", "--user-xattrs"],
            &src,
            "cannot be combined",
        ),
        (&[], &file, "not a directory"),
        (&[], &dir.path().join("missing"), "missing"),
    ];
    for (flags, source, message) in cases {
        let out = run(ours().args(flags).arg(source).arg(&image));
        assert_eq!(out.status.code(), Some(1), "{flags:?} {}", source.display());
        assert!(text(&out).contains(message), "{}", text(&out));
        assert!(dir_names(&out_dir).is_empty(), "{:?}", dir_names(&out_dir));
        if let Some(reference) = reference_tool("mkcomposefs") {
            let theirs = run(Command::new(reference).args(flags).arg(source).arg(&image));
            assert_eq!(
                theirs.status.code(),
                Some(1),
                "reference: {}",
                text(&theirs)
            );
            let _ = fs::remove_file(&image);
        }
    }
    let out = run(ours().arg("--threads=0").arg(&src).arg(&image));
    assert_eq!(out.status.code(), Some(1));
}

/// As an unprivileged user, a file that cannot be read fails the run with its path; no
/// image and no temporary file are left, and the store holds only complete objects.
#[test]
fn an_unreadable_file_names_its_path() {
    let dir = tempfile::tempdir().unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let src = dir.path().join("src");
    fs::create_dir_all(src.join("sub")).unwrap();
    write(&src.join("a-readable"), &bytes(5000, 1));
    let secret = src.join("sub/secret");
    write(&secret, &bytes(5000, 2));
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o000)).unwrap();
    let out_dir = dir.path().join("out");
    fs::create_dir(&out_dir).unwrap();
    let mut cmd = ours();
    if is_root() {
        use std::os::unix::process::CommandExt;
        rustix::fs::chown(
            &out_dir,
            Some(Uid::from_raw(65534)),
            Some(Gid::from_raw(65534)),
        )
        .unwrap();
        cmd.uid(65534).gid(65534);
    }
    let store = out_dir.join("store");
    let out = run(cmd
        .arg(format!("--digest-store={}", store.display()))
        .arg(&src)
        .arg(out_dir.join("image.cfs")));
    assert_eq!(out.status.code(), Some(1));
    let message = text(&out);
    assert!(
        message.contains(&format!("{}: open: ", secret.display())),
        "{message}"
    );
    assert_eq!(dir_names(&out_dir), ["store"]);
    let report = composefs_std::store::Store::open(&store)
        .unwrap()
        .verify()
        .unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
}
