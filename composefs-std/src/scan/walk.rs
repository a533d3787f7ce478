//! The directory walk: builds the tree on the calling thread and hands every regular file
//! with content, already opened, to the content workers.
//!
//! Everything is read relative to the descriptor of the directory holding it, without
//! following symlinks: `fstatat(AT_SYMLINK_NOFOLLOW)`, `readlinkat`, `openat(O_NOFOLLOW)`,
//! and xattrs through `/proc/self/fd/<dir>/<name>` with the `l*xattr` calls (the
//! reference uses an `O_PATH` descriptor and `/proc/self/fd/<fd>`, which reaches the same
//! inode). Names come from `getdents`, so they are single components, never `..`. An
//! opened file or directory is checked to be the one examined (same device and inode).
//!
//! The walk is depth-first with an explicit stack of ancestors. A directory keeps its
//! descriptor only while it has subdirectories left to visit, and at most a given
//! number of descriptors are held (a share of the open-files limit): beyond that the shallowest are closed and
//! reopened later, one component at a time from the nearest open ancestor, with the same
//! identity check. So any depth works within a small descriptor budget.

use std::collections::HashMap;
use std::ffi::{CString, OsStr, OsString};
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use composefs_format::tree::{Mtime, Node, NodeId, Tree, TreeError};
use rustix::fs::{AtFlags, Dir, FileType, Mode, OFlags, Stat};
use rustix::io::Errno;

use super::content::Job;
use super::pool::Emitter;
use super::xattrs::{Target, XattrReader};
use super::{ScanError, ScanOptions, XattrMode};

/// Flags for opening a directory to list it.
const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);
/// Flags for opening a regular file to read it: never a symlink, never block (a file
/// replaced by a FIFO meanwhile), never a controlling terminal.
const FILE_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::NOFOLLOW)
    .union(OFlags::NONBLOCK)
    .union(OFlags::NOCTTY)
    .union(OFlags::CLOEXEC);

/// Device and inode number: what identifies a file while the walk runs.
pub(crate) type FileId = (u64, u64);

/// How the walk is bounded, and what it must not meet.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Setup {
    /// Most directory descriptors held at once.
    pub max_open_dirs: usize,
    /// The object store's directory, which must not be inside the source (it is filled
    /// while the source is walked).
    pub store: Option<FileId>,
}

/// The result of the walk.
#[derive(Debug)]
pub(crate) struct Walked {
    /// The tree; regular files with content still lack it (the workers supply it).
    pub tree: Tree,
}

/// A subdirectory still to visit.
#[derive(Debug)]
struct Subdir {
    name: Vec<u8>,
    node: NodeId,
    id: FileId,
}

/// A directory on the way from the root to the one being visited.
#[derive(Debug)]
struct Frame {
    id: FileId,
    /// Its name in its parent (the source path for the root).
    name: Vec<u8>,
    /// Length of its path in [`Walker::path`].
    path_len: usize,
    /// Its descriptor, while it has subdirectories left and was not evicted.
    fd: Option<OwnedFd>,
    /// Subdirectories left to visit.
    pending: Vec<Subdir>,
}

struct Walker<'o> {
    options: &'o ScanOptions,
    tree: Tree,
    /// First node of each multiply linked inode (with `hardlinks` only).
    inodes: HashMap<FileId, NodeId>,
    xattrs: XattrReader,
    /// Whether `/proc/self/fd` is there to reach entries through their directory's
    /// descriptor; without it xattrs are read by full path.
    proc_fd: bool,
    /// The source path as given.
    source: PathBuf,
    /// Path of the directory being listed (for messages, and xattrs without `/proc`).
    path: Vec<u8>,
    stack: Vec<Frame>,
    open_dirs: usize,
    max_open_dirs: usize,
    store: Option<FileId>,
    /// Frames below this index hold no descriptor.
    evict_from: usize,
}

