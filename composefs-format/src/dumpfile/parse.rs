//! The streaming dumpfile parser (SPEC.md section 6.3 to 6.6).

use alloc::vec::Vec;

use super::error::{Field, ParseError, ParseErrorKind};
use super::escape::{unescape, unescape_into, unescape_owned};
use super::find::{find_byte, find_either};
use super::hardlink::{self, Fixup};
use super::index::{Cursor, DirIndex, InsertError, ParentError, Slot, SplitPath};
use super::number::{parse_digest, parse_mtime, parse_u32, parse_u64};
use super::xattrs::parse_xattrs;
use crate::limits::{
    MAX_CHUNKS, MAX_CHUNK_BITS, MAX_DUMP_LINE_LEN, MAX_INLINE_CONTENT, MAX_NAME_LEN,
    MAX_PAYLOAD_LEN, MAX_SYMLINK_LEN,
};
use crate::ondisk::FileType;
use crate::tree::{Node, NodeId, Tree, TreeError};

/// How strictly to read a dump.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ParseOptions {
    /// Strict mode (the reference's `CFS_PARSE_STRICT`): RDEV must be 0 on non-devices, a
    /// symlink's SIZE must equal its target length and it may have no content, and the
    /// last line must end with a newline. Lenient mode (the default) ignores RDEV on
    /// non-devices and sets a symlink's size to its target length.
    pub strict: bool,
}

impl ParseOptions {
    /// Strict mode.
    #[must_use]
    pub fn strict() -> Self {
        Self { strict: true }
    }

    /// Lenient mode.
    #[must_use]
    pub fn lenient() -> Self {
        Self { strict: false }
    }
}

/// A parsed dump: the tree, and the line each node came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// The tree. Hard link lines became entries with `hardlink == true` pointing at their
    /// target's node; every node's own line is its primary entry.
    pub tree: Tree,
    /// `lines[id.index()]` is the 1-based line of node `id` (the root's is its line too),
    /// so that errors found later (e.g. by the writer) can name a line.
    pub lines: Vec<u64>,
}

impl Parsed {
    /// The line node `id` came from.
    #[must_use]
    pub fn line_of(&self, id: NodeId) -> Option<u64> {
        self.lines.get(id.index()).copied()
    }
}

/// Builds a tree from dump lines fed one at a time.
///
/// Feed every line with [`Parser::parse_line`], then call [`Parser::finish`]. After an
/// error the parser keeps returning that error.
#[derive(Debug)]
pub struct Parser {
    options: ParseOptions,
    line: u64,
    tree: Option<Tree>,
    lines: Vec<u64>,
    index: DirIndex,
    cursor: Cursor,
    fixups: Vec<Fixup>,
    path: SplitPath,
    scratch: Vec<u8>,
    failed: Option<ParseError>,
}

/// The eleven fixed fields of a line and the xattr text after them.
struct Fields<'a> {
    path: &'a [u8],
    size: &'a [u8],
    mode: &'a [u8],
    nlink: &'a [u8],
    uid: &'a [u8],
    gid: &'a [u8],
    rdev: &'a [u8],
    mtime: &'a [u8],
    payload: &'a [u8],
    content: &'a [u8],
    digest: &'a [u8],
    xattrs: &'a [u8],
}

impl<'a> Fields<'a> {
    /// Splits at the first eleven spaces; missing fields are empty.
    fn split(line: &'a [u8]) -> Self {
        let mut rest = line;
        let mut next = || {
            let (field, tail) = match find_byte(rest, b' ') {
                Some(at) => (rest.get(..at), rest.get(at.wrapping_add(1)..)),
                None => (Some(rest), None),
            };
            rest = tail.unwrap_or_default();
            field.unwrap_or_default()
        };
        let (path, size, mode, nlink, uid, gid) = (next(), next(), next(), next(), next(), next());
        let (rdev, mtime, payload, content, digest) = (next(), next(), next(), next(), next());
        Self {
            path,
            size,
            mode,
            nlink,
            uid,
            gid,
            rdev,
            mtime,
            payload,
            content,
            digest,
            xattrs: rest,
        }
    }
}

