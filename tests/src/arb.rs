//! Proptest strategies for arbitrary valid trees, and helpers to compare trees whose node
//! numbering or primary entries differ. Shared by the dumpfile, writer and fuzz tests.
//!
//! Every tree [`tree`] produces passes [`Tree::validate`] and is printable as a dump that
//! parses back in strict mode: names are 1..=255 bytes of anything but `/` and NUL,
//! xattr keys and values are arbitrary bytes (keys without NUL) within the per-inode
//! budget, regular files are inline (0..=5000 bytes), empty, or external (up to 2^53
//! bytes, with or without a relative backing path and a digest), and hard links point at
//! non-directories anywhere in the tree, so their primary entry may come earlier or later
//! in the walk.

use composefs_format::limits::{
    MAX_DUMP_XATTR_TEXT, MAX_INLINE_CONTENT, MAX_NAME_LEN, MAX_PAYLOAD_LEN, MAX_SYMLINK_LEN,
    MAX_XATTR_BUDGET,
};
use composefs_format::ondisk::{S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFREG, S_IFSOCK};
use composefs_format::tree::{Entry, Mtime, Node, NodeId, Tree, Xattr};
use proptest::collection::vec;
use proptest::prelude::*;

/// Largest external file: 1024 chunks of 2^43 bytes.
const MAX_EXTERNAL_SIZE: u64 = 1 << 53;

/// Bytes allowed in names and paths: anything but NUL and `/`.
fn name_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        4 => proptest::sample::select(b"abcxyz019._-".to_vec()),
        1 => (1u8..=255).prop_filter("no slash", |b| *b != b'/'),
    ]
}

/// A directory entry name: 1..=255 bytes, no `/` or NUL, not `.` or `..`.
pub fn name() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        8 => vec(name_byte(), 1..12),
        1 => vec(name_byte(), 1..=MAX_NAME_LEN),
    ]
    .prop_map(|mut n| {
        if n == b"." || n == b".." {
            n.push(b'_');
        }
        n
    })
}

/// A relative backing path: 1..4 valid names joined by `/`, at most 4095 bytes.
pub fn backing_path() -> impl Strategy<Value = Vec<u8>> {
    vec(name(), 1..4).prop_map(|names| {
        let mut path = names.join(&b'/');
        if path.len() > MAX_PAYLOAD_LEN {
            path.truncate(MAX_PAYLOAD_LEN);
            while path.last() == Some(&b'/') {
                path.pop();
            }
        }
        path
    })
}

/// Arbitrary bytes of a length in `short` most of the time, up to `max` sometimes.
fn bytes(short: usize, max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![4 => vec(any::<u8>(), 0..short), 1 => vec(any::<u8>(), 0..=max)]
}

/// Xattrs with unique keys (no NUL), within the per-inode budget and short enough that
/// their escaped text fits one dump line.
pub fn xattrs() -> impl Strategy<Value = Vec<Xattr>> {
    let key = prop_oneof![
        3 => (
            proptest::sample::select(vec!["user.", "trusted.", "security.", "trusted.overlay.", ""]),
            vec(1u8..=255, 0..20),
        )
            .prop_map(|(prefix, rest)| [prefix.as_bytes(), &rest].concat()),
        1 => vec(1u8..=255, 1..=255),
    ]
    .prop_filter("non-empty key", |k| !k.is_empty() && k.len() <= 255);
    let item = (key, bytes(24, 12_000)).prop_map(|(key, value)| Xattr { key, value });
    prop_oneof![2 => Just(Vec::new()), 3 => vec(item, 0..6)].prop_map(|items| {
        let mut out: Vec<Xattr> = Vec::new();
        let (mut budget, mut text) = (12usize, 0usize);
        for x in items {
            if out.iter().any(|o| o.key == x.key) {
                continue;
            }
            let cost = 7 + x.key.len() + x.value.len();
            // Each byte escapes to at most 4; plus '=' and the separating space.
            let escaped = 4 * (x.key.len() + x.value.len()) + 2;
            if budget + cost > MAX_XATTR_BUDGET || text + escaped > MAX_DUMP_XATTR_TEXT {
                continue;
            }
            budget += cost;
            text += escaped;
            out.push(x);
        }
        out
    })
}

/// The fields every node has.
#[derive(Debug, Clone)]
struct Meta {
    permissions: u32,
    uid: u32,
    gid: u32,
    nlink: u32,
    mtime: Mtime,
    xattrs: Vec<Xattr>,
}

