//! A bounded walk over everything the reader exposes.
//!
//! Starting at the root, an explicit stack visits every reachable inode once (up to
//! [`MAX_INODES`]) and calls every public accessor: inode fields, xattrs (iter, find, get
//! with several buffer sizes, list, name filter), directories (entries, `entries_from` at
//! record starts and at odd positions inside records, blocks, lookup of present and absent
//! names), symlink targets, data parts, `read_at` at several offsets, metacopy and
//! redirect, and `lookup_path`. Errors are fine; the assertions are properties that hold
//! for any input, plus, when `sound` is set (the structural check found no problem),
//! properties of sound images: every view builds and every listed name is found.

use std::collections::{BTreeMap, BTreeSet};

use composefs_format::dir::{Dir, Dirent};
use composefs_format::image::Image;
use composefs_format::inode::Inode;
use composefs_format::overlay;
use composefs_format::xattr::Xattrs;
use composefs_format::{Error, ErrorKind};

/// Inodes visited at most.
pub const MAX_INODES: usize = 4096;
/// Entries read per directory at most.
pub const MAX_ENTRIES_PER_DIR: usize = 20_000;
/// Names looked up per directory at most.
pub const MAX_LOOKUPS_PER_DIR: usize = 512;
/// Paths resolved with `lookup_path` at most.
pub const MAX_PATHS: usize = 512;
/// Xattrs read per inode at most.
const MAX_XATTRS: usize = 4096;

/// What a walk saw (for targets that want to compare or count).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Walked {
    /// Inodes visited.
    pub inodes: usize,
    /// Directory entries read.
    pub entries: usize,
}

/// Opens `bytes` and walks it. `sound` tells whether the structural check accepted it.
pub fn walk_bytes(bytes: &[u8], sound: bool) -> Walked {
    match Image::open(bytes) {
        Ok(image) => walk(&image, sound),
        Err(e) => {
            assert!(!sound, "a sound image opens: {e}");
            let _ = e.to_string();
            Walked::default()
        }
    }
}

/// Walks `image`; see the module documentation.
pub fn walk(image: &Image<'_>, sound: bool) -> Walked {
    let _ = (
        image.len(),
        image.is_empty(),
        image.header(),
        image.superblock(),
        image.format_version(),
        image.flags(),
        image.has_acl(),
        image.build_time(),
        image.inos(),
        image.blocks(),
        image.root_nid(),
        image.xattr_blkaddr(),
        image.xattr_filter_enabled(),
    );
    let mut walked = Walked::default();
    let mut seen = BTreeSet::new();
    // (nid, path) — paths only while few enough to resolve them all again.
    let mut stack: Vec<(u64, Option<Vec<u8>>)> = vec![(image.root_nid(), Some(b"/".to_vec()))];
    let mut paths: Vec<(Vec<u8>, u64)> = Vec::new();
    while let Some((nid, path)) = stack.pop() {
        if walked.inodes >= MAX_INODES || !seen.insert(nid) {
            continue;
        }
        walked.inodes += 1;
        let inode = match image.inode(nid) {
            Ok(inode) => inode,
            Err(e) => {
                assert!(!sound, "sound image: inode {nid} fails: {e}");
                continue;
            }
        };
        assert_eq!(inode.nid(), nid);
        inode_fields(&inode);
        xattrs(&inode, image.xattr_filter_enabled(), sound);
        data(&inode, sound);
        if let Ok(dir) = inode.dir() {
            for (name, child) in directory(&dir, sound, &mut walked) {
                let child_path = path.as_ref().filter(|_| paths.len() < MAX_PATHS).map(|p| {
                    let mut c = p.clone();
                    if c != b"/" {
                        c.push(b'/');
                    }
                    c.extend_from_slice(&name);
                    c
                });
                if let Some(p) = &child_path {
                    paths.push((p.clone(), child));
                }
                stack.push((child, child_path));
            }
        }
    }
    for (path, nid) in &paths {
        let got = image.lookup_path(path);
        if sound {
            // `.` and `..` resolve like any name; other components are the walk's own.
            let got = got.unwrap_or_else(|e| panic!("sound image: lookup_path failed: {e}"));
            assert_eq!(got.nid(), *nid, "lookup_path finds what the walk found");
        }
    }
    let _ = image.lookup_path(b"/no/such/path");
    let _ = image.lookup_path(&[b'x'; 300]);
    walked
}

