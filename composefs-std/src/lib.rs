//! `composefs-std`: composefs on Linux, on top of `composefs-format`.
//!
//! TODO(stub): modules are added by their owners.
