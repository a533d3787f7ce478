//! Reading the xattrs of one file, under the limits a composefs image can hold.
//!
//! Every name the filesystem lists is read, as the reference does: that includes names the
//! kernel supplies itself, such as `security.selinux` (set by the LSM on every file of a
//! system running SELinux) and `system.posix_acl_*` (ACLs). With [`XattrMode::User`] only
//! `user.*` names are kept. A value may be at most 65535 bytes, and the xattrs of a file
//! together must fit the budget of SPEC.md 6.4 (12 bytes plus, for each, 7 bytes plus its
//! name and value, at most 32767); a file beyond either is an error, as in the reference.
//! An xattr removed between listing and reading is skipped; a filesystem that does not
//! support xattrs has none.

use std::ffi::CStr;
use std::io;
use std::os::fd::BorrowedFd;
use std::path::PathBuf;

use composefs_format::limits::{MAX_XATTR_BUDGET, MAX_XATTR_NAME_LEN, MAX_XATTR_VALUE_LEN};
use composefs_format::tree::Xattr;
use rustix::io::Errno;

use super::{ScanError, XattrMode, XattrProblem};

/// Budget cost of the xattr header, paid once by a file with xattrs.
const HEADER_COST: usize = 12;
/// Budget cost of one xattr besides its name and value.
const ENTRY_COST: usize = 7;
/// Longest name list Linux returns (`XATTR_LIST_MAX`); a longer one is fetched after
/// asking its size.
const LIST_BUFFER: usize = 65536;
/// Most attempts at listing names while the list keeps growing.
const LIST_ATTEMPTS: u32 = 4;
/// Largest name list accepted at all: 16 MiB.
const MAX_LIST: usize = 16 << 20;

/// Where to read xattrs from.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Target<'a> {
    /// An open file or directory (`flistxattr`, `fgetxattr`).
    Fd(BorrowedFd<'a>),
    /// A path whose last component is not followed (`llistxattr`, `lgetxattr`).
    Path(&'a CStr),
}

/// Why reading the xattrs failed, before the path is known.
#[derive(Debug)]
pub(crate) enum XattrError {
    Io {
        op: &'static str,
        errno: Errno,
    },
    Limit {
        name: Vec<u8>,
        problem: XattrProblem,
    },
}

impl XattrError {
    /// The error for the file at `path`.
    pub(crate) fn at(self, path: PathBuf) -> ScanError {
        match self {
            Self::Io { op, errno } => ScanError::Io {
                op,
                path,
                source: io::Error::from(errno),
            },
            Self::Limit { name, problem } => ScanError::Xattr {
                path,
                name,
                problem,
            },
        }
    }
}

/// Reusable buffers for reading xattrs (one per thread).
#[derive(Debug)]
pub(crate) struct XattrReader {
    list: Vec<u8>,
    value: Vec<u8>,
}

impl XattrReader {
    pub(crate) fn new() -> Self {
        Self {
            list: vec![0; LIST_BUFFER],
            // One byte more than the largest value accepted, to see longer ones.
            value: vec![0; MAX_XATTR_VALUE_LEN + 1],
        }
    }

    /// The xattrs of `target` that `mode` selects, in the order the filesystem lists them.
    pub(crate) fn read(
        &mut self,
        target: Target<'_>,
        mode: XattrMode,
    ) -> Result<Vec<Xattr>, XattrError> {
        if mode == XattrMode::Skip {
            return Ok(Vec::new());
        }
        let len = self.list_names(target)?;
        let list = self.list.get(..len).unwrap_or_default();
        let mut xattrs = Vec::new();
        let mut used = HEADER_COST;
        let mut rest = list;
        while let Ok(cname) = CStr::from_bytes_until_nul(rest) {
            let name = cname.to_bytes();
            rest = rest.get(name.len().saturating_add(1)..).unwrap_or_default();
            if name.is_empty() {
                continue;
            }
            if mode == XattrMode::User && !name.starts_with(b"user.") {
                continue;
            }
            if name.len() > MAX_XATTR_NAME_LEN {
                return Err(XattrError::Limit {
                    name: name.to_vec(),
                    problem: XattrProblem::BadName { len: name.len() },
                });
            }
            let got = match target {
                Target::Fd(fd) => rustix::fs::fgetxattr(fd, cname, &mut self.value[..]),
                Target::Path(path) => rustix::fs::lgetxattr(path, cname, &mut self.value[..]),
            };
            let value_len = match got {
                Ok(n) => n,
                // Removed since it was listed.
                Err(Errno::NODATA) => continue,
                Err(Errno::RANGE) => {
                    return Err(XattrError::Limit {
                        name: name.to_vec(),
                        problem: XattrProblem::ValueTooLong {
                            len: self.value.len(),
                        },
                    })
                }
                Err(errno) => {
                    return Err(XattrError::Io {
                        op: "read xattr of",
                        errno,
                    })
                }
            };
            if value_len > MAX_XATTR_VALUE_LEN {
                return Err(XattrError::Limit {
                    name: name.to_vec(),
                    problem: XattrProblem::ValueTooLong { len: value_len },
                });
            }
            let value = self.value.get(..value_len).unwrap_or_default().to_vec();
            used = used
                .saturating_add(ENTRY_COST)
                .saturating_add(name.len())
                .saturating_add(value.len());
            xattrs.push(Xattr {
                key: name.to_vec(),
                value,
            });
        }
        if used > MAX_XATTR_BUDGET {
            return Err(XattrError::Limit {
                name: Vec::new(),
                problem: XattrProblem::Budget { needed: used },
            });
        }
        Ok(xattrs)
    }

    /// Lists the names into `self.list`; returns the list's length.
    fn list_names(&mut self, target: Target<'_>) -> Result<usize, XattrError> {
        for _ in 0..LIST_ATTEMPTS {
            let got = match target {
                Target::Fd(fd) => rustix::fs::flistxattr(fd, &mut self.list[..]),
                Target::Path(path) => rustix::fs::llistxattr(path, &mut self.list[..]),
            };
            match got {
                Ok(n) => return Ok(n),
                Err(Errno::OPNOTSUPP) => return Ok(0),
                Err(Errno::RANGE) => {
                    let needed: usize = match target {
                        Target::Fd(fd) => rustix::fs::flistxattr(fd, &mut [0u8; 0][..]),
                        Target::Path(path) => rustix::fs::llistxattr(path, &mut [0u8; 0][..]),
                    }
                    .map_err(|errno| XattrError::Io {
                        op: "list xattrs of",
                        errno,
                    })?;
                    if needed > MAX_LIST {
                        return Err(XattrError::Io {
                            op: "list xattrs of",
                            errno: Errno::RANGE,
                        });
                    }
                    self.list.resize(needed.max(self.list.len()), 0);
                }
                Err(errno) => {
                    return Err(XattrError::Io {
                        op: "list xattrs of",
                        errno,
                    })
                }
            }
        }
        Err(XattrError::Io {
            op: "list xattrs of",
            errno: Errno::RANGE,
        })
    }
}
