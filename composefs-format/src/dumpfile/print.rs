//! The dump and `ls` printers (SPEC.md section 6.7 and 6.8).

use alloc::collections::BTreeMap;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use super::escape::{escape_into, Style};
use crate::ondisk::FileType;
use crate::sink::Sink;
use crate::tree::{Node, NodeId, Tree, TreeError};

/// Which entry of a hard-linked node is printed in full; the others become `@` lines that
/// name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HardlinkStyle {
    /// The first entry in the depth-first walk, as `composefs-info dump` prints a tree read
    /// from an image.
    #[default]
    FirstInWalk,
    /// The tree's primary entry, even when an `@` line for it comes earlier in the walk.
    /// Parsing the output gives back the same primary entries.
    Primary,
}

/// What to print.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PrintOptions {
    /// Which entry of a hard-linked node gets the full line.
    pub hardlinks: HardlinkStyle,
    /// If not empty, only the top-level entries with these names (and what is below them)
    /// are printed, like `composefs-info --filter=NAME`. The root line is always printed.
    pub filter: Vec<Vec<u8>>,
}

/// Why printing stopped.
#[derive(Debug)]
pub enum PrintError<E> {
    /// The sink failed.
    Sink(E),
    /// The tree is malformed (an entry names a node that does not exist).
    Tree(TreeError),
}

impl<E: fmt::Display> fmt::Display for PrintError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sink(e) => e.fmt(f),
            Self::Tree(e) => e.fmt(f),
        }
    }
}

impl<E: core::error::Error + 'static> core::error::Error for PrintError<E> {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Sink(e) => Some(e),
            Self::Tree(e) => Some(e),
        }
    }
}

/// Whether the entry at `path` passes the top-level filter.
fn visible(path: &[u8], filter: &[Vec<u8>]) -> bool {
    if filter.is_empty() || path == b"/" {
        return true;
    }
    let top = path
        .get(1..)
        .unwrap_or_default()
        .split(|&b| b == b'/')
        .next()
        .unwrap_or_default();
    filter.iter().any(|f| f.as_slice() == top)
}

/// For every node with more than one entry: the visit (counted over printed entries, root
/// = 1) that prints it in full, and that entry's path.
#[derive(Debug, Default)]
struct Plan {
    full: BTreeMap<NodeId, (u64, Vec<u8>)>,
}

impl Plan {
    fn new(tree: &Tree, options: &PrintOptions) -> Result<Self, TreeError> {
        let mut refs = vec![0u8; tree.len()];
        let mut shared = false;
        for (_, node) in tree.iter() {
            for entry in &node.children {
                let missing =
                    || TreeError::NoSuchNode(u32::try_from(entry.node.index()).unwrap_or(u32::MAX));
                let count = refs.get_mut(entry.node.index()).ok_or_else(missing)?;
                *count = count.saturating_add(1);
                shared |= *count > 1;
            }
        }
        let mut plan = Self::default();
        if !shared {
            return Ok(plan);
        }
        let mut first: BTreeMap<NodeId, (u64, Vec<u8>)> = BTreeMap::new();
        let mut primary: BTreeMap<NodeId, (u64, Vec<u8>)> = BTreeMap::new();
        let mut visit = 0u64;
        tree.walk(|path, entry, id| {
            if !visible(path, &options.filter) {
                return Ok::<(), TreeError>(());
            }
            visit = visit.saturating_add(1);
            let Some(entry) = entry else { return Ok(()) };
            if refs.get(id.index()).is_some_and(|&r| r > 1) {
                first.entry(id).or_insert_with(|| (visit, path.to_vec()));
                if !entry.hardlink {
                    primary.entry(id).or_insert_with(|| (visit, path.to_vec()));
                }
            }
            Ok(())
        })?;
        plan.full = match options.hardlinks {
            HardlinkStyle::FirstInWalk => first,
            HardlinkStyle::Primary => {
                for (id, choice) in primary {
                    first.insert(id, choice);
                }
                first
            }
        };
        Ok(plan)
    }