/// Walks `source`, emitting a [`Job`] for every regular file with content.
pub(crate) fn walk(
    source: &Path,
    options: &ScanOptions,
    setup: Setup,
    emitter: &mut Emitter<'_, '_, '_>,
) -> Result<Walked, ScanError> {
    let root_fd = match rustix::fs::open(source, DIR_FLAGS, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::NOTDIR | Errno::LOOP) => {
            return Err(ScanError::NotADirectory {
                path: source.to_owned(),
            })
        }
        Err(e) => return Err(io_error("open", source.to_owned(), e)),
    };
    let st = rustix::fs::fstat(&root_fd).map_err(|e| io_error("stat", source.to_owned(), e))?;
    let mut path = source.as_os_str().as_bytes().to_vec();
    while path.len() > 1 && path.last() == Some(&b'/') {
        path.pop();
    }
    if setup.store == Some(file_id(&st)) {
        return Err(ScanError::StoreInSource {
            path: source.to_owned(),
        });
    }
    let root = node_from_stat(&st, options, source)?;
    let mut walker = Walker {
        options,
        tree: Tree::new(root),
        inodes: HashMap::new(),
        xattrs: XattrReader::new(),
        proc_fd: Path::new("/proc/self/fd").is_dir(),
        source: source.to_owned(),
        path,
        stack: Vec::new(),
        open_dirs: 0,
        max_open_dirs: setup.max_open_dirs.max(1),
        store: setup.store,
        evict_from: 0,
    };
    let pending = walker.list(NodeId::ROOT, &root_fd, emitter)?;
    walker.push_frame(Frame {
        id: file_id(&st),
        name: source.as_os_str().as_bytes().to_vec(),
        path_len: walker.path.len(),
        fd: Some(root_fd),
        pending,
    });
    walker.run(emitter)?;
    Ok(Walked { tree: walker.tree })
}

