//! What the timing examples (`walk`, `parse`) share: the `[--repeat N] FILE` command line
//! and the median of their timings.

use std::process::ExitCode;
use std::time::Duration;

/// `[--repeat N] FILE` from the process arguments: the repeat count (default 1) and FILE.
///
/// # Errors
/// A usage message for `program` on standard error, and exit code 2.
pub fn repeat_and_file(program: &str, file: &str) -> Result<(usize, String), ExitCode> {
    let usage = |why: &str| {
        eprintln!("{program}: {why}\nusage: {program} [--repeat N] {file}");
        ExitCode::from(2)
    };
    let mut repeat = 1usize;
    let mut path = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--repeat" => match args.next().and_then(|n| n.parse().ok()) {
                Some(n) if n > 0 => repeat = n,
                _ => return Err(usage("--repeat needs a positive number")),
            },
            _ if path.is_none() => path = Some(arg),
            _ => return Err(usage(&format!("one {file} only"))),
        }
    }
    match path {
        Some(path) => Ok((repeat, path)),
        None => Err(usage(&format!("no {file}"))),
    }
}

/// The median of `times` in milliseconds (0 for none).
pub fn median_ms(mut times: Vec<Duration>) -> f64 {
    times.sort();
    let median = times
        .get(times.len() / 2)
        .copied()
        .unwrap_or(Duration::ZERO);
    median.as_secs_f64() * 1e3
}
