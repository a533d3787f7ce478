//! Property: a random tree written to disk scans back as exactly what was written (a
//! model of the reference's rules), on any thread count, with and without `--hardlinks`.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::io::Write;
use std::num::NonZeroUsize;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};

use composefs_format::ondisk::{S_IFDIR, S_IFIFO, S_IFLNK, S_IFREG};
use composefs_format::tree::{Mtime, Node, NodeId, Tree};
use composefs_std::scan::{scan, ScanOptions};
use composefs_std::store::object_path;
use proptest::collection::vec;
use proptest::prelude::*;
use rustix::fs::{AtFlags, FileType, Mode, Timespec, Timestamps, XattrFlags, CWD};

#[derive(Debug, Clone)]
enum Kind {
    Dir,
    File(Vec<u8>),
    Symlink(Vec<u8>),
    Fifo,
    /// A hard link to the n-th file created so far (modulo their count).
    Link(usize),
}

#[derive(Debug, Clone)]
struct Item {
    /// Index among the directories created so far (modulo their count; 0 is the root).
    parent: usize,
    name: Vec<u8>,
    kind: Kind,
    perm: u32,
    mtime: (i64, u32),
    xattrs: Vec<(u8, Vec<u8>)>,
}

fn item() -> impl Strategy<Value = Item> {
    let kind = prop_oneof![
        2 => Just(Kind::Dir),
        4 => prop_oneof![vec(any::<u8>(), 0..=70), vec(any::<u8>(), 0..9000)].prop_map(Kind::File),
        1 => vec(1u8..=255, 1..200).prop_map(Kind::Symlink),
        1 => Just(Kind::Fifo),
        1 => any::<usize>().prop_map(Kind::Link),
    ];
    (
        any::<usize>(),
        vec(
            prop_oneof![Just(b'a'), Just(b'b'), Just(b' '), Just(b'\n'), 1u8..=255],
            1..6,
        ),
        kind,
        0u32..0o10000,
        // Within what ext4 stores (1901 to 2446).
        (-(1i64 << 31)..(1i64 << 33), 0u32..1_000_000_000),
        vec((0u8..4, vec(any::<u8>(), 0..40)), 0..3),
    )
        .prop_map(|(parent, name, kind, perm, mtime, xattrs)| Item {
            parent,
            name: name
                .into_iter()
                .map(|b| if b == b'/' { b'_' } else { b })
                .collect(),
            kind,
            perm,
            mtime,
            xattrs,
        })
}

/// What the model expects at one path.
#[derive(Debug, Clone, PartialEq)]
struct Expected {
    mode: u32,
    mtime: Mtime,
    size: Option<u64>,
    payload: Option<Vec<u8>>,
    content: Option<Vec<u8>>,
    digest: Option<[u8; 32]>,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    /// Index of the inode (hard links share it).
    inode: usize,
}

fn set_mtime(path: &Path, (sec, nsec): (i64, u32)) {
    let t = Timespec {
        tv_sec: sec,
        tv_nsec: i64::from(nsec),
    };
    let times = Timestamps {
        last_access: t,
        last_modification: t,
    };
    rustix::fs::utimensat(CWD, path, &times, AtFlags::SYMLINK_NOFOLLOW).unwrap();
}

