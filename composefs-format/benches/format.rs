//! Micro-benchmarks of the hot paths on the largest upstream vector,
//! `cs9-x86_64-developer.dump.gz` (64 246 entries): dump parsing, writing (plan + emit
//! into a `Vec`), the full reader walk, directory lookup, and fs-verity hashing of 1 MiB.
//!
//! `cargo bench -p composefs-format --bench format -- --quick` runs them in about a
//! minute; BENCHMARKS.md has the figures. The whole-tool comparisons with the reference
//! and composefs-rs are in `bench/compare.py`.

use std::hint::black_box;
use std::io::Read;
use std::time::Duration;

use composefs_format::dumpfile::{parse_bytes, ParseOptions};
use composefs_format::image::Image;
use composefs_format::ondisk::FileType;
use composefs_format::verity::FsVerityHasher;
use composefs_format::write::{plan, Options};
use criterion::{Criterion, Throughput};

#[path = "../examples/walk/totals.rs"]
mod totals;

const DUMP: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/data/upstream/cs9-x86_64-developer.dump.gz"
);

fn dump_text() -> Vec<u8> {
    let gz = std::fs::read(DUMP).unwrap_or_else(|e| panic!("{DUMP}: {e}"));
    let mut text = Vec::new();
    flate2::read::GzDecoder::new(gz.as_slice())
        .read_to_end(&mut text)
        .unwrap_or_else(|e| panic!("{DUMP}: {e}"));
    text
}

fn image_of(text: &[u8]) -> Vec<u8> {
    let tree = parse_bytes(text, ParseOptions::strict()).unwrap().tree;
    let mut out = Vec::new();
    plan(&tree, &Options::default())
        .unwrap()
        .emit(&mut out)
        .unwrap();
    out
}

fn bench_parse(c: &mut Criterion) {
    let text = dump_text();
    let mut g = c.benchmark_group("dump");
    g.throughput(Throughput::Bytes(text.len() as u64));
    g.bench_function("parse cs9-developer (strict)", |b| {
        b.iter(|| parse_bytes(black_box(&text), ParseOptions::strict()).unwrap())
    });
    g.finish();
}

fn bench_write(c: &mut Criterion) {
    let tree = parse_bytes(&dump_text(), ParseOptions::strict())
        .unwrap()
        .tree;
    let mut g = c.benchmark_group("write");
    g.bench_function("plan cs9-developer", |b| {
        b.iter(|| plan(black_box(&tree), &Options::default()).unwrap())
    });
    g.bench_function("plan + emit cs9-developer into a Vec", |b| {
        b.iter(|| {
            let mut out = Vec::with_capacity(10 << 20);
            plan(black_box(&tree), &Options::default())
                .unwrap()
                .emit(&mut out)
                .unwrap();
            out
        })
    });
    g.finish();
}

fn bench_read(c: &mut Criterion) {
    let bytes = image_of(&dump_text());
    let image = Image::open(&bytes).unwrap();
    let expected = totals::walk(&image).unwrap();
    let mut g = c.benchmark_group("read");
    g.throughput(Throughput::Elements(expected.inodes));
    g.bench_function("open + walk cs9-developer", |b| {
        b.iter(|| {
            let t = totals::walk(&Image::open(black_box(&bytes)).unwrap()).unwrap();
            assert_eq!(t, expected);
        })
    });

    // The largest directory, every one of its names looked up by binary search.
    let (dir, names) = largest_dir(&image);
    g.throughput(Throughput::Elements(names.len() as u64));
    g.bench_function(
        format!(
            "lookup each of the {} names of the largest dir",
            names.len()
        ),
        |b| {
            b.iter(|| {
                for name in &names {
                    black_box(dir.lookup(black_box(name)).unwrap().unwrap());
                }
            })
        },
    );
    g.finish();
}

fn largest_dir<'a>(image: &Image<'a>) -> (composefs_format::dir::Dir<'a>, Vec<Vec<u8>>) {
    let mut best: Option<(composefs_format::dir::Dir<'a>, Vec<Vec<u8>>)> = None;
    let mut stack = vec![image.root_nid()];
    while let Some(nid) = stack.pop() {
        let dir = image.inode(nid).unwrap().dir().unwrap();
        let mut names = Vec::new();
        for d in dir.entries() {
            let d = d.unwrap();
            if d.name() == b"." || d.name() == b".." {
                continue;
            }
            if d.file_type() == FileType::Directory {
                stack.push(d.nid());
            }
            names.push(d.name().to_vec());
        }
        if best.as_ref().map_or(true, |(_, b)| names.len() > b.len()) {
            best = Some((dir, names));
        }
    }
    best.unwrap()
}

fn bench_verity(c: &mut Criterion) {
    // Deterministic, incompressible-looking bytes (xorshift).
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let data: Vec<u8> = (0..1 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let mut g = c.benchmark_group("verity");
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.bench_function("FsVerityHasher 1 MiB", |b| {
        b.iter(|| {
            let mut h = FsVerityHasher::new();
            h.update(black_box(&data)).unwrap();
            h.finalize()
        })
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

fn main() {
    let mut c = config().configure_from_args();
    bench_parse(&mut c);
    bench_write(&mut c);
    bench_read(&mut c);
    bench_verity(&mut c);
    c.final_summary();
}