    /// For visit `visit` of node `id`: `None` to print it in full, or the path of the entry
    /// printed in full.
    fn link_target(&self, id: NodeId, visit: u64) -> Option<&[u8]> {
        match self.full.get(&id) {
            Some((full_visit, path)) if *full_visit != visit => Some(path),
            _ => None,
        }
    }
}

/// Walks the visible entries, calling `line` for each with its path, node, and the path
/// of the full entry when this one is printed as a hard link.
fn each_line<E>(
    tree: &Tree,
    options: &PrintOptions,
    mut line: impl FnMut(&[u8], &Node, Option<&[u8]>) -> Result<(), PrintError<E>>,
) -> Result<(), PrintError<E>> {
    let plan = Plan::new(tree, options).map_err(PrintError::Tree)?;
    let mut visit = 0u64;
    tree.walk(|path, _, id| {
        if !visible(path, &options.filter) {
            return Ok(());
        }
        visit = visit.saturating_add(1);
        let node = tree.node(id).map_err(PrintError::Tree)?;
        line(path, node, plan.link_target(id, visit))
    })
}

/// Appends `value` in decimal.
fn push_u64(out: &mut Vec<u8>, mut value: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at = at.saturating_sub(1);
        if let Some(d) = digits.get_mut(at) {
            *d = b'0'.wrapping_add(u8::try_from(value % 10).unwrap_or(0));
        }
        value /= 10;
        if value == 0 {
            break;
        }
    }
    out.extend_from_slice(digits.get(at..).unwrap_or_default());
}

/// Appends `value` in octal.
fn push_octal(out: &mut Vec<u8>, mut value: u32) {
    let mut digits = [0u8; 11];
    let mut at = digits.len();
    loop {
        at = at.saturating_sub(1);
        if let Some(d) = digits.get_mut(at) {
            *d = b'0'.wrapping_add(u8::try_from(value & 7).unwrap_or(0));
        }
        value >>= 3;
        if value == 0 {
            break;
        }
    }
    out.extend_from_slice(digits.get(at..).unwrap_or_default());
}

/// Appends an optional field: `-` for none, else the escaped bytes.
fn push_optional(out: &mut Vec<u8>, value: Option<&[u8]>) {
    match value {
        Some(v) => escape_into(v, Style::OPTIONAL, out),
        None => out.push(b'-'),
    }
}

/// Appends the dump line of `node` at `path`; `link` is the path of the full entry when
/// this entry is printed as a hard link.
fn dump_line(out: &mut Vec<u8>, path: &[u8], node: &Node, link: Option<&[u8]>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    escape_into(path, Style::PLAIN, out);
    out.push(b' ');
    push_u64(out, node.size);
    out.push(b' ');
    if link.is_some() {
        out.push(b'@');
    }
    push_octal(out, node.mode);
    for value in [node.nlink, node.uid, node.gid, node.rdev] {
        out.push(b' ');
        push_u64(out, u64::from(value));
    }
    out.push(b' ');
    if node.mtime.sec < 0 {
        out.push(b'-');
    }
    push_u64(out, node.mtime.sec.unsigned_abs());
    out.push(b'.');
    push_u64(out, u64::from(node.mtime.nsec));
    out.push(b' ');
    push_optional(out, link.or(node.payload.as_deref()));
    out.push(b' ');
    push_optional(out, node.content.as_deref());
    out.push(b' ');
    match &node.digest {
        Some(digest) => {
            for b in digest {
                let hi = HEX.get(usize::from(b >> 4)).copied().unwrap_or(b'0');
                let lo = HEX.get(usize::from(b & 0xf)).copied().unwrap_or(b'0');
                out.extend_from_slice(&[hi, lo]);
            }
        }
        None => out.push(b'-'),
    }
    for x in &node.xattrs {
        out.push(b' ');
        escape_into(&x.key, Style::XATTR, out);
        out.push(b'=');
        escape_into(&x.value, Style::XATTR, out);
    }
    out.push(b'\n');
}