fn inode_fields(inode: &Inode<'_>) {
    let _ = (
        inode.image(),
        inode.offset(),
        inode.is_extended(),
        inode.i_format(),
        inode.reserved_field(),
        inode.file_type(),
        inode.is_dir(),
        inode.mode(),
        inode.permissions(),
        inode.uid(),
        inode.gid(),
        inode.nlink(),
        inode.mtime(),
        inode.rdev(),
        inode.ino(),
        inode.layout(),
        inode.data_blocks(),
        inode.is_external(),
    );
    assert_eq!(
        inode.xattr_offset(),
        inode.offset().wrapping_add(inode.inode_size())
    );
    assert_eq!(
        inode.inline_offset(),
        inode.xattr_offset().wrapping_add(inode.xattr_size())
    );
    assert_eq!(
        inode.extent_end(),
        inode.inline_offset().wrapping_add(inode.inline_len())
    );
    assert_eq!(inode.permissions(), inode.mode() & 0o7777);
}

/// Every xattr accessor; the name, value and listing answers must agree with iteration.
fn xattrs(inode: &Inode<'_>, filter_enabled: bool, sound: bool) {
    let xs: Xattrs<'_> = match inode.xattrs() {
        Ok(xs) => xs,
        Err(e) => {
            assert!(!sound, "sound image: xattrs of {} fail: {e}", inode.nid());
            return;
        }
    };
    let _ = (
        xs.shared_count(),
        xs.name_filter(),
        xs.reserved_is_zero(),
        xs.area_size(),
    );
    // Name -> value of its first occurrence, for names met before any error.
    let mut first: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    let mut order: Vec<Vec<u8>> = Vec::new();
    let mut complete = true;
    for x in xs.iter().take(MAX_XATTRS) {
        let x = match x {
            Ok(x) => x,
            Err(e) => {
                assert!(!sound, "sound image: xattr of {} fails: {e}", inode.nid());
                complete = false;
                break;
            }
        };
        let mut name = vec![0u8; x.name_len()];
        assert_eq!(x.write_name(&mut name).ok(), Some(x.name_len()));
        assert!(x.name_eq(&name), "an xattr equals its own name");
        assert!(x.name_starts_with(x.prefix()));
        assert_eq!(&name[..x.prefix().len()], x.prefix());
        assert!(x.filter_bit() < 32);
        if x.name_len() > 0 {
            assert!(x.write_name(&mut []).is_err(), "no room is an error");
        }
        let _ = (x.index(), x.suffix(), x.shared_id(), x.offset());
        let _ = overlay::escaped_suffix(&x);
        let _ = overlay::is_internal(&x);
        order.push(name.clone());
        first.entry(name).or_insert_with(|| x.value().to_vec());
    }
    if xs.iter().count() > MAX_XATTRS {
        complete = false;
    }
    for (name, value) in &first {
        let found = xs.find(name).expect("find reads the same entries as iter");
        assert_eq!(found.map(|x| x.value()), Some(value.as_slice()));
        assert_eq!(xs.get(name, &mut []).ok(), Some(value.len()));
        let mut exact = vec![0u8; value.len()];
        if !value.is_empty() {
            assert_eq!(xs.get(name, &mut exact).ok(), Some(value.len()));
            assert_eq!(&exact, value);
            let mut short = vec![0u8; value.len() - 1];
            if !short.is_empty() {
                assert!(matches!(
                    xs.get(name, &mut short).map_err(|e| e.kind()),
                    Err(ErrorKind::BufferTooSmall { .. })
                ));
            }
        }
    }
    if complete {
        let needed: usize = order.iter().map(|n| n.len() + 1).sum();
        assert_eq!(xs.list(&mut []).ok(), Some(needed));
        let mut out = vec![0u8; needed];
        if needed > 0 {
            assert_eq!(xs.list(&mut out).ok(), Some(needed));
            let expected: Vec<u8> = order
                .iter()
                .flat_map(|n| n.iter().copied().chain([0]))
                .collect();
            assert_eq!(out, expected, "list is the names in iteration order");
            assert!(xs.list(&mut out[..needed - 1]).is_err());
        }
        let absent = absent_name(first.keys());
        assert_eq!(xs.find(&absent).ok(), Some(None));
        assert!(matches!(
            xs.get(&absent, &mut [0u8; 8]).map_err(|e| e.kind()),
            Err(ErrorKind::XattrNotFound)
        ));
        let filter = xs.computed_filter().expect("complete iteration");
        let verdict = xs.verify_filter();
        if xs.area_size() > 0 {
            assert_eq!(verdict.is_ok(), filter == xs.name_filter());
        } else {
            assert!(verdict.is_ok());
        }
        if sound && filter_enabled && xs.area_size() > 0 {
            assert!(
                verdict.is_ok(),
                "sound image: name filter of {}",
                inode.nid()
            );
        }
    } else {
        let _ = xs.list(&mut []);
        let _ = xs.list(&mut vec![0u8; 1 << 12]);
        let _ = xs.computed_filter();
        let _ = xs.verify_filter();
    }
    let _ = inode.metacopy();
    let _ = inode.redirect();
}

