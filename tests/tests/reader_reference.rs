//! The reader against the reference: every field `composefs-info dump` shows, for images
//! the reference mkcomposefs built, and the structural check on all of them.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, missing_docs)]

mod reader_support;

use composefs_conformance::{read_data, reference_tool, sha256_hex, skip, upstream_assets};
use composefs_format::check::check_bytes;
use composefs_format::image::Image;
use composefs_format::ErrorKind;
use reader_support::{compare, our_dump, parse_dump, reference_build};

/// Small reference images committed under tests/data/images (see build.sh there).
const COMMITTED: [&str; 11] = [
    "bigfile-xattr",
    "bigfile",
    "honggfuzz-bigfile-with-acl",
    "honggfuzz-chardev-nonzero-size",
    "honggfuzz-long-symlink",
    "honggfuzz-longlink-unterminated",
    "longlink",
    "no-newline",
    "special",
    "special_v1",
    "hostile-base",
];

/// The two upstream assets whose reference image moves the chunk map out of line.
const OUT_OF_LINE_CHUNK_MAP: [&str; 2] = ["bigfile-xattr", "honggfuzz-bigfile-with-acl"];

fn is_chunk_map_error(kind: ErrorKind) -> bool {
    matches!(
        kind,
        ErrorKind::InlineCrossesBlock { .. }
            | ErrorKind::ChunkNotHole { .. }
            | ErrorKind::InodeReserved { .. }
    )
}

#[test]
fn committed_reference_images_match_reference_dumps() {
    for name in COMMITTED {
        let bytes = read_data(&format!("images/{name}.img.gz"));
        let expected = read_data(&format!("expected/{name}.dump"));
        let image = Image::open(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        let errors: &[&[u8]] = match name {
            "bigfile-xattr" => &[b"/bigfile"],
            "honggfuzz-bigfile-with-acl" => &[b"/something-with-acls-and-overlay"],
            _ => &[],
        };
        compare(name, &our_dump(&image), &parse_dump(&expected), errors);
        let report = check_bytes(&bytes);
        if OUT_OF_LINE_CHUNK_MAP.contains(&name) {
            assert!(
                !report.is_sound(),
                "{name}: the out-of-line chunk map must be rejected"
            );
            // The ACL flag cannot be confirmed when the inode carrying the ACL is unreadable.
            assert!(
                report
                    .problems()
                    .iter()
                    .any(|p| is_chunk_map_error(p.error.kind()))
                    && report.problems().iter().all(|p| {
                        is_chunk_map_error(p.error.kind())
                            || matches!(p.error.kind(), ErrorKind::HasAclMismatch { .. })
                    }),
                "{name}: {:?}",
                report.problems()
            );
        } else {
            assert!(report.is_sound(), "{name}: {:?}", report.problems());
        }
    }
}

#[test]
fn committed_images_are_what_the_reference_builds() {
    for asset in upstream_assets() {
        let stem = asset.name.trim_end_matches(".dump");
        if !COMMITTED.contains(&stem) {
            continue;
        }
        let bytes = read_data(&format!("images/{stem}.img.gz"));
        assert_eq!(Some(sha256_hex(&bytes)), asset.sha256, "{stem}");
    }
}

#[test]
fn large_upstream_assets_built_by_the_reference() {
    let (Some(mk), Some(info)) = (
        reference_tool("mkcomposefs"),
        reference_tool("composefs-info"),
    ) else {
        return skip("reference mkcomposefs/composefs-info not installed");
    };
    let dir = tempfile::tempdir().unwrap();
    let mut done = 0;
    for asset in upstream_assets() {
        if asset.should_fail || !asset.name.ends_with(".gz") {
            continue;
        }
        let stem = asset.name.trim_end_matches(".dump.gz");
        let (bytes, dumped) =
            reference_build(&mk, Some(&info), &asset.dump(), &[], dir.path(), stem);
        assert_eq!(Some(sha256_hex(&bytes)), asset.sha256, "{stem}");
        let image = Image::open(&bytes).unwrap();
        compare(stem, &our_dump(&image), &parse_dump(&dumped.unwrap()), &[]);
        let report = check_bytes(&bytes);
        assert!(
            report.is_sound(),
            "{stem}: {:?}",
            &report.problems()[..report.problems().len().min(5)]
        );
        done += 1;
    }
    assert_eq!(
        done, 4,
        "config, config-with-hard-link, cs9 minimal and developer"
    );
}

#[test]
fn random_dumps_built_by_the_reference_read_back_and_pass_check() {
    let (Some(mk), Some(info)) = (
        reference_tool("mkcomposefs"),
        reference_tool("composefs-info"),
    ) else {
        return skip("reference mkcomposefs/composefs-info not installed");
    };
    let dir = tempfile::tempdir().unwrap();
    let mut images = 0;
    for seed in 1..=60u64 {
        let entries = 10 + (seed as usize * 37) % 400;
        let whiteouts = seed % 3 != 0;
        let Some(dump) = composefs_conformance::gen_dump(seed, entries, whiteouts) else {
            return;
        };
        for args in [&[][..], &["--min-version=1"][..]] {
            let tag = format!("seed{seed}-{}", args.len());
            let (bytes, dumped) = reference_build(&mk, Some(&info), &dump, args, dir.path(), &tag);
            let image = Image::open(&bytes).unwrap_or_else(|e| panic!("{tag}: {e}"));
            compare(&tag, &our_dump(&image), &parse_dump(&dumped.unwrap()), &[]);
            let report = check_bytes(&bytes);
            assert!(
                report.is_sound(),
                "{tag}: {:?}",
                &report.problems()[..report.problems().len().min(5)]
            );
            images += 1;
        }
    }
    assert!(images >= 100);
}
