//! Shared by the kernel-mount tests: a generated source directory with every kind of
//! file, a scan of it into a tree plus object store, image building, the view overlayfs
//! is expected to give of a tree, and a readable comparison of two views.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use composefs_conformance::kernel::{snapshot, xattrs, Entry};
use composefs_format::dumpfile::{parse_bytes, ParseOptions};
use composefs_format::tree::{Mtime, Node, NodeId, Tree, Xattr};
use composefs_format::write::Options;
use composefs_std::store::{object_path, Store};
use rustix::fs::{AtFlags, FileType, Mode, Timespec, Timestamps, CWD};

/// Regular files up to this size are stored inline in the image, as mkcomposefs does.
pub const INLINE_MAX: u64 = 64;
/// Files up to this size are read and compared in snapshots.
pub const READ_LIMIT: u64 = 4 << 20;

const S_IFMT: u32 = 0o170000;
const S_IFREG: u32 = 0o100000;
const S_IFCHR: u32 = 0o020000;
const S_IFDIR: u32 = 0o040000;

/// A deterministic byte stream (xorshift), for file contents and choices.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

fn set_times(path: &Path, sec: i64, nsec: i64) {
    let t = Timespec {
        tv_sec: sec,
        tv_nsec: nsec,
    };
    rustix::fs::utimensat(
        CWD,
        path,
        &Timestamps {
            last_access: t,
            last_modification: t,
        },
        AtFlags::SYMLINK_NOFOLLOW,
    )
    .unwrap_or_else(|e| panic!("utimensat {}: {e}", path.display()));
}

fn set_xattr(path: &Path, key: &[u8], value: &[u8]) {
    rustix::fs::lsetxattr(path, key, value, rustix::fs::XattrFlags::empty()).unwrap_or_else(|e| {
        panic!(
            "lsetxattr {} {}: {e}",
            path.display(),
            String::from_utf8_lossy(key)
        )
    });
}

fn mknod(path: &Path, ft: FileType, perm: u32, major: u32, minor: u32) {
    rustix::fs::mknodat(
        CWD,
        path,
        ft,
        Mode::from_raw_mode(perm),
        rustix::fs::makedev(major, minor),
    )
    .unwrap_or_else(|e| panic!("mknod {}: {e}", path.display()));
}

