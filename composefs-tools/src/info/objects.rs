//! `composefs-info objects` and `missing-objects`: the backing files the images' regular
//! files name (SPEC.md 9.1).

use std::collections::BTreeSet;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use composefs_format::error::write_escaped;
use composefs_format::ondisk::FileType;
use composefs_format::tree::Tree;

use super::basedir::{Basedir, Lookup, Resolve};
use super::image::{map, read_tree};
use super::{complain, Filter, EXIT_OK};

/// Adds the payload (backing path) of every regular file below the visible top-level
/// entries of `tree` to `set`.
pub fn collect(tree: &Tree, filter: &Filter, set: &mut BTreeSet<Vec<u8>>) {
    let _ = tree.walk(|path, _, id| {
        if !filter.is_empty() {
            let top = path
                .get(1..)
                .unwrap_or_default()
                .split(|&b| b == b'/')
                .next()
                .unwrap_or_default();
            if !top.is_empty() && !filter.names().iter().any(|n| n.as_slice() == top) {
                return Ok::<(), ()>(());
            }
        }
        if let Some(node) = tree.get(id) {
            if node.file_type() == Some(FileType::Regular) {
                if let Some(payload) = &node.payload {
                    if !set.contains(payload) {
                        set.insert(payload.clone());
                    }
                }
            }
        }
        Ok(())
    });
}

/// Prints the union over `images` of the backing paths, sorted by bytes, one per line;
/// with `missing`, only those that do not exist beneath that base directory. Nothing is
/// printed when an image cannot be read.
///
/// A path is written with bytes outside printable ASCII (and `\`) as `\xNN`; payloads in
/// the object store layout (`xx/<62 hex>`) print unchanged.
///
/// # Errors
/// Only when writing to `out` or `err` fails.
pub fn run(
    images: &[impl AsRef<Path>],
    filter: &Filter,
    missing: Option<&Basedir>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> io::Result<u8> {
    let mut set = BTreeSet::new();
    for path in images {
        let path = path.as_ref();
        match map(path).and_then(|bytes| read_tree(path, &bytes)) {
            Ok(read) => collect(&read.tree, filter, &mut set),
            Err(e) => {
                complain(err, &e)?;
                return Ok(e.status());
            }
        }
    }
    let mut out = BufWriter::with_capacity(1 << 16, out);
    let mut line = String::new();
    for payload in &set {
        if let Some(basedir) = missing {
            // As the reference, anything that exists counts as present; a name that cannot
            // be resolved beneath the base directory does not.
            if !matches!(
                basedir.lookup(payload, Resolve::Beneath),
                Lookup::Missing | Lookup::Escapes | Lookup::Error(_)
            ) {
                continue;
            }
        }
        line.clear();
        // Writing into a String cannot fail.
        let _ = write_escaped(&mut line, payload);
        line.push('\n');
        out.write_all(line.as_bytes())?;
    }
    out.flush()?;
    Ok(EXIT_OK)
}
