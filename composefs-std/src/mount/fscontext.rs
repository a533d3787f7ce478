//! A filesystem context of the new mount API (`fsopen`, `fsconfig`, `fsmount`) whose
//! failures carry the step and what the kernel logged on the context.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::io::Errno;
use rustix::mount::{
    fsconfig_create, fsconfig_set_fd, fsconfig_set_flag, fsconfig_set_string, fsmount, fsopen,
    FsMountFlags, FsOpenFlags, MountAttrFlags,
};

use super::MountError;

/// At most this many kernel messages are kept per failure.
const MAX_MESSAGES: usize = 8;

/// An open filesystem context.
#[derive(Debug)]
pub(crate) struct FsContext {
    fd: OwnedFd,
    label: &'static str,
}

impl FsContext {
    /// `fsopen(fstype)`; `label` prefixes every failure (e.g. `overlay (fd layers)`).
    pub(crate) fn open(fstype: &str, label: &'static str) -> Result<Self, MountError> {
        let fd = fsopen(fstype, FsOpenFlags::FSOPEN_CLOEXEC)
            .map_err(|e| MountError::kernel(format!("{label}: fsopen {fstype}"), e, Vec::new()))?;
        Ok(Self { fd, label })
    }

    /// `FSCONFIG_SET_STRING key=value`.
    pub(crate) fn set_string(&self, key: &str, value: &str) -> Result<(), MountError> {
        fsconfig_set_string(&self.fd, key, value)
            .map_err(|e| self.failure(&format!("fsconfig {key}={value}"), e))
    }

    /// `FSCONFIG_SET_STRING key=value` with a value that may not be UTF-8 (a path).
    pub(crate) fn set_path_string(
        &self,
        key: &str,
        value: &std::path::Path,
    ) -> Result<(), MountError> {
        fsconfig_set_string(&self.fd, key, value)
            .map_err(|e| self.failure(&format!("fsconfig {key}={}", value.display()), e))
    }

    /// `FSCONFIG_SET_FLAG key`.
    pub(crate) fn set_flag(&self, key: &str) -> Result<(), MountError> {
        fsconfig_set_flag(&self.fd, key).map_err(|e| self.failure(&format!("fsconfig {key}"), e))
    }

    /// `FSCONFIG_SET_FD key=fd`; `what` names the fd's subject in errors.
    pub(crate) fn set_fd(
        &self,
        key: &str,
        fd: BorrowedFd<'_>,
        what: &str,
    ) -> Result<(), MountError> {
        fsconfig_set_fd(&self.fd, key, fd)
            .map_err(|e| self.failure(&format!("fsconfig {key}=<fd of {what}>"), e))
    }

    /// Whether the filesystem validates keys itself: an unknown key must be refused.
    /// Filesystems still on the legacy interface accept anything here and fail only at
    /// creation, with their whole option string.
    pub(crate) fn validates_keys(&self) -> bool {
        let refused = fsconfig_set_string(&self.fd, "unsupported", "unsupported").is_err();
        self.discard_messages();
        refused
    }

    /// `FSCONFIG_SET_STRING key=value` where a refusal is acceptable; returns whether
    /// the kernel took it. The refusal's messages are discarded.
    pub(crate) fn try_set_string(&self, key: &str, value: &str) -> bool {
        let taken = fsconfig_set_string(&self.fd, key, value).is_ok();
        self.discard_messages();
        taken
    }

    /// Drops the queued kernel messages, so a later failure reports only its own.
    fn discard_messages(&self) {
        drop(drain_messages(self.fd.as_fd()));
    }

    /// `FSCONFIG_CMD_CREATE`.
    pub(crate) fn create(&self) -> Result<(), MountError> {
        fsconfig_create(&self.fd).map_err(|e| {
            let mut failure = self.failure("fsconfig create", e);
            // overlayfs explains most refusals only in the kernel log.
            if let MountError::Kernel { step, messages, .. } = &mut failure {
                if messages.is_empty() {
                    step.what.push_str(" (the kernel log may say why)");
                }
            }
            failure
        })
    }

    /// `fsmount`: a detached mount of the created superblock.
    pub(crate) fn mount(&self, attrs: MountAttrFlags) -> Result<OwnedFd, MountError> {
        fsmount(&self.fd, FsMountFlags::FSMOUNT_CLOEXEC, attrs)
            .map_err(|e| self.failure("fsmount", e))
    }

    fn failure(&self, what: &str, errno: Errno) -> MountError {
        MountError::kernel(
            format!("{}: {what}", self.label),
            errno,
            drain_messages(self.fd.as_fd()),
        )
    }
}

/// Reads the messages the kernel queued on a filesystem context (`e ...`, `w ...`,
/// `i ...`), without their one-letter severity prefix.
fn drain_messages(fd: BorrowedFd<'_>) -> Vec<String> {
    let mut out = Vec::new();
    let mut buf = [0u8; 1024];
    while out.len() < MAX_MESSAGES {
        match rustix::io::read(fd, &mut buf) {
            Ok(n) if n > 0 => {
                let text = String::from_utf8_lossy(buf.get(..n).unwrap_or_default());
                let text = text.trim_end();
                let text = match text.split_once(' ') {
                    Some(("e" | "w" | "i", rest)) => rest,
                    _ => text,
                };
                out.push(text.to_owned());
            }
            _ => break,
        }
    }
    out
}
