//! Why a mount failed.

use std::fmt;
use std::io;
use std::path::PathBuf;

use composefs_format::verity::DIGEST_SIZE;
use rustix::io::Errno;

use crate::verity::{to_hex, FsVerityError};

/// The system call (and its subject) that failed, for [`MountError::Kernel`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// What was being done, e.g. `overlay: fsconfig lowerdir+` or `loop: LOOP_CONFIGURE`.
    pub what: String,
}

impl Step {
    pub(crate) fn new(what: impl Into<String>) -> Self {
        Self { what: what.into() }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.what)
    }
}

/// Why [`mount_image`](super::mount_image) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MountError {
    /// No object directory was given.
    #[error("no basedir given: at least one object directory is needed")]
    NoBasedir,
    /// A `digest=` value is not 64 hexadecimal digits.
    #[error("invalid digest {text:?}: {reason}")]
    InvalidDigest {
        /// The text given.
        text: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The image file could not be opened.
    #[error("cannot open image {}: {source}", path.display())]
    OpenImage {
        /// The image path.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// A digest was required but the kernel or the image's filesystem has no fs-verity.
    #[error("fs-verity is not supported by this kernel or filesystem ({0}), so the image digest cannot be checked")]
    VerityUnsupported(Errno),
    /// A digest was required but the image file has no fs-verity.
    #[error("image has no fs-verity")]
    NoVerity,
    /// The image file has fs-verity with another digest than the one required.
    #[error(
        "image has wrong fs-verity digest: expected {}, got {}",
        to_hex(expected),
        to_hex(actual)
    )]
    WrongVerity {
        /// The digest required.
        expected: [u8; DIGEST_SIZE],
        /// The digest the kernel reported.
        actual: [u8; DIGEST_SIZE],
    },
    /// Measuring the image's fs-verity digest failed otherwise.
    #[error("cannot measure the image's fs-verity digest: {0}")]
    MeasureVerity(#[source] FsVerityError),
    /// The file does not start with a composefs header.
    #[error("not a composefs image: {reason}")]
    NotComposefs {
        /// What the header holds instead.
        reason: String,
    },
    /// The image failed the structural check; the kernel never saw it.
    #[error("image refused by the structural check ({total} problem{}): {}{}",
        if *total == 1 { "" } else { "s" },
        problems.join("; "),
        if (problems.len() as u64) < *total { "; ..." } else { "" })]
    CheckFailed {
        /// The first problems, each as `nid N (PATH): PROBLEM`.
        problems: Vec<String>,
        /// How many problems were found in all.
        total: u64,
    },
    /// The image is sound but not what our writer makes of its tree; the kernel never
    /// saw it.
    #[error("image refused by the canonical check: {0}")]
    NotCanonical(String),
    /// The user namespace for `idmap` could not be opened.
    #[error("cannot open user namespace {} for idmap: {source}", path.display())]
    OpenUserns {
        /// The namespace path.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// An I/O error while preparing the image (reading it, copying it to memory).
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// A mount system call failed.
    #[error("{step}: {errno}{}", kernel_says(messages))]
    Kernel {
        /// The call and its subject.
        step: Step,
        /// The error number.
        errno: Errno,
        /// What the kernel logged on the filesystem context (new mount API only).
        messages: Vec<String>,
    },
}

impl MountError {
    pub(crate) fn kernel(step: impl Into<String>, errno: Errno, messages: Vec<String>) -> Self {
        Self::Kernel {
            step: Step::new(step),
            errno,
            messages,
        }
    }

    /// The errno of a failed system call, if that is what failed.
    #[must_use]
    pub fn errno(&self) -> Option<Errno> {
        match self {
            Self::Kernel { errno, .. } | Self::VerityUnsupported(errno) => Some(*errno),
            _ => None,
        }
    }
}

fn kernel_says(messages: &[String]) -> String {
    if messages.is_empty() {
        String::new()
    } else {
        format!(" (kernel: {})", messages.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_cause() {
        let e = MountError::WrongVerity {
            expected: [0xab; 32],
            actual: [0x01; 32],
        };
        assert_eq!(
            e.to_string(),
            format!(
                "image has wrong fs-verity digest: expected {}, got {}",
                "ab".repeat(32),
                "01".repeat(32)
            )
        );
        let e = MountError::kernel(
            "overlay: fsconfig create",
            Errno::INVAL,
            vec!["overlay: failed to resolve 'x': -2".into()],
        );
        assert_eq!(
            e.to_string(),
            format!(
                "overlay: fsconfig create: {} (kernel: overlay: failed to resolve 'x': -2)",
                Errno::INVAL
            )
        );
        assert_eq!(e.errno(), Some(Errno::INVAL));
        let e = MountError::CheckFailed {
            problems: vec!["a".into(), "b".into()],
            total: 3,
        };
        assert_eq!(
            e.to_string(),
            "image refused by the structural check (3 problems): a; b; ..."
        );
        assert!(MountError::VerityUnsupported(Errno::NOTTY)
            .to_string()
            .starts_with("fs-verity is not supported by this kernel or filesystem"));
    }
}
