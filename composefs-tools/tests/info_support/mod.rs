//! Shared pieces of the `composefs-info` and `composefs-dump` command-line tests: running
//! the binaries with a deadline, our image of an upstream asset, and temporary files.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use composefs_conformance::Asset;
use composefs_format::dumpfile::{parse_bytes, ParseOptions};
use composefs_format::write::{write_image, Options, WriteImageError};

/// Our `composefs-info`.
pub fn info() -> Command {
    Command::new(env!("CARGO_BIN_EXE_composefs-info"))
}

/// Our `composefs-dump`.
pub fn dump_tool() -> Command {
    Command::new(env!("CARGO_BIN_EXE_composefs-dump"))
}

/// Runs `cmd` to completion with no stdin; panics if it runs longer than `limit` (after
/// killing it), so a hang fails the test instead of stalling it.
pub fn run_with_deadline(mut cmd: Command, limit: Duration) -> Output {
    let label = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{label}: {e}"));
    // Drain the pipes on threads so a large output cannot block the child.
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut buf = Vec::new();
        stdout.read_to_end(&mut buf).unwrap();
        buf
    });
    let err = std::thread::spawn(move || {
        let mut buf = Vec::new();
        stderr.read_to_end(&mut buf).unwrap();
        buf
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{label}: still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

/// Runs `cmd` with a generous deadline (images of 64k inodes in a debug build).
pub fn run(cmd: Command) -> Output {
    run_with_deadline(cmd, Duration::from_secs(120))
}

/// The exit code, which must exist: a process killed by a signal fails the test.
pub fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or_else(|| {
        panic!(
            "killed by a signal: {:?}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// The stem of an asset name: `config.dump.gz` -> `config`.
pub fn stem(asset: &Asset) -> &str {
    asset.name.trim_end_matches(".gz").trim_end_matches(".dump")
}

/// Our writer's image of `dump` at min = max = `version`, or the default versions.
pub fn image_of_dump(dump: &[u8], version: Option<u32>, strict: bool) -> Vec<u8> {
    let options = if strict {
        ParseOptions::strict()
    } else {
        ParseOptions::lenient()
    };
    let tree = parse_bytes(dump, options).expect("dump parses").tree;
    let options = version.map_or_else(Options::default, |v| Options {
        min_version: v,
        max_version: v,
    });
    let mut image = Vec::new();
    match write_image(&tree, &options, &mut image) {
        Ok(_) => image,
        Err(WriteImageError::Plan(e)) => panic!("tree does not write: {e}"),
        Err(e) => panic!("{e}"),
    }
}

/// Our writer's image of an upstream asset, as the reference test suite builds it.
pub fn image_of_asset(asset: &Asset) -> Vec<u8> {
    image_of_dump(&asset.dump(), asset.version, asset.strict)
}

/// The two upstream assets whose reference image has an out-of-line chunk map, which our
/// writer refuses to write and our reader refuses to read.
pub const OUT_OF_LINE_CHUNK_MAP: [&str; 2] =
    ["bigfile-xattr.dump", "honggfuzz-bigfile-with-acl.dump"];

/// The upstream assets an image is made of: not `should-fail-*`, not the two above.
pub fn imageable_assets() -> Vec<Asset> {
    composefs_conformance::upstream_assets()
        .into_iter()
        .filter(|a| !a.should_fail && !OUT_OF_LINE_CHUNK_MAP.contains(&a.name.as_str()))
        .collect()
}

/// Writes `bytes` to `dir/name` and returns the path.
pub fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}