/// Decodes an optional field: `-` is none.
fn optional(field: &[u8]) -> Result<Option<Vec<u8>>, ParseErrorKind> {
    if field == b"-" {
        return Ok(None);
    }
    unescape_owned(field)
        .map(Some)
        .map_err(ParseErrorKind::Escape)
}

/// Chunks an external regular file of `size` bytes needs: chunks of
/// `2^max(12, bit length of size-1)` bytes, capped at `2^43`.
fn chunk_count(size: u64) -> u64 {
    let bits = 64u32.saturating_sub(size.saturating_sub(1).leading_zeros());
    let bits = bits.clamp(12, MAX_CHUNK_BITS);
    size.div_ceil(1u64.checked_shl(bits).unwrap_or(u64::MAX))
}

/// Checks a regular file's backing path: relative, with no empty, `.` or `..` component.
/// The caller skips the empty payload, which means no backing path.
fn check_backing_path(payload: &[u8]) -> Result<(), ParseErrorKind> {
    if payload.first() == Some(&b'/') {
        return Err(ParseErrorKind::PayloadAbsolute);
    }
    let mut rest = payload;
    loop {
        let slash = find_byte(rest, b'/');
        let name = rest.get(..slash.unwrap_or(rest.len())).unwrap_or_default();
        if name.is_empty() || name == b"." || name == b".." {
            return Err(ParseErrorKind::PayloadComponent);
        }
        let Some(slash) = slash else {
            return Ok(());
        };
        rest = rest.get(slash.saturating_add(1)..).unwrap_or_default();
    }
}

impl Parser {
    /// A parser with no lines yet.
    #[must_use]
    pub fn new(options: ParseOptions) -> Self {
        Self {
            options,
            line: 0,
            tree: None,
            lines: Vec::new(),
            index: DirIndex::default(),
            cursor: Cursor::default(),
            fixups: Vec::new(),
            path: SplitPath::default(),
            scratch: Vec::new(),
            failed: None,
        }
    }

    /// Expects about `lines` more lines: reserves room for them.
    pub fn reserve(&mut self, lines: usize) {
        self.lines.reserve(lines);
        if let Some(tree) = &mut self.tree {
            tree.reserve(lines);
        }
    }

    /// Parses one line: its bytes up to and including its newline, which only the last
    /// line of a file may lack.
    ///
    /// # Errors
    /// What is wrong with the line (its number is counted from 1 over all calls), or the
    /// error of an earlier call.
    pub fn parse_line(&mut self, line: &[u8]) -> Result<(), ParseError> {
        let (text, terminated) = match line.split_last() {
            Some((b'\n', text)) => (text, true),
            _ => (line, false),
        };
        if let Some(at) = find_byte(text, b'\n') {
            // A newline inside the "line": treat it as an embedded line break, which the
            // reference never sees in one line; refuse rather than guess.
            self.line = self.line.saturating_add(1);
            return self.fail(Field::Line, ParseErrorKind::EmbeddedNewline { offset: at });
        }
        self.parse_text(text, terminated)
    }

    /// Parses one line without its newline; `terminated` tells whether it had one.
    fn parse_text(&mut self, text: &[u8], terminated: bool) -> Result<(), ParseError> {
        if let Some(offset) = find_byte(text, 0) {
            if self.failed.is_none() {
                self.line = self.line.saturating_add(1);
                return self.fail(Field::Line, ParseErrorKind::EmbeddedNul { offset });
            }
        }
        self.parse_text_checked(text, terminated)
    }