impl Walker<'_> {
    /// Visits the pending subdirectories depth-first until none is left.
    fn run(&mut self, emitter: &mut Emitter<'_, '_, '_>) -> Result<(), ScanError> {
        loop {
            let Some(top) = self.stack.last_mut() else {
                return Ok(());
            };
            let Some(sub) = top.pending.pop() else {
                self.pop_frame();
                continue;
            };
            let parent_len = top.path_len;
            let last = top.pending.is_empty();
            self.ensure_top_fd()?;
            self.path.truncate(parent_len);
            self.path.push(b'/');
            self.path.extend_from_slice(&sub.name);
            let parent = self.stack.last().and_then(|f| f.fd.as_ref());
            let fd = match parent {
                Some(parent) => self.open_dir(parent.as_fd(), &sub.name, sub.id)?,
                None => {
                    return Err(ScanError::Changed {
                        path: self.dir_path(),
                        what: "parent directory descriptor lost",
                    })
                }
            };
            if last {
                // The parent has nothing left to open.
                self.close_top_fd();
            }
            let pending = self.list(sub.node, &fd, emitter)?;
            if pending.is_empty() {
                continue;
            }
            self.push_frame(Frame {
                id: sub.id,
                name: sub.name,
                path_len: self.path.len(),
                fd: Some(fd),
                pending,
            });
        }
    }

    /// Reads the directory `fd` (node `dir`): its xattrs, then every entry. Returns its
    /// subdirectories.
    fn list(
        &mut self,
        dir: NodeId,
        fd: &OwnedFd,
        emitter: &mut Emitter<'_, '_, '_>,
    ) -> Result<Vec<Subdir>, ScanError> {
        if self.options.xattrs != XattrMode::Skip {
            let xattrs = self
                .xattrs
                .read(Target::Fd(fd.as_fd()), self.options.xattrs)
                .map_err(|e| e.at(self.dir_path()))?;
            if let Some(node) = self.tree.get_mut(dir) {
                node.xattrs = xattrs;
            }
        }
        let mut listing = Dir::read_from(fd).map_err(|e| io_error("list", self.dir_path(), e))?;
        let mut subdirs = Vec::new();
        while let Some(entry) = listing.read() {
            let entry = entry.map_err(|e| io_error("list", self.dir_path(), e))?;
            let name = entry.file_name().to_bytes();
            if name == b"." || name == b".." {
                continue;
            }
            self.entry(dir, fd.as_fd(), name, emitter, &mut subdirs)?;
        }
        self.sort_children(dir).map_err(|source| ScanError::Tree {
            path: self.dir_path(),
            source,
        })?;
        Ok(subdirs)
    }

    /// Adds the entry `name` of directory `dir` (descriptor `dirfd`) to the tree.
    fn entry(
        &mut self,
        dir: NodeId,
        dirfd: BorrowedFd<'_>,
        name: &[u8],
        emitter: &mut Emitter<'_, '_, '_>,
        subdirs: &mut Vec<Subdir>,
    ) -> Result<(), ScanError> {
        let mut st = rustix::fs::statat(dirfd, name, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| io_error("stat", self.entry_path(name), e))?;
        let file_type = FileType::from_raw_mode(st.st_mode);
        let device = matches!(file_type, FileType::CharacterDevice | FileType::BlockDevice);
        if device && self.options.skip_devices {
            return Ok(());
        }
        let linked = self.options.hardlinks && file_type != FileType::Directory && st.st_nlink > 1;
        if linked {
            if let Some(&first) = self.inodes.get(&file_id(&st)) {
                if let Some(node) = self.tree.get_mut(first) {
                    node.nlink = node.nlink.saturating_add(1);
                }
                return self.push_child(dir, name, first, true);
            }
        }
        // A regular file with content is opened now, and described by the descriptor
        // that will be read.
        let mut file = None;
        if file_type == FileType::RegularFile && st.st_size != 0 {
            let opened = rustix::fs::openat(dirfd, name, FILE_FLAGS, Mode::empty())
                .map_err(|e| io_error("open", self.entry_path(name), e))?;
            let fst = rustix::fs::fstat(&opened)
                .map_err(|e| io_error("stat", self.entry_path(name), e))?;
            if file_id(&fst) != file_id(&st) || FileType::from_raw_mode(fst.st_mode) != file_type {
                return Err(ScanError::Changed {
                    path: self.entry_path(name),
                    what: "replaced by another file",
                });
            }
            st = fst;
            file = Some(File::from(opened));
        }
        let mut node = node_from_stat(&st, self.options, &self.entry_path(name))?;
        match file_type {
            FileType::Symlink => {
                let target = rustix::fs::readlinkat(dirfd, name, Vec::new())
                    .map_err(|e| io_error("read symlink", self.entry_path(name), e))?;
                node.payload = Some(target.into_bytes());
            }
            FileType::CharacterDevice | FileType::BlockDevice => {
                node.rdev = u32::try_from(st.st_rdev).map_err(|_| ScanError::DeviceNumber {
                    path: self.entry_path(name),
                    rdev: st.st_rdev,
                })?;
            }
            _ => {}
        }
        // Directories read their own xattrs when listed, files with content in the
        // workers; everything else here.
        let needs_xattrs = file_type != FileType::Directory && file.is_none();
        if needs_xattrs && self.options.xattrs != XattrMode::Skip {
            let target = self.entry_target(dirfd, name)?;
            node.xattrs = self
                .xattrs
                .read(Target::Path(&target), self.options.xattrs)
                .map_err(|e| e.at(self.entry_path(name)))?;
        }
        let id = self.tree.add(node).map_err(|source| ScanError::Tree {
            path: self.entry_path(name),
            source,
        })?;
        self.push_child(dir, name, id, false)?;
        if linked {
            self.inodes.insert(file_id(&st), id);
        }
        if file_type == FileType::Directory {
            if self.store == Some(file_id(&st)) {
                return Err(ScanError::StoreInSource {
                    path: self.entry_path(name),
                });
            }
            subdirs.push(Subdir {
                name: name.to_vec(),
                node: id,
                id: file_id(&st),
            });
        }
        if let Some(file) = file {
            emitter.emit(Job {
                node: id,
                file,
                path: self.entry_path(name),
                size: u64::try_from(st.st_size).unwrap_or(0),
                sparse: is_sparse(&st),
            })?;
        }
        Ok(())
    }

    /// Opens subdirectory `name` of `parent` and checks it is the directory `id`.
    fn open_dir(
        &self,
        parent: BorrowedFd<'_>,
        name: &[u8],
        id: FileId,
    ) -> Result<OwnedFd, ScanError> {
        let fd = rustix::fs::openat(parent, name, DIR_FLAGS, Mode::empty())
            .map_err(|e| io_error("open", self.dir_path(), e))?;
        let st = rustix::fs::fstat(&fd).map_err(|e| io_error("stat", self.dir_path(), e))?;
        if file_id(&st) != id {
            return Err(ScanError::Changed {
                path: self.dir_path(),
                what: "replaced by another directory",
            });
        }
        Ok(fd)
    }

    /// Makes sure the top frame holds its descriptor: an evicted one is reopened one
    /// component at a time from the nearest ancestor holding one (or from the source
    /// path), checking each directory's identity. Reopened ancestors that still have
    /// subdirectories to visit keep their descriptors while the budget allows.
    fn ensure_top_fd(&mut self) -> Result<(), ScanError> {
        let Some(top) = self.stack.len().checked_sub(1) else {
            return Ok(());
        };
        if self.stack.get(top).is_some_and(|f| f.fd.is_some()) {
            return Ok(());
        }
        let base = self.stack.iter().rposition(|f| f.fd.is_some());
        let start = base.map_or(0, |at| at.saturating_add(1));
        // The descriptor of the previous step, when it is not kept in its frame.
        let mut carried: Option<OwnedFd> = None;
        for index in start..=top {
            let Some(frame) = self.stack.get(index) else {
                break;
            };
            let path = PathBuf::from(OsStr::from_bytes(
                self.path.get(..frame.path_len).unwrap_or_default(),
            ));
            let parent = match &carried {
                Some(fd) => Some(fd),
                None => index
                    .checked_sub(1)
                    .and_then(|i| self.stack.get(i))
                    .and_then(|f| f.fd.as_ref()),
            };
            let opened = match parent {
                Some(parent) => {
                    rustix::fs::openat(parent, frame.name.as_slice(), DIR_FLAGS, Mode::empty())
                }
                None => rustix::fs::open(&self.source, DIR_FLAGS, Mode::empty()),
            }
            .map_err(|e| io_error("reopen", path.clone(), e))?;
            let st = rustix::fs::fstat(&opened).map_err(|e| io_error("stat", path.clone(), e))?;
            if file_id(&st) != frame.id {
                return Err(ScanError::Changed {
                    path,
                    what: "replaced by another directory",
                });
            }
            let keep =
                index == top || (!frame.pending.is_empty() && self.open_dirs < self.max_open_dirs);
            if keep {
                if let Some(frame) = self.stack.get_mut(index) {
                    frame.fd = Some(opened);
                    self.open_dirs = self.open_dirs.saturating_add(1);
                    self.evict_from = self.evict_from.min(index);
                }
                carried = None;
            } else {
                carried = Some(opened);
            }
        }
        self.evict();
        Ok(())
    }

    fn push_frame(&mut self, frame: Frame) {
        if frame.fd.is_some() {
            self.open_dirs = self.open_dirs.saturating_add(1);
        }
        self.stack.push(frame);
        self.evict();
    }

    fn pop_frame(&mut self) {
        if let Some(frame) = self.stack.pop() {
            if frame.fd.is_some() {
                self.open_dirs = self.open_dirs.saturating_sub(1);
            }
        }
        self.evict_from = self.evict_from.min(self.stack.len());
    }

    fn close_top_fd(&mut self) {
        if let Some(frame) = self.stack.last_mut() {
            if frame.fd.take().is_some() {
                self.open_dirs = self.open_dirs.saturating_sub(1);
            }
        }
    }

    /// Closes the shallowest descriptors (never the top frame's) while too many are open.
    fn evict(&mut self) {
        let top = self.stack.len().saturating_sub(1);
        while self.open_dirs > self.max_open_dirs && self.evict_from < top {
            if let Some(frame) = self.stack.get_mut(self.evict_from) {
                if frame.fd.take().is_some() {
                    self.open_dirs = self.open_dirs.saturating_sub(1);
                }
            }
            self.evict_from = self.evict_from.saturating_add(1);
        }
    }

    /// Sorts the children of `dir` by name and refuses a name listed twice.
    fn sort_children(&mut self, dir: NodeId) -> Result<(), TreeError> {
        let node = self.tree.node_mut(dir)?;
        node.children.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        let twice = node.children.windows(2).any(|w| match w {
            [a, b] => a.name == b.name,
            _ => false,
        });
        if twice {
            return Err(TreeError::DuplicateName {
                parent: u32::try_from(dir.index()).unwrap_or(u32::MAX),
            });
        }
        Ok(())
    }

    fn push_child(
        &mut self,
        dir: NodeId,
        name: &[u8],
        child: NodeId,
        hardlink: bool,
    ) -> Result<(), ScanError> {
        self.tree
            .push_child(dir, name.to_vec(), child, hardlink)
            .map_err(|source| ScanError::Tree {
                path: self.entry_path(name),
                source,
            })
    }

    /// The path naming entry `name` for its xattr calls: through the directory's
    /// descriptor in `/proc/self/fd`, else in full.
    fn entry_target(&self, dirfd: BorrowedFd<'_>, name: &[u8]) -> Result<CString, ScanError> {
        let mut bytes = if self.proc_fd {
            use std::os::fd::AsRawFd;
            format!("/proc/self/fd/{}/", dirfd.as_raw_fd()).into_bytes()
        } else {
            let mut p = self.path.clone();
            p.push(b'/');
            p
        };
        bytes.extend_from_slice(name);
        CString::new(bytes).map_err(|_| ScanError::Changed {
            path: self.entry_path(name),
            what: "name contains NUL",
        })
    }

    fn dir_path(&self) -> PathBuf {
        PathBuf::from(OsStr::from_bytes(&self.path))
    }

    fn entry_path(&self, name: &[u8]) -> PathBuf {
        let mut p = self.path.clone();
        if p.last() != Some(&b'/') {
            p.push(b'/');
        }
        p.extend_from_slice(name);
        PathBuf::from(OsString::from_vec(p))
    }
}

