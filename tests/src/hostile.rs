//! The hostile-image generator: one or more crafted corruptions for each of the 43 classes
//! of the hardening catalogue (hardening.md section 2), made by patching the committed
//! reference image `data/images/hostile-base.img.gz`. Each [`Case`] names its catalogue
//! row, the mutation, and what the structural check must say about the result.
//!
//! Used by `tests/hostile.rs` (which asserts the expectations) and by the fuzz corpus
//! generator (which seeds the fuzzers with every hostile image).
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

use crate::read_data;
use composefs_format::image::{superblock_checksum, Image};
use composefs_format::{ErrorClass, ErrorKind};

/// The valid base image every case patches.
#[must_use]
pub fn base() -> Vec<u8> {
    read_data("images/hostile-base.img.gz")
}

/// Offsets in the base image, found with the reader itself.
#[derive(Debug)]
pub struct Map {
    /// The base image.
    pub img: Vec<u8>,
}

impl Map {
    /// Loads the base image.
    #[must_use]
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        Self { img: base() }
    }

    /// The base image, opened.
    #[must_use]
    pub fn image(&self) -> Image<'_> {
        Image::open(&self.img).unwrap()
    }

    /// nid of `path`.
    #[must_use]
    pub fn nid(&self, path: &str) -> u64 {
        self.image().lookup_path(path.as_bytes()).unwrap().nid()
    }

    /// Offset of the inode of `path`.
    #[must_use]
    pub fn inode(&self, path: &str) -> usize {
        (self.nid(path) * 32) as usize
    }

    /// Offset of the inline data of `path`.
    #[must_use]
    pub fn inline(&self, path: &str) -> usize {
        self.image()
            .lookup_path(path.as_bytes())
            .unwrap()
            .inline_offset() as usize
    }

    /// Offset of the xattr area of `path`.
    #[must_use]
    pub fn xattr_area(&self, path: &str) -> usize {
        self.image()
            .lookup_path(path.as_bytes())
            .unwrap()
            .xattr_offset() as usize
    }

    /// Offset of the entry header of xattr `name` of `path`.
    #[must_use]
    pub fn xattr(&self, path: &str, name: &[u8]) -> usize {
        let ino = self.image().lookup_path(path.as_bytes()).unwrap();
        let x = ino.xattrs().unwrap().find(name).unwrap().unwrap();
        x.offset() as usize
    }

    /// Offset of the 12-byte dirent of `name` in directory `dir`.
    #[must_use]
    pub fn dirent(&self, dir: &str, name: &str) -> usize {
        let d = self
            .image()
            .lookup_path(dir.as_bytes())
            .unwrap()
            .dir()
            .unwrap();
        d.lookup(name.as_bytes()).unwrap().unwrap().offset() as usize
    }

    /// Offset of the name bytes of `name` in directory `dir`.
    #[must_use]
    pub fn name(&self, dir: &str, name: &str) -> usize {
        let d = self
            .image()
            .lookup_path(dir.as_bytes())
            .unwrap()
            .dir()
            .unwrap();
        let e = d.lookup(name.as_bytes()).unwrap().unwrap();
        e.name().as_ptr() as usize - self.img.as_ptr() as usize
    }

    /// Every dirent of directory `dir` in order, as (record offset, name).
    #[must_use]
    pub fn dirents(&self, dir: &str) -> Vec<(usize, Vec<u8>)> {
        let d = self
            .image()
            .lookup_path(dir.as_bytes())
            .unwrap()
            .dir()
            .unwrap();
        d.entries()
            .map(|e| e.unwrap())
            .map(|e| (e.offset() as usize, e.name().to_vec()))
            .collect()
    }
}

/// Writes a little-endian `u16` at `off`.
pub fn put16(img: &mut [u8], off: usize, v: u16) {
    img[off..off + 2].copy_from_slice(&v.to_le_bytes());
}
/// Writes a little-endian `u32` at `off`.
pub fn put32(img: &mut [u8], off: usize, v: u32) {
    img[off..off + 4].copy_from_slice(&v.to_le_bytes());
}
/// Writes a little-endian `u64` at `off`.
pub fn put64(img: &mut [u8], off: usize, v: u64) {
    img[off..off + 8].copy_from_slice(&v.to_le_bytes());
}
/// Reads a little-endian `u16` at `off`.
#[must_use]
pub fn get16(img: &[u8], off: usize) -> u16 {
    u16::from_le_bytes([img[off], img[off + 1]])
}

/// Offset of the superblock.
pub const SB: usize = 1024;

/// What the check must say about a case.
pub enum Expect {
    /// A problem of this class whose kind matches.
    Reject(ErrorClass, fn(&ErrorKind) -> bool),
    /// Some problem; used where the mutation lands on bytes whose decoding the base image
    /// decides (e.g. a nid pointing into the middle of another inode).
    RejectAny,
    /// The image is valid.
    Accept,
}
use Expect::{Accept, Reject, RejectAny};

impl core::fmt::Debug for Case {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "row {}: {}", self.row, self.what)
    }
}

