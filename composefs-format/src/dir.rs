//! Directory views: dirent blocks, a resumable entry iterator, and binary-search lookup
//! (SPEC.md 2.5, 3.4).

use core::cmp::Ordering;

use crate::bytes;
use crate::error::{Error, ErrorKind, Result};
use crate::inode::Inode;
use crate::limits::MAX_NAME_LEN;
use crate::ondisk::{FileType, EROFS_BLKSIZ, EROFS_DIRENT_SIZE};

/// One directory entry, borrowed from the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dirent<'a> {
    name: &'a [u8],
    nid: u64,
    file_type: FileType,
    position: u64,
    offset: u64,
}

impl<'a> Dirent<'a> {
    /// The name: 1..=255 bytes, no `/` or NUL.
    #[must_use]
    pub fn name(&self) -> &'a [u8] {
        self.name
    }

    /// nid of the inode it names.
    #[must_use]
    pub fn nid(&self) -> u64 {
        self.nid
    }

    /// File type recorded in the dirent (the checker compares it with the inode).
    #[must_use]
    pub fn file_type(&self) -> FileType {
        self.file_type
    }

    /// Directory position of this entry (`block * 4096 + 12 * index`), as readdir's
    /// `ctx->pos`; [`Dir::entries_from`] resumes here.
    #[must_use]
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Absolute image offset of the 12-byte dirent record.
    #[must_use]
    pub fn offset(&self) -> u64 {
        self.offset
    }
}

/// One directory block (or the inline tail): `n` dirents, then the names.
#[derive(Debug, Clone, Copy)]
pub struct DirBlock<'a> {
    data: &'a [u8],
    offset: u64,
    index: u64,
    count: u64,
    nid: u64,
}

impl<'a> DirBlock<'a> {
    /// Validates the first `nameoff` (a multiple of 12, at least 12, below 4096, and the
    /// dirent array inside the block), which gives the entry count.
    fn parse(data: &'a [u8], offset: u64, index: u64, nid: u64) -> Result<Self> {
        let fail = |kind| Error::at_nid(kind, nid).with_offset(offset);
        let first: &crate::ondisk::Dirent = bytes::view(data, 0).map_err(|_| {
            fail(ErrorKind::DirentNameOff0 {
                block: index,
                nameoff: 0,
            })
        })?;
        let nameoff = first.nameoff.get();
        let n0 = u64::from(nameoff);
        if n0 < EROFS_DIRENT_SIZE
            || n0 % EROFS_DIRENT_SIZE != 0
            || n0 >= EROFS_BLKSIZ
            || n0 >= data.len() as u64
        {
            return Err(fail(ErrorKind::DirentNameOff0 {
                block: index,
                nameoff,
            }));
        }
        Ok(Self {
            data,
            offset,
            index,
            count: n0 / EROFS_DIRENT_SIZE,
            nid,
        })
    }

    /// Number of entries.
    #[must_use]
    pub fn len(&self) -> u64 {
        self.count
    }

    /// Always false: a valid block holds at least one entry.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Block index within the directory.
    #[must_use]
    pub fn index(&self) -> u64 {
        self.index
    }