    /// [`Parser::parse_text`] for a line known to hold no NUL byte.
    fn parse_text_checked(&mut self, text: &[u8], terminated: bool) -> Result<(), ParseError> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        self.line = self.line.saturating_add(1);
        match self.entry(text, terminated) {
            Ok(()) => Ok(()),
            // A CRLF file fails on its first line, in whatever field then ends in `\r`:
            // name the line ending rather than only that field.
            Err((field, _)) if text.last() == Some(&b'\r') => {
                self.fail(Field::Line, ParseErrorKind::CarriageReturn { field })
            }
            Err((field, kind)) => self.fail(field, kind),
        }
    }

    /// Records and returns an error at the current line.
    fn fail(&mut self, field: Field, kind: ParseErrorKind) -> Result<(), ParseError> {
        let err = ParseError::new(self.line, field, kind);
        self.failed = Some(err.clone());
        Err(err)
    }

    /// Parses a whole dump held in memory.
    ///
    /// # Errors
    /// The first error, as [`Parser::parse_line`] and [`Parser::finish`] report it.
    pub fn parse_bytes(mut self, mut bytes: &[u8]) -> Result<Parsed, ParseError> {
        while !bytes.is_empty() {
            // One scan finds the end of the line or a NUL in it.
            let mut end = find_either(bytes, b'\n', 0);
            let mut nul = None;
            while let Some(at) = end.filter(|&at| bytes.get(at) == Some(&0)) {
                nul.get_or_insert(at);
                end = find_byte(bytes.get(at.saturating_add(1)..).unwrap_or_default(), b'\n')
                    .map(|n| n.saturating_add(at).saturating_add(1));
            }
            let (text, terminated, rest) = match end {
                Some(at) => (bytes.get(..at), true, bytes.get(at.saturating_add(1)..)),
                None => (Some(bytes), false, None),
            };
            let text = text.unwrap_or_default();
            match nul {
                Some(offset) => {
                    self.line = self.line.saturating_add(1);
                    return Err(ParseError::new(
                        self.line,
                        Field::Line,
                        ParseErrorKind::EmbeddedNul { offset },
                    ));
                }
                None => self.parse_text_checked(text, terminated)?,
            }
            bytes = rest.unwrap_or_default();
        }
        self.finish()
    }

    /// Resolves hard links and returns the tree.
    ///
    /// # Errors
    /// The error of an earlier call, no lines at all ([`ParseErrorKind::NoEntries`]), or
    /// a hard link whose target is missing, itself, in a cycle, or a directory.
    pub fn finish(self) -> Result<Parsed, ParseError> {
        if let Some(err) = self.failed {
            return Err(err);
        }
        let Some(mut tree) = self.tree else {
            return Err(ParseError::new(0, Field::File, ParseErrorKind::NoEntries));
        };
        if self.index.needs_sort() {
            tree.sort_children()
                .map_err(|e| ParseError::new(self.line, Field::Path, ParseErrorKind::Tree(e)))?;
        }
        hardlink::resolve(&mut tree, &self.fixups)?;
        Ok(Parsed {
            tree,
            lines: self.lines,
        })
    }

    /// Parses one line into the tree.
    fn entry(&mut self, text: &[u8], terminated: bool) -> Result<(), (Field, ParseErrorKind)> {
        if text.len() > MAX_DUMP_LINE_LEN {
            return Err((Field::Line, ParseErrorKind::LineTooLong { len: text.len() }));
        }
        if !terminated && self.options.strict {
            return Err((Field::Line, ParseErrorKind::MissingNewline));
        }
        if text.is_empty() {
            return Err((Field::Line, ParseErrorKind::EmptyLine));
        }
        let fields = Fields::split(text);

        let mut path = core::mem::take(&mut self.path);
        let result = self.entry_at(&fields, &mut path);
        self.path = path;
        result
    }

    /// Parses one line whose fields are split; `path` is scratch space for PATH.
    fn entry_at(
        &mut self,
        fields: &Fields<'_>,
        path: &mut SplitPath,
    ) -> Result<(), (Field, ParseErrorKind)> {
        path.text.clear();
        unescape_into(fields.path, &mut path.text)
            .map_err(|e| (Field::Path, ParseErrorKind::Escape(e)))?;
        if path.text.is_empty() {
            return Err((Field::Path, ParseErrorKind::EmptyPath));
        }
        let (hardlink, mode_text) = match fields.mode.split_first() {
            Some((b'@', rest)) => (true, rest),
            _ => (false, fields.mode),
        };
        let mode = parse_u32(mode_text, 8).map_err(|k| (Field::Mode, k))?;
        let file_type = FileType::from_mode(mode)
            .ok_or((Field::Mode, ParseErrorKind::InvalidFileType { mode }))?;

        if path.text == b"/" {
            return self.root(fields, mode, file_type, hardlink);
        }
        let Some(tree) = &self.tree else {
            return Err((Field::Path, ParseErrorKind::NoRoot));
        };
        split_path(path).map_err(|k| (Field::Path, k))?;
        let parent = self
            .cursor
            .parent(tree, &self.index, path)
            .map_err(|e| match e {
                ParentError::Missing(parent) => {
                    (Field::Path, ParseErrorKind::ParentMissing { parent })
                }
                ParentError::NotDirectory(parent) => {
                    (Field::Path, ParseErrorKind::ParentNotDirectory { parent })
                }
            })?;

        if hardlink {
            if file_type == FileType::Directory {
                return Err((Field::Mode, ParseErrorKind::HardlinkedDirectory));
            }
            let target = optional(fields.payload)
                .map_err(|k| (Field::Payload, k))?
                .ok_or((Field::Payload, ParseErrorKind::HardlinkWithoutTarget))?;
            if target.contains(&0) {
                return Err((Field::Payload, ParseErrorKind::Nul));
            }
            let tree = self
                .tree
                .as_mut()
                .ok_or((Field::Path, ParseErrorKind::NoRoot))?;
            // The entry points at the root until `finish` resolves the target.
            let slot = Slot {
                node: NodeId::ROOT,
                hardlink: true,
            };
            insert(&mut self.index, tree, parent, path.name(), slot)?;
            self.fixups.push(Fixup {
                line: self.line,
                parent,
                name: path.name().to_vec(),
                target,
            });
            self.cursor.advance(path, None);
            return Ok(());
        }

        let node = self.node(fields, mode, file_type)?;
        let tree = self
            .tree
            .as_mut()
            .ok_or((Field::Path, ParseErrorKind::NoRoot))?;
        let is_dir = file_type == FileType::Directory;
        let id = tree
            .add(node)
            .map_err(|_| (Field::Line, ParseErrorKind::TooManyEntries))?;
        insert(
            &mut self.index,
            tree,
            parent,
            path.name(),
            Slot {
                node: id,
                hardlink: false,
            },
        )?;
        self.lines.push(self.line);
        self.cursor.advance(path, is_dir.then_some(id));
        Ok(())
    }

    /// The root line.
    fn root(
        &mut self,
        fields: &Fields<'_>,
        mode: u32,
        file_type: FileType,
        hardlink: bool,
    ) -> Result<(), (Field, ParseErrorKind)> {
        if self.tree.is_some() {
            return Err((Field::Path, ParseErrorKind::DuplicateRoot));
        }
        if file_type != FileType::Directory {
            return Err((Field::Mode, ParseErrorKind::RootNotDirectory));
        }
        if hardlink {
            return Err((Field::Mode, ParseErrorKind::HardlinkedDirectory));
        }
        let node = self.node(fields, mode, file_type)?;
        let mut tree = Tree::new(node);
        tree.reserve(self.lines.capacity());
        self.tree = Some(tree);
        self.lines.push(self.line);
        self.cursor.reset();
        Ok(())
    }

    /// The node a non-hard-link line describes. Fields are checked left to right; checks
    /// that involve two fields come after both.
    fn node(
        &mut self,
        fields: &Fields<'_>,
        mode: u32,
        file_type: FileType,
    ) -> Result<Node, (Field, ParseErrorKind)> {
        let strict = self.options.strict;
        let size = parse_u64(fields.size, 10).map_err(|k| (Field::Size, k))?;
        let nlink = parse_u32(fields.nlink, 10).map_err(|k| (Field::Nlink, k))?;
        if nlink == 0 && file_type != FileType::Directory {
            return Err((Field::Nlink, ParseErrorKind::ZeroNlink));
        }
        let uid = parse_u32(fields.uid, 10).map_err(|k| (Field::Uid, k))?;
        let gid = parse_u32(fields.gid, 10).map_err(|k| (Field::Gid, k))?;
        let rdev = parse_u32(fields.rdev, 10).map_err(|k| (Field::Rdev, k))?;
        let is_device = matches!(file_type, FileType::CharDevice | FileType::BlockDevice);
        if strict && !is_device && rdev != 0 {
            return Err((Field::Rdev, ParseErrorKind::RdevOnNonDevice { rdev }));
        }
        let rdev = if is_device { rdev } else { 0 };
        let mtime = parse_mtime(fields.mtime).map_err(|k| (Field::Mtime, k))?;
        let payload = payload(fields.payload, file_type).map_err(|k| (Field::Payload, k))?;
        let mut content = content(fields.content, size).map_err(|k| (Field::Content, k))?;
        let digest = match fields.digest {
            b"-" => None,
            // A line that ends before DIGEST: harmless where no digest is ever used.
            b"" if file_type != FileType::Regular => None,
            text => {
                let text = unescape(text, &mut self.scratch)
                    .map_err(|e| (Field::Digest, ParseErrorKind::Escape(e)))?;
                Some(parse_digest(text).map_err(|k| (Field::Digest, k))?)
            }
        };
        let mut size = size;
        match (file_type, &payload) {
            (FileType::Symlink, Some(target)) => {
                let target_len = target.len();
                if strict && u64::try_from(target_len).ok() != Some(size) {
                    let kind = ParseErrorKind::SymlinkSize { size, target_len };
                    return Err((Field::Size, kind));
                }
                if strict && content.as_ref().is_some_and(|c| !c.is_empty()) {
                    return Err((Field::Content, ParseErrorKind::SymlinkContent));
                }
                size = u64::try_from(target_len).unwrap_or(u64::MAX);
                content = None;
            }
            (FileType::Regular, _) if content.is_none() && size > 0 => {
                let chunks = chunk_count(size);
                if chunks > MAX_CHUNKS {
                    return Err((Field::Size, ParseErrorKind::TooManyChunks { size, chunks }));
                }
            }
            _ => {}
        }
        let xattrs = parse_xattrs(fields.xattrs).map_err(|k| (Field::Xattr, k))?;
        Ok(Node {
            mode,
            uid,
            gid,
            nlink,
            rdev,
            mtime,
            size,
            payload,
            content,
            digest,
            xattrs,
            children: Vec::new(),
        })
    }
}

