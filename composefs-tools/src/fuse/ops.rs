//! The FUSE operations: a thin map from each request to the image views.
//!
//! Every request validates what it touches through the reader, which never panics. Any
//! reader or object error is logged on stderr with the inode it concerns and becomes `EIO`
//! for that request only; the server keeps serving the rest of the image.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fmt::Display;
use std::fs::File;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use composefs_format::dir::Dir;
use composefs_format::image::Image;
use composefs_format::inode::Inode;
use composefs_format::ondisk::FileType;
use composefs_format::{Error, ErrorClass};
use fuser::{
    BackingId, Errno, FileHandle, Filesystem, FopenFlags, Generation, INodeNo, InitFlags,
    KernelConfig, LockOwner, OpenAccMode, OpenFlags, ReplyAttr, ReplyData, ReplyDirectory,
    ReplyDirectoryPlus, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyXattr, Request,
};

use super::inodes::{is_whiteout, kind, InodeTable};
use super::objects::Objects;
use super::xattrs::XattrView;

/// How long the kernel may cache entries and attributes: the image never changes.
const TTL: Duration = Duration::from_secs(24 * 60 * 60);
/// EROFS block size, reported by statfs.
const BLOCK_SIZE: u32 = 4096;
/// Longest name, reported by statfs.
const NAME_MAX: u32 = 255;
/// The file handle of files served from the image itself.
const IMAGE_HANDLE: u64 = 0;

/// How the server answers, beyond what the image says.
#[derive(Debug, Clone, Copy)]
pub struct Serving {
    /// Hide POSIX ACL xattrs.
    pub noacl: bool,
    /// Offer the kernel directory reads with attributes (`readdirplus`).
    pub readdirplus: bool,
    /// Ask the kernel to read external files straight from their backing objects (FUSE
    /// passthrough, Linux 6.9+, needs `CAP_SYS_ADMIN`); when it cannot, reads go through
    /// the server.
    pub passthrough: bool,
}

/// A composefs image served over FUSE.
#[derive(Debug)]
pub struct ComposefsFs {
    image: Image<'static>,
    table: InodeTable,
    objects: Objects,
    serving: Serving,
    /// Whether the kernel agreed to passthrough at `init` and no backing registration
    /// has failed since.
    passthrough: AtomicBool,
    /// Open external files' objects, by file handle.
    handles: Mutex<HashMap<u64, Arc<File>>>,
    /// Passthrough registrations, by inode: the kernel wants one per inode shared by every
    /// open handle, so each counts its handles and is closed with the last one.
    backings: Mutex<HashMap<INodeNo, (Arc<BackingId>, usize)>>,
    next_handle: AtomicU64,
}

/// Logs a failed request and returns `EIO`.
fn fail(op: &str, ino: INodeNo, error: &dyn Display) -> Errno {
    eprintln!("composefs-fuse: {op} (inode {}): {error}", ino.0);
    Errno::EIO
}

/// The errno of a reader error: the few that describe the request rather than the image
/// map to their own errno; everything else is a corrupt or unsupported image, logged, EIO.
fn image_errno(op: &str, ino: INodeNo, error: &Error) -> Errno {
    match error.class() {
        ErrorClass::NameTooLong => Errno::ENAMETOOLONG,
        _ => fail(op, ino, error),
    }
}

impl ComposefsFs {
    /// Serves `image`, with external files from `objects`, as `serving` says.
    #[must_use]
    pub fn new(image: Image<'static>, objects: Objects, serving: Serving) -> Self {
        Self {
            table: InodeTable::new(image.root_nid()),
            image,
            objects,
            serving,
            passthrough: AtomicBool::new(false),
            handles: Mutex::new(HashMap::new()),
            backings: Mutex::new(HashMap::new()),
            next_handle: AtomicU64::new(1),
        }
    }

