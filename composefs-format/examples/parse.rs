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
use std::time::{Duration, Instant};

use composefs_format::dumpfile::{parse_bytes, ParseOptions};

fn main() -> ExitCode {
    let mut repeat = 1usize;
    let mut path = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--repeat" => match args.next().and_then(|n| n.parse().ok()) {
                Some(n) if n > 0 => repeat = n,
                _ => return usage("--repeat needs a positive number"),
            },
            _ if path.is_none() => path = Some(arg),
            _ => return usage("one DUMP only"),
        }
    }
    let Some(path) = path else {
        return usage("no DUMP");
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
    times.sort();
    let median = times
        .get(times.len() / 2)
        .copied()
        .unwrap_or(Duration::ZERO);
    eprintln!("parse_ms {:.3}", median.as_secs_f64() * 1e3);
    ExitCode::SUCCESS
}

fn usage(why: &str) -> ExitCode {
    eprintln!("parse: {why}\nusage: parse [--repeat N] DUMP");
    ExitCode::from(2)
}