/// Decodes and checks PAYLOAD: at most 4095 bytes and no NUL; a symlink needs a
/// non-empty target; a regular file's backing path must stay inside the object store.
fn payload(field: &[u8], file_type: FileType) -> Result<Option<Vec<u8>>, ParseErrorKind> {
    let payload = optional(field)?;
    if let Some(p) = &payload {
        let max = if file_type == FileType::Symlink {
            MAX_SYMLINK_LEN
        } else {
            MAX_PAYLOAD_LEN
        };
        if p.len() > max {
            return Err(ParseErrorKind::PayloadTooLong { len: p.len() });
        }
        if p.contains(&0) {
            return Err(ParseErrorKind::Nul);
        }
    }
    match (file_type, payload.as_deref()) {
        (FileType::Symlink, None | Some(b"")) => Err(ParseErrorKind::SymlinkWithoutTarget),
        (FileType::Regular, Some(p)) if !p.is_empty() => check_backing_path(p).map(|()| payload),
        _ => Ok(payload),
    }
}

/// Decodes and checks CONTENT: at most 5000 bytes, exactly SIZE bytes.
fn content(field: &[u8], size: u64) -> Result<Option<Vec<u8>>, ParseErrorKind> {
    let content = optional(field)?;
    if let Some(c) = &content {
        if c.len() > MAX_INLINE_CONTENT {
            return Err(ParseErrorKind::ContentTooLong { len: c.len() });
        }
        if u64::try_from(c.len()).ok() != Some(size) {
            return Err(ParseErrorKind::ContentSize { len: c.len(), size });
        }
    }
    Ok(content)
}