    /// The passthrough registration of `ino` for one more handle: the existing one, or a
    /// new one of `file`. `None` when the inode has none and passthrough is off, or the
    /// kernel refuses (logged once; no new registrations are tried for the rest of the
    /// session).
    fn backing(&self, ino: INodeNo, file: &File, reply: &ReplyOpen) -> Option<Arc<BackingId>> {
        let mut backings = self.backings.lock().unwrap_or_else(PoisonError::into_inner);
        // An inode already open in passthrough must be opened in passthrough again (the
        // kernel fails any other open of it), even if passthrough was turned off since.
        if let Some((id, handles)) = backings.get_mut(&ino) {
            *handles = handles.saturating_add(1);
            return Some(Arc::clone(id));
        }
        if !self.passthrough.load(Ordering::Relaxed) {
            return None;
        }
        match reply.open_backing(file) {
            Ok(id) => {
                let id = Arc::new(id);
                backings.insert(ino, (Arc::clone(&id), 1));
                Some(id)
            }
            Err(e) => {
                if self.passthrough.swap(false, Ordering::Relaxed) {
                    eprintln!(
                        "composefs-fuse: passthrough refused ({e}); reading through the server"
                    );
                }
                None
            }
        }
    }

    /// Drops one handle's use of the passthrough registration of `ino`, if it has one.
    fn release_backing(&self, ino: INodeNo) {
        let mut backings = self.backings.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, handles)) = backings.get_mut(&ino) {
            *handles = handles.saturating_sub(1);
            if *handles == 0 {
                backings.remove(&ino);
            }
        }
    }

    /// The inode behind an inode number the kernel sent.
    fn inode(&self, op: &str, ino: INodeNo) -> Result<Inode<'static>, Errno> {
        self.image
            .inode(self.table.nid(ino))
            .map_err(|e| image_errno(op, ino, &e))
    }

    /// The directory view of `ino` for `op`: `ENOTDIR` when it is not a directory, the
    /// image's error otherwise.
    fn dir(&self, op: &str, ino: INodeNo) -> Result<Dir<'static>, Errno> {
        let inode = self.inode(op, ino)?;
        inode.dir().map_err(|e| {
            if inode.is_dir() {
                fail(op, ino, &e)
            } else {
                Errno::ENOTDIR
            }
        })
    }

    /// The inode a directory entry names. Loaded by nid, never through the inode-number
    /// mapping, so that a hostile entry naming nid 1 cannot alias the root.
    fn entry_inode(&self, op: &str, nid: u64) -> Result<Inode<'static>, Errno> {
        self.image
            .inode(nid)
            .map_err(|e| image_errno(op, INodeNo(nid), &e))
    }

    fn xattr_view(&self, req: &Request) -> XattrView {
        XattrView {
            noacl: self.serving.noacl,
            list_trusted: req.uid() == 0,
        }
    }

    fn do_lookup(&self, parent: INodeNo, name: &OsStr) -> Result<Inode<'static>, Errno> {
        let dir = self.inode("lookup", parent)?;
        if !dir.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        let entry = dir
            .dir()
            .and_then(|d| d.lookup(name.as_bytes()))
            .map_err(|e| image_errno("lookup", parent, &e))?
            .ok_or(Errno::ENOENT)?;
        let inode = self.entry_inode("lookup", entry.nid())?;
        if is_whiteout(&inode) {
            return Err(Errno::ENOENT);
        }
        Ok(inode)
    }

    /// Whether a directory entry is hidden: a real whiteout (the root stubs).
    fn hidden(&self, op: &str, file_type: FileType, nid: u64) -> Result<bool, Errno> {
        if file_type != FileType::CharDevice {
            return Ok(false);
        }
        Ok(is_whiteout(&self.entry_inode(op, nid)?))
    }

    fn do_read(&self, ino: INodeNo, fh: u64, offset: u64, size: u32) -> Result<Vec<u8>, Errno> {
        let inode = self.inode("read", ino)?;
        let len = inode.size().saturating_sub(offset).min(u64::from(size));
        let mut buf = vec![0u8; usize::try_from(len).map_err(|_| Errno::EINVAL)?];
        if fh == IMAGE_HANDLE {
            if inode.is_external() {
                return Err(fail("read", ino, &"external file read without a handle"));
            }
            let n = inode
                .read_at(offset, &mut buf)
                .map_err(|e| image_errno("read", ino, &e))?;
            buf.truncate(n);
            return Ok(buf);
        }
        let file = self
            .handles
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&fh)
            .cloned()
            .ok_or(Errno::EBADF)?;
        let mut done = 0usize;
        while done < buf.len() {
            let at = offset.saturating_add(done as u64);
            match file.read_at(buf.get_mut(done..).unwrap_or_default(), at) {
                Ok(0) => break,
                Ok(n) => done = done.saturating_add(n),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(fail("read", ino, &e)),
            }
        }
        buf.truncate(done);
        Ok(buf)
    }
}