    fn raw(&self, i: u64) -> core::result::Result<&'a crate::ondisk::Dirent, ErrorKind> {
        bytes::view(self.data, i.wrapping_mul(EROFS_DIRENT_SIZE))
    }

    /// End of the name of entry `i` within the block, without validating the entry.
    fn name_end(&self, i: u64, nameoff: u64) -> core::result::Result<u64, ErrorKind> {
        let next = i.wrapping_add(1);
        if next < self.count {
            Ok(u64::from(self.raw(next)?.nameoff.get()))
        } else {
            let rest = self.data.get(bytes::to_usize(nameoff)..).unwrap_or(&[]);
            let len = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
            Ok(nameoff.wrapping_add(len as u64))
        }
    }

    /// Entry `i`, fully validated: `nameoff` after the dirent array and before the next
    /// one, the name inside the block, 1..=255 bytes without `/` or NUL (the last name ends
    /// at the first NUL or the block end), and a valid file type.
    ///
    /// # Errors
    /// The first rule the entry breaks.
    pub fn entry(&self, i: u64) -> Result<Dirent<'a>> {
        let rec_off = i.wrapping_mul(EROFS_DIRENT_SIZE);
        let abs = self.offset.wrapping_add(rec_off);
        let fail = |kind| Error::at_nid(kind, self.nid).with_offset(abs);
        if i >= self.count {
            return Err(fail(ErrorKind::DirentNameOff {
                index: i,
                nameoff: 0,
            }));
        }
        let de = self.raw(i).map_err(fail)?;
        let nameoff = de.nameoff.get();
        let start = u64::from(nameoff);
        let maxsize = self.data.len() as u64;
        if start < self.count.wrapping_mul(EROFS_DIRENT_SIZE) || start >= maxsize {
            return Err(fail(ErrorKind::DirentNameOff { index: i, nameoff }));
        }
        let end = self.name_end(i, start).map_err(fail)?;
        if end <= start {
            let next = i.wrapping_add(1);
            return Err(if next < self.count {
                let nameoff = u16::try_from(end).unwrap_or(u16::MAX);
                Error::at_nid(
                    ErrorKind::DirentNameOff {
                        index: next,
                        nameoff,
                    },
                    self.nid,
                )
                .with_offset(abs.wrapping_add(EROFS_DIRENT_SIZE))
            } else {
                fail(ErrorKind::DirentNameLen { index: i, len: 0 })
            });
        }
        if end > maxsize {
            let next = i.wrapping_add(1);
            let nameoff = u16::try_from(end).unwrap_or(u16::MAX);
            return Err(Error::at_nid(
                ErrorKind::DirentNameOff {
                    index: next,
                    nameoff,
                },
                self.nid,
            )
            .with_offset(abs.wrapping_add(EROFS_DIRENT_SIZE)));
        }
        let len = end.wrapping_sub(start);
        if len > MAX_NAME_LEN as u64 {
            return Err(fail(ErrorKind::DirentNameLen { index: i, len }));
        }
        let name = bytes::slice(self.data, start, len).map_err(fail)?;
        if name.iter().any(|&b| b == b'/' || b == 0) {
            return Err(fail(ErrorKind::DirentNameByte { index: i }));
        }
        let file_type = FileType::from_dirent_type(de.file_type).ok_or_else(|| {
            fail(ErrorKind::DirentFileType {
                index: i,
                file_type: de.file_type,
            })
        })?;
        Ok(Dirent {
            name,
            nid: de.nid.get(),
            file_type,
            position: self.index.wrapping_mul(EROFS_BLKSIZ).wrapping_add(rec_off),
            offset: abs,
        })
    }

    /// Whether every byte after the last name is zero (full blocks are NUL-padded; an
    /// inline tail has no padding).
    #[must_use]
    pub fn padding_is_zero(&self) -> bool {
        let last = self.count.saturating_sub(1);
        let Ok(de) = self.raw(last) else { return false };
        let start = u64::from(de.nameoff.get());
        let Ok(end) = self.name_end(last, start) else {
            return false;
        };
        self.data
            .get(bytes::to_usize(end)..)
            .unwrap_or(&[])
            .iter()
            .all(|&b| b == 0)
    }

    /// The name of entry `i`, validated like [`DirBlock::entry`] (lookup compares only
    /// names it has validated).
    fn name_for_search(&self, i: u64) -> Result<&'a [u8]> {
        Ok(self.entry(i)?.name)
    }
}

/// A directory inode.
#[derive(Debug, Clone, Copy)]
pub struct Dir<'a> {
    inode: Inode<'a>,
}

impl<'a> Dir<'a> {
    pub(crate) fn new(inode: Inode<'a>) -> Self {
        Self { inode }
    }

