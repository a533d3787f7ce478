//! Trees built from fuzz bytes.
//!
//! [`tree`] reads a shape from an [`Unstructured`]: the root's fields, then up to
//! `max_entries` entries, each with a parent (any directory built so far), a name, a kind
//! and fields. Values are drawn near the boundaries the format cares about (compact versus
//! extended inodes, inline content and block sizes, chunk counts, xattr budgets, the
//! overlay xattrs the writer adds or escapes, ACLs, names that collide with the root's
//! whiteout stubs, hard links). Large values (content, xattr values) are made by
//! repeating a short fuzz-chosen pattern so that small inputs reach big sizes.
//!
//! In *raw* mode (chosen by the input) fields are not kept valid: any mode, names with `/`
//! or NUL or `.`, unsorted and duplicate entries, hard-linked directories, content that
//! disagrees with the size, link count 0. The writer must refuse or write such trees
//! soundly.

use arbitrary::{Result, Unstructured};
use composefs_format::ondisk::{S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFREG, S_IFSOCK};
use composefs_format::tree::{Entry, Mtime, Node, NodeId, Tree, Xattr};
use composefs_format::write::Options;

/// Xattr name prefixes, the ones with meaning for the writer first.
const XATTR_KEYS: &[&[u8]] = &[
    b"user.",
    b"trusted.",
    b"security.",
    b"security.selinux",
    b"system.posix_acl_access",
    b"system.posix_acl_default",
    b"trusted.overlay.",
    b"trusted.overlay.overlay.",
    b"trusted.overlay.metacopy",
    b"trusted.overlay.redirect",
    b"trusted.overlay.opaque",
    b"trusted.overlay.overlay.whiteout",
    b"trusted.overlay.overlay.whiteouts",
    b"trusted.overlay.overlay.opaque",
    b"user.overlay.whiteout",
    b"user.overlay.whiteouts",
    b"user.overlay.opaque",
    b"",
];

/// Name bytes that sort around `.` and the whiteout stubs `00`..`ff`.
const NAME_BYTES: &[u8] = b"ab.-_0f9~ \x01\x7f\xff";

/// Reads a tree. `max_entries` bounds the entries besides the root.
///
/// # Errors
/// Only when the input runs out in a way `arbitrary` reports (callers treat it as "no
/// tree").
pub fn tree(u: &mut Unstructured<'_>, max_entries: usize) -> Result<Tree> {
    let raw = u.ratio(1u8, 10u8)?;
    let g = Gen { raw };
    let root_meta = g.meta(u)?;
    let mut root = g.node(u, Kind::Directory, root_meta)?;
    if g.raw && u.ratio(1u8, 8u8)? {
        root.mode = u.arbitrary()?;
    }
    let mut tree = Tree::new(root);
    let mut dirs = vec![NodeId::ROOT];
    let mut others: Vec<NodeId> = Vec::new();
    let count = u.int_in_range(0..=max_entries)?;
    for _ in 0..count {
        if u.is_empty() {
            break;
        }
        let parent = dirs[u.choose_index(dirs.len())?];
        let name = g.name(u)?;
        let kind = g.kind(u)?;
        if let Kind::Hardlink = kind {
            let targets: &[NodeId] = if g.raw && u.ratio(1u8, 4u8)? {
                &dirs
            } else {
                &others
            };
            if targets.is_empty() {
                continue;
            }
            let target = targets[u.choose_index(targets.len())?];
            g.attach(&mut tree, parent, name, target, true);
            continue;
        }
        if !g.raw && tree.get(parent).is_some_and(|d| d.child(&name).is_some()) {
            continue;
        }
        let meta = g.meta(u)?;
        let node = g.node(u, kind, meta)?;
        let is_dir = node.is_dir();
        let Ok(id) = tree.add(node) else { break };
        if g.attach(&mut tree, parent, name, id, false) {
            if is_dir {
                dirs.push(id);
            } else {
                others.push(id);
            }
        }
    }
    Ok(tree)
}