/// Adds an entry, mapping a taken name to [`ParseErrorKind::Exists`].
fn insert(
    index: &mut DirIndex,
    tree: &mut Tree,
    parent: NodeId,
    name: &[u8],
    slot: Slot,
) -> Result<(), (Field, ParseErrorKind)> {
    index.insert(tree, parent, name, slot).map_err(|e| match e {
        InsertError::Exists => (Field::Path, ParseErrorKind::Exists),
        InsertError::Tree(TreeError::TooManyNodes) => (Field::Line, ParseErrorKind::TooManyEntries),
        InsertError::Tree(e) => (Field::Path, ParseErrorKind::Tree(e)),
    })
}

/// Skips leading slashes and splits the rest of the decoded PATH into components,
/// checking each: not empty, not `.` or `..`, at most 255 bytes, no NUL.
fn split_path(path: &mut SplitPath) -> Result<(), ParseErrorKind> {
    path.ends.clear();
    path.start = path
        .text
        .iter()
        .position(|&b| b != b'/')
        .unwrap_or(path.text.len());
    let mut rest = path.text.get(path.start..).unwrap_or_default();
    if rest.is_empty() {
        return Err(ParseErrorKind::EmptyComponent);
    }
    if find_byte(rest, 0).is_some() {
        return Err(ParseErrorKind::Nul);
    }
    let mut offset = path.start;
    loop {
        let slash = find_byte(rest, b'/');
        let name = rest.get(..slash.unwrap_or(rest.len())).unwrap_or_default();
        check_component(name)?;
        offset = offset.saturating_add(name.len());
        path.ends.push(offset);
        let Some(slash) = slash else {
            return Ok(());
        };
        offset = offset.saturating_add(1);
        rest = rest.get(slash.saturating_add(1)..).unwrap_or_default();
    }
}

