//! Writes the seed corpora of the fuzz targets into `fuzz/corpus/<target>/` (or the
//! directory given as the only argument), from committed inputs only
//! (`cargo run -p composefs-conformance --example gen_fuzz_corpus`). It lives in the
//! conformance package because it needs its helpers, and so reuses the workspace build:
//!
//! - dumps: the upstream conformance dumps (`tests/data/upstream`, the large ones cut to
//!   their first lines), the expected dumps, and `gen-dump.py` outputs for a few seeds;
//! - images: our writer's image of every dump that parses and writes (small enough), the
//!   reference images committed in `tests/data/images`, and every hostile image of the
//!   hostile-image generator (`composefs_conformance::hostile`);
//! - byte strings for the targets that build trees from raw bytes (deterministic
//!   pseudo-random).
//!
//! Existing files are kept (corpora accumulate across runs); seeds are named by what they
//! came from.

use std::fs;
use std::path::{Path, PathBuf};

use composefs_conformance::{data_dir, gen_dump, hostile, read_data, upstream_assets};
use composefs_format::dumpfile::{parse_bytes, ParseOptions};
use composefs_format::write::{write_image, Options};

/// Images larger than this are left out: they slow every execution down.
const MAX_IMAGE: usize = 256 << 10;
/// Dumps larger than this are cut to their first lines.
const MAX_DUMP: usize = 64 << 10;
/// Lines kept of a large dump.
const HEAD_LINES: usize = 200;

struct Out {
    root: PathBuf,
    written: usize,
}

impl Out {
    fn put(&mut self, target: &str, name: &str, bytes: &[u8]) {
        let dir = self.root.join(target);
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let safe: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let path = dir.join(format!("seed-{safe}"));
        fs::write(&path, bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        self.written += 1;
    }
}

/// The first `HEAD_LINES` lines of a dump that is too large to fuzz whole. Upstream dumps
/// list parents before children, so a prefix is a valid dump (hard links to later lines
/// make it fail, which is a fine seed too).
fn head(dump: &[u8]) -> Vec<u8> {
    if dump.len() <= MAX_DUMP {
        return dump.to_vec();
    }
    let mut out = Vec::new();
    for line in dump.split_inclusive(|&b| b == b'\n').take(HEAD_LINES) {
        out.extend_from_slice(line);
    }
    out
}

/// Our image of `dump` at the given versions, if it parses, writes and is small enough.
fn image_of(dump: &[u8], strict: bool, options: &Options) -> Option<Vec<u8>> {
    let mode = if strict {
        ParseOptions::strict()
    } else {
        ParseOptions::lenient()
    };
    let parsed = parse_bytes(dump, mode).ok()?;
    let mut image = Vec::new();
    write_image(&parsed.tree, options, &mut image).ok()?;
    (image.len() <= MAX_IMAGE).then_some(image)
}

fn versions(v: Option<u32>) -> Vec<(&'static str, Options)> {
    match v {
        Some(0) => vec![(
            "v0",
            Options {
                min_version: 0,
                max_version: 0,
            },
        )],
        Some(_) => vec![(
            "v1",
            Options {
                min_version: 1,
                max_version: 1,
            },
        )],
        None => vec![
            ("default", Options::default()),
            (
                "v1",
                Options {
                    min_version: 1,
                    max_version: 1,
                },
            ),
        ],
    }
}

/// A dump for a target whose first byte is a control byte (dump_canonical): strict or
/// lenient, default or fixed versions.
fn with_control(out: &mut Out, name: &str, dump: &[u8], strict: bool) {
    let modes: &[u8] = if strict { &[1, 3, 5] } else { &[0, 2, 4] };
    for &control in modes {
        let input = [&[control][..], dump].concat();
        out.put("dump_canonical", &format!("{name}-c{control}"), &input);
    }
}

fn dumps(out: &mut Out) {
    let mut all: Vec<(String, Vec<u8>, bool, Option<u32>)> = Vec::new();
    for asset in upstream_assets() {
        all.push((
            asset.name.clone(),
            head(&asset.dump()),
            asset.strict,
            asset.version,
        ));
    }
    let expected = data_dir().join("expected");
    let mut names: Vec<PathBuf> = fs::read_dir(&expected)
        .unwrap_or_else(|e| panic!("{}: {e}", expected.display()))
        .filter_map(|e| Some(e.ok()?.path()))
        .collect();
    names.sort();
    for path in names {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("dump");
        let text = fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        all.push((format!("expected-{name}"), head(&text), false, None));
    }
    for seed in 0..12u64 {
        let entries = [5, 20, 60][(seed % 3) as usize];
        if let Some(d) = gen_dump(7000 + seed, entries, seed % 2 == 0) {
            all.push((format!("gen-{seed}-{entries}.dump"), d, true, None));
        }
    }
    for (name, dump, strict, version) in &all {
        out.put("dump_parse", name, dump);
        with_control(out, name, dump, *strict);
        for (tag, options) in versions(*version) {
            if let Some(image) = image_of(dump, *strict, &options) {
                let image_name = format!("{name}-{tag}.img");
                out.put("open_walk", &image_name, &image);
                out.put("check", &image_name, &image);
            }
        }
    }
}

fn images(out: &mut Out) {
    let dir = data_dir().join("images");
    let mut names: Vec<String> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".img.gz"))
        .collect();
    names.sort();
    for name in names {
        let image = read_data(&format!("images/{name}"));
        out.put("open_walk", &format!("reference-{name}"), &image);
        out.put("check", &format!("reference-{name}"), &image);
    }
    let map = hostile::Map::new();
    for (i, case) in hostile::cases().iter().enumerate() {
        let image = case.image(&map);
        let name = format!("hostile-{i:03}-row{}", case.row);
        out.put("open_walk", &name, &image);
        out.put("check", &name, &image);
    }
}

/// Deterministic pseudo-random inputs (xorshift) for the targets that read structure from
/// raw bytes.
fn bytes(out: &mut Out) {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for i in 0..48usize {
        let len = [64, 256, 1024, 4096][i % 4];
        let data: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        out.put("write_roundtrip", &format!("random-{i:02}"), &data);
        // The first byte picks the image: 0 = generated tree, 1.. = built-in seeds.
        let mut m = data.clone();
        m[0] = (i % 4) as u8;
        out.put("mutate_image", &format!("random-{i:02}"), &m);
    }
}

fn main() {
    let root = std::env::args_os().nth(1).map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus"),
        PathBuf::from,
    );
    let mut out = Out { root, written: 0 };
    dumps(&mut out);
    images(&mut out);
    bytes(&mut out);
    println!(
        "wrote {} seed files under {}",
        out.written,
        out.root.display()
    );
}
