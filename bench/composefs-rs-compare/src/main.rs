//! composefs-rs 0.9.4 (crates.io `composefs`) on the tasks of `bench/compare.py`, one
//! subcommand per task, each doing what the corresponding command of ours or of the
//! reference does, through the library's public API.
//!
//! ```text
//! composefs-rs-compare mkfs DUMP IMAGE                 dump -> image (format V0 = C default)
//! composefs-rs-compare dump IMAGE                      image -> dump on stdout
//! composefs-rs-compare walk [--repeat N] IMAGE         zero-copy walk, totals on stdout
//! composefs-rs-compare fsck IMAGE                      fsck_metadata + collect_objects
//! composefs-rs-compare verity FILE                     fs-verity digest, streamed
//! composefs-rs-compare mkdir --digest-store STORE --threads N SRC IMAGE
//! ```
//!
//! `walk` prints the same totals line as our `walk` example, so the harness can check that
//! both readers saw the same image; it also prints the median in-process time of one walk
//! on standard error.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use composefs::dumpfile::{dumpfile_to_validated_filesystem, write_dumpfile};
use composefs::erofs::format::FormatVersion;
use composefs::erofs::reader::{
    collect_objects, erofs_to_filesystem, DirectoryBlock, Image, InodeHeader, InodeOps, InodeType,
};
use composefs::erofs::writer::{mkfs_erofs_versioned, ValidatedFileSystem};
use composefs::fs::{
    read_filesystem_with_opts, FlatDigestStore, HardlinkBehavior, ObjectStore, ReadFilesystemOpts,
};
use composefs::fsverity::{FsVerityHashValue, FsVerityHasher, Sha256HashValue};

type Id = Sha256HashValue;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Err(e) = run(&args) {
        eprintln!("composefs-rs-compare: {e:#}");
        std::process::exit(1);
    }
}

fn run(args: &[String]) -> Result<()> {
    let strs: Vec<&str> = args.iter().map(String::as_str).collect();
    match strs.as_slice() {
        ["mkfs", dump, image] => mkfs(dump, image),
        ["dump", image] => dump(image),
        ["walk", image] => walk_cmd(image, 1),
        ["walk", "--repeat", n, image] => walk_cmd(image, n.parse()?),
        ["fsck", image] => fsck(image),
        ["verity", file] => verity(file),
        ["mkdir", "--digest-store", store, "--threads", n, src, image] => {
            mkdir(store, n.parse()?, src, image)
        }
        _ => bail!("bad arguments {args:?}; see the module documentation"),
    }
}

/// Dump -> image, as `mkcomposefs --from-file DUMP IMAGE` with default versions.
fn mkfs(dump: &str, image: &str) -> Result<()> {
    let text = std::fs::read_to_string(dump).with_context(|| format!("reading {dump}"))?;
    let fs = dumpfile_to_validated_filesystem::<Id>(&text)?;
    let bytes = mkfs_erofs_versioned(&fs, FormatVersion::V0);
    std::fs::write(image, &bytes).with_context(|| format!("writing {image}"))
}

/// Image -> dump, as `composefs-info dump IMAGE`.
fn dump(image: &str) -> Result<()> {
    let data = std::fs::read(image).with_context(|| format!("reading {image}"))?;
    let fs = erofs_to_filesystem::<Id>(&data)?;
    let mut out = BufWriter::new(std::io::stdout().lock());
    write_dumpfile(&mut out, &fs)?;
    out.flush()?;
    Ok(())
}

/// The library's own checks and its object collection (what its `fsck --metadata` and GC
/// run): every referenced object is found, the count is printed.
fn fsck(image: &str) -> Result<()> {
    let data = std::fs::read(image).with_context(|| format!("reading {image}"))?;
    Image::open(&data)?
        .restrict_to_composefs()?
        .fsck_metadata()?;
    let objects = collect_objects::<Id>(&data)?;
    println!("objects {}", objects.len());
    Ok(())
}

/// fs-verity digest of a file, streamed through `FsVerityHasher`'s `io::Write` in 1 MiB
/// reads (the fastest of its entry points in the notes' measurements).
fn verity(file: &str) -> Result<()> {
    let mut f = File::open(file).with_context(|| format!("opening {file}"))?;
    let mut hasher = FsVerityHasher::<Id>::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.write_all(&buf[..n])?;
    }
    println!("{}", hasher.digest().to_hex());
    Ok(())
}

/// Directory -> image with a C-layout digest store (`XX/<62 hex>`), hard links broken as
/// the C `mkcomposefs` does, `threads` objects in flight, format V0.
fn mkdir(store: &str, threads: usize, src: &str, image: &str) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()?;
    // insecure: fall back to a userspace digest where the filesystem has no fs-verity, as
    // the C tool does.
    let store: Arc<dyn ObjectStore<Id>> =
        Arc::new(FlatDigestStore::open(Path::new(store), threads, true)?);
    let cwd: OwnedFd = File::open(".")?.into();
    let src = std::fs::canonicalize(src)?;
    let opts = ReadFilesystemOpts {
        store: Some(store),
        semaphore: None,
        hardlinks: HardlinkBehavior::Break,
    };
    let fs = rt.block_on(read_filesystem_with_opts::<Id>(cwd, src, opts))?;
    let fs = ValidatedFileSystem::new(fs)?;
    let bytes = mkfs_erofs_versioned(&fs, FormatVersion::V0);
    std::fs::write(image, &bytes).with_context(|| format!("writing {image}"))
}