/// Writer options: mostly valid version ranges, sometimes not.
///
/// # Errors
/// As [`tree`].
pub fn options(u: &mut Unstructured<'_>) -> Result<Options> {
    let pick = |v: u8| match v % 8 {
        0..=3 => 0,
        4..=6 => 1,
        _ => u32::from(v),
    };
    Ok(Options {
        min_version: pick(u.arbitrary()?),
        max_version: pick(u.arbitrary::<u8>()?.wrapping_add(4)),
    })
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Directory,
    Inline,
    Empty,
    External,
    Symlink,
    Device,
    Whiteout,
    Fifo,
    Socket,
    Hardlink,
}

struct Meta {
    permissions: u32,
    uid: u32,
    gid: u32,
    nlink: u32,
    mtime: Mtime,
    xattrs: Vec<Xattr>,
}

struct Gen {
    raw: bool,
}

impl Gen {
    /// Adds an entry; false when it was refused (duplicate or invalid name in valid mode).
    fn attach(
        &self,
        tree: &mut Tree,
        parent: NodeId,
        name: Vec<u8>,
        child: NodeId,
        link: bool,
    ) -> bool {
        if self.raw {
            let Some(dir) = tree.get_mut(parent) else {
                return false;
            };
            dir.children.push(Entry {
                name,
                node: child,
                hardlink: link,
            });
            true
        } else {
            tree.insert_child(parent, name, child, link).is_ok()
        }
    }

    fn kind(&self, u: &mut Unstructured<'_>) -> Result<Kind> {
        Ok(match u.int_in_range(0u8..=19)? {
            0..=3 => Kind::Directory,
            4..=6 => Kind::Inline,
            7 => Kind::Empty,
            8..=10 => Kind::External,
            11..=12 => Kind::Symlink,
            13 => Kind::Device,
            14..=15 => Kind::Whiteout,
            16 => Kind::Fifo,
            17 => Kind::Socket,
            _ => Kind::Hardlink,
        })
    }

    fn name(&self, u: &mut Unstructured<'_>) -> Result<Vec<u8>> {
        let name = match u.int_in_range(0u8..=9)? {
            // Whiteout stub names of the root: two lowercase hex digits.
            0 => format!("{:02x}", u.arbitrary::<u8>()?).into_bytes(),
            1 => {
                let len = u.int_in_range(1usize..=255)?;
                let b = *u.choose(NAME_BYTES)?;
                let mut n = vec![b; len];
                if let Some(last) = n.last_mut() {
                    *last = u.arbitrary::<u8>()?.max(1);
                }
                n
            }
            2 if self.raw => u.arbitrary::<Vec<u8>>()?,
            _ => {
                let len = u.int_in_range(1usize..=4)?;
                (0..len)
                    .map(|_| u.choose(NAME_BYTES).copied())
                    .collect::<Result<Vec<u8>>>()?
            }
        };
        Ok(if !self.raw && (name == b"." || name == b"..") {
            [name.as_slice(), b"_"].concat()
        } else {
            name.into_iter()
                .map(|b| {
                    if !self.raw && (b == 0 || b == b'/') {
                        b'_'
                    } else {
                        b
                    }
                })
                .collect()
        })
    }

    fn id(&self, u: &mut Unstructured<'_>) -> Result<u32> {
        Ok(match u.int_in_range(0u8..=7)? {
            0..=2 => 0,
            3 => 65535,
            4 => 65536,
            5 => u32::MAX,
            6 => 1000,
            _ => u.arbitrary()?,
        })
    }