/// Appends the `ls` line of `node` at `path`; `link` as for [`dump_line`].
fn ls_line(out: &mut Vec<u8>, path: &[u8], node: &Node, link: Option<&[u8]>) {
    escape_into(path, Style::LS_PATH, out);
    if link.is_none() {
        match node.file_type() {
            Some(FileType::Directory) => out.extend_from_slice(b"/\t"),
            Some(FileType::Symlink) => {
                out.extend_from_slice(b"\t-> ");
                escape_into(
                    node.payload.as_deref().unwrap_or_default(),
                    Style::PLAIN,
                    out,
                );
            }
            Some(FileType::Regular) => {
                if let Some(payload) = &node.payload {
                    out.extend_from_slice(b"\t@ ");
                    escape_into(payload, Style::PLAIN, out);
                }
            }
            _ => {}
        }
    }
    out.push(b'\n');
}

/// Prints `tree` as a dump (composefs-dump(5)): depth-first pre-order, root first,
/// children in name order, one line per entry.
///
/// # Errors
/// The sink's error, or [`PrintError::Tree`] for an entry naming a missing node.
pub fn print_dump<S: Sink + ?Sized>(
    tree: &Tree,
    options: &PrintOptions,
    sink: &mut S,
) -> Result<(), PrintError<S::Error>> {
    let mut line = Vec::with_capacity(256);
    each_line(tree, options, |path, node, link| {
        line.clear();
        dump_line(&mut line, path, node, link);
        sink.write_all(&line).map_err(PrintError::Sink)
    })
}

/// Prints `tree` as `composefs-info ls` does: one line per entry below the root, the path
/// (spaces unescaped), then `/` and a TAB for a directory, TAB `-> ` and the target for a
/// symlink, TAB `@ ` and the backing path for a regular file that has one; hard link
/// entries print only their path.
///
/// # Errors
/// The sink's error, or [`PrintError::Tree`] for an entry naming a missing node.
pub fn print_ls<S: Sink + ?Sized>(
    tree: &Tree,
    options: &PrintOptions,
    sink: &mut S,
) -> Result<(), PrintError<S::Error>> {
    let mut line = Vec::with_capacity(256);
    each_line(tree, options, |path, node, link| {
        if path == b"/" {
            return Ok(());
        }
        line.clear();
        ls_line(&mut line, path, node, link);
        sink.write_all(&line).map_err(PrintError::Sink)
    })
}

/// Converts a print error on an [`std::io::Write`] into an I/O error.
#[cfg(feature = "std")]
fn io_error(e: PrintError<std::io::Error>) -> std::io::Error {
    match e {
        PrintError::Sink(e) => e,
        PrintError::Tree(e) => std::io::Error::new(std::io::ErrorKind::InvalidData, e),
    }
}

/// [`print_dump`] into a writer, buffered.
///
/// # Errors
/// A write error, or `InvalidData` for a malformed tree.
#[cfg(feature = "std")]
pub fn write_dump(
    tree: &Tree,
    options: &PrintOptions,
    writer: impl std::io::Write,
) -> std::io::Result<()> {
    let mut sink = crate::sink::IoSink(std::io::BufWriter::with_capacity(1 << 16, writer));
    print_dump(tree, options, &mut sink).map_err(io_error)?;
    std::io::Write::flush(&mut sink.0)
}