    /// The directory's inode.
    #[must_use]
    pub fn inode(&self) -> Inode<'a> {
        self.inode
    }

    /// Number of directory blocks, the inline tail included.
    #[must_use]
    pub fn block_count(&self) -> u64 {
        self.inode.logical_blocks()
    }

    /// Directory block `index`, with its first `nameoff` validated.
    ///
    /// # Errors
    /// An impossible first `nameoff`, or an index past the end.
    pub fn block(&self, index: u64) -> Result<DirBlock<'a>> {
        let (data, offset) = self.inode.data_block(index)?;
        DirBlock::parse(data, offset, index, self.inode.nid())
    }

    /// Every entry, `.` and `..` included, in stored order.
    #[must_use]
    pub fn entries(&self) -> DirIter<'a> {
        self.entries_from(0)
    }

    /// The entries from directory position `pos` on (see [`Dirent::position`]); a position
    /// inside a dirent record resumes at the next record.
    #[must_use]
    pub fn entries_from(&self, pos: u64) -> DirIter<'a> {
        let in_block = pos % EROFS_BLKSIZ;
        DirIter {
            dir: *self,
            block: None,
            block_index: pos / EROFS_BLKSIZ,
            entry: in_block.div_ceil(EROFS_DIRENT_SIZE),
            done: false,
        }
    }

    /// Finds `name` the way the kernel does: binary search over the blocks by their first
    /// name, then over the entries of the chosen block. On unsorted (corrupt) input it
    /// terminates and may miss names; the checker reports the disorder.
    ///
    /// # Errors
    /// [`ErrorKind::NameTooLong`] for names over 255 bytes, or a malformed block or entry
    /// on the search path.
    pub fn lookup(&self, name: &[u8]) -> Result<Option<Dirent<'a>>> {
        if name.len() > MAX_NAME_LEN {
            return Err(Error::at_nid(
                ErrorKind::NameTooLong {
                    len: name.len() as u64,
                },
                self.inode.nid(),
            ));
        }
        if name.is_empty() {
            return Ok(None);
        }
        let (mut lo, mut hi) = (0u64, self.block_count());
        let mut candidate = None;
        while lo < hi {
            let mid = lo.wrapping_add(hi.wrapping_sub(lo) / 2);
            let block = self.block(mid)?;
            let first = block.entry(0)?;
            match name.cmp(first.name) {
                Ordering::Equal => return Ok(Some(first)),
                Ordering::Greater => {
                    candidate = Some(block);
                    lo = mid.wrapping_add(1);
                }
                Ordering::Less => hi = mid,
            }
        }
        let Some(block) = candidate else {
            return Ok(None);
        };
        let (mut lo, mut hi) = (1u64, block.len());
        while lo < hi {
            let mid = lo.wrapping_add(hi.wrapping_sub(lo) / 2);
            match name.cmp(block.name_for_search(mid)?) {
                Ordering::Equal => return block.entry(mid).map(Some),
                Ordering::Greater => lo = mid.wrapping_add(1),
                Ordering::Less => hi = mid,
            }
        }
        Ok(None)
    }
}

/// Iterator over directory entries; resumable by position, fused after the first error.
#[derive(Debug, Clone)]
pub struct DirIter<'a> {
    dir: Dir<'a>,
    block: Option<DirBlock<'a>>,
    block_index: u64,
    entry: u64,
    done: bool,
}

impl DirIter<'_> {
    /// Position of the next entry (see [`Dirent::position`]).
    #[must_use]
    pub fn position(&self) -> u64 {
        self.block_index
            .saturating_mul(EROFS_BLKSIZ)
            .saturating_add(self.entry.saturating_mul(EROFS_DIRENT_SIZE))
    }
}

impl<'a> Iterator for DirIter<'a> {
    type Item = Result<Dirent<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            if self.block_index >= self.dir.block_count() {
                self.done = true;
                break;
            }
            let block = match self.block {
                Some(b) => b,
                None => match self.dir.block(self.block_index) {
                    Ok(b) => {
                        self.block = Some(b);
                        b
                    }
                    Err(e) => {
                        self.done = true;
                        return Some(Err(e));
                    }
                },
            };
            if self.entry >= block.len() {
                self.block_index = self.block_index.saturating_add(1);
                self.entry = 0;
                self.block = None;
                continue;
            }
            let r = block.entry(self.entry);
            self.entry = self.entry.saturating_add(1);
            if r.is_err() {
                self.done = true;
            }
            return Some(r);
        }
        None
    }
}

impl core::iter::FusedIterator for DirIter<'_> {}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation
)]
mod tests {
    use super::*;
    use crate::image::Image;
    use crate::inode::tests::small_image;
    use alloc::vec::Vec;

    fn names(img: &[u8]) -> Vec<Result<Vec<u8>>> {
        let image = Image::open(img).unwrap();
        image
            .root()
            .unwrap()
            .dir()
            .unwrap()
            .entries()
            .map(|e| e.map(|d| d.name().to_vec()))
            .collect()
    }

