//! `composefs-info ls`, `dump`, `objects` and `missing-objects` print exactly what the
//! reference prints: for every upstream asset against the outputs committed under
//! `tests/data/expected/` (made once with the reference tool), and against the installed
//! reference tool itself, including several images at once and `--filter`. The
//! reference's redirect over-read is the one known difference, checked to be exactly that.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, missing_docs)]

mod info_support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use composefs_conformance::{read_data, reference_tool, sha256_hex, skip};
use info_support::{
    code, image_of_asset, image_of_dump, imageable_assets, info, run, stem, write_file,
};

/// The commands compared.
const LISTINGS: [&str; 3] = ["dump", "ls", "objects"];

/// What a command must print for an asset: the committed text, or its sha256 for the
/// large assets.
enum Expected {
    Text(Vec<u8>),
    Sha256(String),
}

impl Expected {
    fn of(stem: &str, command: &str) -> Self {
        let dir = composefs_conformance::data_dir().join("expected");
        let sha = dir.join(format!("{stem}.{command}.sha256"));
        if sha.exists() {
            return Self::Sha256(std::fs::read_to_string(sha).unwrap().trim().to_owned());
        }
        Self::Text(read_data(&format!("expected/{stem}.{command}")))
    }

    fn assert_matches(&self, label: &str, got: &[u8]) {
        match self {
            Self::Text(want) => assert!(
                got == want.as_slice(),
                "{label}: output differs from the reference's\n--- got\n{}\n--- want\n{}",
                String::from_utf8_lossy(got),
                String::from_utf8_lossy(want)
            ),
            Self::Sha256(want) => assert_eq!(&sha256_hex(got), want, "{label}"),
        }
    }
}

/// Runs our composefs-info with `args` and returns stdout, requiring success and silence
/// on stderr.
fn ours(args: &[&std::ffi::OsStr]) -> Vec<u8> {
    let mut cmd = info();
    cmd.args(args);
    let out = run(cmd);
    assert_eq!(
        code(&out),
        0,
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stderr.is_empty(), "{args:?}: {:?}", out.stderr);
    out.stdout
}

