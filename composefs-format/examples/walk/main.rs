//! Reads every inode, dirent, xattr and symlink target of a composefs image through the
//! public reader API, and prints what it saw.
//!
//! Usage: `walk [--repeat N] IMAGE`
//!
//! This is the reader's benchmark (`bench/compare.py`, BENCHMARKS.md): the whole image is
//! read into memory once, then walked N times (default 1) from the root with an explicit
//! stack, each inode visited once however many names it has. Standard output gets one
//! line of totals, which `bench/compare.py` compares with the composefs-rs walk of the
//! same image; standard error gets the median in-process time of one walk, without
//! process start-up and file reading.

use std::process::ExitCode;
use std::time::Instant;

use composefs_format::image::Image;

#[path = "../shared/timing.rs"]
mod timing;
mod totals;
use totals::walk;

fn main() -> ExitCode {
    let (repeat, path) = match timing::repeat_and_file("walk", "IMAGE") {
        Ok(args) => args,
        Err(code) => return code,
    };
    let data = match std::fs::read(&path) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("walk: {path}: {e}");
            return ExitCode::from(2);
        }
    };
    let mut times = Vec::with_capacity(repeat);
    let mut last = None;
    for _ in 0..repeat {
        let start = Instant::now();
        let result = Image::open(&data).and_then(|image| walk(&image));
        times.push(start.elapsed());
        match result {
            Ok(t) if last.is_none() || last == Some(t) => last = Some(t),
            Ok(_) => {
                eprintln!("walk: {path}: two walks of the same bytes disagree");
                return ExitCode::FAILURE;
            }
            Err(e) => {
                eprintln!("walk: {path}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let Some(t) = last else {
        return ExitCode::FAILURE;
    };
    println!(
        "inodes {} dirents {} xattrs {} xattr_bytes {} symlink_bytes {} sizes {} meta {}",
        t.inodes, t.dirents, t.xattrs, t.xattr_bytes, t.symlink_bytes, t.sizes, t.meta
    );
    eprintln!("walk_ms {:.3}", timing::median_ms(times));
    ExitCode::SUCCESS
}
