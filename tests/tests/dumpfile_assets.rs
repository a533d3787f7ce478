//! The dumpfile parser and printer on the upstream test assets and on random dumps.

use composefs_conformance::{arb, gen_dump, upstream_assets};
use composefs_format::dumpfile::{
    self, Field, HardlinkStyle, ParseError, ParseErrorKind as K, ParseOptions, PrintOptions,
};
use composefs_format::tree::Tree;

fn print(tree: &Tree, hardlinks: HardlinkStyle) -> Vec<u8> {
    let mut out = Vec::new();
    let options = PrintOptions {
        hardlinks,
        ..PrintOptions::default()
    };
    dumpfile::print_dump(tree, &options, &mut out).expect("print");
    out
}

/// Why each `should-fail-*` asset must be rejected, parsed as the reference test suite
/// parses it (lenient).
fn expected_failure(name: &str) -> ParseError {
    let (line, field, kind) = match name {
        "should-fail-big-inline.dump" => (2, Field::Content, K::ContentTooLong { len: 5004 }),
        "should-fail-dir-hardlink.dump" => (2, Field::Mode, K::HardlinkedDirectory),
        "should-fail-dot-name.dump" | "should-fail-dotdot-name.dump" => {
            (2, Field::Path, K::DotComponent)
        }
        "should-fail-empty-link-name.dump" => (2, Field::Payload, K::SymlinkWithoutTarget),
        "should-fail-empty-name.dump" => (2, Field::Path, K::EmptyComponent),
        "should-fail-empty-xattr-key.dump" => (2, Field::Xattr, K::XattrKeyEmpty { index: 1 }),
        "should-fail-honggfuzz-long-xattr.dump" => (
            1,
            Field::Xattr,
            K::XattrBudget {
                index: 3,
                needed: 34493,
            },
        ),
        "should-fail-long-link.dump" => (2, Field::Payload, K::PayloadTooLong { len: 7248 }),
        "should-fail-long-xattr-key.dump" => {
            (2, Field::Xattr, K::XattrTextTooLong { len: 123_219 })
        }
        "should-fail-long-xattr-value.dump" => (2, Field::Mode, K::InvalidFileType { mode: 0o644 }),
        "should-fail-no-ftype.dump" => (2, Field::Mode, K::InvalidFileType { mode: 0 }),
        "should-fail-self-hardlink.dump" => (2, Field::Payload, K::HardlinkToItself),
        "should-fail-too-big.dump" => {
            let size = 9_500_000_000_000_000;
            (2, Field::Size, K::TooManyChunks { size, chunks: 1081 })
        }
        other => panic!("no expected error recorded for new asset {other}"),
    };
    ParseError::new(line, field, kind)
}

#[test]
fn should_fail_assets_are_rejected_for_their_reason() {
    let assets: Vec<_> = upstream_assets()
        .into_iter()
        .filter(|a| a.should_fail)
        .collect();
    assert_eq!(assets.len(), 14);
    for asset in assets {
        let text = asset.dump();
        let lenient = dumpfile::parse_bytes(&text, ParseOptions::lenient());
        assert_eq!(
            lenient.map(|_| ()),
            Err(expected_failure(&asset.name)),
            "{}",
            asset.name
        );
        assert!(
            dumpfile::parse_bytes(&text, ParseOptions::strict()).is_err(),
            "{}",
            asset.name
        );
    }
}

#[test]
fn other_assets_parse_and_canonical_ones_print_back_byte_for_byte() {
    let assets: Vec<_> = upstream_assets()
        .into_iter()
        .filter(|a| !a.should_fail)
        .collect();
    assert_eq!(assets.len(), 14);
    for asset in assets {
        let text = asset.dump();
        let parsed = dumpfile::parse_bytes(
            &text,
            ParseOptions {
                strict: asset.strict,
            },
        )
        .unwrap_or_else(|e| panic!("{}: {e}", asset.name));
        assert_eq!(parsed.tree.validate(), Ok(()), "{}", asset.name);
        let lines = text
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .count();
        let hardlinks = text
            .split(|&b| b == b'\n')
            .filter(|l| has_at_mode(l))
            .count();
        assert_eq!(parsed.tree.len(), lines - hardlinks, "{}", asset.name);
        let printed = print(&parsed.tree, HardlinkStyle::FirstInWalk);
        if asset.strict {
            // Every strict asset is in canonical order with canonical field values, like
            // `composefs-info dump` output.
            assert!(printed == text, "{} does not print back", asset.name);
        } else {
            // The lenient assets get normalized (symlink sizes, RDEV, final newline);
            // the result is a fixed point that strict mode accepts.
            let again = dumpfile::parse_bytes(&printed, ParseOptions::strict())
                .unwrap_or_else(|e| panic!("{}: {e}", asset.name));
            assert_eq!(again.tree, parsed.tree, "{}", asset.name);
            assert_eq!(print(&again.tree, HardlinkStyle::FirstInWalk), printed);
        }
    }
}

/// Whether MODE (the third field) starts with `@`.
fn has_at_mode(line: &[u8]) -> bool {
    line.split(|&b| b == b' ')
        .nth(2)
        .is_some_and(|m| m.first() == Some(&b'@'))
}

#[test]
fn lenient_assets_are_normalized_like_the_reference() {
    let get = |name: &str| {
        let asset = upstream_assets()
            .into_iter()
            .find(|a| a.name == name)
            .expect("asset");
        dumpfile::parse_bytes(&asset.dump(), ParseOptions::lenient())
            .expect("parse")
            .tree
    };
    // no-newline.dump: RDEV 10 on the root is dropped.
    assert_eq!(get("no-newline.dump").root().rdev, 0);
    // longlink.dump: symlink sizes become the target lengths.
    let tree = get("longlink.dump");
    let link = tree
        .get(tree.lookup_path(b"/max-link").expect("link"))
        .expect("node");
    assert_eq!(
        link.size,
        link.payload.as_ref().expect("target").len() as u64
    );
    assert_eq!(link.size, 4095);
}

#[test]
fn hard_link_asset_links_to_the_target_node() {
    let asset = upstream_assets()
        .into_iter()
        .find(|a| a.name == "config-with-hard-link.dump.gz")
        .expect("asset");
    let tree = dumpfile::parse_bytes(&asset.dump(), ParseOptions::strict())
        .expect("parse")
        .tree;
    let usr_bin = tree.lookup_path(b"/usr/bin").expect("dir");
    let entry = tree
        .get(usr_bin)
        .expect("node")
        .child(b"ls-hardlink")
        .expect("link");
    assert!(entry.hardlink);
    assert_eq!(Some(entry.node), tree.lookup_path(b"/usr/bin/ls"));
}

#[test]
fn random_dumps_parse_strictly_and_round_trip() {
    for seed in 1..=12 {
        let Some(text) = gen_dump(seed, 400, seed % 2 == 0) else {
            return;
        };
        let parsed = dumpfile::parse_bytes(&text, ParseOptions::strict())
            .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        assert_eq!(parsed.tree.validate(), Ok(()), "seed {seed}");
        for style in [HardlinkStyle::Primary, HardlinkStyle::FirstInWalk] {
            let printed = print(&parsed.tree, style);
            let again = dumpfile::parse_bytes(&printed, ParseOptions::strict())
                .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
            let want = match style {
                HardlinkStyle::Primary => arb::canonical(&parsed.tree),
                HardlinkStyle::FirstInWalk => {
                    arb::canonical(&arb::primary_first_in_walk(&parsed.tree))
                }
            };
            assert!(arb::canonical(&again.tree) == want, "seed {seed} {style:?}");
        }
    }
}