/// [`print_ls`] into a writer, buffered.
///
/// # Errors
/// A write error, or `InvalidData` for a malformed tree.
#[cfg(feature = "std")]
pub fn write_ls(
    tree: &Tree,
    options: &PrintOptions,
    writer: impl std::io::Write,
) -> std::io::Result<()> {
    let mut sink = crate::sink::IoSink(std::io::BufWriter::with_capacity(1 << 16, writer));
    print_ls(tree, options, &mut sink).map_err(io_error)?;
    std::io::Write::flush(&mut sink.0)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::dumpfile::{parse_bytes, ParseOptions};
    use crate::ondisk::{S_IFCHR, S_IFDIR, S_IFLNK, S_IFREG};
    use crate::tree::{Mtime, Xattr};
    use alloc::format;
    use alloc::string::String;

    fn dir() -> Node {
        Node {
            nlink: 2,
            ..Node::with_mode(S_IFDIR | 0o755)
        }
    }

    fn print(tree: &Tree, options: &PrintOptions, ls: bool) -> String {
        let mut out: Vec<u8> = Vec::new();
        if ls {
            print_ls(tree, options, &mut out).unwrap();
        } else {
            print_dump(tree, options, &mut out).unwrap();
        }
        String::from_utf8(out).unwrap()
    }

    /// Root with `a` (a hard link to `z/f`, which comes later in the walk), a symlink `s`,
    /// a directory `z` holding the regular file `f`, a character device `c d`, and a
    /// directory `y` holding a lone `-` file.
    fn sample() -> Tree {
        let mut t = Tree::new(Node {
            mtime: Mtime { sec: -2, nsec: 5 },
            size: 4096,
            ..dir()
        });
        let f = t
            .add(Node {
                mode: S_IFREG | 0o644,
                nlink: 2,
                uid: 1000,
                gid: 4_294_967_295,
                size: 70_000,
                payload: Some(b"ab/cd ef".to_vec()),
                digest: Some([0xa5; 32]),
                xattrs: vec![
                    Xattr {
                        key: b"user.k=1".to_vec(),
                        value: b"v=\n\x00".to_vec(),
                    },
                    Xattr {
                        key: b"security.selinux".to_vec(),
                        value: b"-".to_vec(),
                    },
                ],
                ..Node::default()
            })
            .unwrap();
        let z = t.add(dir()).unwrap();
        let s = t
            .add(Node {
                nlink: 1,
                size: 3,
                payload: Some(b"a b".to_vec()),
                ..Node::with_mode(S_IFLNK | 0o777)
            })
            .unwrap();
        let c = t
            .add(Node {
                nlink: 1,
                rdev: 259,
                ..Node::with_mode(S_IFCHR | 0o1000644)
            })
            .unwrap();
        let y = t.add(dir()).unwrap();
        let dash = t
            .add(Node {
                nlink: 1,
                size: 1,
                content: Some(b"-".to_vec()),
                payload: Some(b"-".to_vec()),
                ..Node::with_mode(S_IFREG | 0o600)
            })
            .unwrap();
        t.insert_child(NodeId::ROOT, b"a".to_vec(), f, true)
            .unwrap();
        t.insert_child(NodeId::ROOT, b"s".to_vec(), s, false)
            .unwrap();
        t.insert_child(NodeId::ROOT, b"z".to_vec(), z, false)
            .unwrap();
        t.insert_child(z, b"f".to_vec(), f, false).unwrap();
        t.insert_child(NodeId::ROOT, b"c d".to_vec(), c, false)
            .unwrap();
        t.insert_child(NodeId::ROOT, b"y".to_vec(), y, false)
            .unwrap();
        t.insert_child(y, b"-".to_vec(), dash, false).unwrap();
        t.validate().unwrap();
        t
    }

    const F_TAIL: &str = "70000 @100644 2 1000 4294967295 0 0.0 ";
    const DIGEST: &str = "a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5";

    #[test]
    fn dump_lines_escape_each_field_like_the_reference() {
        let text = print(&sample(), &PrintOptions::default(), false);
        let f_xattrs = " user.k\\x3d1=v\\x3d\\n\\x00 security.selinux=-";
        let want = [
            String::from("/ 4096 40755 2 0 0 0 -2.5 - - -"),
            format!(
                "/a {}ab/cd\\x20ef - {DIGEST}{f_xattrs}",
                F_TAIL.replace('@', "")
            ),
            String::from("/c\\x20d 0 1020644 1 0 0 259 0.0 - - -"),
            String::from("/s 3 120777 1 0 0 0 0.0 a\\x20b - -"),
            String::from("/y 0 40755 2 0 0 0 0.0 - - -"),
            String::from("/y/- 1 100600 1 0 0 0 0.0 \\x2d \\x2d -"),
            String::from("/z 0 40755 2 0 0 0 0.0 - - -"),
            format!("/z/f {F_TAIL}/a - {DIGEST}{f_xattrs}"),
        ];
        assert_eq!(text.lines().collect::<Vec<_>>(), want);
        assert!(text.ends_with('\n'));
    }

    #[test]
    fn primary_style_prints_the_primary_entry_in_full_and_round_trips() {
        let tree = sample();
        let options = PrintOptions {
            hardlinks: HardlinkStyle::Primary,
            ..Default::default()
        };
        let text = print(&tree, &options, false);
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[1].starts_with(&format!("/a {F_TAIL}/z/f - {DIGEST}")),
            "{}",
            lines[1]
        );
        assert!(lines[7].starts_with("/z/f 70000 100644 2 1000 4294967295 0 0.0 ab/cd\\x20ef"));
        let parsed = parse_bytes(text.as_bytes(), ParseOptions::strict()).unwrap();
        let a = parsed.tree.root().child(b"a").unwrap();
        assert!(a.hardlink);
        let f = parsed.tree.lookup_path(b"/z/f").unwrap();
        assert_eq!(a.node, f);
        assert_eq!(
            parsed.tree.get(f),
            tree.get(tree.lookup_path(b"/z/f").unwrap())
        );
        // Printing the parsed tree again gives the same text.
        assert_eq!(print(&parsed.tree, &options, false), text);
    }

    #[test]
    fn ls_prints_type_suffixes_and_bare_hard_links() {
        let text = print(&sample(), &PrintOptions::default(), true);
        let want = [
            "/a\t@ ab/cd\\x20ef",
            "/c d",
            "/s\t-> a\\x20b",
            "/y/\t",
            "/y/-\t@ -",
            "/z/\t",
            "/z/f",
        ];
        assert_eq!(text.lines().collect::<Vec<_>>(), want);
        let options = PrintOptions {
            hardlinks: HardlinkStyle::Primary,
            ..Default::default()
        };
        let text = print(&sample(), &options, true);
        assert_eq!(text.lines().next(), Some("/a"));
        assert_eq!(text.lines().last(), Some("/z/f\t@ ab/cd\\x20ef"));
    }

    #[test]
    fn filter_keeps_the_root_and_named_top_level_subtrees() {
        let options = PrintOptions {
            filter: vec![b"z".to_vec(), b"s".to_vec(), b"nope".to_vec()],
            ..Default::default()
        };
        let text = print(&sample(), &options, false);
        let paths: Vec<&str> = text.lines().map(|l| l.split(' ').next().unwrap()).collect();
        assert_eq!(paths, ["/", "/s", "/z", "/z/f"]);
        // With its first entry filtered out, the hard-linked file is printed in full.
        assert!(text.contains("/z/f 70000 100644 "));
        let ls = print(&sample(), &options, true);
        assert_eq!(
            ls.lines().collect::<Vec<_>>(),
            ["/s\t-> a\\x20b", "/z/\t", "/z/f\t@ ab/cd\\x20ef"]
        );
    }

    #[test]
    fn numbers_print_in_full_range() {
        let mut out = Vec::new();
        for v in [0u64, 9, 10, 1234567890, u64::MAX] {
            out.clear();
            push_u64(&mut out, v);
            assert_eq!(out, alloc::format!("{v}").into_bytes());
        }
        for v in [0u32, 7, 8, 0o100644, u32::MAX] {
            out.clear();
            push_octal(&mut out, v);
            assert_eq!(out, alloc::format!("{v:o}").into_bytes());
        }
        let t = Tree::new(Node {
            mtime: Mtime {
                sec: i64::MIN,
                nsec: 999_999_999,
            },
            ..dir()
        });
        let text = print(&t, &PrintOptions::default(), false);
        assert_eq!(
            text,
            "/ 0 40755 2 0 0 0 -9223372036854775808.999999999 - - -\n"
        );
    }

    #[cfg(feature = "std")]
    #[test]
    fn writers_match_the_sink_printers() {
        let tree = sample();
        let options = PrintOptions::default();
        let mut out = Vec::new();
        write_dump(&tree, &options, &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            print(&tree, &options, false)
        );
        let mut out = Vec::new();
        write_ls(&tree, &options, &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            print(&tree, &options, true)
        );
    }
}
