//! Parses a composefs dump file into a tree, in strict mode, and reports how long that
//! took inside the process.
//!
//! Usage: `parse [--repeat N] DUMP`
//!
//! This is the parser's benchmark (`bench/compare.py` row 1c, BENCHMARKS.md): the dump is
//! read into memory once, then parsed N times (default 1). Standard output gets the entry
//! count of the tree; standard error gets the median time of one parse (`parse_ms`),
//! without process start-up, file reading or freeing the tree.

use std::process::ExitCode;
use std::time::Instant;

use composefs_format::dumpfile::{parse_bytes, ParseOptions};

#[path = "shared/timing.rs"]
mod timing;

fn main() -> ExitCode {
    let (repeat, path) = match timing::repeat_and_file("parse", "DUMP") {
        Ok(args) => args,
        Err(code) => return code,
    };
    let text = match std::fs::read(&path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("parse: {path}: {e}");
            return ExitCode::from(2);
        }
    };
    let mut times = Vec::with_capacity(repeat);
    let mut entries = 0;
    for _ in 0..repeat {
        let start = Instant::now();
        let parsed = parse_bytes(&text, ParseOptions::strict());
        times.push(start.elapsed());
        match parsed {
            Ok(p) => entries = p.tree.len(),
            Err(e) if e.line == 0 => {
                eprintln!("parse: {path}: {e}");
                return ExitCode::FAILURE;
            }
            Err(e) => {
                eprintln!("parse: {path}:{e}");
                return ExitCode::FAILURE;
            }
        }
    }
    println!("entries {entries}");
    eprintln!("parse_ms {:.3}", timing::median_ms(times));
    ExitCode::SUCCESS
}
