//! Writer tests on trees built in code: structure of the output, every error kind, depth.
//! Byte identity with the reference is tested against the reference tool in the
//! conformance package (`tests/tests/writer_*.rs`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation,
    clippy::panic
)]

use alloc::vec;
use alloc::vec::Vec;
use zerocopy::FromBytes;

use super::*;
use crate::ondisk::*;
use crate::tree::{Mtime, Node, NodeId, Tree, Xattr};

fn dir() -> Node {
    Node {
        nlink: 2,
        ..Node::with_mode(S_IFDIR | 0o755)
    }
}

fn file(size: u64) -> Node {
    Node {
        size,
        nlink: 1,
        ..Node::with_mode(S_IFREG | 0o644)
    }
}

fn add(t: &mut Tree, parent: NodeId, name: &[u8], node: Node) -> NodeId {
    let id = t.add(node).unwrap();
    t.insert_child(parent, name.to_vec(), id, false).unwrap();
    id
}

fn image(t: &Tree, options: Options) -> (Vec<u8>, u64, u32) {
    let mut out = Vec::new();
    let layout = write_image(t, &options, &mut out).unwrap();
    assert_eq!(layout.image_size(), out.len() as u64);
    (out, layout.root_nid(), layout.version())
}

fn superblock(img: &[u8]) -> Superblock {
    Superblock::read_from_bytes(&img[1024..1152]).unwrap()
}

fn compact_at(img: &[u8], nid: u64) -> CompactInode {
    let at = (nid * 32) as usize;
    CompactInode::read_from_bytes(&img[at..at + 32]).unwrap()
}

/// (name, nid, file type) of every entry of the directory inode at `nid`, whose entries
/// are all inline (no blocks).
fn inline_dirents(img: &[u8], nid: u64) -> Vec<(Vec<u8>, u64, u8)> {
    let inode = compact_at(img, nid);
    let xattr_size = match inode.i_xattr_icount.get() {
        0 => 0,
        n => 12 + 4 * (usize::from(n) - 1),
    };
    let start = (nid * 32) as usize + 32 + xattr_size;
    dirents_in(&img[start..start + inode.i_size.get() as usize])
}

/// (name, nid, file type) of the entries of one directory block or tail.
fn dirents_in(tail: &[u8]) -> Vec<(Vec<u8>, u64, u8)> {
    let first = Dirent::read_from_bytes(&tail[..12]).unwrap();
    let count = usize::from(first.nameoff.get()) / 12;
    (0..count)
        .map(|i| {
            let d = Dirent::read_from_bytes(&tail[12 * i..12 * i + 12]).unwrap();
            let end = if i + 1 < count {
                usize::from(
                    Dirent::read_from_bytes(&tail[12 * i + 12..12 * i + 24])
                        .unwrap()
                        .nameoff
                        .get(),
                )
            } else {
                let last = &tail[usize::from(d.nameoff.get())..];
                usize::from(d.nameoff.get())
                    + last.iter().position(|&b| b == 0).unwrap_or(last.len())
            };
            (
                tail[usize::from(d.nameoff.get())..end].to_vec(),
                d.nid.get(),
                d.file_type,
            )
        })
        .collect()
}

