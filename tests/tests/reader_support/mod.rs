//! Shared helpers of the reader tests: a model of what `composefs-info dump` shows, built
//! from our views, a parser for the reference's dump output, and a walk that drives every
//! public accessor of the reader (used on hostile images: it must never panic).
#![allow(dead_code, clippy::unwrap_used, clippy::indexing_slicing, missing_docs)]

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use composefs_format::image::Image;
use composefs_format::inode::Inode;
use composefs_format::ondisk::{FileType, S_IFCHR, S_IFMT};
use composefs_format::overlay::{self, Metacopy, OVERLAY_PREFIX};
use composefs_format::Error;

/// One line of `composefs-info dump`, as fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub path: Vec<u8>,
    pub size: u64,
    pub hardlink: bool,
    pub mode: u32,
    pub nlink: u64,
    pub uid: u64,
    pub gid: u64,
    pub rdev: u64,
    pub mtime: (i64, u64),
    pub payload: Option<Vec<u8>>,
    pub content: Option<Vec<u8>>,
    pub digest: Option<Vec<u8>>,
    /// Sorted: the reference prints inline and shared xattrs in its own order.
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

pub fn unescape(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < field.len() {
        if field[i] == b'\\' && i + 1 < field.len() {
            match field[i + 1] {
                b'\\' => out.push(b'\\'),
                b'n' => out.push(b'\n'),
                b'r' => out.push(b'\r'),
                b't' => out.push(b'\t'),
                b'x' => {
                    let hex = std::str::from_utf8(&field[i + 2..i + 4]).unwrap();
                    out.push(u8::from_str_radix(hex, 16).unwrap());
                    i += 2;
                }
                other => panic!("unknown escape \\{}", other as char),
            }
            i += 2;
        } else {
            out.push(field[i]);
            i += 1;
        }
    }
    out
}

fn optional(field: &[u8]) -> Option<Vec<u8>> {
    (field != b"-").then(|| unescape(field))
}

fn num(field: &[u8]) -> u64 {
    std::str::from_utf8(field).unwrap().parse().unwrap()
}

/// Parses the reference's `composefs-info dump` output.
pub fn parse_dump(text: &[u8]) -> Vec<Record> {
    let mut out = Vec::new();
    for line in text.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let fields: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
        assert!(
            fields.len() >= 11,
            "short dump line {}",
            String::from_utf8_lossy(line)
        );
        let (hardlink, mode) = match fields[2].strip_prefix(b"@") {
            Some(m) => (true, m),
            None => (false, fields[2]),
        };
        let mode = u32::from_str_radix(std::str::from_utf8(mode).unwrap(), 8).unwrap();
        let mtime = std::str::from_utf8(fields[7]).unwrap();
        let (sec, nsec) = mtime.split_once('.').unwrap();
        let mut xattrs: Vec<(Vec<u8>, Vec<u8>)> = fields[11..]
            .iter()
            .filter(|f| !f.is_empty())
            .map(|f| {
                let eq = f.iter().position(|&b| b == b'=').unwrap();
                (unescape(&f[..eq]), unescape(&f[eq + 1..]))
            })
            .collect();
        xattrs.sort();
        out.push(Record {
            path: unescape(fields[0]),
            size: num(fields[1]),
            hardlink,
            mode,
            nlink: num(fields[3]),
            uid: num(fields[4]),
            gid: num(fields[5]),
            rdev: num(fields[6]),
            mtime: (sec.parse().unwrap(), nsec.parse().unwrap()),
            payload: optional(fields[8]),
            content: optional(fields[9]),
            digest: optional(fields[10]),
            xattrs,
        });
    }
    out
}

fn hex(bytes: &[u8]) -> Vec<u8> {
    composefs_conformance::hex(bytes).into_bytes()
}

