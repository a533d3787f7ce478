//! The structural check: walks every inode reachable from the root and reports every
//! problem, not only the first (SPEC.md 3.6).
//!
//! The views already refuse anything that would make a single read unsafe. The check adds
//! the rules that need the whole tree: name order and uniqueness, `.` and `..`, dirent
//! types, link counts, directories reachable once, name filters, overlay xattr rules,
//! the header ACL flag, and that inode extents and data blocks do not overlap. The walk
//! uses an explicit stack (never recursion), so its native stack use does not depend on
//! the image; its memory is bounded by the image size.

use alloc::collections::BTreeMap;
use alloc::vec;
use alloc::vec::Vec;
use core::cmp::Ordering;

use crate::error::{Error, ErrorKind, Limit, ShortName};
use crate::image::Image;
use crate::inode::Inode;
use crate::limits::{MAX_CHECK_DEPTH, MAX_CHECK_ENTRIES, MAX_CHECK_PROBLEMS};
use crate::ondisk::{
    FileType, EROFS_BLKSIZ, EROFS_SLOTSIZE, EROFS_XATTR_INDEX_NONE,
    EROFS_XATTR_INDEX_POSIX_ACL_ACCESS, EROFS_XATTR_INDEX_POSIX_ACL_DEFAULT, XATTR_ENTRY_SIZE,
};
use crate::overlay::{self, OPAQUE_ROOT_VALUE, OVERLAY_PREFIX};
use crate::xattr::{split_name, Xattr};

/// Where a problem was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location<'a> {
    /// The image as a whole: header, superblock, or a whole-image rule.
    Image,
    /// A directory reached by the walk (its path is known from the walk).
    Dir {
        /// The directory.
        nid: u64,
    },
    /// The inode named `name` in directory `parent`.
    Entry {
        /// The directory holding the entry.
        parent: u64,
        /// The entry name, borrowed from the image.
        name: &'a [u8],
    },
}

/// One problem: the error and where it was met.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Problem<'a> {
    /// What is wrong (with the nid and offset when known).
    pub error: Error,
    /// Where the walk was.
    pub location: Location<'a>,
}

/// [`Report::describe`]: a problem displayed as one line.
#[derive(Debug, Clone, Copy)]
pub struct Described<'r, 'a> {
    report: &'r Report<'a>,
    problem: &'r Problem<'a>,
}

impl core::fmt::Display for Described<'_, '_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let p = self.problem;
        if let Some(nid) = self.report.nid_of(p) {
            write!(f, "nid {nid} ")?;
        }
        if p.location != Location::Image {
            f.write_str("(")?;
            crate::error::write_escaped(f, &self.report.path(p))?;
            f.write_str("): ")?;
        }
        write!(f, "{}", p.error.kind())?;
        if let Some(off) = p.error.offset() {
            write!(f, " [offset {off}]")?;
        }
        Ok(())
    }
}

/// Counts of what the walk visited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// Directories entered.
    pub directories: u64,
    /// Distinct inodes checked (directories included).
    pub inodes: u64,
    /// Directory entries read (`.` and `..` included).
    pub entries: u64,
}

/// The result of [`check`]: every problem found (up to [`MAX_CHECK_PROBLEMS`]), plus what
/// is needed to name each directory by path.
#[derive(Debug, Clone)]
pub struct Report<'a> {
    problems: Vec<Problem<'a>>,
    dropped: u64,
    parents: BTreeMap<u64, (u64, &'a [u8])>,
    root_nid: u64,
    stats: Stats,
}

impl<'a> Report<'a> {
    fn new(root_nid: u64) -> Self {
        Self {
            problems: Vec::new(),
            dropped: 0,
            parents: BTreeMap::new(),
            root_nid,
            stats: Stats::default(),
        }
    }

    fn push(&mut self, error: Error, location: Location<'a>) {
        if self.problems.len() < MAX_CHECK_PROBLEMS {
            self.problems.push(Problem { error, location });
        } else {
            self.dropped = self.dropped.saturating_add(1);
        }
    }

