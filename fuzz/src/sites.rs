//! Mutation sites: the fields of a valid image, located with the reader's own offsets
//! (inode offset, xattr area and entry offsets, dirent offsets, name positions) and, for
//! padding, with the writer's layout.
//!
//! A site is *structural* when the writer derives its bytes from the rest of the image
//! (magic numbers, feature bits, counts, offsets, nids, dirent types, inode formats, xattr
//! counts and filters, link counts of directories, padding, chunk maps):
//! changing one can never give another canonical image, so `canonical::verify` must reject
//! it. Other sites hold the tree's own data (modes, owners, times, sizes of files, names,
//! xattr names and values, content): a changed one may describe another tree, which may be
//! canonical in its own right. Name offsets (`nameoff`) and the byte after the last name
//! of a dirent block count as data: they are boundaries of names.

use std::collections::BTreeSet;

use composefs_format::image::Image;
use composefs_format::ondisk::{FileType, EROFS_BLKSIZ};
use composefs_format::write::{Layout, Structure};

/// One field or byte range of an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Site {
    /// First byte.
    pub start: usize,
    /// Length of the range (a multiple of `width`).
    pub len: usize,
    /// Width of one value written into the range: 1, 2, 4 or 8 bytes.
    pub width: usize,
    /// Whether the writer derives these bytes (see the module documentation).
    pub structural: bool,
    /// What the site is, for messages.
    pub what: &'static str,
    /// Offset of the name filter and nid of the inode the site belongs to, if it has an
    /// xattr area (for recomputing the filter after a mutation).
    pub filter_of: Option<(usize, u64)>,
}

fn field(start: u64, width: usize, structural: bool, what: &'static str) -> Site {
    Site {
        start: usize::try_from(start).unwrap_or(usize::MAX),
        len: width,
        width,
        structural,
        what,
        filter_of: None,
    }
}

fn range(start: u64, len: u64, structural: bool, what: &'static str) -> Site {
    Site {
        start: usize::try_from(start).unwrap_or(usize::MAX),
        len: usize::try_from(len).unwrap_or(0),
        width: 1,
        structural,
        what,
        filter_of: None,
    }
}

/// The composefs header and superblock fields (SPEC.md 2.1, 2.2).
fn header_and_superblock(out: &mut Vec<Site>) {
    const S: bool = true;
    for (off, w, structural, what) in [
        (0u64, 4usize, S, "header magic"),
        (4, 4, S, "header version"),
        (8, 4, S, "header flags"),
        (12, 4, false, "composefs_version"),
        (16, 4, S, "header unused"),
        (28, 4, S, "header unused"),
        (1024, 4, S, "sb magic"),
        (1028, 4, S, "sb checksum"),
        (1032, 4, S, "feature_compat"),
        (1036, 1, S, "blkszbits"),
        (1037, 1, S, "sb_extslots"),
        (1038, 2, S, "root_nid"),
        (1040, 8, S, "inos"),
        (1048, 8, false, "build_time"),
        (1056, 4, false, "build_time_nsec"),
        (1060, 4, S, "blocks"),
        (1064, 4, S, "meta_blkaddr"),
        (1068, 4, S, "xattr_blkaddr"),
        (1072, 16, S, "uuid"),
        (1088, 16, S, "volume_name"),
        (1104, 4, S, "feature_incompat"),
        (1108, 2, S, "u1"),
        (1110, 2, S, "extra_devices"),
        (1112, 2, S, "devt_slotoff"),
        (1114, 1, S, "dirblkbits"),
        (1115, 1, S, "xattr_prefix_count"),
        (1116, 4, S, "xattr_prefix_start"),
        (1120, 8, S, "packed_nid"),
        (1128, 1, S, "xattr_filter_reserved"),
        (1129, 23, S, "sb reserved2"),
    ] {
        if w > 8 || w == 23 {
            out.push(range(off, w as u64, structural, what));
        } else {
            out.push(field(off, w, structural, what));
        }
    }
    out.push(range(32, 1024 - 32, true, "header padding"));
}

