//! Shared helpers for the conformance tests: test vectors committed under `data/`, the
//! reference tools when installed, and random dumps.
//!
//! Tests never read `../shared` at run time. Differential tests find the reference C tools
//! in `$COMPOSEFS_REFERENCE_BIN`, else in `$HOME/.cache/composefs-reference/bin` (where
//! `../shared/tools/reference-composefs` installs them), and skip with a visible message
//! when they are missing.

pub mod arb;
pub mod hostile;
pub mod kernel;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

/// Directory of the committed test vectors.
#[must_use]
pub fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data")
}

/// Reads `data/<rel>`, gunzipping it when the name ends in `.gz`.
///
/// # Panics
/// When the file is missing or unreadable: a test vector must exist.
#[must_use]
pub fn read_data(rel: &str) -> Vec<u8> {
    let path = data_dir().join(rel);
    let raw = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    if rel.ends_with(".gz") {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(raw.as_slice())
            .read_to_end(&mut out)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        out
    } else {
        raw
    }
}

/// One upstream test asset: a dump, and what the reference does with it.
#[derive(Debug, Clone)]
pub struct Asset {
    /// File name under `data/upstream/`, e.g. `config.dump.gz`.
    pub name: String,
    /// Expected sha256 (lowercase hex) of `mkcomposefs --from-file` output, if known.
    pub sha256: Option<String>,
    /// Format version to use as min = max, if the asset has a `.version` file.
    pub version: Option<u32>,
    /// Whether the reference test suite parses it in strict mode.
    pub strict: bool,
    /// Whether the reference must reject it (`should-fail-*`).
    pub should_fail: bool,
}

impl Asset {
    /// The uncompressed dump text.
    #[must_use]
    pub fn dump(&self) -> Vec<u8> {
        read_data(&format!("upstream/{}", self.name))
    }
}

/// The upstream assets that have a dump (the ones with only a `.sha256` are skipped).
#[must_use]
pub fn upstream_assets() -> Vec<Asset> {
    let dir = data_dir().join("upstream");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".dump") || n.ends_with(".dump.gz"))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let sha256 = std::fs::read_to_string(dir.join(format!("{name}.sha256")))
                .ok()
                .map(|s| s.trim().to_owned());
            let version = std::fs::read_to_string(dir.join(format!("{name}.version")))
                .ok()
                .map(|s| s.trim().parse().expect("numeric .version file"));
            let lenient = [
                "no-newline.dump",
                "longlink.dump",
                "honggfuzz-longlink-unterminated.dump",
            ];
            Asset {
                strict: !lenient.contains(&name.as_str()),
                should_fail: name.starts_with("should-fail-"),
                name,
                sha256,
                version,
            }
        })
        .collect()
}

/// Lowercase hex sha256 of `bytes`.
#[must_use]
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Lowercase hex of `bytes`.
#[must_use]
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// The names in directory `dir`, sorted (lossy UTF-8).
///
/// # Panics
/// When `dir` cannot be read.
#[must_use]
pub fn dir_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            e.unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

/// Prints a visible skip message; use as `return skip("...")` at the top of a test.
pub fn skip(reason: &str) {
    eprintln!("SKIPPED: {reason}");
}

/// Path of a reference C tool (`mkcomposefs`, `composefs-info`, `mount.composefs`), or
/// `None` when the reference tools are not installed.
#[must_use]
pub fn reference_tool(name: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("COMPOSEFS_REFERENCE_BIN")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .map(|h| PathBuf::from(h).join(".cache/composefs-reference/bin"))
        })?;
    let tool = dir.join(name);
    tool.is_file().then_some(tool)
}

/// A random valid dump from the committed copy of `gen-dump.py`, or `None` (with a visible
/// message) when python3 is missing.
#[must_use]
pub fn gen_dump(seed: u64, entries: usize, whiteouts: bool) -> Option<Vec<u8>> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/gen-dump.py");
    let mut cmd = Command::new("python3");
    cmd.arg(&script)
        .arg("--seed")
        .arg(seed.to_string())
        .arg("--entries")
        .arg(entries.to_string());
    if !whiteouts {
        cmd.arg("--no-whiteouts");
    }
    match cmd.output() {
        Ok(out) if out.status.success() => Some(out.stdout),
        Ok(out) => panic!(
            "gen-dump.py failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => {
            skip(&format!(
                "python3 not runnable ({e}); random dumps unavailable"
            ));
            None
        }
    }
}