/// A name not in `names` (appends bytes to the longest until it is new).
fn absent_name<'a>(names: impl Iterator<Item = &'a Vec<u8>>) -> Vec<u8> {
    let names: BTreeSet<&Vec<u8>> = names.collect();
    let mut candidate = b"user.fuzz-absent".to_vec();
    while names.contains(&candidate) {
        candidate.push(b'~');
    }
    candidate
}

/// Symlink targets, data parts and `read_at`, which must agree with the data parts.
fn data(inode: &Inode<'_>, sound: bool) {
    let target = inode.symlink_target();
    if let Ok(t) = target {
        assert!(!t.contains(&0));
    }
    let parts = match inode.data_parts() {
        Ok(parts) => parts,
        Err(e) => {
            assert!(!sound, "sound image: data of {} fails: {e}", inode.nid());
            let mut buf = [0u8; 64];
            let _ = inode.read_at(0, &mut buf);
            return;
        }
    };
    let size = inode.size();
    let stored: Vec<u8> = [parts.blocks, parts.tail].concat();
    if sound && !inode.is_external() {
        assert_eq!(
            stored.len() as u64,
            size,
            "sound image: data of {}",
            inode.nid()
        );
    }
    let mut offsets = vec![
        0,
        1,
        size / 2,
        size.saturating_sub(1),
        size,
        4095,
        4096,
        4097,
        u64::MAX,
    ];
    offsets.retain(|&o| o <= size.saturating_add(1) || o == u64::MAX);
    let mut big = vec![0xa5u8; 9000];
    for off in offsets {
        for len in [0usize, 1, 7, 4096, 9000] {
            let buf = &mut big[..len];
            let n = inode
                .read_at(off, buf)
                .expect("data_parts succeeded, so read_at does");
            let want = usize::try_from(size.saturating_sub(off))
                .unwrap_or(usize::MAX)
                .min(len);
            if inode.is_external() {
                assert_eq!(n, want);
                assert!(
                    buf[..n].iter().all(|&b| b == 0),
                    "external data reads as zeros"
                );
            } else {
                assert!(n <= want);
                let start = usize::try_from(off).unwrap_or(usize::MAX);
                let expected = stored.get(start..).unwrap_or_default();
                let expected = &expected[..n.min(expected.len())];
                assert_eq!(&buf[..n], expected, "read_at matches data_parts");
                if sound {
                    assert_eq!(n, want, "sound image: read_at reads all it can");
                }
            }
        }
    }
}