    /// Whether no problem was found.
    #[must_use]
    pub fn is_sound(&self) -> bool {
        self.problems.is_empty()
    }

    /// The problems recorded, in the order found.
    #[must_use]
    pub fn problems(&self) -> &[Problem<'a>] {
        &self.problems
    }

    /// Problems found beyond [`MAX_CHECK_PROBLEMS`] and not recorded.
    #[must_use]
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// What the walk visited.
    #[must_use]
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// The nid a problem is about: the error's nid, else the location's.
    #[must_use]
    pub fn nid_of(&self, problem: &Problem<'_>) -> Option<u64> {
        problem.error.nid().or(match problem.location {
            Location::Image => None,
            Location::Dir { nid } => Some(nid),
            Location::Entry { .. } => None,
        })
    }

    /// A problem as one line of text, as the tools print it:
    /// `nid N (PATH): MESSAGE [offset O]`, each part present only when known, the path
    /// escaped as in dumps.
    #[must_use]
    pub fn describe<'r>(&'r self, problem: &'r Problem<'a>) -> Described<'r, 'a> {
        Described {
            report: self,
            problem,
        }
    }

    /// The absolute path of a problem's location (`/` for the root, empty for
    /// [`Location::Image`]). Components that cannot be resolved show as `?`.
    #[must_use]
    pub fn path(&self, problem: &Problem<'_>) -> Vec<u8> {
        match problem.location {
            Location::Image => Vec::new(),
            Location::Dir { nid } => self.dir_path(nid),
            Location::Entry { parent, name } => {
                let mut p = self.dir_path(parent);
                if p != b"/" {
                    p.push(b'/');
                }
                p.extend_from_slice(name);
                p
            }
        }
    }

    /// The path of directory `nid` as reached by the walk.
    fn dir_path(&self, nid: u64) -> Vec<u8> {
        let mut parts: Vec<&[u8]> = Vec::new();
        let mut at = nid;
        let mut steps = 0u64;
        while at != self.root_nid {
            let Some(&(parent, name)) = self.parents.get(&at) else {
                parts.push(b"?");
                break;
            };
            parts.push(name);
            at = parent;
            steps = steps.saturating_add(1);
            if steps > MAX_CHECK_DEPTH {
                parts.push(b"?");
                break;
            }
        }
        let mut out = Vec::new();
        for part in parts.iter().rev() {
            out.push(b'/');
            out.extend_from_slice(part);
        }
        if out.is_empty() {
            out.push(b'/');
        }
        out
    }
}

/// Opens `bytes` and checks it; an image that does not open gives a report with that one
/// problem.
#[must_use]
pub fn check_bytes(bytes: &[u8]) -> Report<'_> {
    match Image::open(bytes) {
        Ok(image) => check(&image),
        Err(error) => {
            let mut r = Report::new(0);
            r.push(error, Location::Image);
            r
        }
    }
}

/// Checks the whole tree of `image` (SPEC.md 3.6) and returns every problem found.
#[must_use]
pub fn check<'a>(image: &Image<'a>) -> Report<'a> {
    let mut w = Walker::new(*image);
    w.run();
    w.finish()
}

/// A set of nids, as a bitmap bounded by the image size.
struct NidSet(Vec<u64>);

impl NidSet {
    fn new(image_len: u64) -> Self {
        let slots = image_len / EROFS_SLOTSIZE;
        Self(vec![
            0;
            crate::bytes::to_usize((slots / 64).saturating_add(1))
        ])
    }

    /// Inserts `nid`; returns whether it was new. Nids outside the image count as seen.
    fn insert(&mut self, nid: u64) -> bool {
        let bit = 1u64 << (nid % 64);
        match usize::try_from(nid / 64)
            .ok()
            .and_then(|w| self.0.get_mut(w))
        {
            Some(word) => {
                let new = *word & bit == 0;
                *word |= bit;
                new
            }
            None => false,
        }
    }
}