/// Builds, under `root` (an existing empty directory), a tree with: regular files of
/// many sizes (empty, inline, block-sized, multi-block, over 1 MiB), symlinks (short,
/// long, odd bytes), a fifo, character and block devices, an overlay whiteout (a
/// character device 0/0), `user.*` and `trusted.*` xattrs (including
/// `trusted.overlay.*`, which the image must escape), a POSIX ACL, mtimes with nanoseconds, several
/// owners including ids above 65535, modes with setuid, setgid, sticky and no bits,
/// hard links across directories, and names that need escaping in a dump. Needs root.
pub fn make_source_tree(root: &Path) {
    let mut rng = Rng::new(7);
    let d = |rel: &str| root.join(rel);
    for dir in ["sub", "sub/deep", "sub/deep/er", "sticky", "wh", "emptydir"] {
        fs::create_dir(d(dir)).unwrap();
    }
    let odd_name = OsStr::from_bytes(b"odd name \\ = \t\n\xff-");
    let odd_dir = d("sub").join(odd_name);
    fs::create_dir(&odd_dir).unwrap();
    let sizes: [(&str, usize); 12] = [
        ("empty", 0),
        ("one", 1),
        ("inline63", 63),
        ("inline64", 64),
        ("ext65", 65),
        ("ext4095", 4095),
        ("ext4096", 4096),
        ("ext4097", 4097),
        ("ext100k", 100_000),
        ("big", (1 << 20) + 3),
        ("sub/deep/er/nested", 5000),
        ("sub/-", 77),
    ];
    for (name, size) in sizes {
        fs::write(d(name), rng.bytes(size)).unwrap();
    }
    fs::write(odd_dir.join(odd_name), b"odd content\n").unwrap();
    // Two files with identical content share one object.
    fs::write(d("sub/dup"), vec![42u8; 9000]).unwrap();
    fs::write(d("sticky/dup"), vec![42u8; 9000]).unwrap();
    // Hard links: two extra names for one external file, one for an inline file.
    fs::write(d("sub/linked"), rng.bytes(3000)).unwrap();
    fs::hard_link(d("sub/linked"), d("link-a")).unwrap();
    fs::hard_link(d("sub/linked"), d("sub/deep/link-b")).unwrap();
    fs::write(d("small-linked"), b"tiny").unwrap();
    fs::hard_link(d("small-linked"), d("sticky/small-link")).unwrap();
    // Symlinks.
    std::os::unix::fs::symlink("ext65", d("sym")).unwrap();
    std::os::unix::fs::symlink("a".repeat(1000), d("sym-long")).unwrap();
    std::os::unix::fs::symlink(OsStr::from_bytes(b"../x y\\z\xfe"), d("sub/sym-odd")).unwrap();
    std::os::unix::fs::symlink("/absolute/target", d("sym-abs")).unwrap();
    // Special files.
    mknod(&d("fifo"), FileType::Fifo, 0o640, 0, 0);
    mknod(&d("null"), FileType::CharacterDevice, 0o666, 1, 3);
    mknod(&d("blk"), FileType::BlockDevice, 0o600, 259, 70000);
    mknod(&d("wh/gone"), FileType::CharacterDevice, 0o600, 0, 0);
    fs::write(d("wh/kept"), b"kept").unwrap();
    // Modes.
    let modes: [(&str, u32); 8] = [
        ("ext65", 0o4755),
        ("ext4095", 0o2711),
        ("one", 0o000),
        ("inline63", 0o7777),
        ("sticky", 0o1777),
        ("sub/deep", 0o700),
        ("emptydir", 0o555),
        ("ext4096", 0o600),
    ];
    // Owners (before modes: chown clears setuid/setgid).
    let owners: [(&str, u32, u32); 6] = [
        ("ext4097", 1000, 1000),
        ("sub", 65534, 100),
        ("sym", 123_456, 654_321),
        ("big", 4_000_000_000, 7),
        ("fifo", 5, 0),
        ("wh/gone", 1001, 1002),
    ];
    for (name, uid, gid) in owners {
        std::os::unix::fs::lchown(d(name), Some(uid), Some(gid)).unwrap();
    }
    for (name, mode) in modes {
        fs::set_permissions(d(name), std::os::unix::fs::PermissionsExt::from_mode(mode)).unwrap();
    }
    // Xattrs.
    set_xattr(&d("ext65"), b"user.plain", b"value");
    set_xattr(&d("ext65"), b"user.empty", b"");
    set_xattr(&d("ext65"), b"user.binary", &[0, 1, 2, 255, b'=', b' ']);
    set_xattr(&d("inline64"), b"user.big", &rng.bytes(2000));
    set_xattr(&d("sub"), b"user.dir", b"on a directory");
    set_xattr(
        &d("big"),
        b"trusted.overlay.custom",
        b"escaped in the image",
    );
    set_xattr(&d("big"), b"trusted.other", b"t");
    set_xattr(&d("sym"), b"trusted.on-symlink", b"s");
    set_xattr(&d("wh/gone"), b"trusted.on-whiteout", b"w");
    set_xattr(&d("wh"), b"user.on-parent", b"p");
    set_xattr(root, b"user.root", b"r");
    // A POSIX ACL: the image gets the HAS_ACL flag, and EROFS must then be mounted
    // without `noacl` for it to show. Entries: user::rw-, user:1000:r--, group::r--,
    // mask::r--, other::---.
    let mut acl = 2u32.to_le_bytes().to_vec();
    for (tag, perm, id) in [
        (1u16, 6u16, u32::MAX),
        (2, 4, 1000),
        (4, 4, u32::MAX),
        (0x10, 4, u32::MAX),
        (0x20, 0, u32::MAX),
    ] {
        acl.extend_from_slice(&tag.to_le_bytes());
        acl.extend_from_slice(&perm.to_le_bytes());
        acl.extend_from_slice(&id.to_le_bytes());
    }
    set_xattr(&d("ext4096"), b"system.posix_acl_access", &acl);
    // The same xattr on many files (shared xattrs in the image).
    for name in [
        "one",
        "ext4096",
        "ext4097",
        "ext100k",
        "sub/dup",
        "sticky/dup",
    ] {
        set_xattr(&d(name), b"user.shared", b"shared value");
    }
    // Times last, bottom-up order does not matter for utimensat.
    let mut all: Vec<PathBuf> = snapshot(root, 0).into_keys().collect();
    all.sort();
    for (i, rel) in all.iter().enumerate() {
        let sec = 1_600_000_000 + (i as i64) * 86_399;
        let nsec = (rng.next() % 1_000_000_000) as i64;
        set_times(&root.join(rel), sec, if i % 3 == 0 { 0 } else { nsec });
    }
}

