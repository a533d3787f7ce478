//! The upstream conformance assets: our image of each dump has the expected sha256.

mod writer_support;

use composefs_conformance::{sha256_hex, upstream_assets};
use composefs_format::write::WriteErrorKind;
use writer_support::{assert_sound, our_image};

/// Assets the reference writes with a chunk map moved out of line (an image EROFS cannot
/// read): we refuse them.
const REFUSED: [&str; 2] = ["bigfile-xattr.dump", "honggfuzz-bigfile-with-acl.dump"];

#[test]
fn every_asset_with_a_digest_is_byte_identical() {
    let mut checked = 0;
    for asset in upstream_assets() {
        let Some(expected) = &asset.sha256 else {
            continue;
        };
        if REFUSED.contains(&asset.name.as_str()) {
            continue;
        }
        let version = asset.version.unwrap_or(0);
        let max = asset.version.unwrap_or(1);
        let image = our_image(&asset.dump(), version, max)
            .unwrap_or_else(|e| panic!("{}: {e}", asset.name));
        assert_eq!(&sha256_hex(&image), expected, "{}", asset.name);
        assert_sound(&image, &asset.name);
        checked += 1;
    }
    assert_eq!(
        checked, 12,
        "every asset with a dump and a digest, minus the refused two"
    );
}

#[test]
fn chunk_maps_that_cannot_stay_inline_are_refused() {
    for asset in upstream_assets()
        .into_iter()
        .filter(|a| REFUSED.contains(&a.name.as_str()))
    {
        let err = our_image(&asset.dump(), 0, 1).unwrap_err();
        assert!(
            matches!(err.kind(), WriteErrorKind::ChunkMapNotInline { chunks } if chunks > 1016),
            "{}: {err}",
            asset.name
        );
    }
}
