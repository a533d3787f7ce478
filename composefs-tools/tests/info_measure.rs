//! `composefs-info measure-file`: fs-verity digests in the reference's output format, the
//! correct digest of an empty file, and errors that name the file.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, missing_docs)]

mod info_support;

use std::path::Path;
use std::process::{Command, Output};

use composefs_conformance::{reference_tool, skip};
use info_support::{code, info, run, write_file};

fn measure(files: &[&Path]) -> Output {
    let mut cmd = info();
    cmd.arg("measure-file").args(files);
    run(cmd)
}

/// Byte `k` is `k mod 251`, as the `pattern` rows of `tests/data/verity/vectors.tsv`.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|k| (k % 251) as u8).collect()
}

#[test]
fn digests_match_the_fsverity_utils_vectors() {
    let dir = tempfile::tempdir().unwrap();
    // From tests/data/verity/vectors.tsv (fsverity-utils 1.5).
    let files = [
        (
            write_file(dir.path(), "empty", b""),
            "3d248ca542a24fc62d1c43b916eae5016878e2533c88238480b26128a1f1af95",
        ),
        (
            write_file(dir.path(), "abc", b"abc"),
            "700b6bd8510f0b4f9bac8b9cf0459151a1c4a99f467892bb4bd289a67df8e19c",
        ),
        (
            write_file(dir.path(), "zeros", &[0u8; 4097]),
            "093756e4ea9683329106d4a16982682ed182c14bf076463a9e7f97305cbac743",
        ),
        (
            write_file(dir.path(), "pattern", &pattern(524_288)),
            "d82861203d50ae9b60948504a704f35f5118bd229aeb1a22d6dae47b1767c4c4",
        ),
    ];
    let paths: Vec<&Path> = files.iter().map(|(p, _)| p.as_path()).collect();
    let out = measure(&paths);
    assert_eq!(code(&out), 0);
    let want: String = files.iter().map(|(_, d)| format!("{d}\n")).collect();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), want);
    assert!(out.stderr.is_empty());
}

#[test]
fn matches_the_reference_except_for_the_empty_file() {
    let Some(tool) = reference_tool("composefs-info") else {
        return skip("reference composefs-info not installed");
    };
    let dir = tempfile::tempdir().unwrap();
    let hello = write_file(dir.path(), "hello", b"hello world\n");
    let foo = write_file(dir.path(), "foo", b"foo bar baz\n");
    let big = write_file(dir.path(), "big", &pattern((1 << 20) + 1));
    let files = [hello.as_path(), foo.as_path(), big.as_path()];
    let ours = measure(&files);
    let theirs = run({
        let mut cmd = Command::new(&tool);
        cmd.arg("measure-file").args(files);
        cmd
    });
    assert_eq!((code(&ours), code(&theirs)), (0, 0));
    assert_eq!(ours.stdout, theirs.stdout);
    // The reference's own test values.
    let text = String::from_utf8(ours.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("37061ef2") && lines[0].ends_with("cd92"));
    assert!(lines[1].starts_with("91e7d88c") && lines[1].ends_with("e70b"));
    // The empty file: the reference hashes a zero block (SPEC.md section 10).
    let empty = write_file(dir.path(), "empty", b"");
    let theirs = run({
        let mut cmd = Command::new(&tool);
        cmd.arg("measure-file").arg(&empty);
        cmd
    });
    assert!(String::from_utf8_lossy(&theirs.stdout).starts_with("cfc33910"));
    let ours = measure(&[empty.as_path()]);
    assert!(String::from_utf8_lossy(&ours.stdout).starts_with("3d248ca5"));
}

#[test]
fn errors_name_the_file_and_stop() {
    let dir = tempfile::tempdir().unwrap();
    let a = write_file(dir.path(), "a", b"abc");
    let missing = dir.path().join("missing");
    let out = measure(&[a.as_path(), missing.as_path(), a.as_path()]);
    assert_eq!(code(&out), 2);
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "700b6bd8510f0b4f9bac8b9cf0459151a1c4a99f467892bb4bd289a67df8e19c\n"
    );
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        format!(
            "composefs-info: Failed to open '{}': No such file or directory (os error 2)\n",
            missing.display()
        )
    );
    let out = measure(&[dir.path()]);
    assert_eq!(code(&out), 2);
    assert!(String::from_utf8_lossy(&out.stderr).starts_with(&format!(
        "composefs-info: failed to measure '{}': ",
        dir.path().display()
    )));
    // No file at all is a usage error.
    assert_eq!(code(&measure(&[])), 2);
}