/// Every site of `image`: header, superblock, and for each inode reachable from the root
/// its fields, xattr area, xattr entries, dirents, names, inline part and data blocks.
/// `layout` (the writer's plan of the same image) adds the padding regions.
#[must_use]
pub fn sites(image: &Image<'_>, layout: Option<&Layout<'_>>) -> Vec<Site> {
    let mut out = Vec::new();
    header_and_superblock(&mut out);
    let base = image.bytes().as_ptr() as usize;
    let mut seen = BTreeSet::new();
    let mut shared_seen = BTreeSet::new();
    let mut stack = vec![image.root_nid()];
    while let Some(nid) = stack.pop() {
        if !seen.insert(nid) || seen.len() > 4096 {
            continue;
        }
        let Ok(inode) = image.inode(nid) else {
            continue;
        };
        let o = inode.offset();
        let is_dir = inode.is_dir();
        let ft = inode.file_type();
        let filter = (inode.xattr_size() > 0)
            .then(|| (usize::try_from(inode.xattr_offset()).unwrap_or(0), nid));
        let mut own = Vec::new();
        own.push(field(o, 2, true, "i_format"));
        own.push(field(o + 2, 2, true, "i_xattr_icount"));
        own.push(field(o + 4, 2, false, "i_mode"));
        let sized = matches!(ft, FileType::Directory);
        let has_u = matches!(ft, FileType::CharDevice | FileType::BlockDevice);
        if inode.is_extended() {
            own.push(field(o + 6, 2, true, "i_reserved"));
            own.push(field(o + 8, 8, sized, "i_size"));
            own.push(field(o + 16, 4, !has_u, "i_u"));
            own.push(field(o + 20, 4, true, "i_ino"));
            own.push(field(o + 24, 4, false, "i_uid"));
            own.push(field(o + 28, 4, false, "i_gid"));
            own.push(field(o + 32, 8, false, "i_mtime"));
            own.push(field(o + 40, 4, false, "i_mtime_nsec"));
            own.push(field(o + 44, 4, is_dir, "i_nlink"));
            own.push(range(o + 48, 16, true, "i_reserved2"));
        } else {
            own.push(field(o + 6, 2, is_dir, "i_nlink"));
            own.push(field(o + 8, 4, sized, "i_size"));
            own.push(field(o + 12, 4, true, "i_reserved"));
            own.push(field(o + 16, 4, !has_u, "i_u"));
            own.push(field(o + 20, 4, true, "i_ino"));
            own.push(field(o + 24, 2, false, "i_uid"));
            own.push(field(o + 26, 2, false, "i_gid"));
            own.push(field(o + 28, 4, true, "i_reserved2"));
        }
        if let Ok(xs) = inode.xattrs() {
            if xs.area_size() > 0 {
                let a = inode.xattr_offset();
                own.push(field(a, 4, true, "h_name_filter"));
                own.push(field(a + 4, 1, true, "h_shared_count"));
                own.push(range(a + 5, 7, true, "h_reserved2"));
                if xs.shared_count() > 0 {
                    own.push(Site {
                        width: 4,
                        ..range(
                            a + 12,
                            4 * u64::from(xs.shared_count()),
                            false,
                            "shared xattr id",
                        )
                    });
                }
            }
            for x in xs.iter().take(512) {
                let Ok(x) = x else { break };
                if x.shared_id().is_some() && !shared_seen.insert(x.offset()) {
                    continue;
                }
                let e = x.offset();
                let name_len = x.suffix().len() as u64;
                let value_len = x.value().len() as u64;
                own.push(field(e, 1, false, "e_name_len"));
                own.push(field(e + 1, 1, false, "e_name_index"));
                own.push(field(e + 2, 2, false, "e_value_size"));
                own.push(range(e + 4, name_len, false, "xattr name"));
                own.push(range(e + 4 + name_len, value_len, false, "xattr value"));
                let body = 4 + name_len + value_len;
                let pad = body.div_ceil(4) * 4 - body;
                own.push(range(e + body, pad, true, "xattr entry padding"));
            }
        }
        let tail = (inode.inline_offset(), inode.inline_len());
        match ft {
            FileType::Regular if inode.is_external() => own.push(Site {
                width: 4,
                ..range(tail.0, tail.1, true, "chunk map")
            }),
            FileType::Regular | FileType::Symlink => {
                own.push(range(tail.0, tail.1, false, "inline data"));
                if let Some((blk, n)) = inode.data_blocks() {
                    let len = (n * EROFS_BLKSIZ).min(inode.size());
                    own.push(range(
                        u64::from(blk) * EROFS_BLKSIZ,
                        len,
                        false,
                        "data blocks",
                    ));
                }
            }
            FileType::Directory => {
                if let Ok(dir) = inode.dir() {
                    let mut last_end: Option<(u64, u64)> = None;
                    for e in dir.entries().take(20_000) {
                        let Ok(e) = e else { break };
                        let d = e.offset();
                        own.push(field(d, 8, true, "dirent nid"));
                        // A `nameoff` is where one name ends and the next begins: moving it
                        // renames two entries, which can give another canonical image.
                        own.push(field(d + 8, 2, false, "dirent nameoff"));
                        own.push(field(d + 10, 1, true, "dirent file_type"));
                        own.push(field(d + 11, 1, true, "dirent reserved"));
                        let name_at = (e.name().as_ptr() as usize - base) as u64;
                        let dots = e.name() == b"." || e.name() == b"..";
                        own.push(range(name_at, e.name().len() as u64, dots, "dirent name"));
                        let end = name_at + e.name().len() as u64;
                        let block = e.position() / EROFS_BLKSIZ;
                        if let Some((b, prev_end)) = last_end.filter(|&(b, _)| b != block) {
                            block_padding(&mut own, &inode, b, prev_end);
                        }
                        last_end = Some((block, end));
                        if !dots {
                            stack.push(e.nid());
                        }
                    }
                    if let Some((b, end)) = last_end {
                        block_padding(&mut own, &inode, b, end);
                    }
                }
            }
            _ => {}
        }
        for mut s in own {
            s.filter_of = filter;
            out.push(s);
        }
    }
    if let Some(layout) = layout {
        padding(image, layout, &mut out);
    }
    let len = image.bytes().len();
    out.retain(|s| s.len > 0 && s.start.checked_add(s.len).is_some_and(|end| end <= len));
    out
}