impl core::fmt::Debug for Expect {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Reject(class, _) => write!(f, "Reject({class:?}, ..)"),
            RejectAny => f.write_str("RejectAny"),
            Accept => f.write_str("Accept"),
        }
    }
}

impl Case {
    /// The hostile image: the base image with the mutation applied.
    #[must_use]
    pub fn image(&self, map: &Map) -> Vec<u8> {
        let mut img = map.img.clone();
        (self.mutate)(map, &mut img);
        img
    }
}

/// One hostile image: a mutation of the base image and the expected verdict.
pub struct Case {
    /// The hardening catalogue row it exercises.
    pub row: u32,
    /// What the mutation does.
    pub what: &'static str,
    /// The mutation, given the offsets of the base image.
    pub mutate: fn(&Map, &mut Vec<u8>),
    /// What the check must say.
    pub expect: Expect,
}

const C: ErrorClass = ErrorClass::Corrupted;
const U: ErrorClass = ErrorClass::Unsupported;

/// Every hostile case, in catalogue order.
#[must_use]
pub fn cases() -> Vec<Case> {
    vec![
        Case {
            row: 1,
            what: "composefs magic",
            mutate: |_, i| put32(i, 0, 0xdead_beef),
            expect: Reject(C, |k| {
                matches!(k, ErrorKind::ComposefsMagic { magic: 0xdead_beef })
            }),
        },
        Case {
            row: 1,
            what: "EROFS magic",
            mutate: |_, i| put32(i, SB, 0),
            expect: Reject(C, |k| matches!(k, ErrorKind::ErofsMagic { magic: 0 })),
        },
        Case {
            row: 1,
            what: "composefs header version 2",
            mutate: |_, i| put32(i, 4, 2),
            expect: Reject(U, |k| {
                matches!(k, ErrorKind::ComposefsHeaderVersion { version: 2 })
            }),
        },
        Case {
            row: 1,
            what: "composefs_version 2",
            mutate: |_, i| put32(i, 12, 2),
            expect: Reject(U, |k| {
                matches!(
                    k,
                    ErrorKind::ComposefsVersion {
                        composefs_version: 2
                    }
                )
            }),
        },
        Case {
            row: 1,
            what: "unknown header flag",
            mutate: |_, i| put32(i, 8, 2),
            expect: Reject(C, |k| matches!(k, ErrorKind::ComposefsFlags { flags: 2 })),
        },
        Case {
            row: 2,
            what: "blkszbits 9",
            mutate: |_, i| i[SB + 12] = 9,
            expect: Reject(U, |k| matches!(k, ErrorKind::BlockSize { blkszbits: 9 })),
        },
        Case {
            row: 2,
            what: "blkszbits 13",
            mutate: |_, i| i[SB + 12] = 13,
            expect: Reject(U, |k| matches!(k, ErrorKind::BlockSize { blkszbits: 13 })),
        },
        Case {
            row: 3,
            what: "incompat 48BIT",
            mutate: |_, i| put32(i, SB + 80, 0x80),
            expect: Reject(U, |k| {
                matches!(k, ErrorKind::IncompatFeatures { incompat: 0x80 })
            }),
        },
        Case {
            row: 3,
            what: "incompat compression",
            mutate: |_, i| put32(i, SB + 80, 0x3),
            expect: Reject(U, |k| {
                matches!(k, ErrorKind::IncompatFeatures { incompat: 0x3 })
            }),
        },
        Case {
            row: 3,
            what: "incompat CHUNKED_FILE is honest and accepted",
            mutate: |_, i| put32(i, SB + 80, 0x4),
            expect: Accept,
        },
        Case {
            row: 4,
            what: "sb_extslots 1",
            mutate: |_, i| i[SB + 13] = 1,
            expect: Reject(U, |k| matches!(k, ErrorKind::SbExtSlots { sb_extslots: 1 })),
        },
        Case {
            row: 4,
            what: "dirblkbits 1",
            mutate: |_, i| i[SB + 90] = 1,
            expect: Reject(U, |k| {
                matches!(k, ErrorKind::DirBlockBits { dirblkbits: 1 })
            }),
        },
        Case {
            row: 4,
            what: "SB_CHKSUM with a wrong checksum",
            mutate: |_, i| put32(i, SB + 8, 0x7),
            expect: Reject(C, |k| {
                matches!(k, ErrorKind::SuperblockChecksum { stored: 0, .. })
            }),
        },
        Case {
            row: 4,
            what: "SB_CHKSUM with the right checksum is accepted",
            mutate: |_, i| {
                put32(i, SB + 8, 0x7);
                let c = superblock_checksum(i).unwrap();
                put32(i, SB + 4, c);
            },
            expect: Accept,
        },
        Case {
            row: 4,
            what: "unknown compat feature",
            mutate: |_, i| put32(i, SB + 8, 0x6 | 0x10),
            expect: Reject(U, |k| {
                matches!(k, ErrorKind::CompatFeatures { compat: 0x10 })
            }),
        },
        Case {
            row: 5,
            what: "root nid past the end",
            mutate: |_, i| put16(i, SB + 14, 0xFFFF),
            expect: Reject(C, |k| matches!(k, ErrorKind::OutOfBounds { .. })),
        },
        Case {
            row: 5,
            what: "root nid in the superblock",
            mutate: |_, i| put16(i, SB + 14, 33),
            expect: Reject(C, |k| matches!(k, ErrorKind::NidTooSmall { nid: 33 })),
        },
        Case {
            row: 6,
            what: "extended root inode in the last slot crosses the end",
            mutate: |_, i| {
                let last = i.len() - 32;
                put16(i, last, 1);
                put16(i, last + 4, 0o40755);
                put16(i, SB + 14, (last / 32) as u16);
            },
            expect: Reject(C, |k| matches!(k, ErrorKind::OutOfBounds { .. })),
        },
        Case {
            row: 7,
            what: "root is a regular file",
            mutate: |m, i| put16(i, SB + 14, m.nid("/inline") as u16),
            expect: Reject(C, |k| matches!(k, ErrorKind::RootNotDirectory { .. })),
        },
        Case {
            row: 8,
            what: "meta_blkaddr 0x100000",
            mutate: |_, i| put32(i, SB + 40, 0x10_0000),
            expect: Reject(U, |k| {
                matches!(
                    k,
                    ErrorKind::MetaBlkaddr {
                        meta_blkaddr: 0x10_0000
                    }
                )
            }),
        },
        Case {
            row: 9,
            what: "xattr_blkaddr past the end",
            mutate: |_, i| put32(i, SB + 44, 0x00FF_FFFF),
            expect: Reject(C, |k| {
                matches!(
                    k,
                    ErrorKind::OutOfBounds { .. } | ErrorKind::DataBlocks { .. }
                )
            }),
        },
        Case {
            row: 9,
            what: "xattr_blkaddr past the shared table",
            mutate: |_, i| {
                let b = u32::from_le_bytes(i[SB + 44..SB + 48].try_into().unwrap());
                put32(i, SB + 44, b + 1)
            },
            expect: Reject(C, |_| true),
        },
        Case {
            row: 10,
            what: "truncated to three blocks",
            mutate: |_, i| i.truncate(3 * 4096),
            expect: Reject(C, |k| {
                matches!(
                    k,
                    ErrorKind::OutOfBounds { .. } | ErrorKind::DataBlocks { .. }
                )
            }),
        },
        Case {
            row: 10,
            what: "truncated mid-block",
            mutate: |_, i| i.truncate(i.len() - 100),
            expect: Reject(C, |k| {
                matches!(
                    k,
                    ErrorKind::DataBlocks { .. } | ErrorKind::ImageSizeNotBlockMultiple { .. }
                )
            }),
        },
        Case {
            row: 10,
            what: "shorter than a block",
            mutate: |_, i| i.truncate(2000),
            expect: Reject(C, |k| matches!(k, ErrorKind::ImageTooSmall { len: 2000 })),
        },
        Case {
            row: 11,
            what: "i_format bit 5",
            mutate: |m, i| {
                let o = m.inode("/inline");
                i[o] |= 0x20
            },
            expect: Reject(U, |k| matches!(k, ErrorKind::InodeFormat { .. })),
        },
        Case {
            row: 11,
            what: "i_format bit 4 (NLINK_1)",
            mutate: |m, i| {
                let o = m.inode("/fifo");
                i[o] |= 0x10
            },
            expect: Reject(U, |k| matches!(k, ErrorKind::InodeFormat { .. })),
        },
        Case {
            row: 11,
            what: "data layout 5",
            mutate: |m, i| {
                let o = m.inode("/fifo");
                put16(i, o, 5 << 1)
            },
            expect: Reject(U, |k| matches!(k, ErrorKind::DataLayout { layout: 5 })),
        },
        Case {
            row: 12,
            what: "compressed layout",
            mutate: |m, i| {
                let o = m.inode("/plain");
                put16(i, o, 1 << 1)
            },
            expect: Reject(U, |k| matches!(k, ErrorKind::DataLayout { layout: 1 })),
        },
        Case {
            row: 12,
            what: "compressed compact layout",
            mutate: |m, i| {
                let o = m.inode("/plain");
                put16(i, o, 3 << 1)
            },
            expect: Reject(U, |k| matches!(k, ErrorKind::DataLayout { layout: 3 })),
        },
        Case {
            row: 13,
            what: "bogus S_IFMT",
            mutate: |m, i| {
                let o = m.inode("/fifo");
                put16(i, o + 4, 0o070644)
            },
            expect: Reject(C, |k| matches!(k, ErrorKind::InodeMode { mode: 0o070644 })),
        },
        Case {
            row: 13,
            what: "mode 0",
            mutate: |m, i| {
                let o = m.inode("/fifo");
                put16(i, o + 4, 0)
            },
            expect: Reject(C, |k| matches!(k, ErrorKind::InodeMode { mode: 0 })),
        },
        Case {
            row: 14,
            what: "directory size 100 blocks",
            mutate: |m, i| {
                let o = m.inode("/dir");
                put32(i, o + 8, 100 * 4096)
            },
            expect: Reject(C, |k| matches!(k, ErrorKind::DataBlocks { .. })),
        },
        Case {
            row: 15,
            what: "inline file tail crossing a block",
            mutate: |m, i| {
                let o = m.inode("/inline");
                let tail = m.inline("/inline") % 4096;
                put32(i, o + 8, (4096 - tail + 1) as u32);
            },
            expect: Reject(C, |k| matches!(k, ErrorKind::InlineCrossesBlock { .. })),
        },
        Case {
            row: 15,
            what: "directory tail crossing a block",
            mutate: |m, i| {
                let o = m.inode("/dir/sub");
                put32(i, o + 8, 2 * 4096 + 4000)
            },
            expect: Reject(C, |k| {
                matches!(
                    k,
                    ErrorKind::InlineCrossesBlock { .. } | ErrorKind::DataBlocks { .. }
                )
            }),
        },
        Case {
            row: 16,
            what: "FLAT_PLAIN block 0xFFFFFFFF",
            mutate: |m, i| {
                let o = m.inode("/plain");
                put32(i, o + 16, u32::MAX)
            },
            expect: Reject(C, |k| {
                matches!(
                    k,
                    ErrorKind::DataBlocks {
                        blkaddr: u32::MAX,
                        ..
                    }
                )
            }),
        },
        Case {
            row: 16,
            what: "FLAT_PLAIN block 0 (the header)",
            mutate: |m, i| {
                let o = m.inode("/plain");
                put32(i, o + 16, 0)
            },
            expect: Reject(C, |k| matches!(k, ErrorKind::DataBlocks { blkaddr: 0, .. })),
        },
        Case {
            row: 16,
            what: "FLAT_PLAIN block inside the inode area",
            mutate: |m, i| {
                let o = m.inode("/plain");
                put32(i, o + 16, 1)
            },
            expect: Reject(C, |k| {
                matches!(
                    k,
                    ErrorKind::DataBlocks { blkaddr: 1, .. } | ErrorKind::DataOverlap { .. }
                )
            }),
        },
        Case {
            row: 16,
            what: "two files share a data block",
            mutate: |m, i| {
                let p = m.inode("/plain");
                let l = m.inode("/dir");
                let b = u32::from_le_bytes(i[l + 16..l + 20].try_into().unwrap());
                put32(i, p + 16, b)
            },
            expect: Reject(C, |k| {
                matches!(k, ErrorKind::DataOverlap { other: Some(_), .. })
            }),
        },
        Case {
            row: 17,
            what: "symlink size 0",
            mutate: |m, i| {
                let o = m.inode("/link");
                put32(i, o + 8, 0)
            },
            expect: Reject(C, |k| matches!(k, ErrorKind::SizeForType { size: 0, .. })),
        },
        Case {
            row: 17,
            what: "symlink size 4096",
            mutate: |m, i| {
                let o = m.inode("/longlink");
                put32(i, o + 8, 4096)
            },
            expect: Reject(C, |k| {
                matches!(k, ErrorKind::SizeForType { size: 4096, .. })
            }),
        },
        Case {
            row: 17,
            what: "symlink size huge",
            mutate: |m, i| {
                let o = m.inode("/link");
                put32(i, o + 8, u32::MAX)
            },
            expect: Reject(C, |k| matches!(k, ErrorKind::SizeForType { .. })),
        },
        Case {
            row: 17,
            what: "inline symlink of 4095 bytes",
            mutate: |m, i| {
                let o = m.inode("/link");
                put32(i, o + 8, 4095)
            },
            expect: Reject(C, |k| matches!(k, ErrorKind::InlineCrossesBlock { .. })),
        },
        Case {
            row: 17,
            what: "NUL in a symlink target",
            mutate: |m, i| {
                let o = m.inline("/link");
                i[o + 1] = 0
            },
            expect: Reject(C, |k| matches!(k, ErrorKind::SymlinkNul { at: 1 })),
        },
        Case {
            row: 18,
            what: "file nlink 0",
            mutate: |m, i| {
                let o = m.inode("/fifo");
                put16(i, o + 6, 0)
            },
            expect: Reject(C, |k| matches!(k, ErrorKind::ZeroNlink)),
        },
        Case {
            row: 18,
            what: "directory size 0",
            mutate: |m, i| {
                let o = m.inode("/dir/sub/leaf");
                put32(i, o + 8, 0)
            },
            expect: Reject(C, |k| matches!(k, ErrorKind::SizeForType { size: 0, .. })),
        },
        Case {
            row: 18,
            what: "directory nlink wrong",
            mutate: |m, i| {
                let o = m.inode("/dir");
                put16(i, o + 6, 7)
            },
            expect: Reject(C, |k| {
                matches!(
                    k,
                    ErrorKind::DirNlink {
                        nlink: 7,
                        expected: 3
                    }
                )
            }),
        },
        Case {
            row: 19,
            what: "chunk format bit 6",
            mutate: |m, i| {
                let o = m.inode("/ext");
                i[o + 16] |= 0x40
            },
            expect: Reject(U, |k| matches!(k, ErrorKind::ChunkFormat { .. })),
        },
        Case {
            row: 20,
            what: "chunk INDEXES format",
            mutate: |m, i| {
                let o = m.inode("/ext");
                i[o + 16] |= 0x20
            },
            expect: Reject(U, |k| matches!(k, ErrorKind::ChunkFormat { .. })),
        },
        Case {
            row: 20,
            what: "chunk map longer than 1024 entries",
            mutate: |m, i| {
                let o = m.inode("/ext");
                i[o + 16] = 0;
                put32(i, o + 8, u32::MAX)
            },
            expect: Reject(C, |k| {
                matches!(k, ErrorKind::TooManyChunks { chunks: 1_048_576 })
            }),
        },
        Case {
            row: 20,
            what: "chunk map running into the next inode",
            mutate: |m, i| {
                let o = m.inode("/ext");
                i[o + 16] = 0
            },
            expect: Reject(C, |k| {
                matches!(
                    k,
                    ErrorKind::ChunkNotHole { .. } | ErrorKind::InodeOverlap { .. }
                )
            }),
        },
        Case {
            row: 21,
            what: "chunk mapped to block 0",
            mutate: |m, i| {
                let o = m.inline("/ext");
                put32(i, o, 0)
            },
            expect: Reject(C, |k| {
                matches!(
                    k,
                    ErrorKind::ChunkNotHole {
                        index: 0,
                        blkaddr: 0
                    }
                )
            }),
        },
        Case {
            row: 21,
            what: "chunk mapped past the end",
            mutate: |m, i| {
                let o = m.inline("/ext");
                put32(i, o, 0x00FF_0000)
            },
            expect: Reject(C, |k| matches!(k, ErrorKind::ChunkNotHole { .. })),
        },
        Case {
            row: 21,
            what: "chunk i_u reserved bits",
            mutate: |m, i| {
                let o = m.inode("/ext");
                put16(i, o + 18, 3)
            },
            expect: Reject(C, |k| matches!(k, ErrorKind::InodeReserved { .. })),
        },
        Case {
            row: 22,
            what: "first nameoff 0",
            mutate: |m, i| {
                let o = m.dirent("/dir/sub", ".");
                let first = m.dirents("/dir/sub")[0].0;
                assert_eq!(o, first);
                put16(i, o + 8, 0)
            },
            expect: Reject(C, |k| {
                matches!(k, ErrorKind::DirentNameOff0 { nameoff: 0, .. })
            }),
        },
        Case {
            row: 22,
            what: "first nameoff not a multiple of 12",
            mutate: |m, i| {
                let o = m.dirents("/")[0].0;
                let n = get16(i, o + 8);
                put16(i, o + 8, n + 1)
            },
            expect: Reject(C, |k| matches!(k, ErrorKind::DirentNameOff0 { .. })),
        },
        Case {
            row: 22,
            what: "first nameoff 4096",
            mutate: |m, i| {
                let o = m.dirents("/")[0].0;
                put16(i, o + 8, 4096)
            },
            expect: Reject(C, |k| {
                matches!(k, ErrorKind::DirentNameOff0 { nameoff: 4096, .. })
            }),
        },
        Case {
            row: 23,
            what: "nameoff going backwards",
            mutate: |m, i| {
                let d = m.dirents("/dir");
                let o = d[5].0;
                let prev = get16(i, d[4].0 + 8);
                put16(i, o + 8, prev - 1)
            },
            expect: Reject(C, |k| matches!(k, ErrorKind::DirentNameOff { .. })),
        },
        Case {
            row: 23,
            what: "trailing nameoff 0xFFFF",
            mutate: |m, i| {
                let d = m.dirents("/dir/sub");
                let o = d.last().unwrap().0;
                put16(i, o + 8, 0xFFFF)
            },
            expect: Reject(C, |k| {
                matches!(
                    k,
                    ErrorKind::DirentNameOff {
                        nameoff: 0xFFFF,
                        ..
                    }
                )
            }),
        },
        Case {
            row: 23,
            what: "nameoff past a full block",
            mutate: |m, i| {
                let d = m.dirents("/dir");
                let o = d[3].0;
                put16(i, o + 8, 4095)
            },
            expect: Reject(C, |k| {
                matches!(
                    k,
                    ErrorKind::DirentNameOff { .. } | ErrorKind::DirentNameLen { .. }
                )
            }),
        },
        Case {
            row: 24,
            what: "name length 0",
            mutate: |m, i| {
                let d = m.dirents("/dir");
                let n = get16(i, d[4].0 + 8);
                put16(i, d[3].0 + 8, n)
            },
            expect: Reject(C, |k| matches!(k, ErrorKind::DirentNameOff { .. })),
        },
        Case {
            row: 24,
            what: "last name emptied by a NUL",
            mutate: |m, i| {
                let o = m.name("/dir/sub", "leaf");
                i[o] = 0
            },
            expect: Reject(C, |k| matches!(k, ErrorKind::DirentNameLen { len: 0, .. })),
        },
        Case {
            row: 24,
            what: "name longer than 255 bytes",
            mutate: |m, i| {
                let d = m.dirents("/dir");
                let n = get16(i, d[2].0 + 8);
                put16(i, d[3].0 + 8, n + 300)
            },
            expect: Reject(C, |k| {
                matches!(k, ErrorKind::DirentNameLen { len: 300, .. })
            }),
        },
        Case {
            row: 25,
            what: "name with '/'",
            mutate: |m, i| {
                let o = m.name("/", "ext-nodigest");
                i[o + 3] = b'/'
            },
            expect: Reject(C, |k| matches!(k, ErrorKind::DirentNameByte { .. })),
        },
        Case {
            row: 26,
            what: "name with NUL",
            mutate: |m, i| {
                let o = m.name("/", "ext-nodigest");
                i[o + 3] = 0
            },
            expect: Reject(C, |k| matches!(k, ErrorKind::DirentNameByte { .. })),
        },
        Case {
            row: 27,
            what: "'..' pointing at the root from /dir/sub",
            mutate: |m, i| {
                let o = m.dirent("/dir/sub", "..");
                put64(i, o, 36)
            },
            expect: Reject(
                C,
                |k| matches!(k, ErrorKind::DotTarget { expected, .. } if *expected != 36),
            ),
        },
        Case {
            row: 27,
            what: "'.' pointing at the parent",
            mutate: |m, i| {
                let o = m.dirent("/dir/sub", ".");
                let p = m.nid("/dir");
                put64(i, o, p)
            },
            expect: Reject(C, |k| matches!(k, ErrorKind::DotTarget { .. })),
        },
        Case {
            row: 27,
            what: "names '..' and '.' swapped into a second '.'",
            mutate: |m, i| {
                let d = m.dirents("/dir/sub/leaf");
                let n = get16(i, d[1].0 + 8);
                put16(i, d[1].0 + 8, n + 1);
            },
            expect: Reject(C, |k| {
                matches!(
                    k,
                    ErrorKind::DotTarget { .. }
                        | ErrorKind::DirentOrder { .. }
                        | ErrorKind::DotCount { .. }
                )
            }),
        },
        Case {
            row: 28,
            what: "directory containing the root",
            mutate: |m, i| {
                let o = m.dirent("/dir/sub", "leaf");
                put64(i, o, 36)
            },
            expect: Reject(C, |k| {
                matches!(k, ErrorKind::DirectoryLinkedTwice { nid: 36, .. })
            }),
        },
        Case {
            row: 28,
            what: "directory containing itself",
            mutate: |m, i| {
                let o = m.dirent("/dir/sub", "leaf");
                let s = m.nid("/dir/sub");
                put64(i, o, s)
            },
            expect: Reject(C, |k| matches!(k, ErrorKind::DirectoryLinkedTwice { .. })),
        },
        Case {
            row: 28,
            what: "directory containing its parent",
            mutate: |m, i| {
                let o = m.dirent("/dir/sub", "leaf");
                let s = m.nid("/dir");
                put64(i, o, s)
            },
            expect: Reject(C, |k| matches!(k, ErrorKind::DirectoryLinkedTwice { .. })),
        },
        Case {
            row: 29,
            what: "directory under two names",
            mutate: |m, i| {
                let o = m.dirent("/", "fifo");
                let s = m.nid("/dir/sub");
                put64(i, o, s);
                i[o + 10] = 2
            },
            expect: Reject(C, |k| matches!(k, ErrorKind::DirectoryLinkedTwice { .. })),
        },
        Case {
            row: 30,
            what: "dirent type REG for a FIFO",
            mutate: |m, i| {
                let o = m.dirent("/", "fifo");
                i[o + 10] = 1
            },
            expect: Reject(C, |k| matches!(k, ErrorKind::DirentTypeMismatch { .. })),
        },
        Case {
            row: 30,
            what: "dirent type REG for a directory",
            mutate: |m, i| {
                let o = m.dirent("/dir", "sub");
                i[o + 10] = 1
            },
            expect: Reject(C, |k| matches!(k, ErrorKind::DirentTypeMismatch { .. })),
        },
        Case {
            row: 30,
            what: "dirent type 0",
            mutate: |m, i| {
                let o = m.dirent("/", "fifo");
                i[o + 10] = 0
            },
            expect: Reject(C, |k| {
                matches!(k, ErrorKind::DirentFileType { file_type: 0, .. })
            }),
        },
        Case {
            row: 31,
            what: "two names swapped",
            mutate: |m, i| {
                let a = m.name("/dir", &format!("entry-001-{}", "n".repeat(30)));
                i[a + 8] = b'0';
                let b = m.name("/dir", &format!("entry-000-{}", "n".repeat(30)));
                i[b + 8] = b'1'
            },
            expect: Reject(C, |k| matches!(k, ErrorKind::DirentOrder { .. })),
        },
        Case {
            row: 31,
            what: "duplicate name",
            mutate: |m, i| {
                let a = m.name("/dir", &format!("entry-001-{}", "n".repeat(30)));
                i[a + 8] = b'0'
            },
            expect: Reject(C, |k| matches!(k, ErrorKind::DirentDuplicate { .. })),
        },
        Case {
            row: 31,
            what: "order broken across a block boundary",
            mutate: |m, i| {
                let d = m.dirents("/dir");
                let first_of_block1 = d
                    .iter()
                    .find(|(o, _)| o / 4096 != d[0].0 / 4096)
                    .unwrap()
                    .1
                    .clone();
                let o = m.name("/dir", std::str::from_utf8(&first_of_block1).unwrap());
                i[o] = b'a';
            },
            expect: Reject(C, |k| matches!(k, ErrorKind::DirentOrder { .. })),
        },
        Case {
            row: 32,
            what: "dirent nid 2^64-1",
            mutate: |m, i| {
                let o = m.dirent("/", "fifo");
                put64(i, o, u64::MAX)
            },
            expect: Reject(C, |k| matches!(k, ErrorKind::Overflow)),
        },
        Case {
            row: 32,
            what: "dirent nid past the end",
            mutate: |m, i| {
                let o = m.dirent("/", "fifo");
                put64(i, o, 1 << 40)
            },
            expect: Reject(C, |k| matches!(k, ErrorKind::OutOfBounds { .. })),
        },
        Case {
            row: 32,
            what: "dirent nid inside another inode's xattrs",
            mutate: |m, i| {
                let o = m.dirent("/", "fifo");
                let a = m.nid("/acl");
                put64(i, o, a + 1)
            },
            expect: RejectAny,
        },
        Case {
            row: 32,
            what: "dirent nid in the second half of an extended inode",
            mutate: |m, i| {
                let o = m.dirent("/", "fifo");
                let e = m.nid("/extended");
                put64(i, o, e + 1)
            },
            expect: RejectAny,
        },
        Case {
            row: 33,
            what: "xattr icount 0xFFFF",
            mutate: |m, i| {
                let o = m.inode("/acl");
                put16(i, o + 2, 0xFFFF)
            },
            expect: Reject(C, |k| {
                matches!(
                    k,
                    ErrorKind::OutOfBounds { .. }
                        | ErrorKind::InlineCrossesBlock { .. }
                        | ErrorKind::InodeOverlap { .. }
                )
            }),
        },
        Case {
            row: 34,
            what: "xattr icount 1",
            mutate: |m, i| {
                let o = m.inode("/acl");
                put16(i, o + 2, 1)
            },
            expect: Reject(U, |k| matches!(k, ErrorKind::XattrIcountOne)),
        },
        Case {
            row: 35,
            what: "h_shared_count 255",
            mutate: |m, i| {
                let o = m.xattr_area("/ext");
                i[o + 4] = 255
            },
            expect: Reject(C, |k| {
                matches!(
                    k,
                    ErrorKind::XattrSharedCount {
                        shared_count: 255,
                        ..
                    }
                )
            }),
        },
        Case {
            row: 36,
            what: "shared xattr id 0x10000000",
            mutate: |m, i| {
                let o = m.xattr_area("/ext");
                assert!(i[o + 4] >= 1);
                put32(i, o + 12, 0x1000_0000)
            },
            expect: Reject(C, |k| matches!(k, ErrorKind::OutOfBounds { .. })),
        },
        Case {
            row: 36,
            what: "shared xattr id pointing into the inodes",
            mutate: |m, i| {
                let o = m.xattr_area("/ext");
                put32(i, o + 12, 0)
            },
            expect: RejectAny,
        },
        Case {
            row: 37,
            what: "inline xattr name length 255",
            mutate: |m, i| {
                let o = m.xattr("/inline", b"user.inline");
                i[o] = 255
            },
            expect: Reject(C, |k| matches!(k, ErrorKind::XattrEntryBounds { .. })),
        },
        Case {
            row: 37,
            what: "inline xattr value size 0xFFFF",
            mutate: |m, i| {
                let o = m.xattr("/inline", b"user.inline");
                put16(i, o + 2, 0xFFFF)
            },
            expect: Reject(C, |k| matches!(k, ErrorKind::XattrEntryBounds { .. })),
        },
        Case {
            row: 38,
            what: "xattr name index 5 (lustre)",
            mutate: |m, i| {
                let o = m.xattr("/inline", b"user.inline");
                i[o + 1] = 5
            },
            expect: Reject(U, |k| matches!(k, ErrorKind::XattrNameIndex { index: 5 })),
        },
        Case {
            row: 38,
            what: "long xattr prefix without a table",
            mutate: |m, i| {
                let o = m.xattr("/inline", b"user.inline");
                i[o + 1] = 0x80
            },
            expect: Reject(U, |k| {
                matches!(k, ErrorKind::XattrNameIndex { index: 0x80 })
            }),
        },
        Case {
            row: 38,
            what: "xattr name index 9",
            mutate: |m, i| {
                let o = m.xattr("/inline", b"user.inline");
                i[o + 1] = 9
            },
            expect: Reject(U, |k| matches!(k, ErrorKind::XattrNameIndex { index: 9 })),
        },
        Case {
            row: 39,
            what: "name filter hides the metacopy",
            mutate: |m, i| {
                let o = m.xattr_area("/ext");
                let bit = composefs_format::xattr::filter_bit(4, b"overlay.metacopy");
                let f = u32::from_le_bytes(i[o..o + 4].try_into().unwrap()) | (1 << bit);
                put32(i, o, f);
            },
            expect: Reject(C, |k| matches!(k, ErrorKind::XattrNameFilter { .. })),
        },
        Case {
            row: 39,
            what: "lying filter with xattr_filter_reserved set is not trusted, so accepted",
            mutate: |m, i| {
                let o = m.xattr_area("/ext");
                put32(i, o, 0xFFFF_FFFF);
                i[SB + 104] = 1;
            },
            expect: Accept,
        },
        Case {
            row: 40,
            what: "redirect '/../..'",
            mutate: |m, i| {
                let o = m.xattr("/ext", b"trusted.overlay.redirect");
                let v = o + 4 + 16;
                assert_eq!(&i[v..v + 4], b"/aa/");
                i[v + 1..v + 3].copy_from_slice(b"..")
            },
            expect: Reject(C, |k| matches!(k, ErrorKind::Redirect { at: 1 })),
        },
        Case {
            row: 40,
            what: "redirect without the leading '/'",
            mutate: |m, i| {
                let o = m.xattr("/ext", b"trusted.overlay.redirect");
                i[o + 20] = b'x'
            },
            expect: Reject(C, |k| matches!(k, ErrorKind::Redirect { at: 0 })),
        },
        Case {
            row: 40,
            what: "unknown unescaped overlay xattr on the root",
            mutate: |m, i| {
                let o = m.xattr("/", b"trusted.overlay.opaque");
                i[o + 4 + 8] = b'x'
            },
            expect: Reject(C, |k| matches!(k, ErrorKind::OverlayXattr { .. })),
        },
        Case {
            row: 40,
            what: "escaped user xattr turned into an internal one",
            mutate: |m, i| {
                let o = m.xattr("/ext", b"trusted.overlay.overlay.custom");
                i[o + 4 + 8] = b'x'
            },
            expect: Reject(C, |k| matches!(k, ErrorKind::OverlayXattr { .. })),
        },
        Case {
            row: 41,
            what: "metacopy of 35 bytes",
            mutate: |m, i| {
                let o = m.xattr("/ext", b"trusted.overlay.metacopy");
                put16(i, o + 2, 35)
            },
            expect: Reject(C, |k| matches!(k, ErrorKind::Metacopy { len: 35 })),
        },
        Case {
            row: 41,
            what: "metacopy with another hash algorithm",
            mutate: |m, i| {
                let o = m.xattr("/ext", b"trusted.overlay.metacopy");
                i[o + 4 + 16 + 3] = 2
            },
            expect: Reject(C, |k| matches!(k, ErrorKind::Metacopy { len: 36 })),
        },
        Case {
            row: 41,
            what: "external file without metacopy",
            mutate: |m, i| {
                let o = m.xattr("/ext", b"trusted.overlay.metacopy");
                i[o + 4 + 7] = b'X'
            },
            expect: Reject(C, |k| {
                matches!(
                    k,
                    ErrorKind::MissingMetacopy | ErrorKind::OverlayXattr { .. }
                )
            }),
        },
        Case {
            row: 42,
            what: "the base image, nested three deep, is valid",
            mutate: |_, _| {},
            expect: Accept,
        },
        Case {
            row: 43,
            what: "ACL flag cleared although an ACL exists",
            mutate: |_, i| put32(i, 8, 0),
            expect: Reject(C, |k| {
                matches!(
                    k,
                    ErrorKind::HasAclMismatch {
                        flag: false,
                        found: true
                    }
                )
            }),
        },
        Case {
            row: 43,
            what: "reserved inode field set",
            mutate: |m, i| {
                let o = m.inode("/fifo");
                put32(i, o + 28, 5)
            },
            expect: Reject(C, |k| {
                matches!(
                    k,
                    ErrorKind::InodeReserved {
                        field: "i_reserved2",
                        value: 5
                    }
                )
            }),
        },
        Case {
            row: 43,
            what: "garbage after the last name of a block",
            mutate: |m, i| {
                let d = m.dirents("/dir");
                let last = d
                    .iter()
                    .take_while(|(o, _)| o / 4096 == d[0].0 / 4096)
                    .last()
                    .unwrap()
                    .1
                    .clone();
                let o = m.name("/dir", std::str::from_utf8(&last).unwrap()) + last.len();
                i[o + 2] = 1
            },
            expect: Reject(C, |k| matches!(k, ErrorKind::DirBlockPadding { .. })),
        },
    ]
}
