//! Parse speed on the largest upstream dump against the reference's whole
//! `mkcomposefs --from-file` process. Timing-dependent, so ignored by default:
//! `cargo test --release -p composefs-conformance --test dumpfile_perf -- --ignored --nocapture`.

use std::process::Command;
use std::time::{Duration, Instant};

use composefs_conformance::{read_data, reference_tool, skip};
use composefs_format::dumpfile::{self, ParseOptions, PrintOptions};

/// Best of `runs` timings of `f`; what `f` returns is dropped outside the timing.
fn best_of<T>(runs: usize, mut f: impl FnMut() -> T) -> Duration {
    (0..runs)
        .map(|_| {
            let start = Instant::now();
            let value = f();
            let took = start.elapsed();
            drop(std::hint::black_box(value));
            took
        })
        .min()
        .unwrap_or_default()
}

#[test]
#[ignore = "timing; run in release with --ignored"]
fn cs9_developer_parses_in_a_tenth_of_the_reference_time() {
    let text = read_data("upstream/cs9-x86_64-developer.dump.gz");
    let parsed = dumpfile::parse_bytes(&text, ParseOptions::strict()).expect("parse");
    assert_eq!(parsed.tree.len(), 64_246);
    let parse = best_of(15, || {
        dumpfile::parse_bytes(&text, ParseOptions::strict()).expect("parse")
    });
    let print = best_of(15, || {
        let mut out = Vec::with_capacity(text.len());
        dumpfile::print_dump(&parsed.tree, &PrintOptions::default(), &mut out).expect("print");
        out
    });
    println!(
        "cs9-developer: {} bytes, parse {parse:?}, print {print:?}",
        text.len()
    );

    if cfg!(debug_assertions) {
        return skip("timing comparison needs a release build");
    }
    let Some(mkcomposefs) = reference_tool("mkcomposefs") else {
        return skip("reference mkcomposefs not installed");
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("cs9.dump");
    std::fs::write(&input, &text).expect("write");
    let reference = best_of(5, || {
        let status = Command::new(&mkcomposefs)
            .arg("--from-file")
            .arg(&input)
            .arg(dir.path().join("cs9.cfs"))
            .status()
            .expect("mkcomposefs");
        assert!(status.success());
    });
    println!("reference mkcomposefs --from-file: {reference:?}");
    assert!(
        parse * 10 <= reference,
        "parse {parse:?} vs reference {reference:?}"
    );
}
