//! `composefs-dump SRC DEST`: rewriting an image through its tree gives the same bytes for
//! every image a writer made (the upstream assets, the reference's images, a tree 2,500
//! levels deep); unsound sources are refused and DEST is never left partial.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, missing_docs)]

mod info_support;

use std::path::Path;
use std::process::Output;

use composefs_conformance::{dir_names, read_data};
use info_support::{
    code, dump_tool, image_of_asset, image_of_dump, imageable_assets, info, run, stem, write_file,
    OUT_OF_LINE_CHUNK_MAP,
};

fn rewrite(src: &Path, dest: &Path) -> Output {
    let mut cmd = dump_tool();
    cmd.arg(src).arg(dest);
    run(cmd)
}

/// Rewrites `bytes` and returns the result.
fn rewritten(dir: &Path, name: &str, bytes: &[u8]) -> Vec<u8> {
    let src = write_file(dir, &format!("{name}.img"), bytes);
    let dest = dir.join(format!("{name}.out"));
    let out = rewrite(&src, &dest);
    assert_eq!(
        code(&out),
        0,
        "{name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read(dest).unwrap()
}

#[test]
fn every_asset_image_is_rewritten_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    for asset in imageable_assets() {
        let image = image_of_asset(&asset);
        assert!(
            rewritten(dir.path(), stem(&asset), &image) == image,
            "{}",
            asset.name
        );
    }
}

#[test]
fn sound_reference_images_are_rewritten_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(composefs_conformance::data_dir().join("images")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let Some(stem) = name.strip_suffix(".img.gz") else {
            continue;
        };
        let image = read_data(&format!("images/{name}"));
        if OUT_OF_LINE_CHUNK_MAP.contains(&format!("{stem}.dump").as_str()) {
            // Unsound: refused, with the problem named.
            let src = write_file(dir.path(), &name, &image);
            let out = rewrite(&src, &dir.path().join("refused.out"));
            assert_eq!(code(&out), 1, "{stem}");
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                err.starts_with(&format!(
                    "composefs-dump: '{}' is not a sound image: nid ",
                    src.display()
                )) && err.contains("crosses a block boundary"),
                "{err}"
            );
            assert!(!dir.path().join("refused.out").exists());
            continue;
        }
        assert!(rewritten(dir.path(), stem, &image) == image, "{stem}");
    }
}

/// A chain of `depth` directories, each with a file and a symlink, as a dump.
fn deep_dump(depth: usize) -> Vec<u8> {
    let mut text = String::from("/ 4096 40755 2 0 0 0 0.0 - - -\n");
    let mut path = String::new();
    for level in 0..depth {
        path.push_str(&format!("/d{}", level % 10));
        text.push_str(&format!("{path} 4096 40755 2 0 0 0 0.0 - - -\n"));
        text.push_str(&format!("{path}/f 1 100644 1 0 0 0 0.0 - x -\n"));
        text.push_str(&format!("{path}/s 4 120777 1 0 0 0 0.0 ../f - -\n"));
    }
    text.into_bytes()
}

#[test]
fn a_tree_2500_levels_deep_is_rewritten_and_listed() {
    // The reference reader recurses per level and crashes below about 1,000 levels.
    let dir = tempfile::tempdir().unwrap();
    let image = image_of_dump(&deep_dump(2500), None, true);
    assert!(rewritten(dir.path(), "deep", &image) == image);
    let src = dir.path().join("deep.img");
    let mut cmd = info();
    cmd.arg("ls").arg(&src);
    let out = run(cmd);
    assert_eq!(code(&out), 0);
    assert_eq!(out.stdout.split(|&b| b == b'\n').count() - 1, 3 * 2500);
    let mut cmd = info();
    cmd.arg("dump").arg(&src);
    let out = run(cmd);
    assert_eq!(code(&out), 0);
    // The dump holds the paths of the input, and its file and symlink lines (in walk order,
    // which the input is not in; directory sizes and link counts are the image's).
    let lines = |text: &[u8], files: bool| -> Vec<Vec<u8>> {
        let mut lines: Vec<Vec<u8>> = text
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| {
                let mut fields = l.split(|&b| b == b' ');
                let path = fields.next().unwrap();
                let is_dir = fields.nth(1).unwrap().starts_with(b"40");
                if files && is_dir {
                    Vec::new()
                } else if files {
                    l.to_vec()
                } else {
                    path.to_vec()
                }
            })
            .collect();
        lines.sort();
        lines
    };
    for files in [false, true] {
        let (got, want) = (lines(&out.stdout, files), lines(&deep_dump(2500), files));
        assert_eq!(got.len(), want.len());
        assert!(
            got == want,
            "the dump of the deep tree differs from its input"
        );
    }
}

#[test]
fn an_unsound_source_is_refused_and_dest_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let mut img = read_data("images/hostile-base.img.gz");
    let nid = composefs_format::image::Image::open(&img)
        .unwrap()
        .lookup_path(b"/fifo")
        .unwrap()
        .nid();
    img[(nid * 32) as usize + 6] = 0; // i_nlink 0
    let src = write_file(dir.path(), "bad.img", &img);
    let dest = write_file(dir.path(), "dest.img", b"previous content");
    let out = rewrite(&src, &dest);
    assert_eq!(code(&out), 1);
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        format!(
            "composefs-dump: '{}' is not a sound image: nid {nid} (offset {}): link count 0\n",
            src.display(),
            nid * 32
        )
    );
    assert_eq!(std::fs::read(&dest).unwrap(), b"previous content");
    assert_eq!(dir_names(dir.path()), ["bad.img", "dest.img"]);
}

#[test]
fn usage_and_io_errors_exit_2_and_help_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let src = write_file(
        dir.path(),
        "ok.img",
        &read_data("images/hostile-base.img.gz"),
    );
    let out = rewrite(&dir.path().join("absent.img"), &dir.path().join("x"));
    assert_eq!(code(&out), 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("Failed to open '"));
    let out = rewrite(&src, &dir.path().join("no/such/dir/x.img"));
    assert_eq!(code(&out), 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no/such/dir/x.img"));
    assert_eq!(dir_names(dir.path()), ["ok.img"]);
    let mut cmd = dump_tool();
    cmd.arg(&src);
    assert_eq!(code(&run(cmd)), 2);
    let mut cmd = dump_tool();
    cmd.arg("--help");
    let out = run(cmd);
    assert_eq!(code(&out), 0);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("<SRC> <DEST>") && text.contains("format version"),
        "{text}"
    );
}
