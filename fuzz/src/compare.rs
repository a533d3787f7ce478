//! Tree comparison up to node numbering, and the writer's canonicalisations.

use std::collections::{BTreeMap, VecDeque};

use composefs_format::ondisk::FileType;
use composefs_format::tree::{Node, NodeId, Tree};

/// How hard-link entries must match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Links {
    /// Each entry's `hardlink` flag must be the same: the same entry is primary.
    Exact,
    /// Any entry of a node may be its primary one; the link structure must still match.
    AnyPrimary,
}

/// A node's own fields, as a tree stores them (children dropped).
#[must_use]
pub fn plain(node: &Node) -> Node {
    Node {
        children: Vec::new(),
        ..node.clone()
    }
}

/// A node's fields as they come back from an image the writer made of it.
///
/// The writer (SPEC.md section 4) keeps some fields and derives or drops others; reading
/// the image back (`from_image::image_to_tree`) gives these values:
/// - `mode`: the low 16 bits (what an inode stores).
/// - xattrs: the same set; order is not kept (the writer sorts them).
/// - directories: `size` is the size of the written dirent blocks and `nlink` is 2 plus
///   the number of subdirectories, whatever the tree said: both are reset to 0 here.
/// - regular files with content: `content` only if the size is not 0; `payload` and
///   `digest` are dropped (only external files carry metacopy/redirect xattrs).
/// - empty regular files (size 0): no content, payload or digest.
/// - external regular files (no content, size > 0): an empty payload is no payload.
/// - symlinks: `size` is the target length; no content or digest.
/// - devices, whiteouts, FIFOs and sockets: `size` 0, no payload, content or digest.
/// - `rdev` is kept for character and block devices only, and is 0 otherwise.
#[must_use]
pub fn normalize_node(node: &Node) -> Node {
    let mut n = plain(node);
    n.mode &= 0xffff;
    n.xattrs.sort();
    let file_type = FileType::from_mode(n.mode);
    if !matches!(
        file_type,
        Some(FileType::CharDevice | FileType::BlockDevice)
    ) {
        n.rdev = 0;
    }
    match file_type {
        Some(FileType::Directory) => {
            n.size = 0;
            n.nlink = 0;
            n.payload = None;
            n.content = None;
            n.digest = None;
        }
        Some(FileType::Regular) => {
            if n.content.is_some() || n.size == 0 {
                if n.size == 0 {
                    n.content = None;
                }
                n.payload = None;
                n.digest = None;
            } else if n.payload.as_deref() == Some(b"") {
                n.payload = None;
            }
        }
        Some(FileType::Symlink) => {
            n.size = n.payload.as_ref().map_or(0, |p| p.len() as u64);
            n.content = None;
            n.digest = None;
        }
        _ => {
            n.size = 0;
            n.payload = None;
            n.content = None;
            n.digest = None;
        }
    }
    n
}

/// `tree` with the overlay xattrs the writer sets on whiteouts and their directories
/// (SPEC.md 4.3 steps 3 to 5) as they read back: a whiteout loses any
/// `trusted.overlay.whiteout` / `user.overlay.whiteout` of its own (the writer's markers
/// replace them and are then removed as the writer's); a directory with a whiteout among
/// its primary entries loses `trusted.overlay.whiteouts` / `user.overlay.whiteouts` the
/// same way and, in format version 1, reads back with `trusted.overlay.opaque` and
/// `user.overlay.opaque` set to `x` (the writer's values, indistinguishable from the user's).
#[must_use]
pub fn after_whiteout_markers(tree: &Tree, version: u32) -> Tree {
    let mut out = tree.clone();
    let mut holders = Vec::new();
    let mut whiteouts = Vec::new();
    for (id, node) in tree.iter() {
        if node.is_whiteout() {
            whiteouts.push(id);
        }
        if node.is_dir()
            && node
                .children
                .iter()
                .any(|e| !e.hardlink && tree.get(e.node).is_some_and(Node::is_whiteout))
        {
            holders.push(id);
        }
    }
    for id in whiteouts {
        if let Some(n) = out.get_mut(id) {
            n.remove_xattr(b"trusted.overlay.whiteout");
            n.remove_xattr(b"user.overlay.whiteout");
        }
    }
    for id in holders {
        if let Some(n) = out.get_mut(id) {
            n.remove_xattr(b"trusted.overlay.whiteouts");
            n.remove_xattr(b"user.overlay.whiteouts");
            if version >= 1 {
                n.set_xattr(b"trusted.overlay.opaque".to_vec(), b"x".to_vec());
                n.set_xattr(b"user.overlay.opaque".to_vec(), b"x".to_vec());
            }
        }
    }
    out
}

