//! Shared command-line plumbing for the composefs tools. The binaries hold no format
//! logic of their own: they parse arguments and call `composefs-format` and
//! `composefs-std`.

pub mod fuse;
pub mod info;
pub mod mkcomposefs;
pub mod mount;