/// Scans `root` into a tree as `mkcomposefs` does from a directory: `lstat` fields, all
/// xattrs, regular files up to [`INLINE_MAX`] bytes inline, larger ones copied into
/// `store` and referenced by digest; hard links (same inode) become hard link entries.
pub fn scan(root: &Path, store: &Store) -> Tree {
    let mut tree = Tree::new(node_of(root, store));
    let mut by_ino: BTreeMap<(u64, u64), NodeId> = BTreeMap::new();
    let mut stack = vec![(root.to_path_buf(), NodeId::ROOT)];
    while let Some((dir, id)) = stack.pop() {
        let mut names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        for name in names {
            let path = dir.join(&name);
            let meta = fs::symlink_metadata(&path).unwrap();
            let key = (meta.dev(), meta.ino());
            let linked = !meta.is_dir() && meta.nlink() > 1;
            if let Some(&target) = by_ino.get(&key).filter(|_| linked) {
                tree.insert_child(id, name.as_bytes().to_vec(), target, true)
                    .unwrap();
                continue;
            }
            let child = tree.add(node_of(&path, store)).unwrap();
            tree.insert_child(id, name.as_bytes().to_vec(), child, false)
                .unwrap();
            if linked {
                by_ino.insert(key, child);
            }
            if meta.is_dir() {
                stack.push((path, child));
            }
        }
    }
    tree
}

fn node_of(path: &Path, store: &Store) -> Node {
    let meta = fs::symlink_metadata(path).unwrap();
    let ft = meta.file_type();
    let mut node = Node::with_mode(meta.mode());
    node.uid = meta.uid();
    node.gid = meta.gid();
    node.nlink = if ft.is_dir() { 2 } else { meta.nlink() as u32 };
    node.mtime = Mtime {
        sec: meta.mtime(),
        nsec: meta.mtime_nsec() as u32,
    };
    if ft.is_block_device() || ft.is_char_device() {
        node.rdev = meta.rdev() as u32;
    }
    node.xattrs = xattrs(path)
        .into_iter()
        .map(|(key, value)| Xattr {
            key,
            value: value.expect("every xattr of the source is readable"),
        })
        .collect();
    if ft.is_symlink() {
        let target = fs::read_link(path).unwrap();
        node.size = target.as_os_str().len() as u64;
        node.payload = Some(target.into_os_string().into_encoded_bytes());
    } else if ft.is_file() {
        node.size = meta.len();
        if meta.len() > 0 && meta.len() <= INLINE_MAX {
            node.content = Some(fs::read(path).unwrap());
        } else if meta.len() > INLINE_MAX {
            let digest = store.add_path(path).unwrap();
            node.digest = Some(digest);
            node.payload = Some(object_path(&digest).into_bytes());
        }
    }
    node
}

/// Writes `tree` as an image at `image` with our writer (format version chosen as
/// `mkcomposefs` does: 0, or 1 when the tree holds a whiteout); returns the version.
pub fn write_image(tree: &Tree, image: &Path) -> u32 {
    let mut bytes = Vec::new();
    let layout = composefs_format::write::write_image(tree, &Options::default(), &mut bytes)
        .unwrap_or_else(|e| panic!("writing {}: {e}", image.display()));
    fs::write(image, &bytes).unwrap();
    layout.version()
}

/// Parses `dump` (lenient, as `mkcomposefs --from-file`) and writes its image at `image`
/// with our writer; returns the tree and the format version.
pub fn image_from_dump(dump: &[u8], image: &Path) -> (Tree, u32) {
    let tree = parse_bytes(dump, ParseOptions::lenient())
        .unwrap_or_else(|e| panic!("dump for {}: {e}", image.display()))
        .tree;
    let version = write_image(&tree, image);
    (tree, version)
}

/// Builds the image of the dump file `dump` at `image` with the reference
/// `mkcomposefs --from-file`, or returns `false` (with a visible message) when it is
/// not installed.
pub fn reference_image_from_dump(dump: &Path, image: &Path) -> bool {
    let Some(mk) = composefs_conformance::reference_tool("mkcomposefs") else {
        composefs_conformance::skip("reference mkcomposefs not installed");
        return false;
    };
    let out = Command::new(mk)
        .arg("--from-file")
        .arg(dump)
        .arg(image)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "mkcomposefs: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    true
}

