//! The object store: layout, adding, verifying, concurrency and crash safety.
//!
//! The process tests re-run this test binary as a helper (`helper_process`, ignored unless
//! asked for by name) with `COMPOSEFS_STORE_HELPER` saying what to do.

use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use composefs_format::verity;
use composefs_std::store::{object_path, ObjectStatus, ProblemKind, Store, StoreError, TempFiles};
use composefs_std::verity::to_hex;

const HELPER_ENV: &str = "COMPOSEFS_STORE_HELPER";

fn content(k: usize) -> Vec<u8> {
    let size = (k % 5 + 1) * 300 * 1024 + k;
    (0..size)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(k as u8) ^ (i >> 13) as u8)
        .collect()
}

fn new_store(temp_files: TempFiles) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::create(dir.path().join("objects"))
        .unwrap()
        .with_temp_files(temp_files);
    (dir, store)
}

/// Every file under the store root, relative, sorted.
fn listing(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path().strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn add_bytes_lays_out_objects_like_the_reference() {
    for mode in [TempFiles::Anonymous, TempFiles::Named] {
        let (_d, store) = new_store(mode);
        let digest = store.add_bytes(b"hello").unwrap();
        assert_eq!(digest, verity::digest(b"hello"));
        let rel = object_path(&digest);
        let hex = to_hex(&digest);
        assert_eq!(rel, format!("{}/{}", &hex[..2], &hex[2..]));
        assert_eq!(listing(store.root()), vec![rel.clone()], "{mode:?}");
        let path = store.path_of(&digest);
        assert_eq!(path, store.root().join(&rel));
        assert_eq!(fs::read(&path).unwrap(), b"hello");
        let meta = fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o7777, 0o644);
        assert_eq!(meta.nlink(), 1, "no temporary link left behind");
        let dir_mode = fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(dir_mode & 0o777, 0o755);
        assert!(store.contains(&digest).unwrap());
        assert!(!store.contains(&verity::digest(b"other")).unwrap());
    }
}

#[test]
fn the_empty_object_has_the_kernel_digest() {
    let (_d, store) = new_store(TempFiles::Anonymous);
    let digest = store.add_bytes(b"").unwrap();
    assert_eq!(
        to_hex(&digest),
        "3d248ca542a24fc62d1c43b916eae5016878e2533c88238480b26128a1f1af95"
    );
    assert_eq!(fs::metadata(store.path_of(&digest)).unwrap().len(), 0);
}

#[test]
fn add_file_reader_and_path_agree_and_do_not_rewrite() {
    let (d, store) = new_store(TempFiles::Anonymous);
    let bytes = content(3);
    let src = d.path().join("src");
    fs::write(&src, &bytes).unwrap();
    let by_path = store.add_path(&src).unwrap();
    let object = store.path_of(&by_path);
    let inode = fs::metadata(&object).unwrap().ino();
    let by_file = store.add_file(&File::open(&src).unwrap()).unwrap();
    let by_reader = store.add_reader(bytes.as_slice()).unwrap();
    let by_bytes = store.add_bytes(&bytes).unwrap();
    assert_eq!(by_path, verity::digest(&bytes));
    assert!([by_file, by_reader, by_bytes].iter().all(|d| *d == by_path));
    assert_eq!(fs::read(&object).unwrap(), bytes);
    assert_eq!(
        fs::metadata(&object).unwrap().ino(),
        inode,
        "an existing object is never replaced"
    );
    assert_eq!(listing(store.root()).len(), 1);
}

#[test]
fn add_file_streams_a_pipe() {
    let (_d, store) = new_store(TempFiles::Named);
    let (reader, mut writer) = std::io::pipe().unwrap();
    let bytes = content(1);
    let feed = bytes.clone();
    let t = std::thread::spawn(move || {
        for c in feed.chunks(5000) {
            writer.write_all(c).unwrap();
        }
    });
    let file = File::from(std::os::fd::OwnedFd::from(reader));
    let digest = store.add_file(&file).unwrap();
    t.join().unwrap();
    assert_eq!(digest, verity::digest(&bytes));
    assert_eq!(fs::read(store.path_of(&digest)).unwrap(), bytes);
    assert_eq!(
        listing(store.root()).len(),
        1,
        "the named temporary is gone"
    );
}

