//! Differential test of the object store layout: the objects `mkcomposefs --digest-store`
//! (reference) writes for a directory are exactly those our `Store` writes for the same
//! files, with the same names, contents and modes.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use composefs_conformance::{reference_tool, skip};
use composefs_std::store::Store;

/// Relative path -> (mode bits, content) of every file under `root`, and the modes of the
/// directories.
fn snapshot(root: &Path) -> BTreeMap<String, (u32, Vec<u8>)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            let rel = e.path().strip_prefix(root).unwrap().display().to_string();
            let mode = e.metadata().unwrap().permissions().mode() & 0o7777;
            if e.file_type().unwrap().is_dir() {
                out.insert(format!("{rel}/"), (mode, Vec::new()));
                stack.push(e.path());
            } else {
                out.insert(rel, (mode, fs::read(e.path()).unwrap()));
            }
        }
    }
    out
}

#[test]
fn digest_store_matches_mkcomposefs() {
    let Some(mkcomposefs) = reference_tool("mkcomposefs") else {
        return skip("reference mkcomposefs not installed");
    };
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    fs::create_dir_all(src.join("sub")).unwrap();
    // Files of at most 64 bytes are inlined by mkcomposefs and not stored.
    let sizes = [0usize, 1, 64, 65, 4095, 4096, 4097, 524_289, 1_048_577];
    let mut stored = Vec::new();
    for (i, size) in sizes.iter().enumerate() {
        let content: Vec<u8> = (0..*size).map(|k| (k % 251) as u8 ^ i as u8).collect();
        let path = src
            .join(if i % 2 == 0 { "sub" } else { "." })
            .join(format!("f{i}"));
        fs::write(&path, &content).unwrap();
        if *size > 64 {
            stored.push(path);
        }
    }
    // Same content twice: one object.
    fs::copy(&stored[0], src.join("dup")).unwrap();

    let reference_store = work.path().join("reference-store");
    let out = Command::new(&mkcomposefs)
        .arg(format!("--digest-store={}", reference_store.display()))
        .arg(&src)
        .arg(work.path().join("image.cfs"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let ours = Store::create(work.path().join("our-store")).unwrap();
    for path in stored.iter().chain([&src.join("dup")]) {
        ours.add_path(path).unwrap();
    }
    let theirs = snapshot(&reference_store);
    let mine = snapshot(ours.root());
    assert_eq!(
        theirs.keys().collect::<Vec<_>>(),
        mine.keys().collect::<Vec<_>>(),
        "same object names"
    );
    assert_eq!(theirs, mine, "same contents and modes");
    assert_eq!(
        mine.keys().filter(|k| !k.ends_with('/')).count(),
        stored.len()
    );
    let report = ours.verify().unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
}
