//! Helpers of the composefs-fuse tests: mounting with composefs-fuse and with the kernel
//! (EROFS + overlayfs), a generated source tree with its dump and object store, building
//! images, and snapshots of a mounted tree to compare.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs
)]

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs::File;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use composefs_std::store::{object_path, Store};

/// Whether FUSE tests can run here (root, `/dev/fuse`, fuse in the kernel); prints a
/// visible skip message when not.
pub fn fuse_available(test: &str) -> bool {
    let root = rustix::process::geteuid().is_root();
    let dev = Path::new("/dev/fuse").exists();
    let fs = filesystems().iter().any(|f| f == "fuse");
    if root && dev && fs {
        true
    } else {
        composefs_conformance::skip(&format!(
            "{test}: needs root and /dev/fuse (root {root}, /dev/fuse {dev}, fuse {fs})"
        ));
        false
    }
}

/// Whether the kernel can mount composefs images (EROFS and overlayfs); prints a visible
/// skip message when not.
pub fn kernel_mount_available(test: &str) -> bool {
    let fs = filesystems();
    let ok = ["erofs", "overlay"]
        .iter()
        .all(|n| fs.iter().any(|f| f == n));
    if !ok {
        composefs_conformance::skip(&format!("{test}: the kernel has no erofs or overlay"));
    }
    ok
}

fn filesystems() -> Vec<String> {
    std::fs::read_to_string("/proc/filesystems")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().last().map(str::to_owned))
        .collect()
}

fn is_mountpoint(dir: &Path) -> bool {
    let target = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_owned());
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    text.lines().any(|l| {
        l.split(' ')
            .nth(4)
            .is_some_and(|m| Path::new(&unescape_mountinfo(m)) == target)
    })
}