    fn meta(&self, u: &mut Unstructured<'_>) -> Result<Meta> {
        let permissions = match u.int_in_range(0u8..=5)? {
            0..=2 => *u.choose(&[0o644u32, 0o755, 0o600, 0o4755, 0o1777, 0o777])?,
            3..=4 => u.int_in_range(0u32..=0o7777)?,
            _ => u.arbitrary::<u32>()? & !0o170000,
        };
        let uid = self.id(u)?;
        let gid = self.id(u)?;
        let nlink = match u.int_in_range(0u8..=5)? {
            0..=2 => 1,
            3 => 2,
            4 if self.raw => 0,
            _ => u.arbitrary::<u32>()?.max(1),
        };
        let sec = match u.int_in_range(0u8..=4)? {
            0 | 1 => 0,
            2 => 1_700_000_000,
            3 => i64::from(u.arbitrary::<i32>()?),
            _ => u.arbitrary()?,
        };
        let nsec = match u.int_in_range(0u8..=3)? {
            0 | 1 => 0,
            2 => u.int_in_range(0u32..=999_999_999)?,
            _ => u.arbitrary()?,
        };
        let xattrs = self.xattrs(u)?;
        Ok(Meta {
            permissions,
            uid,
            gid,
            nlink,
            mtime: Mtime { sec, nsec },
            xattrs,
        })
    }

    /// A byte string of `len` made by repeating a short fuzz-chosen pattern.
    fn pattern(u: &mut Unstructured<'_>, len: usize) -> Result<Vec<u8>> {
        let plen = u.int_in_range(1usize..=8)?;
        let pat: Vec<u8> = (0..plen).map(|_| u.arbitrary()).collect::<Result<_>>()?;
        Ok(pat.iter().copied().cycle().take(len).collect())
    }

    fn bytes(u: &mut Unstructured<'_>, boundaries: &[usize]) -> Result<Vec<u8>> {
        if u.ratio(1u8, 3u8)? {
            let b = *u.choose(boundaries)?;
            let delta = u.int_in_range(0usize..=2)?;
            let len = if u.arbitrary()? {
                b.saturating_add(delta)
            } else {
                b.saturating_sub(delta)
            };
            Self::pattern(u, len)
        } else {
            let len = u.int_in_range(0usize..=24)?;
            (0..len).map(|_| u.arbitrary()).collect()
        }
    }

    fn xattrs(&self, u: &mut Unstructured<'_>) -> Result<Vec<Xattr>> {
        let mut out: Vec<Xattr> = Vec::new();
        let count = match u.int_in_range(0u8..=7)? {
            0..=3 => 0,
            4..=6 => u.int_in_range(1usize..=4)?,
            _ => u.int_in_range(5usize..=140)?,
        };
        for _ in 0..count {
            if u.is_empty() {
                break;
            }
            let prefix = *u.choose(XATTR_KEYS)?;
            let suffix = if u.ratio(1u8, 3u8)? {
                Vec::new()
            } else {
                Self::bytes(u, &[1, 2, 16, 200, 240, 255])?
            };
            let mut key = [prefix, &suffix].concat();
            if !self.raw {
                key.retain(|&b| b != 0);
                key.truncate(255);
                if key.is_empty() {
                    key = b"user.k".to_vec();
                }
            }
            let value = match u.int_in_range(0u8..=9)? {
                // A well-formed metacopy value (00 24 00 01 + digest) or a redirect.
                0 => [&[0u8, 0x24, 0, 1][..], &Self::pattern(u, 32)?].concat(),
                1 => b"/ab/cdef".to_vec(),
                2 => b"y".to_vec(),
                3 => b"x".to_vec(),
                _ => Self::bytes(u, &[0, 1, 32, 36, 4096, 12_000, 32_767, 65_535, 65_536])?,
            };
            if !self.raw && out.iter().any(|x| x.key == key) {
                continue;
            }
            out.push(Xattr { key, value });
        }
        Ok(out)
    }