struct Walker<'a> {
    image: Image<'a>,
    report: Report<'a>,
    dirs: NidSet,
    inodes: NidSet,
    extents: Vec<(u64, u64, u64, Location<'a>)>,
    data: Vec<(u64, u64, u64, Location<'a>)>,
    acl_found: bool,
    first_shared: Option<(u64, u32, u64, Location<'a>)>,
    shared_end: u64,
    stack: Vec<(u64, u64, u64)>,
}

impl<'a> Walker<'a> {
    fn new(image: Image<'a>) -> Self {
        Self {
            image,
            report: Report::new(image.root_nid()),
            dirs: NidSet::new(image.len()),
            inodes: NidSet::new(image.len()),
            extents: Vec::new(),
            data: Vec::new(),
            acl_found: false,
            first_shared: None,
            shared_end: 0,
            stack: Vec::new(),
        }
    }

    fn run(&mut self) {
        let root = self.image.root_nid();
        self.dirs.insert(root);
        self.inodes.insert(root);
        self.stack.push((root, root, 0));
        while let Some((nid, parent, depth)) = self.stack.pop() {
            self.visit_dir(nid, parent, depth);
        }
    }

    fn visit_dir(&mut self, nid: u64, parent: u64, depth: u64) {
        let here = Location::Dir { nid };
        let inode = match self.image.inode(nid) {
            Ok(i) => i,
            Err(e) => return self.report.push(e, here),
        };
        self.report.stats.directories = self.report.stats.directories.saturating_add(1);
        self.visit_inode(&inode, here);
        let dir = match inode.dir() {
            Ok(d) => d,
            Err(e) => return self.report.push(e, here),
        };
        let mut prev: Option<&'a [u8]> = None;
        let (mut dots, mut dotdots, mut subdirs) = (0u64, 0u64, 0u64);
        for entry in dir.entries() {
            self.report.stats.entries = self.report.stats.entries.saturating_add(1);
            if self.report.stats.entries > MAX_CHECK_ENTRIES {
                self.report.push(
                    Error::at_nid(
                        ErrorKind::LimitExceeded {
                            limit: Limit::Entries,
                        },
                        nid,
                    ),
                    here,
                );
                self.stack.clear();
                return;
            }
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    self.report.push(e, here);
                    break;
                }
            };
            let name = entry.name();
            let at = |kind| Error::at_nid(kind, nid).with_offset(entry.offset());
            match prev.map(|p| p.cmp(name)) {
                Some(Ordering::Equal) => {
                    self.report.push(
                        at(ErrorKind::DirentDuplicate {
                            name: ShortName::new(name),
                        }),
                        here,
                    );
                }
                Some(Ordering::Greater) => {
                    self.report.push(
                        at(ErrorKind::DirentOrder {
                            name: ShortName::new(name),
                        }),
                        here,
                    );
                }
                _ => {}
            }
            prev = Some(name);
            if name == b"." || name == b".." {
                let expected = if name == b"." {
                    dots = dots.saturating_add(1);
                    nid
                } else {
                    dotdots = dotdots.saturating_add(1);
                    parent
                };
                if entry.nid() != expected {
                    self.report.push(
                        at(ErrorKind::DotTarget {
                            name: ShortName::new(name),
                            target: entry.nid(),
                            expected,
                        }),
                        here,
                    );
                } else if entry.file_type() != FileType::Directory {
                    self.report.push(
                        at(ErrorKind::DirentTypeMismatch {
                            name: ShortName::new(name),
                            dirent: entry.file_type(),
                            inode: FileType::Directory,
                        }),
                        here,
                    );
                }
                continue;
            }
            let loc = Location::Entry { parent: nid, name };
            let child = match self.image.inode(entry.nid()) {
                Ok(c) => c,
                Err(e) => {
                    self.report.push(e, loc);
                    continue;
                }
            };
            if child.file_type() != entry.file_type() {
                self.report.push(
                    at(ErrorKind::DirentTypeMismatch {
                        name: ShortName::new(name),
                        dirent: entry.file_type(),
                        inode: child.file_type(),
                    }),
                    here,
                );
            }
            if child.is_dir() {
                subdirs = subdirs.saturating_add(1);
                if !self.dirs.insert(child.nid()) {
                    self.report.push(
                        at(ErrorKind::DirectoryLinkedTwice {
                            nid: child.nid(),
                            name: ShortName::new(name),
                        }),
                        here,
                    );
                    continue;
                }
                self.inodes.insert(child.nid());
                self.report.parents.insert(child.nid(), (nid, name));
                let depth = depth.saturating_add(1);
                if depth > MAX_CHECK_DEPTH {
                    self.report.push(
                        Error::at_nid(
                            ErrorKind::LimitExceeded {
                                limit: Limit::Depth,
                            },
                            child.nid(),
                        ),
                        loc,
                    );
                    continue;
                }
                self.stack.push((child.nid(), nid, depth));
            } else if self.inodes.insert(child.nid()) {
                self.visit_inode(&child, loc);
            }
        }
        for (name, count) in [(&b"."[..], dots), (&b".."[..], dotdots)] {
            if count != 1 {
                self.report.push(
                    Error::at_nid(
                        ErrorKind::DotCount {
                            name: ShortName::new(name),
                            count,
                        },
                        nid,
                    ),
                    here,
                );
            }
        }
        let expected = subdirs.saturating_add(2);
        if u64::from(inode.nlink()) != expected {
            self.report.push(
                Error::at_nid(
                    ErrorKind::DirNlink {
                        nlink: inode.nlink(),
                        expected,
                    },
                    nid,
                ),
                here,
            );
        }
        for b in 0..dir.block_count() {
            if let Ok(block) = dir.block(b) {
                if !block.padding_is_zero() {
                    self.report.push(
                        Error::at_nid(ErrorKind::DirBlockPadding { block: b }, nid),
                        here,
                    );
                }
            }
        }
    }

    /// Rules on one inode, checked once per nid.
    fn visit_inode(&mut self, inode: &Inode<'a>, loc: Location<'a>) {
        let nid = inode.nid();
        let at = |kind| Error::at_nid(kind, nid).with_offset(inode.offset());
        self.report.stats.inodes = self.report.stats.inodes.saturating_add(1);
        self.extents
            .push((inode.offset(), inode.extent_end(), nid, loc));
        if let Some((blk, count)) = inode.data_blocks() {
            self.data.push((u64::from(blk), count, nid, loc));
        }
        if let Some((field, value)) = inode.reserved_field() {
            self.report
                .push(at(ErrorKind::InodeReserved { field, value }), loc);
        }
        if !inode.is_dir() && inode.nlink() == 0 {
            self.report.push(at(ErrorKind::ZeroNlink), loc);
        }
        if inode.file_type() == FileType::Symlink {
            if let Err(e) = inode.symlink_target() {
                self.report.push(e, loc);
            }
        }
        self.check_xattrs(inode, loc);
    }

    fn check_xattrs(&mut self, inode: &Inode<'a>, loc: Location<'a>) {
        let nid = inode.nid();
        let xs = match inode.xattrs() {
            Ok(x) => x,
            Err(e) => return self.report.push(e, loc),
        };
        if !xs.reserved_is_zero() {
            self.report.push(
                Error::at_nid(ErrorKind::XattrReserved, nid).with_offset(inode.xattr_offset()),
                loc,
            );
        }
        let mut all: Vec<Xattr<'a>> = Vec::new();
        let mut metacopy = false;
        for x in xs.iter() {
            let x = match x {
                Ok(x) => x,
                Err(e) => {
                    self.report.push(e, loc);
                    return;
                }
            };
            let at = |kind| Error::at_nid(kind, nid).with_offset(x.offset());
            if x.index() == EROFS_XATTR_INDEX_NONE {
                let (index, _) = split_name(x.suffix());
                if index != EROFS_XATTR_INDEX_NONE {
                    self.report
                        .push(at(ErrorKind::XattrNonCanonicalName { index }), loc);
                }
            }
            // Only the exact names count, as for the writers: an index 2 or 3 entry with a
            // suffix (`system.posix_acl_accessX`) is not an ACL.
            if (x.index() == EROFS_XATTR_INDEX_POSIX_ACL_ACCESS
                || x.index() == EROFS_XATTR_INDEX_POSIX_ACL_DEFAULT)
                && x.suffix().is_empty()
            {
                self.acl_found = true;
            }
            if let Some(id) = x.shared_id() {
                let body = XATTR_ENTRY_SIZE
                    .saturating_add(x.suffix().len() as u64)
                    .saturating_add(x.value().len() as u64);
                self.shared_end = self.shared_end.max(x.offset().saturating_add(body));
                if self
                    .first_shared
                    .map_or(true, |(off, _, _, _)| x.offset() < off)
                {
                    self.first_shared = Some((x.offset(), id, nid, loc));
                }
            }
            if overlay::is_internal(&x) {
                let skip = OVERLAY_PREFIX.len().saturating_sub(x.prefix().len());
                let rest = x.suffix().get(skip..).unwrap_or(&[]);
                let external = inode.is_external() && inode.file_type() == FileType::Regular;
                let ok = match rest {
                    b"metacopy" => {
                        metacopy = true;
                        if let Err(kind) = overlay::parse_metacopy(x.value()) {
                            self.report.push(at(kind), loc);
                        }
                        external
                    }
                    b"redirect" => {
                        if let Err(kind) = overlay::parse_redirect(x.value()) {
                            self.report.push(at(kind), loc);
                        }
                        external
                    }
                    b"opaque" => nid == self.image.root_nid() && x.value() == OPAQUE_ROOT_VALUE,
                    _ => false,
                };
                if !ok {
                    self.report.push(
                        at(ErrorKind::OverlayXattr {
                            suffix: ShortName::new(rest),
                        }),
                        loc,
                    );
                }
            }
            all.push(x);
        }
        if inode.is_external() && !metacopy {
            self.report
                .push(Error::at_nid(ErrorKind::MissingMetacopy, nid), loc);
        }
        all.sort_unstable_by(|a, b| full_name_cmp(a, b));
        for pair in all.windows(2) {
            if let [a, b] = pair {
                if full_name_cmp(a, b) == Ordering::Equal {
                    self.report.push(
                        Error::at_nid(ErrorKind::XattrDuplicate, nid).with_offset(b.offset()),
                        loc,
                    );
                }
            }
        }
        if self.image.xattr_filter_enabled() {
            if let Err(e) = xs.verify_filter() {
                self.report.push(e, loc);
            }
        }
    }

    fn finish(mut self) -> Report<'a> {
        let image_len = self.image.len();
        if image_len % EROFS_BLKSIZ != 0 {
            self.report.push(
                Error::new(ErrorKind::ImageSizeNotBlockMultiple { len: image_len }),
                Location::Image,
            );
        }
        if self.acl_found != self.image.has_acl() {
            self.report.push(
                Error::new(ErrorKind::HasAclMismatch {
                    flag: self.image.has_acl(),
                    found: self.acl_found,
                })
                .with_offset(8),
                Location::Image,
            );
        }
        self.extents
            .sort_unstable_by_key(|&(start, end, nid, _)| (start, end, nid));
        let mut max_end: Option<(u64, u64)> = None;
        for &(start, end, nid, loc) in &self.extents {
            if let Some((prev_end, prev_nid)) = max_end {
                if start < prev_end {
                    self.report.push(
                        Error::at_nid(
                            ErrorKind::InodeOverlap {
                                start,
                                end,
                                other: prev_nid,
                            },
                            nid,
                        )
                        .with_offset(start),
                        loc,
                    );
                }
            }
            if max_end.map_or(true, |(e, _)| end > e) {
                max_end = Some((end, nid));
            }
        }
        let inodes_end = max_end.map_or(0, |(e, _)| e);
        if let Some((offset, id, nid, loc)) = self.first_shared {
            if offset < inodes_end {
                self.report.push(
                    Error::at_nid(ErrorKind::SharedXattrInInodes { id, offset }, nid)
                        .with_offset(offset),
                    loc,
                );
            }
        }
        let data_start = inodes_end.max(self.shared_end).div_ceil(EROFS_BLKSIZ);
        self.data
            .sort_unstable_by_key(|&(blk, count, nid, _)| (blk, count, nid));
        let mut prev: Option<(u64, u64)> = None;
        for &(blk, count, nid, loc) in &self.data {
            let blkaddr = u32::try_from(blk).unwrap_or(u32::MAX);
            let other = if blk < data_start {
                Some(None)
            } else {
                prev.and_then(|(end, other)| (blk < end).then_some(Some(other)))
            };
            if let Some(other) = other {
                self.report.push(
                    Error::at_nid(
                        ErrorKind::DataOverlap {
                            blkaddr,
                            count,
                            other,
                        },
                        nid,
                    ),
                    loc,
                );
            }
            let end = blk.saturating_add(count);
            if prev.map_or(true, |(e, _)| end > e) {
                prev = Some((end, nid));
            }
        }
        self.report
    }
}