fn unescape_mountinfo(s: &str) -> String {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 4], 8) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn umount(dir: &Path) -> bool {
    Command::new("umount")
        .arg(dir)
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A running composefs-fuse server and its mount.
pub struct FuseMount {
    child: Option<Child>,
    pub dir: PathBuf,
    log: PathBuf,
}

impl FuseMount {
    /// Starts `composefs-fuse -o OPTIONS DIR` and waits for the mount to appear, or for
    /// the server to exit (then returns its status and log).
    pub fn try_start(options: &str, dir: &Path) -> Result<Self, (ExitStatus, String)> {
        std::fs::create_dir_all(dir).unwrap();
        let log = dir.with_extension("log");
        let child = Command::new(env!("CARGO_BIN_EXE_composefs-fuse"))
            .arg("-o")
            .arg(options)
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut m = Self {
            child: Some(child),
            dir: dir.to_owned(),
            log,
        };
        let start = Instant::now();
        loop {
            if is_mountpoint(dir) {
                return Ok(m);
            }
            if let Some(status) = m.child.as_mut().unwrap().try_wait().unwrap() {
                m.child = None;
                return Err((status, m.log()));
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "composefs-fuse did not mount {}: {}",
                dir.display(),
                m.log()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// As [`FuseMount::try_start`], failing the test if the server exits.
    pub fn start(options: &str, dir: &Path) -> Self {
        Self::try_start(options, dir)
            .unwrap_or_else(|(s, log)| panic!("composefs-fuse exited with {s}: {log}"))
    }

    /// Everything the server wrote to stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Bytes the server process has read so far (`rchar` of `/proc/PID/io`): what it
    /// copied out of objects and the image, among others.
    pub fn bytes_read(&self) -> u64 {
        let pid = self.child.as_ref().expect("the server is running").id();
        let io = std::fs::read_to_string(format!("/proc/{pid}/io")).unwrap();
        io.lines()
            .find_map(|l| l.strip_prefix("rchar: "))
            .and_then(|n| n.trim().parse().ok())
            .expect("rchar in /proc/PID/io")
    }

    /// Whether the server process is still running.
    pub fn alive(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().unwrap().is_none())
    }

    /// Unmounts and waits for the server to exit; returns its exit status.
    pub fn unmount(self) -> ExitStatus {
        assert!(umount(&self.dir), "umount {} failed", self.dir.display());
        self.wait()
    }

    /// Sends `signal` (e.g. `TERM`) to the server and waits for it to exit; returns its
    /// exit status.
    pub fn signal(self, signal: &str) -> ExitStatus {
        let pid = self.child.as_ref().expect("server already gone").id();
        let sent = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status()
            .unwrap();
        assert!(sent.success());
        self.wait()
    }

    fn wait(mut self) -> ExitStatus {
        let mut child = self.child.take().expect("server already gone");
        let start = Instant::now();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if start.elapsed() > Duration::from_secs(20) {
                let _ = child.kill();
                panic!("composefs-fuse did not exit after umount: {}", self.log());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for FuseMount {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if is_mountpoint(&self.dir) {
                let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A kernel mount of an image: EROFS (file-backed) under overlayfs with the basedirs as
/// data-only layers, as `mount.composefs` does it.
pub struct KernelMount {
    erofs: PathBuf,
    pub dir: PathBuf,
}

impl KernelMount {
    pub fn new(image: &Path, basedirs: &[&Path], dir: &Path) -> Self {
        let erofs = dir.with_extension("erofs");
        std::fs::create_dir_all(&erofs).unwrap();
        std::fs::create_dir_all(dir).unwrap();
        let status = Command::new("mount")
            .args(["-t", "erofs", "-o", "ro"])
            .arg(image)
            .arg(&erofs)
            .status()
            .unwrap();
        assert!(status.success(), "mount -t erofs {}", image.display());
        let mut opts = format!(
            "ro,metacopy=on,redirect_dir=on,lowerdir+={}",
            erofs.display()
        );
        for b in basedirs {
            opts.push_str(&format!(",datadir+={}", b.display()));
        }
        let status = Command::new("mount")
            .args(["-t", "overlay", "composefs", "-o", &opts])
            .arg(dir)
            .status()
            .unwrap();
        if !status.success() {
            umount(&erofs);
            panic!("mount -t overlay -o {opts}");
        }
        Self {
            erofs,
            dir: dir.to_owned(),
        }
    }
}

impl Drop for KernelMount {
    fn drop(&mut self) {
        umount(&self.dir);
        umount(&self.erofs);
    }
}

/// A small deterministic random generator (xorshift64*).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// What a source entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Dir,
    /// Content stored in the image.
    Inline(Vec<u8>),
    /// Content stored in the object store (non-empty); `digest` false writes no digest.
    External {
        data: Vec<u8>,
        digest: bool,
    },
    Symlink(Vec<u8>),
    Fifo,
    Char(u32),
    Block(u32),
    /// A character device 0:0.
    Whiteout,
    /// A hard link to the entry at this path.
    Hardlink(Vec<u8>),
}

/// One entry of a source tree. Paths start with `/`.
#[derive(Debug, Clone)]
pub struct Entry {
    pub path: Vec<u8>,
    pub kind: Kind,
    pub perm: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: (i64, u32),
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Entry {
    pub fn new(path: &[u8], kind: Kind) -> Self {
        let perm = match kind {
            Kind::Dir => 0o755,
            Kind::Symlink(_) => 0o777,
            _ => 0o644,
        };
        Self {
            path: path.to_vec(),
            kind,
            perm,
            uid: 0,
            gid: 0,
            mtime: (1_700_000_000, 0),
            xattrs: Vec::new(),
        }
    }
}

/// A valid POSIX ACL (version 2): user::rw-, user:1000:r--, group::r--, mask::r--,
/// other::r--.
pub const ACL: &[u8] = &[
    2, 0, 0, 0, 1, 0, 6, 0, 0xff, 0xff, 0xff, 0xff, 2, 0, 4, 0, 0xe8, 3, 0, 0, 4, 0, 4, 0, 0xff,
    0xff, 0xff, 0xff, 0x10, 0, 4, 0, 0xff, 0xff, 0xff, 0xff, 0x20, 0, 4, 0, 0xff, 0xff, 0xff, 0xff,
];

/// A generated tree with every kind of entry: files of many sizes, inline and external,
/// symlinks up to 4095 bytes, fifos, devices, whiteouts, hard links, xattrs of every
/// namespace (escaped overlay ones too), odd names and a deep directory chain.
pub fn generated_tree(seed: u64) -> Vec<Entry> {
    let mut rng = Rng::new(seed);
    let mut t = Vec::new();
    let mut root = Entry::new(b"/", Kind::Dir);
    root.xattrs.push((b"user.root".to_vec(), b"r".to_vec()));
    root.xattrs.push((
        b"security.selinux".to_vec(),
        b"system_u:object_r:root_t:s0".to_vec(),
    ));
    t.push(root);
    for d in [
        &b"/files"[..],
        b"/links",
        b"/special",
        b"/odd",
        b"/wh",
        b"/x",
    ] {
        t.push(Entry::new(d, Kind::Dir));
    }
    let inline_sizes = [0usize, 1, 63, 64, 100, 1000, 4000, 4095, 4096, 4097, 5000];
    for (k, size) in inline_sizes.iter().enumerate() {
        let mut e = Entry::new(
            format!("/files/inline-{size}").as_bytes(),
            Kind::Inline(rng.bytes(*size)),
        );
        e.perm = [0o644, 0o600, 0o755, 0o4755, 0o2711, 0o1777][k % 6];
        e.uid = [0, 1000, 65_535, 100_000][k % 4];
        e.gid = [0, 10, 70_000][k % 3];
        e.mtime = (1_600_000_000 + k as i64 * 1000, (k as u32) * 7_777_777);
        t.push(e);
    }
    let external_sizes = [
        1usize,
        65,
        4095,
        4096,
        4097,
        8192,
        65_539,
        524_288,
        524_289,
        1_048_576 + 17,
        3 * 1_048_576 + 5,
    ];
    for (k, size) in external_sizes.iter().enumerate() {
        let mut e = Entry::new(
            format!("/files/ext-{size}").as_bytes(),
            Kind::External {
                data: rng.bytes(*size),
                digest: true,
            },
        );
        e.mtime = (1_650_000_000 - k as i64, 999_999_999);
        if k % 3 == 0 {
            e.xattrs.push((b"user.ext".to_vec(), rng.bytes(k)));
        }
        t.push(e);
    }
    // Two files with the same content share one object.
    let shared = rng.bytes(10_000);
    for name in [&b"/files/same-a"[..], b"/files/same-b"] {
        t.push(Entry::new(
            name,
            Kind::External {
                data: shared.clone(),
                digest: true,
            },
        ));
    }
    // Hard links to an inline file, an external file and a symlink.
    t.push(Entry::new(
        b"/links/hl-inline",
        Kind::Hardlink(b"/files/inline-100".to_vec()),
    ));
    t.push(Entry::new(
        b"/links/hl-inline-2",
        Kind::Hardlink(b"/files/inline-100".to_vec()),
    ));
    t.push(Entry::new(
        b"/links/hl-ext",
        Kind::Hardlink(b"/files/ext-4097".to_vec()),
    ));
    for (name, len) in [
        ("short", 1usize),
        ("mid", 200),
        ("long", 4070),
        ("max", 4095),
    ] {
        let target: Vec<u8> = (0..len)
            .map(|i| {
                if i % 50 == 49 {
                    b'/'
                } else {
                    b'a' + (i % 26) as u8
                }
            })
            .collect();
        t.push(Entry::new(
            format!("/links/sym-{name}").as_bytes(),
            Kind::Symlink(target),
        ));
    }
    t.push(Entry::new(
        b"/links/sym-rel",
        Kind::Symlink(b"../files/inline-100".to_vec()),
    ));
    t.push(Entry::new(
        b"/links/hl-sym",
        Kind::Hardlink(b"/links/sym-rel".to_vec()),
    ));
    t.push(Entry::new(b"/special/fifo", Kind::Fifo));
    t.push(Entry::new(b"/special/null", Kind::Char((1 << 8) | 3)));
    t.push(Entry::new(b"/special/loop", Kind::Block((7 << 8) | 1)));
    let mut big = Entry::new(b"/special/big-minor", Kind::Char((259 << 8) | 0x12_3400));
    big.perm = 0o600;
    t.push(big);
    // Whiteouts: one in a subdirectory, one in the root (next to the writer's stubs).
    let mut w = Entry::new(b"/wh/gone", Kind::Whiteout);
    w.xattrs.push((b"user.w".to_vec(), b"1".to_vec()));
    t.push(w);
    t.push(Entry::new(b"/wh/kept", Kind::Inline(b"kept".to_vec())));
    t.push(Entry::new(b"/root-whiteout", Kind::Whiteout));
    // Xattrs of every kind, on one file.
    let mut x = Entry::new(b"/x/xattrs", Kind::Inline(b"x".to_vec()));
    x.xattrs = vec![
        (b"user.plain".to_vec(), b"value".to_vec()),
        (b"user.empty".to_vec(), Vec::new()),
        (b"user.binary".to_vec(), rng.bytes(300)),
        (b"trusted.t".to_vec(), b"t".to_vec()),
        (b"trusted.overlay.mine".to_vec(), b"escaped".to_vec()),
        (
            b"trusted.overlay.overlay.deeper".to_vec(),
            b"twice".to_vec(),
        ),
        (b"user.overlay.u".to_vec(), b"u".to_vec()),
        // VFS_CAP_REVISION_2 granting CAP_NET_BIND_SERVICE, not effective.
        (
            b"security.capability".to_vec(),
            vec![0, 0, 0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        ),
        (b"system.posix_acl_access".to_vec(), ACL.to_vec()),
    ];
    t.push(x);
    let mut xd = Entry::new(b"/x/dir-with-xattrs", Kind::Dir);
    xd.xattrs.push((b"user.d".to_vec(), b"d".to_vec()));
    xd.xattrs
        .push((b"system.posix_acl_default".to_vec(), ACL.to_vec()));
    t.push(xd);
    // Odd names.
    let odd: [&[u8]; 9] = [
        b"with space",
        b"new\nline",
        b"\x01ctl",
        b"\xff\xfe not utf8",
        b"back\\slash",
        b"-dash",
        b"!bang",
        b"eq=ual",
        b"tab\there",
    ];
    for (k, n) in odd.iter().enumerate() {
        let mut p = b"/odd/".to_vec();
        p.extend_from_slice(n);
        t.push(Entry::new(&p, Kind::Inline(vec![b'o'; k])));
    }
    let mut long = b"/odd/".to_vec();
    long.extend(std::iter::repeat_n(b'L', 255));
    t.push(Entry::new(&long, Kind::Inline(b"long name".to_vec())));
    // A wide directory spanning several blocks, then a deep chain.
    for k in 0..300 {
        t.push(Entry::new(
            format!("/files/wide-{k:04}-{}", "w".repeat(k % 40)).as_bytes(),
            Kind::Inline(Vec::new()),
        ));
    }
    let mut deep = Vec::new();
    for level in 0..40 {
        deep.extend_from_slice(format!("/deep{level:02}").as_bytes());
        t.push(Entry::new(&deep, Kind::Dir));
    }
    let mut leaf = deep.clone();
    leaf.extend_from_slice(b"/leaf");
    t.push(Entry::new(&leaf, Kind::Inline(b"bottom".to_vec())));
    t
}

/// Escapes a dump field: everything but ASCII letters, digits and `_./+:` becomes `\xNN`
/// (so `-`, `=`, spaces and backslashes never need context).
pub fn esc(bytes: &[u8]) -> String {
    let mut s = String::new();
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b"_./+:".contains(&b) {
            s.push(char::from(b));
        } else {
            s.push_str(&format!("\\x{b:02x}"));
        }
    }
    s
}

/// Link counts: directories 2 + subdirectories, others the number of names.
fn nlinks(tree: &[Entry]) -> BTreeMap<Vec<u8>, u32> {
    let mut n = BTreeMap::new();
    for e in tree {
        match &e.kind {
            Kind::Dir => {
                n.entry(e.path.clone()).or_insert(2);
                if e.path != b"/" {
                    *n.entry(parent(&e.path)).or_insert(2) += 1;
                }
            }
            Kind::Hardlink(target) => *n.entry(target.clone()).or_insert(1) += 1,
            _ => {
                n.entry(e.path.clone()).or_insert(1);
            }
        }
    }
    n
}

pub fn parent(path: &[u8]) -> Vec<u8> {
    match path.iter().rposition(|&b| b == b'/') {
        Some(0) | None => b"/".to_vec(),
        Some(i) => path[..i].to_vec(),
    }
}

/// Writes the dump of `tree`, putting external contents into `store`.
pub fn dump(tree: &[Entry], store: &Path) -> Vec<u8> {
    let store = Store::create(store).unwrap();
    let links = nlinks(tree);
    let mut out = String::new();
    for e in tree {
        let path = esc(&e.path);
        let nlink = links.get(&e.path).copied().unwrap_or(1);
        let xattrs: String = e
            .xattrs
            .iter()
            .map(|(k, v)| format!(" {}={}", esc(k), esc(v)))
            .collect();
        let mtime = format!("{}.{}", e.mtime.0, e.mtime.1);
        let (u, g, p) = (e.uid, e.gid, e.perm);
        let line = match &e.kind {
            Kind::Dir => format!("{path} 0 4{p:04o} {nlink} {u} {g} 0 {mtime} - - -{xattrs}"),
            Kind::Inline(data) => {
                let content = if data.is_empty() {
                    "-".into()
                } else {
                    esc(data)
                };
                format!(
                    "{path} {} 10{p:04o} {nlink} {u} {g} 0 {mtime} - {content} -{xattrs}",
                    data.len()
                )
            }
            Kind::External { data, digest } => {
                let d = store.add_bytes(data).unwrap();
                let hex = composefs_std::verity::to_hex(&d);
                let dg = if *digest { hex.as_str() } else { "-" };
                format!(
                    "{path} {} 10{p:04o} {nlink} {u} {g} 0 {mtime} {} - {dg}{xattrs}",
                    data.len(),
                    object_path(&d)
                )
            }
            Kind::Symlink(target) => format!(
                "{path} {} 12{p:04o} {nlink} {u} {g} 0 {mtime} {} - -{xattrs}",
                target.len(),
                esc(target)
            ),
            Kind::Fifo => format!("{path} 0 1{p:04o} 1 {u} {g} 0 {mtime} - - -{xattrs}"),
            Kind::Char(rdev) => {
                format!("{path} 0 2{p:04o} 1 {u} {g} {rdev} {mtime} - - -{xattrs}")
            }
            Kind::Block(rdev) => {
                format!("{path} 0 6{p:04o} 1 {u} {g} {rdev} {mtime} - - -{xattrs}")
            }
            Kind::Whiteout => format!("{path} 0 2{p:04o} 1 {u} {g} 0 {mtime} - - -{xattrs}"),
            Kind::Hardlink(target) => format!("{path} 0 @100644 - - - - 0.0 {} - -", esc(target)),
        };
        out.push_str(&line);
        out.push('\n');
    }
    out.into_bytes()
}

/// Builds the image of a dump with our parser and writer (default versions: 0, or 1 when
/// the tree has a whiteout, as `mkcomposefs`).
pub fn build_image(dump: &[u8], image: &Path) {
    use composefs_format::dumpfile::{parse_bytes, ParseOptions};
    let parsed = parse_bytes(dump, ParseOptions::strict())
        .unwrap_or_else(|e| panic!("test dump does not parse: {e}"));
    let mut out = Vec::new();
    composefs_format::write::write_image(
        &parsed.tree,
        &composefs_format::write::Options::default(),
        &mut out,
    )
    .unwrap_or_else(|e| panic!("test tree cannot be written: {e}"));
    std::fs::write(image, out).unwrap();
}

/// What one path of a mounted tree shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub kind: char,
    pub perm: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: (i64, i64),
    pub size: u64,
    pub nlink: u64,
    pub ino: u64,
    pub rdev: u64,
    pub target: Option<Vec<u8>>,
    pub xattrs: BTreeMap<Vec<u8>, Vec<u8>>,
    pub content: Option<Vec<u8>>,
}

/// Every path under `root` (relative, `/`-prefixed; the root is `/`), walked without
/// recursion, with at most `limit` entries.
pub fn snapshot(root: &Path, limit: usize) -> BTreeMap<Vec<u8>, Node> {
    let mut out = BTreeMap::new();
    let mut stack = vec![b"/".to_vec()];
    while let Some(rel) = stack.pop() {
        assert!(
            out.len() < limit,
            "more than {limit} entries under {}",
            root.display()
        );
        let full = join(root, &rel);
        let node = node(&full);
        if node.kind == 'd' {
            let mut names: Vec<Vec<u8>> = std::fs::read_dir(&full)
                .unwrap()
                .map(|e| e.unwrap().file_name().as_bytes().to_vec())
                .collect();
            names.sort();
            for n in names {
                let mut child = if rel == b"/" { Vec::new() } else { rel.clone() };
                child.push(b'/');
                child.extend_from_slice(&n);
                stack.push(child);
            }
        }
        out.insert(rel, node);
    }
    out
}

pub fn join(root: &Path, rel: &[u8]) -> PathBuf {
    let mut p = root.as_os_str().as_bytes().to_vec();
    if rel != b"/" {
        p.extend_from_slice(rel);
    }
    PathBuf::from(OsStr::from_bytes(&p))
}

fn node(path: &Path) -> Node {
    let m =
        std::fs::symlink_metadata(path).unwrap_or_else(|e| panic!("lstat {}: {e}", path.display()));
    let ft = m.file_type();
    let kind = if ft.is_dir() {
        'd'
    } else if ft.is_file() {
        'f'
    } else if ft.is_symlink() {
        'l'
    } else if ft.is_fifo() {
        'p'
    } else if ft.is_char_device() {
        'c'
    } else if ft.is_block_device() {
        'b'
    } else {
        's'
    };
    let content = (kind == 'f').then(|| {
        let mut v = Vec::new();
        File::open(path)
            .and_then(|mut f| f.read_to_end(&mut v))
            .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        v
    });
    Node {
        kind,
        perm: m.mode() & 0o7777,
        uid: m.uid(),
        gid: m.gid(),
        mtime: (m.mtime(), m.mtime_nsec()),
        size: m.size(),
        nlink: m.nlink(),
        ino: m.ino(),
        rdev: m.rdev(),
        target: (kind == 'l').then(|| {
            std::fs::read_link(path)
                .unwrap()
                .as_os_str()
                .as_bytes()
                .to_vec()
        }),
        xattrs: xattrs(path),
        content,
    }
}

/// Every xattr of `path` (not following symlinks).
pub fn xattrs(path: &Path) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut names = vec![0u8; 65_536];
    let n = rustix::fs::llistxattr(path, &mut names)
        .unwrap_or_else(|e| panic!("llistxattr {}: {e}", path.display()));
    let mut out = BTreeMap::new();
    for name in names[..n].split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let mut value = vec![0u8; 65_536];
        let len =
            rustix::fs::lgetxattr(path, OsStr::from_bytes(name), &mut value).unwrap_or_else(|e| {
                panic!(
                    "lgetxattr {} {}: {e}",
                    path.display(),
                    String::from_utf8_lossy(name)
                )
            });
        value.truncate(len);
        out.insert(name.to_vec(), value);
    }
    out
}

/// What a mount of the image of `tree` must show, as overlayfs shows it: whiteouts as
/// empty regular files marked for a stacked overlay, their directories marked too (the
/// image is format version 1 when it has whiteouts). Inode numbers are not predicted.
pub fn expected(tree: &[Entry]) -> BTreeMap<Vec<u8>, Node> {
    let links = nlinks(tree);
    let by_path: BTreeMap<&[u8], &Entry> = tree.iter().map(|e| (e.path.as_slice(), e)).collect();
    let has_acl = tree.iter().any(|e| {
        e.xattrs
            .iter()
            .any(|(k, _)| k.starts_with(b"system.posix_acl_"))
    });
    let mut out: BTreeMap<Vec<u8>, Node> = BTreeMap::new();
    for e in tree {
        let real = match &e.kind {
            Kind::Hardlink(t) => by_path[t.as_slice()],
            _ => e,
        };
        let mut xattrs: BTreeMap<Vec<u8>, Vec<u8>> = real
            .xattrs
            .iter()
            .filter(|(k, _)| has_acl || !k.starts_with(b"system.posix_acl_"))
            .cloned()
            .collect();
        let (kind, size, content, target, rdev) = match &real.kind {
            Kind::Dir => ('d', 0, None, None, 0),
            Kind::Inline(d) | Kind::External { data: d, .. } => {
                ('f', d.len() as u64, Some(d.clone()), None, 0)
            }
            Kind::Symlink(t) => ('l', t.len() as u64, None, Some(t.clone()), 0),
            Kind::Fifo => ('p', 0, None, None, 0),
            Kind::Char(r) => ('c', 0, None, None, u64::from(*r)),
            Kind::Block(r) => ('b', 0, None, None, u64::from(*r)),
            Kind::Whiteout => {
                xattrs.insert(b"trusted.overlay.whiteout".to_vec(), Vec::new());
                xattrs.insert(b"user.overlay.whiteout".to_vec(), Vec::new());
                ('f', 0, Some(Vec::new()), None, 0)
            }
            Kind::Hardlink(_) => unreachable!("hard links to hard links are not generated"),
        };
        out.insert(
            e.path.clone(),
            Node {
                kind,
                perm: real.perm,
                uid: real.uid,
                gid: real.gid,
                mtime: (real.mtime.0, i64::from(real.mtime.1)),
                size,
                nlink: u64::from(links.get(&real.path).copied().unwrap_or(1)),
                ino: 0,
                rdev,
                target,
                xattrs,
                content,
            },
        );
    }
    for e in tree.iter().filter(|e| e.kind == Kind::Whiteout) {
        let dir = out.get_mut(&parent(&e.path)).unwrap();
        for (k, v) in [
            (&b"trusted.overlay.whiteouts"[..], &b""[..]),
            (b"user.overlay.whiteouts", b""),
            (b"trusted.overlay.opaque", b"x"),
            (b"user.overlay.opaque", b"x"),
        ] {
            dir.xattrs.insert(k.to_vec(), v.to_vec());
        }
    }
    // Directory sizes are layout details: take them from the mount.
    out
}

/// Compares two snapshots field by field and reports every difference (at most 20).
pub fn assert_same(
    what: &str,
    got: &BTreeMap<Vec<u8>, Node>,
    want: &BTreeMap<Vec<u8>, Node>,
    compare: impl Fn(&Node, &Node) -> Vec<&'static str>,
) {
    let mut diffs = Vec::new();
    for (path, w) in want {
        let p = String::from_utf8_lossy(path);
        match got.get(path) {
            None => diffs.push(format!("{p}: missing")),
            Some(g) => {
                for field in compare(g, w) {
                    diffs.push(format!("{p}: {field} differs: got {g:?}, want {w:?}"));
                }
            }
        }
    }
    for path in got.keys().filter(|p| !want.contains_key(*p)) {
        diffs.push(format!("{}: unexpected", String::from_utf8_lossy(path)));
    }
    let shown: Vec<String> = diffs
        .iter()
        .take(20)
        .map(|d| d.chars().take(600).collect())
        .collect();
    assert!(
        diffs.is_empty(),
        "{what}: {} differences:\n{}",
        diffs.len(),
        shown.join("\n")
    );
}

/// The fields every mount must agree on, whatever the source.
pub fn common_fields(g: &Node, w: &Node) -> Vec<&'static str> {
    let mut d = Vec::new();
    let checks: [(&'static str, bool); 10] = [
        ("kind", g.kind == w.kind),
        ("perm", g.perm == w.perm),
        ("uid", g.uid == w.uid),
        ("gid", g.gid == w.gid),
        ("mtime", g.mtime == w.mtime),
        ("nlink", g.nlink == w.nlink),
        ("rdev", g.rdev == w.rdev),
        ("target", g.target == w.target),
        ("xattrs", g.xattrs == w.xattrs),
        ("content", g.content == w.content),
    ];
    for (name, same) in checks {
        if !same {
            d.push(name);
        }
    }
    if w.kind != 'd' && g.size != w.size {
        d.push("size");
    }
    d
}