/// The bytes after the last name (ending at `end`) of directory block `block`, if that
/// block is a full data block (an inline tail has no padding). The last name ends at the
/// first NUL, so the byte right after it would lengthen it (data); the rest is padding.
fn block_padding(
    out: &mut Vec<Site>,
    inode: &composefs_format::inode::Inode<'_>,
    block: u64,
    end: u64,
) {
    let full_blocks = inode.data_blocks().map_or(0, |(_, n)| n);
    let rest = EROFS_BLKSIZ - end % EROFS_BLKSIZ;
    if block >= full_blocks || end % EROFS_BLKSIZ == 0 {
        return;
    }
    out.push(range(end, 1, false, "dirent name end"));
    out.push(range(end + 1, rest - 1, true, "dir block padding"));
}

/// The padding regions of the writer's layout (all structural).
fn padding(image: &Image<'_>, layout: &Layout<'_>, out: &mut Vec<Site>) {
    let len = image.len();
    let mut at = 0u64;
    let mut regions = 0usize;
    while at < len && regions < 100_000 {
        let r = layout.describe_offset(at);
        if r.end <= at {
            break;
        }
        let what = match r.structure {
            Structure::HeaderPadding => Some("header padding"),
            Structure::InodePadding(_) => Some("inode padding"),
            Structure::InodesEndPadding => Some("inodes end padding"),
            Structure::DataPadding => Some("data padding"),
            _ => None,
        };
        if let Some(what) = what {
            out.push(range(r.start, r.end - r.start, true, what));
        }
        at = r.end;
        regions += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{seeds, write_tree};
    use composefs_format::write;

    #[test]
    fn the_mixed_seed_has_every_kind_of_site_inside_the_image() {
        let (tree, options) = &seeds::trees()[0];
        let bytes = write_tree(tree, options).unwrap();
        let image = Image::open(&bytes).unwrap();
        let layout = write::plan(tree, options).unwrap();
        let found = sites(&image, Some(&layout));
        let kinds: BTreeSet<&str> = found.iter().map(|s| s.what).collect();
        for kind in [
            "sb magic",
            "root_nid",
            "i_format",
            "i_mtime",
            "i_nlink",
            "h_name_filter",
            "shared xattr id",
            "e_value_size",
            "xattr name",
            "xattr value",
            "xattr entry padding",
            "dirent nid",
            "dirent nameoff",
            "dirent name",
            "inline data",
            "data blocks",
            "chunk map",
            "inode padding",
            "dir block padding",
        ] {
            assert!(kinds.contains(kind), "no {kind} site");
        }
        for s in &found {
            assert!(s.start + s.len <= bytes.len(), "{s:?}");
            assert_eq!(s.len % s.width, 0, "{s:?}");
        }
        // The writer derives these; it never derives a name.
        let structural = |what: &str| {
            found
                .iter()
                .filter(|s| s.what == what)
                .all(|s| s.structural)
        };
        assert!(structural("dirent nid") && structural("h_name_filter"));
        assert!(found
            .iter()
            .any(|s| s.what == "dirent name" && !s.structural));
    }
}