fn meta() -> impl Strategy<Value = Meta> {
    let permissions = prop_oneof![
        4 => proptest::sample::select(vec![0o644, 0o755, 0o600, 0o4755, 0o1777, 0o777]),
        2 => 0u32..=0o7777,
        // Bits above the file type are kept as given.
        1 => (0u32..=0o7777, 1u32..=0o37777).prop_map(|(p, high)| p | (high << 16)),
    ];
    let id = prop_oneof![Just(0u32), Just(1000), any::<u32>()];
    let mtime = (
        prop_oneof![Just(0i64), 1_600_000_000i64..1_800_000_000, any::<i64>()],
        prop_oneof![Just(0u32), 0u32..1_000_000_000],
    )
        .prop_map(|(sec, nsec)| Mtime { sec, nsec });
    (
        permissions,
        id.clone(),
        id,
        prop_oneof![Just(1u32), 1u32..=u32::MAX],
        mtime,
        xattrs(),
    )
        .prop_map(|(permissions, uid, gid, nlink, mtime, xattrs)| Meta {
            permissions,
            uid,
            gid,
            nlink,
            mtime,
            xattrs,
        })
}

/// What one generated entry is.
#[derive(Debug, Clone)]
enum Kind {
    Directory {
        size: u64,
    },
    Inline(Vec<u8>),
    Empty,
    External {
        size: u64,
        payload: Option<Vec<u8>>,
        digest: Option<[u8; 32]>,
    },
    Symlink(Vec<u8>),
    Device {
        block: bool,
        rdev: u32,
    },
    Fifo,
    Socket,
    /// A hard link to the n-th (modulo) non-directory built so far.
    Hardlink(usize),
}

fn kind() -> impl Strategy<Value = Kind> {
    let symlink_target = prop_oneof![
        4 => vec(1u8..=255, 1..40),
        1 => vec(1u8..=255, 1..=MAX_SYMLINK_LEN),
    ];
    prop_oneof![
        3 => prop_oneof![Just(0u64), any::<u64>()].prop_map(|size| Kind::Directory { size }),
        2 => bytes(80, MAX_INLINE_CONTENT).prop_map(Kind::Inline),
        1 => Just(Kind::Empty),
        3 => (
            prop_oneof![1u64..100_000, 1u64..=MAX_EXTERNAL_SIZE],
            proptest::option::of(backing_path()),
            proptest::option::of(any::<[u8; 32]>()),
        )
            .prop_map(|(size, payload, digest)| Kind::External { size, payload, digest }),
        2 => symlink_target.prop_map(Kind::Symlink),
        1 => (any::<bool>(), prop_oneof![Just(0u32), any::<u32>()])
            .prop_map(|(block, rdev)| Kind::Device { block, rdev }),
        1 => Just(Kind::Fifo),
        1 => Just(Kind::Socket),
        2 => any::<usize>().prop_map(Kind::Hardlink),
    ]
}

/// One generated entry: which directory (modulo the directories built so far), its name,
/// what it is, and its fields.
#[derive(Debug, Clone)]
struct Spec {
    parent: usize,
    name: Vec<u8>,
    kind: Kind,
    meta: Meta,
}

fn spec() -> impl Strategy<Value = Spec> {
    (any::<usize>(), name(), kind(), meta()).prop_map(|(parent, name, kind, meta)| Spec {
        parent,
        name,
        kind,
        meta,
    })
}

/// The node `kind` and `meta` describe (`None` for a hard link).
fn build_node(kind: &Kind, meta: Meta) -> Option<Node> {
    let base = |file_type: u32| Node {
        mode: file_type | meta.permissions,
        uid: meta.uid,
        gid: meta.gid,
        nlink: meta.nlink,
        mtime: meta.mtime,
        xattrs: meta.xattrs.clone(),
        ..Node::default()
    };
    Some(match kind {
        Kind::Directory { size } => Node {
            size: *size,
            ..base(S_IFDIR)
        },
        Kind::Inline(content) => Node {
            size: content.len() as u64,
            content: Some(content.clone()),
            ..base(S_IFREG)
        },
        Kind::Empty => base(S_IFREG),
        Kind::External {
            size,
            payload,
            digest,
        } => Node {
            size: *size,
            payload: payload.clone(),
            digest: *digest,
            ..base(S_IFREG)
        },
        Kind::Symlink(target) => Node {
            size: target.len() as u64,
            payload: Some(target.clone()),
            ..base(S_IFLNK)
        },
        Kind::Device { block, rdev } => Node {
            rdev: *rdev,
            ..base(if *block { S_IFBLK } else { S_IFCHR })
        },
        Kind::Fifo => base(S_IFIFO),
        Kind::Socket => base(S_IFSOCK),
        Kind::Hardlink(_) => return None,
    })
}

