//! Prints the fs-verity digest of each FILE, like `fsverity digest --compact`.
//!
//! Usage: `verity-digest [--threads N] [--mmap] [--plain-sha256] FILE...`
//!
//! `--threads N` hashes each file on N threads (default 1); `--mmap` maps the file instead
//! of reading it with `pread`; `--plain-sha256` prints the plain SHA-256 of the mapped file
//! instead (one thread, one SHA-256 stream: what single-stream hashing reaches). Used by
//! `bench/verity-digest.py`.

use std::num::NonZeroUsize;
use std::process::ExitCode;

use composefs_std::verity::{digest_bytes, digest_file, to_hex};

fn main() -> ExitCode {
    let mut threads = NonZeroUsize::MIN;
    let mut mmap = false;
    let mut plain = false;
    let mut files = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--threads" => match args.next().and_then(|n| n.parse().ok()) {
                Some(n) => threads = n,
                None => {
                    eprintln!("verity-digest: --threads needs a positive number");
                    return ExitCode::from(2);
                }
            },
            "--mmap" => mmap = true,
            "--plain-sha256" => plain = true,
            _ => files.push(arg),
        }
    }
    for path in &files {
        let digest = if plain {
            use sha2::Digest;
            composefs_std::mmap::MappedFile::open(path).map(|m| sha2::Sha256::digest(&*m).into())
        } else if mmap {
            composefs_std::mmap::MappedFile::open(path).map(|m| digest_bytes(&m, threads))
        } else {
            std::fs::File::open(path).and_then(|f| digest_file(&f, threads))
        };
        match digest {
            Ok(d) => println!("{}", to_hex(&d)),
            Err(e) => {
                eprintln!("verity-digest: {path}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}