    #[test]
    fn lists_resumes_and_looks_up() {
        let img = small_image();
        let image = Image::open(&img).unwrap();
        let dir = image.root().unwrap().dir().unwrap();
        let all: Vec<_> = dir.entries().map(|e| e.unwrap()).collect();
        let got: Vec<&[u8]> = all.iter().map(|d| d.name()).collect();
        assert_eq!(got, [&b"."[..], b"..", b"f", b"l"]);
        assert_eq!(all[2].nid(), 40);
        assert_eq!(all[3].file_type(), FileType::Symlink);
        let rest: Vec<_> = dir
            .entries_from(all[2].position())
            .map(|e| e.unwrap().name())
            .collect();
        assert_eq!(rest, [&b"f"[..], b"l"]);
        let rest: Vec<_> = dir
            .entries_from(all[2].position() - 5)
            .map(|e| e.unwrap().name())
            .collect();
        assert_eq!(rest, [&b"f"[..], b"l"]);
        let mut it = dir.entries();
        it.next();
        assert_eq!(it.position(), 12);
        for n in [&b"."[..], b"..", b"f", b"l"] {
            assert_eq!(dir.lookup(n).unwrap().unwrap().name(), n);
        }
        assert_eq!(dir.lookup(b"g").unwrap(), None);
        assert_eq!(dir.lookup(b"").unwrap(), None);
        assert_eq!(dir.lookup(b"-").unwrap(), None);
        assert_eq!(
            dir.lookup(&[b'x'; 256]).unwrap_err().kind(),
            ErrorKind::NameTooLong { len: 256 }
        );
        assert_eq!(image.lookup_path(b"/l").unwrap().nid(), 42);
        assert_eq!(
            image.lookup_path(b"/x").unwrap_err().kind(),
            ErrorKind::PathNotFound
        );
        assert!(matches!(
            image.lookup_path(b"/f/x").unwrap_err().kind(),
            ErrorKind::WrongType { .. }
        ));
    }

    #[test]
    fn rejects_bad_nameoffs_names_and_types() {
        let img = small_image();
        // Dirents start at 1184; dirent k's nameoff is at 1184 + 12k + 8.
        let first_err = |m: &[u8]| names(m).into_iter().find_map(|r| r.err()).unwrap().kind();
        for bad in [0u16, 6, 4096, 60] {
            let mut m = img.clone();
            m[1192..1194].copy_from_slice(&bad.to_le_bytes());
            assert_eq!(
                first_err(&m),
                ErrorKind::DirentNameOff0 {
                    block: 0,
                    nameoff: bad
                }
            );
        }
        // Second name offset going backwards.
        let mut m = img.clone();
        m[1204..1206].copy_from_slice(&47u16.to_le_bytes());
        assert_eq!(
            first_err(&m),
            ErrorKind::DirentNameOff {
                index: 1,
                nameoff: 47
            }
        );
        // Equal offsets: zero-length name.
        let mut m = img.clone();
        m[1204..1206].copy_from_slice(&48u16.to_le_bytes());
        assert_eq!(
            first_err(&m),
            ErrorKind::DirentNameOff {
                index: 1,
                nameoff: 48
            }
        );
        // Trailing nameoff past the tail.
        let mut m = img.clone();
        m[1228..1230].copy_from_slice(&0xFFFFu16.to_le_bytes());
        assert_eq!(
            first_err(&m),
            ErrorKind::DirentNameOff {
                index: 3,
                nameoff: 0xFFFF
            }
        );
        // A '/' in a name.
        let mut m = img.clone();
        m[1184 + 51] = b'/';
        assert_eq!(first_err(&m), ErrorKind::DirentNameByte { index: 2 });
        // A NUL inside a non-last name.
        let mut m = img.clone();
        m[1184 + 50] = 0;
        assert_eq!(first_err(&m), ErrorKind::DirentNameByte { index: 1 });
        // Bad file type.
        let mut m = img.clone();
        m[1184 + 24 + 10] = 9;
        assert_eq!(
            first_err(&m),
            ErrorKind::DirentFileType {
                index: 2,
                file_type: 9
            }
        );
        // Last name made empty by a NUL.
        let mut m = img;
        m[1184 + 52] = 0;
        assert_eq!(first_err(&m), ErrorKind::DirentNameLen { index: 3, len: 0 });
    }
}
