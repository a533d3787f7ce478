//! The one error type of the image reader: `Copy`, allocation-free, with numeric context.
//!
//! TODO(stub): the reader owner completes the kinds.

/// What went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A read outside the image.
    #[error("out of bounds")]
    OutOfBounds,
}

/// A reader error: what went wrong, and where.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
}