#[test]
fn empty_root_has_the_fixed_header_superblock_and_256_stubs() {
    let t = Tree::new(dir());
    let (img, root_nid, version) = image(&t, Options::default());
    assert_eq!(version, 0);
    assert_eq!(root_nid, 36);
    let header = ComposefsHeader::read_from_bytes(&img[..32]).unwrap();
    assert_eq!(header.magic.get(), COMPOSEFS_MAGIC);
    assert_eq!(header.version.get(), 1);
    assert_eq!(header.flags.get(), 0);
    assert_eq!(header.composefs_version.get(), 0);
    assert!(img[32..1024].iter().all(|&b| b == 0));
    let sb = superblock(&img);
    assert_eq!(sb.magic.get(), EROFS_SUPER_MAGIC_V1);
    assert_eq!(sb.feature_compat.get(), 0x6);
    assert_eq!(sb.blkszbits, 12);
    assert_eq!(sb.root_nid.get(), 36);
    assert_eq!(sb.inos.get(), 257);
    assert_eq!(u64::from(sb.blocks.get()) * 4096, img.len() as u64);
    // Root: "." (13 bytes), ".." (14) and 256 stubs (14 each) take 3611 bytes: more than
    // half a block, so one block. Its only xattr is trusted.overlay.opaque=y: a 12-byte
    // header and a 20-byte entry.
    let root = compact_at(&img, 36);
    assert_eq!(root.i_mode.get(), (S_IFDIR | 0o755) as u16);
    assert_eq!(root.i_nlink.get(), 2);
    assert_eq!(root.i_size.get(), 4096);
    assert_eq!(root.i_format.get(), EROFS_INODE_FLAT_PLAIN << 1);
    assert_eq!(root.i_xattr_icount.get(), (32 - 12) / 4 + 1);
    // Inodes end at 1152 + 64 + 256 * 32 = 9408; the data starts at block 3.
    assert_eq!(sb.xattr_blkaddr.get(), 2);
    assert_eq!(root.i_u.get(), 3);
    assert_eq!(img.len(), 4 * 4096);
    // Every stub is a compact character device 0:0, mode 0644, nlink 1, in name order.
    for k in 0..256u64 {
        let stub = compact_at(&img, 38 + k);
        assert_eq!(stub.i_mode.get(), (S_IFCHR | 0o644) as u16);
        assert_eq!(stub.i_nlink.get(), 1);
        assert_eq!(stub.i_u.get(), 0);
        assert_eq!(stub.i_ino.get(), k as u32 + 1);
    }
    assert!(img[9408..12288].iter().all(|&b| b == 0));
    // The root block: ".", "..", "00".."ff" pointing at the root and the stubs.
    let first = Dirent::read_from_bytes(&img[12288..12300]).unwrap();
    assert_eq!(first.nameoff.get(), 258 * 12);
    assert_eq!(first.nid.get(), 36);
    assert_eq!(first.file_type, EROFS_FT_DIR);
    let third = Dirent::read_from_bytes(&img[12288 + 24..12288 + 36]).unwrap();
    assert_eq!((third.nid.get(), third.file_type), (38, EROFS_FT_CHRDEV));
    let names = &img[12288 + 258 * 12..12288 + 3611];
    assert!(names.starts_with(b"...000102"));
    assert!(names.ends_with(b"fdfeff"));
}

/// Offset and size of the inode at `nid`, and its xattr area size.
fn inode_shape(img: &[u8], nid: u64) -> (usize, usize, usize) {
    let at = (nid * 32) as usize;
    let format = u16::from_le_bytes([img[at], img[at + 1]]);
    let icount = usize::from(u16::from_le_bytes([img[at + 2], img[at + 3]]));
    let size = if format & 1 == 1 { 64 } else { 32 };
    (
        at,
        size,
        if icount == 0 {
            0
        } else {
            12 + 4 * (icount - 1)
        },
    )
}

/// The xattrs of the inode at `nid` as (full name, value), shared ones resolved, in the
/// order stored (shared first).
fn xattrs_at(img: &[u8], nid: u64) -> Vec<(Vec<u8>, Vec<u8>)> {
    let (at, size, xsize) = inode_shape(img, nid);
    if xsize == 0 {
        return Vec::new();
    }
    let body = &img[at + size..at + size + xsize];
    let shared = usize::from(body[4]);
    let base = superblock(img).xattr_blkaddr.get() as usize * 4096;
    let entry = |e: &[u8]| -> ((Vec<u8>, Vec<u8>), usize) {
        let (len, index) = (usize::from(e[0]), e[1]);
        let vlen = usize::from(u16::from_le_bytes([e[2], e[3]]));
        let prefix = XATTR_PREFIXES
            .iter()
            .find(|(i, _)| *i == index)
            .map_or(&b""[..], |p| p.1);
        let name = [prefix, &e[4..4 + len]].concat();
        (
            (name, e[4 + len..4 + len + vlen].to_vec()),
            (4 + len + vlen + 3) & !3,
        )
    };
    let mut out = Vec::new();
    for k in 0..shared {
        let id = u32::from_le_bytes(body[12 + 4 * k..16 + 4 * k].try_into().unwrap()) as usize;
        out.push(entry(&img[base + 4 * id..]).0);
    }
    let mut rest = &body[12 + 4 * shared..];
    while !rest.is_empty() {
        let (x, n) = entry(rest);
        out.push(x);
        rest = &rest[n..];
    }
    out
}