/// Compares full xattr names (prefix + suffix) without allocating.
fn full_name_cmp(a: &Xattr<'_>, b: &Xattr<'_>) -> Ordering {
    let an = a.prefix().iter().chain(a.suffix());
    let bn = b.prefix().iter().chain(b.suffix());
    an.cmp(bn)
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation
)]
mod tests {
    use super::*;
    use crate::inode::tests::small_image;

    #[test]
    fn small_image_is_sound_and_problems_carry_paths() {
        let img = small_image();
        let r = check_bytes(&img);
        assert!(r.is_sound(), "{:?}", r.problems());
        assert_eq!(
            r.stats(),
            Stats {
                directories: 1,
                inodes: 3,
                entries: 4
            }
        );

        // Swap the names "f" and "l": order broken and dirent types now mismatch.
        let mut m = img.clone();
        m[1184 + 51] = b'l';
        m[1184 + 52] = b'f';
        let r = check_bytes(&m);
        let kinds: Vec<_> = r.problems().iter().map(|p| p.error.kind()).collect();
        assert!(
            kinds.contains(&ErrorKind::DirentOrder {
                name: ShortName::new(b"f")
            }),
            "{kinds:?}"
        );
        // Symlink nlink 0 is reported with the entry's path.
        let mut m = img.clone();
        m[1344 + 6] = 0;
        let r = check_bytes(&m);
        assert_eq!(r.problems().len(), 1);
        let p = r.problems()[0];
        assert_eq!(p.error.kind(), ErrorKind::ZeroNlink);
        assert_eq!(r.path(&p), b"/l");
        assert_eq!(r.nid_of(&p), Some(42));
        // Wrong directory nlink.
        let mut m = img;
        m[1152 + 6] = 3;
        let r = check_bytes(&m);
        assert_eq!(
            r.problems()[0].error.kind(),
            ErrorKind::DirNlink {
                nlink: 3,
                expected: 2
            }
        );
        assert_eq!(r.path(&r.problems()[0]), b"/");
    }

    #[test]
    fn open_failure_is_one_image_problem() {
        let r = check_bytes(&[0u8; 10]);
        assert_eq!(r.problems().len(), 1);
        assert_eq!(r.problems()[0].location, Location::Image);
    }
}