/// What the reference shows for one inode (without path and hardlink marker).
fn record_of(inode: &Inode<'_>) -> Result<Record, Error> {
    let mut mode = u32::from(inode.mode());
    let mut size = inode.size();
    let mut rdev = u64::from(inode.rdev());
    let mut xattrs = Vec::new();
    let mut whiteout = false;
    for x in inode.xattrs()?.iter() {
        let x = x?;
        let mut name = vec![0u8; x.name_len()];
        x.write_name(&mut name)?;
        if let Some(rest) = overlay::escaped_suffix(&x) {
            let mut unescaped = OVERLAY_PREFIX.to_vec();
            unescaped.extend_from_slice(rest);
            match rest {
                b"whiteout" if inode.file_type() == FileType::Regular => whiteout = true,
                b"whiteouts" => {}
                _ => xattrs.push((unescaped, x.value().to_vec())),
            }
        } else if overlay::is_internal(&x)
            || name == b"user.overlay.whiteout"
            || name == b"user.overlay.whiteouts"
        {
        } else {
            xattrs.push((name, x.value().to_vec()));
        }
    }
    xattrs.sort();
    if whiteout {
        mode = (mode & !S_IFMT) | S_IFCHR;
        size = 0;
        rdev = 0;
    }
    let (payload, content, digest) = match inode.file_type() {
        FileType::Symlink => (Some(inode.symlink_target()?.to_vec()), None, None),
        FileType::Regular if !whiteout => {
            let digest = match inode.metacopy()? {
                Metacopy::Digest(d) => Some(hex(&d)),
                _ => None,
            };
            let payload = inode.redirect()?.map(<[u8]>::to_vec);
            let content = if !inode.is_external() && inode.size() > 0 {
                let mut buf = vec![0u8; inode.size() as usize];
                assert_eq!(inode.read_at(0, &mut buf)?, buf.len());
                let parts = inode.data_parts()?;
                assert_eq!([parts.blocks, parts.tail].concat(), buf);
                Some(buf)
            } else {
                None
            };
            (payload, content, digest)
        }
        _ => (None, None, None),
    };
    Ok(Record {
        path: Vec::new(),
        size,
        hardlink: false,
        mode,
        nlink: u64::from(inode.nlink()),
        uid: u64::from(inode.uid()),
        gid: u64::from(inode.gid()),
        rdev,
        mtime: (inode.mtime().sec, u64::from(inode.mtime().nsec)),
        payload,
        content,
        digest,
        xattrs,
    })
}

/// Our model of `composefs-info dump`: pre-order, children in stored (sorted) order, `.`
/// and `..` and character devices 0:0 skipped, the first name of a nid is its primary.
/// Per path: the record, or the error our reader gave for that entry.
pub fn our_dump(image: &Image<'_>) -> Vec<(Vec<u8>, Result<Record, Error>)> {
    let root = image.root().unwrap();
    let mut rec = record_of(&root);
    if let Ok(r) = &mut rec {
        r.path = b"/".to_vec();
    }
    let mut out = vec![(b"/".to_vec(), rec)];
    let mut primary: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
    primary.insert(root.nid(), b"/".to_vec());
    out.extend(subtree(image, (Vec::new(), root.nid()), &mut primary));
    out
}

fn subtree(
    image: &Image<'_>,
    start: (Vec<u8>, u64),
    primary: &mut BTreeMap<u64, Vec<u8>>,
) -> Vec<(Vec<u8>, Result<Record, Error>)> {
    // Explicit stack of iterators over (path, nid) children lists.
    let mut out = Vec::new();
    let mut stack: Vec<std::vec::IntoIter<(Vec<u8>, u64)>> =
        vec![children(image, &start).into_iter()];
    while let Some(top) = stack.last_mut() {
        let Some((path, child)) = top.next() else {
            stack.pop();
            continue;
        };
        let inode = match image.inode(child) {
            Ok(i) => i,
            Err(e) => {
                out.push((path, Err(e)));
                continue;
            }
        };
        if inode.file_type() == FileType::CharDevice && inode.rdev() == 0 {
            continue;
        }
        let mut rec = record_of(&inode);
        let first = primary.get(&child).cloned();
        if let Ok(r) = &mut rec {
            r.path = path.clone();
            if let Some(first) = &first {
                r.hardlink = true;
                r.payload = Some(first.clone());
            }
        }
        out.push((path.clone(), rec));
        if first.is_none() {
            primary.insert(child, path.clone());
            if inode.is_dir() {
                stack.push(children(image, &(path, child)).into_iter());
            }
        }
    }
    out
}