/// Checks one PATH component.
fn check_component(name: &[u8]) -> Result<(), ParseErrorKind> {
    if name.is_empty() {
        return Err(ParseErrorKind::EmptyComponent);
    }
    if name == b"." || name == b".." {
        return Err(ParseErrorKind::DotComponent);
    }
    if name.len() > MAX_NAME_LEN {
        return Err(ParseErrorKind::NameTooLong { len: name.len() });
    }
    Ok(())
}

/// Parses a whole dump held in memory.
///
/// # Errors
/// The first error; see [`ParseError`].
pub fn parse_bytes(bytes: &[u8], options: ParseOptions) -> Result<Parsed, ParseError> {
    Parser::new(options).parse_bytes(bytes)
}

/// Why a dump could not be read from an [`std::io::BufRead`].
#[cfg(feature = "std")]
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Reading failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The text is not a valid dump.
    #[error("{0}")]
    Parse(#[from] ParseError),
}

/// Parses a dump line by line from `reader`, holding one line in memory at a time.
///
/// # Errors
/// A read error, or the first parse error.
#[cfg(feature = "std")]
pub fn parse_reader(
    mut reader: impl std::io::BufRead,
    options: ParseOptions,
) -> Result<Parsed, ReadError> {
    use std::io::BufRead as _;
    let mut parser = Parser::new(options);
    let mut line = Vec::new();
    // One byte more than the longest line plus its newline, so that an overlong line is
    // seen as one (and refused) without reading further.
    let limit = u64::try_from(MAX_DUMP_LINE_LEN)
        .unwrap_or(u64::MAX)
        .saturating_add(2);
    loop {
        line.clear();
        let read = std::io::Read::take(&mut reader, limit).read_until(b'\n', &mut line)?;
        if read == 0 {
            break;
        }
        let (text, terminated) = match line.split_last() {
            Some((b'\n', text)) => (text, true),
            _ => (line.as_slice(), false),
        };
        parser.parse_text(text, terminated)?;
    }
    Ok(parser.finish()?)
}

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;
