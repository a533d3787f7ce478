//! The composefs-dump(5) text format: a streaming parser into a [`Tree`] and printers
//! back to text (SPEC.md section 6).
//!
//! One line per entry: `PATH SIZE MODE NLINK UID GID RDEV MTIME PAYLOAD CONTENT DIGEST`
//! and then `KEY=VALUE` xattrs, fields separated by single spaces, bytes escaped with
//! `\\`, `\n`, `\r`, `\t` and `\xHH`. The parser follows the reference parser's rules,
//! refuses the garbage listed in SPEC.md section 10 that the reference accepts, and works
//! without `std` ([`Parser`], [`parse_bytes`]); with feature `std`, [`parse_reader`]
//! reads from a `BufRead` one line at a time. The printers write exactly what
//! `composefs-info dump` and `composefs-info ls` write for the same tree.
//!
//! [`Tree`]: crate::tree::Tree

mod error;
mod escape;
mod find;
mod hardlink;
mod index;
mod number;
mod parse;
mod print;
mod xattrs;

pub use error::{Field, ParseError, ParseErrorKind};
pub use escape::EscapeError;
pub use parse::{parse_bytes, ParseOptions, Parsed, Parser};
#[cfg(feature = "std")]
pub use parse::{parse_reader, ReadError};
pub use print::{print_dump, print_ls, HardlinkStyle, PrintError, PrintOptions};
#[cfg(feature = "std")]
pub use print::{write_dump, write_ls};
