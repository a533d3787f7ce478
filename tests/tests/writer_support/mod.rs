//! Shared pieces of the writer tests: a minimal dump reader (until the real parser is
//! merged) and running the reference mkcomposefs.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use composefs_format::tree::{Mtime, Node, NodeId, Tree};

fn unescape(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'\\' {
            match s[i + 1] {
                b'\\' => out.push(b'\\'),
                b'n' => out.push(b'\n'),
                b'r' => out.push(b'\r'),
                b't' => out.push(b'\t'),
                b'x' => {
                    let hex = std::str::from_utf8(&s[i + 2..i + 4]).unwrap();
                    out.push(u8::from_str_radix(hex, 16).unwrap());
                    i += 2;
                }
                c => panic!("bad escape {c}"),
            }
            i += 2;
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    out
}

fn optional(s: &[u8]) -> Option<Vec<u8>> {
    (s != b"-" && !s.is_empty()).then(|| unescape(s))
}

/// Reads a dump into a tree (lenient: symlink sizes are not checked).
pub fn parse_dump(text: &[u8]) -> Tree {
    let mut tree: Option<Tree> = None;
    let mut paths: HashMap<Vec<u8>, NodeId> = HashMap::new();
    let mut links: Vec<(NodeId, Vec<u8>, Vec<u8>)> = Vec::new();
    for line in text.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let mut f: Vec<&[u8]> = line.splitn(12, |&b| b == b' ').collect();
        // Missing fields read as empty strings.
        f.resize(f.len().max(11), b"");
        let path = unescape(f[0]);
        let comps: Vec<&[u8]> = path
            .split(|&b| b == b'/')
            .filter(|c| !c.is_empty())
            .collect();
        let (mode_s, hardlink) = match f[2].strip_prefix(b"@") {
            Some(m) => (m, true),
            None => (f[2], false),
        };
        let num = |b: &[u8]| std::str::from_utf8(b).unwrap().parse::<u64>().unwrap();
        let mode = u32::from_str_radix(std::str::from_utf8(mode_s).unwrap(), 8).unwrap();
        let parent_path: Vec<u8> = comps[..comps.len().saturating_sub(1)].join(&b'/');
        if hardlink {
            let parent = paths[&parent_path];
            let target = unescape(f[8]);
            let target: Vec<u8> = target
                .split(|&b| b == b'/')
                .filter(|c| !c.is_empty())
                .collect::<Vec<_>>()
                .join(&b'/');
            links.push((parent, comps.last().unwrap().to_vec(), target));
            continue;
        }
        let mtime_s = std::str::from_utf8(f[7]).unwrap();
        let (sec, nsec) = mtime_s.split_once('.').unwrap();
        let mut node = Node {
            mode,
            size: num(f[1]),
            nlink: num(f[3]) as u32,
            uid: num(f[4]) as u32,
            gid: num(f[5]) as u32,
            rdev: num(f[6]) as u32,
            mtime: Mtime {
                sec: sec.parse().unwrap(),
                nsec: nsec.parse().unwrap(),
            },
            payload: optional(f[8]),
            content: optional(f[9]),
            digest: optional(f[10]).filter(|d| !d.is_empty()).map(|d| {
                let hex = std::str::from_utf8(&d).unwrap();
                let mut out = [0u8; 32];
                for (i, o) in out.iter_mut().enumerate() {
                    *o = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap();
                }
                out
            }),
            ..Node::default()
        };
        if let Some(x) = f.get(11) {
            for kv in x.split(|&b| b == b' ').filter(|kv| !kv.is_empty()) {
                let at = kv.iter().position(|&b| b == b'=').unwrap();
                let (k, v) = (unescape(&kv[..at]), unescape(&kv[at + 1..]));
                node.set_xattr(k, v);
            }
        }
        if node.file_type() != Some(composefs_format::ondisk::FileType::Regular) {
            node.content = None;
            node.digest = None;
        }
        match &mut tree {
            None => {
                assert!(comps.is_empty(), "root first");
                tree = Some(Tree::new(node));
                paths.insert(Vec::new(), NodeId::ROOT);
            }
            Some(t) => {
                let parent = paths[&parent_path];
                let id = t.add(node).unwrap();
                t.push_child(parent, comps.last().unwrap().to_vec(), id, false)
                    .unwrap();
                paths.insert(comps.join(&b'/'), id);
            }
        }
    }
    let mut tree = tree.expect("empty dump");
    for (parent, name, target) in links {
        let target = paths[&target];
        tree.push_child(parent, name, target, true).unwrap();
    }
    tree.sort_children().unwrap();
    tree
}

/// Runs the reference mkcomposefs on `dump` with `args`; `Ok(image)` or `Err(stderr)`.
pub fn reference_image(
    tool: &Path,
    dump: &[u8],
    args: &[&str],
    strict: bool,
) -> Result<Vec<u8>, String> {
    let mut cmd = Command::new(tool);
    cmd.args(args).args(["--from-file", "-", "-"]);
    if strict {
        cmd.env("CFS_PARSE_STRICT", "1");
    } else {
        cmd.env_remove("CFS_PARSE_STRICT");
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let dump = dump.to_vec();
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(&dump);
    });
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Our image of `dump` with the given versions.
pub fn our_image(
    dump: &[u8],
    min: u32,
    max: u32,
) -> Result<Vec<u8>, composefs_format::write::WriteError> {
    let tree = parse_dump(dump);
    let options = composefs_format::write::Options {
        min_version: min,
        max_version: max,
    };
    let mut out = Vec::new();
    match composefs_format::write::write_image(&tree, &options, &mut out) {
        Ok(layout) => {
            assert_eq!(layout.image_size(), out.len() as u64);
            Ok(out)
        }
        Err(composefs_format::write::WriteImageError::Plan(e)) => Err(e),
        Err(e) => panic!("{e}"),
    }
}