/// What one walk saw; the same fields, in the same order, as our `walk` example.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Totals {
    inodes: u64,
    dirents: u64,
    xattrs: u64,
    xattr_bytes: u64,
    symlink_bytes: u64,
    sizes: u64,
    meta: u64,
}

const S_IFMT: u16 = 0o170000;
const S_IFDIR: u16 = 0o040000;
const S_IFLNK: u16 = 0o120000;

/// Every inode (once), dirent, xattr and symlink target, with an explicit stack and a
/// flag per possible nid, through `Image::inode`, `InodeXAttrs`, `shared_xattr`,
/// `inode_blocks`/`directory_block` and the inline tail.
fn walk(data: &[u8]) -> Result<Totals> {
    let img = Image::open(data)?.restrict_to_composefs()?;
    let mut t = Totals::default();
    let mut seen = vec![false; data.len() / 32 + 1];
    let root = u64::from(img.sb.root_nid.get());
    seen[root as usize] = true;
    let mut stack = vec![root];
    let build_time = img.sb.build_time.get();
    while let Some(nid) = stack.pop() {
        let inode = img.inode(nid)?;
        t.inodes += 1;
        let mode = inode.mode().0.get();
        let (uid, gid, mtime) = match &inode {
            InodeType::Compact(i) => (
                u64::from(i.header.uid.get()),
                u64::from(i.header.gid.get()),
                build_time,
            ),
            InodeType::Extended(i) => (
                u64::from(i.header.uid.get()),
                u64::from(i.header.gid.get()),
                i.header.mtime.get(),
            ),
        };
        t.sizes = t.sizes.wrapping_add(inode.size());
        t.meta = t
            .meta
            .wrapping_add(u64::from(mode))
            .wrapping_add(uid)
            .wrapping_add(gid)
            .wrapping_add(u64::from(inode.nlink()))
            .wrapping_add(mtime);
        if let Some(xattrs) = inode.xattrs()? {
            for id in xattrs.shared()? {
                let x = img.shared_xattr(id.get())?;
                t.xattrs += 1;
                t.xattr_bytes += (x.suffix()?.len() + x.value()?.len()) as u64;
            }
            for x in xattrs.local()? {
                let x = x?;
                t.xattrs += 1;
                t.xattr_bytes += (x.suffix()?.len() + x.value()?.len()) as u64;
            }
        }
        match mode & S_IFMT {
            S_IFDIR => {
                let mut visit = |block: &DirectoryBlock| -> Result<()> {
                    for d in block.entries()? {
                        let d = d?;
                        if d.name == b"." || d.name == b".." {
                            continue;
                        }
                        t.dirents += 1;
                        let flag = seen
                            .get_mut(d.nid() as usize)
                            .context("dirent nid past the end of the image")?;
                        if !*flag {
                            *flag = true;
                            stack.push(d.nid());
                        }
                    }
                    Ok(())
                };
                for blk in img.inode_blocks(&inode)? {
                    visit(img.directory_block(blk)?)?;
                }
                if let Some(inline) = inode.inline() {
                    if !inline.is_empty() {
                        let block = zerocopy_block(inline)?;
                        visit(block)?;
                    }
                }
            }
            S_IFLNK => {
                let mut len = 0usize;
                for blk in img.inode_blocks(&inode)? {
                    len += img.block(blk)?.len();
                }
                len += inode.inline().map_or(0, <[u8]>::len);
                t.symlink_bytes += (len as u64).min(inode.size());
            }
            _ => {}
        }
    }
    Ok(t)
}

/// The inline tail of a directory as a `DirectoryBlock` (the library does the same in its
/// own walkers).
fn zerocopy_block(inline: &[u8]) -> Result<&DirectoryBlock> {
    use zerocopy::FromBytes;
    DirectoryBlock::ref_from_bytes(inline).map_err(|_| anyhow::anyhow!("inline dir block"))
}

fn walk_cmd(image: &str, repeat: usize) -> Result<()> {
    let data = std::fs::read(image).with_context(|| format!("reading {image}"))?;
    let mut times = Vec::with_capacity(repeat);
    let mut last = None;
    for _ in 0..repeat.max(1) {
        let start = Instant::now();
        let t = walk(&data)?;
        times.push(start.elapsed());
        if last.is_some_and(|l| l != t) {
            bail!("two walks of the same bytes disagree");
        }
        last = Some(t);
    }
    let t = last.context("no walk")?;
    println!(
        "inodes {} dirents {} xattrs {} xattr_bytes {} symlink_bytes {} sizes {} meta {}",
        t.inodes, t.dirents, t.xattrs, t.xattr_bytes, t.symlink_bytes, t.sizes, t.meta
    );
    times.sort();
    let median = times
        .get(times.len() / 2)
        .copied()
        .unwrap_or(Duration::ZERO);
    eprintln!("walk_ms {:.3}", median.as_secs_f64() * 1e3);
    Ok(())
}