fn kv(k: &[u8], v: &[u8]) -> (Vec<u8>, Vec<u8>) {
    (k.to_vec(), v.to_vec())
}

/// A tree with a directory `d` holding a whiteout `w` (with a stray size, which the
/// writer drops) next to a file with a user `trusted.overlay.*` xattr.
fn whiteout_tree() -> (Tree, NodeId, NodeId) {
    let mut t = Tree::new(dir());
    let d = add(&mut t, NodeId::ROOT, b"d", dir());
    let w = add(
        &mut t,
        d,
        b"w",
        Node {
            size: 9,
            nlink: 1,
            ..Node::with_mode(S_IFCHR | 0o600)
        },
    );
    let mut f = file(0);
    f.set_xattr(b"trusted.overlay.metacopy".to_vec(), b"user value".to_vec());
    f.set_xattr(b"user.overlay.whiteout".to_vec(), b"kept".to_vec());
    add(&mut t, d, b"f", f);
    (t, d, w)
}

#[test]
fn whiteouts_become_marked_files_and_mark_their_directory() {
    let (t, d, w) = whiteout_tree();
    for (options, version) in [
        (Options::default(), 1),
        (
            Options {
                min_version: 0,
                max_version: 0,
            },
            0,
        ),
    ] {
        let mut img = Vec::new();
        let layout = write_image(&t, &options, &mut img).unwrap();
        assert_eq!(layout.version(), version);
        assert_eq!(u32::from_le_bytes(img[12..16].try_into().unwrap()), version);
        let w_nid = layout.nid(w).unwrap();
        let (at, _, _) = inode_shape(&img, w_nid);
        let inode = CompactInode::read_from_bytes(&img[at..at + 32]).unwrap();
        assert_eq!(inode.i_mode.get(), (S_IFREG | 0o600) as u16);
        assert_eq!(inode.i_size.get(), 0);
        let mut w_x = xattrs_at(&img, w_nid);
        w_x.sort();
        assert_eq!(
            w_x,
            [
                kv(b"trusted.overlay.overlay.whiteout", b""),
                kv(b"user.overlay.whiteout", b"")
            ]
        );
        let mut d_x = xattrs_at(&img, layout.nid(d).unwrap());
        d_x.sort();
        let mut want = vec![
            kv(b"trusted.overlay.overlay.whiteouts", b""),
            kv(b"user.overlay.whiteouts", b""),
        ];
        if version == 1 {
            want.push(kv(b"trusted.overlay.overlay.opaque", b"x"));
            want.push(kv(b"user.overlay.opaque", b"x"));
        }
        want.sort();
        assert_eq!(d_x, want);
        // The dirent of the whiteout says regular file.
        let entries = inline_dirents(&img, layout.nid(d).unwrap());
        assert!(entries.contains(&(b"w".to_vec(), w_nid, EROFS_FT_REG_FILE)));
    }
}

#[test]
fn user_overlay_xattrs_are_escaped_and_the_root_is_opaque() {
    let (t, d, _) = whiteout_tree();
    let mut img = Vec::new();
    let layout = write_image(&t, &Options::default(), &mut img).unwrap();
    let f = t.node(d).unwrap().child(b"f").unwrap().node;
    let mut f_x = xattrs_at(&img, layout.nid(f).unwrap());
    f_x.sort();
    assert_eq!(
        f_x,
        [
            kv(b"trusted.overlay.overlay.metacopy", b"user value"),
            kv(b"user.overlay.whiteout", b"kept")
        ]
    );
    assert_eq!(
        xattrs_at(&img, layout.root_nid()),
        [kv(b"trusted.overlay.opaque", b"y")]
    );
}

