//! Shared pieces of the writer tests: dumps built in code, our image of a dump, the
//! reference mkcomposefs, fsck.erofs and the structural check.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use composefs_format::dumpfile::{self, ParseOptions};
use composefs_format::tree::Tree;

/// Reads a dump into a tree with the project's parser, in lenient mode (the reference
/// test suite's mode for the assets it does not run strictly).
pub fn parse_dump(text: &[u8]) -> Tree {
    match dumpfile::parse_bytes(text, ParseOptions::lenient()) {
        Ok(parsed) => parsed.tree,
        Err(e) => panic!("dump does not parse: {e}"),
    }
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
