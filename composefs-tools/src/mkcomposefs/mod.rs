//! `mkcomposefs`: build a composefs image from a dump file (SPEC.md section 9).
//!
//! The binary parses arguments into a [`Request`]; [`run`] does the rest: load the tree
//! ([`source`]), plan the image, write it to a temporary file that is renamed into place
//! only once complete, or to stdout ([`output`]), and compute its fs-verity digest while
//! writing when asked to.

pub mod output;
pub mod source;

use std::fmt;

use composefs_format::write::{self, EmitError, Options, WriteError};

pub use output::Target;
pub use source::{ScanOptions, Source};

/// Everything `mkcomposefs` was asked to do.
#[derive(Debug, Clone)]
pub struct Request {
    /// Where the tree comes from.
    pub source: Source,
    /// Where the image goes.
    pub target: Target,
    /// Format versions.
    pub options: Options,
    /// Compute and return the image's fs-verity digest.
    pub digest: bool,
    /// Parse dumps strictly (`CFS_PARSE_STRICT`).
    pub strict: bool,
}

/// Why `mkcomposefs` failed, ready to print.
#[derive(Debug)]
pub enum Failure {
    /// An error located in the source: `FILE:LINE: FIELD: message`.
    Located(String),
    /// Any other error: printed after the program name.
    Plain(String),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Located(m) => write!(f, "{m}"),
            Self::Plain(m) => write!(f, "mkcomposefs: {m}"),
        }
    }
}

/// What [`run`] built.
#[derive(Debug)]
pub struct Built {
    /// The image's fs-verity digest, when [`Request::digest`] was set.
    pub digest: Option<[u8; 32]>,
    /// The tree the image was built from. A program about to exit may leak it rather than
    /// free its many small allocations one by one.
    pub tree: source::Loaded,
}

/// Builds the image.
///
/// # Errors
/// A [`Failure`] naming the input line, the field and the problem where there is one.
/// No image file is left behind on failure.
pub fn run(request: &Request) -> Result<Built, Failure> {
    // Refuse a terminal before reading any input, as the reference does.
    let target = request.target.check()?;
    let loaded = request.source.load(request.strict)?;
    let layout = write::plan(&loaded.tree, &request.options)
        .map_err(|e| writer_failure(&request.source, &loaded, e))?;
    let mut out = target.open(request.digest)?;
    layout.emit(&mut out).map_err(|e| match e {
        EmitError::Sink(e) => Failure::Plain(format!("cannot write {}: {e}", request.target)),
        e @ EmitError::Inconsistent { .. } => Failure::Plain(e.to_string()),
    })?;
    drop(layout);
    let digest = out.finish()?;
    Ok(Built {
        digest,
        tree: loaded,
    })
}

/// Names the dump line of the node a writer error is about, when there is one.
fn writer_failure(source: &Source, loaded: &source::Loaded, e: WriteError) -> Failure {
    let line = e.node().and_then(|node| loaded.line_of(node));
    match line {
        Some(line) => {
            let field = e
                .kind()
                .field()
                .map(|f| format!(" {f}:"))
                .unwrap_or_default();
            Failure::Located(format!("{source}:{line}:{field} {}", e.kind()))
        }
        None => Failure::Plain(format!("cannot write image: {e}")),
    }
}

/// Lowercase hex of a digest, as `--print-digest` prints it.
#[must_use]
pub fn hex(digest: &[u8; 32]) -> String {
    use fmt::Write;
    digest.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}
