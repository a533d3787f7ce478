//! Canonical-image verification on real inputs: every image our writer produces, and every
//! sound image the reference writes, is canonical; reading an image back into a tree and
//! writing it again reproduces it byte for byte.

use composefs_conformance::{gen_dump, reference_tool, skip, upstream_assets};
use composefs_format::canonical::{verify, CanonicalError};
use composefs_format::dumpfile::{parse_bytes, ParseOptions};
use composefs_format::write::{write_image, Options};

fn write(dump: &[u8], options: &Options, strict: bool) -> Vec<u8> {
    let opts = if strict {
        ParseOptions::strict()
    } else {
        ParseOptions::lenient()
    };
    let parsed = parse_bytes(dump, opts).expect("dump parses");
    let mut image = Vec::new();
    write_image(&parsed.tree, options, &mut image).expect("tree writes");
    image
}

fn version_options(version: Option<u32>) -> Options {
    version.map_or_else(Options::default, |v| Options {
        min_version: v,
        max_version: v,
    })
}

#[test]
fn upstream_images_we_write_are_canonical() {
    for asset in upstream_assets() {
        if asset.should_fail
            || asset.name.starts_with("bigfile-xattr")
            || asset.name.starts_with("honggfuzz-bigfile-with-acl")
        {
            continue;
        }
        let image = write(&asset.dump(), &version_options(asset.version), asset.strict);
        verify(&image).unwrap_or_else(|e| panic!("{}: {e}", asset.name));
    }
}

#[test]
fn random_images_we_write_are_canonical() {
    for seed in 0..60u64 {
        let Some(dump) = gen_dump(
            1000 + seed,
            [20, 150, 600][(seed % 3) as usize],
            seed % 2 == 0,
        ) else {
            return;
        };
        for options in [
            Options::default(),
            Options {
                min_version: 0,
                max_version: 0,
            },
            Options {
                min_version: 1,
                max_version: 1,
            },
        ] {
            let image = write(&dump, &options, true);
            verify(&image).unwrap_or_else(|e| panic!("seed {seed} {options:?}: {e}"));
        }
    }
}

#[test]
fn sound_reference_images_are_canonical_and_invalid_chunk_maps_are_not() {
    let Some(mkcomposefs) = reference_tool("mkcomposefs") else {
        return skip("reference mkcomposefs not installed");
    };
    let dir = tempfile::tempdir().unwrap();
    for asset in upstream_assets().into_iter().filter(|a| !a.should_fail) {
        let src = dir.path().join("in.dump");
        std::fs::write(&src, asset.dump()).unwrap();
        let out = dir.path().join("out.img");
        let mut cmd = std::process::Command::new(&mkcomposefs);
        if let Some(v) = asset.version {
            cmd.arg(format!("--min-version={v}"))
                .arg(format!("--max-version={v}"));
        }
        let status = cmd.arg("--from-file").arg(&src).arg(&out).status().unwrap();
        assert!(status.success(), "{}", asset.name);
        let image = std::fs::read(&out).unwrap();
        let result = verify(&image);
        if asset.name.starts_with("bigfile-xattr")
            || asset.name.starts_with("honggfuzz-bigfile-with-acl")
        {
            assert!(
                matches!(result, Err(CanonicalError::NotSound { .. })),
                "{}: {result:?}",
                asset.name
            );
        } else {
            result.unwrap_or_else(|e| panic!("{}: {e}", asset.name));
        }
    }
}