/// The node the reference records for `st`: mode, owner, size, mtime (zero with
/// `use_epoch`), link count 1.
fn node_from_stat(st: &Stat, options: &ScanOptions, path: &Path) -> Result<Node, ScanError> {
    let mut node = Node::with_mode(st.st_mode);
    node.uid = st.st_uid;
    node.gid = st.st_gid;
    node.nlink = 1;
    node.size = u64::try_from(st.st_size).map_err(|_| ScanError::Changed {
        path: path.to_owned(),
        what: "negative size",
    })?;
    if !options.use_epoch {
        node.mtime = mtime(st);
    }
    Ok(node)
}

#[allow(clippy::useless_conversion, clippy::unnecessary_fallible_conversions)]
fn mtime(st: &Stat) -> Mtime {
    Mtime {
        sec: i64::from(st.st_mtime),
        nsec: u32::try_from(st.st_mtime_nsec).unwrap_or(0),
    }
}

#[allow(clippy::useless_conversion)]
pub(crate) fn file_id(st: &Stat) -> FileId {
    (u64::from(st.st_dev), u64::from(st.st_ino))
}

/// Whether fewer blocks are allocated than the size needs: then holes are looked for.
#[allow(clippy::useless_conversion, clippy::unnecessary_fallible_conversions)]
fn is_sparse(st: &Stat) -> bool {
    let allocated = u64::try_from(st.st_blocks).unwrap_or(0).saturating_mul(512);
    allocated < u64::try_from(st.st_size).unwrap_or(0)
}

fn io_error(op: &'static str, path: PathBuf, e: Errno) -> ScanError {
    ScanError::Io {
        op,
        path,
        source: e.into(),
    }
}