/// The uid or gid the kernel shows for an id stored in an image (`-1` is no valid id).
fn shown_id(id: u32) -> u32 {
    if id == u32::MAX {
        65534
    } else {
        id
    }
}

/// The view of `tree` as a directory holding it would show: names, types, modes,
/// owners, sizes, mtimes, device numbers, link counts, symlink targets, xattrs, and
/// content (inline content; for external files `content_of` gives the object's bytes if
/// the test placed it, `None` leaves the content uncompared).
pub fn tree_view(
    tree: &Tree,
    content_of: &dyn Fn(&Node) -> Option<Vec<u8>>,
) -> BTreeMap<PathBuf, Entry> {
    let mut out: BTreeMap<PathBuf, Entry> = BTreeMap::new();
    tree.walk::<()>(|path, _entry, id| {
        let node = tree.get(id).unwrap();
        let rel = PathBuf::from(OsStr::from_bytes(&path[1..]));
        let ft = node.mode & S_IFMT;
        let content = (ft == S_IFREG).then(|| match &node.content {
            Some(c) => Some(Ok(c.clone())),
            None if node.size == 0 => Some(Ok(Vec::new())),
            None => content_of(node).map(Ok),
        });
        let is_dev = ft == S_IFCHR || ft == 0o060000;
        out.insert(
            rel,
            Entry {
                mode: node.mode,
                uid: shown_id(node.uid),
                gid: shown_id(node.gid),
                size: if ft == S_IFREG || ft == 0o120000 {
                    node.size
                } else {
                    0
                },
                mtime: node.mtime.sec,
                mtime_nsec: i64::from(node.mtime.nsec),
                rdev: if is_dev { u64::from(node.rdev) } else { 0 },
                nlink: if ft == S_IFDIR {
                    0
                } else {
                    u64::from(node.nlink)
                },
                target: (ft == 0o120000).then(|| node.payload.clone().unwrap_or_default()),
                xattrs: node
                    .xattrs
                    .iter()
                    .map(|x| (x.key.clone(), Ok(x.value.clone())))
                    .collect(),
                content: content.flatten(),
            },
        );
        Ok(())
    })
    .unwrap();
    out
}

/// Turns the whiteouts of a view (character devices 0/0) into what a composefs mount
/// shows for them: the writer stores each as an empty regular file marked with
/// `trusted.overlay.overlay.whiteout` and `user.overlay.whiteout`, which overlayfs
/// shows (one level unescaped) as `trusted.overlay.whiteout` and
/// `user.overlay.whiteout`; their directory gets `*.overlay.whiteouts` and, in format
/// version 1, `*.overlay.opaque=x`. These are "xwhiteouts" for a further overlay
/// stacked on the mount, not whiteouts of this one.
///
/// Last, the VFS rule for `user.*` xattrs applies: on anything but regular files and
/// directories they are listed but reading them fails with `ENODATA`.
pub fn as_mounted(view: &mut BTreeMap<PathBuf, Entry>, format_version: u32) {
    let mut parents = BTreeSet::new();
    for (rel, e) in view.iter_mut() {
        if e.mode & S_IFMT == S_IFCHR && e.rdev == 0 {
            e.mode = S_IFREG | (e.mode & !S_IFMT);
            e.size = 0;
            e.content = Some(Ok(Vec::new()));
            e.xattrs
                .insert(b"trusted.overlay.whiteout".to_vec(), Ok(Vec::new()));
            e.xattrs
                .insert(b"user.overlay.whiteout".to_vec(), Ok(Vec::new()));
            parents.insert(rel.parent().unwrap_or(Path::new("")).to_path_buf());
        }
    }
    for dir in parents {
        let x = &mut view.get_mut(&dir).unwrap().xattrs;
        x.insert(b"trusted.overlay.whiteouts".to_vec(), Ok(Vec::new()));
        x.insert(b"user.overlay.whiteouts".to_vec(), Ok(Vec::new()));
        if format_version >= 1 {
            x.insert(b"trusted.overlay.opaque".to_vec(), Ok(b"x".to_vec()));
            x.insert(b"user.overlay.opaque".to_vec(), Ok(b"x".to_vec()));
        }
    }
    let enodata = rustix::io::Errno::NODATA.raw_os_error();
    for e in view.values_mut() {
        let ft = e.mode & S_IFMT;
        if ft != S_IFREG && ft != S_IFDIR {
            for (k, v) in &mut e.xattrs {
                if k.starts_with(b"user.") {
                    *v = Err(enodata);
                }
            }
        }
    }
}