impl Filesystem for ComposefsFs {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        // Each is an optimisation; a kernel without one simply does without.
        let mut flags = vec![
            InitFlags::FUSE_CACHE_SYMLINKS,
            InitFlags::FUSE_PARALLEL_DIROPS,
        ];
        if self.serving.readdirplus {
            flags.extend([
                InitFlags::FUSE_DO_READDIRPLUS,
                InitFlags::FUSE_READDIRPLUS_AUTO,
            ]);
        }
        for flag in flags {
            let _ = config.add_capabilities(flag);
        }
        // Depth 1: backing objects on a plain filesystem, and the mount itself may sit
        // under an overlayfs (an upper layer for writes).
        let passthrough = self.serving.passthrough
            && config.add_capabilities(InitFlags::FUSE_PASSTHROUGH).is_ok()
            && config.set_max_stack_depth(1).is_ok();
        if self.serving.passthrough && !passthrough {
            eprintln!(
                "composefs-fuse: the kernel offers no passthrough; reading through the server"
            );
        }
        self.passthrough.store(passthrough, Ordering::Relaxed);
        if !self.serving.noacl {
            // The kernel then enforces the image's ACLs in permission checks, as it does
            // on a kernel mount of an image that has ACLs.
            let _ = config.add_capabilities(InitFlags::FUSE_POSIX_ACL);
        }
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        match self.do_lookup(parent, name) {
            Ok(inode) => reply.entry(&TTL, &self.table.attr(&inode), Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.inode("getattr", ino) {
            Ok(inode) => reply.attr(&TTL, &self.table.attr(&inode)),
            Err(e) => reply.error(e),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        let target = self.inode("readlink", ino).and_then(|inode| {
            if inode.file_type() != FileType::Symlink {
                return Err(Errno::EINVAL);
            }
            inode
                .symlink_target()
                .map_err(|e| image_errno("readlink", ino, &e))
        });
        match target {
            Ok(t) => reply.data(t),
            Err(e) => reply.error(e),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        if flags.acc_mode() != OpenAccMode::O_RDONLY {
            return reply.error(Errno::EROFS);
        }
        let inode = match self.inode("open", ino) {
            Ok(i) => i,
            Err(e) => return reply.error(e),
        };
        if inode.is_dir() {
            return reply.error(Errno::EISDIR);
        }
        // The image is immutable: what the page cache holds stays valid.
        let keep = FopenFlags::FOPEN_KEEP_CACHE;
        if inode.file_type() != FileType::Regular || !inode.is_external() {
            return reply.opened(FileHandle(IMAGE_HANDLE), keep);
        }
        let file = match self.objects.open(&inode) {
            Ok(file) => file,
            Err(e) => return reply.error(fail("open", ino, &e)),
        };
        let fh = self.next_handle.fetch_add(1, Ordering::Relaxed);
        // O_DIRECT opens pass through too (the kernel allows no other open beside a
        // passthrough one): the backing filesystem's alignment rules then apply, exactly
        // as on a kernel mount, where overlayfs hands O_DIRECT to the object.
        let backing = self.backing(ino, &file, &reply);
        self.handles
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(fh, file);
        match backing {
            // The kernel reads the object itself (through the object's own page cache)
            // and sends no read requests; it refuses any open flag beside passthrough,
            // so not `FOPEN_KEEP_CACHE`.
            Some(id) => reply.opened_passthrough(FileHandle(fh), FopenFlags::empty(), &id),
            None => reply.opened(FileHandle(fh), keep),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        match self.do_read(ino, fh.0, offset, size) {
            Ok(data) => reply.data(&data),
            Err(e) => reply.error(e),
        }
    }

    fn release(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        let released = self
            .handles
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&fh.0);
        // Only handles of external files were counted (files from the image have none).
        if released.is_some() {
            self.release_backing(ino);
        }
        reply.ok();
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match self.inode("opendir", ino) {
            Ok(inode) if inode.is_dir() => reply.opened(
                FileHandle(IMAGE_HANDLE),
                FopenFlags::FOPEN_KEEP_CACHE | FopenFlags::FOPEN_CACHE_DIR,
            ),
            Ok(_) => reply.error(Errno::ENOTDIR),
            Err(e) => reply.error(e),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let dir = match self.dir("readdir", ino) {
            Ok(d) => d,
            Err(e) => return reply.error(e),
        };
        let mut added = false;
        for entry in dir.entries_from(offset) {
            let entry = match entry {
                Ok(d) => d,
                // Serve what came before; the next call starts at the bad entry.
                Err(_) if added => break,
                Err(e) => return reply.error(fail("readdir", ino, &e)),
            };
            match self.hidden("readdir", entry.file_type(), entry.nid()) {
                Ok(true) => continue,
                Ok(false) => {}
                Err(_) if added => break,
                Err(e) => return reply.error(e),
            }
            let next = entry.position().saturating_add(1);
            let name = OsStr::from_bytes(entry.name());
            if reply.add(
                self.table.ino(entry.nid()),
                next,
                kind(entry.file_type()),
                name,
            ) {
                break;
            }
            added = true;
        }
        reply.ok();
    }

    fn readdirplus(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectoryPlus,
    ) {
        let dir = match self.dir("readdirplus", ino) {
            Ok(d) => d,
            Err(e) => return reply.error(e),
        };
        let mut added = false;
        for entry in dir.entries_from(offset) {
            let inode = entry
                .map_err(|e| fail("readdirplus", ino, &e))
                .and_then(|d| Ok((d, self.entry_inode("readdirplus", d.nid())?)));
            let (entry, inode) = match inode {
                Ok(pair) => pair,
                Err(_) if added => break,
                Err(e) => return reply.error(e),
            };
            if is_whiteout(&inode) {
                continue;
            }
            let next = entry.position().saturating_add(1);
            let name = OsStr::from_bytes(entry.name());
            let attr = self.table.attr(&inode);
            if reply.add(attr.ino, next, name, &TTL, &attr, Generation(0)) {
                break;
            }
            added = true;
        }
        reply.ok();
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        let blocks = self.image.len() / u64::from(BLOCK_SIZE);
        reply.statfs(
            blocks,
            0,
            0,
            self.image.inos(),
            0,
            BLOCK_SIZE,
            NAME_MAX,
            BLOCK_SIZE,
        );
    }

    fn getxattr(&self, req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        let value = self.inode("getxattr", ino).and_then(|inode| {
            self.xattr_view(req)
                .get(&inode, name.as_bytes())
                .map_err(|e| fail("getxattr", ino, &e))
        });
        match value {
            Ok(Some(v)) => reply_xattr(reply, size, v),
            Ok(None) => reply.error(Errno::NO_XATTR),
            Err(e) => reply.error(e),
        }
    }

    fn listxattr(&self, req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        let list = self.inode("listxattr", ino).and_then(|inode| {
            self.xattr_view(req)
                .list(&inode)
                .map_err(|e| fail("listxattr", ino, &e))
        });
        match list {
            Ok(l) => reply_xattr(reply, size, &l),
            Err(e) => reply.error(e),
        }
    }
}

/// Answers a getxattr/listxattr request: the size when `size` is 0, the data when it
/// fits, `ERANGE` otherwise.
fn reply_xattr(reply: ReplyXattr, size: u32, data: &[u8]) {
    match u32::try_from(data.len()) {
        Ok(len) if size == 0 => reply.size(len),
        Ok(len) if len <= size => reply.data(data),
        _ => reply.error(Errno::ERANGE),
    }
}
