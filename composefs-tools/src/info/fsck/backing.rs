//! `fsck --basedir=DIR [--verify-objects]`: every backing file an image names exists
//! beneath the base directory as a regular file, reached as overlayfs reaches it (no
//! symlink, no mount point crossed), and, when verifying, has the fs-verity digest the
//! image's metacopy xattr records.

use std::io::{self, Write};
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicUsize, Ordering};

use composefs_format::error::write_escaped;
use composefs_format::ondisk::FileType;
use composefs_format::tree::Tree;
use composefs_std::verity::{measure_file, to_hex};

use crate::info::basedir::{Basedir, Lookup, Resolve};
use crate::info::{EXIT_CORRUPTED, EXIT_ERROR, EXIT_OK};

/// The object check's settings.
#[derive(Debug)]
pub struct ObjectCheck<'a> {
    /// Where the backing files are.
    pub basedir: &'a Basedir,
    /// Also compare each object's fs-verity digest with the image's.
    pub verify: bool,
    /// Objects checked at once.
    pub threads: NonZeroUsize,
}

/// One backing file to check: its payload, the digest the image expects (if any), and
/// the first path that names it.
struct Wanted {
    payload: Vec<u8>,
    digest: Option<[u8; 32]>,
    path: Vec<u8>,
}

/// What is wrong with one backing file; `io` marks failures to look or read.
struct Finding {
    message: String,
    io: bool,
}

impl ObjectCheck<'_> {
    /// Checks the backing files of `tree`'s external regular files, prints one line per
    /// problem (`IMAGE: PATH: object PAYLOAD: PROBLEM`) or a summary line, and returns
    /// the exit status: 0 all present (and verified), 1 a missing, misplaced or
    /// mismatching object, 2 an object that could not be examined.
    ///
    /// # Errors
    /// Only when writing to `out` fails.
    pub fn run(&self, name: &str, tree: &Tree, out: &mut dyn Write) -> io::Result<u8> {
        let wanted = wanted(tree);
        let findings = self.examine(&wanted);
        let mut status = EXIT_OK;
        for (w, finding) in wanted.iter().zip(&findings) {
            let Some(f) = finding else { continue };
            status = status.max(if f.io { EXIT_ERROR } else { EXIT_CORRUPTED });
            let mut line = format!("{name}: ");
            // Writing into a String cannot fail.
            let _ = write_escaped(&mut line, &w.path);
            line.push_str(": object ");
            let _ = write_escaped(&mut line, &w.payload);
            line.push_str(": ");
            line.push_str(&f.message);
            writeln!(out, "{line}")?;
        }
        if status == EXIT_OK {
            let what = if self.verify {
                "present and verified"
            } else {
                "present"
            };
            writeln!(out, "{name}: {} objects {what}", wanted.len())?;
        }
        Ok(status)
    }

    /// Examines every wanted object, on up to `threads` threads; the result is in the
    /// order of `wanted`.
    fn examine(&self, wanted: &[Wanted]) -> Vec<Option<Finding>> {
        let next = AtomicUsize::new(0);
        let worker = || {
            let mut found = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(w) = wanted.get(i) else { break };
                found.push((i, self.examine_one(w)));
            }
            found
        };
        let workers = self.threads.get().min(wanted.len()).max(1);
        let results = std::thread::scope(|scope| {
            let helpers: Vec<_> = (1..workers)
                .filter_map(|_| std::thread::Builder::new().spawn_scoped(scope, worker).ok())
                .collect();
            let mut all = worker();
            for h in helpers {
                // A worker that panicked lost its results; they count as unexamined below.
                if let Ok(found) = h.join() {
                    all.extend(found);
                }
            }
            all
        });
        let mut by_index: Vec<Option<Option<Finding>>> = wanted.iter().map(|_| None).collect();
        for (i, finding) in results {
            if let Some(slot) = by_index.get_mut(i) {
                *slot = Some(finding);
            }
        }
        by_index
            .into_iter()
            .map(|slot| {
                slot.unwrap_or_else(|| {
                    Some(Finding {
                        message: "not examined (internal error)".into(),
                        io: true,
                    })
                })
            })
            .collect()
    }

    fn examine_one(&self, w: &Wanted) -> Option<Finding> {
        let problem = |message: &str| {
            Some(Finding {
                message: message.into(),
                io: false,
            })
        };
        let io_problem = |message: String| Some(Finding { message, io: true });
        let lookup = if self.verify && w.digest.is_some() {
            match self.basedir.open_regular(&w.payload, Resolve::AsOverlay) {
                Ok(file) => {
                    let expected = w.digest.unwrap_or_default();
                    return match measure_file(&file, NonZeroUsize::MIN) {
                        Ok(actual) if actual == expected => None,
                        Ok(actual) => problem(&format!(
                            "fs-verity digest {}, expected {}",
                            to_hex(&actual),
                            to_hex(&expected)
                        )),
                        Err(e) => io_problem(format!("cannot be measured: {e}")),
                    };
                }
                Err(lookup) => lookup,
            }
        } else {
            self.basedir.lookup(&w.payload, Resolve::AsOverlay)
        };
        match lookup {
            Lookup::Regular(_) => None,
            Lookup::Missing => problem("missing"),
            Lookup::NotRegular => problem("not a regular file"),
            Lookup::Symlink => {
                problem("is or passes through a symlink, which overlayfs does not follow")
            }
            Lookup::Escapes => {
                problem("resolves outside the base directory or across a mount point")
            }
            Lookup::Error(e) => io_problem(format!("cannot be looked up: {e}")),
        }
    }
}

/// The distinct (payload, digest) pairs of the external regular files of `tree`, sorted,
/// each with the first path (in walk order) that names it.
fn wanted(tree: &Tree) -> Vec<Wanted> {
    let mut all: Vec<Wanted> = Vec::new();
    let mut seen = vec![false; tree.len()];
    let _ = tree.walk(|path, _, id| {
        let Some(node) = tree.get(id) else {
            return Ok::<(), ()>(());
        };
        let first = seen
            .get_mut(id.index())
            .is_some_and(|s| !std::mem::replace(s, true));
        if first && node.file_type() == Some(FileType::Regular) {
            if let Some(payload) = &node.payload {
                all.push(Wanted {
                    payload: payload.clone(),
                    digest: node.digest,
                    path: path.to_vec(),
                });
            }
        }
        Ok(())
    });
    // Stable: for equal keys, the first path in the walk stays first.
    all.sort_by(|a, b| (&a.payload, a.digest).cmp(&(&b.payload, b.digest)));
    all.dedup_by(|later, earlier| {
        later.payload == earlier.payload && later.digest == earlier.digest
    });
    all
}
