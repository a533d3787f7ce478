//! Hostile images: the cases of `composefs_conformance::hostile` (one or more crafted
//! corruptions for each of the 43 classes of the hardening catalogue) must get the verdict
//! each names from the check; every image is also walked through every public accessor,
//! which must not panic or loop. A proptest mutates random fields and bytes of the base
//! image to the same end.
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation,
    missing_docs
)]

mod reader_support;

use composefs_conformance::hostile::{base, cases, put32, Expect, Map};
use composefs_format::check::check_bytes;
use composefs_format::image::Image;
use composefs_format::ErrorKind;
use proptest::prelude::*;
use reader_support::walk_everything;

#[test]
fn every_catalogue_row_has_a_case() {
    let rows: std::collections::BTreeSet<u32> = cases().iter().map(|c| c.row).collect();
    // Rows 42 (deep) and 43 (huge work) are also covered by tests/tests/reader_deep.rs.
    for row in 1..=43 {
        assert!(
            rows.contains(&row),
            "catalogue row {row} has no hostile case"
        );
    }
}

#[test]
fn hostile_images_are_rejected_with_the_expected_class() {
    let map = Map::new();
    assert!(
        check_bytes(&map.img).is_sound(),
        "the base image must be valid"
    );
    for case in cases() {
        let img = case.image(&map);
        let label = case.label();
        walk_everything(&img);
        let report = check_bytes(&img);
        match case.expect {
            Expect::Accept => assert!(report.is_sound(), "{label}: {:?}", report.problems()),
            Expect::RejectAny => assert!(!report.is_sound(), "{label}: accepted"),
            Expect::Reject(class, kind) => {
                assert!(!report.is_sound(), "{label}: accepted");
                assert!(
                    report
                        .problems()
                        .iter()
                        .any(|p| p.error.class() == class && kind(&p.error.kind())),
                    "{label}: expected {class:?}, got {:#?}",
                    report.problems()
                );
            }
        }
    }
}

#[test]
fn lookup_misses_names_of_an_unsorted_directory_but_terminates() {
    let map = Map::new();
    let mut img = map.img.clone();
    // Rename the first name of the last of the three blocks of /dir to sort first.
    let d = map.dirents("/dir");
    let last_block = d.last().unwrap().0 / 4096;
    let first_of_block1 = d
        .iter()
        .find(|(o, _)| o / 4096 == last_block)
        .unwrap()
        .1
        .clone();
    let o = map.name("/dir", std::str::from_utf8(&first_of_block1).unwrap());
    img[o] = b'a';
    let image = Image::open(&img).unwrap();
    let dir = image.lookup_path(b"/dir").unwrap().dir().unwrap();
    let mut renamed = first_of_block1.clone();
    renamed[0] = b'a';
    // Listed by readdir, not found by the kernel-style binary search: the check reports it.
    assert!(dir
        .entries()
        .any(|e| e.unwrap().name() == renamed.as_slice()));
    assert_eq!(dir.lookup(&renamed).unwrap(), None);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_byte_mutations_never_panic(muts in prop::collection::vec((0usize..53_248, any::<u8>()), 1..24)) {
        let mut img = base();
        for (off, byte) in muts {
            let at = off % img.len();
            img[at] = byte;
        }
        walk_everything(&img);
    }

    #[test]
    fn random_metadata_field_mutations_never_panic(
        muts in prop::collection::vec((0usize..12_288, 0usize..3, any::<u64>()), 1..8)
    ) {
        // Target the header, superblock and inode area, writing whole 2-, 4- or 8-byte fields.
        let mut img = base();
        for (off, width, value) in muts {
            let at = off & !1;
            let n = [2, 4, 8][width];
            if at + n <= img.len() {
                img[at..at + n].copy_from_slice(&value.to_le_bytes()[..n]);
            }
        }
        walk_everything(&img);
    }
}

#[test]
fn overlap_problems_name_the_inode_by_path() {
    let map = Map::new();
    let mut img = map.img.clone();
    let plain = map.inode("/plain");
    let dir = map.inode("/dir");
    let blk = u32::from_le_bytes(img[dir + 16..dir + 20].try_into().unwrap());
    put32(&mut img, plain + 16, blk);
    let report = check_bytes(&img);
    let p = report
        .problems()
        .iter()
        .find(|p| matches!(p.error.kind(), ErrorKind::DataOverlap { .. }))
        .unwrap();
    let path = report.path(p);
    assert!(
        path == b"/plain" || path == b"/dir",
        "{}",
        String::from_utf8_lossy(&path)
    );
}