/// The first differing byte of two images, described by our layout.
pub fn first_difference(dump: &[u8], min: u32, max: u32, ours: &[u8], theirs: &[u8]) -> String {
    let at = ours
        .iter()
        .zip(theirs)
        .position(|(a, b)| a != b)
        .unwrap_or(ours.len().min(theirs.len()));
    let tree = parse_dump(dump);
    let options = composefs_format::write::Options {
        min_version: min,
        max_version: max,
    };
    let layout = composefs_format::write::plan(&tree, &options).unwrap();
    format!(
        "sizes ours {} theirs {}; first difference at {at}: {:?}",
        ours.len(),
        theirs.len(),
        layout.describe_offset(at as u64)
    )
}

/// Escapes bytes for a dump field (`=` too when `eq`).
pub fn esc(b: &[u8], eq: bool) -> String {
    let mut s = String::new();
    for &c in b {
        match c {
            b'\\' => s.push_str("\\\\"),
            b'\n' => s.push_str("\\n"),
            b'\r' => s.push_str("\\r"),
            b'\t' => s.push_str("\\t"),
            b'=' if eq => s.push_str("\\x3d"),
            c if c <= 0x20 || c >= 0x7f => s.push_str(&format!("\\x{c:02x}")),
            c => s.push(c as char),
        }
    }
    if s == "-" {
        "\\x2d".into()
    } else {
        s
    }
}

/// One dump line: `path size mode nlink uid gid rdev mtime payload content digest xattrs`.
/// `payload`, `content` and `digest` are written as `-` when `None`.
#[derive(Clone, Debug)]
pub struct Line {
    pub path: Vec<u8>,
    pub size: u64,
    pub mode: String,
    pub nlink: u64,
    pub uid: u64,
    pub gid: u64,
    pub rdev: u64,
    pub mtime: String,
    pub payload: Option<Vec<u8>>,
    pub content: Option<Vec<u8>>,
    pub digest: Option<String>,
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Line {
    pub fn new(path: &[u8], mode: &str) -> Self {
        Self {
            path: path.to_vec(),
            size: 0,
            mode: mode.into(),
            nlink: 1,
            uid: 0,
            gid: 0,
            rdev: 0,
            mtime: "0.0".into(),
            payload: None,
            content: None,
            digest: None,
            xattrs: Vec::new(),
        }
    }
    pub fn dir(path: &[u8]) -> Self {
        Self {
            nlink: 2,
            ..Self::new(path, "40755")
        }
    }
    pub fn file(path: &[u8], size: u64) -> Self {
        Self {
            size,
            ..Self::new(path, "100644")
        }
    }
    pub fn inline(path: &[u8], content: Vec<u8>) -> Self {
        Self {
            size: content.len() as u64,
            content: Some(content),
            ..Self::new(path, "100644")
        }
    }
    pub fn symlink(path: &[u8], target: &[u8]) -> Self {
        Self {
            size: target.len() as u64,
            payload: Some(target.to_vec()),
            ..Self::new(path, "120777")
        }
    }
    pub fn link(path: &[u8], target: &[u8]) -> Self {
        Self {
            payload: Some(target.to_vec()),
            ..Self::new(path, "@100644")
        }
    }
    pub fn x(mut self, k: &[u8], v: &[u8]) -> Self {
        self.xattrs.push((k.to_vec(), v.to_vec()));
        self
    }
    pub fn render(&self) -> String {
        let opt = |o: &Option<Vec<u8>>| o.as_ref().map_or("-".to_string(), |b| esc(b, false));
        let mut s = format!(
            "{} {} {} {} {} {} {} {} {} {} {}",
            esc(&self.path, false),
            self.size,
            self.mode,
            self.nlink,
            self.uid,
            self.gid,
            self.rdev,
            self.mtime,
            opt(&self.payload),
            opt(&self.content),
            self.digest.as_deref().unwrap_or("-"),
        );
        for (k, v) in &self.xattrs {
            s.push_str(&format!(" {}={}", esc(k, true), esc(v, true)));
        }
        s.push('\n');
        s
    }
}

/// A dump of `lines`, in order.
pub fn dump(lines: &[Line]) -> Vec<u8> {
    lines
        .iter()
        .map(Line::render)
        .collect::<String>()
        .into_bytes()
}

/// Runs `fsck.erofs` on `image`; `None` when it is not installed, else whether it passed
/// (with its output).
pub fn fsck(image: &[u8]) -> Option<Result<(), String>> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("image");
    std::fs::write(&path, image).unwrap();
    let out = Command::new("fsck.erofs").arg(&path).output().ok()?;
    Some(if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    })
}

/// Panics with the problems the reader's structural check finds in `image`, if any.
pub fn assert_sound(image: &[u8], label: &str) {
    let report = composefs_format::check::check_bytes(image);
    if !report.is_sound() {
        let problems: Vec<String> = report
            .problems()
            .iter()
            .take(10)
            .map(|p| {
                format!(
                    "{} at {}",
                    p.error,
                    String::from_utf8_lossy(&report.path(p))
                )
            })
            .collect();
        panic!(
            "{label}: check found {} problems: {problems:#?}",
            report.problems().len()
        );
    }
}