#[test]
fn writer_names_replace_colliding_escaped_names() {
    // The reference fails on this tree (its xattr budget underflows); we write it, and
    // the writer's own value wins.
    let mut t = Tree::new(dir());
    let mut w = Node {
        nlink: 1,
        ..Node::with_mode(S_IFCHR)
    };
    w.set_xattr(b"trusted.overlay.whiteout".to_vec(), b"abcdefgh".to_vec());
    w.set_xattr(b"user.foo".to_vec(), b"1".to_vec());
    let w = add(&mut t, NodeId::ROOT, b"w", w);
    let mut img = Vec::new();
    let layout = write_image(&t, &Options::default(), &mut img).unwrap();
    let mut got = xattrs_at(&img, layout.nid(w).unwrap());
    got.sort();
    assert_eq!(
        got,
        [
            kv(b"trusted.overlay.overlay.whiteout", b""),
            kv(b"user.foo", b"1"),
            kv(b"user.overlay.whiteout", b""),
        ]
    );
}

#[test]
fn external_files_get_metacopy_and_redirect() {
    let mut t = Tree::new(dir());
    let digest = [0xab; 32];
    let with_both = add(
        &mut t,
        NodeId::ROOT,
        b"a",
        Node {
            payload: Some(b"ab/cd".to_vec()),
            digest: Some(digest),
            ..file(10)
        },
    );
    let payload_only = add(
        &mut t,
        NodeId::ROOT,
        b"b",
        Node {
            payload: Some(b"x/y".to_vec()),
            ..file(10)
        },
    );
    let digest_only = add(
        &mut t,
        NodeId::ROOT,
        b"c",
        Node {
            digest: Some(digest),
            ..file(1 << 40)
        },
    );
    let inline = add(
        &mut t,
        NodeId::ROOT,
        b"d",
        Node {
            content: Some(b"hi".to_vec()),
            ..file(2)
        },
    );
    let mut img = Vec::new();
    let layout = write_image(&t, &Options::default(), &mut img).unwrap();
    let metacopy = [&[0u8, 36, 0, 1][..], &digest].concat();
    let mut got = xattrs_at(&img, layout.nid(with_both).unwrap());
    got.sort();
    assert_eq!(
        got,
        [
            kv(b"trusted.overlay.metacopy", &metacopy),
            kv(b"trusted.overlay.redirect", b"/ab/cd")
        ]
    );
    let mut got = xattrs_at(&img, layout.nid(payload_only).unwrap());
    got.sort();
    assert_eq!(
        got,
        [
            kv(b"trusted.overlay.metacopy", b""),
            kv(b"trusted.overlay.redirect", b"/x/y")
        ]
    );
    assert_eq!(
        xattrs_at(&img, layout.nid(digest_only).unwrap()),
        [kv(b"trusted.overlay.metacopy", &metacopy)]
    );
    assert!(xattrs_at(&img, layout.nid(inline).unwrap()).is_empty());
    // External files are chunk-based with one hole per chunk after the xattrs.
    let (at, size, xsize) = inode_shape(&img, layout.nid(digest_only).unwrap());
    let inode = ExtendedInode::read_from_bytes(&img[at..at + 64]).unwrap();
    assert_eq!(
        inode.i_format.get(),
        EROFS_INODE_CHUNK_BASED << 1 | 1,
        "extended: size > 2^32-1"
    );
    assert_eq!(inode.i_size.get(), 1 << 40);
    assert_eq!(inode.i_u.get(), 40 - 12, "chunk bits minus block bits");
    assert_eq!(&img[at + size + xsize..at + size + xsize + 4], &[0xff; 4]);
    // The metacopy value is shared by a and c; the empty one is b's alone.
    assert_eq!(img[at + size + 4], 1, "one shared xattr");
}