fn children(image: &Image<'_>, (dir_path, nid): &(Vec<u8>, u64)) -> Vec<(Vec<u8>, u64)> {
    let dir = image.inode(*nid).unwrap().dir().unwrap();
    let mut out = Vec::new();
    for e in dir.entries() {
        let e = e.unwrap();
        if e.name() == b"." || e.name() == b".." {
            continue;
        }
        let mut path = dir_path.clone();
        path.push(b'/');
        path.extend_from_slice(e.name());
        out.push((path, e.nid()));
    }
    out
}

/// Compares our model with the reference output, field by field. Paths listed in
/// `expected_errors` must fail in our reader (and are skipped in the comparison).
pub fn compare(
    name: &str,
    ours: &[(Vec<u8>, Result<Record, Error>)],
    reference: &[Record],
    expected_errors: &[&[u8]],
) {
    let mut refs = reference.iter();
    for (path, rec) in ours {
        let want = refs
            .next()
            .unwrap_or_else(|| panic!("{name}: extra path {}", String::from_utf8_lossy(path)));
        assert_eq!(
            String::from_utf8_lossy(path),
            String::from_utf8_lossy(&want.path),
            "{name}: path order"
        );
        let got = match rec {
            Ok(r) => {
                assert!(
                    !expected_errors.contains(&path.as_slice()),
                    "{name}: {} read without the expected error",
                    String::from_utf8_lossy(path)
                );
                r
            }
            Err(e) => {
                assert!(
                    expected_errors.contains(&path.as_slice()),
                    "{name}: {}: unexpected error {e}",
                    String::from_utf8_lossy(path)
                );
                continue;
            }
        };
        let mut want = want.clone();
        // The reference reads 2 bytes past a redirect whose "/" + payload length is a
        // multiple of 4; we expect the correct value.
        if let (Some(g), Some(w)) = (&got.payload, &mut want.payload) {
            if !got.hardlink && (g.len() + 1) % 4 == 0 && w.len() == g.len() + 2 && w.starts_with(g)
            {
                w.truncate(g.len());
            }
        }
        let p = String::from_utf8_lossy(path);
        assert_eq!(got.size, want.size, "{name}: {p}: size");
        assert_eq!(got.hardlink, want.hardlink, "{name}: {p}: hardlink");
        assert_eq!(got.mode, want.mode, "{name}: {p}: mode");
        assert_eq!(got.nlink, want.nlink, "{name}: {p}: nlink");
        assert_eq!(
            (got.uid, got.gid),
            (want.uid, want.gid),
            "{name}: {p}: uid/gid"
        );
        assert_eq!(got.rdev, want.rdev, "{name}: {p}: rdev");
        assert_eq!(got.mtime, want.mtime, "{name}: {p}: mtime");
        assert_eq!(got.payload, want.payload, "{name}: {p}: payload");
        assert_eq!(got.content, want.content, "{name}: {p}: content");
        assert_eq!(got.digest, want.digest, "{name}: {p}: digest");
        assert_eq!(got.xattrs, want.xattrs, "{name}: {p}: xattrs");
    }
    assert!(refs.next().is_none(), "{name}: reference has more paths");
}