/// Arbitrary valid trees of up to `max_entries` entries besides the root.
pub fn tree_with(max_entries: usize) -> impl Strategy<Value = Tree> {
    (meta(), any::<u64>(), vec(spec(), 0..=max_entries)).prop_map(
        |(root_meta, root_size, specs)| {
            let root = build_node(&Kind::Directory { size: root_size }, root_meta)
                .unwrap_or_else(|| Node::with_mode(S_IFDIR | 0o755));
            let mut tree = Tree::new(root);
            let mut dirs = vec![NodeId::ROOT];
            let mut others: Vec<NodeId> = Vec::new();
            for spec in specs {
                let parent = dirs[spec.parent % dirs.len()];
                if tree
                    .get(parent)
                    .is_some_and(|d| d.child(&spec.name).is_some())
                {
                    continue;
                }
                match (build_node(&spec.kind, spec.meta), &spec.kind) {
                    (None, Kind::Hardlink(n)) if !others.is_empty() => {
                        let target = others[n % others.len()];
                        tree.insert_child(parent, spec.name, target, true)
                            .expect("valid link");
                    }
                    (Some(node), _) => {
                        let is_dir = node.is_dir();
                        let id = tree.add(node).expect("node");
                        tree.insert_child(parent, spec.name, id, false)
                            .expect("valid entry");
                        if is_dir {
                            dirs.push(id);
                        } else {
                            others.push(id);
                        }
                    }
                    (None, _) => {}
                }
            }
            debug_assert_eq!(tree.validate(), Ok(()));
            tree
        },
    )
}

/// Arbitrary valid trees of up to 40 entries besides the root.
pub fn tree() -> impl Strategy<Value = Tree> {
    tree_with(40)
}

/// Visits every entry in the order of [`Tree::walk`], with its directory and position.
fn entries_in_walk_order(tree: &Tree) -> Vec<(NodeId, usize)> {
    let mut out = Vec::new();
    let mut entered = vec![false; tree.len()];
    entered[0] = true;
    let mut stack = vec![(NodeId::ROOT, 0usize)];
    while let Some((dir, next)) = stack.pop() {
        let Some(entry) = tree.get(dir).and_then(|d| d.children.get(next)) else {
            continue;
        };
        stack.push((dir, next + 1));
        out.push((dir, next));
        let child = entry.node;
        let enter = !entry.hardlink
            && tree.get(child).is_some_and(|n| !n.children.is_empty())
            && !entered[child.index()];
        if enter {
            entered[child.index()] = true;
            stack.push((child, 0));
        }
    }
    out
}

/// `tree` with its nodes numbered in the order their primary entries appear in the walk
/// (root first) and unreachable nodes dropped, so that two trees describing the same
/// filesystem compare equal with `==`.
#[must_use]
pub fn canonical(tree: &Tree) -> Tree {
    let mut order = vec![NodeId::ROOT];
    let mut new_index: Vec<Option<usize>> = vec![None; tree.len()];
    new_index[0] = Some(0);
    for (dir, at) in entries_in_walk_order(tree) {
        let entry = &tree.get(dir).expect("dir").children[at];
        if !entry.hardlink && new_index[entry.node.index()].is_none() {
            new_index[entry.node.index()] = Some(order.len());
            order.push(entry.node);
        }
    }
    let strip = |id: NodeId| Node {
        children: Vec::new(),
        ..tree.get(id).expect("node").clone()
    };
    let mut out = Tree::new(strip(NodeId::ROOT));
    let mut ids = vec![NodeId::ROOT];
    for &old in &order[1..] {
        ids.push(out.add(strip(old)).expect("node"));
    }
    for (&old, &new) in order.iter().zip(&ids) {
        let children = tree
            .get(old)
            .expect("node")
            .children
            .iter()
            .filter_map(|e| {
                let node = ids[new_index[e.node.index()]?];
                Some(Entry {
                    name: e.name.clone(),
                    node,
                    hardlink: e.hardlink,
                })
            });
        out.get_mut(new).expect("node").children = children.collect();
    }
    out
}

/// `tree` with the first entry of every node in the walk made its primary entry, which is
/// what parsing a dump printed with `HardlinkStyle::FirstInWalk` gives.
#[must_use]
pub fn primary_first_in_walk(tree: &Tree) -> Tree {
    let mut out = tree.clone();
    let mut seen = vec![false; tree.len()];
    seen[0] = true;
    for (dir, at) in entries_in_walk_order(tree) {
        let entry = &mut out.get_mut(dir).expect("dir").children[at];
        let first = !seen[entry.node.index()];
        seen[entry.node.index()] = true;
        entry.hardlink = !first;
    }
    out
}