#[test]
fn verify_reports_every_bad_or_stray_file() {
    let (_d, store) = new_store(TempFiles::Anonymous);
    let good = store.add_bytes(b"good").unwrap();
    let bad = store.add_bytes(b"will be corrupted").unwrap();
    let root = store.root().to_owned();
    // Corrupt one object in place (objects are 0644: root may still write).
    fs::write(store.path_of(&bad), b"corrupted!").unwrap();
    fs::write(root.join("README"), b"x").unwrap();
    fs::write(root.join(".tmp-1-2-3"), b"partial").unwrap();
    fs::create_dir(root.join("objects")).unwrap();
    fs::create_dir(root.join("AB")).unwrap();
    let bad_prefix = &to_hex(&good)[..2];
    fs::write(root.join(bad_prefix).join("short"), b"x").unwrap();
    let upper = to_hex(&good)[2..].to_uppercase();
    fs::write(root.join(bad_prefix).join(upper), b"x").unwrap();
    let dir_object = verity::digest(b"a directory");
    let dir_path = store.path_of(&dir_object);
    fs::create_dir_all(&dir_path).unwrap();

    let report = store.verify().unwrap();
    assert_eq!(report.valid, 1);
    let mut seen: Vec<(String, String)> = report
        .problems
        .iter()
        .map(|p| {
            let rel = p.path.strip_prefix(&root).unwrap().display().to_string();
            let kind = match &p.kind {
                ProblemKind::Mismatch { actual } => {
                    assert_eq!(*actual, verity::digest(b"corrupted!"));
                    "mismatch"
                }
                ProblemKind::NotRegular => "not-regular",
                ProblemKind::Stray => "stray",
                ProblemKind::Temporary => "temporary",
                other => panic!("{other:?}"),
            };
            assert!(!p.to_string().is_empty());
            (rel, kind.to_owned())
        })
        .collect();
    seen.sort();
    let mut expected = vec![
        (object_path(&bad), "mismatch".to_owned()),
        (object_path(&dir_object), "not-regular".to_owned()),
        ("README".to_owned(), "stray".to_owned()),
        (".tmp-1-2-3".to_owned(), "temporary".to_owned()),
        ("objects".to_owned(), "stray".to_owned()),
        ("AB".to_owned(), "stray".to_owned()),
        (format!("{bad_prefix}/short"), "stray".to_owned()),
        (
            format!("{bad_prefix}/{}", to_hex(&good)[2..].to_uppercase()),
            "stray".to_owned(),
        ),
    ];
    expected.sort();
    assert_eq!(seen, expected);

    assert_eq!(store.verify_object(&good).unwrap(), ObjectStatus::Valid);
    assert_eq!(
        store.verify_object(&bad).unwrap(),
        ObjectStatus::Mismatch {
            actual: verity::digest(b"corrupted!")
        }
    );
    assert_eq!(
        store.verify_object(&verity::digest(b"absent")).unwrap(),
        ObjectStatus::Missing
    );
    assert_eq!(
        store.verify_object(&dir_object).unwrap(),
        ObjectStatus::NotRegular
    );
    // Adding content whose name is taken by a directory is an error, not a silent success.
    match store.add_bytes(b"a directory") {
        Err(StoreError::NotRegular { path }) => assert_eq!(path, dir_path),
        other => panic!("{other:?}"),
    }
    // The unlocked leftover temporary is stale and gets removed.
    assert_eq!(store.remove_stale_temporaries().unwrap(), 1);
    assert!(!root.join(".tmp-1-2-3").exists());
}

#[test]
fn concurrent_threads_adding_the_same_content_leave_one_object() {
    for mode in [TempFiles::Anonymous, TempFiles::Named] {
        let (_d, store) = new_store(mode);
        let store = Arc::new(store);
        let bytes = Arc::new(content(4));
        let barrier = Arc::new(Barrier::new(8));
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let (store, bytes, barrier) = (store.clone(), bytes.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    match i % 3 {
                        0 => store.add_bytes(&bytes),
                        1 => store.add_reader(bytes.as_slice()),
                        _ => {
                            let f = tempfile::tempfile().unwrap();
                            (&f).write_all(&bytes).unwrap();
                            store.add_file(&f)
                        }
                    }
                    .unwrap()
                })
            })
            .collect();
        let digests: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert!(digests.iter().all(|d| *d == verity::digest(&bytes)));
        assert_eq!(
            listing(store.root()),
            vec![object_path(&digests[0])],
            "{mode:?}"
        );
        let report = store.verify().unwrap();
        assert_eq!((report.valid, report.problems.len()), (1, 0));
    }
}

/// What a helper process does, from `COMPOSEFS_STORE_HELPER`:
/// - `same <store> <mode>`: adds `content(9)` once, after the start file appears.
/// - `fill <store> <mode> <slow>`: adds `content(0)`, `content(1)`, ... (40 of them),
///   printing `begin k` and `done k`; with `slow`, through a reader that dribbles.
#[test]
#[ignore = "helper for the process tests; runs only when re-invoked by them"]
fn helper_process() {
    let spec = std::env::var(HELPER_ENV).expect("run by the process tests only");
    let args: Vec<&str> = spec.split('\t').collect();
    let mode = if args[2] == "named" {
        TempFiles::Named
    } else {
        TempFiles::Anonymous
    };
    let store = Store::open(args[1]).unwrap().with_temp_files(mode);
    let mut out = std::io::stdout().lock();
    match args[0] {
        "same" => {
            let start = Path::new(args[1]).with_extension("go");
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            while !start.exists() {
                assert!(std::time::Instant::now() < deadline, "no start signal");
                std::thread::sleep(Duration::from_micros(200));
            }
            let d = store.add_bytes(&content(9)).unwrap();
            writeln!(out, "{}", to_hex(&d)).unwrap();
        }
        "fill" => {
            let slow = args[3] == "slow";
            // Computed up front, so that the writer spends its time inside `add_*`.
            let contents: Vec<Vec<u8>> = (0..40).map(content).collect();
            for (k, bytes) in contents.iter().enumerate() {
                writeln!(out, "begin {k}").unwrap();
                out.flush().unwrap();
                if slow {
                    store.add_reader(Dribble(bytes)).unwrap();
                } else {
                    store.add_bytes(bytes).unwrap();
                }
                writeln!(out, "done {k}").unwrap();
                out.flush().unwrap();
            }
        }
        other => panic!("unknown helper command {other}"),
    }
}