#[test]
fn hard_links_point_at_the_primary_inode() {
    let mut t = Tree::new(dir());
    let z = add(&mut t, NodeId::ROOT, b"z", dir());
    let f = add(
        &mut t,
        z,
        b"f",
        Node {
            nlink: 2,
            ..file(0)
        },
    );
    t.insert_child(NodeId::ROOT, b"a".to_vec(), f, true)
        .unwrap();
    let mut img = Vec::new();
    let layout = write_image(&t, &Options::default(), &mut img).unwrap();
    let f_nid = layout.nid(f).unwrap();
    // Breadth-first: root, then its primary children a-z with the stubs; f comes last.
    let inodes: Vec<InodeInfo> = layout.inodes().collect();
    assert_eq!(inodes.len(), 1 + 1 + 256 + 1);
    assert_eq!(inodes.last().unwrap().origin, Origin::Node(f));
    assert_eq!(inodes[1].origin, Origin::RootStub(0));
    // The root's entries fill a block; "a" is a hard link to f.
    let root = compact_at(&img, layout.root_nid());
    let block = root.i_u.get() as usize * 4096;
    let entries = dirents_in(&img[block..block + 4096]);
    assert!(entries.contains(&(b"a".to_vec(), f_nid, EROFS_FT_REG_FILE)));
    assert!(entries.contains(&(b"z".to_vec(), layout.nid(z).unwrap(), EROFS_FT_DIR)));
    assert!(entries.contains(&(b"..".to_vec(), 36, EROFS_FT_DIR)));
    // Directory nlink counts subdirectories only.
    assert_eq!(root.i_nlink.get(), 3);
}

#[test]
fn mtimes_ids_and_sizes_pick_the_inode_form() {
    let mut t = Tree::new(Node {
        mtime: Mtime { sec: 5, nsec: 1 },
        ..dir()
    });
    let old = add(
        &mut t,
        NodeId::ROOT,
        b"old",
        Node {
            mtime: Mtime { sec: -3, nsec: 7 },
            ..file(0)
        },
    );
    let big_uid = add(
        &mut t,
        NodeId::ROOT,
        b"uid",
        Node {
            uid: 65536,
            mtime: Mtime { sec: -3, nsec: 7 },
            ..file(0)
        },
    );
    let big = add(
        &mut t,
        NodeId::ROOT,
        b"big",
        Node {
            mtime: Mtime { sec: -3, nsec: 7 },
            ..file(1 << 32)
        },
    );
    let mut img = Vec::new();
    let layout = write_image(&t, &Options::default(), &mut img).unwrap();
    let sb = superblock(&img);
    assert_eq!(sb.build_time.get(), (-3i64) as u64);
    assert_eq!(sb.build_time_nsec.get(), 7);
    assert_eq!(layout.build_time(), Mtime { sec: -3, nsec: 7 });
    let form = |id| img[(layout.nid(id).unwrap() * 32) as usize] & 1;
    assert_eq!(form(old), 0);
    assert_eq!(form(big_uid), 1);
    assert_eq!(form(big), 1);
    assert_eq!(form(NodeId::ROOT), 1, "the root's mtime is not the minimum");
    let at = (layout.nid(NodeId::ROOT).unwrap() * 32) as usize;
    let root = ExtendedInode::read_from_bytes(&img[at..at + 64]).unwrap();
    assert_eq!((root.i_mtime.get(), root.i_mtime_nsec.get()), (5, 1));
}