/// Every directory accessor; returns the children to visit (not `.`/`..`).
fn directory(dir: &Dir<'_>, sound: bool, walked: &mut Walked) -> Vec<(Vec<u8>, u64)> {
    let nid = dir.inode().nid();
    let mut entries: Vec<Dirent<'_>> = Vec::new();
    let mut complete = true;
    let mut iter = dir.entries();
    loop {
        let before = iter.position();
        let Some(item) = iter.next() else { break };
        match item {
            Ok(e) => {
                assert!(e.position() >= before, "positions only grow");
                entries.push(e);
                walked.entries += 1;
                if entries.len() >= MAX_ENTRIES_PER_DIR {
                    complete = false;
                    break;
                }
            }
            Err(e) => {
                assert!(!sound, "sound image: entries of {nid} fail: {e}");
                complete = false;
                break;
            }
        }
    }
    // Resuming at an entry's position yields that entry; inside its record, the next one.
    for (i, e) in entries.iter().enumerate() {
        let again = dir.entries_from(e.position()).next();
        assert_eq!(
            again.map(|r| r.ok()),
            Some(Some(*e)),
            "resume at a position"
        );
        for odd in [1u64, 5, 11] {
            let next = dir.entries_from(e.position() + odd).next();
            match entries.get(i + 1) {
                Some(n) => assert_eq!(next.map(|r| r.ok()), Some(Some(*n)), "resume inside"),
                None if complete => assert!(next.is_none(), "nothing after the last entry"),
                None => {}
            }
        }
    }
    let _ = dir.entries_from(u64::MAX).next();
    let _ = dir
        .entries_from(dir.block_count().saturating_mul(4096))
        .next();
    for b in 0..dir.block_count().min(4096) {
        if let Ok(block) = dir.block(b) {
            let _ = (
                block.len(),
                block.is_empty(),
                block.index(),
                block.padding_is_zero(),
            );
            assert!(!block.is_empty());
            for i in 0..block.len().min(400) {
                let _ = block.entry(i);
            }
            assert!(block.entry(block.len()).is_err());
        }
    }
    let _ = dir.block(dir.block_count());
    let _ = dir.block(u64::MAX);

    // Lookups: every listed name (found on sound images), absent names, bad lengths.
    for e in entries.iter().take(MAX_LOOKUPS_PER_DIR) {
        let got = dir.lookup(e.name());
        if sound {
            let got = got.unwrap_or_else(|err| panic!("sound image: lookup in {nid}: {err}"));
            assert_eq!(got, Some(*e), "sound image: lookup finds the listed entry");
        }
    }
    let names: BTreeSet<&[u8]> = entries.iter().map(|e| e.name()).collect();
    for probe in absent_probes(&entries) {
        if names.contains(probe.as_slice()) {
            continue;
        }
        let got = dir.lookup(&probe);
        if sound && complete {
            assert_eq!(got.ok(), Some(None), "sound image: absent name not found");
        }
    }
    assert!(matches!(
        dir.lookup(&[b'x'; 256]).map_err(|e: Error| e.kind()),
        Err(ErrorKind::NameTooLong { len: 256 })
    ));
    assert_eq!(dir.lookup(b"").ok(), Some(None));

    entries
        .iter()
        .filter(|e| e.name() != b"." && e.name() != b"..")
        .map(|e| (e.name().to_vec(), e.nid()))
        .collect()
}

/// Names near the listed ones: before the first, after the last, and between neighbours.
fn absent_probes(entries: &[Dirent<'_>]) -> Vec<Vec<u8>> {
    let mut out = vec![b"\x01".to_vec(), b"\xff\xff\xff".to_vec(), b"-".to_vec()];
    for e in entries.iter().take(64) {
        let mut after = e.name().to_vec();
        if after.len() < 255 {
            after.push(b'\x01');
            out.push(after);
        }
        let mut before = e.name().to_vec();
        before.pop();
        if !before.is_empty() {
            out.push(before);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{seeds, write_tree};

    #[test]
    fn seed_images_pass_the_sound_image_walk() {
        for (tree, options) in seeds::trees() {
            let bytes = write_tree(&tree, &options).unwrap();
            let walked = walk_bytes(&bytes, true);
            // Every node plus the 256 root stubs.
            assert_eq!(walked.inodes, tree.len() + 256);
        }
    }

    #[test]
    #[should_panic(expected = "sound image")]
    fn a_broken_image_claimed_sound_fails_the_walk() {
        let (tree, options) = &seeds::trees()[0];
        let mut bytes = write_tree(tree, options).unwrap();
        // Break the first dirent's nameoff of the root directory.
        let image = Image::open(&bytes).unwrap();
        let root = image.root().unwrap();
        let at = root
            .dir()
            .unwrap()
            .entries()
            .next()
            .unwrap()
            .unwrap()
            .offset() as usize;
        bytes[at + 8] = 1;
        walk_bytes(&bytes, true);
    }
}