/// Hard link groups of a view: sets of paths that share an inode, by `st_ino`.
pub fn link_groups(root: &Path, view: &BTreeMap<PathBuf, Entry>) -> BTreeSet<Vec<PathBuf>> {
    let mut by_ino: BTreeMap<u64, Vec<PathBuf>> = BTreeMap::new();
    for (rel, e) in view {
        if e.mode & S_IFMT != S_IFDIR {
            let ino = fs::symlink_metadata(root.join(rel)).unwrap().ino();
            by_ino.entry(ino).or_default().push(rel.clone());
        }
    }
    by_ino.into_values().filter(|v| v.len() > 1).collect()
}

/// Hard link groups of a tree (paths of nodes named more than once).
pub fn tree_link_groups(tree: &Tree) -> BTreeSet<Vec<PathBuf>> {
    let mut by_node: BTreeMap<NodeId, Vec<PathBuf>> = BTreeMap::new();
    tree.walk::<()>(|path, entry, id| {
        if entry.is_some() && !tree.get(id).unwrap().is_dir() {
            by_node
                .entry(id)
                .or_default()
                .push(PathBuf::from(OsStr::from_bytes(&path[1..])));
        }
        Ok(())
    })
    .unwrap();
    by_node
        .into_values()
        .filter(|v| v.len() > 1)
        .map(|mut v| {
            v.sort();
            v
        })
        .collect()
}

/// Panics with a readable list of the differences (at most 20) between two views. An
/// expected entry without content leaves the content uncompared.
pub fn assert_same_view(
    what: &str,
    expected: &BTreeMap<PathBuf, Entry>,
    actual: &BTreeMap<PathBuf, Entry>,
) {
    let mut diffs = Vec::new();
    for (path, want) in expected {
        match actual.get(path) {
            None => diffs.push(format!("{}: missing", path.display())),
            Some(got) => {
                // Content the expectation leaves open is not compared.
                let mut got = got.clone();
                if want.content.is_none() {
                    got.content = None;
                }
                if got != *want {
                    diffs.push(describe(path, want, &got));
                }
            }
        }
    }
    for path in actual.keys().filter(|p| !expected.contains_key(*p)) {
        diffs.push(format!("{}: unexpected entry", path.display()));
    }
    if !diffs.is_empty() {
        let n = diffs.len();
        diffs.truncate(20);
        panic!("{what}: {n} differences:\n{}", diffs.join("\n"));
    }
}

fn describe(path: &Path, want: &Entry, got: &Entry) -> String {
    let mut parts = Vec::new();
    macro_rules! field {
        ($f:ident) => {
            if want.$f != got.$f {
                parts.push(format!(
                    "{} expected {:?} got {:?}",
                    stringify!($f),
                    want.$f,
                    got.$f
                ));
            }
        };
    }
    field!(mode);
    field!(uid);
    field!(gid);
    field!(size);
    field!(mtime);
    field!(mtime_nsec);
    field!(rdev);
    field!(nlink);
    field!(target);
    if want.xattrs != got.xattrs {
        let show = |m: &BTreeMap<Vec<u8>, Result<Vec<u8>, i32>>| {
            m.iter()
                .map(|(k, v)| match v {
                    Ok(v) => format!(
                        "{}={:?}",
                        String::from_utf8_lossy(k),
                        String::from_utf8_lossy(v)
                    ),
                    Err(e) => format!("{}=<errno {e}>", String::from_utf8_lossy(k)),
                })
                .collect::<Vec<_>>()
                .join(" ")
        };
        parts.push(format!(
            "xattrs expected [{}] got [{}]",
            show(&want.xattrs),
            show(&got.xattrs)
        ));
    }
    if want.content != got.content {
        let show = |c: &Option<Result<Vec<u8>, i32>>| match c {
            None => "unread".to_owned(),
            Some(Ok(v)) => format!("{} bytes", v.len()),
            Some(Err(e)) => format!("errno {e}"),
        };
        parts.push(format!(
            "content expected {} got {} (or different bytes)",
            show(&want.content),
            show(&got.content)
        ));
    }
    format!("{}: {}", path.display(), parts.join("; "))
}