#[test]
fn every_limit_is_an_error_naming_the_node() {
    let check = |node: Node, kind: WriteErrorKind| {
        let mut t = Tree::new(dir());
        let id = add(&mut t, NodeId::ROOT, b"x", node);
        let err = plan(&t, &Options::default()).unwrap_err();
        assert_eq!((err.node(), err.kind()), (Some(id), kind));
    };
    check(
        Node {
            nlink: 0,
            ..file(0)
        },
        WriteErrorKind::ZeroLinks,
    );
    let link = |target: &[u8]| Node {
        payload: Some(target.to_vec()),
        ..Node::with_mode(S_IFLNK | 0o777)
    };
    check(link(b""), WriteErrorKind::SymlinkTargetEmpty);
    check(
        Node::with_mode(S_IFLNK | 0o777),
        WriteErrorKind::SymlinkTargetEmpty,
    );
    check(
        link(&[b'a'; 4096]),
        WriteErrorKind::SymlinkTargetTooLong { len: 4096 },
    );
    check(link(b"a\0b"), WriteErrorKind::PayloadNul);
    check(
        Node {
            content: Some(vec![1; 5001]),
            ..file(5001)
        },
        WriteErrorKind::ContentTooLarge { len: 5001 },
    );
    check(
        Node {
            content: Some(vec![1; 10]),
            ..file(11)
        },
        WriteErrorKind::ContentSizeMismatch { len: 10, size: 11 },
    );
    for (path, at) in [
        (&b"/abs"[..], 0),
        (b"a//b", 2),
        (b"a/../b", 2),
        (b"./a", 0),
        (b"a/", 2),
    ] {
        let node = Node {
            payload: Some(path.to_vec()),
            ..file(1)
        };
        check(node, WriteErrorKind::PayloadNotRelative { at });
    }
    // Unused backing paths (inline or empty files) are not redirects.
    let mut t = Tree::new(dir());
    add(
        &mut t,
        NodeId::ROOT,
        b"e",
        Node {
            payload: Some(b"/abs".to_vec()),
            ..file(0)
        },
    );
    assert!(plan(&t, &Options::default()).is_ok());
    check(
        Node {
            payload: Some(vec![b'p'; 4096]),
            ..file(1)
        },
        WriteErrorKind::PayloadTooLong { len: 4096 },
    );
    check(
        file((1 << 53) + 1),
        WriteErrorKind::FileTooLarge {
            size: (1 << 53) + 1,
            chunks: 1025,
        },
    );
    let with_xattr = |key: &[u8], value: Vec<u8>| {
        let mut n = file(0);
        n.xattrs.push(Xattr {
            key: key.to_vec(),
            value,
        });
        n
    };
    check(
        with_xattr(b"", vec![]),
        WriteErrorKind::XattrNameEmpty { index: 0 },
    );
    check(
        with_xattr(&[b'u'; 256], vec![]),
        WriteErrorKind::XattrNameTooLong { index: 0, len: 256 },
    );
    check(
        with_xattr(b"user.a\0", vec![]),
        WriteErrorKind::XattrNameNul { index: 0 },
    );
    check(
        with_xattr(b"user.a", vec![0; 65536]),
        WriteErrorKind::XattrValueTooLong {
            index: 0,
            len: 65536,
        },
    );
    let mut dup = with_xattr(b"user.a", vec![]);
    dup.xattrs.push(Xattr {
        key: b"user.a".to_vec(),
        value: vec![1],
    });
    check(dup, WriteErrorKind::XattrDuplicate { index: 1 });
    // Six values of 60000 bytes: far beyond what i_xattr_icount can describe.
    let mut huge = file(0);
    for k in 0..6u8 {
        huge.xattrs.push(Xattr {
            key: vec![b'u', b's', b'e', b'r', b'.', b'a' + k],
            value: vec![k; 60000],
        });
    }
    check(
        huge,
        WriteErrorKind::XattrAreaTooLarge {
            size: 12 + 6 * 60008,
        },
    );

    let t = Tree::new(dir());
    let err = plan(
        &t,
        &Options {
            min_version: 2,
            max_version: 2,
        },
    )
    .unwrap_err();
    assert_eq!(
        (err.node(), err.kind()),
        (None, WriteErrorKind::UnsupportedVersion { min: 2, max: 2 })
    );
}

#[test]
fn chunk_map_that_cannot_follow_its_xattrs_inline_is_refused() {
    // 1024 chunks (a 2^53-byte file) take a whole block: they fit only when the xattrs end
    // on a block boundary. A redirect makes the xattr area end mid-slot.
    let mut t = Tree::new(dir());
    let ok = add(&mut t, NodeId::ROOT, b"ok", file(1 << 53));
    let mut img = Vec::new();
    let layout = write_image(&t, &Options::default(), &mut img).unwrap();
    // Extended inode (64 bytes), xattrs 32 (the empty metacopy): padding puts the map on a
    // block boundary.
    let map = layout.nid(ok).unwrap() * 32 + 96;
    assert_eq!(map % 4096, 0);
    assert!(img[map as usize..map as usize + 4096]
        .iter()
        .all(|&b| b == 0xff));

    // With a redirect the xattrs take 12 + 20 + 28 = 60 bytes: no padding by whole slots
    // puts the map at a block start.
    let mut t = Tree::new(dir());
    let bad = add(
        &mut t,
        NodeId::ROOT,
        b"p",
        Node {
            payload: Some(b"ab/cd".to_vec()),
            ..file(1 << 53)
        },
    );
    let err = plan(&t, &Options::default()).unwrap_err();
    assert_eq!(
        (err.node(), err.kind()),
        (
            Some(bad),
            WriteErrorKind::ChunkMapNotInline { chunks: 1024 }
        )
    );
}