    fn node(&self, u: &mut Unstructured<'_>, kind: Kind, meta: Meta) -> Result<Node> {
        let base = |file_type: u32| Node {
            mode: file_type | meta.permissions,
            uid: meta.uid,
            gid: meta.gid,
            nlink: meta.nlink,
            mtime: meta.mtime,
            xattrs: meta.xattrs.clone(),
            ..Node::default()
        };
        let mut node = match kind {
            Kind::Directory => Node {
                size: *u.choose(&[0u64, 4096, 1 << 40])?,
                ..base(S_IFDIR)
            },
            Kind::Inline => {
                let content = Self::bytes(
                    u,
                    &[1, 2047, 2048, 2049, 4095, 4096, 4097, 4999, 5000, 5001],
                )?;
                Node {
                    size: content.len() as u64,
                    content: Some(content),
                    ..base(S_IFREG)
                }
            }
            Kind::Empty => base(S_IFREG),
            Kind::External => {
                let size = match u.int_in_range(0u8..=5)? {
                    0 => u.int_in_range(1u64..=100_000)?,
                    1 => 1u64 << u.int_in_range(12u32..=53)?,
                    2 => (1u64 << u.int_in_range(12u32..=53)?) + 1,
                    3 => (1u64 << 53) + u.int_in_range(0u64..=1)?,
                    4 => u.arbitrary::<u64>()?.max(1),
                    _ => u.int_in_range(1u64..=(1 << 53))?,
                };
                let payload = match u.int_in_range(0u8..=4)? {
                    0 => None,
                    1 => Some(Vec::new()),
                    2 => Some(b"ab/cdef0123".to_vec()),
                    _ => Some(self.path(u)?),
                };
                let digest = if u.arbitrary()? {
                    Some(u.arbitrary::<[u8; 32]>()?)
                } else {
                    None
                };
                Node {
                    size,
                    payload,
                    digest,
                    ..base(S_IFREG)
                }
            }
            Kind::Symlink => {
                let mut target = Self::bytes(u, &[1, 255, 256, 4094, 4095, 4096])?;
                if !self.raw {
                    target.retain(|&b| b != 0);
                    target.truncate(4095);
                    if target.is_empty() {
                        target = b"t".to_vec();
                    }
                }
                Node {
                    size: target.len() as u64,
                    payload: Some(target),
                    ..base(S_IFLNK)
                }
            }
            Kind::Device => {
                let any: u32 = u.arbitrary()?;
                let rdev = *u.choose(&[1u32, 0x0801, u32::MAX, any])?;
                let file_type = if u.arbitrary()? { S_IFBLK } else { S_IFCHR };
                Node {
                    rdev,
                    ..base(file_type)
                }
            }
            Kind::Whiteout => base(S_IFCHR),
            Kind::Fifo => base(S_IFIFO),
            Kind::Socket => base(S_IFSOCK),
            Kind::Hardlink => base(S_IFREG),
        };
        if self.raw && u.ratio(1u8, 3u8)? {
            match u.int_in_range(0u8..=6)? {
                0 => node.mode = u.arbitrary()?,
                1 => node.size = u.arbitrary()?,
                2 => node.content = Some(Self::bytes(u, &[5000, 5001])?),
                3 => node.payload = Some(self.path(u)?),
                4 => node.digest = Some(u.arbitrary()?),
                5 => node.rdev = u.arbitrary()?,
                _ => node.nlink = 0,
            }
        }
        Ok(node)
    }

    /// A backing path: mostly relative components, sometimes not.
    fn path(&self, u: &mut Unstructured<'_>) -> Result<Vec<u8>> {
        Ok(match u.int_in_range(0u8..=5)? {
            0 => b"/abs".to_vec(),
            1 => b"a//b".to_vec(),
            2 => b"a/../b".to_vec(),
            3 => Self::pattern(u, 4096)?,
            _ => {
                let mut p = self.name(u)?;
                p.retain(|&b| b != b'/');
                if p.is_empty() || p == b"." || p == b".." {
                    p = b"obj".to_vec();
                }
                [b"ab/".as_slice(), &p].concat()
            }
        })
    }
}
