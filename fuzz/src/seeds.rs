//! Small built-in trees whose images the mutation target starts from: between them they
//! hold every inode form and file type, shared and inline xattrs, escaped overlay xattrs,
//! an ACL, a whiteout (format version 1 with the root stubs), hard links, a file with a
//! data block and a tail, external files with and without digest, and a directory of
//! several blocks.

use composefs_format::ondisk::{S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFREG, S_IFSOCK};
use composefs_format::tree::{Mtime, Node, NodeId, Tree, Xattr};
use composefs_format::write::Options;

fn x(key: &str, value: &[u8]) -> Xattr {
    Xattr {
        key: key.as_bytes().to_vec(),
        value: value.to_vec(),
    }
}

fn node(mode: u32) -> Node {
    Node {
        mode,
        nlink: 1,
        mtime: Mtime {
            sec: 1_700_000_000,
            nsec: 0,
        },
        ..Node::default()
    }
}

fn add(tree: &mut Tree, parent: NodeId, name: &str, node: Node) -> NodeId {
    let id = tree.add(node).expect("few nodes");
    tree.insert_child(parent, name.as_bytes().to_vec(), id, false)
        .expect("valid seed entry");
    id
}

/// Everything at once, written at format version 1 (it holds a whiteout).
fn mixed() -> Tree {
    let mut root = node(S_IFDIR | 0o755);
    root.xattrs = vec![x("security.selinux", b"system_u:object_r:root_t:s0")];
    let mut t = Tree::new(root);
    let shared = x("user.shared", b"same value on three inodes");
    let mut a = node(S_IFDIR | 0o750);
    a.uid = 1000;
    a.gid = 1000;
    a.xattrs = vec![shared.clone(), x("trusted.overlay.custom", b"escaped")];
    let a = add(&mut t, NodeId::ROOT, "a", a);
    let mut file = node(S_IFREG | 0o644);
    file.nlink = 2;
    file.size = 12;
    file.content = Some(b"hello world\n".to_vec());
    file.xattrs = vec![shared.clone(), x("user.small", b"1")];
    let file = add(&mut t, a, "file", file);
    t.insert_child(a, b"hl".to_vec(), file, true).expect("link");
    let mut big = node(S_IFREG | 0o600);
    let content: Vec<u8> = (0..4097u32).map(|i| (i % 251) as u8).collect();
    big.size = content.len() as u64;
    big.content = Some(content);
    big.uid = 70_000;
    big.mtime = Mtime { sec: -5, nsec: 7 };
    add(&mut t, a, "big", big);
    let mut ext = node(S_IFREG | 0o755);
    ext.size = 1 << 20;
    ext.payload = Some(b"ab/cdef0123456789".to_vec());
    ext.digest = Some([0xab; 32]);
    ext.xattrs = vec![
        shared,
        x("system.posix_acl_access", &[2, 0, 0, 0, 1, 0, 6, 0]),
    ];
    add(&mut t, a, "ext", ext);
    let mut nodigest = node(S_IFREG | 0o644);
    nodigest.size = 5000;
    add(&mut t, a, "nodigest", nodigest);
    let mut sym = node(S_IFLNK | 0o777);
    sym.payload = Some(b"a/file".to_vec());
    sym.size = 6;
    add(&mut t, NodeId::ROOT, "sym", sym);
    let mut dev = node(S_IFCHR | 0o620);
    dev.rdev = 0x0801;
    add(&mut t, NodeId::ROOT, "dev", dev);
    let mut blk = node(S_IFBLK | 0o660);
    blk.rdev = 0x1234_5678;
    add(&mut t, NodeId::ROOT, "blk", blk);
    add(&mut t, NodeId::ROOT, "fifo", node(S_IFIFO | 0o644));
    add(&mut t, NodeId::ROOT, "sock", node(S_IFSOCK | 0o755));
    let sub = add(&mut t, a, "sub", node(S_IFDIR | 0o755));
    add(&mut t, sub, "wh", node(S_IFCHR));
    add(&mut t, sub, "empty", node(S_IFREG | 0o644));
    t
}

/// A directory of 300 entries: several dirent blocks.
fn big_directory() -> Tree {
    let mut t = Tree::new(node(S_IFDIR | 0o755));
    let d = add(&mut t, NodeId::ROOT, "d", node(S_IFDIR | 0o755));
    for i in 0..300 {
        let mut f = node(S_IFREG | 0o644);
        if i % 7 == 0 {
            f.size = 3;
            f.content = Some(b"abc".to_vec());
        }
        add(&mut t, d, &format!("entry-with-a-longer-name-{i:04}"), f);
    }
    t
}

/// Just a root.
fn empty() -> Tree {
    Tree::new(node(S_IFDIR | 0o755))
}

/// The seed trees with the options to write them with.
#[must_use]
pub fn trees() -> Vec<(Tree, Options)> {
    vec![
        (mixed(), Options::default()),
        (
            big_directory(),
            Options {
                min_version: 0,
                max_version: 0,
            },
        ),
        (empty(), Options::default()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use composefs_format::canonical;

    #[test]
    fn seed_images_are_canonical() {
        for (i, (tree, options)) in trees().iter().enumerate() {
            let image = crate::write_tree(tree, options).expect("seed writes");
            if let Err(e) = canonical::verify(&image) {
                panic!("seed {i}: {e}");
            }
        }
    }
}
