//! The committed fs-verity vectors (`data/verity/vectors.tsv`, from fsverity-utils 1.5)
//! through every digest path: the no_std hasher, parallel hashing of memory and files,
//! `measure_file` (kernel first, userspace fallback), and, when installed, the reference
//! `composefs-info measure-file` and the `fsverity` tool.

use std::io::Write;
use std::num::NonZeroUsize;
use std::process::Command;

use composefs_conformance::{hex, read_data, reference_tool, skip};
use composefs_format::verity;
use composefs_std::verity as std_verity;

struct Vector {
    content: Vec<u8>,
    digest: String,
    merkle_bytes: u64,
}

fn vectors() -> Vec<Vector> {
    let text = String::from_utf8(read_data("verity/vectors.tsv")).unwrap();
    let rows: Vec<Vector> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|line| {
            let f: Vec<&str> = line.split('\t').collect();
            let size: usize = f[1].parse().unwrap();
            let content = match f[0] {
                "zeros" => vec![0; size],
                "pattern" => (0..size).map(|k| (k % 251) as u8).collect(),
                lit => lit.strip_prefix("literal:").unwrap().as_bytes().to_vec(),
            };
            assert_eq!(content.len(), size, "{line}");
            Vector {
                content,
                digest: f[2].to_owned(),
                merkle_bytes: f[3].parse().unwrap(),
            }
        })
        .collect();
    assert_eq!(rows.len(), 24, "22 notes vectors plus 2");
    rows
}

fn threads(n: usize) -> NonZeroUsize {
    NonZeroUsize::new(n).unwrap()
}

/// The vector's content in a file (on the test filesystem, ext4 or tmpfs).
fn file_with(content: &[u8]) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(content).unwrap();
    f.flush().unwrap();
    f
}

#[test]
fn no_std_hasher_and_merkle_sizes() {
    for v in vectors() {
        let n = v.content.len();
        assert_eq!(hex(&verity::digest(&v.content)), v.digest, "size {n}");
        assert_eq!(
            verity::merkle_tree_size(n as u64),
            v.merkle_bytes,
            "size {n}"
        );
    }
}

#[test]
fn parallel_memory_digest_on_1_to_3_threads() {
    for v in vectors() {
        for t in 1..=3 {
            let d = std_verity::digest_bytes(&v.content, threads(t));
            assert_eq!(hex(&d), v.digest, "size {}, {t} threads", v.content.len());
        }
    }
}

#[test]
fn file_digest_and_measure_file() {
    for v in vectors() {
        let f = file_with(&v.content);
        let file = std::fs::File::open(f.path()).unwrap();
        for t in [1, 2, 4] {
            let d = std_verity::digest_file(&file, threads(t)).unwrap();
            assert_eq!(hex(&d), v.digest, "size {}, {t} threads", v.content.len());
        }
        let m = std_verity::measure_file(&file, threads(2)).unwrap();
        assert_eq!(hex(&m), v.digest, "measure_file, size {}", v.content.len());
    }
}

#[test]
fn reference_measure_file_agrees_except_for_the_empty_file() {
    let Some(tool) = reference_tool("composefs-info") else {
        return skip("reference composefs-info not installed");
    };
    for v in vectors() {
        let f = file_with(&v.content);
        let out = Command::new(&tool)
            .arg("measure-file")
            .arg(f.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let printed = String::from_utf8(out.stdout).unwrap();
        if v.content.is_empty() {
            // libcomposefs hashes one zero block for an empty file (SPEC.md section 10).
            assert_eq!(
                printed.trim(),
                "cfc3391077edfd51859f6e5e16e03f82b1da3ee1a35d418b0d0b3b57740b4405"
            );
            assert_ne!(printed.trim(), v.digest);
        } else {
            assert_eq!(printed.trim(), v.digest, "size {}", v.content.len());
        }
    }
}

#[test]
fn fsverity_utils_agrees() {
    let probe = Command::new("fsverity").arg("--version").output();
    if !probe.is_ok_and(|o| o.status.success()) {
        return skip("fsverity (fsverity-utils) not installed");
    }
    for v in vectors().into_iter().filter(|v| v.content.len() < 2 << 20) {
        let f = file_with(&v.content);
        let out = Command::new("fsverity")
            .args([
                "digest",
                "--hash-alg=sha256",
                "--block-size=4096",
                "--compact",
            ])
            .arg(f.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8(out.stdout).unwrap().trim(), v.digest);
    }
}

/// composefs-rs 0.9.4 panics here ("cannot add data after a partial block").
#[test]
fn measure_file_on_a_pipe_delivering_3_x_5000_bytes() {
    let (reader, mut writer) = std::io::pipe().unwrap();
    let data: Vec<u8> = (0..15_000).map(|k| (k % 251) as u8).collect();
    let feed = data.clone();
    let t = std::thread::spawn(move || {
        for chunk in feed.chunks(5000) {
            writer.write_all(chunk).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    });
    let file = std::fs::File::from(std::os::fd::OwnedFd::from(reader));
    let d = std_verity::measure_file(&file, threads(2)).unwrap();
    t.join().unwrap();
    assert_eq!(d, verity::digest(&data));
}