/// A reader that delivers 16 KiB every 2 ms, so that object 2 (900 KiB) takes over 100 ms
/// and the kills below (3 to 40 ms after it begins) land in the middle of it.
struct Dribble<'a>(&'a [u8]);

impl Read for Dribble<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        std::thread::sleep(Duration::from_millis(2));
        let n = buf.len().min(self.0.len()).min(16 * 1024);
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

fn spawn_helper(spec: &[&str]) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "helper_process",
            "--ignored",
            "--nocapture",
            "--quiet",
        ])
        .env(HELPER_ENV, spec.join("\t"))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

fn mode_name(mode: TempFiles) -> &'static str {
    match mode {
        TempFiles::Anonymous => "anonymous",
        TempFiles::Named => "named",
    }
}

#[test]
fn concurrent_processes_adding_the_same_content_leave_one_object() {
    for mode in [TempFiles::Anonymous, TempFiles::Named] {
        let (d, store) = new_store(mode);
        let root = store.root().to_str().unwrap().to_owned();
        let children: Vec<Child> = (0..4)
            .map(|_| spawn_helper(&["same", &root, mode_name(mode)]))
            .collect();
        std::thread::sleep(Duration::from_millis(300));
        fs::write(PathBuf::from(&root).with_extension("go"), b"").unwrap();
        let expected = to_hex(&verity::digest(&content(9)));
        for child in children {
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success());
            let printed = String::from_utf8(out.stdout).unwrap();
            assert!(printed.lines().any(|l| l == expected), "{printed}");
        }
        let digest = verity::digest(&content(9));
        assert_eq!(
            listing(store.root()),
            vec![object_path(&digest)],
            "{mode:?}"
        );
        assert_eq!(fs::read(store.path_of(&digest)).unwrap(), content(9));
        drop(d);
    }
}

/// Kills a writer with SIGKILL in the middle of an object, several times and at several
/// moments: no object name ever holds partial content, at most the one temporary being
/// written is left (named mode only), and a second run completes the store.
#[test]
fn a_killed_writer_leaves_no_partial_object() {
    for mode in [TempFiles::Anonymous, TempFiles::Named] {
        let mut left_temporaries = 0;
        for (round, delay_ms) in [3u64, 17, 40].into_iter().enumerate() {
            let (_d, store) = new_store(mode);
            let root = store.root().to_str().unwrap().to_owned();
            let mut child = spawn_helper(&["fill", &root, mode_name(mode), "slow"]);
            let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
            // Let two objects complete, then kill while the third (or later) is written.
            let mut begun = 0;
            for line in &mut lines {
                let line = line.unwrap();
                if let Some(k) = line.strip_prefix("begin ") {
                    begun = k.parse().unwrap();
                    if begun == 2 {
                        break;
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(delay_ms));
            child.kill().unwrap();
            child.wait().unwrap();
            for line in lines {
                if let Some(k) = line.unwrap().strip_prefix("begin ") {
                    begun = k.parse().unwrap();
                }
            }

            let report = store.verify().unwrap();
            let temporaries = report
                .problems
                .iter()
                .filter(|p| matches!(p.kind, ProblemKind::Temporary))
                .count();
            assert_eq!(
                temporaries,
                report.problems.len(),
                "{mode:?} round {round}: only temporaries may be left: {:?}",
                report.problems
            );
            match mode {
                TempFiles::Anonymous => assert_eq!(temporaries, 0),
                TempFiles::Named => assert!(temporaries <= 1),
            }
            assert!(report.valid >= 2, "objects 0 and 1 were complete");
            for k in 0..=begun {
                let d = verity::digest(&content(k));
                match store.verify_object(&d).unwrap() {
                    ObjectStatus::Valid => assert!(k <= begun),
                    ObjectStatus::Missing => assert_eq!(k, begun, "only the last may be missing"),
                    other => panic!("object {k}: {other:?}"),
                }
            }
            assert_eq!(store.remove_stale_temporaries().unwrap(), temporaries);
            left_temporaries += temporaries;

            // The next run completes the store.
            for k in 0..=begun {
                store.add_bytes(&content(k)).unwrap();
            }
            let report = store.verify().unwrap();
            assert!(report.problems.is_empty(), "{:?}", report.problems);
            assert_eq!(report.valid, begun as u64 + 1);
        }
        if mode == TempFiles::Named {
            // The kills landed while objects were being written (a named temporary exists
            // from the start of an object until after its link), not between objects.
            assert!(
                left_temporaries >= 2,
                "{left_temporaries} of 3 kills hit a write"
            );
        }
    }
}