/// Runs the reference composefs-info with `args`; stdout, requiring success.
fn theirs(tool: &Path, args: &[&std::ffi::OsStr]) -> Vec<u8> {
    let out = run({
        let mut cmd = Command::new(tool);
        cmd.args(args);
        cmd
    });
    assert_eq!(
        code(&out),
        0,
        "reference {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn os(s: &str) -> &std::ffi::OsStr {
    std::ffi::OsStr::new(s)
}

/// Our images of every imageable asset, written to `dir`, by stem.
fn asset_images(dir: &Path) -> Vec<(String, PathBuf)> {
    imageable_assets()
        .iter()
        .map(|a| {
            let stem = stem(a).to_owned();
            let path = write_file(dir, &format!("{stem}.img"), &image_of_asset(a));
            (stem, path)
        })
        .collect()
}

#[test]
fn every_asset_prints_the_committed_reference_output() {
    let dir = tempfile::tempdir().unwrap();
    let empty_store = dir.path().join("store");
    std::fs::create_dir(&empty_store).unwrap();
    let basedir = format!("--basedir={}", empty_store.display());
    let images = asset_images(dir.path());
    for (stem, image) in &images {
        for command in LISTINGS {
            let got = ours(&[os(command), image.as_os_str()]);
            Expected::of(stem, command).assert_matches(&format!("{stem} {command}"), &got);
        }
        // With an empty store every object is missing.
        let got = ours(&[os(&basedir), os("missing-objects"), image.as_os_str()]);
        Expected::of(stem, "objects").assert_matches(&format!("{stem} missing-objects"), &got);
    }
    assert_eq!(images.len(), 12, "every asset with an image");
}

#[test]
fn large_asset_dumps_are_the_input_dumps() {
    // The reference prints each large asset exactly as its input (notes 4.7); the committed
    // digests say the same, this says it without them.
    let dir = tempfile::tempdir().unwrap();
    for asset in imageable_assets()
        .into_iter()
        .filter(|a| a.name.ends_with(".gz"))
    {
        let image = write_file(dir.path(), "a.img", &image_of_asset(&asset));
        assert!(
            ours(&[os("dump"), image.as_os_str()]) == asset.dump(),
            "{}",
            asset.name
        );
    }
}

#[test]
fn several_images_print_in_turn_and_objects_are_their_union() {
    let dir = tempfile::tempdir().unwrap();
    let images = asset_images(dir.path());
    let pick = |name: &str| images.iter().find(|(s, _)| s == name).unwrap().1.clone();
    let (a, b, c) = (pick("special"), pick("longlink"), pick("bigfile"));
    let text = |stem: &str, command: &str| match Expected::of(stem, command) {
        Expected::Text(t) => t,
        Expected::Sha256(_) => unreachable!("small assets are committed as text"),
    };
    for command in ["dump", "ls"] {
        let got = ours(&[os(command), a.as_os_str(), b.as_os_str(), a.as_os_str()]);
        let want = [
            text("special", command),
            text("longlink", command),
            text("special", command),
        ]
        .concat();
        assert!(got == want, "{command} of three images");
    }
    let got = ours(&[os("objects"), a.as_os_str(), b.as_os_str(), c.as_os_str()]);
    let mut want = BTreeSet::new();
    for stem in ["special", "longlink", "bigfile"] {
        for line in text(stem, "objects").split(|&b| b == b'\n') {
            if !line.is_empty() {
                want.insert(line.to_vec());
            }
        }
    }
    let want: Vec<u8> = want
        .into_iter()
        .flat_map(|mut l| {
            l.push(b'\n');
            l
        })
        .collect();
    assert_eq!(
        String::from_utf8(got).unwrap(),
        String::from_utf8(want).unwrap()
    );
}

#[test]
fn filter_keeps_the_named_top_level_entries_as_the_reference_test_suite_expects() {
    // tests/test-dump-filtered.sh of the reference: four lines, the root and three entries.
    let dir = tempfile::tempdir().unwrap();
    let asset = imageable_assets()
        .into_iter()
        .find(|a| a.name == "special.dump")
        .unwrap();
    let image = write_file(dir.path(), "special.img", &image_of_asset(&asset));
    let got = ours(&[
        os("--filter=chardev"),
        os("--filter=inline"),
        os("dump"),
        os("--filter=whiteout"),
        image.as_os_str(),
    ]);
    let got = String::from_utf8(got).unwrap();
    let lines: Vec<&str> = got.lines().collect();
    assert_eq!(lines.len(), 4, "{got}");
    assert!(lines[0].starts_with("/ 4096 40555 ") && lines[0].contains(" trusted.foo1=bar-1"));
    assert!(lines[1].starts_with("/chardev 0 20777 "));
    assert!(lines[2].starts_with("/inline 15 100777 ") && lines[2].contains(" FOOBAR"));
    assert!(lines[3].starts_with("/whiteout 0 20777 "));
    let ls = ours(&[os("--filter=inline"), os("ls"), image.as_os_str()]);
    assert_eq!(String::from_utf8(ls).unwrap(), "/inline\n");
}

/// A dump whose backing paths have every length modulo 4, so one (`ab/cdef`) triggers the
/// reference's redirect over-read (`len("/" + payload) % 4 == 0`); a hard link too.
fn over_read_dump() -> Vec<u8> {
    let mut text = String::from("/ 4096 40755 2 0 0 0 0.0 - - -\n");
    for (name, payload) in [
        ("a", "ab/c"),
        ("b", "ab/cd"),
        ("c", "ab/cde"),
        ("d", "ab/cdef"),
        ("e", "ab/cdefg"),
    ] {
        text.push_str(&format!(
            "/{name} 100000 100644 {} 0 0 0 0.0 {payload} - {}\n",
            if name == "c" { 2 } else { 1 },
            "7".repeat(64)
        ));
    }
    text.push_str("/f 0 @100644 2 0 0 0 0.0 /c - -\n");
    text.into_bytes()
}

#[test]
fn backing_paths_print_exactly_without_the_reference_over_read() {
    let dir = tempfile::tempdir().unwrap();
    let image = write_file(
        dir.path(),
        "o.img",
        &image_of_dump(&over_read_dump(), None, true),
    );
    let objects = ours(&[os("objects"), image.as_os_str()]);
    assert_eq!(
        String::from_utf8(objects).unwrap(),
        "ab/c\nab/cd\nab/cde\nab/cdef\nab/cdefg\n"
    );
    // The dump prints the tree back: hard link included, in full at its first entry.
    let dump = ours(&[os("dump"), image.as_os_str()]);
    let digest = "7".repeat(64);
    let want = format!(
        "/ 4096 40755 2 0 0 0 0.0 - - - trusted.overlay.opaque=y\n\
         /a 100000 100644 1 0 0 0 0.0 ab/c - {digest}\n\
         /b 100000 100644 1 0 0 0 0.0 ab/cd - {digest}\n\
         /c 100000 100644 2 0 0 0 0.0 ab/cde - {digest}\n\
         /d 100000 100644 1 0 0 0 0.0 ab/cdef - {digest}\n\
         /e 100000 100644 1 0 0 0 0.0 ab/cdefg - {digest}\n\
         /f 100000 @100644 2 0 0 0 0.0 /c - {digest}\n"
    );
    let dump = String::from_utf8(dump).unwrap();
    assert_eq!(
        dump.lines().skip(1).collect::<Vec<_>>(),
        want.lines().skip(1).collect::<Vec<_>>()
    );
    let ls = ours(&[os("ls"), image.as_os_str()]);
    assert_eq!(
        String::from_utf8(ls).unwrap(),
        "/a\t@ ab/c\n/b\t@ ab/cd\n/c\t@ ab/cde\n/d\t@ ab/cdef\n/e\t@ ab/cdefg\n/f\n"
    );

    let Some(tool) = reference_tool("composefs-info") else {
        return skip("reference composefs-info not installed");
    };
    // The reference prints the 2 bytes after the value of `/ab/cdef` (8 bytes, so no
    // padding follows it): the chunk map's first entry, a hole (0xffffffff). Our output is
    // the reference's with exactly those bytes removed.
    let lines = |text: &[u8]| -> BTreeSet<Vec<u8>> {
        text.split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(<[u8]>::to_vec)
            .collect()
    };
    let reference = lines(&theirs(&tool, &[os("objects"), image.as_os_str()]));
    let ours = lines(&ours(&[os("objects"), image.as_os_str()]));
    let only_theirs: Vec<&Vec<u8>> = reference.difference(&ours).collect();
    let only_ours: Vec<&Vec<u8>> = ours.difference(&reference).collect();
    assert_eq!(
        only_theirs,
        [&b"ab/cdef\xff\xff".to_vec()],
        "the reference over-read changed"
    );
    assert_eq!(only_ours, [&b"ab/cdef".to_vec()]);
}

#[test]
fn every_output_matches_the_installed_reference_tool() {
    let Some(tool) = reference_tool("composefs-info") else {
        return skip("reference composefs-info not installed");
    };
    let dir = tempfile::tempdir().unwrap();
    let images = asset_images(dir.path());
    // A store holding every other object of every image (and a directory in place of one
    // more, which exists and so is not missing, as for the reference).
    let store = dir.path().join("store");
    std::fs::create_dir(&store).unwrap();
    let all: Vec<&std::ffi::OsStr> = images.iter().map(|(_, p)| p.as_os_str()).collect();
    let objects = ours(&[&[os("objects")][..], &all].concat());
    for (i, line) in objects
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .enumerate()
    {
        let path = store.join(std::str::from_utf8(line).unwrap());
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        match i % 3 {
            0 => std::fs::write(&path, b"x").unwrap(),
            1 => std::fs::create_dir(&path).unwrap(),
            _ => {}
        }
    }
    let basedir = format!("--basedir={}", store.display());
    let mut compared = 0;
    for (stem, image) in &images {
        for command in LISTINGS {
            let args = [os(command), image.as_os_str()];
            assert!(ours(&args) == theirs(&tool, &args), "{stem} {command}");
            compared += 1;
        }
        let args = [os(&basedir), os("missing-objects"), image.as_os_str()];
        assert!(
            ours(&args) == theirs(&tool, &args),
            "{stem} missing-objects"
        );
    }
    // All images at once, and filters.
    for command in ["dump", "ls", "objects"] {
        let args = [&[os(command)][..], &all].concat();
        assert!(
            ours(&args) == theirs(&tool, &args),
            "{command} of all images"
        );
    }
    let args = [&[os(&basedir), os("missing-objects")][..], &all].concat();
    assert!(
        ours(&args) == theirs(&tool, &args),
        "missing-objects of all images"
    );
    // Filters, on images with those top-level names (not the largest, to save time).
    let some: Vec<&std::ffi::OsStr> = images
        .iter()
        .filter(|(s, _)| ["config", "cs9-x86_64-minimal", "special"].contains(&s.as_str()))
        .map(|(_, p)| p.as_os_str())
        .collect();
    assert_eq!(some.len(), 3);
    for filter in [
        &["--filter=usr"][..],
        &["--filter=etc", "--filter=boot"],
        &["--filter=nope"],
    ] {
        for command in LISTINGS {
            let args = [
                filter.iter().map(|f| os(f)).collect::<Vec<_>>(),
                vec![os(command)],
                some.clone(),
            ]
            .concat();
            assert!(ours(&args) == theirs(&tool, &args), "{filter:?} {command}");
        }
    }
    assert_eq!(compared, 36);
}