/// Writes the items under `root` and returns what each path must scan as.
fn materialize(root: &Path, items: &[Item]) -> BTreeMap<Vec<u8>, Expected> {
    let mut dirs: Vec<(PathBuf, Vec<u8>)> = vec![(root.to_owned(), Vec::new())];
    let mut files: Vec<(PathBuf, usize)> = Vec::new();
    let mut expected: BTreeMap<Vec<u8>, Expected> = BTreeMap::new();
    let mut inodes = 0usize;
    // Times are set last, deepest first, so that creating entries does not change them.
    let mut times: Vec<(PathBuf, (i64, u32))> = Vec::new();
    for it in items {
        let (parent, parent_rel) = dirs[it.parent % dirs.len()].clone();
        if it.name == b"." || it.name == b".." {
            continue;
        }
        let path = parent.join(OsStr::from_bytes(&it.name));
        let mut rel = parent_rel.clone();
        rel.push(b'/');
        rel.extend_from_slice(&it.name);
        if expected.contains_key(&rel) {
            continue;
        }
        let (kind_bits, size, payload, content, digest, inode) = match &it.kind {
            Kind::Dir => {
                fs::create_dir(&path).unwrap();
                dirs.push((path.clone(), rel.clone()));
                (S_IFDIR, None, None, None, None, None)
            }
            Kind::File(data) => {
                fs::File::create(&path).unwrap().write_all(data).unwrap();
                files.push((path.clone(), inodes));
                let len = data.len() as u64;
                let (content, payload, digest) = match data.len() {
                    0 => (None, None, None),
                    1..=64 => (Some(data.clone()), None, None),
                    _ => {
                        let d = composefs_format::verity::digest(data);
                        (None, Some(object_path(&d).into_bytes()), Some(d))
                    }
                };
                (S_IFREG, Some(len), payload, content, digest, None)
            }
            Kind::Symlink(target) => {
                symlink(OsStr::from_bytes(target), &path).unwrap();
                let len = target.len() as u64;
                (S_IFLNK, Some(len), Some(target.clone()), None, None, None)
            }
            Kind::Fifo => {
                rustix::fs::mknodat(CWD, &path, FileType::Fifo, Mode::from(0o600), 0).unwrap();
                (S_IFIFO, Some(0), None, None, None, None)
            }
            Kind::Link(n) => {
                if files.is_empty() {
                    continue;
                }
                let (target, inode) = files[n % files.len()].clone();
                fs::hard_link(&target, &path).unwrap();
                let original = expected
                    .values()
                    .find(|e| e.inode == inode)
                    .unwrap()
                    .clone();
                expected.insert(rel, original);
                continue;
            }
        };
        let inode = inode.unwrap_or_else(|| {
            inodes += 1;
            inodes - 1
        });
        if let Some(last) = files.last_mut() {
            if last.0 == path {
                last.1 = inode;
            }
        }
        // user.* xattrs are for files and directories only.
        let mut xattrs = Vec::new();
        if kind_bits == S_IFREG || kind_bits == S_IFDIR {
            for (k, value) in &it.xattrs {
                let name = format!("user.x{k}");
                rustix::fs::lsetxattr(&path, name.as_str(), value, XattrFlags::empty()).unwrap();
                xattrs.retain(|(n, _): &(Vec<u8>, Vec<u8>)| n != name.as_bytes());
                xattrs.push((name.into_bytes(), value.clone()));
            }
            xattrs.sort();
        }
        // Keep directories traversable and files readable for an unprivileged run.
        let perm = match kind_bits {
            S_IFDIR => it.perm | 0o700,
            S_IFREG => it.perm | 0o400,
            _ => it.perm,
        };
        if kind_bits != S_IFLNK {
            fs::set_permissions(&path, fs::Permissions::from_mode(perm)).unwrap();
        }
        let mode = if kind_bits == S_IFLNK {
            S_IFLNK | 0o777
        } else {
            kind_bits | perm
        };
        times.push((path, it.mtime));
        expected.insert(
            rel,
            Expected {
                mode,
                mtime: Mtime {
                    sec: it.mtime.0,
                    nsec: it.mtime.1,
                },
                size,
                payload,
                content,
                digest,
                xattrs,
                inode,
            },
        );
    }
    times.sort_by_key(|(p, _)| std::cmp::Reverse(p.as_os_str().len()));
    for (path, t) in times {
        set_mtime(&path, t);
    }
    expected
}

/// Every entry of a scanned tree, by path, in the model's terms.
fn observed(tree: &Tree) -> (BTreeMap<Vec<u8>, Expected>, BTreeMap<Vec<u8>, NodeId>) {
    let mut out = BTreeMap::new();
    let mut ids = BTreeMap::new();
    tree.walk(|path, entry, id| {
        if entry.is_none() {
            return Ok::<(), ()>(());
        }
        let n: &Node = tree.get(id).unwrap();
        let mut xattrs: Vec<(Vec<u8>, Vec<u8>)> = n
            .xattrs
            .iter()
            .map(|x| (x.key.clone(), x.value.clone()))
            .collect();
        xattrs.sort();
        out.insert(
            path.to_vec(),
            Expected {
                mode: n.mode,
                mtime: n.mtime,
                size: (!n.is_dir()).then_some(n.size),
                payload: n.payload.clone(),
                content: n.content.clone(),
                digest: n.digest,
                xattrs,
                inode: 0,
            },
        );
        ids.insert(path.to_vec(), id);
        Ok(())
    })
    .unwrap();
    (out, ids)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn a_tree_on_disk_scans_back_as_written(
        items in vec(item(), 1..60),
        threads in 1usize..4,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("src");
        fs::create_dir(&root).unwrap();
        let expected = materialize(&root, &items);
        let options = ScanOptions {
            threads: NonZeroUsize::new(threads).unwrap(),
            ..ScanOptions::default()
        };
        let tree = scan(&root, &options, None).unwrap();
        tree.validate().unwrap();
        let (got, _) = observed(&tree);
        let strip = |m: &BTreeMap<Vec<u8>, Expected>| -> BTreeMap<Vec<u8>, Expected> {
            m.iter().map(|(k, v)| (k.clone(), Expected { inode: 0, ..v.clone() })).collect()
        };
        prop_assert_eq!(&got, &strip(&expected));
        prop_assert!(tree.iter().all(|(_, n)| n.nlink == 1));
        prop_assert_eq!(tree.len(), expected.len() + 1, "every name its own inode");

        // With --hardlinks: one node per inode, named by all its paths, NLINK = names,
        // the first path in walk order primary.
        let linked = scan(&root, &ScanOptions { hardlinks: true, ..options }, None).unwrap();
        linked.validate().unwrap();
        let (got, ids) = observed(&linked);
        prop_assert_eq!(&got, &strip(&expected));
        let mut names_of: BTreeMap<usize, Vec<&Vec<u8>>> = BTreeMap::new();
        for (path, e) in &expected {
            names_of.entry(e.inode).or_default().push(path);
        }
        for names in names_of.values() {
            let id = ids[names[0]];
            prop_assert!(names.iter().all(|p| ids[*p] == id));
            let node = linked.get(id).unwrap();
            let want = if node.is_dir() { node.nlink } else { names.len() as u32 };
            prop_assert_eq!(node.nlink, want);
        }
        prop_assert_eq!(linked.len(), names_of.len() + 1);
    }
}