#[test]
fn invalid_trees_are_refused_before_planning() {
    let mut t = Tree::new(dir());
    let d = add(&mut t, NodeId::ROOT, b"d", dir());
    t.insert_child(NodeId::ROOT, b"e".to_vec(), d, true)
        .unwrap();
    let err = plan(&t, &Options::default()).unwrap_err();
    assert_eq!(err.node(), Some(d));
    assert!(matches!(
        err.kind(),
        WriteErrorKind::Tree(crate::tree::TreeError::HardlinkedDirectory(_))
    ));
}

#[test]
fn deep_trees_are_written_without_recursion() {
    let mut t = Tree::new(dir());
    let mut at = NodeId::ROOT;
    for _ in 0..3000 {
        at = add(&mut t, at, b"d", dir());
    }
    let handle = std::thread::Builder::new()
        .stack_size(128 * 1024)
        .spawn(move || {
            let mut img = Vec::new();
            let layout = write_image(&t, &Options::default(), &mut img).unwrap();
            (layout.inode_count(), img.len())
        })
        .unwrap();
    let (inodes, len) = handle.join().unwrap();
    assert_eq!(inodes, 1 + 3000 + 256);
    assert_eq!(len % 4096, 0);
}

#[test]
fn describe_offset_names_every_structure() {
    let (t, d, w) = whiteout_tree();
    let layout = plan(&t, &Options::default()).unwrap();
    let mut img = Vec::new();
    layout.emit(&mut img).unwrap();
    assert_eq!(layout.describe_offset(0).structure, Structure::Header);
    assert_eq!(
        layout.describe_offset(500).structure,
        Structure::HeaderPadding
    );
    assert_eq!(
        layout.describe_offset(1100).structure,
        Structure::Superblock
    );
    let root = layout.describe_offset(1152);
    assert!(
        matches!(root.structure, Structure::Inode(i) if i.nid == 36 && i.origin == Origin::Node(NodeId::ROOT))
    );
    assert_eq!((root.start, root.end), (1152, 1152 + 32));
    let x = layout.describe_offset(1152 + 40);
    assert!(matches!(x.structure, Structure::Xattrs(i) if i.ino == 0));
    let w_at = layout.nid(w).unwrap() * 32;
    assert!(
        matches!(layout.describe_offset(w_at).structure, Structure::Inode(i) if i.origin == Origin::Node(w))
    );
    let d_at = layout.nid(d).unwrap() * 32;
    let d_region = layout.describe_offset(d_at);
    let d_tail = (0..4096u64)
        .map(|k| layout.describe_offset(d_at + k))
        .find(|r| matches!(r.structure, Structure::Tail(_)))
        .unwrap();
    assert!(d_tail.start >= d_region.end);
    // Walking the whole image region by region covers every byte exactly once.
    let mut at = 0u64;
    while at < img.len() as u64 {
        let r = layout.describe_offset(at);
        assert!(r.start <= at && at < r.end, "{r:?} at {at}");
        assert!(!matches!(r.structure, Structure::PastEnd));
        at = r.end;
    }
    assert_eq!(at, img.len() as u64);
    assert_eq!(layout.describe_offset(at).structure, Structure::PastEnd);
}

#[test]
fn errors_display_node_field_and_problem() {
    let mut t = Tree::new(dir());
    let bad = add(
        &mut t,
        NodeId::ROOT,
        b"p",
        Node {
            payload: Some(b"ab/cd".to_vec()),
            ..file(1 << 53)
        },
    );
    let err = plan(&t, &Options::default())
        .map(|l| l.image_size())
        .unwrap_err();
    assert_eq!(err.node(), Some(bad));
    assert_eq!(err.kind().field(), Some("SIZE"));
    assert_eq!(
        alloc::string::ToString::to_string(&err),
        "node 1: SIZE: the 1024-entry chunk map of this file cannot be stored inline after its xattrs"
    );
    let kind = WriteErrorKind::XattrValueTooLong {
        index: 2,
        len: 70000,
    };
    assert_eq!(
        alloc::string::ToString::to_string(&kind),
        "xattr 3: value of 70000 bytes exceeds the maximum of 65535"
    );
    assert_eq!(WriteErrorKind::ImageTooLarge.field(), None);
}