/// Compares two trees from the root: the same names in every directory, the same link
/// structure (entries of `a` naming one node name one node in `b`, and the other way
/// round), and equal nodes after `norm`. Returns the first difference, with its path.
///
/// # Errors
/// A description of the first difference.
pub fn same_tree(
    a: &Tree,
    b: &Tree,
    links: Links,
    norm: impl Fn(&Node) -> Node,
) -> Result<(), String> {
    let mut a_to_b: BTreeMap<NodeId, NodeId> = BTreeMap::new();
    let mut b_to_a: BTreeMap<NodeId, NodeId> = BTreeMap::new();
    a_to_b.insert(NodeId::ROOT, NodeId::ROOT);
    b_to_a.insert(NodeId::ROOT, NodeId::ROOT);
    let node = |t: &'_ Tree, id: NodeId| t.get(id).cloned().ok_or(format!("missing node {id:?}"));
    let (ra, rb) = (norm(&node(a, NodeId::ROOT)?), norm(&node(b, NodeId::ROOT)?));
    if ra != rb {
        return Err(format!("/: root differs:\n  {ra:?}\n  {rb:?}"));
    }
    let mut queue: VecDeque<(NodeId, NodeId, Vec<u8>)> = VecDeque::new();
    queue.push_back((NodeId::ROOT, NodeId::ROOT, Vec::new()));
    while let Some((da, db, path)) = queue.pop_front() {
        let (ca, cb) = (&node(a, da)?.children, &node(b, db)?.children);
        let show = |name: &[u8]| {
            let mut p = path.clone();
            p.push(b'/');
            p.extend_from_slice(name);
            String::from_utf8_lossy(&p).into_owned()
        };
        if ca.len() != cb.len() {
            let names = |c: &[composefs_format::tree::Entry]| {
                c.iter()
                    .map(|e| String::from_utf8_lossy(&e.name).into_owned())
                    .collect::<Vec<_>>()
            };
            return Err(format!(
                "{}/: {} entries vs {}: {:?} vs {:?}",
                String::from_utf8_lossy(&path),
                ca.len(),
                cb.len(),
                names(ca),
                names(cb)
            ));
        }
        for (ea, eb) in ca.iter().zip(cb) {
            if ea.name != eb.name {
                return Err(format!(
                    "{}: name differs from {}",
                    show(&ea.name),
                    show(&eb.name)
                ));
            }
            if links == Links::Exact && ea.hardlink != eb.hardlink {
                return Err(format!(
                    "{}: hardlink {} vs {}",
                    show(&ea.name),
                    ea.hardlink,
                    eb.hardlink
                ));
            }
            match (a_to_b.get(&ea.node), b_to_a.get(&eb.node)) {
                (Some(&mb), Some(&ma)) if mb == eb.node && ma == ea.node => continue,
                (None, None) => {}
                _ => return Err(format!("{}: links to a different node", show(&ea.name))),
            }
            a_to_b.insert(ea.node, eb.node);
            b_to_a.insert(eb.node, ea.node);
            let (na, nb) = (node(a, ea.node)?, node(b, eb.node)?);
            let (xa, xb) = (norm(&na), norm(&nb));
            if xa != xb {
                return Err(format!(
                    "{}: node differs:\n  {xa:?}\n  {xb:?}",
                    show(&ea.name)
                ));
            }
            if na.is_dir() {
                let mut p = path.clone();
                p.push(b'/');
                p.extend_from_slice(&ea.name);
                queue.push_back((ea.node, eb.node, p));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use composefs_format::ondisk::{S_IFDIR, S_IFREG};

    /// Root with `a` (a file, hard-linked as `b`) and directory `d`.
    fn sample(primary_is_a: bool) -> Tree {
        let mut t = Tree::new(Node::with_mode(S_IFDIR | 0o755));
        let f = t.add(Node::with_mode(S_IFREG | 0o644)).unwrap();
        let d = t.add(Node::with_mode(S_IFDIR | 0o700)).unwrap();
        t.insert_child(NodeId::ROOT, b"a".to_vec(), f, !primary_is_a)
            .unwrap();
        t.insert_child(NodeId::ROOT, b"b".to_vec(), f, primary_is_a)
            .unwrap();
        t.insert_child(NodeId::ROOT, b"d".to_vec(), d, false)
            .unwrap();
        t
    }

    #[test]
    fn equal_trees_and_renumbered_trees_compare_equal() {
        let t = sample(true);
        assert_eq!(same_tree(&t, &t, Links::Exact, plain), Ok(()));
        // The same filesystem with the nodes added in the other order.
        let mut r = Tree::new(Node::with_mode(S_IFDIR | 0o755));
        let d = r.add(Node::with_mode(S_IFDIR | 0o700)).unwrap();
        let f = r.add(Node::with_mode(S_IFREG | 0o644)).unwrap();
        r.insert_child(NodeId::ROOT, b"d".to_vec(), d, false)
            .unwrap();
        r.insert_child(NodeId::ROOT, b"a".to_vec(), f, false)
            .unwrap();
        r.insert_child(NodeId::ROOT, b"b".to_vec(), f, true)
            .unwrap();
        assert_eq!(same_tree(&t, &r, Links::Exact, plain), Ok(()));
    }

    #[test]
    fn differences_are_found() {
        let t = sample(true);
        // Another primary: only Links::AnyPrimary accepts it.
        let other = sample(false);
        assert!(same_tree(&t, &other, Links::Exact, plain).is_err());
        assert_eq!(same_tree(&t, &other, Links::AnyPrimary, plain), Ok(()));
        // Missing entries.
        let mut fewer = t.clone();
        fewer.get_mut(NodeId::ROOT).unwrap().children.pop();
        assert!(same_tree(&t, &fewer, Links::AnyPrimary, plain).is_err());
        // A field.
        let mut field = t.clone();
        let f = field.root().child(b"a").unwrap().node;
        field.get_mut(f).unwrap().uid = 7;
        assert!(same_tree(&t, &field, Links::AnyPrimary, plain).is_err());
        // The link structure: `b` names a new node with the same fields.
        let mut split = t.clone();
        let copy = split.add(Node::with_mode(S_IFREG | 0o644)).unwrap();
        let root = split.get_mut(NodeId::ROOT).unwrap();
        root.children[1].node = copy;
        root.children[1].hardlink = false;
        assert!(same_tree(&t, &split, Links::AnyPrimary, plain).is_err());
    }

    #[test]
    fn normalization_drops_what_the_writer_derives() {
        let mut dir = Node::with_mode(0o1_040_755);
        dir.size = 123;
        dir.nlink = 9;
        let n = normalize_node(&dir);
        assert_eq!((n.mode, n.size, n.nlink), (0o040_755, 0, 0));
        let mut inline = Node::with_mode(S_IFREG | 0o644);
        inline.size = 3;
        inline.content = Some(b"abc".to_vec());
        inline.digest = Some([1; 32]);
        inline.rdev = 5;
        let n = normalize_node(&inline);
        assert_eq!(
            (n.digest, n.rdev, n.content.as_deref()),
            (None, 0, Some(&b"abc"[..]))
        );
        let mut external = Node::with_mode(S_IFREG | 0o644);
        external.size = 1 << 20;
        external.payload = Some(Vec::new());
        external.digest = Some([1; 32]);
        let n = normalize_node(&external);
        assert_eq!((n.payload, n.digest), (None, Some([1; 32])));
    }
}