/// Builds an image from `dump` with the reference mkcomposefs (extra args first) and
/// returns the image bytes and the reference `composefs-info dump` output.
pub fn reference_build(
    mk: &Path,
    info: Option<&Path>,
    dump: &[u8],
    args: &[&str],
    dir: &Path,
    tag: &str,
) -> (Vec<u8>, Option<Vec<u8>>) {
    let dump_path = dir.join(format!("{tag}.dump"));
    let img_path: PathBuf = dir.join(format!("{tag}.img"));
    std::fs::write(&dump_path, dump).unwrap();
    let out = Command::new(mk)
        .args(args)
        .arg("--from-file")
        .arg(&dump_path)
        .arg(&img_path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{tag}: mkcomposefs failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let image = std::fs::read(&img_path).unwrap();
    let dumped = info.map(|info| {
        let out = Command::new(info)
            .arg("dump")
            .arg(&img_path)
            .output()
            .unwrap();
        assert!(out.status.success(), "{tag}: composefs-info dump failed");
        out.stdout
    });
    (image, dumped)
}

/// Drives every public accessor of the reader over whatever is reachable, with bounded
/// work. Errors are fine; panics, hangs and out-of-bounds reads are bugs.
pub fn walk_everything(bytes: &[u8]) -> usize {
    let mut calls = 0usize;
    let report = composefs_format::check::check_bytes(bytes);
    for p in report.problems() {
        let _ = report.path(p);
        let _ = report.nid_of(p);
        let _ = p.error.to_string();
        let _ = p.error.class();
    }
    let Ok(image) = Image::open(bytes) else {
        return calls;
    };
    let _ = (
        image.format_version(),
        image.has_acl(),
        image.build_time(),
        image.inos(),
        image.blocks(),
        image.xattr_blkaddr(),
    );
    let mut seen = HashSet::new();
    let mut stack = vec![image.root_nid()];
    let mut budget = 20_000usize;
    while let Some(nid) = stack.pop() {
        if !seen.insert(nid) || budget == 0 {
            continue;
        }
        budget -= 1;
        calls += 1;
        let Ok(inode) = image.inode(nid) else {
            continue;
        };
        let _ = (
            inode.mode(),
            inode.uid(),
            inode.gid(),
            inode.nlink(),
            inode.size(),
            inode.mtime(),
            inode.rdev(),
            inode.ino(),
            inode.layout(),
            inode.data_blocks(),
            inode.extent_end(),
        );
        if let Ok(xs) = inode.xattrs() {
            let mut names = Vec::new();
            for x in xs.iter().take(10_000) {
                let Ok(x) = x else { break };
                let mut name = vec![0u8; x.name_len()];
                let _ = x.write_name(&mut name);
                let _ = x.write_name(&mut []);
                let _ = overlay::escaped_suffix(&x);
                let _ = overlay::is_internal(&x);
                names.push(name);
            }
            for name in &names {
                let mut buf = [0u8; 64];
                let _ = xs.get(name, &mut buf);
                let _ = xs.get(name, &mut []);
            }
            let mut list = vec![0u8; 1 << 16];
            let _ = xs.list(&mut list);
            let _ = xs.list(&mut []);
            let _ = xs.verify_filter();
        }
        let _ = inode.metacopy();
        let _ = inode.redirect();
        let _ = inode.symlink_target();
        let _ = inode.data_parts();
        let mut buf = [0u8; 5000];
        let _ = inode.read_at(0, &mut buf);
        let _ = inode.read_at(inode.size().saturating_sub(3), &mut buf);
        let _ = inode.read_at(u64::MAX, &mut buf);
        if let Ok(dir) = inode.dir() {
            let mut names = Vec::new();
            for e in dir.entries().take(100_000) {
                let Ok(e) = e else { break };
                names.push(e.name().to_vec());
                let resumed = dir.entries_from(e.position()).next();
                if let Some(Ok(r)) = resumed {
                    assert_eq!(
                        r.name(),
                        e.name(),
                        "resuming at a position yields that entry"
                    );
                }
                stack.push(e.nid());
            }
            for name in names.iter().take(2_000) {
                let _ = dir.lookup(name);
            }
            let _ = dir.lookup(b"zzzz-not-there");
            let _ = dir.lookup(&[b'x'; 300]);
            for b in 0..dir.block_count().min(1_000) {
                if let Ok(block) = dir.block(b) {
                    let _ = block.padding_is_zero();
                    for i in 0..block.len().min(400) {
                        let _ = block.entry(i);
                    }
                }
            }
        }
    }
    let _ = image.lookup_path(b"/dir/sub/leaf");
    let _ = image.lookup_path(b"/a/b/c/d");
    calls
}

/// A minimal valid composefs image, written by hand (no reference tool needed): a chain of
/// `depth` nested directories named `d` under the root. Every directory is a compact
/// `FLAT_INLINE` inode whose dirents follow it; an inode is moved to the next block when
/// its tail would cross a block boundary.
pub fn deep_chain_image(depth: usize) -> Vec<u8> {
    use composefs_format::ondisk::*;
    use zerocopy::IntoBytes;

    let tail = |leaf: bool| if leaf { 24 + 3 } else { 36 + 4 };
    // Place the inodes: root (index 0) .. deepest (index depth).
    let mut offsets = Vec::with_capacity(depth + 1);
    let mut pos = 1152usize;
    for i in 0..=depth {
        pos = pos.div_ceil(32) * 32;
        let t = tail(i == depth);
        if (pos + 32) % 4096 + t > 4096 {
            pos = pos.div_ceil(4096) * 4096;
        }
        offsets.push(pos);
        pos += 32 + t;
    }
    let inodes_end = pos.div_ceil(32) * 32;
    let len = inodes_end.div_ceil(4096) * 4096;
    let mut img = vec![0u8; len];
    let header = ComposefsHeader {
        magic: COMPOSEFS_MAGIC.into(),
        version: COMPOSEFS_HEADER_VERSION.into(),
        ..Default::default()
    };
    img[..32].copy_from_slice(header.as_bytes());
    let sb = Superblock {
        magic: EROFS_SUPER_MAGIC_V1.into(),
        feature_compat: COMPOSEFS_FEATURE_COMPAT.into(),
        blkszbits: 12,
        root_nid: 36.into(),
        inos: (depth as u64 + 1).into(),
        blocks: ((len / 4096) as u32).into(),
        xattr_blkaddr: ((inodes_end / 4096) as u32).into(),
        ..Default::default()
    };
    img[1024..1152].copy_from_slice(sb.as_bytes());
    for i in 0..=depth {
        let leaf = i == depth;
        let nid = (offsets[i] / 32) as u64;
        let parent = if i == 0 {
            nid
        } else {
            (offsets[i - 1] / 32) as u64
        };
        let mut entries: Vec<(u64, &[u8])> = vec![(nid, b"."), (parent, b"..")];
        if !leaf {
            entries.push(((offsets[i + 1] / 32) as u64, b"d"));
        }
        let mut dir = Vec::new();
        let mut nameoff = 12 * entries.len();
        for (target, name) in &entries {
            dir.extend_from_slice(
                Dirent {
                    nid: (*target).into(),
                    nameoff: (nameoff as u16).into(),
                    file_type: EROFS_FT_DIR,
                    reserved: 0,
                }
                .as_bytes(),
            );
            nameoff += name.len();
        }
        for (_, name) in &entries {
            dir.extend_from_slice(name);
        }
        let inode = CompactInode {
            i_format: (EROFS_INODE_FLAT_INLINE << 1).into(),
            i_mode: ((S_IFDIR | 0o755) as u16).into(),
            i_nlink: (if leaf { 2 } else { 3 }).into(),
            i_size: (dir.len() as u32).into(),
            i_ino: (i as u32).into(),
            ..Default::default()
        };
        let o = offsets[i];
        img[o..o + 32].copy_from_slice(inode.as_bytes());
        img[o + 32..o + 32 + dir.len()].copy_from_slice(&dir);
    }
    img
}

/// A dump of a chain of `depth` directories named `d`.
pub fn deep_chain_dump(depth: usize) -> Vec<u8> {
    let mut out = b"/ 4096 40755 2 0 0 0 0.0 - - -\n".to_vec();
    let mut path = String::new();
    for _ in 0..depth {
        path.push_str("/d");
        out.extend_from_slice(format!("{path} 4096 40755 2 0 0 0 0.0 - - -\n").as_bytes());
    }
    out
}

/// A dump of `dirs` directories holding `per_dir` empty files each.
pub fn wide_dump(dirs: usize, per_dir: usize) -> Vec<u8> {
    let mut out = b"/ 4096 40755 2 0 0 0 0.0 - - -\n".to_vec();
    for d in 0..dirs {
        out.extend_from_slice(format!("/dir{d:04} 4096 40755 2 0 0 0 0.0 - - -\n").as_bytes());
        for f in 0..per_dir {
            out.extend_from_slice(
                format!("/dir{d:04}/file-{f:06} 0 100644 1 0 0 0 0.0 - - -\n").as_bytes(),
            );
        }
    }
    out
}
